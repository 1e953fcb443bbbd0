"""Named presets (catcodec.presets), offline loading by name, and CATConfig validation."""

from __future__ import annotations

import pytest
import torch

from catcodec import DEFAULT_MODEL, PRESETS, CATConfig, CATModel
from catcodec.presets import bundled_weights_dir, preset_config, resolve_model_path

pytestmark = pytest.mark.usefixtures("single_thread")


def _num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_preset_names():
    assert set(PRESETS) == {"cat-reference-24k", "cat-small-16k"}
    assert DEFAULT_MODEL == "cat-small-16k"


def test_reference_preset_size_on_meta_device():
    cfg = preset_config("cat-reference-24k")
    assert cfg.sampling_rate == 24000 and cfg.patch_size == 240
    with torch.device("meta"):
        model = CATModel(cfg)
    assert all(p.is_meta for p in model.parameters())
    n = _num_params(model)
    assert 1.5e9 <= n <= 1.9e9, n


@pytest.mark.parametrize("name", ["cat-small-16k", "cat-reference-24k"])
def test_preset_rates(name):
    cfg = preset_config(name)
    assert cfg.frame_rate == 12.5
    assert cfg.hop_length * 12.5 == cfg.sampling_rate
    assert cfg.codebook_size == 1024 and cfg.num_quantizers == 32
    assert cfg.bitrate(1) == 125.0
    assert cfg.bitrate(32) == 4000.0
    assert cfg.bitrate() == 4000.0
    # stage rates 100 -> 50 -> 25 -> 12.5 Hz
    assert [cfg.stage_rate(i) for i in range(cfg.num_stages)] == [100.0, 50.0, 25.0, 12.5]


def test_small_preset_size():
    cfg = preset_config("cat-small-16k")
    assert cfg.sampling_rate in (16000, 24000)
    assert cfg.frame_rate == 12.5
    with torch.device("meta"):
        model = CATModel(cfg)
    n = _num_params(model)
    assert 1e6 < n <= 30e6, n


def test_preset_overrides():
    cfg = preset_config("cat-small-16k", num_quantizers=4)
    assert cfg.num_quantizers == 4 and cfg.bitrate() == 500.0
    with pytest.raises(KeyError, match="cat-small-16k"):
        preset_config("cat-huge")
    with pytest.raises(ValueError, match=r"unknown CATConfig field\(s\) num_harmonic in"):
        preset_config("cat-small-16k", num_harmonic=0)  # misspelt: would silently keep the preset's 80


def test_load_preset_by_name_offline():
    name = "cat-small-16k"
    folder = bundled_weights_dir(name)
    a = CATModel.from_pretrained(name)
    b = CATModel.from_pretrained(name)
    assert not a.training
    assert a.config.architecture_hash() == preset_config(name).architecture_hash()
    if folder is None:
        assert "UNTRAINED" in a.weights_source
        assert name in a.weights_source
        assert resolve_model_path(name)[0] is None
    else:
        assert a.weights_source == str(folder)
        assert "UNTRAINED" not in a.weights_source
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # seeded initialisation must not disturb the caller's random stream
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    CATModel.from_pretrained(name)
    assert torch.equal(torch.rand(3), expected)


def test_unknown_name_lists_presets(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CATModel.from_pretrained("cat-does-not-exist")
    msg = str(info.value)
    for name in PRESETS:
        assert name in msg
    with pytest.raises(FileNotFoundError, match="cat-small-16k"):
        resolve_model_path(str(tmp_path / "missing"))


# ---- config validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(stage_layers=[1, 1, 1]), "stage_layers"),
        (dict(stage_heads=[2, 2]), "stage_heads"),
        (dict(stage_output_dims=[16, 16, 24, 32, 32]), "stage_output_dims"),
        (dict(decoder_stage_dims=[32, 32, 32]), "decoder_stage_dims"),
        (dict(stage_heads=[3, 2, 2, 2]), "stage_heads"),  # 32 not divisible by 3
        (dict(stage_heads=[2, 2, 2, 16]), "stage_heads"),  # 48 / 16 = 3: odd head size, RoPE needs even
        (dict(decoder_stage_heads=[2, 2, 2, 5]), "decoder_stage_heads"),
        (dict(num_quantizers=0), "num_quantizers"),
        (dict(num_quantizers=65), "num_quantizers"),
        (dict(codebook_size=1), "codebook_size"),
        (dict(quantizer_dropout=1.5), "quantizer_dropout"),
        (dict(patch_size=0), "patch_size"),
    ],
)
def test_config_validation_names_the_field(make_config, overrides, field):
    with pytest.raises(ValueError) as info:
        make_config(**overrides)
    assert field in str(info.value)


def test_config_defaults_are_the_reference_size():
    cfg = CATConfig()
    ref = preset_config("cat-reference-24k")
    assert cfg.architecture_hash() == ref.architecture_hash()
    assert cfg.hop_length == 1920 and cfg.num_stages == 4
    assert cfg.decoder_stage_dims == [768, 768, 768, 1280]


def test_bundled_weights_reconstruct_the_bundled_example():
    """The shipped weights are trained (an untrained model scores mel 11-18) and their codebooks carry detail:
    a guard against shipping a broken or mismatched export."""
    from catcodec.audio import load_audio
    from catcodec.cli import EXAMPLE_AUDIO
    from catcodec.metrics import mel_distance

    if bundled_weights_dir(DEFAULT_MODEL) is None:
        pytest.skip("no weights bundled")
    model = CATModel.from_pretrained(DEFAULT_MODEL)
    wav = load_audio(EXAMPLE_AUDIO, model.config.sampling_rate)
    x = torch.from_numpy(wav)[None, None]
    mel = {}
    with torch.no_grad():
        for n in (1, 16):
            audio = model.decode(model.encode(x, num_quantizers=n).audio_codes).audio_values
            mel[n] = mel_distance(audio.reshape(-1)[: wav.shape[-1]].numpy(), wav, model.config.sampling_rate)
    assert mel[16] < 2.9, mel
    assert mel[16] < mel[1] - 0.1, mel
