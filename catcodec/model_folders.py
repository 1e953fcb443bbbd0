"""Where the pipelines built on CAT codes (TTS, ASR) find their model: a folder given, or the bundled one."""

from __future__ import annotations

from pathlib import Path


def find_model_folder(path: str | Path | None, pretrained_dir: Path, default_name: str, kind: str,
                      train_hint: str) -> Path:
    """`path`, or `pretrained_dir / default_name` when it is None or that name; FileNotFoundError saying how to get
    one when the folder has no config.json. `kind` names the model with its article ("an ASR", "a TTS")."""
    name = default_name if path is None else str(path)
    folder = pretrained_dir / name if name == default_name else Path(name)
    if not (folder / "config.json").is_file():
        what = f"no {kind.split()[-1]} weights are bundled yet ({folder} is missing)" if name == default_name else \
            f"'{name}' is not {kind} model folder (no config.json)"
        raise FileNotFoundError(f"{what}: {train_hint}")
    return folder


__all__ = ["find_model_folder"]
