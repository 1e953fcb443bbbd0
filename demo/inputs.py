"""Audio a visitor gives the demo: read, checked and turned into mono float32 at the model's rate.

Everything that can be wrong with it (nothing given, not audio, too long, silent) is an `InputError` whose
one-line message the page shows as it is; what was changed on the way (stereo mixed down, resampled) comes
back as notes. Files libsndfile cannot read (m4a, webm ...) are decoded with ffmpeg when it is installed.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from catcodec.audio import AudioError, load_audio
from catcodec.messages import quote

SILENCE_RMS = 1e-3  # about -60 dBFS, the level TTSPipeline refuses as a silent voice prompt


class InputError(ValueError):
    """Audio the demo cannot use; the message is one line meant for the page."""


@dataclass
class UserAudio:
    """Mono float32 samples at `sampling_rate`, and what was done to get them."""

    wav: np.ndarray
    sampling_rate: int
    name: str
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.wav.size / self.sampling_rate


def to_int16(wav: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit PCM (clipped), so Gradio plays them as they are, not peak-normalised."""
    return (np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0) * 32767.0).round().astype(np.int16)


def _ffmpeg_to_wav(path: str, out: Path, max_seconds: float) -> bool:
    """Decode anything ffmpeg reads to a float wav (at most a little over `max_seconds`); False if it cannot."""
    if shutil.which("ffmpeg") is None:
        return False
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", path, "-vn", "-t", f"{max_seconds + 1:g}", "-c:a", "pcm_f32le", str(out)]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0 and out.is_file()
    except (OSError, subprocess.TimeoutExpired):
        return False


def read_user_audio(path: str | os.PathLike | None, sampling_rate: int, max_seconds: float) -> UserAudio:
    """Read an uploaded or recorded file; raise InputError with a message for the page when it will not do."""
    if path is None or not str(path).strip():
        raise InputError("No audio: upload a file or record from the microphone first.")
    path = os.fspath(path)
    name = Path(path).name or path
    shown = quote(name)
    if not os.path.isfile(path):
        raise InputError(f"{shown} cannot be read: file not found.")
    if os.path.getsize(path) == 0:
        raise InputError(f"{shown} is an empty file: upload a recording.")
    with tempfile.TemporaryDirectory(prefix="catcodec-demo-") as tmp:
        try:
            info = sf.info(path)
        except (sf.SoundFileError, RuntimeError, OSError, EOFError) as exc:
            decoded = Path(tmp) / "decoded.wav"
            if not _ffmpeg_to_wav(path, decoded, max_seconds):
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise InputError(f"{shown} is not an audio file the demo can read (wav, flac, ogg, mp3 ...): {reason.replace(path, name)}") from None
            path = str(decoded)
            info = sf.info(path)
        if info.samplerate <= 0 or info.frames <= 0:
            raise InputError(f"{shown} holds no audio (0 samples).")
        seconds = info.frames / info.samplerate
        if seconds > max_seconds:
            raise InputError(f"{shown} is {seconds:.1f} s long; this demo takes at most {max_seconds:g} s: cut it shorter.")
        try:
            wav = load_audio(path, sampling_rate, max_seconds=None)
        except AudioError as exc:
            raise InputError(str(exc).replace(quote(path), shown)) from None
    notes = []
    if info.channels > 1:
        notes.append(f"{shown} has {info.channels} channels: mixed down to mono.")
    if info.samplerate != sampling_rate:
        notes.append(f"resampled from {info.samplerate} Hz to {sampling_rate} Hz.")
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    if rms < SILENCE_RMS:
        level = "digital silence" if rms == 0 else f"{20 * math.log10(rms):.0f} dBFS"
        raise InputError(f"{shown} is silent ({level}, below {20 * math.log10(SILENCE_RMS):.0f} dBFS): record or upload speech.")
    return UserAudio(wav=wav, sampling_rate=sampling_rate, name=name, notes=notes)


__all__ = ["InputError", "SILENCE_RMS", "UserAudio", "read_user_audio", "to_int16"]
