"""The causal inverse-STFT output head: exact reconstruction from a known STFT, causal streaming, config checks."""

from __future__ import annotations

import pytest
import torch

from catcodec.modules.istft_head import MAX_MAGNITUDE, ISTFTHead

pytestmark = pytest.mark.usefixtures("single_thread")


def _causal_stft(x: torch.Tensor, n_fft: int, hop: int, frames: int) -> torch.Tensor:
    """Frame t of x [T] windowed over [t * hop, t * hop + n_fft), as the head's input [1, frames, 2 * bins]."""
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    segments = torch.stack([x[t * hop : t * hop + n_fft] for t in range(frames)])
    spec = torch.fft.rfft(segments.double() * window, dim=-1)
    return torch.cat([spec.abs().clamp(min=1e-12).log(), spec.angle()], dim=-1)[None].float()


@pytest.mark.parametrize("n_fft", [80, 160])
def test_reconstructs_the_signal_its_stft_came_from(signal, n_fft):
    hop, frames = 40, 30
    x = signal((frames + n_fft // hop) * hop, seed=3)[0, 0]
    head = ISTFTHead(n_fft, hop)
    y = head(_causal_stft(x, n_fft, hop, frames))
    assert y.shape == (1, 1, frames * hop)
    settled = (n_fft // hop - 1) * hop  # before this, fewer frames overlap: the stream fades in
    assert torch.allclose(y[0, 0, settled:], x[settled : frames * hop], atol=1e-5)
    assert y[0, 0, :settled].abs().max() <= x[:settled].abs().max() + 1e-5  # faded in, never amplified


def test_streaming_frame_by_frame_equals_offline():
    torch.manual_seed(0)
    head = ISTFTHead(160, 40)
    x = torch.randn(2, 23, head.input_dim)
    offline = head(x)
    with torch.no_grad():
        from catcodec.modules.streaming import streaming

        with streaming(head, batch_size=2):
            pieces = [head(x[:, s : s + n]) for s, n in ((0, 1), (1, 1), (2, 5), (7, 16))]
    assert head._streaming_state is None  # the tail is dropped when the stream ends
    assert torch.allclose(torch.cat(pieces, -1), offline, atol=1e-6)


def test_causal_a_later_frame_never_changes_earlier_samples():
    torch.manual_seed(1)
    head = ISTFTHead(160, 40)
    x = torch.randn(1, 10, head.input_dim)
    y = head(x)
    x2 = x.clone()
    x2[:, 6:] += 3.0
    y2 = head(x2)
    assert torch.equal(y[..., : 6 * 40], y2[..., : 6 * 40])
    assert not torch.allclose(y[..., 6 * 40 :], y2[..., 6 * 40 :])


def test_magnitude_is_clipped():
    head = ISTFTHead(80, 40)
    loud = torch.zeros(1, 4, head.input_dim)
    loud[..., : head.num_bins] = 50.0  # exp(50) would overflow the mix
    y = head(loud)
    assert torch.isfinite(y).all()
    assert y.abs().max() <= MAX_MAGNITUDE * head.num_bins


def test_bad_sizes_are_refused(make_config):
    with pytest.raises(ValueError, match="at least twice"):
        ISTFTHead(40, 40)
    with pytest.raises(ValueError, match="istft_n_fft = 100 must be a multiple of patch_size"):
        make_config(output_head="istft", istft_n_fft=100)
    with pytest.raises(ValueError, match="output_head must be 'patch' or 'istft'"):
        make_config(output_head="mel")


def test_model_with_istft_head(make_model, make_config, signal):
    patch_model = make_model()
    model = make_model(output_head="istft")
    assert model.config.istft_window == 4 * model.config.patch_size
    assert model.decoder.stages[0].output_proj.out_features == 2 * (model.config.istft_window // 2 + 1)
    x = signal(3200)
    with torch.no_grad():
        y = model(x).audio_values
    assert y.shape == x.shape and torch.isfinite(y).all()
    # the head is part of what codes decode to, so the hash differs; the patch head's hash is the one
    # computed before the field existed (only set fields are hashed)
    assert model.config.architecture_hash() != patch_model.config.architecture_hash()
    cfg = make_config()
    assert cfg.architecture_hash() == make_config(output_head="patch", istft_n_fft=None).architecture_hash()


def test_saved_and_loaded_model_decodes_the_same(tmp_path, make_model, signal):
    from catcodec import CATModel

    model = make_model(output_head="istft")
    model.save_pretrained(tmp_path / "m")
    loaded = CATModel.from_pretrained(tmp_path / "m")
    x = signal(3200)
    with torch.no_grad():
        codes = model.encode(x).audio_codes
        assert torch.equal(loaded.encode(x).audio_codes, codes)
        y, y_loaded = model.decode(codes).audio_values, loaded.decode(codes).audio_values
    assert torch.isfinite(y_loaded).all() and torch.allclose(y_loaded, y, atol=1e-6)
