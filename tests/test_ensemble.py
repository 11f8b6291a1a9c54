"""Several checkpoints predict the mean of their probabilities, each checkpoint's members averaged first."""

import json

import numpy as np
import pytest

from mmser.cli import main
from mmser.ensemble import EnsemblePredictor, open_predictor
from mmser.errors import MmserError
from mmser.features.spec import SpeakerNorm
from mmser.inference import Predictor
from mmser.labels import EMOTIONS
from tests.conftest import tiny_checkpoint, write_tone


def probs(prediction) -> np.ndarray:
    return np.array([prediction.probabilities[e] for e in EMOTIONS])


def test_checkpoints_of_one_spec_share_a_predictor_and_average_checkpoint_by_checkpoint(whisper_ckpt, tmp_path):
    a = tiny_checkpoint(tmp_path / "a.safetensors", whisper_ckpt, seed=1, members=1)
    b = tiny_checkpoint(tmp_path / "b.safetensors", whisper_ckpt, seed=2, members=3)
    both = open_predictor([a, b])
    assert isinstance(both, EnsemblePredictor) and len(both.parts) == 1 and both.member_count == 4
    clips = [write_tone(tmp_path / f"c{i}.wav", seconds=0.7 + 0.4 * i, freq=150 + 60 * i, seed=i) for i in range(3)]
    got = [probs(p) for p in both.predict_many([(c, None) for c in clips])]
    singles = [Predictor.from_checkpoint(x).predict_many([(c, None) for c in clips]) for x in (a, b)]
    want = [(probs(pa) + probs(pb)) / 2 for pa, pb in zip(*singles)]  # a's one member weighs as b's three together
    np.testing.assert_allclose(got, want, atol=2e-6)
    pooled = [probs(p) for p in Predictor.from_checkpoint(b).predict_many([(c, None) for c in clips])]
    assert not np.allclose(got, pooled, atol=1e-4)  # not the four members' plain mean either
    assert isinstance(open_predictor([a]), Predictor) and not isinstance(open_predictor([a]), EnsemblePredictor)


def test_checkpoints_of_other_windows_enrol_and_predict_each_with_its_own_frames(whisper_ckpt, tmp_path, capsys,
                                                                                   monkeypatch):
    enrol = SpeakerNorm("enrol", 2)
    clip_window = tiny_checkpoint(tmp_path / "clip.safetensors", whisper_ckpt, 1, 2, speaker_norm=enrol)
    same_window = tiny_checkpoint(tmp_path / "clip2.safetensors", whisper_ckpt, 3, 2, speaker_norm=enrol)
    whole_window = tiny_checkpoint(tmp_path / "30s.safetensors", whisper_ckpt, 2, 2, speaker_norm=enrol,
                                   whisper_window="30s")
    paths = [clip_window, same_window, whole_window]
    ensemble = open_predictor(paths)
    assert len(ensemble.parts) == 2 and [round(w, 6) for w in ensemble.part_weights] == [round(2 / 3, 6), round(1 / 3, 6)]
    clip = write_tone(tmp_path / "c.wav", seconds=1.0)
    others = [write_tone(tmp_path / f"e{i}.wav", seconds=0.8 + 0.3 * i, freq=140 + 50 * i, seed=i + 3) for i in range(3)]
    with pytest.raises(MmserError, match="give enrolment clips"):
        ensemble.predict(clip)
    singles = [Predictor.from_checkpoint(p) for p in paths]
    want = np.mean([probs(s.predict(clip, enrolment=others)) for s in singles], axis=0)
    np.testing.assert_allclose(probs(ensemble.predict(clip, enrolment=others)), want, atol=2e-6)
    # a clip among its enrolment clips counts only the others, in every part (Predictor.predict's rule)
    left_out = np.mean([probs(s.predict(others[0], enrolment=others[1:])) for s in singles], axis=0)
    np.testing.assert_allclose(probs(ensemble.predict(others[0], enrolment=others)), left_out, atol=2e-6)
    # the command line: several checkpoints after --checkpoint, the same numbers
    assert main(["predict", str(clip), str(others[0]), "--checkpoint", *map(str, paths), "--enrol", *map(str, others),
                 "--json"]) == 0
    rows = {row["path"]: row["probabilities"] for row in json.loads(capsys.readouterr().out)}
    np.testing.assert_allclose([rows[str(clip)][e] for e in EMOTIONS], want, atol=2e-6)
    np.testing.assert_allclose([rows[str(others[0])][e] for e in EMOTIONS], left_out, atol=2e-6)
    # a clip list naming the speaker, without --enrol: each clip with the speaker's other listed clips, every part
    table = tmp_path / "clips.csv"
    table.write_text("path,speaker\n" + "".join(f"{p},S\n" for p in others))
    assert main(["predict", str(table), "--checkpoint", *map(str, paths), "--json"]) == 0
    rows = {row["path"]: row["probabilities"] for row in json.loads(capsys.readouterr().out)}
    np.testing.assert_allclose([rows[str(others[0])][e] for e in EMOTIONS], left_out, atol=2e-6)
    # one speaker's moments per clip, frames kept in every part from the moments to the predictions
    from mmser.inference import combine_speaker

    import mmser.inference

    monkeypatch.setattr(mmser.inference, "available_bytes", lambda: 8 * 2**30)
    with ensemble.keeping_frames():  # the parts share the memo's default room
        room = int(8 * 2**30 * mmser.inference.FRAME_MEMO_SHARE) // 2
        assert [part._frame_memo_room for part in ensemble.parts] == [room, room]
        own = ensemble.clip_moments([clip, *others])
        assert all(part._frame_memo for part in ensemble.parts)
        both = ensemble.predict_many([(clip, None), (others[0], None)],
                                     speaker=[combine_speaker(own[1:]), combine_speaker(own[2:])])
    assert all(part._frame_memo is None for part in ensemble.parts)
    np.testing.assert_allclose([probs(p) for p in both], [want, left_out], atol=2e-6)


