"""The `catcodec` command line: encode, decode, reconstruct, info, roundtrip, eval and demo.

    catcodec roundtrip                                # the main job: the bundled example at every bitrate
    catcodec encode speech.wav speech.npz --num-quantizers 8
    catcodec decode speech.npz speech_q8.wav
    catcodec reconstruct speech.wav out.wav --num-quantizers 8 --stream
    catcodec info cat-small-16k --json
    catcodec eval data/manifests/val_wideband.jsonl --max-items 12 --out eval_out
    catcodec demo --port 7860                        # the Gradio page: codec, TTS and ASR tabs on localhost

Every subcommand takes `--model` (a preset name or a folder written by `save_pretrained`), `--device` and
`--threads`. A bad input (missing or corrupt audio, a codes file from another model, a bitrate the model
does not have, an unknown model) ends with one line `catcodec: error: ...` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_write
from .messages import quote, reason
from .codes_file import CodesFile, CodesFileError, check_codes_for_model, read_codes, write_codes
from .presets import DEFAULT_MODEL, PRESETS

PROG = "catcodec"
EXIT_ERROR = 2

EXAMPLE_AUDIO = Path(__file__).parent / "assets" / "vctk_p225_003.flac"
DEFAULT_ROUNDTRIP_QUANTIZERS = (1, 2, 4, 8, 16, 32)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")  # what catcodec.audio.save_audio writes


class CLIError(Exception):
    """A bad input from the user: printed as one line `catcodec: error: <message>`, exit code 2."""


_q = quote
_reason = reason


def _info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,4,8, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,4,8, got {text!r}")
    return values


# ---------------------------------------------------------------------------------------------------------
# shared steps: device, model, audio, output paths


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CLIError(f"invalid --device {name!r}: {_reason(exc)}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {name!r}: CUDA is not available in this PyTorch build or on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise CLIError(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CLIError(f"--device {name!r}: MPS is not available on this machine")
    return device


def _model_label(name: str) -> str:
    """What a codes file records as its model: the preset name, or the folder's absolute path."""
    return name if name in PRESETS else os.path.abspath(os.path.expanduser(name))


def _is_untrained(model) -> bool:
    return "UNTRAINED" in str(getattr(model, "weights_source", ""))


def _load_model(name: str, device: torch.device):
    """Load a preset or a saved folder, say where its weights come from, warn loudly when untrained."""
    from .modeling_cat import CATModel

    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar: the line below says what was loaded
    try:
        model = CATModel.from_pretrained(name)
    except FileNotFoundError as exc:
        raise CLIError(_reason(exc)) from None
    except OSError as exc:  # an unreadable / corrupt saved folder
        raise CLIError(f"cannot load model {_q(name)}: {_reason(exc)}") from None
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    model = model.to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    _info(f"{PROG}: model {_q(name)} ({params / 1e6:.1f} M parameters, on {device}), weights: {model.weights_source}")
    if _is_untrained(model):
        _info(
            f"WARNING: the weights of {_q(name)} are untrained (random initialisation): output is noise, not "
            f"speech. Trained weights are not bundled yet; pass --model FOLDER to use a model trained and saved "
            f"with save_pretrained."
        )
    return model


def _check_num_quantizers(model, n: int | None) -> int:
    """`n` (None = all) or a CLIError that states the model's allowed range."""
    top = model.config.num_quantizers
    if n is None:
        return top
    try:
        return model.quantizer.check_num_quantizers(n)
    except ValueError:
        raise CLIError(
            f"--num-quantizers {n} is out of range: this model has 1..{top} quantizers "
            f"({model.config.bitrate(1) / 1000:g}..{model.config.bitrate(top) / 1000:g} kbps)"
        ) from None


def _load_audio(path: str, sampling_rate: int) -> np.ndarray:
    from .audio import AudioError, load_audio

    try:
        return load_audio(path, sampling_rate)
    except AudioError as exc:
        raise CLIError(str(exc)) from None


