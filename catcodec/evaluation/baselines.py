"""Classical speech codecs run side by side with CAT: Opus (through ffmpeg + libopus) and Codec 2.

A baseline is named ``CODEC:BITRATE``: ``opus:6`` is Opus at 6 kbps (``-b:a 6k -application voip``),
``codec2:3200`` is Codec 2 in its 3200 bit/s mode. :meth:`Baseline.run` takes 16 kHz mono audio, runs it
through the external encoder and decoder (command-line tools, in a temporary folder) and returns the
decoded audio at 16 kHz, untrimmed and unaligned, with the size of what the encoder wrote:

- Opus: ``ffmpeg -i in.wav -c:a libopus -b:a 6k -application voip out.opus`` (16 kHz input; libopus
  codes it as wide-band), then ``ffmpeg -i out.opus -ar 16000 -ac 1 out.wav``. The real bitrate counts the
  Opus audio packets only (parsed from the Ogg pages: no container headers, no OpusHead/OpusTags); the
  file's total is reported too.
- Codec 2: a narrow-band codec: the audio is resampled to 8 kHz, written as raw signed 16-bit PCM and run
  through ``c2enc MODE in.raw out.bin`` / ``c2dec MODE out.bin out.raw`` (headerless bit file), and the
  result is resampled back to 16 kHz. The real bitrate is the bit file's size (whole bytes per frame, so
  e.g. mode 1300 really spends 1400 bit/s).

A missing tool is not an error: :meth:`Baseline.available` says so with a note, and the caller skips it.
Delay: both codecs delay their output by a few milliseconds (look-ahead, framing); the caller measures
and undoes it by cross-correlation (:func:`catcodec.evaluation.metrics.time_align`).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from .metrics import EVAL_RATE, NB_RATE, resample

CODECS = ("opus", "codec2")
CODEC2_MODES = ("3200", "2400", "1600", "1400", "1300", "1200", "700C")
OPUS_KBPS_RANGE = (6.0, 510.0)  # what the Opus format supports
#: The baselines `catcodec eval` runs when none is named.
DEFAULT_BASELINES = ("opus:6", "opus:8", "codec2:3200", "codec2:1300")
TOOL_TIMEOUT_S = 300


class BaselineError(RuntimeError):
    """An external codec tool failed on an input."""


@dataclass(frozen=True)
class BaselineOutput:
    audio: np.ndarray  # float64, 16 kHz, as decoded (not trimmed or aligned)
    file_bytes: int  # size of the encoded file
    payload_bytes: int  # bytes of coded audio in it (container and headers left out)
    num_samples: int  # length of the input at 16 kHz

    @property
    def real_kbps(self) -> float:
        return self.payload_bytes * 8 / (self.num_samples / EVAL_RATE) / 1000

    @property
    def file_kbps(self) -> float:
        return self.file_bytes * 8 / (self.num_samples / EVAL_RATE) / 1000


@dataclass(frozen=True)
class Baseline:
    """One external codec at one bitrate; build it with :meth:`parse` ("opus:6", "codec2:1300")."""

    codec: str
    bitrate: str  # opus: kbps as written (normalised, e.g. "6" or "6.5"); codec2: the mode ("3200", "700C")

    @classmethod
    def parse(cls, spec: str) -> "Baseline":
        """Parse and validate "CODEC:BITRATE"; a bad spec raises ValueError with a one-line reason."""
        text = str(spec).strip()
        codec, sep, rate = text.partition(":")
        codec, rate = codec.strip().lower(), rate.strip()
        if not sep or not codec or not rate:
            raise ValueError(f"baseline {text!r} must look like CODEC:BITRATE, e.g. opus:6 or codec2:3200")
        if codec not in CODECS:
            raise ValueError(f"unknown baseline codec {codec!r} in {text!r} (known: {', '.join(CODECS)})")
        if codec == "codec2":
            mode = rate.upper()
            if mode not in CODEC2_MODES:
                raise ValueError(f"baseline {text!r}: {rate!r} is not a codec2 mode; the modes (bit/s) are {', '.join(CODEC2_MODES)}")
            return cls("codec2", mode)
        try:
            kbps = float(rate.removesuffix("k").removesuffix("K"))
        except ValueError:
            raise ValueError(f"baseline {text!r}: bitrate {rate!r} is not a number (opus takes kbps, e.g. opus:6)") from None
        lo, hi = OPUS_KBPS_RANGE
        if not math.isfinite(kbps) or not lo <= kbps <= hi:
            raise ValueError(f"baseline {text!r}: opus bitrate must be {lo:g}..{hi:g} kbps, got {rate}")
        return cls("opus", f"{kbps:g}")

    @property
    def name(self) -> str:
        return f"{self.codec}:{self.bitrate}"

    @property
    def label(self) -> str:
        """Human label for tables and plots, e.g. 'Opus 6k', 'Codec2 3200'."""
        return f"Opus {self.bitrate}k" if self.codec == "opus" else f"Codec2 {self.bitrate}"

    @property
    def nominal_kbps(self) -> float:
        if self.codec == "opus":
            return float(self.bitrate)
        return int(self.bitrate.rstrip("C")) / 1000

    def available(self) -> tuple[bool, str]:
        """(True, "") when the external tools are installed, else (False, a note saying what is missing)."""
        if self.codec == "opus":
            missing = opus_encoder_missing()
            return (False, f"skipping Opus baselines: {missing}") if missing else (True, "")
        missing = [tool for tool in ("c2enc", "c2dec") if shutil.which(tool) is None]
        if missing:
            return False, f"skipping baseline {self.name}: {' and '.join(missing)} not found (Debian/Ubuntu: apt-get install codec2)"
        return True, ""

    def run(self, wav16k, workdir: str | os.PathLike | None = None) -> BaselineOutput:
        """Encode and decode 16 kHz mono audio; raises BaselineError when a tool fails."""
        wav = np.clip(np.asarray(wav16k, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if wav.size == 0:
            raise ValueError("cannot encode empty audio")
        with tempfile.TemporaryDirectory(prefix=f"catcodec-{self.codec}-", dir=workdir) as tmp:
            folder = Path(tmp)
            if self.codec == "opus":
                return self._run_opus(wav, folder)
            return self._run_codec2(wav, folder)

    # ---- the two codecs ------------------------------------------------------------------------
    def _run_opus(self, wav: np.ndarray, folder: Path) -> BaselineOutput:
        src, coded, dec = folder / "in.wav", folder / "out.opus", folder / "out.wav"
        sf.write(src, wav, EVAL_RATE, subtype="PCM_16")
        encode_opus(src, coded, self.bitrate)
        _call([*FFMPEG, "-i", str(coded), "-ar", str(EVAL_RATE), "-ac", "1", "-c:a", "pcm_s16le", str(dec)])
        audio, rate = sf.read(dec, dtype="float64")
        if rate != EVAL_RATE:  # ffmpeg was told -ar 16000; be safe anyway
            audio = resample(audio, rate, EVAL_RATE)
        data = coded.read_bytes()
        return BaselineOutput(audio.reshape(-1), len(data), opus_payload_bytes(data), wav.shape[0])

    def _run_codec2(self, wav: np.ndarray, folder: Path) -> BaselineOutput:
        src, coded, dec = folder / "in.raw", folder / "out.bin", folder / "out.raw"
        pcm8k = resample(wav, EVAL_RATE, NB_RATE)
        src.write_bytes(_to_int16(pcm8k).astype("<i2").tobytes())
        _call(["c2enc", self.bitrate, str(src), str(coded)])
        _call(["c2dec", self.bitrate, str(coded), str(dec)])
        decoded = np.frombuffer(dec.read_bytes(), dtype="<i2").astype(np.float64) / 32768.0
        if decoded.size == 0:
            raise BaselineError(f"c2dec {self.bitrate} produced no audio")
        size = coded.stat().st_size
        return BaselineOutput(resample(decoded, NB_RATE, EVAL_RATE), size, size, wav.shape[0])


def parse_baselines(specs) -> list[Baseline]:
    """Parse several specs, dropping duplicates (order kept)."""
    out: list[Baseline] = []
    for spec in specs:
        b = spec if isinstance(spec, Baseline) else Baseline.parse(spec)
        if b not in out:
            out.append(b)
    return out


def _to_int16(wav: np.ndarray) -> np.ndarray:
    return np.clip(np.round(wav * 32767.0), -32768, 32767).astype(np.int16)


FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def encode_opus(src: Path, dst: Path, kbps: str | float, application: str = "voip") -> None:
    """Encode an audio file as Ogg Opus at `kbps` with ffmpeg + libopus ("voip" favours speech intelligibility,
    "audio" fidelity); BaselineError when ffmpeg fails. The baselines use it, and `training.data.pack`."""
    _call([*FFMPEG, "-i", str(src), "-c:a", "libopus", "-b:a", f"{kbps}k", "-application", application, str(dst)])


def _call(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=TOOL_TIMEOUT_S)
    except FileNotFoundError:
        raise BaselineError(f"{cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise BaselineError(f"{cmd[0]} took over {TOOL_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.decode(errors="replace").split())[-300:]
        raise BaselineError(f"{cmd[0]} exited with {proc.returncode}: {tail or '(no message)'}")


@lru_cache(maxsize=1)
def opus_encoder_missing() -> str:
    """Why `encode_opus` cannot run here ("" when it can)."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg not found (Debian/Ubuntu: apt-get install ffmpeg)"
    try:
        proc = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run ffmpeg ({exc})"
    if b"libopus" not in proc.stdout:
        return "this ffmpeg has no libopus encoder"
    return ""


def opus_payload_bytes(data: bytes) -> int:
    """Bytes of Opus audio packets in an Ogg Opus file: every packet but the first two (OpusHead, OpusTags),
    without the Ogg page headers. Falls back to the whole size if the data is not a well-formed Ogg stream."""
    packets: list[int] = []
    current = 0
    pos = 0
    while pos + 27 <= len(data):
        if data[pos : pos + 4] != b"OggS":
            return len(data)
        nsegs = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + nsegs]
        if len(lacing) < nsegs:
            return len(data)
        for value in lacing:
            current += value
            if value < 255:
                packets.append(current)
                current = 0
        pos += 27 + nsegs + sum(lacing)
    if pos != len(data) or len(packets) < 2:
        return len(data)
    return sum(packets[2:])


__all__ = [
    "CODEC2_MODES",
    "CODECS",
    "DEFAULT_BASELINES",
    "Baseline",
    "BaselineError",
    "BaselineOutput",
    "opus_payload_bytes",
    "parse_baselines",
]
