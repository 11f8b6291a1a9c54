"""Batches of similar duration (train.length_buckets): every clip once per epoch, far less padding than random
batches, reproducible per (seed, epoch), the same share per DDP rank, and the epoch set by Lightning."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch

from mmser.errors import MmserError
from mmser.features.batching import FeatureDataset, collate
from mmser.training.fit import fold_loaders
from mmser.training.length_buckets import LengthBucketSampler, evaluation_order

TRAINER = SimpleNamespace(accelerator="cpu", devices=1, strategy="auto", precision="auto", enable_progress_bar=False)


def train_cfg(length_buckets: int, batch_size: int = 8) -> SimpleNamespace:
    return SimpleNamespace(batch_size=batch_size, num_workers=0, length_buckets=length_buckets)


def durations(n: int = 203, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(1.2, 0.6, n)  # seconds, IEMOCAP-like spread


def padding(batches: list[list[int]], d: np.ndarray) -> float:
    """Padded time over real time of ``batches``."""
    return sum(len(b) * d[b].max() - d[b].sum() for b in batches) / sum(d[b].sum() for b in batches)


def rank_batches(sampler: LengthBucketSampler) -> list[list[int]]:
    order = list(sampler)
    return [order[i:i + sampler.batch_size] for i in range(0, len(order), sampler.batch_size)]


def test_every_clip_once_per_epoch_with_less_padding_than_random_batches():
    d = durations()
    sampler = LengthBucketSampler(d, batch_size=8, pool=10, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(d))) and len(sampler) == len(d)
    rng = np.random.default_rng(0)
    random = np.array_split(rng.permutation(len(d)), int(np.ceil(len(d) / 8)))
    assert padding(rank_batches(sampler), d) < 0.25 * padding([list(b) for b in random], d)
    batches = rank_batches(sampler)
    assert len(batches[-1]) == len(d) % 8  # the one partial batch comes last


def test_order_depends_on_seed_and_epoch_only():
    d = durations()
    a, b = LengthBucketSampler(d, 8, 10, seed=1), LengthBucketSampler(d, 8, 10, seed=1)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(a) != list(LengthBucketSampler(d, 8, 10, seed=2, ))


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_share_each_step_and_cover_the_epoch(drop_last):
    d, bs, world = durations(101), 4, 3
    samplers = [LengthBucketSampler(d, bs, 5, seed=0, num_replicas=world, rank=r, drop_last=drop_last) for r in range(world)]
    orders = [list(s) for s in samplers]
    assert len({len(o) for o in orders}) == 1 and all(len(o) == len(s) for o, s in zip(orders, samplers))
    seen = set().union(*orders)
    if drop_last:
        assert sum(len(o) for o in orders) == len(d) - len(d) % (bs * world) and all(len(o) % bs == 0 for o in orders)
    else:
        assert seen == set(range(len(d))) and sum(len(o) for o in orders) == len(d) + (-len(d) % world)
    batches = [rank_batches(s) for s in samplers]
    for step in range(len(batches[0]) - 1):  # full steps: rank r's batch is the r-th slice of one sorted step
        shares = [d[batches[r][step]] for r in range(world)]
        assert all(shares[r].min() >= shares[r + 1].max() for r in range(world - 1))


def test_lightning_sets_the_epoch_and_validation_runs_longest_first():
    d = durations(40)
    audio = [np.zeros((1, max(1, int(x * 10)), 2), np.float16) for x in d]
    data = FeatureDataset([f"u{i}" for i in range(40)], ["sad", "angry"] * 20, audio, durations=d)
    train, val = fold_loaders(data, data, train_cfg(4), TRAINER, seed=0)
    assert isinstance(train.sampler, LengthBucketSampler)
    first = list(train.sampler)
    _set_sampler_epoch(train, 5)  # what Lightning's fit loop calls each epoch
    assert train.sampler.epoch == 5 and list(train.sampler) != first
    lengths = [int(b["audio_mask"].sum(1).max()) for b in val]
    assert lengths == sorted(lengths, reverse=True)
    assert sorted(int(i) for b in val for i in b["index"]) == list(range(40))
    assert list(evaluation_order(d)) == list(np.argsort(-d, kind="stable"))


def test_random_batches_unchanged_when_off():
    d = durations(40)
    data = FeatureDataset([f"u{i}" for i in range(40)], ["sad", "angry"] * 20,
                          [np.zeros((1, 3, 2), np.float16)] * 40, durations=d)
    train, _ = fold_loaders(data, None, train_cfg(0), TRAINER, seed=7)
    before = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, drop_last=True, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(7))
    assert [b["index"].tolist() for b in train] == [b["index"].tolist() for b in before]


def test_clips_without_a_duration_are_named():
    d = durations(10)
    d[[2, 7]] = np.nan
    data = FeatureDataset([f"u{i}" for i in range(10)], ["sad"] * 10, [np.zeros((1, 3, 2), np.float16)] * 10,
                          durations=d)
    with pytest.raises(MmserError, match=r"train.length_buckets.*2 clip\(s\).*'u2', 'u7'"):
        fold_loaders(data, None, train_cfg(2), TRAINER, seed=0)
