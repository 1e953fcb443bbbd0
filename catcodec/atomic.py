"""All-or-nothing file writes: write a temporary file in the target's folder, then rename it over the target,
so a crash or Ctrl-C never leaves a half-written file (and never destroys the previous one)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], suffix: str = "") -> None:
    """Call `write(file)` on a temporary file beside `path`, then `os.replace` it onto `path`.

    `suffix` ends the temporary name, for writers that choose a format by extension (np.savez adds .npz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp{suffix}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
