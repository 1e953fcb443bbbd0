"""Spectral-swap hybrids: known answers on signals whose differences lie in one part of the spectrum only."""

import numpy as np
import pytest
import torch

from catcodec.evaluation.spectral_swap import HYBRIDS, SwapConfig, cepstral_split, hybrids

SR = 16000


def _speechlike(seconds: float = 1.0, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A pulse train through a two-formant resonator plus a little noise: harmonics and an envelope."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.zeros(n)
    x[:: int(SR / f0)] = 1.0
    for freq, bw in ((700.0, 90.0), (1800.0, 120.0)):
        r = np.exp(-np.pi * bw / SR)
        a1, a2 = -2 * r * np.cos(2 * np.pi * freq / SR), r * r
        y = np.zeros(n)
        for i in range(n):
            y[i] = x[i] - a1 * (y[i - 1] if i else 0.0) - a2 * (y[i - 2] if i > 1 else 0.0)
        x = y
    x = x / np.abs(x).max() * 0.5
    return x + 0.003 * rng.standard_normal(n)


def _inner(x: np.ndarray, margin: int = 512) -> np.ndarray:
    return x[margin:-margin]


def test_every_hybrid_of_a_signal_with_itself_is_that_signal():
    x = _speechlike()
    out = hybrids(x, x, SR)
    assert set(out) == set(HYBRIDS)
    for name, y in out.items():
        assert y.shape == x.shape, name
        np.testing.assert_allclose(y, x, atol=1e-9, err_msg=name)


def test_a_sign_flip_is_all_phase():
    ref = _speechlike()
    out = hybrids(ref, -ref, SR)
    np.testing.assert_allclose(out["reference_phase"], ref, atol=1e-9)  # |D| = |R|, phase from R
    np.testing.assert_allclose(out["reference_magnitude"], -ref, atol=1e-9)  # magnitude was already right
    np.testing.assert_allclose(out["reference_envelope"], -ref, atol=1e-9)


def test_a_gain_is_all_magnitude_and_all_envelope():
    ref = _speechlike()
    out = hybrids(ref, 2.0 * ref, SR)
    np.testing.assert_allclose(out["reference_magnitude"], ref, atol=1e-9)
    np.testing.assert_allclose(out["reference_phase"], 2.0 * ref, atol=1e-9)
    # a constant log gain lives at quefrency 0: the envelope carries it, the fine structure does not
    np.testing.assert_allclose(out["reference_envelope"], ref, atol=1e-9)
    np.testing.assert_allclose(out["reference_fine_structure"], 2.0 * ref, atol=1e-9)


def test_band_swaps_take_each_band_from_its_side_of_the_split():
    t = np.arange(SR) / SR
    low, high = 0.3 * np.sin(2 * np.pi * 500 * t), 0.2 * np.sin(2 * np.pi * 6000 * t)
    out = hybrids(low, low + high, SR, SwapConfig(split_hz=4000.0))
    np.testing.assert_allclose(_inner(out["reference_low_band"]), _inner(low + high), atol=1e-6)
    np.testing.assert_allclose(_inner(out["reference_high_band"]), _inner(low), atol=1e-6)


def test_cepstral_split_sums_to_the_log_magnitude_and_the_fine_part_holds_the_harmonics():
    x = torch.from_numpy(_speechlike(f0=200.0))
    spec = torch.stft(x, 512, 128, window=torch.hann_window(512, dtype=torch.float64), return_complex=True)
    log_mag = torch.log(spec.abs() + 1e-12)
    env, fine = cepstral_split(log_mag, lifter_bins=24)
    torch.testing.assert_close(env + fine, log_mag)
    # the envelope varies slowly along frequency; the harmonic ripple (a peak every 200 Hz = 6.4 bins) is in
    # the fine structure, so its bin-to-bin differences are several times the envelope's
    band = slice(5, 120)  # 150 Hz .. 3.7 kHz
    ripple_env = env[band].diff(dim=0).abs().mean()
    ripple_fine = fine[band].diff(dim=0).abs().mean()
    assert ripple_fine > 3 * ripple_env


def test_the_longer_input_is_cut_to_the_shorter():
    x = _speechlike()
    out = hybrids(x, np.concatenate([x, np.zeros(1000)]), SR)
    assert all(y.shape == x.shape for y in out.values())


@pytest.mark.parametrize(
    "reference, decoded, message",
    [
        (np.zeros((2, 4000)), np.zeros(4000), "1-D"),
        (np.zeros(0), np.zeros(4000), "empty"),
        (np.full(4000, np.nan), np.zeros(4000), "NaN"),
        (np.zeros(100), np.zeros(100), "too short"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(reference, decoded, message):
    with pytest.raises(ValueError, match=message):
        hybrids(reference, decoded, SR)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="n_fft"):
        SwapConfig(n_fft=511)
    with pytest.raises(ValueError, match="positive"):
        SwapConfig(split_hz=0.0)
