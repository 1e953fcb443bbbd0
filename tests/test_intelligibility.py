"""The STOI-style envelope correlation and the intelligibility loss, on speech-like signals made here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from catcodec.intelligibility import EnvelopeCorrelation, IntelligibilityLoss, third_octave_bands

RATE = 16000


def babble(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Speech-like test audio: a gliding harmonic voice whose formant-ish band and loudness change every
    syllable (about 4 per second), with short pauses, so band envelopes rise and fall as in speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    syllable = (t * 4).astype(int)
    centre = rng.uniform(300, 3000, syllable.max() + 1)[syllable]
    loud = rng.uniform(0.2, 1.0, syllable.max() + 1)[syllable] * (np.sin(np.pi * (t * 4 % 1)) ** 2)
    loud[(syllable % 5) == 4] = 0.0  # a pause every fifth syllable
    voice = sum(np.exp(-(((k * f0) - centre) / 600) ** 2) * np.sin(k * phase) for k in range(1, 30))
    return (0.3 * loud * voice / 3).astype(np.float32)


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size).astype(np.float32)
    noise *= np.sqrt((x**2).mean() / (noise**2).mean() / 10 ** (snr_db / 10))
    return x + noise


def correlation(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(EnvelopeCorrelation(RATE)(torch.from_numpy(estimate)[None], torch.from_numpy(reference)[None]))


def test_identical_audio_correlates_fully_and_costs_nothing():
    x = torch.from_numpy(babble())[None, None]
    assert float(EnvelopeCorrelation(RATE)(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(IntelligibilityLoss(RATE)(x, x)) == pytest.approx(0.0, abs=1e-5)


def test_gain_does_not_matter_and_unrelated_audio_scores_low():
    x = babble()
    assert correlation(0.05 * x, x) == pytest.approx(1.0, abs=1e-4)
    assert correlation(np.roll(babble(seed=7), RATE // 8), x) < 0.3  # another voice, syllables out of step
    noise = np.random.default_rng(3).standard_normal(x.size).astype(np.float32) * 0.1
    assert correlation(noise, x) < min(0.55, correlation(with_noise(x, -10), x))  # STOI's chance level is not 0 either


def test_it_falls_with_noise_and_follows_pystoi():
    pystoi = pytest.importorskip("pystoi")
    x = babble()
    mine, theirs = [], []
    for snr in (20, 5, 0, -5, -10):
        y = with_noise(x, snr)
        mine.append(correlation(y, x))
        theirs.append(pystoi.stoi(x, y, RATE))
    assert mine == sorted(mine, reverse=True), mine
    assert np.max(np.abs(np.array(mine) - np.array(theirs))) < 0.12, (mine, theirs)
    assert np.corrcoef(mine, theirs)[0, 1] > 0.95


def test_silence_around_the_speech_is_left_out():
    x = babble(2.0)
    y = with_noise(x, 0)
    hiss = [np.random.default_rng(s).standard_normal(RATE).astype(np.float32) * 1e-4 for s in range(4)]
    # a second of faint hiss (-70 dB) either side, different in reference and estimate: the frame mask drops it
    reference, estimate = np.concatenate([hiss[0], x, hiss[1]]), np.concatenate([hiss[2], y, hiss[3]])
    padded = correlation(estimate, reference)
    assert padded == pytest.approx(correlation(y, x), abs=0.04)
    unmasked = EnvelopeCorrelation(RATE, dynamic_range_db=200)(torch.from_numpy(estimate)[None], torch.from_numpy(reference)[None])
    assert float(unmasked) < padded - 0.2  # the hisses' envelopes do not correlate


def test_the_loss_gives_the_estimate_a_gradient_towards_the_reference():
    x = torch.from_numpy(babble(1.0))[None, None]
    y = torch.from_numpy(with_noise(babble(1.0), 0))[None, None].requires_grad_(True)
    loss_fn = IntelligibilityLoss(RATE)
    loss = loss_fn(y, x)
    loss.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    with torch.no_grad():  # a small step against the gradient lowers the loss
        stepped = y - 1e-2 * y.grad / y.grad.norm() * y.norm()
    assert float(loss_fn(stepped, x)) < float(loss.detach())


def test_batches_and_short_crops():
    x = torch.stack([torch.from_numpy(babble(1.0, seed=s)) for s in range(3)])[:, None]
    per_item = EnvelopeCorrelation(RATE)(x, x)
    assert per_item.shape == (3,)
    short = x[..., : RATE // 5]  # 0.2 s: fewer frames than one 384 ms segment
    assert torch.allclose(EnvelopeCorrelation(RATE)(short, short), torch.ones(3), atol=1e-4)
    with pytest.raises(ValueError, match="shapes differ"):
        EnvelopeCorrelation(RATE)(x, x[..., :-1])


def test_bands_are_stois_and_refuse_rates_that_cannot_hold_them():
    bands = third_octave_bands(RATE, 1024)
    assert bands.shape == (15, 513)
    assert bool((bands.sum(0) <= 1).all())  # no bin in two bands
    freqs = torch.arange(513) * RATE / 1024
    used = freqs[bands.sum(0) > 0]
    assert 130 < float(used.min()) < 150 and 4200 < float(used.max()) < 4300  # 150 .. 3810 Hz centres
    with pytest.raises(ValueError, match="Nyquist"):
        third_octave_bands(8000, 512)


def test_silent_and_zero_inputs_give_finite_gradients():
    x = torch.from_numpy(babble(1.0))[None, None]
    silent = torch.zeros_like(x)
    for estimate, reference in ((silent.clone().requires_grad_(True), x), (x.clone().requires_grad_(True), silent),
                                (silent.clone().requires_grad_(True), silent)):
        loss = IntelligibilityLoss(RATE)(estimate, reference)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(estimate.grad).all()
