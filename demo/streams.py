"""Helpers for the handlers that stream: steps run under inference mode, and audio regrouped for the player.

Gradio advances a handler's generator one step at a time on its worker threads, and grad mode is per
thread, so a `with torch.inference_mode():` around a loop inside the generator would not hold for the steps
that run on another thread: `in_inference_mode` enters the mode around every step instead.
"""

from __future__ import annotations

from typing import Iterator, TypeVar

import numpy as np
import torch

T = TypeVar("T")


def in_inference_mode(steps: Iterator[T]) -> Iterator[T]:
    """Yield the items of `steps`, each computed under inference mode; closing this closes `steps`."""
    try:
        while True:
            with torch.inference_mode():
                try:
                    item = next(steps)
                except StopIteration:
                    return
            yield item
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            with torch.inference_mode():
                close()


def regroup(chunks: Iterator[np.ndarray], min_samples: int) -> Iterator[np.ndarray]:
    """Join consecutive audio chunks until each holds at least `min_samples` (the last may hold fewer), so the
    page's player gets a few longer segments rather than one per 80 ms frame."""
    pending: list[np.ndarray] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += chunk.size
        if size >= min_samples:
            yield np.concatenate(pending)
            pending, size = [], 0
    if pending:
        yield np.concatenate(pending)


__all__ = ["in_inference_mode", "regroup"]
