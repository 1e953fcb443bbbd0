"""Re-voiced copies of a manifest: each clip analysed into pitch, voicing and an LPC spectral envelope, then
synthesised again by a pulse / noise source-filter vocoder with its pitch and its formants moved by chosen
factors. The copy speaks the same words with another vocal tract and another larynx, and with the buzzy sound of
a statistical-parametric voice (HTS's MLSA vocoder), which no other training voice has. Each (speaker, variant)
becomes a new speaker, as in `training.data.perturb`.

    python -m training.data.revoice data/synth_tts/train.jsonl --variants 0.8:1.1 1.3:0.9 --alternate \
        --out data/synth_tts_revoiced

A variant is PITCH:FORMANT[:SOURCE[:SMOOTH_MS]] (1:1 re-synthesises the voice as it is). SOURCE `pulse` (the
default) is the vocoder's pulse / noise source; `residual` keeps the clip's own LPC residual, so only the vocal
tract moves and the voice keeps its own excitation (pitch must stay 1). SMOOTH_MS > 0 averages the spectral
envelope over that many milliseconds, slurring formant transitions as a statistical-parametric voice's
over-smoothed trajectories do. Writes 16-bit FLAC at the source rate under
OUT/audio/ and a manifest of every copy named as the source; existing files are kept, so re-running resumes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from scipy.interpolate import interp1d
from scipy.signal import lfilter
from tqdm import tqdm

from catcodec.pitch import estimate_pitch

from .copies import copied_entry, copy_jobs, write_copies
from .manifest import ManifestEntry

MIN_FACTOR, MAX_FACTOR = 0.5, 2.0  # beyond this the copies stop sounding like a person
SOURCES = ("pulse", "residual")
MAX_SMOOTH_MS = 200.0
PEAK = 0.95
HOP_SECONDS = 0.005  # one envelope and one pitch value per 5 ms
WINDOW_SECONDS = 0.025  # LPC analysis window (Hann)


@dataclass(frozen=True)
class Variant:
    """How a copy differs from its source: f0 times `pitch`, formant frequencies times `formant`."""

    pitch: float
    formant: float
    source: str = "pulse"  # "pulse": pulse / noise vocoder; "residual": the clip's own LPC residual
    smooth_ms: float = 0.0  # > 0: the envelope averaged over this span

    def __post_init__(self) -> None:
        for name, value in (("pitch", self.pitch), ("formant", self.formant)):
            if not MIN_FACTOR <= value <= MAX_FACTOR:
                raise ValueError(f"revoice {name} factor {value:g} must lie in [{MIN_FACTOR:g}, {MAX_FACTOR:g}]")
        if self.source not in SOURCES:
            raise ValueError(f"revoice source {self.source!r} must be one of {', '.join(SOURCES)}")
        if self.source == "residual" and self.pitch != 1.0:
            raise ValueError("revoice with the residual source keeps the clip's own pitch: its pitch factor must be 1")
        if not 0.0 <= self.smooth_ms <= MAX_SMOOTH_MS:
            raise ValueError(f"revoice smoothing {self.smooth_ms:g} ms must lie in [0, {MAX_SMOOTH_MS:g}]")

    @classmethod
    def parse(cls, text: str) -> "Variant":
        """'1.2:0.9' -> Variant(pitch=1.2, formant=0.9), '1:0.85:residual', '1:1:pulse:40'; a ValueError naming
        the expected form otherwise."""
        parts = text.split(":")
        try:
            if not 2 <= len(parts) <= 4:
                raise ValueError
            pitch, formant = float(parts[0]), float(parts[1])
            source = parts[2] if len(parts) > 2 else "pulse"
            smooth = float(parts[3]) if len(parts) > 3 else 0.0
        except ValueError:
            raise ValueError(f"revoice variant {text!r} must be PITCH:FORMANT[:SOURCE[:SMOOTH_MS]], e.g. 1.2:0.9 or "
                             "1:0.85:residual") from None
        return cls(pitch, formant, source, smooth)

    @property
    def name(self) -> str:
        """`p1.2f0.9` for the plain vocoder (as before), with `-residual` / `-s40` when those are set."""
        return (f"p{self.pitch:g}f{self.formant:g}" + ("-residual" if self.source == "residual" else "")
                + (f"-s{self.smooth_ms:g}" if self.smooth_ms else ""))


def levinson(r: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Autocorrelations r [N, >order] -> (LPC polynomials a [N, order + 1] with a[:, 0] = 1, prediction error
    power [N]), by the Levinson-Durbin recursion on every frame at once. Minimum phase for a valid r."""
    n = r.shape[0]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.einsum("nj,nj->n", a[:, 1:i], r[:, i - 1 : 0 : -1])
        k = -acc / np.maximum(err, 1e-30)
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * (1.0 - k * k)
    return a, np.maximum(err, 0.0)


