"""Cutting long recordings into pieces the ASR model reads whole, and joining their transcripts.

Each cut goes at the quietest moment of a search window just before the length limit, judged by the energy
of 20 ms frames smoothed over 200 ms (so a pause between words counts as quiet, a dip inside a word does
not), in the middle of the quietest stretch. Only where the window holds no pause at all does a cut fall in
speech.
"""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.02
SMOOTH_SECONDS = 0.2
QUIET_TOLERANCE_DB = 1.0  # frames this close to the quietest one belong to the same pause
FLOOR_DB = -100.0


def frame_energy_db(wav: np.ndarray, frame_length: int, smooth_frames: int = 1) -> np.ndarray:
    """Mean power of consecutive frames (the last one partial) in dB, averaged over `smooth_frames` around each."""
    if frame_length < 1 or smooth_frames < 1:
        raise ValueError("frame_length and smooth_frames must be >= 1")
    n = -(-wav.size // frame_length)
    padded = np.zeros(n * frame_length, np.float64)
    padded[: wav.size] = wav
    power = (padded.reshape(n, frame_length) ** 2).mean(axis=1)
    if smooth_frames > 1:
        kernel = np.ones(smooth_frames) / smooth_frames
        power = np.convolve(np.pad(power, (smooth_frames // 2, (smooth_frames - 1) // 2), mode="edge"), kernel, "valid")
    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), FLOOR_DB)


def _quietest_boundary(energy: np.ndarray, first: int, last: int) -> int:
    """Frame boundary in first..last at the middle of the longest of the quietest stretches (the later one on ties)."""
    cost = energy[np.minimum(np.arange(first, last + 1), energy.size - 1)]
    quiet = cost <= cost.min() + QUIET_TOLERANCE_DB
    best, best_len, k = last, 0, 0
    while k < quiet.size:
        if not quiet[k]:
            k += 1
            continue
        end = k
        while end + 1 < quiet.size and quiet[end + 1]:
            end += 1
        if end - k + 1 >= best_len:
            best, best_len = first + (k + end + 1) // 2, end - k + 1
        k = end + 1
    return best


def split_audio(wav: np.ndarray, sampling_rate: int, max_piece_seconds: float = 20.0,
                search_seconds: float | None = None) -> list[tuple[int, int]]:
    """(start, end) sample ranges that cover `wav` in order, each at most `max_piece_seconds` long, cut in pauses.

    A cut is looked for in the last `search_seconds` (default: a quarter of the limit, at most 5 s) before
    each limit."""
    if not max_piece_seconds > 0:
        raise ValueError(f"max_piece_seconds must be > 0, got {max_piece_seconds}")
    wav = np.asarray(wav).reshape(-1)
    limit = max(1, int(max_piece_seconds * sampling_rate))
    if wav.size <= limit:
        return [(0, wav.size)]
    search = min(5.0, max_piece_seconds / 4) if search_seconds is None else search_seconds
    frame = max(1, int(FRAME_SECONDS * sampling_rate))
    energy = frame_energy_db(wav, frame, max(1, round(SMOOTH_SECONDS / FRAME_SECONDS)))
    pieces, start = [], 0
    while wav.size - start > limit:
        end = start + limit
        first = -(-max(start + 1, end - int(search * sampling_rate)) // frame)  # boundaries inside the window
        last = end // frame
        cut = _quietest_boundary(energy, first, last) * frame if first <= last else end
        pieces.append((start, cut))
        start = cut
    pieces.append((start, wav.size))
    return pieces


def join_transcripts(texts: list[str]) -> str:
    """The pieces' transcripts as one text: single spaces between them, empty pieces left out."""
    return " ".join(word for text in texts for word in text.split())


__all__ = ["frame_energy_db", "split_audio", "join_transcripts"]
