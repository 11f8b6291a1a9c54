"""`mmser info`: what a checkpoint file holds and what predicting with it takes, from its document alone."""

import json

from mmser.checkpoint import load_checkpoint, save_average, save_checkpoint
from mmser.checkpoint_info import describe_file
from mmser.cli import main
from mmser.features.spec import SpeakerNorm
from tests.conftest import tiny_checkpoint


def test_info_names_each_part_and_what_prediction_needs(whisper_ckpt, tmp_path, capsys):
    enrol = tiny_checkpoint(tmp_path / "enrol.safetensors", whisper_ckpt, seed=1, members=2,
                            speaker_norm=SpeakerNorm("enrol", 5, ("neutral", "calm")))
    wide = tiny_checkpoint(tmp_path / "wide.safetensors", whisper_ckpt, seed=2, members=1,
                           speaker_norm=SpeakerNorm("enrol", 5, ("neutral", "calm")), whisper_window="30s",
                           test_time_speeds=(0.9, 1.1))
    avg = save_average(tmp_path / "avg.safetensors", [enrol, wide])
    assert main(["info", str(avg)]) == 0
    text = capsys.readouterr().out
    assert "the mean of 2 checkpoints' probabilities" in text and "part 1: " in text
    assert "30s window" in text and "also played at [0.9, 1.1]" in text
    assert text.count("5 other clips of the speaker among neutral, calm clips") == 1  # said once for both parts
    document = describe_file(avg)
    assert [sum(p["members"].values()) for p in document["parts"]] == [2, 1]
    assert [p["frames"]["window"] for p in document["parts"]] == ["clip", "30s"]

    running = tiny_checkpoint(tmp_path / "running.safetensors", whisper_ckpt, seed=3, members=1,
                              speaker_norm=SpeakerNorm("running"))
    plain = tiny_checkpoint(tmp_path / "plain.safetensors", whisper_ckpt, seed=4, members=1)
    assert main(["info", str(running), str(plain), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert "in the order they came" in both[0]["parts"][0]["needs"][0] and both[1]["parts"][0]["needs"] == []
    assert main(["info", str(plain)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("predicting takes the clip")
    ckpt = load_checkpoint(plain)  # a checkpoint that records the speakers it was trained on
    recorded = save_checkpoint(tmp_path / "recorded.safetensors", ckpt.members, ckpt.features, None, {},
                               {"train_speakers": ["a", "b", "c"], "val_speakers": ["d"]})
    assert main(["info", str(recorded)]) == 0
    assert ", 3 training speakers, classes None, validation speakers ['d']" in capsys.readouterr().out


def test_info_refuses_what_is_not_a_checkpoint_by_name(tmp_path, capsys):
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    assert main(["info", str(tmp_path / "x.safetensors")]) == 2
    assert "x.safetensors: refused" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors: checkpoint not found" in capsys.readouterr().err
