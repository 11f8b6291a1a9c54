import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from mmser.data.splits import (Fold, SpeakerLeakError, SplitError, assert_speaker_disjoint, build_folds,
                               leave_one_session_out, leave_speakers_out, random_utterance_folds, validation_group)


def manifest(n_speakers=6, per=4, sessions=None):
    rows = []
    for s in range(n_speakers):
        for i in range(per):
            rows.append({"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": "angry",
                         "session": str(sessions[s]) if sessions else ""})
    return pd.DataFrame(rows)


def test_leave_speakers_out_covers_every_speaker_once():
    df = manifest(18)
    folds = leave_speakers_out(df, speakers_per_fold=3, val_speakers=2)
    assert len(folds) == 6
    tested = [s for f in folds for s in f.test_speakers]
    assert sorted(tested) == sorted(df["speaker"].unique())
    for f in folds:
        assert len(f.val_speakers) == 2 and not set(f.val_speakers) & set(f.test_speakers)
        assert len(f.train) + len(f.val) + len(f.test) == len(df)


def test_leave_one_session_out():
    df = manifest(10, sessions=[1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    folds = leave_one_session_out(df, val_speakers=2)
    assert [f.name for f in folds] == [f"session{i}" for i in range(1, 6)]
    assert folds[0].test_speakers == ("s0", "s1")


def test_deterministic_under_seed():
    df = manifest(12)
    a = build_folds(df, "leave_speakers_out", 3, 2, seed=5, shuffle=True)
    b = build_folds(df, "leave_speakers_out", 3, 2, seed=5, shuffle=True)
    c = build_folds(df, "leave_speakers_out", 3, 2, seed=6, shuffle=True)
    assert a == b and a != c


def test_leak_is_caught():
    df = manifest(4)
    leaky = Fold("bad", train=("s0_0", "s1_0"), val=(), test=("s0_1",), test_speakers=("s0",), val_speakers=())
    with pytest.raises(SpeakerLeakError, match="s0"):
        assert_speaker_disjoint(df, leaky)


def test_too_few_speakers():
    df = manifest(2)
    with pytest.raises(SplitError, match="validation"):
        leave_speakers_out(df, speakers_per_fold=1, val_speakers=1)
    assert len(leave_speakers_out(df, speakers_per_fold=1, val_speakers=0)) == 2
    with pytest.raises(SplitError, match="at least 2 sessions"):
        leave_one_session_out(manifest(4))
    with pytest.raises(SplitError, match="more than one session"):
        leave_one_session_out(manifest(2, sessions=[1, 2]).assign(speaker="same"))


def test_folds_file(tmp_path):
    df = manifest(4)
    (tmp_path / "f.csv").write_text("speaker,fold\ns0,a\ns1,a\ns2,b\ns3,b\n")
    folds = build_folds(df, "file", val_speakers=0, folds_file=str(tmp_path / "f.csv"))
    assert [f.test_speakers for f in folds] == [("s0", "s1"), ("s2", "s3")]
    (tmp_path / "g.csv").write_text("speaker;fold\ns0;a\ns1;a\ns2;b\ns3;b\ns3;b\n")  # a spreadsheet's ';', a row twice
    folds = build_folds(df, "file", val_speakers=0, folds_file=str(tmp_path / "g.csv"))
    assert [f.test_speakers for f in folds] == [("s0", "s1"), ("s2", "s3")]


@pytest.mark.parametrize("rows, error", [
    ("s0,a\ns1,a\ns2,b\ns3,\n", r"f\.csv: empty speaker or fold in row\(s\) \[5\]"),  # s3 never tested otherwise
    ("s0,a\ns1,a\ns2,b\ns3,b\ns1,b\n", r"f\.csv: speaker\(s\) in more than one fold: s1 \(a and b\)"),
    ("s0,a\ns1,a\ns2,b\n", r"f\.csv: speaker\(s\) \['s3'\] of the manifest have no fold"),
])
def test_a_folds_file_that_tests_a_speaker_never_or_twice_is_refused(tmp_path, rows, error):
    (tmp_path / "f.csv").write_text("speaker,fold\n" + rows)
    with pytest.raises(SplitError, match=error):
        build_folds(manifest(4), "file", val_speakers=0, folds_file=str(tmp_path / "f.csv"))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 15), k=st.integers(1, 4), v=st.integers(0, 3), seed=st.integers(0, 100))
