"""Cutting long recordings for ASR: cuts fall inside pauses, pieces respect the limit and cover the signal,
transcripts join with single spaces."""

from __future__ import annotations

import numpy as np
import pytest

from asr.segment import frame_energy_db, join_transcripts, split_audio

pytestmark = pytest.mark.usefixtures("single_thread")

SR = 16000


def tones_and_pauses(tone_s: float = 1.5, pause_s: float = 0.6, count: int = 12, seed: int = 0):
    """Tones of rising pitch separated by pauses of faint noise; returns (signal, [(pause start, pause end)])."""
    rng = np.random.default_rng(seed)
    parts, pauses, t = [], [], 0
    for i in range(count):
        n = int(tone_s * SR)
        parts.append(0.5 * np.sin(2 * np.pi * (200 + 40 * i) * np.arange(n) / SR))
        t += n
        if i < count - 1:
            m = int(pause_s * SR)
            parts.append(1e-4 * rng.standard_normal(m))
            pauses.append((t, t + m))
            t += m
    return np.concatenate(parts).astype(np.float32), pauses


def check_cover(pieces, n, limit):
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # contiguous, in order
    assert all(0 < end - start <= limit for start, end in pieces)


def test_cuts_fall_inside_pauses():
    wav, pauses = tones_and_pauses()
    assert wav.size / SR == pytest.approx(24.6, abs=0.01)
    # a search window longer than tone + pause always holds a whole pause: the cut goes to its middle
    pieces = split_audio(wav, SR, max_piece_seconds=4.0, search_seconds=2.5)
    check_cover(pieces, wav.size, 4 * SR)
    assert len(pieces) >= 7
    margin = int(0.2 * SR)
    for _, cut in pieces[:-1]:
        assert any(a + margin <= cut <= b - margin for a, b in pauses), cut / SR
    # the default window (a quarter of the limit: 1 s) may hold part of a pause, or none: a cut goes into the
    # pause whenever the window reaches one, and into a tone only when it does not
    pieces = split_audio(wav, SR, max_piece_seconds=4.0)
    check_cover(pieces, wav.size, 4 * SR)
    in_pause = 0
    for start, cut in pieces[:-1]:
        lo, hi = start + 3 * SR, start + 4 * SR
        if any(a < hi and b > lo for a, b in pauses):
            assert any(a <= cut <= b for a, b in pauses), cut / SR
            in_pause += 1
    assert in_pause >= 3


def test_longest_pause_wins_over_a_short_gap():
    """A 60 ms gap inside a 'word' is as silent as a real pause, but the cut goes into the 0.5 s pause."""
    rng = np.random.default_rng(1)
    tone = lambda s: 0.3 * np.sin(2 * np.pi * 300 * np.arange(int(s * SR)) / SR)  # noqa: E731
    quiet = lambda s: 1e-4 * rng.standard_normal(int(s * SR))  # noqa: E731
    wav = np.concatenate([tone(2.0), quiet(0.5), tone(0.6), quiet(0.06), tone(0.6), tone(2.0)]).astype(np.float32)
    pieces = split_audio(wav, SR, max_piece_seconds=4.0, search_seconds=2.5)
    cut = pieces[0][1]
    assert 2.0 * SR < cut < 2.5 * SR


def test_no_pause_still_respects_the_limit():
    wav = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(9.3 * SR)) / SR)).astype(np.float32)
    pieces = split_audio(wav, SR, max_piece_seconds=2.0)
    check_cover(pieces, wav.size, 2 * SR)
    assert len(pieces) >= 5


def test_short_input_is_one_piece_and_bad_limit():
    wav = np.zeros(SR, np.float32)
    assert split_audio(wav, SR, max_piece_seconds=20.0) == [(0, SR)]
    assert split_audio(wav, SR, max_piece_seconds=1.0) == [(0, SR)]
    with pytest.raises(ValueError, match="max_piece_seconds"):
        split_audio(wav, SR, max_piece_seconds=0)


def test_frame_energy():
    wav = np.concatenate([np.zeros(320), 0.5 * np.sin(2 * np.pi * 500 * np.arange(320) / SR)])
    db = frame_energy_db(wav, 320)
    assert db.shape == (2,)
    assert db[0] == -100.0  # digital silence sits on the floor
    assert db[1] == pytest.approx(10 * np.log10(0.125), abs=0.05)  # a sine of amplitude 0.5: power 1/8
    smooth = frame_energy_db(np.concatenate([wav, np.zeros(330)]), 320, smooth_frames=3)
    third = 10 * np.log10(0.125 / 3)  # averaged over 3 frames, one of them the sine
    assert smooth == pytest.approx([third, third, third, -100.0], abs=0.05)


def test_join_transcripts():
    assert join_transcripts(["hello there", "", "  general  kenobi "]) == "hello there general kenobi"
    assert join_transcripts([]) == ""
    assert join_transcripts(["", " "]) == ""
