"""Speed-perturbed copies of a manifest (Ko et al. 2015, "Audio augmentation for speech recognition"): each
clip resampled so it plays `factor` times faster, which moves pitch and formants together, as a shorter or
longer vocal tract would. Each (speaker, factor) becomes a new speaker, so ASR sees more voices per hour.

    python -m training.data.perturb data/synth_tts/train.jsonl --factors 0.9 1.1 --out data/synth_tts_speed
    python -m training.data.perturb data/synth_tts/train.jsonl --factors 0.9 1.1 --alternate --out ...  # half each

Writes 16-bit FLAC at the source rate under OUT/audio/ and a manifest of every copy named as the source
(OUT/train.jsonl here); existing files are kept, so re-running resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import librosa
import numpy as np
from tqdm import tqdm

from .copies import copied_entry, copy_jobs, write_copies
from .manifest import ManifestEntry

MIN_FACTOR, MAX_FACTOR = 0.5, 2.0  # beyond this, speech stops sounding like a person
PEAK = 0.95  # resampling can overshoot: copies are scaled to stay below this


def check_factor(factor: float) -> float:
    """`factor` if it is a usable speed factor, else a ValueError that says the range."""
    if not (MIN_FACTOR <= factor <= MAX_FACTOR) or factor == 1.0:
        raise ValueError(f"speed factor {factor:g} must lie in [{MIN_FACTOR:g}, {MAX_FACTOR:g}] and not be 1")
    return factor


def change_speed(wav: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """`wav` played `factor` times faster at the same `sample_rate` (length / factor; pitch * factor)."""
    check_factor(factor)
    if wav.ndim != 1 or wav.size == 0:
        raise ValueError(f"expected non-empty mono audio, got shape {list(wav.shape)}")
    # Reading the signal as if recorded at sr * factor and converting it to sr: factor 1.1 keeps 1/1.1 of the
    # samples. Integer target rates keep soxr exact; the rounding changes the speed by < 1e-4.
    out = librosa.resample(wav.astype(np.float32), orig_sr=round(sample_rate * factor), target_sr=sample_rate,
                           res_type="soxr_hq")
    peak = float(np.max(np.abs(out)))
    return out * (PEAK / peak) if peak > PEAK else out


def speaker_name(speaker: str, factor: float) -> str:
    """The new speaker id of a copy: the source speaker with its speed, e.g. `flite:slt:d1~speed1.1`."""
    return f"{speaker}~speed{factor:g}"


def perturb_manifest(manifest: Path, factors: list[float], out: Path, alternate: bool = False) -> list[ManifestEntry]:
    """Every entry of `manifest` at every factor (or, with `alternate`, entry i once at factor i mod len),
    written under `out`; returns the new entries."""
    for f in factors:
        check_factor(f)
    jobs = copy_jobs(manifest, factors, alternate)
    return [copied_entry(e, speaker_name(e.speaker, f), out, lambda wav, rate, f=f: change_speed(wav, f, rate),
                         {"speed": f}) for _, e, f in tqdm(jobs, desc="speed", unit="clip")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.9, 1.1], help="speeds (default 0.9 1.1)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--alternate", action="store_true",
                        help="each clip once, at the factors in turn (as many new speakers, no more hours)")
    args = parser.parse_args(argv)
    try:
        entries = perturb_manifest(args.manifest, args.factors, args.out, args.alternate)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"perturb: error: {e}") from None
    print(write_copies(entries, args.out / args.manifest.name))


if __name__ == "__main__":
    main()
