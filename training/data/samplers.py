"""Length-bucketed batch sampling for variable-length tasks, resumable mid-epoch and sharded over ranks
exactly like the trainer's ResumableBatchSampler."""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch


class BucketBatchSampler:
    """Yields lists of dataset indices, each batch drawn from one length bucket so padding stays small.

    Items are sorted by length and cut into `num_buckets` equal-count buckets. Each epoch, items are
    shuffled inside their bucket and cut into global batches of `batch * world_size`; the order of all
    global batches is then shuffled, everything seeded by (seed, epoch). Rank r takes the r-th slice of each
    global batch. With `max_batch_seconds`, a bucket's per-rank batch shrinks so batch * longest item stays
    under it. Every item appears once per epoch: a bucket's last, partial global batch is kept and split
    over the ranks (padded with the bucket's own items when it has fewer items than ranks), unless
    `drop_last`. `state_dict` is (epoch, batches done); `set_position` resumes mid-epoch.
    """

    def __init__(self, lengths: Sequence[float], batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_buckets: int = 10, max_batch_seconds: float | None = None, drop_last: bool = False) -> None:
        if batch_size < 1 or num_buckets < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad sampler arguments: batch_size={batch_size}, num_buckets={num_buckets}, "
                             f"rank={rank}, world_size={world_size}")
        if len(lengths) == 0:
            raise ValueError("no items to sample")
        self.lengths = [float(x) for x in lengths]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.max_batch_seconds = max_batch_seconds
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0  # batches of the current epoch already consumed
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], i))
        self.buckets: list[list[int]] = [b.tolist() for b in np.array_split(np.asarray(order, dtype=np.int64),
                                                                             num_buckets) if len(b)]
        self.bucket_batch_sizes = [self._rank_batch_size(b) for b in self.buckets]
        if len(self) == 0:
            raise ValueError(f"{len(self.lengths)} items cannot fill one global batch of "
                             f"{batch_size} x {world_size} in any bucket (drop_last=True)")

    def _rank_batch_size(self, bucket: list[int]) -> int:
        """Per-rank batch size of a bucket: `batch_size`, shrunk to fit `max_batch_seconds` (at least 1)."""
        if self.max_batch_seconds is None:
            return self.batch_size
        longest = max(self.lengths[i] for i in bucket)
        return max(1, min(self.batch_size, int(self.max_batch_seconds // longest) if longest > 0 else self.batch_size))

    def _batches_in(self, bucket_size: int, rank_batch: int) -> int:
        global_batch = rank_batch * self.world_size
        return bucket_size // global_batch if self.drop_last else math.ceil(bucket_size / global_batch)

    def __len__(self) -> int:
        return sum(self._batches_in(len(b), s) for b, s in zip(self.buckets, self.bucket_batch_sizes))

    def _global_batches(self) -> list[list[int]]:
        """This epoch's global batches in order: bucket-internal shuffles, then a shuffle of the batches."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        batches: list[list[int]] = []
        for bucket, rank_batch in zip(self.buckets, self.bucket_batch_sizes):
            items = [bucket[k] for k in torch.randperm(len(bucket), generator=g).tolist()]
            global_batch = rank_batch * self.world_size
            for b in range(self._batches_in(len(items), rank_batch)):
                chunk = items[b * global_batch : (b + 1) * global_batch]
                if len(chunk) < self.world_size:  # every rank needs an item; pad from this bucket
                    chunk = chunk + [items[k % len(items)] for k in range(self.world_size - len(chunk))]
                batches.append(chunk)
        return [batches[k] for k in torch.randperm(len(batches), generator=g).tolist()]

    def _rank_slice(self, chunk: list[int]) -> list[int]:
        """Rank r's share of a global batch: the r-th of `world_size` contiguous, near-equal parts."""
        size, r, w = len(chunk), self.rank, self.world_size
        return chunk[r * size // w : (r + 1) * size // w]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._global_batches()
        for b in range(self.start_batch, len(batches)):
            yield self._rank_slice(batches[b])

    def set_position(self, epoch: int, batches_done: int) -> None:
        self.epoch = epoch
        self.start_batch = batches_done

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start_batch": self.start_batch}
