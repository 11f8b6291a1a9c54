"""Per-speaker standardisation: statistics of the speaker's clips, never the clip's own under enrolment."""

import numpy as np
import pytest

from mmser.errors import MmserError
from mmser.features.speaker_norm import FrameMoments, normalize_per_speaker, standardise


def test_speaker_normalisation_removes_each_speakers_offset():
    rng = np.random.default_rng(0)
    base = [rng.standard_normal((2, int(rng.integers(5, 9)), 3)).astype(np.float16) for _ in range(6)]
    shifted = [b + (10.0 if i % 2 else -4.0) for i, b in enumerate(base)]  # speaker B's frames sit 14 higher
    speakers = ["A", "B"] * 3
    out = normalize_per_speaker(shifted, speakers)
    for who in ("A", "B"):
        frames = np.concatenate([o.astype(np.float32) for o, s in zip(out, speakers) if s == who], axis=1)
        assert np.allclose(frames.mean(axis=1), 0, atol=1e-2) and np.allclose(frames.std(axis=1), 1, atol=1e-2)
    assert [o.shape for o in out] == [b.shape for b in base] and out[0].dtype == np.float16


def test_enrolment_statistics_never_include_the_clip_itself():
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal((2, 6, 3)).astype(np.float16) for _ in range(5)]
    clips[0] = (clips[0] * 5 + 40).astype(np.float16)  # an outlier clip of speaker A
    speakers = ["A", "A", "A", "B", "B"]
    out = normalize_per_speaker(clips, speakers, enrol_clips=10)  # more than there are: all the others
    others = np.concatenate([c.astype(np.float32) for c in clips[1:3]], axis=1)
    expected = (clips[0].astype(np.float32) - others.mean(1, keepdims=True)) / (others.std(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out[0].astype(np.float32), expected, rtol=2e-3, atol=2e-2)
    assert out[0].astype(np.float32).mean() > 5  # the outlier stays far out: its own frames are not in its statistics
    one = normalize_per_speaker(clips, speakers, enrol_clips=1, seed=3)
    for i, who in enumerate(speakers):  # k=1: standardised with exactly one other clip of the same speaker
        candidates = [j for j, s in enumerate(speakers) if s == who and j != i]
        assert any(np.allclose(one[i], normalize_per_speaker([clips[i], clips[j]], ["x", "x"], enrol_clips=1)[0])
                   for j in candidates)
    with pytest.raises(MmserError, match="single clip"):
        normalize_per_speaker(clips[:4], speakers[:4], enrol_clips=2)


def test_enrolment_labels_limit_which_clips_are_drawn_but_every_clip_is_standardised():
    rng = np.random.default_rng(2)
    clips = [rng.standard_normal((1, 4, 2)).astype(np.float16) + 3 * i for i in range(4)]
    speakers = ["A"] * 4
    may_enrol = [True, False, False, True]  # e.g. clips 0 and 3 are neutral
    out = normalize_per_speaker(clips, speakers, enrol_clips=5, may_enrol=may_enrol)
    for i, expected_from in ((0, [3]), (1, [0, 3]), (2, [0, 3]), (3, [0])):  # never itself, never a barred clip
        reference = standardise(clips[i], FrameMoments.combine([FrameMoments.of(clips[j]) for j in expected_from]))
        np.testing.assert_array_equal(out[i], reference)
    with pytest.raises(MmserError, match="no other clip"):  # clip 0's only allowed partner is barred
        normalize_per_speaker(clips, speakers, enrol_clips=2, may_enrol=[False, False, False, True])
    with pytest.raises(MmserError, match="features.speaker_norm.labels limits the enrolment clips: it needs mode=enrol"):
        normalize_per_speaker(clips, speakers, may_enrol=may_enrol)


def test_instance_mode_standardises_each_clip_with_its_own_frames_and_needs_no_enrolment():
    from mmser.features.spec import FeatureSpec, SpeakerNorm

    spec = FeatureSpec(frame_stride=2, speaker_norm=SpeakerNorm("instance"))
    assert not spec.speaker_norm.needs_enrolment
    frames = np.random.default_rng(3).standard_normal((2, 12, 4)).astype(np.float16)
    out = spec.standardised(spec.pooled(frames), None).astype(np.float32)  # (L, ceil(T / 2), D)
    assert out.shape == (2, 6, 4)
    assert np.allclose(out.mean(axis=1), 0, atol=1e-2) and np.allclose(out.std(axis=1), 1, atol=1e-2)
    # a speaker's (or a microphone's) offset and scale on every dimension are gone
    moved = (frames.astype(np.float32) * 3 + 7).astype(np.float16)
    np.testing.assert_allclose(spec.standardised(spec.pooled(moved), None).astype(np.float32), out,
                               atol=2e-2)
    plain = FeatureSpec(frame_stride=2)
    assert not np.allclose(plain.standardised(plain.pooled(moved), None).astype(np.float32), out, atol=1)


def test_running_statistics_are_the_speakers_clips_so_far_in_a_seeded_arrival_order():
    from mmser.features.speaker_norm import arrival_order, running_moments_of

    rng = np.random.default_rng(4)
    clips = [rng.standard_normal((2, int(rng.integers(3, 7)), 3)) + 5 * i for i in range(7)]
    speakers = ["A", "B", "A", "A", "B", "A", "C"]
    own = [FrameMoments.of(c) for c in clips]
    order = arrival_order(speakers, seed=1)
    assert {s: sorted(rows) for s, rows in order.items()} == {"A": [0, 2, 3, 5], "B": [1, 4], "C": [6]}
    assert arrival_order(speakers, seed=1) == order  # seeded: the same arrivals every run
    assert any(arrival_order(speakers, seed=s)["A"] != order["A"] for s in range(2, 6))  # and shuffled
    out = running_moments_of(own, speakers, seed=1)
    for rows in order.values():
        for position, i in enumerate(rows):  # the clip itself and every clip of its speaker before it, no other
            expected = FrameMoments.combine([own[j] for j in rows[:position + 1]])
            np.testing.assert_allclose(out[i].total, expected.total)
            np.testing.assert_allclose(out[i].total_sq, expected.total_sq)
            assert out[i].count == expected.count
    first = order["A"][0]  # a speaker's first clip is standardised with its own frames alone (as instance)
    standardised = standardise(clips[first], out[first]).astype(np.float32)
    assert np.allclose(standardised.mean(axis=1), 0, atol=1e-2) and np.allclose(standardised.std(axis=1), 1, atol=1e-2)
    last = order["A"][-1]  # the last one with all of its speaker's clips, as transductive statistics would
    assert out[last].count == sum(own[j].count for j in order["A"])


def test_a_population_prior_starts_each_speakers_running_statistics_weighted_as_clips():
    from mmser.features.speaker_norm import arrival_order, population_prior, running_moments_of

    rng = np.random.default_rng(8)
    clips = [rng.standard_normal((2, int(rng.integers(4, 9)), 3)) * (1 + i) + 3 * i for i in range(6)]
    speakers = ["A", "A", "A", "B", "B", "B"]
    own = [FrameMoments.of(c) for c in clips]
    prior = population_prior(own[:3], clips=2.0)
    frames = np.concatenate(clips[:3], axis=1)
    mean, std = prior.mean_std()  # the population's mean and std, at the weight of 2 average clips
    np.testing.assert_allclose(mean[:, 0], frames.mean(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std[:, 0], frames.std(axis=1) + 1e-5, rtol=1e-5)
    assert prior.count == pytest.approx(2.0 * frames.shape[1] / 3)
    out = running_moments_of(own, speakers, seed=2, prior=prior)
    plain = running_moments_of(own, speakers, seed=2)
    for rows in arrival_order(speakers, seed=2).values():
        for position, i in enumerate(rows):  # the prior, then the speaker's clips so far
            expected = FrameMoments.combine([prior] + [own[j] for j in rows[:position + 1]])
            np.testing.assert_allclose(out[i].total, expected.total)
            np.testing.assert_allclose(out[i].total_sq, expected.total_sq)
            assert out[i].count == pytest.approx(expected.count)
        first = rows[0]  # the first clip is pulled toward the population, which it was not without a prior
        assert np.abs(out[first].mean_std()[0] - mean).max() < np.abs(plain[first].mean_std()[0] - mean).max()
    with pytest.raises(MmserError, match="prior_clips must be > 0"):
        population_prior(own, clips=0)
    with pytest.raises(MmserError, match="no training clips"):
        population_prior([], clips=1)