def _save_audio(path: str | os.PathLike, wav: np.ndarray, sampling_rate: int) -> None:
    from .audio import AudioError, save_audio

    try:
        save_audio(path, wav, sampling_rate)
    except AudioError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:  # e.g. the parent folder cannot be created
        raise CLIError(f"cannot write {_q(path)}: {_reason(exc)}") from None


def _check_audio_out(out: str, inputs: tuple[str, ...] = ()) -> None:
    """Refuse an output name we cannot write before doing any work."""
    ext = Path(out).suffix.lower()
    if ext not in AUDIO_EXTENSIONS:
        raise CLIError(
            f"cannot write {_q(out)}: unsupported extension {ext or '(none)'!r} (use one of {', '.join(AUDIO_EXTENSIONS)})"
        )
    if Path(out).is_dir():
        raise CLIError(f"cannot write {_q(out)}: it is a directory")
    for other in inputs:
        if os.path.exists(out) and os.path.exists(other) and os.path.samefile(out, other):
            raise CLIError(f"{_q(out)} is also the input: refusing to overwrite it, choose another output name")


def _to_tensor(wav: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None, None].to(device)


def _to_numpy(audio: torch.Tensor, num_samples: int) -> np.ndarray:
    return audio.reshape(-1)[:num_samples].float().cpu().numpy()


def _size(num_bytes: int) -> str:
    return f"{num_bytes:,} bytes" if num_bytes < 10_000 else f"{num_bytes / 1024:,.1f} KiB"


# ---------------------------------------------------------------------------------------------------------
# subcommands


