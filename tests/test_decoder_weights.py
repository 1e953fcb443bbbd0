"""A codec decoder saved on its own and put into another model with the same codes (catcodec.decoder_weights),
and the TTS pipeline that loads the decoder its model folder ships."""

from __future__ import annotations

import pytest
import torch

from catcodec import CATConfig, CATModel
from catcodec.decoder_weights import DECODER_FILE, load_decoder_weights, save_decoder_weights
from catcodec.export import main as export_main
from tests.helpers.tiny import TINY
from tts.configuration_tts import CATTTSConfig
from tts.modeling_tts import CATTTSModel
from tts.pipeline import CODEC_DIR, TTSPipeline
from tts.text import CharTokenizer


def _pair() -> tuple[CATModel, CATModel]:
    """Two codecs with the same encoder and quantizer (same codes) and different decoders."""
    torch.manual_seed(0)
    a = CATModel(CATConfig(**TINY)).eval()
    b = CATModel(CATConfig(**TINY)).eval()
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("decoder.")}, strict=False)
    assert a.codes_fingerprint() == b.codes_fingerprint()
    return a, b


def _save_tiny_tts(folder, codec_name, codes_id: str) -> None:
    """A tiny untrained CAT-TTS that names `codec_name` and was "trained" on the codes `codes_id`, saved to `folder`."""
    CATTTSModel(CATTTSConfig(num_quantizers=3, codebook_size=TINY["codebook_size"], hidden_size=32, num_layers=1,
                             num_heads=2, intermediate_size=64, depth_hidden_size=32, depth_num_layers=1,
                             depth_num_heads=2, depth_intermediate_size=64, max_positions=256,
                             codec_name=str(codec_name), codec_weights_id=codes_id,
                             text_vocab_size=CharTokenizer().vocab_size)).save_pretrained(folder)


def _decode(model: CATModel, codes: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.decode(codes).audio_values


def test_decoder_moves_between_codecs_with_the_same_codes(tmp_path):
    a, b = _pair()
    wav = torch.randn(1, 1, 16000) * 0.1
    with torch.no_grad():
        codes = a.encode(wav, num_quantizers=4).audio_codes
    assert not torch.allclose(_decode(a, codes), _decode(b, codes))
    encoder_before = {k: v.clone() for k, v in b.state_dict().items() if not k.startswith("decoder.")}
    path = save_decoder_weights(a, tmp_path / DECODER_FILE, dtype=torch.float32)
    load_decoder_weights(b, path)
    assert torch.equal(_decode(a, codes), _decode(b, codes))  # the same decoder now: the same audio
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in encoder_before.items())  # nothing else touched
    # bf16 (the shipped form) rounds the weights: close, not equal
    save_decoder_weights(a, tmp_path / "bf16.safetensors")
    c = _pair()[1]
    load_decoder_weights(c, tmp_path / "bf16.safetensors")
    assert next(p for n, p in c.named_parameters() if n.startswith("decoder.")).dtype == torch.float32
    assert torch.allclose(_decode(a, codes), _decode(c, codes), atol=0.05)


