"""One-line messages for errors users see: quoted names and the reason without exception noise."""

from __future__ import annotations

import os


def quote(path: str | os.PathLike) -> str:
    """Quote a name for a one-line message."""
    return "'" + os.fspath(path).replace("\n", "\\n").replace("\r", "\\r") + "'"


def reason(exc: BaseException) -> str:
    """One line saying what went wrong, without the exception class noise."""
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