def test_running_statistics_accumulate_in_every_part(whisper_ckpt, tmp_path):
    running = SpeakerNorm("running")
    paths = [tiny_checkpoint(tmp_path / "r1.safetensors", whisper_ckpt, 1, 1, speaker_norm=running),
             tiny_checkpoint(tmp_path / "r2.safetensors", whisper_ckpt, 2, 1, speaker_norm=running, whisper_window="30s")]
    clips = [(write_tone(tmp_path / f"c{i}.wav", seconds=0.8, freq=120 + 90 * i, seed=i), None) for i in range(3)]
    singles = [[probs(p) for p in Predictor.from_checkpoint(p).predict_many(clips)] for p in paths]
    got = [probs(p) for p in open_predictor(paths).predict_many(clips)]
    np.testing.assert_allclose(got, np.mean(singles, axis=0), atol=2e-6)
    speaker = open_predictor(paths).new_speaker()  # one speaker over calls, as /stream keeps it
    ensemble = open_predictor(paths)
    step = [probs(ensemble.predict_many(clips[i:i + 1], speaker=speaker)[0]) for i in range(3)]
    np.testing.assert_allclose(step, got, atol=2e-6)


def test_checkpoints_that_cannot_be_averaged_are_refused_by_name(whisper_ckpt, checkpoint, running_checkpoint, tmp_path):
    with pytest.raises(MmserError, match="standardise frames per speaker differently") as refused:
        open_predictor([checkpoint, running_checkpoint])
    assert f"{checkpoint}: ('off'" in str(refused.value) and f"{running_checkpoint}: ('running'" in str(refused.value)
    with pytest.raises(MmserError, match="named twice"):
        open_predictor([checkpoint, checkpoint])
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(MmserError, match="junk.safetensors: refused"):
        open_predictor([checkpoint, tmp_path / "junk.safetensors"])


