"""Speech manifests: one JSON object per line describing an utterance (audio path, text, speaker, rate,
duration, plus free extras). Reading resolves relative paths; writing is atomic; splits are by speaker."""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

REQUIRED_FIELDS = ("audio", "speaker", "sample_rate", "duration")  # `text` may be absent or null
CORE_FIELDS = ("audio", "text", "speaker", "sample_rate", "duration")


@dataclass
class ManifestEntry:
    """One utterance. `audio` is an absolute path; `text` is None when there is no transcript."""

    audio: str
    text: str | None
    speaker: str
    sample_rate: int
    duration: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, audio: str | None = None) -> dict[str, Any]:
        """The manifest line as a dict (core fields first, then extras); `audio` overrides the path written."""
        core = {"audio": self.audio if audio is None else audio, "text": self.text, "speaker": self.speaker,
                "sample_rate": self.sample_rate, "duration": self.duration}
        return {**core, **{k: v for k, v in self.extra.items() if k not in core}}


def _parse_line(obj: Any, folder: Path, where: str) -> ManifestEntry:
    """Validate one decoded line and build the entry; errors name the file and line (`where`)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED_FIELDS if k not in obj or obj[k] is None]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: field text must be a string or null, got {type(text).__name__}")
    try:
        sample_rate = int(obj["sample_rate"])
        duration = float(obj["duration"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad sample_rate/duration ({e})") from None
    audio = Path(str(obj["audio"]))
    if not audio.is_absolute():
        audio = folder / audio
    extra = {k: v for k, v in obj.items() if k not in CORE_FIELDS}
    return ManifestEntry(str(audio), text, str(obj["speaker"]), sample_rate, duration, extra)


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Entries of a JSON-lines manifest; relative audio paths are taken against the manifest's folder."""
    path = Path(path)
    folder = Path(os.path.abspath(path)).parent  # abspath, not resolve: keep symlinked folders as named
    entries: list[ManifestEntry] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: invalid JSON ({e.msg})") from None
            entries.append(_parse_line(obj, folder, where))
    return entries


def write_manifest(entries: Iterable[ManifestEntry], path: str | Path, relative_paths: bool = True) -> None:
    """Write atomically (temp file + os.replace); paths inside the manifest's folder are stored relative
    unless `relative_paths` is False (then every path is absolute)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(os.path.abspath(path)).parent
    lines = []
    for e in entries:
        audio = Path(os.path.abspath(e.audio))
        inside = relative_paths and audio.is_relative_to(folder)
        stored = audio.relative_to(folder).as_posix() if inside else str(audio)
        lines.append(json.dumps(e.to_json(stored), ensure_ascii=False))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def speaker_folder(speaker: str) -> str:
    """A folder name for a speaker's files: runs of anything but letters, digits, '.', '_', '-' become '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", speaker)


def split_by_speaker(entries: list[ManifestEntry], val_speakers: list[str] | None = None,
                     val_fraction: float = 0.1, seed: int = 0) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """(train, val) with no speaker on both sides: the given val speakers, or a seeded `val_fraction` of
    speakers (at least one when there are two or more speakers)."""
    speakers = sorted({e.speaker for e in entries})
    if val_speakers is None:
        count = round(len(speakers) * val_fraction)
        count = min(max(count, 1 if len(speakers) > 1 and val_fraction > 0 else 0), max(len(speakers) - 1, 0))
        held = set(random.Random(seed).sample(speakers, count))
    else:
        held = set(val_speakers)
    train = [e for e in entries if e.speaker not in held]
    val = [e for e in entries if e.speaker in held]
    assert not {e.speaker for e in train} & {e.speaker for e in val}, "speaker on both sides of the split"
    return train, val