def _frames(wav: np.ndarray, hop: int, window: int, count: int) -> np.ndarray:
    """[count, window] analysis frames, frame t centred on the centre of hop t (zeros beyond the signal)."""
    padded = np.pad(wav, (window // 2, window + hop))
    starts = np.arange(count) * hop + hop // 2
    return padded[starts[:, None] + np.arange(window)[None, :]]


def _excitation(f0: np.ndarray, voiced: np.ndarray, hop: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power source, hop samples per frame: a pulse train at f0 where voiced, white noise elsewhere."""
    f0_samples = np.repeat(np.where(voiced, f0, 0.0), hop)
    voiced_samples = np.repeat(voiced, hop)
    phase = np.cumsum(f0_samples / sample_rate)
    pulse_at = np.diff(np.floor(phase), prepend=0.0) > 0
    period = sample_rate / np.maximum(f0_samples, 1.0)
    pulses = np.where(pulse_at, np.sqrt(period), 0.0)  # one pulse of height sqrt(P) per P samples: power 1
    noise = rng.standard_normal(f0_samples.size)
    return np.where(voiced_samples, pulses, noise)


def revoice(
    wav: np.ndarray, sample_rate: int, variant: Variant, order: int | None = None, seed: int = 0
) -> np.ndarray:
    """`wav` (mono) spoken again by an LPC vocoder with its pitch and formants moved by `variant`; same length."""
    if wav.ndim != 1 or wav.size == 0:
        raise ValueError(f"expected non-empty mono audio, got shape {list(wav.shape)}")
    if not np.all(np.isfinite(wav)):
        raise ValueError("audio contains NaN or infinite samples")
    hop = round(HOP_SECONDS * sample_rate)
    window = round(WINDOW_SECONDS * sample_rate)
    order = order or 4 + sample_rate // 1000  # 20 at 16 kHz: two poles per kHz of bandwidth plus four
    count = -(-wav.size // hop)
    x = wav.astype(np.float64)

    # Envelope: each frame's power spectrum with its frequency axis stretched by `formant`, whose inverse FFT is
    # the autocorrelation the LPC polynomial fits (n_fft >= window + order keeps the low lags free of wrap-around).
    n_fft = 1 << (window + order).bit_length()
    hann = np.hanning(window)
    power = np.abs(np.fft.rfft(_frames(x, hop, window, count) * hann, n_fft)) ** 2
    source_power = power
    if variant.smooth_ms > 0:  # a moving average of the power spectra over time (centred)
        span = max(1, round(variant.smooth_ms / 1000 / HOP_SECONDS))
        kernel = np.ones(span) / span
        power = np.apply_along_axis(lambda col: np.convolve(col, kernel, mode="same"), 0, power)
    if variant.formant != 1.0:  # bin k reads the source spectrum at k / formant (linear interpolation; 0 beyond it)
        bins = np.arange(power.shape[1])
        power = interp1d(bins, power, axis=1, bounds_error=False, fill_value=0.0)(bins / variant.formant)
    r = np.fft.irfft(power, n_fft)[:, : order + 1]
    r[:, 0] *= 1.0 + 1e-6  # white-noise correction: keeps the recursion stable on pure tones
    a, err = levinson(r, order)
    gain = np.sqrt(err / np.sum(hann**2))

    if variant.source == "residual":  # whiten the clip by its own envelope, then colour it with the new one
        r0 = np.fft.irfft(source_power, n_fft)[:, : order + 1]
        r0[:, 0] *= 1.0 + 1e-6
        a0, err0 = levinson(r0, order)
        gain0 = np.sqrt(err0 / np.sum(hann**2))
        padded = np.pad(x, (0, count * hop - x.size))
        source = np.empty(count * hop)
        fir_state = np.zeros(order)
        for t in range(count):
            seg = slice(t * hop, (t + 1) * hop)
            source[seg], fir_state = lfilter(a0[t], [1.0], padded[seg], zi=fir_state)
            source[seg] /= max(gain0[t], 1e-12)
    else:  # the vocoder's source needs the pitch (the residual carries its own)
        track = estimate_pitch(torch.from_numpy(np.pad(x, (0, count * hop - x.size))).float()[None], sample_rate, hop)
        f0 = track.f0[0].double().numpy() * variant.pitch
        voiced = track.voiced[0].numpy() & (f0 < 0.45 * sample_rate)
        source = _excitation(f0, voiced, hop, sample_rate, np.random.default_rng(seed))
    out = np.empty(count * hop)
    state = np.zeros(order)
    for t in range(count):  # one all-pole filter per frame; its state carries over to the next
        seg = slice(t * hop, (t + 1) * hop)
        out[seg], state = lfilter([gain[t]], a[t], source[seg], zi=state)
    out = out[: wav.size]
    out -= out.mean()
    src_rms, out_rms = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(out**2))
    if out_rms > 0:
        out *= src_rms / out_rms
    peak = float(np.max(np.abs(out)))
    if peak > PEAK:
        out *= PEAK / peak
    return out.astype(np.float32)


def speaker_name(speaker: str, variant: Variant) -> str:
    """The new speaker id of a copy, e.g. `flite:slt:d1~revoice-p1.2f0.9`."""
    return f"{speaker}~revoice-{variant.name}"


def revoice_manifest(manifest: Path, variants: list[Variant], out: Path, alternate: bool = False,
                     speakers: Sequence[str] = ()) -> list[ManifestEntry]:
    """Every entry of `manifest` (of the `speakers` prefixes, if given) in every variant (or, with `alternate`,
    entry i once in variant i mod len), written under `out`; returns the new entries. Entry i's noise is seeded
    with i, so copies are reproducible."""
    if not variants:
        raise ValueError("revoice needs at least one variant")
    jobs = copy_jobs(manifest, variants, alternate, speakers)
    return [copied_entry(e, speaker_name(e.speaker, v), out, lambda wav, rate, v=v, i=i: revoice(wav, rate, v, seed=i),
                         {"revoice": v.name}) for i, e, v in tqdm(jobs, desc="revoice", unit="clip")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--variants", nargs="+", default=["0.8:1.1", "1.25:0.9"],
                        help="PITCH:FORMANT[:SOURCE[:SMOOTH_MS]] (SOURCE pulse or residual), one new voice per "
                             "source speaker each (default 0.8:1.1 1.25:0.9)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--alternate", action="store_true",
                        help="each clip once, in the variants in turn (as many new speakers, no more hours)")
    parser.add_argument("--speakers", nargs="+", default=(), metavar="PREFIX",
                        help="only the clips whose speaker starts with one of these, e.g. flite: festival:")
    args = parser.parse_args(argv)
    try:
        variants = [Variant.parse(v) for v in args.variants]
        entries = revoice_manifest(args.manifest, variants, args.out, args.alternate, args.speakers)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"revoice: error: {e}") from None
    print(write_copies(entries, args.out / args.manifest.name))


if __name__ == "__main__":
    main()
