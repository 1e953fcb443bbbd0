"""How well codec decoders render a TTS model's imperfect codes: ground-truth-aligned (GTA) codes against the real audio.

    python -m tts.teacher_forced data/synth_tts/val.codes.jsonl --model tts/pretrained/cat-tts-small \
        --out data/gta/synth_tts_val.jsonl --max-items 64
    python benchmarks/bench_gta_decoding.py data/gta/synth_tts_val.jsonl --model catcodec/pretrained/cat-small-16k \
        --model runs/s26/v8 [--max-items 64] [--threads 2] [--json out.json]

Each line's GTA codes (what the TTS predicts for the utterance, shown its real codes: `tts.teacher_forced`) and its
real codes (the line's `real_codes`, the encoder's) are decoded by each model and compared with the real audio:
multi-scale mel distance (the training loss) and STOI. Prints medians per model. The real codes give each
decoder's best; the gap to the GTA codes is what imperfect codes cost it. Decoders of one encoder only (the codes
must mean the same). Not a test: a measurement of trained weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from catcodec import CATModel
from catcodec.audio import load_audio
from catcodec.codes_file import read_codes
from catcodec.evaluation.metrics import stoi
from catcodec.mel import MultiScaleMelLoss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", type=Path, help="written by python -m tts.teacher_forced")
    ap.add_argument("--model", action="append", required=True, help="a codec folder (repeat to compare)")
    ap.add_argument("--max-items", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = [json.loads(l) for l in args.manifest.read_text(encoding="utf-8").splitlines() if l.strip()]
    rows = rows[:: max(1, len(rows) // args.max_items)][: args.max_items]  # spread over the (length-sorted) file
    models = {m: CATModel.from_pretrained(m).eval() for m in args.model}
    ids = {m: model.codes_fingerprint() for m, model in models.items()}
    rate = next(iter(models.values())).config.sampling_rate
    if any(model.config.sampling_rate != rate for model in models.values()):
        raise SystemExit("the models must share a sampling rate (decoders of one encoder)")
    mel = MultiScaleMelLoss(rate)
    scores: dict[str, dict[str, list[float]]] = {m: {"mel_gta": [], "mel_real": [], "stoi_gta": [], "stoi_real": []} for m in models}
    for row in tqdm(rows, desc="GTA decoding", unit="utt"):
        gta = read_codes(row["codes"])
        real = read_codes(row["real_codes"])
        audio = load_audio(row["audio"], rate)  # once per utterance, for every model
        reference = torch.from_numpy(audio)[None, None]
        k = gta.codes.shape[0]
        for m, model in models.items():
            if gta.weights_id and gta.weights_id != ids[m]:
                raise SystemExit(f"{m}: its encoder is not the one the codes were made with ({gta.weights_id} vs {ids[m]})")
            for name, codes in (("gta", gta.codes), ("real", real.codes[:k])):
                with torch.inference_mode():
                    decoded = model.decode(torch.from_numpy(codes.astype(np.int64))[None]).audio_values[..., : audio.size]
                scores[m][f"mel_{name}"].append(float(mel(decoded.float(), reference)))
                scores[m][f"stoi_{name}"].append(stoi(audio, decoded.reshape(-1).numpy(), rate))
    print(f"\n{len(rows)} utterances of {args.manifest}, {gta.codes.shape[0]} codebooks; medians")
    print(f"{'model':<44} {'mel real':>9} {'mel GTA':>9} {'STOI real':>10} {'STOI GTA':>9}")
    summary = {}
    for m, s in scores.items():
        med = {k: float(np.median(v)) for k, v in s.items()}
        summary[m] = med
        print(f"{m:<44} {med['mel_real']:>9.3f} {med['mel_gta']:>9.3f} {med['stoi_real']:>10.3f} {med['stoi_gta']:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps({"manifest": str(args.manifest), "items": len(rows), "medians": summary,
                                         "per_item": scores}, indent=1))


if __name__ == "__main__":
    main()
