"""The `.npz` codes file: what `catcodec encode` writes and `catcodec decode` reads.

A codes file is a NumPy `.npz` archive (a zip of `.npy` arrays, read with `allow_pickle=False`) that holds
everything needed to turn the codes back into audio, and to know which model may do it:

    codes           [K, frames] integer array, int16 when codebook_size <= 32768 else int32: code k of frame t
                    for each of the K residual-VQ quantizers kept (the first K of the model's)
    num_samples     int64 scalar: the input length in samples at the model rate; the decoder makes
                    frames * hop_length samples and the tail padding is cut off to restore this length
    sampling_rate   int64 scalar: the model's sampling rate, the rate `num_samples` counts at
    num_quantizers  int64 scalar: K, the number of rows of `codes` (fixes the bitrate)
    model_name      0-d string array: the preset name or the absolute folder of the model that made the codes
    config_hash     0-d string array: `CATConfig.architecture_hash()` of that model
    format_version  int64 scalar: the layout version, `FORMAT_VERSION` (now 2)
    weights_id      0-d string array (from version 2): `CATModel.codes_fingerprint()`, a hash of the encoder and
                    quantizer weights, i.e. of what the codes mean

Codes are indices into one model's codebooks and mean nothing to another model: decoding them with a model
of another architecture, or with other weights of the same one (another checkpoint), gives noise, not an
error. So every file carries its model's config hash and weights id, and `check_codes_for_model` refuses a
file whose hash or id is not the decoding model's, naming both models (the model name is there for that
message). Version-1 files, which have no weights id, are checked by the config hash only. A reader refuses files whose `format_version` is newer than the
`FORMAT_VERSION` it knows.

Everything that can go wrong with a file surfaces as a `CodesFileError` (a `ValueError`) with a one-line
message naming the file, which the command line prints as-is.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Union

import numpy as np

from .atomic import atomic_write
from .messages import quote, reason

__all__ = [
    "FORMAT_VERSION", "KEYS", "CodesFile", "CodesFileError", "check_codec_weights", "check_codes_for_model", "read_codes",
    "write_codes",
]

PathLike = Union[str, os.PathLike]

#: Version of the `.npz` codes layout written by `write_codes`; `read_codes` refuses newer files.
FORMAT_VERSION = 2
#: The arrays every codes file holds (and, from version 2, `weights_id`).
KEYS = ("codes", "num_samples", "sampling_rate", "num_quantizers", "model_name", "config_hash", "format_version")


class CodesFileError(ValueError):
    """A codes file that cannot be read, written or used with a model; the message is one line naming it."""


_q = quote
_reason = reason


def _weights_id(model) -> str:
    """`model.codes_fingerprint()`, or "" (unknown) for an object that only carries a config."""
    fingerprint = getattr(model, "codes_fingerprint", None)
    return fingerprint() if callable(fingerprint) else ""


def _other_weights(model, expected_weights_id: str) -> str | None:
    """`model`'s weights id when both it and `expected_weights_id` are known and differ, else None."""
    actual = _weights_id(model)
    return actual if expected_weights_id and actual and actual != expected_weights_id else None


def _codes_dtype(codebook_size: int) -> np.dtype:
    """The integer type codes of a codebook this size are stored as: int16 when it holds them, else int32."""
    return np.dtype(np.int16) if codebook_size <= np.iinfo(np.int16).max + 1 else np.dtype(np.int32)


