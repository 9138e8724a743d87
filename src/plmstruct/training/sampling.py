"""Deterministic, resumable, distributed-aware batching.

The order of batches is a pure function of (seed, epoch); each item also gets its own seed from
(seed, epoch, index), so random masking does not depend on global RNG state. A run killed
mid-epoch resumes at the exact next batch (the data module stores epoch + batches done).

The sampler keeps its own epoch: a shuffling sampler moves to the next epoch each time a pass
runs to its end (Lightning does not call ``set_epoch`` on a batch sampler, and its epoch counter
can jump by one when a run resumes from a checkpoint taken on the last batch of an epoch). It
also records which (epoch, batch) each yielded batch was, so that the position saved in a
checkpoint is that of the batches actually *trained on*, not of those a data fetcher prefetched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A reproducible 63-bit seed for one item of one epoch."""
    return (seed * 1_000_003 + epoch * 998_244_353 + index * 2_654_435_761) % (2**63 - 1)


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(item seed, index)``; shuffled per epoch; this rank's share under DDP.

    Items are grouped by length within shuffled chunks (``sort_window``) to limit padding.
    ``advance_epochs`` (default: ``shuffle``) moves to the next epoch after each complete pass;
    without it every pass is the same epoch (fixed validation crops and masks)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False, sort_window: int = 50, advance_epochs: bool | None = None) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.sort_window = sort_window
        self.advance_epochs = shuffle if advance_epochs is None else advance_epochs
        self.epoch = 0
        self._skip = 0
        self._pass_done = False
        self._yielded: deque[tuple[int, int]] = deque()
        #: (epoch, batches of that epoch consumed) of the last batch marked consumed
        self.position: tuple[int, int] = (0, 0)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch
        self._pass_done = False

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Make the next iteration start at batch ``batches_done`` of ``epoch``."""
        self.epoch, self._skip, self._pass_done = epoch, batches_done, False
        self.position = (epoch, batches_done)

    def mark_consumed(self) -> tuple[int, int]:
        """Record that the oldest yielded batch has been trained on; returns the new position."""
        if self._yielded:
            self.position = self._yielded.popleft()
        return self.position

    def _world(self) -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if self.shuffle:
            g = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, 0))
            order = torch.randperm(n, generator=g).tolist()
            if self.sort_window > 1:
                w = self.sort_window * self.batch_size
                order = [i for s in range(0, n, w)
                         for i in sorted(order[s: s + w], key=lambda j: self.lengths[j])]
        else:
            order = list(range(n))
        batches = [order[s: s + self.batch_size] for s in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            g = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, 1))
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        rank, world = self._world()
        if world > 1:
            usable = len(batches) - len(batches) % world if len(batches) >= world else len(batches)
            batches = batches[rank:usable:world]
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self._pass_done:
            self.epoch += 1
            self._pass_done = False
        skip, self._skip = self._skip, 0
        epoch = self.epoch
        self._yielded.clear()
        batches = self._all_batches()
        # the pass counts as done once its last batch is handed out: data fetchers that know the
        # length never ask for more, so the code after the loop would not run
        self._pass_done = self.advance_epochs and skip >= len(batches)
        for k in range(skip, len(batches)):
            self._yielded.append((epoch, k + 1))
            self._pass_done = self.advance_epochs and k == len(batches) - 1
            yield [(item_seed(self.seed, epoch, i), i) for i in batches[k]]

    def __len__(self) -> int:
        return len(self._all_batches())


class SeededDataset(Dataset):
    """Wraps a dataset so ``ds[(seed, i)]`` returns ``(item, seed)`` for the collate function."""

    def __init__(self, items: Sequence) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]):
        seed, index = key
        return self.items[index], seed