def test_property_no_speaker_in_two_parts(n, k, v, seed):
    df = manifest(n, per=2)
    try:
        folds = leave_speakers_out(df, k, v, seed, shuffle=True)
    except SplitError:
        return
    for f in folds:
        assert_speaker_disjoint(df, f)
        assert set(f.train) | set(f.val) | set(f.test) == set(df["utt_id"])


def test_random_utterance_folds_test_each_utterance_once_and_are_marked_speaker_dependent():
    from mmser.data.splits import random_utterance_folds

    rows = [{"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": ["angry", "sad", "happy"][i % 3]}
            for s in range(4) for i in range(15)]
    df = pd.DataFrame(rows)
    folds = random_utterance_folds(df, n_folds=5, val_fraction=0.1, seed=3)
    tested = [u for f in folds for u in f.test]
    assert sorted(tested) == sorted(df["utt_id"]) and len(folds) == 5
    label = df.set_index("utt_id")["label"]
    speaker = df.set_index("utt_id")["speaker"]
    for f in folds:
        assert f.speaker_dependent and not set(f.train) & set(f.test) and not set(f.val) & set(f.test)
        assert label[list(f.test)].value_counts().tolist() == [4, 4, 4]  # stratified: 60 / 5 folds, 20 per class
        assert set(speaker[list(f.test)]) <= set(speaker[list(f.train)])  # the leak: test speakers are trained on
        assert len(f.val) >= 3
    assert [f.test for f in folds] == [f.test for f in random_utterance_folds(df, 5, 0.1, seed=3)]


def test_validation_groups_are_disjoint_and_keep_the_test_speakers():
    """Group 0 is the fold; groups 1.. hold as many other training-side speakers, disjoint from each other, and
    train on the rest of the training side (group 0's speakers included); the test part never changes."""
    df = manifest(18)
    for fold in leave_speakers_out(df, speakers_per_fold=3, val_speakers=2, seed=3):
        groups = [validation_group(df, fold, g, seed=3) for g in range(4)]
        assert groups[0] is fold
        seen = set()
        for group in groups:
            assert group.name == fold.name and group.test == fold.test and group.test_speakers == fold.test_speakers
            assert len(group.val_speakers) == 2 and not set(group.val_speakers) & seen
            seen |= set(group.val_speakers)
            assert sorted(group.train + group.val) == sorted(fold.train + fold.val)
            assert set(df.set_index("utt_id").loc[list(group.val), "speaker"]) == set(group.val_speakers)
            assert_speaker_disjoint(df, group)
        assert set(fold.val_speakers) <= set(df.set_index("utt_id").loc[list(groups[1].train), "speaker"])


def test_validation_groups_are_fixed_by_seed_and_fold_not_by_their_number():
    df = manifest(18)
    fold0, fold1 = leave_speakers_out(df, speakers_per_fold=3, val_speakers=2, seed=0)[:2]
    assert validation_group(df, fold0, 2, seed=0) == validation_group(df, fold0, 2, seed=0)
    draws = {validation_group(df, fold0, 1, seed=s).val_speakers for s in range(6)}
    assert len(draws) > 1  # the seed moves the groups
    other = validation_group(df, fold1, 1, seed=0)
    assert not set(other.val_speakers) & set(fold1.test_speakers)


def test_too_many_validation_groups_are_refused_with_the_fold_named():
    df = manifest(6)
    fold = leave_speakers_out(df, speakers_per_fold=2, val_speakers=1)[0]  # 4 training-side speakers
    validation_group(df, fold, 3)  # groups 0..3 take the 4 speakers one by one; each run trains on 3
    with pytest.raises(SplitError, match=r"fold fold0: 4 training-side speaker\(s\) cannot give 5 disjoint"):
        validation_group(df, fold, 4)
    speaker_dependent = random_utterance_folds(manifest(6, per=10), n_folds=2)[0]
    with pytest.raises(SplitError, match="speaker-independent fold"):
        validation_group(df, speaker_dependent, 1)
