"""Ground-truth-aligned (GTA) codes: what CAT-TTS predicts for utterances whose real codes it is shown.

    python -m tts.teacher_forced data/synth_tts/train.codes.jsonl --model tts/pretrained/cat-tts-small \
        --out data/gta/synth_tts_train.jsonl [--max-items 2000] [--temperature 0.8 --top-p 0.95] [--seed 0]

For each (transcript, codes) line of a codes manifest (`catcodec tokenize`), the TTS model reads the transcript
and the real codes (teacher forcing) and its prediction of every code is sampled at its inference settings. The
predicted codes line up frame by frame with the real audio, so a codec decoder can be trained to turn such
imperfect codes into the real speech (the vocoder fine-tuning of Tacotron 2 / HiFi-GAN, on codes). Writes one
codes file per line (`catcodec.codes_file` format, the codec's weights id kept) and a manifest whose lines keep the
source's fields, with `audio` made absolute, `codes` pointing at the predicted codes and `real_codes` at the source's.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from catcodec.atomic import atomic_write
from catcodec.codes_file import read_codes, write_codes
from training.generation.sampling import SamplingConfig, sample_next

from .modeling_tts import CATTTSModel
from .text import TextError, tokenizer_for
from .training_task import collate_tts


@torch.no_grad()
def predict_codes(model: CATTTSModel, batch: dict[str, torch.Tensor], sampling: SamplingConfig,
                  generator: torch.Generator | None = None) -> list[np.ndarray]:
    """A `collate_tts` batch -> each item's predicted codes [K, F] (int64): every codebook of every frame sampled
    from the model's logits given the real text, the real earlier frames and the frame's real coarser codes."""
    k = model.config.num_quantizers
    levels = torch.full((batch["text_ids"].shape[0],), k)
    out = model(**batch, levels=levels)
    size = model.config.codebook_size  # level 0's extra end-of-speech class is left out: these frames exist
    picks = torch.stack([sample_next(lg[:, :size], sampling, generator=generator) for lg in out.logits], dim=1)  # [N, K]
    predicted, start = [], 0
    for lf in batch["frame_lengths"].tolist():
        predicted.append(picks[start : start + lf].t().numpy())
        start += lf + 1  # each item's last position predicts the end of speech
    return predicted


def read_manifest(path: Path, max_items: int | None, seed: int) -> list[dict]:
    """The lines with a transcript and cached codes; a seeded random `max_items` of them, in the file's order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("text") and r.get("codes")]
    if max_items is not None and len(rows) > max_items:
        keep = np.sort(np.random.default_rng(seed).permutation(len(rows))[:max_items])
        rows = [rows[i] for i in keep]
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", type=Path, help="a codes manifest written by catcodec tokenize")
    ap.add_argument("--model", required=True, help="a trained CAT-TTS folder")
    ap.add_argument("--out", type=Path, required=True, help="the manifest to write; codes go to a folder beside it")
    ap.add_argument("--max-items", type=int, default=None)
    ap.add_argument("--max-frames", type=int, default=200, help="longer lines are left out")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = CATTTSModel.from_pretrained(args.model).eval()
    tokenizer = tokenizer_for(model.config.text_frontend)
    k = model.config.num_quantizers
    sampling = SamplingConfig(temperature=args.temperature, top_p=args.top_p)
    generator = torch.Generator().manual_seed(args.seed)
    codes_dir = args.out.with_suffix("")
    codes_dir.mkdir(parents=True, exist_ok=True)

    items = []  # (row, text ids, codes file)
    for row in read_manifest(args.manifest, args.max_items, args.seed):
        try:
            ids = tokenizer.encode(row["text"])
        except TextError:
            continue
        source = read_codes(args.manifest.parent / row["codes"])
        if source.codes.shape[0] < k:
            raise SystemExit(f"{row['codes']} has {source.codes.shape[0]} codebooks; the TTS model predicts {k}")
        if 0 < source.codes.shape[1] <= args.max_frames:
            items.append((row, ids, source))
    items.sort(key=lambda it: it[2].codes.shape[1])  # similar lengths batch together

    agree = np.zeros(k)
    total_frames = 0
    lines = []
    for start in tqdm(range(0, len(items), args.batch_size), desc="teacher-forced codes", unit="batch"):
        chunk = items[start : start + args.batch_size]
        batch = collate_tts([{"text": torch.tensor(ids), "codes": torch.from_numpy(src.codes[:k].astype(np.int64))}
                             for _, ids, src in chunk])
        for (row, _, source), predicted in zip(chunk, predict_codes(model, batch, sampling, generator)):
            agree += (predicted == source.codes[:k]).sum(axis=1)
            total_frames += predicted.shape[1]
            path = codes_dir / Path(row["codes"]).name
            write_codes(path, replace(source, codes=predicted.astype(source.codes.dtype), num_quantizers=k))
            lines.append({**row, "audio": str((args.manifest.parent / row["audio"]).resolve()),
                          "codes": str(path.resolve()), "num_frames": int(predicted.shape[1]),
                          "real_codes": str((args.manifest.parent / row["codes"]).resolve())})
    # the manifest last and whole: an interrupted run leaves none, not a short one
    atomic_write(args.out, lambda f: f.write("".join(json.dumps(line) + "\n" for line in lines).encode()), suffix=".jsonl")
    shares = ", ".join(f"{100 * a / max(total_frames, 1):.0f}" for a in agree)
    print(f"{len(items)} utterances, {total_frames} frames -> {args.out}; predicted code = real code, % per codebook: {shares}")


if __name__ == "__main__":
    main()
