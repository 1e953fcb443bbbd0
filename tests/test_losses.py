"""catcodec.discriminators and catcodec.losses: shapes, known loss values, gradient flow, weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils import parametrize

from catcodec.discriminators import (
    CodecDiscriminator,
    ComplexSTFTDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleSTFTDiscriminator,
    PeriodDiscriminator,
)
from catcodec.losses import (
    CodecLossWeights,
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

pytestmark = pytest.mark.usefixtures("single_thread")

RATE = 16000
PERIODS = (2, 3, 5, 7, 11)
WINDOWS = (2048, 1024, 512)


def _sine(num_samples: int, freq: float = 440.0, batch: int = 1) -> torch.Tensor:
    t = torch.arange(num_samples) / RATE
    return (0.5 * torch.sin(2 * math.pi * freq * t)).expand(batch, 1, num_samples).clone()


def _noise(num_samples: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(batch, 1, num_samples, generator=g)


def _outputs(logits: list[torch.Tensor], features: list[list[torch.Tensor]] | None = None):
    """Hand-made discriminator output list."""
    features = features or [[torch.zeros(1)] for _ in logits]
    return list(zip(logits, features))


# --- mel reconstruction loss (re-exported from catcodec.mel) ---


def test_mel_loss_identical_and_different():
    loss = MultiScaleMelLoss(RATE)
    x, y = _sine(4000), _noise(4000)
    assert loss(x, x.clone()).item() == 0.0
    assert loss(x, y).item() > 0.0


# --- discriminators ---


@pytest.mark.parametrize("num_samples", [16000, 12345])
def test_discriminator_shapes(num_samples):
    torch.manual_seed(0)
    disc = CodecDiscriminator(PERIODS, WINDOWS, width=4)
    wav = _noise(num_samples, batch=2)
    outputs = disc(wav)
    assert len(outputs) == len(PERIODS) + len(WINDOWS)
    for period, (logits, feats) in zip(PERIODS, outputs[: len(PERIODS)]):
        rows = math.ceil(num_samples / period)
        for _ in range(4):  # four stride-3 convs, 'same' padding
            rows = math.ceil(rows / 3)
        assert logits.shape == (2, 1, rows, period)
        assert len(feats) == 5
        assert [f.shape[1] for f in feats] == [4, 16, 64, 128, 128]
        assert all(f.shape[0] == 2 and f.shape[-1] == period for f in feats)
    for window, (logits, feats) in zip(WINDOWS, outputs[len(PERIODS) :]):
        frames = num_samples // (window // 4) + 1  # centred STFT frames
        freq = window // 2 + 1
        for _ in range(3):  # three frequency-stride-2 convs
            freq = math.ceil(freq / 2)
        assert logits.shape == (2, 1, frames, freq)
        assert len(feats) == 5
        assert all(f.shape[:3] == (2, 4, frames) for f in feats)
        assert torch.isfinite(logits).all()


def test_sub_discriminators_standalone_and_width():
    wav = _noise(3000)
    logits, feats = PeriodDiscriminator(3, width=2)(wav)
    assert logits.shape[-1] == 3 and len(feats) == 5
    assert len(MultiPeriodDiscriminator((2, 3), width=2)(wav)) == 2
    stft = ComplexSTFTDiscriminator(256, 64, width=2)
    assert stft.spectrogram(wav).shape == (1, 2, 3000 // 64 + 1, 129)
    assert len(MultiScaleSTFTDiscriminator((256, 128), width=2)(wav)) == 2
    small = sum(p.numel() for p in CodecDiscriminator(width=4).parameters())
    large = sum(p.numel() for p in CodecDiscriminator(width=8).parameters())
    assert 3.5 * small < large < 4.5 * small  # parameters grow ~ width^2
    with pytest.raises(ValueError):
        CodecDiscriminator(periods=(), stft_windows=())
    with pytest.raises(ValueError, match="waveform"):
        CodecDiscriminator(width=2)(torch.zeros(1, 3000))


def test_weight_norm_applied():
    disc = CodecDiscriminator(width=2)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6 * len(PERIODS) + 6 * len(WINDOWS)
    for conv in convs:
        assert parametrize.is_parametrized(conv, "weight")
        assert hasattr(conv.parametrizations.weight, "original0")  # weight_norm's g
        assert hasattr(conv.parametrizations.weight, "original1")  # weight_norm's v


# --- adversarial losses ---


def test_discriminator_loss_known_values():
    shapes = [(2, 1, 7, 3), (2, 1, 5, 9)]
    ones = _outputs([torch.ones(s) for s in shapes])
    zeros = _outputs([torch.zeros(s) for s in shapes])
    halves = _outputs([torch.full(s, 0.5) for s in shapes])
    assert discriminator_loss(ones, zeros).item() == 0.0
    assert discriminator_loss(halves, halves).item() == pytest.approx(2 * (0.25 + 0.25))
    assert discriminator_loss(zeros, ones).item() == pytest.approx(2 * (1.0 + 1.0))
    with pytest.raises(ValueError):
        discriminator_loss(ones, ones[:1])


def test_generator_loss_known_values():
    shapes = [(2, 1, 7, 3), (2, 1, 5, 9), (1, 1, 4, 4)]
    assert generator_adversarial_loss(_outputs([torch.ones(s) for s in shapes])).item() == 0.0
    assert generator_adversarial_loss(_outputs([torch.zeros(s) for s in shapes])).item() == pytest.approx(3.0)
    assert generator_adversarial_loss(_outputs([torch.full(s, 0.5) for s in shapes])).item() == pytest.approx(0.75)
    mixed = _outputs([torch.tensor([[-1.0, 1.0]])])  # (1 - -1)^2 = 4 and 0 -> mean 2
    assert generator_adversarial_loss(mixed).item() == pytest.approx(2.0)


# --- feature matching ---


def test_feature_matching_values():
    g = torch.Generator().manual_seed(0)
    feats = [[torch.randn(2, 4, 10, 3, generator=g) for _ in range(3)] for _ in range(2)]
    logits = [torch.zeros(1), torch.zeros(1)]
    real = _outputs(logits, feats)
    same = _outputs(logits, [[f.clone() for f in layer] for layer in feats])
    assert feature_matching_loss(real, same).item() == 0.0
    # fake = 0 everywhere -> every layer's relative error is exactly 1
    zero = _outputs(logits, [[torch.zeros_like(f) for f in layer] for layer in feats])
    assert feature_matching_loss(real, zero).item() == pytest.approx(2.0)
    assert feature_matching_loss(real, zero, reduction="mean").item() == pytest.approx(1.0)
    # relative: scaling both real and fake by the same factor changes nothing
    noisy = _outputs(logits, [[f + 0.1 * torch.randn(f.shape, generator=g) for f in layer] for layer in feats])
    base = feature_matching_loss(real, noisy).item()
    assert base > 0.0
    scaled_real = _outputs(logits, [[10 * f for f in layer] for layer in feats])
    scaled_fake = _outputs(logits, [[10 * f for f in layer] for _, layer in noisy])
    assert feature_matching_loss(scaled_real, scaled_fake).item() == pytest.approx(base, rel=1e-5)


def test_feature_matching_gradient_skips_real():
    g = torch.Generator().manual_seed(1)
    real_feats = [torch.randn(2, 3, 5, generator=g, requires_grad=True) for _ in range(2)]
    fake_feats = [torch.randn(2, 3, 5, generator=g, requires_grad=True) for _ in range(2)]
    real = _outputs([torch.zeros(1)], [real_feats])
    fake = _outputs([torch.zeros(1)], [fake_feats])
    feature_matching_loss(real, fake).backward()
    assert all(f.grad is None for f in real_feats)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in fake_feats)


def test_end_to_end_gradient_flow():
    """Generator-side losses reach the fake audio; the discriminator loss on detached fakes does not."""
    torch.manual_seed(0)
    disc = CodecDiscriminator((2, 3), (512,), width=2)
    real = _sine(2000)
    fake = _noise(2000).requires_grad_(True)
    real_out, fake_out = disc(real), disc(fake)
    (generator_adversarial_loss(fake_out) + feature_matching_loss(real_out, fake_out)).backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    fake.grad = None
    discriminator_loss(disc(real), disc(fake.detach())).backward()
    assert fake.grad is None


def test_discriminator_training_lowers_its_loss():
    torch.manual_seed(0)
    disc = CodecDiscriminator((2, 3, 5), (512, 256), width=4)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    real, fake = _sine(4000, batch=2), _noise(4000, batch=2)

    def loss() -> torch.Tensor:
        return discriminator_loss(disc(real), disc(fake))

    with torch.no_grad():
        before = loss().item()
    for _ in range(5):
        opt.zero_grad()
        step_loss = loss()
        step_loss.backward()
        opt.step()
    with torch.no_grad():
        after = loss().item()
    assert math.isfinite(before) and after < before


# --- weights ---


def test_loss_weights_defaults_and_from_dict():
    w = CodecLossWeights()
    assert (w.semantic, w.reconstruction, w.commitment, w.codebook, w.adversarial, w.feature) == (
        20.0,
        15.0,
        0.25,
        1.0,
        1.0,
        2.0,
    )
    assert CodecLossWeights.from_dict({}) == w
    assert CodecLossWeights.from_dict(None) == w
    custom = CodecLossWeights.from_dict({"feature": 3, "adversarial": "0.5"})
    assert custom.feature == 3.0 and custom.adversarial == 0.5 and custom.reconstruction == 15.0
    with pytest.raises(ValueError, match="bogus"):
        CodecLossWeights.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="semantic"):
        CodecLossWeights.from_dict({"semantic": "lots"})
    with pytest.raises(ValueError, match="codebook"):
        CodecLossWeights.from_dict({"codebook": -1})


def test_bf16_autocast():
    """Under bf16 autocast (the trainer's mixed precision) the STFT still runs and the losses come out fp32."""
    torch.manual_seed(0)
    disc = CodecDiscriminator((2,), (256,), width=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        real, fake = disc(_sine(2000).bfloat16()), disc(_noise(2000))
        losses = [discriminator_loss(real, fake), generator_adversarial_loss(fake), feature_matching_loss(real, fake)]
    assert all(x.dtype == torch.float32 and torch.isfinite(x) for x in losses)