@dataclass(eq=False)
class CodesFile:
    """The contents of one codes file (see the module docstring for what each field means)."""

    codes: np.ndarray  # [K, frames], int16 or int32
    num_samples: int
    sampling_rate: int
    num_quantizers: int
    model_name: str
    config_hash: str
    format_version: int = FORMAT_VERSION
    weights_id: str = ""  # "" in version-1 files: unknown

    @classmethod
    def from_model(cls, codes: Any, num_samples: int, model, model_name: str, weights_id: str | None = None) -> "CodesFile":
        """Wrap codes [K, frames] (a tensor or an array; [1, K, frames] is accepted too) made by `model`.

        The sampling rate and config hash come from `model.config`, K from the codes, and the codes are
        stored as int16 when `model.config.codebook_size` <= 32768, else int32. `model_name` is what the
        file records as the model that made them (the CLI uses the preset name or the folder's absolute path).
        `weights_id` is `model.codes_fingerprint()`, computed here unless given (pass it when writing many files).
        """
        config = model.config
        if hasattr(codes, "detach"):  # a torch tensor
            codes = codes.detach().cpu().numpy()
        codes = np.asarray(codes)
        if codes.ndim == 3 and codes.shape[0] == 1:
            codes = codes[0]
        if codes.ndim != 2:
            raise ValueError(f"codes must be [quantizers, frames] (or [1, quantizers, frames]), got shape {list(codes.shape)}")
        return cls(
            codes=codes.astype(_codes_dtype(config.codebook_size)),
            num_samples=int(num_samples),
            sampling_rate=int(config.sampling_rate),
            num_quantizers=int(codes.shape[0]),
            model_name=str(model_name),
            config_hash=config.architecture_hash(),
            weights_id=_weights_id(model) if weights_id is None else weights_id,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CodesFile):
            return NotImplemented
        return (
            self.codes.dtype == other.codes.dtype
            and np.array_equal(self.codes, other.codes)
            and all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self) if f.name != "codes")
        )


def write_codes(path: PathLike, codes_file: CodesFile) -> None:
    """Write `codes_file` to `path` (.npz) atomically: a temporary file in the same folder, then a rename."""
    out = Path(path)
    if out.is_dir():
        raise CodesFileError(f"cannot write {_q(path)}: it is a directory")
    payload = dict(
        codes=np.asarray(codes_file.codes),
        num_samples=np.int64(codes_file.num_samples),
        sampling_rate=np.int64(codes_file.sampling_rate),
        num_quantizers=np.int64(codes_file.num_quantizers),
        model_name=np.array(codes_file.model_name),
        config_hash=np.array(codes_file.config_hash),
        format_version=np.int64(codes_file.format_version),
        weights_id=np.array(codes_file.weights_id),
    )
    try:
        atomic_write(out, lambda f: np.savez(f, **payload), suffix=".npz")
    except OSError as exc:
        raise CodesFileError(f"cannot write {_q(path)}: {_reason(exc)}") from None


def read_codes(path: PathLike) -> CodesFile:
    """Read and validate the layout of a codes file (not yet against a model: see `check_codes_for_model`)."""
    p = Path(path)
    if p.is_dir():
        raise CodesFileError(f"cannot read codes file {_q(path)}: it is a directory")
    if not p.exists():
        raise CodesFileError(f"cannot read codes file {_q(path)}: file not found")
    what = f"{_q(path)} is not a catcodec codes file (.npz written by 'catcodec encode')"
    # What a truncated, garbled or foreign file makes numpy / zipfile raise.
    corrupt = (zipfile.BadZipFile, ValueError, EOFError, KeyError, zlib.error)
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise CodesFileError(f"cannot read codes file {_q(path)}: {_reason(exc)}") from None
    if not magic:
        raise CodesFileError(f"{what}: it is empty")
    if not magic.startswith(b"PK"):
        raise CodesFileError(f"{what}: it is not an .npz (zip) archive")
    try:
        data = np.load(p, allow_pickle=False)
    except corrupt as exc:
        raise CodesFileError(f"{what}: {_reason(exc)}") from None
    except OSError as exc:
        raise CodesFileError(f"cannot read codes file {_q(path)}: {_reason(exc)}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CodesFileError(f"{what}: it holds a single array, not an .npz archive")
    # CodesFileError is a ValueError, so it is raised outside the try blocks that turn ValueErrors into messages.
    try:
        with data:
            missing = [k for k in KEYS if k not in data.files]
            arrays = {} if missing else {k: data[k] for k in KEYS}
            if not missing and "weights_id" in data.files:
                arrays["weights_id"] = data["weights_id"]
    except corrupt as exc:
        raise CodesFileError(f"{what}: {_reason(exc)}") from None
    except OSError as exc:
        raise CodesFileError(f"cannot read codes file {_q(path)}: {_reason(exc)}") from None
    if missing:
        raise CodesFileError(f"{what}: missing {', '.join(missing)}")

    try:
        version = int(arrays["format_version"])
    except (TypeError, ValueError) as exc:  # a field of the wrong kind (e.g. a string where a number goes)
        raise CodesFileError(f"{what}: {_reason(exc)}") from None
    if version > FORMAT_VERSION:
        raise CodesFileError(f"{_q(path)} has codes format version {version}; this catcodec reads up to {FORMAT_VERSION}: upgrade catcodec")
    codes = arrays["codes"]
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer) or codes.shape[0] < 1 or codes.shape[1] < 1:
        raise CodesFileError(f"{what}: 'codes' must be a non-empty integer array [quantizers, frames], got {codes.dtype} {list(codes.shape)}")
    try:
        out = CodesFile(
            codes=codes,
            num_samples=int(arrays["num_samples"]),
            sampling_rate=int(arrays["sampling_rate"]),
            num_quantizers=int(arrays["num_quantizers"]),
            model_name=str(arrays["model_name"]),
            config_hash=str(arrays["config_hash"]),
            format_version=version,
            weights_id=str(arrays.get("weights_id", "")),
        )
    except (TypeError, ValueError) as exc:
        raise CodesFileError(f"{what}: {_reason(exc)}") from None
    if out.num_quantizers != codes.shape[0]:
        raise CodesFileError(f"{what}: num_quantizers is {out.num_quantizers} but 'codes' has {codes.shape[0]} rows")
    return out


