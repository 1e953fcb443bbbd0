"""Shared fixtures: a tiny CAT config/model (fp32, eval, seeded) and synthetic test signals.

Tiny config: 16 kHz, 40-sample patches, 4 stages -> hop 320 samples (50 frames/s); a 0.5 s attention
window is 200 / 100 / 50 / 25 tokens at the four stage rates, i.e. 25 frames, so a few-second signal
crosses every window and fills every streaming ring buffer.
"""

from __future__ import annotations

import math

import pytest
import torch

import catcodec  # noqa: F401  (registers the Auto classes)
from catcodec import CATConfig, CATModel

from helpers.tiny import TINY  # noqa: E402  (the shared tiny configuration)


def _tiny_config(**overrides) -> CATConfig:
    return CATConfig(**{**TINY, **overrides})


def _tiny_model(seed: int = 0, **overrides) -> CATModel:
    torch.manual_seed(seed)
    return CATModel(_tiny_config(**overrides)).float().eval()


@pytest.fixture
def single_thread():
    """Run a test on one intra-op thread. The tiny models gain nothing from more, and with two OpenMP
    threads on two cores a busy neighbour process can slow these tests down ten-fold."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def make_config():
    """Factory: the tiny CATConfig with optional field overrides."""
    return _tiny_config


@pytest.fixture
def tiny_config() -> CATConfig:
    return _tiny_config()


@pytest.fixture
def make_model():
    """Factory: a freshly initialised tiny CATModel (seeded, fp32, eval mode)."""
    return _tiny_model


@pytest.fixture
def model() -> CATModel:
    return _tiny_model()


def _signal(num_samples: int, seed: int = 0, batch: int = 1, kind: str = "mix", rate: int = 16000) -> torch.Tensor:
    """[batch, 1, num_samples] float32 test signal: white noise, a chirp, or both, amplitude < 1."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(num_samples, dtype=torch.float64) / rate
    out = []
    for b in range(batch):
        f0 = 100.0 + 200.0 * b
        f1 = 4000.0
        dur = max(num_samples / rate, 1e-3)
        phase = 2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur))
        chirp = 0.4 * torch.sin(phase)
        noise = 0.2 * torch.randn(num_samples, generator=g, dtype=torch.float64)
        sig = {"noise": noise, "chirp": chirp, "mix": chirp + noise}[kind]
        out.append(sig)
    return torch.stack(out)[:, None, :].float()


@pytest.fixture
def signal():
    """Factory: signal(num_samples, seed=0, batch=1, kind='mix') -> [batch, 1, num_samples]."""
    return _signal
