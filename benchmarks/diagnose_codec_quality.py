"""Where a codec loses PESQ and STOI: score hybrids of its output with the reference (catcodec.evaluation.spectral_swap).

    python benchmarks/diagnose_codec_quality.py [--model catcodec/pretrained/cat-small-16k]
        [--manifest data/manifests/val_wideband.jsonl] [--max-items 6] [--num-quantizers 16] [--oracle-pitch]
        [--baseline opus:6 --baseline codec2:3200] [--threads 2] [--json out.json]

Each item is encoded and decoded at --num-quantizers codebooks and time-aligned to its reference; then each
hybrid (the decoded audio with one part of its spectrum taken from the reference: magnitude, phase, low band,
high band, envelope, fine structure) is scored. A part whose swap lifts a metric a lot is where the codec loses
it. With --oracle-pitch (models with a harmonic branch), the decoder is also run with its pitch and voicing
replaced by the reference's YIN track: a large gain there would mean the pitch, not the spectrum, is the limit.
With --unquantized, the decoder also reads the encoder's latent with the quantizer bypassed (its input and output
projections only): no gain there means the codes are not the limit, the latent or the decoder is.
For a model with a harmonic branch it also prints how loud the branch sings each harmonic against the same
harmonic in the reference (median over voiced frames, dB): a branch far below the speech leaves those harmonics
to the main head.
Each --baseline (as in `catcodec eval`) gets the same table, for scale. Medians over items are printed. Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catcodec import CATModel  # noqa: E402
from catcodec.audio import load_audio  # noqa: E402
from catcodec.evaluation.baselines import Baseline  # noqa: E402
from catcodec.evaluation.metrics import estimate_delay, pesq_wb, shift, stoi, time_align  # noqa: E402
from catcodec.evaluation.run import as_item, select_items  # noqa: E402
from catcodec.evaluation.spectral_swap import HYBRIDS, SwapConfig, hybrids  # noqa: E402
from catcodec.pitch import estimate_pitch, harmonic_amplitudes  # noqa: E402
from training.data.manifest import read_manifest  # noqa: E402

ORACLE_PITCH = "oracle_pitch"
UNQUANTIZED = "unquantized"
ROW_MEANINGS = {
    ORACLE_PITCH: "pitch and voicing of the harmonic branch (YIN track of the reference)",
    UNQUANTIZED: "nothing; the decoder reads the encoder's latent, quantizer bypassed",
}


def oracle_pitch_logits(head, f0: torch.Tensor, voiced: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A YIN track [B, N] -> pitch logits whose softmax expectation is exactly its log-frequency (two adjacent
    bins share the weight) and voicing logits of +-10."""
    pos = head.pitch_bin_position(f0.clamp(min=head.fmin))
    low = pos.floor().clamp(max=head.pitch_bins - 2)
    frac = pos - low
    weights = torch.zeros(*f0.shape, head.pitch_bins, dtype=torch.float32)
    weights.scatter_(-1, low.long()[..., None], (1 - frac)[..., None].float())
    weights.scatter_add_(-1, low.long()[..., None] + 1, frac[..., None].float())
    return torch.log(weights.clamp(min=1e-9)), voiced.float() * 20 - 10


