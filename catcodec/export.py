"""Turn a training run's exported model into shippable weights: bf16 safetensors + config.

    python -m catcodec.export runs/codec_small_cpu/model --out catcodec/pretrained/cat-small-16k
    python -m asr.export runs/asr_small_cpu/model --out asr/pretrained/cat-asr-small      # same, for CAT-ASR

The model card (MODEL_CARD.md: data, steps, hardware, time, evaluation) is written by hand next to them.
Loading upcasts to fp32 (the models' `from_pretrained` default to it), so bf16 storage costs only rounding.
`--decoder-only` writes only the decoder (OUT/codec_decoder.safetensors, `catcodec.decoder_weights`): for a model
built on CAT codes that ships the decoder it was tuned with. `--decoder FILE` puts such a file's decoder into the
codec before writing it whole: the bundled TTS carries its codec so (v6's encoder and quantizer, v4's decoder):

    python -m catcodec.export runs/codec_v6 --decoder codec_decoder.safetensors --out tts/pretrained/cat-tts-small/codec

`--max-shard-mb 15` splits the weights into files of at most that size plus an index (transformers' sharded
format, which `from_pretrained` reads as it is): for carrying a model where files are size-limited.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .decoder_weights import DECODER_FILE, load_decoder_weights, save_decoder_weights
from .modeling_cat import CATModel

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def export(source: str | Path, out: Path, dtype: torch.dtype = torch.bfloat16, model_class=CATModel,
           max_shard_mb: float | None = None, decoder: str | Path | None = None) -> list[Path]:
    """Load `source` with `model_class` (and `decoder`'s weights over its decoder, a codec's only) and save it to
    `out` in `dtype`; returns the weights files."""
    model = model_class.from_pretrained(source)
    if decoder is not None:
        load_decoder_weights(model, decoder)  # refuses a decoder trained on other codes
    shard = {} if max_shard_mb is None else {"max_shard_size": int(max_shard_mb * 1e6)}
    model.to(dtype).save_pretrained(out, **shard)
    return sorted(out.glob("*.safetensors"))


def export_decoder(source: str | Path, out: Path, dtype: torch.dtype = torch.bfloat16) -> list[Path]:
    """Save only the decoder of the codec at `source` to `out / DECODER_FILE` in `dtype`."""
    return [save_decoder_weights(CATModel.from_pretrained(source), out / DECODER_FILE, dtype)]


def main(argv: list[str] | None = None, model_class=CATModel, prog: str = "python -m catcodec.export") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="a folder written by save_pretrained (a run's model/ folder)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    ap.add_argument("--max-shard-mb", type=float, default=None, help="split the weights into files of at most this many MB")
    if model_class is CATModel:
        ap.add_argument("--decoder-only", action="store_true", help=f"write only the decoder, to OUT/{DECODER_FILE}")
        ap.add_argument("--decoder", type=Path, default=None,
                        help=f"a decoder file ({DECODER_FILE}) to put into the codec before writing it")
    args = ap.parse_args(argv)
    if args.max_shard_mb is not None and args.max_shard_mb <= 0:
        ap.error("--max-shard-mb must be positive")
    decoder_only = getattr(args, "decoder_only", False)
    decoder = getattr(args, "decoder", None)
    if decoder_only and args.max_shard_mb is not None:
        ap.error("--decoder-only writes one file: leave out --max-shard-mb")
    if decoder_only and decoder is not None:
        ap.error("--decoder puts a decoder into a whole codec: leave out --decoder-only")
    try:
        if decoder_only:
            paths = export_decoder(args.source, args.out, DTYPES[args.dtype])
        else:
            paths = export(args.source, args.out, DTYPES[args.dtype], model_class, args.max_shard_mb, decoder)
    except (FileNotFoundError, OSError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
