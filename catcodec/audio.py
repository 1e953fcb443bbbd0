"""Audio input/output: read any libsndfile format as validated mono float32, write atomically.

Everything that can go wrong with a user-supplied file or waveform surfaces as one
:class:`AudioError` with a single-line message naming the file, so command-line tools can
print it as-is instead of a stack trace.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Union

import librosa
import numpy as np
import soundfile as sf
import torch

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "AudioError",
    "load_audio",
    "load_audio_with_rate",
    "save_audio",
    "validate_waveform",
]

PathLike = Union[str, os.PathLike]
Waveform = Union[np.ndarray, torch.Tensor]

#: Extensions ``save_audio`` can write, mapped to the (libsndfile format, subtype) used.
#: Reading is not limited to these: ``load_audio`` sniffs the content, not the name.
_WRITE_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_WRITE_FORMATS)

# What soundfile/libsndfile may raise for a bad, unreadable or unwritable file (LibsndfileError
# is a SoundFileError and a RuntimeError). Caught only around the actual info/read/write calls.
_SF_ERRORS = (sf.SoundFileError, RuntimeError, OSError, EOFError)


class AudioError(ValueError):
    """A bad audio file or waveform; the message is one human-readable line naming it."""


def _quote(name: PathLike) -> str:
    """Quote a file/array name for a message, keeping the message on a single line."""
    text = os.fspath(name)
    return "'" + text.replace("\r", "\\r").replace("\n", "\\n") + "'"


def _one_line(text: str, limit: int = 200) -> str:
    """Collapse an arbitrary error text into one short line."""
    line = " ".join(str(text).split()) or "unknown error"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    """The short reason of a soundfile error (libsndfile's own text, without the path)."""
    text = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
    return _one_line(text).rstrip(".")


def _seconds(value: float, other: float) -> tuple[str, str]:
    """Format two durations with enough decimals that they print differently."""
    for digits in (1, 3, 6):
        a, b = f"{value:.{digits}f}", f"{other:.{digits}f}"
        if a != b:
            return a, b
    return repr(value), repr(other)


def _check_rate(sampling_rate: int) -> int:
    """Return ``sampling_rate`` as an int; a non-positive or fractional rate is a caller bug."""
    if isinstance(sampling_rate, bool) or int(sampling_rate) != sampling_rate or sampling_rate <= 0:
        raise ValueError(f"sampling_rate must be a positive integer, got {sampling_rate!r}")
    return int(sampling_rate)


def validate_waveform(wav: Waveform, name: str = "input") -> None:
    """Raise :class:`AudioError` if ``wav`` is empty or holds NaN/inf samples.

    Works on numpy arrays and torch tensors (on any device) without copying to the host.
    """
    if isinstance(wav, torch.Tensor):
        if wav.numel() == 0:
            raise AudioError(f"{_quote(name)} is empty (0 samples)")
        if (wav.is_floating_point() or wav.is_complex()) and not bool(torch.isfinite(wav).all()):
            raise AudioError(f"{_quote(name)} contains NaN or infinite samples")
        return
    arr = np.asarray(wav)
    if arr.size == 0:
        raise AudioError(f"{_quote(name)} is empty (0 samples)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise AudioError(f"{_quote(name)} is not numeric audio (dtype {arr.dtype})")
    if np.issubdtype(arr.dtype, np.inexact) and not np.isfinite(arr).all():
        raise AudioError(f"{_quote(name)} contains NaN or infinite samples")


def check_readable_path(path: PathLike) -> None:
    """Fail early, with a precise message, on paths that cannot be an audio file."""
    p = Path(path)
    if p.is_dir():
        raise AudioError(f"cannot read {_quote(path)}: it is a directory")
    if not p.exists():
        raise AudioError(f"cannot read {_quote(path)}: file not found")
    if not os.access(p, os.R_OK):
        raise AudioError(f"cannot read {_quote(path)}: permission denied")


def load_audio_with_rate(
    path: PathLike, *, max_seconds: float | None = 3600.0
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono 1-D at its native sampling rate.

    Multi-channel audio is down-mixed by averaging channels. The duration is checked from
    the header before decoding, so an over-long file is refused without reading it.
    Raises :class:`AudioError` for a missing, unreadable, empty, non-finite or too long file.
    """
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds!r}")
    check_readable_path(path)
    kind = "not a readable audio file (wav, flac, ogg ...)"
    try:
        info = sf.info(os.fspath(path))
    except _SF_ERRORS as exc:
        raise AudioError(f"{_quote(path)} is {kind}: {_reason(exc)}") from exc
    if info.samplerate <= 0:
        raise AudioError(f"{_quote(path)} is {kind}: invalid sampling rate {info.samplerate}")
    if info.frames <= 0:
        raise AudioError(f"{_quote(path)} is empty (0 samples)")
    if max_seconds is not None and info.frames / info.samplerate > max_seconds:
        got, limit = _seconds(info.frames / info.samplerate, max_seconds)
        raise AudioError(f"{_quote(path)} is too long: {got} s > max {limit} s")

    try:
        data, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except _SF_ERRORS as exc:
        raise AudioError(f"{_quote(path)} is {kind}: {_reason(exc)}") from exc

    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    # The header may under-report frames (e.g. some streamed formats): re-check what was decoded.
    if mono.size == 0:
        raise AudioError(f"{_quote(path)} is empty (0 samples)")
    if max_seconds is not None and mono.size / rate > max_seconds:
        got, limit = _seconds(mono.size / rate, max_seconds)
        raise AudioError(f"{_quote(path)} is too long: {got} s > max {limit} s")
    validate_waveform(mono, name=os.fspath(path))
    return mono, int(rate)


def load_audio(
    path: PathLike, sampling_rate: int, *, max_seconds: float | None = 3600.0
) -> np.ndarray:
    """Read an audio file as float32 mono 1-D at ``sampling_rate`` (soxr_hq resampling).

    Same validation as :func:`load_audio_with_rate`; ``max_seconds=None`` disables the
    length limit.
    """
    sampling_rate = _check_rate(sampling_rate)
    wav, rate = load_audio_with_rate(path, max_seconds=max_seconds)
    if rate != sampling_rate:
        wav = librosa.resample(wav, orig_sr=rate, target_sr=sampling_rate, res_type="soxr_hq")
        wav = np.ascontiguousarray(wav, dtype=np.float32)
        validate_waveform(wav, name=os.fspath(path))
    return wav


def _to_mono_numpy(wav: Waveform, name: str) -> np.ndarray:
    """Convert a [T], [1, T] or [1, 1, T] array/tensor to a float32 1-D numpy array."""
    if isinstance(wav, torch.Tensor):
        arr = wav.detach().to("cpu", torch.float32).numpy()
    else:
        arr = np.asarray(wav)
    shape = tuple(arr.shape)
    if arr.ndim == 0 or arr.ndim > 3 or any(d != 1 for d in shape[:-1]):
        raise AudioError(
            f"cannot write {_quote(name)}: expected mono audio of shape [T], [1, T] or "
            f"[1, 1, T], got {list(shape)}"
        )
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.float32)


def save_audio(path: PathLike, wav: Waveform, sampling_rate: int) -> None:
    """Write mono audio atomically; the format follows the extension (see SUPPORTED_EXTENSIONS).

    Samples are clipped to [-1, 1]; wav and flac are 16-bit PCM, ogg is Vorbis. The data goes
    to a temporary file in the same folder that is then renamed over ``path``, so a crash never
    leaves a half-written file. Parent folders are created as needed.
    """
    target = Path(path)
    ext = target.suffix.lower()
    if ext not in _WRITE_FORMATS:
        raise AudioError(
            f"cannot write {_quote(path)}: unsupported extension {ext or '(none)'!r} "
            f"(use one of {', '.join(SUPPORTED_EXTENSIONS)})"
        )
    sampling_rate = _check_rate(sampling_rate)
    if target.is_dir():
        raise AudioError(f"cannot write {_quote(path)}: it is a directory")
    data = _to_mono_numpy(wav, os.fspath(path))
    validate_waveform(data, name=os.fspath(path))
    data = np.clip(data, -1.0, 1.0)  # a new array: never modify the caller's buffer

    fmt, subtype = _WRITE_FORMATS[ext]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioError(f"cannot write {_quote(path)}: {_reason(exc)}") from exc
    # Create the temp file ourselves (O_EXCL, mode 0o666 & ~umask) so the final file gets the
    # usual permissions, unlike tempfile.mkstemp's 0o600.
    while True:
        tmp = target.with_name(f".{target.stem}.{secrets.token_hex(6)}.tmp{ext}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        sf.write(os.fspath(tmp), data, sampling_rate, format=fmt, subtype=subtype)
        os.replace(tmp, target)
    except _SF_ERRORS as exc:
        tmp.unlink(missing_ok=True)
        raise AudioError(f"cannot write {_quote(path)}: {_reason(exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