def test_decoder_is_refused_by_a_codec_with_other_codes_or_shape(tmp_path):
    a, _ = _pair()
    path = save_decoder_weights(a, tmp_path / DECODER_FILE)
    torch.manual_seed(5)
    other = CATModel(CATConfig(**TINY))  # same shape, other encoder: the same code values mean other sounds
    with pytest.raises(ValueError, match=r"the decoder in .* was trained on the codes of codec weights .* but this codec's weights are .*: load it into the codec it was trained with"):
        load_decoder_weights(other, path)
    smaller = CATModel(CATConfig(**{**TINY, "stage_dims": [32, 32, 32, 64]}))
    with pytest.raises(ValueError, match="is for codec config"):
        load_decoder_weights(smaller, path)
    with pytest.raises(FileNotFoundError, match="no decoder weights at"):
        load_decoder_weights(a, tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_decoder_weights(a, tmp_path / "junk.safetensors")


def test_export_decoder_only(tmp_path, capsys):
    a, b = _pair()
    a.save_pretrained(tmp_path / "codec")
    assert export_main([str(tmp_path / "codec"), "--out", str(tmp_path / "out"), "--decoder-only"]) == 0
    assert f"{DECODER_FILE} " in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [DECODER_FILE]  # no config, no encoder
    with pytest.raises(SystemExit):
        export_main([str(tmp_path / "codec"), "--out", str(tmp_path / "x"), "--decoder-only", "--max-shard-mb", "5"])
    load_decoder_weights(b, tmp_path / "out" / DECODER_FILE)


def test_tts_pipeline_loads_the_decoder_its_folder_ships(tmp_path):
    a, b = _pair()
    b.save_pretrained(tmp_path / "codec")  # the codec the TTS names; `a` holds the decoder it was "tuned with"
    _save_tiny_tts(tmp_path / "tts", tmp_path / "codec", b.codes_fingerprint())
    codes = torch.randint(0, TINY["codebook_size"], (1, 3, 10))
    plain = TTSPipeline.from_pretrained(tmp_path / "tts")
    assert torch.equal(_decode(plain.codec, codes), _decode(b, codes))  # no decoder file: the codec's own

    save_decoder_weights(a, tmp_path / "tts" / DECODER_FILE, dtype=torch.float32)
    own = TTSPipeline.from_pretrained(tmp_path / "tts")
    assert torch.equal(_decode(own.codec, codes), _decode(a, codes))
    assert str(tmp_path / "tts" / DECODER_FILE) in own.codec.weights_source
    given = TTSPipeline.from_pretrained(tmp_path / "tts", codec=tmp_path / "codec")  # a codec asked for: as it is
    assert torch.equal(_decode(given.codec, codes), _decode(b, codes))


def test_export_puts_a_decoder_into_a_whole_codec(tmp_path, capsys):
    a, b = _pair()
    b.save_pretrained(tmp_path / "codec")
    save_decoder_weights(a, tmp_path / DECODER_FILE, dtype=torch.float32)
    out = tmp_path / "out"
    assert export_main([str(tmp_path / "codec"), "--out", str(out), "--decoder", str(tmp_path / DECODER_FILE),
                        "--dtype", "float32"]) == 0
    merged = CATModel.from_pretrained(out).eval()
    codes = torch.randint(0, TINY["codebook_size"], (1, 3, 10))
    assert torch.equal(_decode(merged, codes), _decode(a, codes))  # a's decoder ...
    assert merged.codes_fingerprint() == b.codes_fingerprint()  # ... on b's encoder and quantizer
    with pytest.raises(SystemExit):
        export_main([str(tmp_path / "codec"), "--out", str(tmp_path / "x"), "--decoder-only",
                     "--decoder", str(tmp_path / DECODER_FILE)])
    torch.manual_seed(5)
    CATModel(CATConfig(**TINY)).save_pretrained(tmp_path / "other")  # other codes: the decoder does not fit
    assert export_main([str(tmp_path / "other"), "--out", str(tmp_path / "y"), "--decoder", str(tmp_path / DECODER_FILE)]) == 2
    assert "was trained on the codes of codec weights" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_tts_pipeline_prefers_the_codec_its_folder_carries(tmp_path):
    """A TTS folder with its own codec/ keeps its codes when the codec its config names has moved on."""
    old, _ = _pair()
    torch.manual_seed(7)
    moved_on = CATModel(CATConfig(**TINY)).eval()  # the default codec now: other codes
    assert moved_on.codes_fingerprint() != old.codes_fingerprint()
    moved_on.save_pretrained(tmp_path / "default")
    _save_tiny_tts(tmp_path / "tts", tmp_path / "default", old.codes_fingerprint())
    with pytest.raises(ValueError, match="was trained on the codes of codec weights"):
        TTSPipeline.from_pretrained(tmp_path / "tts")  # no codec of its own: the named one, which has moved on
    old.save_pretrained(tmp_path / "tts" / CODEC_DIR)
    carried = TTSPipeline.from_pretrained(tmp_path / "tts")
    codes = torch.randint(0, TINY["codebook_size"], (1, 3, 10))
    assert carried.codec.codes_fingerprint() == old.codes_fingerprint()
    assert torch.equal(_decode(carried.codec, codes), _decode(old, codes))
    with pytest.raises(ValueError, match="was trained on the codes of codec weights"):
        TTSPipeline.from_pretrained(tmp_path / "tts", codec=tmp_path / "default")  # asked for: used as it is
    moved_on.save_pretrained(tmp_path / "tts" / CODEC_DIR)  # a stale codec/ left by an export over the folder
    with pytest.raises(ValueError, match=r"the codec in .*codec.* is not the one it was trained with"):
        TTSPipeline.from_pretrained(tmp_path / "tts")