def test_http_serves_an_ensemble(whisper_ckpt, checkpoint, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mmser.serve import create_app

    other = tiny_checkpoint(tmp_path / "o.safetensors", whisper_ckpt, seed=5, members=1, whisper_window="30s")
    ensemble = open_predictor([checkpoint, other])
    http = TestClient(create_app(ensemble))
    assert http.get("/health").json()["members"] == 3
    clip = write_tone(tmp_path / "c.wav", seconds=1.2)
    r = http.post("/predict", files=[("audio", ("c.wav", clip.read_bytes(), "audio/wav"))])
    assert r.status_code == 200 and r.json()["probabilities"] == ensemble.predict(clip).probabilities


def test_the_parts_share_one_lock(whisper_ckpt, checkpoint, tmp_path):
    """Enrolment (a part's clip_moments) and prediction (the ensemble's) never run one encoder at once."""
    other = tiny_checkpoint(tmp_path / "o.safetensors", whisper_ckpt, seed=5, members=1, whisper_window="30s")
    ensemble = open_predictor([checkpoint, other])
    assert all(part._lock is ensemble._lock for part in ensemble.parts)


def test_enrolment_clips_are_decoded_once_for_every_part(whisper_ckpt, tmp_path, monkeypatch):
    """Parts of other windows encode the enrolment clips each with their own window, from one decoding."""
    import mmser.inference

    enrol = SpeakerNorm("enrol", 2)
    paths = [tiny_checkpoint(tmp_path / "clip.safetensors", whisper_ckpt, 1, 1, speaker_norm=enrol),
             tiny_checkpoint(tmp_path / "30s.safetensors", whisper_ckpt, 2, 1, speaker_norm=enrol, whisper_window="30s")]
    ensemble = open_predictor(paths)
    assert len(ensemble.parts) == 2
    others = [write_tone(tmp_path / f"e{i}.wav", seconds=0.8 + 0.3 * i, seed=i + 3) for i in range(3)]
    decoded = []
    real = mmser.inference.load_audio
    monkeypatch.setattr(mmser.inference, "load_audio", lambda path: decoded.append(path) or real(path))
    moments = ensemble.enrol_parts(others)
    assert sorted(decoded) == sorted(others)
    singles = [Predictor.from_checkpoint(p).enrol_parts(others) for p in paths]
    for k, single in enumerate(singles):  # each part's moments are its own checkpoint's
        for clip, want in zip(moments, single):
            (encoder, m), = want.items()
            np.testing.assert_allclose(clip[(k, encoder)].total, m.total, rtol=1e-6)


def test_an_averaged_file_predicts_what_its_sources_predict_together(whisper_ckpt, tmp_path, capsys):
    """save_average: one file holding whole checkpoints (other windows and member counts) as parts, each counted
    once in the mean, through open_predictor, Predictor.from_checkpoint and the command line."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from mmser.checkpoint import CheckpointError, load_checkpoint, load_checkpoints, save_average

    a = tiny_checkpoint(tmp_path / "a.safetensors", whisper_ckpt, seed=1, members=1)
    b = tiny_checkpoint(tmp_path / "b.safetensors", whisper_ckpt, seed=2, members=3)
    c = tiny_checkpoint(tmp_path / "c.safetensors", whisper_ckpt, seed=3, members=2, whisper_window="30s")
    avg = save_average(tmp_path / "avg.safetensors", [a, b, c])
    assert [len(ckpt.members) for ckpt in load_checkpoints(avg)] == [1, 3, 2]
    clips = [write_tone(tmp_path / f"t{i}.wav", seconds=0.6 + 0.5 * i, freq=170 + 40 * i, seed=i) for i in range(2)]
    want = [probs(p) for p in open_predictor([a, b, c]).predict_many([(x, None) for x in clips])]
    import mmser.checkpoint

    reads, read = [], mmser.checkpoint.load_file
    mmser.checkpoint.load_file = lambda name: (reads.append(name), read(name))[1]
    try:
        from_file = Predictor.from_checkpoint(avg)
    finally:
        mmser.checkpoint.load_file = read
    assert reads == [str(avg)]  # the header says it has parts; its tensors are read once
    for predictor in (open_predictor([avg]), from_file):
        assert isinstance(predictor, EnsemblePredictor) and predictor.member_count == 6
        np.testing.assert_allclose([probs(p) for p in predictor.predict_many([(x, None) for x in clips])], want, atol=1e-6)
    assert main(["predict", *map(str, clips), "--checkpoint", str(avg), "--json"]) == 0
    rows = [row["probabilities"] for row in json.loads(capsys.readouterr().out)]
    np.testing.assert_allclose([[row[e] for e in EMOTIONS] for row in rows], want, atol=1e-6)

    with pytest.raises(CheckpointError, match="holds the average of 3 checkpoints"):
        load_checkpoint(avg)
    with pytest.raises(MmserError, match=r"avg.safetensors\[part 1\] are the same checkpoint"):
        open_predictor([b, avg])  # b would count twice
    with pytest.raises(CheckpointError, match="holds parts itself"):
        save_average(tmp_path / "nested.safetensors", [a, avg])
    with safe_open(str(avg), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(avg))
    changed = dict(tensors, **{name: t + 1 for name, t in tensors.items() if name.startswith("part1.member2.")})
    save_file(changed, str(tmp_path / "tampered.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match=r"tampered.safetensors \(part 1\): refused: the weights do not match"):
        open_predictor([tmp_path / "tampered.safetensors"])
    save_file(dict(tensors, stray=torch.zeros(3)), str(tmp_path / "stray.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="tensors outside its 3 parts"):
        load_checkpoints(tmp_path / "stray.safetensors")
