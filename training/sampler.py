"""A shuffled batch sampler that can stop and resume mid-epoch and shards each global batch over ranks."""

from __future__ import annotations

from typing import Iterator

import torch


class ResumableBatchSampler:
    """Yields lists of dataset indices. Each epoch is a permutation seeded by (seed, epoch); global batches
    of `batch_size * world_size` are cut from it and rank r takes the r-th slice, so N processes see exactly
    the items one process would see with the global batch. `state_dict` is (epoch, batches done)."""

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, drop_last: bool = True) -> None:
        if num_items < batch_size * world_size and drop_last:
            raise ValueError(f"{num_items} items cannot fill one global batch of {batch_size} x {world_size}")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0  # batches of the current epoch already consumed

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_items))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.num_items, generator=g).tolist()

    def __len__(self) -> int:
        global_batch = self.batch_size * self.world_size
        full = self.num_items // global_batch
        return full if self.drop_last or self.num_items % global_batch == 0 else full + 1

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order()
        global_batch = self.batch_size * self.world_size
        for b in range(self.start_batch, len(self)):
            chunk = order[b * global_batch : (b + 1) * global_batch]
            mine = chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            if mine:
                yield mine

    def set_position(self, epoch: int, batches_done: int) -> None:
        self.epoch = epoch
        self.start_batch = batches_done

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start_batch": self.start_batch}