RETRAIN_REMEDY = "pass the codec it was trained with, or train it again on codes from this one (catcodec tokenize re-encodes the data)"


def check_codec_weights(codec, expected_weights_id: str, what: str, remedy: str = RETRAIN_REMEDY) -> None:
    """Refuse a codec whose encoder and quantizer differ from the ones `what` (e.g. "the TTS model") was trained
    on: the same code values would mean other sounds. An empty `expected_weights_id` (not recorded) passes.
    `remedy` ends the message: what the user can do instead."""
    actual = _other_weights(codec, expected_weights_id)
    if actual is not None:
        raise ValueError(
            f"{what} was trained on the codes of codec weights {expected_weights_id}, but this codec's weights are "
            f"{actual} (another version gives the same code values other meanings): {remedy}"
        )


def check_codes_for_model(path: PathLike, codes_file: CodesFile, model, model_label: str) -> None:
    """Refuse codes that another model made, or that do not fit this model's codebooks.

    `path` names the file in messages; `model_label` names `model` (as `CodesFile.model_name` would).
    """
    config = model.config
    ours = config.architecture_hash()
    if codes_file.config_hash != ours:
        raise CodesFileError(
            f"{_q(path)} was made by model {_q(codes_file.model_name)} (config {codes_file.config_hash}), not by "
            f"{_q(model_label)} (config {ours}): pass --model {codes_file.model_name}"
        )
    weights = _other_weights(model, codes_file.weights_id)
    if weights is not None:
        raise CodesFileError(
            f"{_q(path)} was made by other weights ({_q(codes_file.model_name)}, weights {codes_file.weights_id}) than "
            f"{_q(model_label)}'s (weights {weights}), whose codebooks mean other things: "
            f"pass --model {codes_file.model_name}"
        )
    codes = codes_file.codes
    if codes.shape[0] > config.num_quantizers:
        raise CodesFileError(f"{_q(path)} has {codes.shape[0]} quantizers; this model has 1..{config.num_quantizers}")
    if codes.min() < 0 or codes.max() >= config.codebook_size:
        raise CodesFileError(f"{_q(path)} holds code values outside 0..{config.codebook_size - 1}: the file is corrupt")
    frames, hop = codes.shape[1], config.hop_length
    if not (frames - 1) * hop < codes_file.num_samples <= frames * hop:
        raise CodesFileError(f"{_q(path)} is inconsistent: {frames} frames cannot hold {codes_file.num_samples} samples")
