"""Tests for the `.npz` codes-file format (catcodec.codes_file), without the command line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from catcodec import CATConfig, CodesFile, read_codes, write_codes
from catcodec.codes_file import FORMAT_VERSION, KEYS, CodesFileError, check_codes_for_model

from helpers.tiny import TINY  # noqa: E402  (the shared tiny configuration)
HOP = 320  # patch 40 * 2**3


def _model(**overrides) -> SimpleNamespace:
    """The codes-file functions only read `model.config`."""
    return SimpleNamespace(config=CATConfig(**{**TINY, **overrides}))


def _codes_file(model=None, name: str = "tiny", frames: int = 7, k: int = 4) -> CodesFile:
    model = model or _model()
    codes = torch.randint(0, model.config.codebook_size, (1, k, frames), generator=torch.Generator().manual_seed(0))
    return CodesFile.from_model(codes, frames * HOP - 100, model, name)


def _payload(cf: CodesFile, **changes) -> dict:
    payload = dict(
        codes=cf.codes,
        num_samples=np.int64(cf.num_samples),
        sampling_rate=np.int64(cf.sampling_rate),
        num_quantizers=np.int64(cf.num_quantizers),
        model_name=np.array(cf.model_name),
        config_hash=np.array(cf.config_hash),
        format_version=np.int64(cf.format_version),
    )
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def test_round_trip(tmp_path):
    model = _model()
    cf = _codes_file(model)
    assert cf.codes.dtype == np.int16 and cf.codes.shape == (4, 7)
    assert (cf.num_quantizers, cf.sampling_rate, cf.format_version) == (4, 16000, FORMAT_VERSION)
    assert cf.config_hash == model.config.architecture_hash()

    path = tmp_path / "sub" / "c.npz"
    write_codes(path, cf)
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.npz"]  # no temporary file left
    with np.load(path) as data:
        assert set(data.files) == set(KEYS) | {"weights_id"}
    back = read_codes(path)
    assert back == cf
    assert back.codes.dtype == np.int16
    np.testing.assert_array_equal(back.codes, cf.codes)
    check_codes_for_model(path, back, model, "tiny")  # accepted by its own model


def test_large_codebook_is_int32():
    model = _model(codebook_size=65536)
    codes = np.full((2, 3), 40000, dtype=np.int64)
    assert CodesFile.from_model(codes, 3 * HOP, model, "big").codes.dtype == np.int32


def test_missing_key(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, **_payload(_codes_file(), config_hash=None))
    with pytest.raises(CodesFileError, match="missing config_hash") as info:
        read_codes(path)
    assert "is not a catcodec codes file" in str(info.value) and str(path) in str(info.value)


def test_other_model(tmp_path):
    other = _model(codebook_size=32)
    path = tmp_path / "c.npz"
    write_codes(path, _codes_file(other, name="/models/other"))
    cf = read_codes(path)
    model = _model()
    with pytest.raises(CodesFileError) as info:
        check_codes_for_model(path, cf, model, "/models/tiny")
    message = str(info.value)
    assert "was made by model '/models/other'" in message and "not by '/models/tiny'" in message
    assert other.config.architecture_hash() in message and model.config.architecture_hash() in message
    assert message.endswith("pass --model /models/other")


def test_version_too_new(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, **_payload(_codes_file(), format_version=np.int64(FORMAT_VERSION + 1)))
    with pytest.raises(CodesFileError) as info:
        read_codes(path)
    assert str(info.value) == (
        f"'{path}' has codes format version {FORMAT_VERSION + 1}; this catcodec reads up to {FORMAT_VERSION}: upgrade catcodec"
    )


def test_write_to_a_directory(tmp_path):
    with pytest.raises(CodesFileError, match="it is a directory"):
        write_codes(tmp_path, _codes_file())


def test_codes_from_other_weights_of_the_same_architecture_are_refused(tmp_path, make_model):
    made_by, other = make_model(seed=0), make_model(seed=1)
    assert made_by.config.architecture_hash() == other.config.architecture_hash()
    assert made_by.codes_fingerprint() != other.codes_fingerprint()
    cf = _codes_file(made_by, name="run-a")
    assert cf.weights_id == made_by.codes_fingerprint()
    path = tmp_path / "c.npz"
    write_codes(path, cf)
    back = read_codes(path)
    check_codes_for_model(path, back, made_by, "run-a")
    with pytest.raises(CodesFileError, match="made by other weights .*pass --model run-a"):
        check_codes_for_model(path, back, other, "run-b")
    # a version-1 file (no weights id) is checked by its config hash only
    v1 = tmp_path / "v1.npz"
    np.savez(v1, **_payload(cf, format_version=np.int64(1)))
    old = read_codes(v1)
    assert old.weights_id == "" and old.format_version == 1
    check_codes_for_model(v1, old, other, "run-b")


def test_codes_fingerprint_follows_the_encoder_and_quantizer_weights_only(make_model):
    model = make_model(seed=0)
    first = model.codes_fingerprint()
    assert make_model(seed=0).codes_fingerprint() == first  # same weights, same id
    with torch.no_grad():
        model.decoder.stages[0].output_proj.weight.add_(1.0)
        model.quantizer.layers[0].usage.add_(0.5)  # usage statistics say nothing about what codes mean
    assert model.codes_fingerprint() == first
    with torch.no_grad():
        model.quantizer.layers[0].codebook.weight[0, 0] += 1e-3
    assert model.codes_fingerprint() != first