def _stream_reconstruct(model, wav: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and decode frame by frame, as a live stream would; returns (codes [1, n, F], audio [1, 1, F*hop])."""
    from .streaming import StreamingDecoder, StreamingEncoder

    hop = model.config.hop_length
    codes, audio = [], []
    with StreamingEncoder(model, num_quantizers=n) as enc, StreamingDecoder(model) as dec:
        for start in range(0, wav.shape[-1], hop):
            c = enc.push(wav[..., start : start + hop])
            codes.append(c)
            audio.append(dec.push(c))
        c = enc.flush()
        codes.append(c)
        audio.append(dec.push(c))
    return torch.cat(codes, dim=-1), torch.cat(audio, dim=-1)


def cmd_encode(args: argparse.Namespace, model, device: torch.device) -> int:
    config = model.config
    n = _check_num_quantizers(model, args.num_quantizers)
    wav = _load_audio(args.input, config.sampling_rate)
    codes = model.encode(_to_tensor(wav, device), num_quantizers=n).audio_codes[0]
    frames = codes.shape[-1]
    out = Path(args.codes)
    try:
        write_codes(out, CodesFile.from_model(codes, wav.shape[-1], model, _model_label(args.model)))
    except CodesFileError as exc:
        raise CLIError(str(exc)) from None
    seconds = wav.shape[-1] / config.sampling_rate
    print(
        f"wrote {args.codes}: {frames} frames x {n} quantizers ({seconds:.2f} s at {config.sampling_rate} Hz), "
        f"{config.bitrate(n) / 1000:g} kbps, {_size(out.stat().st_size)}"
    )
    return 0


def cmd_decode(args: argparse.Namespace, model, device: torch.device) -> int:
    _check_audio_out(args.output, (args.codes,))
    try:
        codes_file = read_codes(args.codes)
        check_codes_for_model(args.codes, codes_file, model, _model_label(args.model))
    except CodesFileError as exc:
        raise CLIError(str(exc)) from None
    codes = torch.from_numpy(codes_file.codes.astype(np.int64))[None].to(device)
    audio = _to_numpy(model.decode(codes).audio_values, codes_file.num_samples)
    _save_audio(args.output, audio, model.config.sampling_rate)
    n, frames = codes.shape[1], codes.shape[2]
    print(
        f"wrote {args.output}: {audio.shape[-1] / model.config.sampling_rate:.2f} s at {model.config.sampling_rate} Hz "
        f"from {frames} frames x {n} quantizers ({model.config.bitrate(n) / 1000:g} kbps)"
    )
    return 0


def cmd_reconstruct(args: argparse.Namespace, model, device: torch.device) -> int:
    from .metrics import mel_distance, si_sdr

    config = model.config
    _check_audio_out(args.output, (args.input,))
    n = _check_num_quantizers(model, args.num_quantizers)
    wav = _load_audio(args.input, config.sampling_rate)
    x = _to_tensor(wav, device)
    start = time.perf_counter()
    if args.stream:
        _, audio = _stream_reconstruct(model, x, n)
    else:
        audio = model.decode(model.encode(x, num_quantizers=n).audio_codes).audio_values
    elapsed = time.perf_counter() - start
    rec = _to_numpy(audio, wav.shape[-1])
    _save_audio(args.output, rec, config.sampling_rate)
    seconds = wav.shape[-1] / config.sampling_rate
    mode = f"streamed frame by frame ({config.hop_length} samples)" if args.stream else "offline"
    print(f"wrote {args.output}: {seconds:.2f} s at {config.sampling_rate} Hz, {mode}, {elapsed:.2f} s ({seconds / max(elapsed, 1e-9):.1f}x real time)")
    print(f"bitrate:      {config.bitrate(n) / 1000:g} kbps ({n} of {config.num_quantizers} quantizers)")
    print(f"mel distance: {mel_distance(rec, wav, config.sampling_rate):.4f} (lower is better)")
    print(f"SI-SDR:       {si_sdr(rec, wav):.2f} dB (higher is better)")
    return 0


def model_info(model, name: str) -> dict[str, Any]:
    """The facts `catcodec info` prints, as a JSON-ready dict."""
    c = model.config
    counts = {part: sum(p.numel() for p in getattr(model, part).parameters()) for part in ("encoder", "quantizer", "decoder")}
    counts["total"] = sum(p.numel() for p in model.parameters())
    stages = [
        dict(
            stage=i,
            rate_hz=c.stage_rate(i),
            dim=c.stage_dims[i],
            layers=c.stage_layers[i],
            heads=c.stage_heads[i],
            output_dim=c.stage_output_dims[i],
            decoder_dim=c.decoder_stage_dims[i],
            decoder_layers=c.decoder_stage_layers[i],
            decoder_heads=c.decoder_stage_heads[i],
            window_tokens=c.window_tokens(i),
        )
        for i in range(c.num_stages)
    ]
    return dict(
        name=_model_label(name),
        weights_source=str(model.weights_source),
        untrained=_is_untrained(model),
        parameters=counts,
        sampling_rate=c.sampling_rate,
        patch_size=c.patch_size,
        hop_length=c.hop_length,
        frame_rate=c.frame_rate,
        stages=stages,
        num_quantizers=c.num_quantizers,
        codebook_size=c.codebook_size,
        codebook_dim=c.codebook_dim,
        bitrate_bps=dict(min=c.bitrate(1), max=c.bitrate(c.num_quantizers), per_quantizer=c.bitrate(1)),
        attention_window_seconds=c.attention_window_seconds,
        config_hash=c.architecture_hash(),
        weights_id=model.codes_fingerprint(),
        output_head=c.output_head,
        num_harmonics=c.num_harmonics,
    )


def cmd_info(args: argparse.Namespace, model, device: torch.device) -> int:
    info = model_info(model, args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    p = info["parameters"]
    br = info["bitrate_bps"]
    lines = [
        f"name:              {info['name']}",
        f"weights:           {info['weights_source']}" + ("  <- UNTRAINED: output is noise" if info["untrained"] else ""),
        f"parameters:        {p['total']:,} (encoder {p['encoder']:,}, quantizer {p['quantizer']:,}, decoder {p['decoder']:,})",
        f"sampling rate:     {info['sampling_rate']} Hz",
        f"hop length:        {info['hop_length']} samples (patch {info['patch_size']})",
        f"frame rate:        {info['frame_rate']:g} frames/s",
        f"quantizers:        1..{info['num_quantizers']}, codebook size {info['codebook_size']} (dim {info['codebook_dim']})",
        f"bitrate:           {br['min'] / 1000:g}..{br['max'] / 1000:g} kbps ({br['per_quantizer']:g} bps per quantizer)",
        f"attention window:  {info['attention_window_seconds']:g} s",
        f"config hash:       {info['config_hash']}",
        f"weights id:        {info['weights_id']} (encoder + quantizer: codes files record it)",
        f"output head:       {info['output_head']}"
        + (f" + harmonic branch ({info['num_harmonics']} harmonics)" if info["num_harmonics"] else ""),
        "stages (encoder; decoder mirrors in reverse):",
    ]
    for s in info["stages"]:
        dec = ""
        if (s["decoder_dim"], s["decoder_layers"], s["decoder_heads"]) != (s["dim"], s["layers"], s["heads"]):
            dec = f"; decoder dim {s['decoder_dim']}, {s['decoder_layers']} layers, {s['decoder_heads']} heads"
        lines.append(
            f"  {s['stage']}: {s['rate_hz']:g} Hz, dim {s['dim']}, {s['layers']} layers, {s['heads']} heads, "
            f"out {s['output_dim']}, window {s['window_tokens']} tokens{dec}"
        )
    print("\n".join(lines))
    return 0


def _markdown_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def cell(text: str, i: int) -> str:
        return text.rjust(widths[i]) if i in right else text.ljust(widths[i])

    lines = ["| " + " | ".join(cell(h, i) for i, h in enumerate(header)) + " |"]
    lines.append("|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    lines += ["| " + " | ".join(cell(t, i) for i, t in enumerate(r)) + " |" for r in rows]
    return "\n".join(lines)


def cmd_roundtrip(args: argparse.Namespace, model, device: torch.device) -> int:
    from tqdm import tqdm

    from .metrics import mel_distance, si_sdr

    config = model.config
    top = config.num_quantizers
    requested = list(dict.fromkeys(args.num_quantizers))  # de-duplicated, order kept
    bad = [n for n in requested if n < 1]
    if bad:
        raise CLIError(f"--num-quantizers {bad[0]} is out of range: this model has 1..{top} quantizers")
    levels = [n for n in requested if n <= top]
    dropped = [n for n in requested if n > top]
    if dropped:
        _info(f"note: skipping --num-quantizers {', '.join(map(str, dropped))}: this model has at most {top} quantizers")
    if not levels:
        raise CLIError(f"no usable --num-quantizers: this model has 1..{top} quantizers")

    input_path = args.input if args.input is not None else str(EXAMPLE_AUDIO)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"--out {_q(args.out)} exists and is not a folder")
    wav = _load_audio(input_path, config.sampling_rate)
    num_samples = wav.shape[-1]
    seconds = num_samples / config.sampling_rate
    _save_audio(out_dir / "original.wav", wav, config.sampling_rate)

    # One encoder pass at the highest level: residual VQ codes of n quantizers are the first n rows of the
    # codes of more (each layer quantizes what the ones before left), so every bitrate is a prefix.
    codes = model.encode(_to_tensor(wav, device), num_quantizers=max(levels)).audio_codes
    frames = codes.shape[-1]
    results = []
    for n in tqdm(levels, desc="decoding", unit="bitrate", file=sys.stderr, dynamic_ncols=True):
        rec = _to_numpy(model.decode(codes[:, :n]).audio_values, num_samples)
        name = f"reconstructed_q{n}.wav"
        _save_audio(out_dir / name, rec, config.sampling_rate)
        results.append(
            dict(
                num_quantizers=n,
                kbps=config.bitrate(n) / 1000,
                real_kbps=frames * n * config.bits_per_code / seconds / 1000,
                mel_distance=mel_distance(rec, wav, config.sampling_rate),
                si_sdr_db=si_sdr(rec, wav),
                file=str(out_dir / name),
            )
        )

    summary = dict(
        model=_model_label(args.model),
        weights_source=str(model.weights_source),
        untrained=_is_untrained(model),
        config_hash=config.architecture_hash(),
        input=os.path.abspath(input_path),
        sampling_rate=config.sampling_rate,
        num_samples=num_samples,
        duration_s=seconds,
        frames=frames,
        frame_rate=config.frame_rate,
        codebook_size=config.codebook_size,
        original=str(out_dir / "original.wav"),
        dropped_num_quantizers=dropped,
        results=results,
    )
    try:
        atomic_write(
            out_dir / "results.json", lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()), suffix=".json"
        )
    except OSError as exc:
        raise CLIError(f"cannot write {_q(out_dir / 'results.json')}: {_reason(exc)}") from None

    header = ["num_quantizers", "kbps", "real kbps", "mel distance", "SI-SDR (dB)", "file"]
    rows = [
        [str(r["num_quantizers"]), f"{r['kbps']:.3f}", f"{r['real_kbps']:.3f}", f"{r['mel_distance']:.3f}", f"{r['si_sdr_db']:.2f}", r["file"]]
        for r in results
    ]
    print(f"{_q(input_path)}: {seconds:.2f} s at {config.sampling_rate} Hz, {frames} frames, model {_q(args.model)}")
    print()
    print(_markdown_table(header, rows, right={0, 1, 2, 3, 4}))
    print()
    print(f"original: {out_dir / 'original.wav'}; all figures: {out_dir / 'results.json'}")
    print("mel distance: lower is better (0 = identical); SI-SDR: higher is better")
    if _is_untrained(model):
        print(f"NOTE: {_q(args.model)} has UNTRAINED weights: these reconstructions are noise, not speech.")
    return 0


def cmd_eval(args: argparse.Namespace, model, device: torch.device) -> int:
    from .evaluation.baselines import DEFAULT_BASELINES, parse_baselines
    from .evaluation.metrics import MissingDependency
    from .evaluation.report import markdown_table, write_report
    from .evaluation.run import evaluate, select_items

    if args.no_baselines and args.baseline:
        raise CLIError("--no-baselines and --baseline both given; pass one")
    try:
        baselines = [] if args.no_baselines else parse_baselines(args.baseline or DEFAULT_BASELINES)
    except ValueError as exc:
        raise CLIError(f"--baseline: {exc}") from None
    top = model.config.num_quantizers
    requested = list(dict.fromkeys(args.num_quantizers))
    bad = [n for n in requested if n < 1]
    if bad:
        raise CLIError(f"--num-quantizers {bad[0]} is out of range: this model has 1..{top} quantizers")
    if not any(n <= top for n in requested) and not baselines:
        raise CLIError(f"no usable --num-quantizers: this model has 1..{top} quantizers")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"--out {_q(args.out)} exists and is not a folder")

    from training.data import read_manifest

    if Path(args.manifest).is_dir():
        raise CLIError(f"cannot read manifest {_q(args.manifest)}: it is a directory")
    try:
        entries = read_manifest(args.manifest)
    except OSError as exc:
        raise CLIError(f"cannot read manifest {_q(args.manifest)}: {_reason(exc)}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CLIError(f"bad manifest: {_reason(exc)}") from None
    if not entries:
        raise CLIError(f"manifest {_q(args.manifest)} has no entries")
    chosen = select_items(entries, args.max_items)
    if len(chosen) < len(entries):
        _info(f"{PROG}: evaluating {len(chosen)} of the {len(entries)} items of {_q(args.manifest)}, spread evenly over it")

    try:
        results = evaluate(
            model,
            chosen,
            num_quantizers=requested,
            baselines=baselines,
            compute_wer=not args.no_wer,
            compute_speaker=not args.no_speaker,
            on_note=lambda message: _info(f"note: {message}"),
        )
    except MissingDependency as exc:
        hint = " (or pass --no-wer)" if "word error rate" in str(exc) else ""
        raise CLIError(f"{exc}{hint}") from None
    except ValueError as exc:
        raise CLIError(_reason(exc)) from None
    results["model_name"] = _model_label(args.model)
    results["manifest"] = os.path.abspath(args.manifest)
    try:
        paths = write_report(results, out_dir)
    except OSError as exc:
        raise CLIError(f"cannot write the results into {_q(args.out)}: {_reason(exc)}") from None

    print(f"{results['num_items']} items ({results['total_seconds']:.1f} s), model {_q(args.model)}, compared at {results['eval_sampling_rate']} Hz")
    print()
    print(markdown_table(results))
    print()
    print(f"results: {paths['json']}, {paths['markdown']}, {paths['plot']}")
    print("higher is better: PESQ, STOI, SI-SDR, SIM; lower is better: mel, WER (PocketSphinx; compare with the original row)")
    if _is_untrained(model):
        print(f"NOTE: {_q(args.model)} has UNTRAINED weights: the CAT rows measure noise, not a codec.")
    return 0


def cmd_tokenize(args: argparse.Namespace, model, device: torch.device) -> int:
    from .tokenize import tokenize_manifest

    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise CLIError(f"cannot read manifest {_q(args.manifest)}: " + ("it is a directory" if manifest.is_dir() else "file not found"))
    n = _check_num_quantizers(model, args.num_quantizers)
    try:
        report = tokenize_manifest(model, manifest, n, args.out, _model_label(args.model), batch_size=args.batch_size)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None
    print(
        f"wrote {report.manifest}: {report.written} clips encoded, {report.reused} reused, {report.failed} unreadable "
        f"skipped; {report.frames} frames x {n} quantizers ({report.frames / model.config.frame_rate / 60:.1f} min)"
    )
    return 0


def cmd_demo(args: argparse.Namespace, model, device: torch.device) -> int:
    try:
        from demo.app import DemoError, serve
    except ImportError as exc:
        raise CLIError(f"the demo needs Gradio: pip install -e '.[demo]' ({_reason(exc)})") from None
    try:
        return serve(model, _model_label(args.model), tts_model=args.tts_model, asr_model=args.asr_model, port=args.port)
    except DemoError as exc:
        raise CLIError(str(exc)) from None


# ---------------------------------------------------------------------------------------------------------
# parser and entry point


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("model and runtime")
    g.add_argument("--model", default=None, metavar="NAME_OR_DIR",
                   help=f"preset ({', '.join(PRESETS)}) or a folder written by save_pretrained (default: {DEFAULT_MODEL})")
    g.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    g.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="CPU threads for torch (default: torch's own choice)")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="CAT codec: causal-Transformer neural audio codec (12.5 frames/s). "
        "Start with 'catcodec roundtrip' to hear the bundled example at every bitrate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("roundtrip", parents=[common], help="encode+decode one file at several bitrates and compare (the main job)",
                       description="Encode a file at every bitrate, decode it, write the reconstructions and a table of "
                       "bitrate, mel distance and SI-SDR.")
    p.add_argument("--input", default=None, metavar="FILE", help=f"audio file (default: the bundled example {EXAMPLE_AUDIO.name})")
    p.add_argument("--out", default="roundtrip_out", metavar="DIR", help="output folder (default: ./roundtrip_out)")
    p.add_argument("--num-quantizers", type=_int_list, default=list(DEFAULT_ROUNDTRIP_QUANTIZERS), metavar="N,N,...",
                   help="bitrates as quantizer counts (default: 1,2,4,8,16,32; values above the model's maximum are skipped)")
    p.set_defaults(func=cmd_roundtrip)

    p = sub.add_parser("encode", parents=[common], help="audio file -> codes (.npz)",
                       description="Encode an audio file (any rate, mono or stereo, wav/flac/ogg) into a .npz codes file.")
    p.add_argument("input", metavar="IN", help="audio file")
    p.add_argument("codes", metavar="CODES", help="codes file to write (.npz)")
    p.add_argument("--num-quantizers", type=int, default=None, metavar="N", help="quantizers to keep (default: all)")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", parents=[common], help="codes (.npz) -> audio file",
                       description="Decode a codes file written by 'catcodec encode'; the format follows OUT's extension.")
    p.add_argument("codes", metavar="CODES", help="codes file (.npz from 'catcodec encode')")
    p.add_argument("output", metavar="OUT", help="audio file to write (.wav, .flac or .ogg)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("reconstruct", parents=[common], help="audio file -> codes -> audio file, with quality figures",
                       description="Encode and decode an audio file; print bitrate, mel distance and SI-SDR.")
    p.add_argument("input", metavar="IN", help="audio file")
    p.add_argument("output", metavar="OUT", help="audio file to write (.wav, .flac or .ogg)")
    p.add_argument("--num-quantizers", type=int, default=None, metavar="N", help="quantizers to keep (default: all)")
    p.add_argument("--stream", action="store_true", help="run frame by frame through the streaming encoder and decoder")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("eval", parents=[common], help="score CAT and classical codecs on a speech manifest",
                       description="Encode and decode every item of a JSON-lines manifest at several bitrates, run the same "
                       "audio through Opus and Codec 2, and score everything at 16 kHz: PESQ-WB/NB, STOI, SI-SDR, mel "
                       "distance, speaker similarity and PocketSphinx WER. Writes results.json, results.md and results.png.")
    p.add_argument("manifest", metavar="MANIFEST", help="JSON lines: audio (relative to the manifest's folder or absolute), text (or null), speaker, ...")
    p.add_argument("--num-quantizers", type=_int_list, default=list(DEFAULT_ROUNDTRIP_QUANTIZERS), metavar="N,N,...",
                   help="CAT bitrates as quantizer counts (default: 1,2,4,8,16,32; values above the model's maximum are skipped)")
    p.add_argument("--baseline", action="append", default=None, metavar="CODEC:RATE",
                   help="classical codec to compare, repeatable: opus:KBPS (ffmpeg + libopus) or codec2:MODE "
                   "(3200, 2400, 1600, 1400, 1300, 1200, 700C) (default: opus:6, opus:8, codec2:3200, codec2:1300; "
                   "a codec whose tool is not installed is skipped with a note)")
    p.add_argument("--no-baselines", action="store_true", help="evaluate CAT only")
    p.add_argument("--max-items", type=_positive_int, default=None, metavar="N",
                   help="evaluate at most N items, spread evenly over the manifest (default: all)")
    p.add_argument("--out", default="eval_out", metavar="DIR", help="output folder (default: ./eval_out)")
    p.add_argument("--no-wer", action="store_true", help="skip speech recognition (PocketSphinx WER and CER)")
    p.add_argument("--no-speaker", action="store_true", help="skip speaker similarity (Resemblyzer)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("tokenize", parents=[common], help="cache the codes of every clip of a manifest (for TTS / ASR training)",
                       description="Encode every clip of a JSON-lines manifest once; write codes files into a folder beside "
                       "it and a new manifest (NAME.codes.jsonl) with 'codes' and 'num_frames' added to each line.")
    p.add_argument("manifest", metavar="MANIFEST", help="JSON lines with an 'audio' field (relative to the manifest or absolute)")
    p.add_argument("--num-quantizers", type=int, default=None, metavar="N", help="quantizers to keep (default: all)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for the codes files (default: NAME.codes beside the manifest)")
    p.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="clips encoded together (default: 8)")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("demo", parents=[common], help="serve the Gradio demo (codec, TTS, ASR) on localhost",
                       description="Serve a web page on localhost to try the codec at any bitrate (with streaming), "
                       "text to speech and speech recognition. Models load once at start; Ctrl+C stops it.")
    p.add_argument("--tts-model", default=None, metavar="DIR", help="TTS model folder (default: the bundled weights, if any)")
    p.add_argument("--asr-model", default=None, metavar="DIR", help="ASR model folder (default: the bundled weights, if any)")
    p.add_argument("--port", type=int, default=7860, metavar="N", help="port on 127.0.0.1 (default: 7860)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("info", parents=[common], help="sizes, rates and weights of a model",
                       description="Print a model's sizes, rates, bitrate range and where its weights come from.")
    p.add_argument("model_or_preset", nargs="?", default=None, metavar="MODEL_OR_PRESET",
                   help=f"preset name or model folder (same as --model; default: {DEFAULT_MODEL})")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse printed them already
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)

    try:
        if args.command == "info" and args.model_or_preset is not None:
            if args.model is not None and args.model != args.model_or_preset:
                raise CLIError(f"two models given: {_q(args.model_or_preset)} and --model {_q(args.model)}; pass one")
            args.model = args.model_or_preset
        if args.model is None:
            args.model = DEFAULT_MODEL
        device = _device(args.device)
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        with torch.inference_mode():
            model = _load_model(args.model, device)
            return args.func(args, model, device)
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `catcodec info | head`: stdout closed early; stay quiet at exit too
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
