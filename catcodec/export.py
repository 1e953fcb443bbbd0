"""Turn a training run's exported codec into shippable weights: bf16 safetensors + config, under 60 MB.

    python -m catcodec.export runs/codec_small_cpu/model --out catcodec/pretrained/cat-small-16k

The model card (MODEL_CARD.md: data, steps, hardware, time, evaluation) is written by hand next to them.
Loading upcasts to fp32 (`CATModel.from_pretrained` defaults to it), so bf16 storage costs only rounding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .modeling_cat import CATModel

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def export(source: str | Path, out: Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    model = CATModel.from_pretrained(source)
    model.to(dtype).save_pretrained(out)
    return out / "model.safetensors"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m catcodec.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="a folder written by save_pretrained (a run's model/ folder)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    args = ap.parse_args(argv)
    try:
        path = export(args.source, args.out, DTYPES[args.dtype])
    except (FileNotFoundError, OSError, ValueError) as e:
        print(f"catcodec.export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
