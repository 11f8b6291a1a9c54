"""Training batches of clips of similar duration (``train.length_buckets``): less padding, so less compute on
the frames or samples a padded batch would waste (the gain grows with the spread of durations in a corpus).

Each epoch, the training set is shuffled (seeded by the run's seed and the epoch), cut into pools of
``length_buckets`` global steps, and each pool sorted by duration; the sorted pools are cut into steps of
``batch_size x num_replicas`` clips, and the order of the steps is shuffled again, so that a step holds
clips of one duration range but the epoch visits the ranges in random order. With several processes (DDP),
each step is split between the ranks in order, so every rank gets clips of the same range and no rank
waits for another's long clips. The one partial step (when the last batch is kept) comes last, so that the
DataLoader's batches line up with the steps.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class LengthBucketSampler(Sampler[int]):
    """Indices of one rank's training clips, ``batch_size`` at a time of similar duration.

    Args:
        durations: (N,) each clip's duration in seconds (any length measure; only the order matters).
        batch_size: clips per batch on each rank (the DataLoader's ``batch_size`` must equal it).
        pool: global steps per pool sorted by duration (larger: less padding, less randomness).
        seed: the run's seed; the order of epoch ``e`` depends on (seed, e) only (:meth:`set_epoch`,
            which Lightning calls each epoch).
        num_replicas, rank: the DDP processes and this one.
        drop_last: drop the clips that do not fill a whole step; else pad the last step to a multiple of
            ``num_replicas`` with clips from the start of the shuffle (as ``DistributedSampler`` pads).
    """

    def __init__(self, durations: Sequence[float], batch_size: int, pool: int, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0, drop_last: bool = False):
        self.durations = np.asarray(durations, dtype=np.float64)
        if self.durations.ndim != 1 or not np.isfinite(self.durations).all():
            raise ValueError("durations must be one finite number per clip")
        if batch_size < 1 or pool < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"batch_size={batch_size}, pool={pool}, rank={rank} of {num_replicas}")
        self.batch_size, self.pool, self.seed = batch_size, pool, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_size(self) -> int:
        """Clips one epoch deals out over all ranks: cut to whole steps (drop_last), else padded to a multiple
        of ``num_replicas``."""
        n, step = len(self.durations), self.batch_size * self.num_replicas
        if self.drop_last and n >= step:
            return n - n % step
        return n + (-n % self.num_replicas)

    def steps(self) -> list[np.ndarray]:
        """This epoch's global steps, each ``batch_size x num_replicas`` clips sorted by duration (longest
        first; the last one may be shorter, a multiple of ``num_replicas``)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.resize(rng.permutation(len(self.durations)), self._epoch_size())  # cut, or padded from its start
        step = self.batch_size * self.num_replicas
        size = step * self.pool
        steps = []
        for start in range(0, len(order), size):
            chunk = order[start:start + size]
            chunk = chunk[np.argsort(-self.durations[chunk], kind="stable")]
            steps += [chunk[i:i + step] for i in range(0, len(chunk), step)]
        full = [s for s in steps if len(s) == step]
        partial = [s for s in steps if len(s) != step]  # at most one: the end of the last pool
        return [full[i] for i in rng.permutation(len(full))] + partial

    def __iter__(self) -> Iterator[int]:
        for step in self.steps():
            share = len(step) // self.num_replicas
            yield from step[self.rank * share:(self.rank + 1) * share].tolist()

    def __len__(self) -> int:
        return self._epoch_size() // self.num_replicas


def evaluation_order(durations: Sequence[float]) -> list[int]:
    """Indices by duration, longest first: batches of scored clips (validation) padded as little as possible."""
    return np.argsort(-np.asarray(durations, dtype=np.float64), kind="stable").tolist()
