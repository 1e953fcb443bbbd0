"""Spectrograms of one utterance and of its reconstructions by one or more codecs, stacked in one PNG.

    python benchmarks/plot_spectrograms.py AUDIO --model cat-small-16k --model runs/X/model [--num-quantizers 16]
        [--seconds 3] [--out spectrograms.png]

What the metrics summarise, shown: whether voiced speech keeps its pitch harmonics (horizontal stripes) or
comes back as shaped noise, and how loud the pauses are. For a model with the harmonic branch it also shows
its pitch track (predicted from the codes) over the original's spectrogram.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from catcodec import CATModel  # noqa: E402
from catcodec.audio import load_audio  # noqa: E402

N_FFT, HOP = 1024, 160


def log_spectrogram(wav: torch.Tensor) -> torch.Tensor:
    """[T] -> dB magnitudes [bins, frames]."""
    spec = torch.stft(wav, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True).abs()
    return 20 * torch.log10(spec + 1e-5)


@torch.no_grad()
def reconstruct(model: CATModel, wav: torch.Tensor, num_quantizers: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(decoded audio [T], predicted pitch in Hz per patch or None) at `num_quantizers` codebooks."""
    n = min(num_quantizers, model.config.num_quantizers)
    x = wav[None, None]
    codes = model.encode(x, num_quantizers=n).audio_codes
    audio = model.decode(codes).audio_values[0, 0, : wav.shape[-1]]
    pitch = None
    if model.decoder.pitch_predictor is not None:
        pitch_logits, voicing_logits = model.decoder.pitch_predictor(model.quantizer.decode(codes))
        pitch = model.decoder.harmonic.pitch_hz(pitch_logits)[0]
        pitch = torch.where(voicing_logits[0] > 0, pitch, torch.full_like(pitch, float("nan")))
    return audio, pitch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", help="an audio file (read at each model's rate, mono)")
    parser.add_argument("--model", action="append", required=True, help="preset or saved folder; repeatable")
    parser.add_argument("--num-quantizers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0, help="plot the first this many seconds")
    parser.add_argument("--max-hz", type=float, default=4000.0, help="top of the frequency axis")
    parser.add_argument("--out", default="spectrograms.png")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    models = [(name, CATModel.from_pretrained(name).eval()) for name in args.model]
    rate = models[0][1].config.sampling_rate
    wav = torch.as_tensor(load_audio(args.audio, rate)).reshape(-1)[: int(args.seconds * rate)]
    rows = [("original", wav, None, 0.0)]
    for name, model in models:
        audio, pitch = reconstruct(model, wav, args.num_quantizers)
        kbps = model.config.bitrate(min(args.num_quantizers, model.config.num_quantizers)) / 1000
        rows.append((f"{name} ({kbps:g} kbps)", audio, pitch, model.config.patch_size / model.config.sampling_rate))

    top_bin = int(args.max_hz / (rate / N_FFT))
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 2.3 * len(rows)), sharex=True)
    for ax, (title, audio, pitch, patch_seconds) in zip(axes, rows):
        spec = log_spectrogram(audio)[:top_bin]
        seconds = audio.shape[-1] / rate
        ax.imshow(spec.numpy(), origin="lower", aspect="auto", vmin=-80, vmax=20, extent=(0, seconds, 0, args.max_hz))
        if pitch is not None:
            times = (torch.arange(pitch.shape[0]) + 0.5) * patch_seconds
            axes[0].plot(times.numpy(), pitch.numpy(), "r.", ms=2, label=f"pitch from the codes of {title}")
            axes[0].legend(fontsize=7, loc="upper right")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("Hz")
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
