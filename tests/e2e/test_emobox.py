"""EmoBox metadata -> manifest: jsonl read, emotion names mapped (unknown ones named), EmoBox's folds kept as
the run's protocol."""

import json

import pandas as pd

from mmser.cli import main
from mmser.data.manifest import read_manifest
from tests.conftest import save_tiny_whisper, write_tone

EMOS = ["Neutral", "Angry", "Sad", "Fearful"]


def emobox_folder(tmp_path, extra_emo=None):
    """data/ravdess with 3 folds of 2 actors each (EmoBox's layout and line format), audio under downloads/."""
    data = tmp_path / "EmoBox" / "data" / "ravdess"
    seed = 0
    for fold, actors in enumerate((("01", "02"), ("03", "04"), ("05", "06")), 1):
        lines = []
        for actor in actors:
            for i, emo in enumerate(EMOS + ([extra_emo] if extra_emo and fold == 2 else [])):
                seed += 1
                wav = f"downloads/ravdess/Actor_{actor}/03-01-0{i + 1}-01-01-01-{actor}.wav"
                write_tone(tmp_path / "audio" / wav, seed=seed, sr=48_000)
                lines.append(json.dumps({"key": f"ravdess-{actor}-{i}", "dataset": "ravdess", "wav": wav, "type": "raw",
                                         "sample_rate": 48000, "length": 0.6, "emo": emo, "channel": 1}))
        (data / f"fold_{fold}").mkdir(parents=True)
        (data / f"fold_{fold}" / f"ravdess_test_fold_{fold}.jsonl").write_text("\n".join(lines) + "\n")
        (data / f"fold_{fold}" / f"ravdess_train_fold_{fold}.jsonl").write_text("")  # not read: test sets partition
    return data


def test_emobox_import_keeps_its_folds(tmp_path, capsys):
    data = emobox_folder(tmp_path)
    out = tmp_path / "m.csv"
    assert main(["prepare", "emobox", str(data), "--audio-root", str(tmp_path / "audio"), "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "no speaker ids" in summary and "m.folds.csv" in summary
    df = read_manifest(out)
    assert len(df) == 24 and set(df["label"]) == {"neutral", "angry", "sad", "fearful"}
    assert df.set_index("utt_id").loc["ravdess-03-1", "speaker"] == "ravdess_fold2"
    folds = pd.read_csv(tmp_path / "m.folds.csv", dtype=str)
    assert dict(zip(folds["speaker"], folds["fold"])) == {"ravdess_fold1": "1", "ravdess_fold2": "2", "ravdess_fold3": "3"}
    whisper = save_tiny_whisper(tmp_path / "w.pt")
    (tmp_path / "exp.yaml").write_text("model:\n  kind: audio_only\n  hidden_dim: 16\ntrain:\n  max_epochs: 1\n"
                                       "trainer:\n  accelerator: cpu\n  enable_progress_bar: false\n")
    assert main(["cv", str(tmp_path / "exp.yaml"), f"data.manifest={out}", "split.protocol=file",
                 f"split.folds_file={tmp_path / 'm.folds.csv'}", "split.val_speakers=1",
                 f"features.audio_encoders=[whisper:{whisper}]", "features.whisper_window=clip",
                 f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "cv")]) == 0
    for fold in ("fold1", "fold2", "fold3"):  # each EmoBox fold's test set is exactly its utterances
        pred = pd.read_csv(tmp_path / "cv" / fold / "predictions.csv")
        assert set(pred["utt_id"]) == set(df.loc[df["speaker"] == f"ravdess_{fold}", "utt_id"])


def test_unknown_emobox_emotion_is_named_and_can_be_mapped(tmp_path, capsys):
    data = emobox_folder(tmp_path, extra_emo="Bored")
    out = tmp_path / "m.csv"
    args = ["prepare", "emobox", str(data), "--audio-root", str(tmp_path / "audio"), "--out", str(out)]
    assert main(args) == 2
    assert "unknown label 'Bored'" in capsys.readouterr().err and not out.exists()
    assert main([*args, "prepare.label_map.Bored=neutral"]) == 0
    assert (read_manifest(out)["raw_label"] == "Bored").sum() == 2
    assert main(["prepare", "ravdess", str(data), "--audio-root", str(tmp_path), "--out", str(out)]) == 2
    assert "--audio-root is for EmoBox" in capsys.readouterr().err
