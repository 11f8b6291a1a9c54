"""The feature store: lazy rows read from the memory-mapped cache are the very inputs memory mode holds,
through DataLoader workers too, and `auto` chooses by the cache's size and the memory available."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

import mmser.features.store
from mmser.config import load_config
from mmser.features.batching import collate
from mmser.features.store import CachedRows, load_store
from tests.conftest import save_tiny_whisper, write_tone


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    whisper = save_tiny_whisper(root / "w.pt")
    rows = []
    for i in range(12):
        path = write_tone(root / f"c{i}.wav", seconds=0.3 + 0.07 * i, freq=120 + 15 * i, seed=i + 1)
        rows.append({"utt_id": f"u{i}", "path": str(path), "speaker": f"s{i % 3}",
                     "label": ["neutral", "angry"][(i // 3) % 2]})
    return root, f"whisper:{whisper}", pd.DataFrame(rows)


def config(root, encoder, *overrides):
    return load_config([], [f"features.cache_dir={root / 'cache'}", f"features.audio_encoders=[{encoder}]",
                            "features.whisper_window=clip", "features.frame_stride=2", "features.shard_size=5",
                            *overrides], use_local=False)


@pytest.mark.parametrize("norm", [[], ["features.speaker_norm.mode=enrol", "features.speaker_norm.clips=2",
                                       "features.speaker_norm.test_labels=[neutral]"]], ids=["plain", "enrol"])
def test_lazy_rows_equal_memory_rows(corpus, norm):
    root, encoder, df = corpus
    memory = load_store(df, config(root, encoder, "features.store=memory", *norm).features, [encoder], [], False)
    lazy = load_store(df, config(root, encoder, "features.store=lazy", *norm).features, [encoder], [], False)
    assert memory.in_memory and not lazy.in_memory
    assert isinstance(lazy.audio[encoder], CachedRows) and isinstance(memory.audio[encoder], list)
    for a, b in zip(memory.audio[encoder], lazy.audio[encoder]):
        np.testing.assert_array_equal(a, b)
    if norm:
        assert encoder in lazy.test_audio
        for a, b in zip(memory.test_audio[encoder], lazy.test_audio[encoder]):
            np.testing.assert_array_equal(a, b)
        assert not np.array_equal(memory.audio[encoder][0], memory.test_audio[encoder][0])


def test_lazy_rows_through_dataloader_workers(corpus):
    root, encoder, df = corpus
    store = load_store(df, config(root, encoder, "features.store=lazy").features, [encoder], [], False)
    data = store.dataset(tuple(df["utt_id"][::-1]), encoder, None)
    one = list(DataLoader(data, batch_size=4, collate_fn=collate))
    two = list(DataLoader(data, batch_size=4, collate_fn=collate, num_workers=2))
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        assert torch.equal(a["audio"], b["audio"]) and torch.equal(a["audio_mask"], b["audio_mask"])
        assert torch.equal(a["target"], b["target"])


def test_auto_mode_follows_the_memory_budget_and_the_memory_available(corpus, monkeypatch):

    root, encoder, df = corpus
    small = load_store(df, config(root, encoder).features, [encoder], [], False)
    assert small.in_memory  # a few kB of cache: within the default budget
    tight = load_store(df, config(root, encoder, "features.memory_budget_gb=0.000001").features, [encoder], [], False)
    assert not tight.in_memory
    # a generous budget on a machine with little memory free: lazy reads all the same
    monkeypatch.setattr(mmser.features.store, "available_bytes", lambda: 1000)
    busy = load_store(df, config(root, encoder, "features.memory_budget_gb=100").features, [encoder], [], False)
    assert not busy.in_memory
    assert load_store(df, config(root, encoder, "features.store=memory").features, [encoder], [], False).in_memory
    monkeypatch.setattr(mmser.features.store, "available_bytes", lambda: None)  # unknown: the budget alone
    assert load_store(df, config(root, encoder, "features.memory_budget_gb=100").features, [encoder], [], False).in_memory


def test_a_population_prior_comes_from_the_training_rows_alone(corpus):
    from mmser.features.speaker_norm import FrameMoments, population_prior, running_moments_of

    root, encoder, df = corpus
    cfg = config(root, encoder, "features.speaker_norm.mode=running", "features.speaker_norm.prior_clips=1.5")
    store = load_store(df, cfg.features, [encoder], [], False)
    with pytest.raises(RuntimeError, match="with_population_prior"):  # never read without a population
        store.dataset(["u0"], encoder, None)
    train = [u for u, s in zip(df["utt_id"], df["speaker"]) if s != "s2"]
    fold = store.with_population_prior(train)
    raw = CachedRows(store.locations[encoder])
    own = [FrameMoments.of(store.spec.pooled(raw[i])) for i in range(len(df))]
    expected = population_prior([own[i] for i in range(len(df)) if df["speaker"][i] != "s2"], 1.5)
    np.testing.assert_allclose(fold.speaker_prior[encoder].total, expected.total, rtol=1e-6)
    assert fold.speaker_prior[encoder].count == pytest.approx(expected.count)
    moments = running_moments_of(own, df["speaker"].tolist(), prior=expected)
    item = fold.dataset(["u5"], encoder, None)[0]  # s2 is held out, yet standardised from the training population
    np.testing.assert_allclose(item["audio"].astype(np.float32),
                               store.spec.standardised(store.spec.pooled(raw[5]), moments[5]).astype(np.float32), atol=1e-3)
    other = store.with_population_prior([u for u, s in zip(df["utt_id"], df["speaker"]) if s != "s0"])
    assert not np.allclose(other.speaker_prior[encoder].total, fold.speaker_prior[encoder].total)
    assert store.with_population_prior(train) is not store and not store.speaker_prior  # the store itself unchanged
    plain = load_store(df, config(root, encoder, "features.speaker_norm.mode=running").features, [encoder], [], False)
    assert plain.with_population_prior(train) is plain
