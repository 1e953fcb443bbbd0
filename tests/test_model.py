"""Tests for catcodec.modeling_cat.CATModel and CATConfig: shapes, bitrates, causality, padded batches,
input validation, save/load round trips, Auto-class registration and the training forward."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoConfig, AutoModelForAudioTokenization

from catcodec import CATConfig, CATModel
from catcodec.modeling_cat import CATDecoderOutput, CATEncoderOutput

pytestmark = pytest.mark.usefixtures("single_thread")


# ---- shapes and bitrates -----------------------------------------------------------------------
@pytest.mark.parametrize("num_samples", [320, 321, 1000, 6400, 16000 + 1])
def test_encode_decode_shapes(model, signal, num_samples):
    hop = model.config.hop_length
    assert hop == 320
    x = signal(num_samples, batch=2)
    with torch.no_grad():
        enc = model.encode(x)
        assert isinstance(enc, CATEncoderOutput)
        frames = math.ceil(num_samples / hop)
        assert enc.audio_codes.shape == (2, 8, frames)
        assert enc.audio_codes.dtype == torch.long
        assert 0 <= int(enc.audio_codes.min()) and int(enc.audio_codes.max()) < 64
        assert enc.code_lengths.tolist() == [frames, frames]
        assert model.num_frames(num_samples) == frames
        dec = model.decode(enc.audio_codes)
        assert isinstance(dec, CATDecoderOutput)
        assert dec.audio_values.shape == (2, 1, frames * hop)
        assert dec.audio_values.dtype == torch.float32
        assert torch.isfinite(dec.audio_values).all()
        assert dec.audio_lengths.tolist() == [frames * hop] * 2


def test_return_dict_false_gives_tuples(model, signal):
    x = signal(1000)
    with torch.no_grad():
        codes, lengths = model.encode(x, return_dict=False)
        assert codes.shape == (1, 8, 4) and lengths.tolist() == [4]
        audio, audio_lengths = model.decode(codes, return_dict=False)
        assert audio.shape == (1, 1, 1280) and audio_lengths.tolist() == [1280]


def test_every_num_quantizers_works(model, signal):
    x = signal(3200)
    with torch.no_grad():
        full = model.encode(x).audio_codes
        audios = []
        for n in range(1, 9):
            codes = model.encode(x, num_quantizers=n).audio_codes
            assert codes.shape == (1, n, 10)
            assert torch.equal(codes, full[:, :n])
            audio = model.decode(codes).audio_values
            assert audio.shape == (1, 1, 3200)
            audios.append(audio)
    for a, b in zip(audios, audios[1:]):
        assert not torch.equal(a, b)


@pytest.mark.parametrize("bad", [0, 9, -1, 2.5])
def test_out_of_range_num_quantizers(model, signal, bad):
    with pytest.raises(ValueError, match=r"1\.\.8"):
        model.encode(signal(640), num_quantizers=bad)
    with pytest.raises(ValueError, match=r"1\.\.8"):
        model(signal(640), num_quantizers=bad)


def test_decode_rejects_bad_codes(model):
    with pytest.raises(ValueError, match=r"1\.\.8"):
        model.decode(torch.zeros(1, 9, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"0\.\.63"):
        model.decode(torch.full((1, 2, 3), 64, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        model.decode(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="frames"):
        model.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="no frames"):
        model.decode(torch.zeros(1, 2, 0, dtype=torch.long))


def test_tiny_bitrate(tiny_config):
    assert tiny_config.hop_length == 320
    assert tiny_config.frame_rate == 50.0
    assert tiny_config.bits_per_code == 6.0
    for n in range(1, 9):
        assert tiny_config.bitrate(n) == 50 * n * 6
    assert tiny_config.bitrate() == 50 * 8 * 6
    assert [tiny_config.window_tokens(i) for i in range(4)] == [200, 100, 50, 25]
    assert tiny_config.encoder_input_dims == [40, 32, 32, 48]
    assert [tiny_config.tokens_per_frame(i) for i in range(4)] == [8, 4, 2, 1]


# ---- causality ---------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 13, 26, 37])
def test_encoder_is_causal(model, signal, k):
    hop = model.config.hop_length
    x = signal(40 * hop, seed=3)
    x2 = x.clone()
    x2[..., k * hop :] = torch.randn(1, 1, (40 - k) * hop) * 0.9
    with torch.no_grad():
        a = model.encode(x).audio_codes
        b = model.encode(x2).audio_codes
    assert torch.equal(a[..., :k], b[..., :k])
    assert not torch.equal(a[..., k:], b[..., k:])


@pytest.mark.parametrize("k", [1, 13, 26, 37])
def test_decoder_is_causal(model, k):
    hop = model.config.hop_length
    g = torch.Generator().manual_seed(k)
    codes = torch.randint(0, 64, (1, 8, 40), generator=g)
    codes2 = codes.clone()
    codes2[..., k:] = torch.randint(0, 64, (1, 8, 40 - k), generator=g)
    with torch.no_grad():
        a = model.decode(codes).audio_values
        b = model.decode(codes2).audio_values
    torch.testing.assert_close(a[..., : k * hop], b[..., : k * hop], atol=1e-6, rtol=0)
    assert (a[..., k * hop :] - b[..., k * hop :]).abs().max() > 1e-4


# ---- padded batches ------------------------------------------------------------------------------
def test_padded_batch_equals_items_one_by_one(model, signal):
    rate, hop = 16000, model.config.hop_length
    lengths = [int(1.0 * rate), int(0.37 * rate), int(0.8 * rate)]
    items = [signal(n, seed=10 + i) for i, n in enumerate(lengths)]
    t = max(lengths)
    g = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 1, t, generator=g) * 1000.0  # huge junk in the padding: must be ignored
    mask = torch.zeros(3, t, dtype=torch.long)
    for i, (x, n) in enumerate(zip(items, lengths)):
        batch[i, :, :n] = x[0]
        mask[i, :n] = 1
    with torch.no_grad():
        enc = model.encode(batch, padding_mask=mask)
        frames = [math.ceil(n / hop) for n in lengths]
        assert enc.audio_codes.shape == (3, 8, max(frames))
        assert enc.code_lengths.tolist() == frames
        dec = model.decode(enc.audio_codes, enc.code_lengths)
        assert dec.audio_lengths.tolist() == [f * hop for f in frames]
        for i, (x, f) in enumerate(zip(items, frames)):
            alone = model.encode(x).audio_codes
            assert alone.shape == (1, 8, f)
            assert torch.equal(enc.audio_codes[i, :, :f], alone[0])
            alone_audio = model.decode(alone).audio_values
            torch.testing.assert_close(dec.audio_values[i, :, : f * hop], alone_audio[0], atol=1e-5, rtol=0)
            assert torch.all(dec.audio_values[i, :, f * hop :] == 0)
        # [B, 1, T] masks are accepted too
        enc3 = model.encode(batch, padding_mask=mask[:, None, :].bool())
        assert torch.equal(enc3.audio_codes, enc.audio_codes)


# ---- bad inputs ----------------------------------------------------------------------------------
def test_rejects_stereo(model):
    with pytest.raises(ValueError, match="mono") as info:
        model.encode(torch.zeros(2, 2, 640))
    assert "2 channels" in str(info.value)


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: torch.zeros(1, 640), ValueError, r"\[batch, 1, samples\]"),
        (lambda: torch.zeros(640), ValueError, r"\[batch, 1, samples\]"),
        (lambda: torch.zeros(1, 1, 0), ValueError, "empty"),
        (lambda: torch.zeros(0, 1, 640), ValueError, "empty"),
        (lambda: torch.tensor([[[0.0, float("nan"), 0.0]]]), ValueError, "NaN"),
        (lambda: torch.tensor([[[0.0, float("inf"), 0.0]]]), ValueError, "infinite"),
        (lambda: torch.zeros(1, 1, 640, dtype=torch.int16), TypeError, "floating point"),
        (lambda: [[0.0] * 640], TypeError, "torch.Tensor"),
    ],
)
def test_rejects_bad_input_values(model, make, exc, match):
    with pytest.raises(exc, match=match):
        model.encode(make())


def test_rejects_wrong_sampling_rate(model, signal):
    with pytest.raises(ValueError, match="16000 Hz") as info:
        model.encode(signal(640), sampling_rate=24000)
    assert "24000" in str(info.value)
    assert model.encode(signal(640), sampling_rate=16000).audio_codes.shape == (1, 8, 2)


def test_rejects_bad_padding_masks(model, signal):
    x = signal(640, batch=2)
    hole = torch.ones(2, 640, dtype=torch.long)
    hole[0, 100:200] = 0  # a gap, then real samples again: not right padding
    with pytest.raises(ValueError, match="prefix"):
        model.encode(x, padding_mask=hole)
    left = torch.ones(2, 640, dtype=torch.long)
    left[1, :50] = 0  # left padding
    with pytest.raises(ValueError, match="prefix"):
        model.encode(x, padding_mask=left)
    with pytest.raises(ValueError, match="600"):
        model.encode(x, padding_mask=torch.ones(2, 600))
    empty_item = torch.ones(2, 640)
    empty_item[1] = 0
    with pytest.raises(ValueError, match="no samples"):
        model.encode(x, padding_mask=empty_item)


# ---- save / load -----------------------------------------------------------------------------------
def test_save_and_load_round_trip(model, signal, tmp_path):
    folder = tmp_path / "cat"
    model.save_pretrained(folder)
    assert (folder / "config.json").is_file()
    loaded = CATModel.from_pretrained(folder)
    assert isinstance(loaded, CATModel) and not loaded.training
    assert loaded.weights_source == str(folder)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert loaded.config.architecture_hash() == model.config.architecture_hash()
    assert loaded.config.stage_dims == [32, 32, 32, 48]
    x = signal(5000)
    with torch.no_grad():
        c1, c2 = model.encode(x).audio_codes, loaded.encode(x).audio_codes
        assert torch.equal(c1, c2)
        assert torch.equal(model.decode(c1).audio_values, loaded.decode(c2).audio_values)


def test_auto_classes_resolve(model, tmp_path):
    model.save_pretrained(tmp_path)
    auto = AutoModelForAudioTokenization.from_pretrained(tmp_path)
    assert type(auto) is CATModel
    for name, p in model.state_dict().items():
        assert torch.equal(p, auto.state_dict()[name]), name
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(cfg, CATConfig)
    assert cfg.model_type == "cat"
    assert cfg.hop_length == 320 and cfg.num_quantizers == 8


def test_from_pretrained_rejects_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        CATModel.from_pretrained(tmp_path)


# ---- config --------------------------------------------------------------------------------------
def test_architecture_hash(make_config):
    base = make_config()
    h = base.architecture_hash()
    assert len(h) == 16 and int(h, 16) >= 0
    assert make_config().architecture_hash() == h  # deterministic
    for field, value in [
        ("patch_size", 80),
        ("num_quantizers", 4),
        ("codebook_size", 128),
        ("stage_layers", [1, 1, 1, 3]),
        ("attention_window_seconds", 1.0),
        ("rope_theta", 500.0),
        ("sampling_rate", 24000),
    ]:
        assert make_config(**{field: value}).architecture_hash() != h, field
    for field, value in [
        ("quantizer_dropout", 0.0),
        ("commitment_loss_weight", 1.0),
        ("initializer_range", 0.1),
        ("layer_scale_init", 0.5),
    ]:
        assert make_config(**{field: value}).architecture_hash() == h, field


def test_decoder_sizes_mirror_encoder_by_default(make_config):
    cfg = make_config()
    assert cfg.decoder_stage_dims == cfg.stage_dims == [32, 32, 32, 48]
    assert cfg.decoder_stage_layers == [1, 1, 1, 2]
    own = make_config(decoder_stage_dims=[64, 32, 32, 48])
    assert own.decoder_stage_dims == [64, 32, 32, 48] and own.stage_dims == [32, 32, 32, 48]
    assert own.architecture_hash() != cfg.architecture_hash()


# ---- training forward ----------------------------------------------------------------------------
def test_forward_in_train_mode(make_model, signal):
    model = make_model(quantizer_dropout=0.5).train()
    x = signal(5000, batch=2)  # not a whole number of frames
    out = model(x)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and out.loss.requires_grad
    assert out.loss.item() > 0
    expected = 0.25 * out.commitment_loss + 1.0 * out.codebook_loss
    torch.testing.assert_close(out.loss, expected)
    assert out.audio_values.shape == (2, 1, 5000)
    assert out.audio_codes.shape == (2, 8, 16)
    assert out.code_lengths.tolist() == [16, 16]
    assert out.quantized_representation.shape == (2, 16, 32)
    assert out.encoder_latents.shape == (2, 16, 32)
    (out.loss + out.audio_values.pow(2).mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []  # every parameter takes part (DDP unused-parameter safety)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_forward_eval_agrees_with_encode(model, signal):
    x = signal(3000)
    with torch.no_grad():
        out = model(x)
        codes = model.encode(x).audio_codes
        tup = model(x, return_dict=False)
    assert out.audio_values.shape == (1, 1, 3000)
    assert torch.equal(out.audio_codes[:, 0], codes[:, 0])  # first layer sees identical input
    assert torch.equal(tup[1], out.audio_values)
