"""The SYNTHETIC espeak-ng corpus is written in the IEMOCAP layout that `prepare iemocap` reads."""

import numpy as np

from mmser.cli import main
from mmser.data.manifest import read_manifest
from mmser.synth import EMOTION_WORDS, SESSIONS, plan, session_words


def test_plan_is_deterministic_and_balanced():
    a, b = plan(seed=3, per_speaker=8), plan(seed=3, per_speaker=8)
    assert a == b and a != plan(seed=4, per_speaker=8)
    assert len({u.utt_id for u in a}) == len(a) == 5 * 2 * 10
    labels = [u.raw_label for u in a if u.raw_label != "fru"]
    assert labels.count("neu") == labels.count("sad") == labels.count("ang") == 20


def test_words_carry_emotion_only_partly_and_differ_between_sessions():
    utts = [u for u in plan(seed=0) if u.raw_label in ("hap", "sad", "ang")]
    own = np.mean([any(w in u.text.split() for w in EMOTION_WORDS[u.raw_label]) for u in utts])
    assert 0.5 < own < 0.8  # neither a perfect text cue nor none
    for emotion in EMOTION_WORDS:
        groups = [set(session_words(emotion, s)) for s in range(1, SESSIONS + 1)]
        assert all(len(g) >= 3 for g in groups)
        assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1:])
    for u in utts:  # a session only uses its own slice of emotion words
        used = {w for e in EMOTION_WORDS for w in EMOTION_WORDS[e] if w in u.text.split()}
        assert used <= {w for e in EMOTION_WORDS for w in session_words(e, u.session)}


def test_synth_then_prepare(tmp_path, espeak, capsys):
    assert main(["synth", str(tmp_path / "syn"), "--per-speaker", "4"]) == 0
    out = tmp_path / "m.csv"
    assert main(["prepare", "iemocap", str(tmp_path / "syn"), "--out", str(out)]) == 0
    df = read_manifest(out)
    assert len(df) == 5 * 2 * 4 and df["speaker"].nunique() == 10 and df["session"].nunique() == 5
    assert set(df["corpus"]) == {"synthetic"} and (df["sample_rate"] == 16_000).all()
    assert (df["duration_s"] > 0.5).all() and "SYNTHETIC" in capsys.readouterr().out