@contextmanager
def pitch_from_track(model: CATModel, wav: torch.Tensor):
    """Within the block, the decoder's harmonic branch sings the YIN pitch of `wav` [1, 1, T] on voiced frames."""
    decoder = model.decoder
    head, predictor = decoder.harmonic, decoder.pitch_predictor
    track = estimate_pitch(wav, model.config.sampling_rate, head.hop, fmin=head.fmin, fmax=head.fmax)
    logits, voicing = oracle_pitch_logits(head, track.f0, track.voiced)
    original = predictor.forward

    def forward(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pitch_logits, voicing_logits = original(latents)
        n = min(pitch_logits.shape[1], logits.shape[1])
        keep = ~track.voiced[:, :n, None]
        pitch_logits = pitch_logits.clone()
        pitch_logits[:, :n] = torch.where(keep, pitch_logits[:, :n], logits[:, :n])
        voicing_logits = voicing_logits.clone()
        voicing_logits[:, :n] = voicing[:, :n]
        return pitch_logits, voicing_logits

    predictor.forward = forward
    try:
        yield
    finally:
        predictor.forward = original


HARMONICS_REPORTED = (1, 2, 3, 5, 10, 20, 40)


def harmonic_level_gaps(model: CATModel, controls, wav: torch.Tensor) -> torch.Tensor:
    """The harmonic branch's amplitude (its decoded `controls`) minus the reference's, in dB, at harmonics
    HARMONICS_REPORTED of the reference's YIN pitch, one row per voiced frame [V, len(HARMONICS_REPORTED)] (NaN
    above the branch's harmonics or Nyquist)."""
    head, rate = model.decoder.harmonic, model.config.sampling_rate
    track = estimate_pitch(wav, rate, head.hop, fmin=head.fmin, fmax=head.fmax)
    n = min(track.f0.shape[1], controls.log_envelope.shape[1])
    voiced = track.voiced[0, :n]
    f0 = track.f0[:, :n][:, voiced]
    sung = head.log_amplitude_at(controls.log_envelope[:, :n][:, voiced], head.harmonic_frequencies(f0))
    measured = harmonic_amplitudes(wav, track.f0[:, :n].clamp(min=head.fmin), rate, head.hop, head.num_harmonics)
    gap = (sung - measured[:, voiced].clamp(min=1e-6).log())[0] * 20 / np.log(10)  # natural log -> dB
    numbers = torch.tensor(HARMONICS_REPORTED)
    out = torch.full((gap.shape[0], len(numbers)), float("nan"))
    known = numbers <= head.num_harmonics
    out[:, known] = gap[:, numbers[known] - 1]
    out[f0[0][:, None] * numbers >= rate / 2] = float("nan")
    return out


def decode(model: CATModel, codes: torch.Tensor, length: int):
    """Codes -> (waveform as float64 numpy cut to `length`, the harmonic branch's controls or None), one pass."""
    audio, controls = model.decode_with_controls(codes)
    return audio.reshape(-1)[:length].double().cpu().numpy(), controls


def decode_unquantized(model: CATModel, x: torch.Tensor, length: int) -> np.ndarray:
    """Waveform [1, 1, T] -> the decoder's output on the encoder's latent with no quantization error
    (`ResidualVectorQuantizer.unquantized`), as float64 numpy cut to `length`."""
    wav, _ = model._prepare_input(x, None, None)  # checked and padded to whole frames, as `encode` does
    audio, _ = model.decoder(model.quantizer.unquantized(model.encoder(wav)), return_controls=True)
    return audio.reshape(-1)[:length].double().cpu().numpy()


def score(ref: np.ndarray, signals: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {name: {"pesq_wb": pesq_wb(ref, signal), "stoi": stoi(ref, signal)} for name, signal in signals.items()}


def print_table(title: str, names: list[str], rows: list[dict]) -> dict[str, dict[str, float]]:
    """Medians over items of each hybrid's PESQ-WB and STOI, printed with their gain over the decoded audio."""
    medians = {name: {k: float(np.median([r[name][k] for r in rows])) for k in ("pesq_wb", "stoi")} for name in names}
    base = medians["decoded"]
    print(title)
    print(f"{'hybrid':26s} {'PESQ-WB':>8s} {'gain':>6s} {'STOI':>7s} {'gain':>7s}  takes from the reference")
    for name in names:
        m = medians[name]
        what = HYBRIDS.get(name) or ROW_MEANINGS[name]
        print(f"{name:26s} {m['pesq_wb']:8.3f} {m['pesq_wb'] - base['pesq_wb']:+6.2f} {m['stoi']:7.3f} "
              f"{m['stoi'] - base['stoi']:+7.3f}  {what}")
    print()
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="catcodec/pretrained/cat-small-16k")
    parser.add_argument("--manifest", default="data/manifests/val_wideband.jsonl")
    parser.add_argument("--max-items", type=int, default=6)
    parser.add_argument("--num-quantizers", type=int, default=16)
    parser.add_argument("--oracle-pitch", action="store_true", help="also decode with the reference's YIN pitch")
    parser.add_argument("--unquantized", action="store_true", help="also decode the unquantized latent")
    parser.add_argument("--baseline", action="append", default=[], help="a baseline codec to diagnose too, e.g. opus:6")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = CATModel.from_pretrained(args.model).eval()
    rate = model.config.sampling_rate
    if rate != 16000:
        sys.exit(f"this diagnosis scores at 16 kHz; {args.model} runs at {rate} Hz")
    if args.oracle_pitch and model.decoder.harmonic is None:
        sys.exit(f"--oracle-pitch needs a model with a harmonic branch; {args.model} has none")
    baselines = [Baseline.parse(spec) for spec in args.baseline]
    for b in baselines:
        ok, why = b.available()
        if not ok:
            sys.exit(f"baseline {b.name} is not available: {why}")
    items = [as_item(e) for e in select_items(read_manifest(args.manifest), args.max_items)]
    cat = f"CAT q{args.num_quantizers}"
    extra_rows = [name for name, wanted in ((ORACLE_PITCH, args.oracle_pitch), (UNQUANTIZED, args.unquantized)) if wanted]
    systems = {cat: list(HYBRIDS) + extra_rows}
    systems.update({b.label: list(HYBRIDS) for b in baselines})
    rows: dict[str, list[dict]] = {name: [] for name in systems}
    gaps: list[torch.Tensor] = []
    with torch.inference_mode():
        for entry in tqdm(items, desc="diagnosing", unit="item", file=sys.stderr):
            wav = load_audio(entry.audio, rate).astype(np.float32)
            ref = wav.astype(np.float64)
            n = ref.shape[0]
            x = torch.from_numpy(wav)[None, None]
            codes = model.encode(x, num_quantizers=args.num_quantizers).audio_codes
            audio, controls = decode(model, codes, n)
            signals = hybrids(ref, time_align(ref, audio)[0][:n], rate, SwapConfig())
            if args.oracle_pitch:
                with pitch_from_track(model, x):
                    signals[ORACLE_PITCH] = time_align(ref, decode(model, codes, n)[0])[0][:n]
            if args.unquantized:
                signals[UNQUANTIZED] = time_align(ref, decode_unquantized(model, x, n))[0][:n]
            rows[cat].append({"id": entry.id, **score(ref, signals)})
            if controls is not None:
                gaps.append(harmonic_level_gaps(model, controls, x))
            for b in baselines:
                coded = b.run(ref).audio
                aligned = shift(coded, estimate_delay(ref, coded), n)
                rows[b.label].append({"id": entry.id, **score(ref, hybrids(ref, aligned, rate, SwapConfig()))})

    medians = {}
    for system, names in systems.items():
        title = f"{system} ({args.model if system == cat else 'baseline'}), {len(items)} items of {args.manifest}, medians"
        medians[system] = print_table(title, names, rows[system])
    levels = None
    if gaps:
        all_gaps = torch.cat(gaps)
        levels = {h: float(np.nanmedian(all_gaps[:, j].numpy())) if np.isfinite(all_gaps[:, j].numpy()).any() else None
                  for j, h in enumerate(HARMONICS_REPORTED)}
        cells = "  ".join(f"h{h} {v:+.0f}" if v is not None else f"h{h} -" for h, v in levels.items())
        print(f"harmonic branch against the reference's harmonics (dB, median over {all_gaps.shape[0]} voiced frames): {cells}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(model=args.model, manifest=args.manifest, num_quantizers=args.num_quantizers,
                                                   medians=medians, harmonic_branch_db=levels, items=rows), indent=1))


if __name__ == "__main__":
    main()
