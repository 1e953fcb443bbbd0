"""Pictures for the demo page: a waveform's spectrogram and a codes tensor's token grid, as RGB arrays.

Drawn with matplotlib's Agg canvas on a fresh `Figure` each call (no pyplot, no global backend switch), so
the server's worker threads can draw at the same time.
"""

from __future__ import annotations

import numpy as np
import torch

N_FFT = 512  # 32 ms windows at 16 kHz
TOP_DB = 80.0  # dynamic range shown below the loudest bin
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 100


def _render(fig) -> np.ndarray:
    """The figure as an [H, W, 3] uint8 array."""
    canvas = fig.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _axes(fig):
    """Plot and colour-bar axes at fixed places (a layout engine would triple the drawing time)."""
    return fig.add_axes((0.075, 0.17, 0.8, 0.72)), fig.add_axes((0.89, 0.17, 0.015, 0.72))


def spectrogram_db(wav: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Power spectrogram in dB [freq bins, frames] (Hann window of N_FFT samples, hop N_FFT / 4)."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32).reshape(-1))
    if x.numel() < N_FFT:  # a clip shorter than one window: pad it to one
        x = torch.nn.functional.pad(x, (0, N_FFT - x.numel()))
    spec = torch.stft(x, N_FFT, hop_length=N_FFT // 4, window=torch.hann_window(N_FFT), return_complex=True, center=True)
    return (10.0 * torch.log10(spec.abs().pow(2).clamp_min(1e-10))).numpy()


def spectrogram_image(wav: np.ndarray, sampling_rate: int, title: str, vmax_db: float | None = None) -> np.ndarray:
    """A spectrogram picture (time in s, frequency in kHz); `vmax_db` pins the colour scale to compare two."""
    db = spectrogram_db(wav, sampling_rate)
    top = float(db.max()) if vmax_db is None else vmax_db
    seconds = wav.size / sampling_rate
    fig = _figure()
    ax, cax = _axes(fig)
    im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - TOP_DB, vmax=top,
                   extent=(0.0, seconds, 0.0, sampling_rate / 2000), interpolation="nearest")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, cax=cax, label="dB")
    return _render(fig)


def token_grid_image(codes: np.ndarray, frame_rate: float, codebook_size: int, title: str) -> np.ndarray:
    """Codes [K, frames] as a picture: one row per codebook (1 at the top), one column per frame, colour = index."""
    codes = np.asarray(codes)
    k, frames = codes.shape
    fig = _figure()
    ax, cax = _axes(fig)
    im = ax.imshow(codes, aspect="auto", cmap="viridis", vmin=0, vmax=codebook_size - 1, interpolation="nearest",
                   extent=(0.0, frames / frame_rate, k + 0.5, 0.5))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("codebook")
    if k <= 16:
        ax.set_yticks(range(1, k + 1))
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, cax=cax, label="code index")
    return _render(fig)


__all__ = ["spectrogram_db", "spectrogram_image", "token_grid_image"]
