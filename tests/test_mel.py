"""catcodec.mel (multi-scale mel loss) and catcodec.metrics (mel distance, SI-SDR)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from catcodec.mel import DEFAULT_MELS, DEFAULT_WINDOWS, MelSpectrogram, MultiScaleMelLoss
from catcodec.metrics import mel_distance, si_sdr

pytestmark = pytest.mark.usefixtures("single_thread")

RATE = 16000


@pytest.fixture(scope="module")
def mel_loss() -> MultiScaleMelLoss:
    return MultiScaleMelLoss(RATE)


def test_scales(mel_loss):
    assert len(mel_loss.scales) == 7
    windows = [m.window_length for m in mel_loss.scales]
    assert windows == [32, 64, 128, 256, 512, 1024, 2048] == list(DEFAULT_WINDOWS)
    assert [m.hop_length for m in mel_loss.scales] == [w // 4 for w in windows]
    assert [m.filters.shape[0] for m in mel_loss.scales] == list(DEFAULT_MELS)
    assert [m.filters.shape[1] for m in mel_loss.scales] == [w // 2 + 1 for w in windows]
    with pytest.raises(ValueError, match="same length"):
        MultiScaleMelLoss(RATE, window_lengths=(64, 128), n_mels=(10,))


def test_mel_spectrogram_shape():
    mel = MelSpectrogram(RATE, window_length=256, n_mels=40)
    x = torch.randn(2, 1, 1600)
    spec = mel(x)
    assert spec.shape == (2, 40, 1600 // 64 + 1)  # centred frames
    assert (spec >= 0).all()
    # a 1 kHz tone puts its energy in the mel bands around 1 kHz, not at the top
    t = torch.arange(4000) / RATE
    tone = mel(torch.sin(2 * math.pi * 1000 * t)[None]).mean(-1)[0]
    assert 5 <= int(tone.argmax()) <= 30


def test_zero_for_identical_and_positive_otherwise(mel_loss, signal):
    x = signal(8000, seed=1)
    assert float(mel_loss(x, x.clone())) == 0.0
    y = signal(8000, seed=2)
    assert float(mel_loss(x, y)) > 0.1
    # symmetric
    assert abs(float(mel_loss(x, y)) - float(mel_loss(y, x))) < 1e-5


def test_grows_with_noise_level(mel_loss, signal):
    x = signal(8000, seed=3, kind="chirp")
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    losses = [float(mel_loss(x + level * noise, x)) for level in (0.001, 0.01, 0.1)]
    assert 0 < losses[0] < losses[1] < losses[2], losses


def test_differentiable(mel_loss, signal):
    x = signal(4000, seed=4)
    est = (x + 0.05 * torch.randn_like(x)).requires_grad_(True)
    loss = mel_loss(est, x)
    assert loss.requires_grad
    loss.backward()
    assert est.grad is not None and torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0


def test_short_and_mismatched_inputs(mel_loss):
    x = torch.randn(1, 1, 500)  # shorter than half of the largest window
    assert math.isfinite(float(mel_loss(x, 0.5 * x))) and float(mel_loss(x, 0.5 * x)) > 0
    with pytest.raises(ValueError, match="lengths differ"):
        mel_loss(torch.zeros(1, 1, 100), torch.zeros(1, 1, 101))


def test_mel_distance_metric(signal):
    x = signal(6000, seed=5)[0, 0]
    assert mel_distance(x, x, RATE) == 0.0
    noisy = x + 0.1 * torch.randn(6000, generator=torch.Generator().manual_seed(1))
    d = mel_distance(noisy, x, RATE)
    assert d > 0
    # numpy input and trimming of padded estimates
    padded = torch.cat([noisy, torch.zeros(640)])
    assert abs(mel_distance(padded.numpy(), x.numpy(), RATE) - d) < 1e-6


def test_si_sdr_identical_and_scale_invariant(signal):
    x = signal(16000, seed=6)[0, 0]
    assert si_sdr(x, x) > 80
    assert si_sdr(2 * x, x) > 80
    assert si_sdr(0.3 * x, x) > 80
    assert si_sdr(x + 0.7, x) > 80  # DC offsets are removed
    assert si_sdr(-x, x) > 80  # a sign flip is a scaling too
    assert si_sdr(torch.zeros(16000), x) < 1  # silence explains nothing
    with pytest.raises(ValueError, match="empty"):
        si_sdr([], [])


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_si_sdr_matches_known_snr(signal, snr_db):
    x = signal(32000, seed=7)[0, 0].double()
    x = x - x.mean()
    noise = torch.randn(32000, generator=torch.Generator().manual_seed(int(snr_db)), dtype=torch.float64)
    noise = noise - noise.mean()
    noise = noise * (x.norm() / noise.norm()) * 10 ** (-snr_db / 20)
    got = si_sdr((x + noise).numpy(), x.numpy())
    assert abs(got - snr_db) < 1.0, got
    # worse noise, lower SI-SDR
    assert si_sdr((x + 2 * noise).numpy(), np.asarray(x)) < got
