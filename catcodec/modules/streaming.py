"""Streaming state plumbing (after Kyutai moshi's StreamingModule).

A `StreamingModule` keeps a state between calls only inside a `streaming()` context; outside it every
call is independent (offline). Entering the context arms every streaming submodule at once.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from torch import nn


class StreamingModule(nn.Module):
    """A module whose forward can carry a state from one call to the next while streaming."""

    def __init__(self) -> None:
        super().__init__()
        self._streaming_state: Any | None = None
        self._streaming_batch_size: int | None = None

    @property
    def is_streaming(self) -> bool:
        return self._streaming_batch_size is not None

    def _start_streaming(self, batch_size: int) -> None:
        self._streaming_batch_size = batch_size
        self._streaming_state = None  # allocated lazily on the first call (device and dtype known then)

    def _stop_streaming(self) -> None:
        self._streaming_batch_size = None
        self._streaming_state = None


def streaming_modules(root: nn.Module) -> list[StreamingModule]:
    return [m for m in root.modules() if isinstance(m, StreamingModule)]


@contextmanager
def streaming(root: nn.Module, batch_size: int = 1) -> Iterator[None]:
    """Arm every `StreamingModule` under `root` for a stream of `batch_size` parallel signals."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    modules = streaming_modules(root)
    if any(m.is_streaming for m in modules):
        raise RuntimeError("already streaming: leave the current streaming() context first")
    for m in modules:
        m._start_streaming(batch_size)
    try:
        yield
    finally:
        for m in modules:
            m._stop_streaming()


def reset_streaming(root: nn.Module) -> None:
    """Forget the history of every armed module under `root`, as if the stream had just started."""
    for m in streaming_modules(root):
        if m.is_streaming:
            m._start_streaming(m._streaming_batch_size)
