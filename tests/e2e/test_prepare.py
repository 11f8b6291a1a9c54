"""Each corpus layout, built tiny with generated audio, becomes the shared manifest schema."""

from pathlib import Path

import pandas as pd
import pytest

from mmser.cli import main
from mmser.data.manifest import MANIFEST_COLUMNS, read_manifest
from tests.conftest import SHARED_RAVDESS, write_tone


def run_prepare(corpus, root, out, *extra):
    return main(["prepare", corpus, str(root), "--out", str(out), *extra])


def test_ravdess(ravdess_tree, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert run_prepare("ravdess", ravdess_tree, out) == 0
    df = read_manifest(out)
    assert list(df.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert len(df) == 24 and df["speaker"].nunique() == 4
    row = df[df["utt_id"] == "ravdess_03-01-05-01-02-01-03"].iloc[0]
    assert row["label"] == "angry" and row["raw_label"] == "05" and row["gender"] == "M"
    assert row["transcript"] == "Dogs are sitting by the door" and row["speaker"] == "ravdess_03"
    assert row["sample_rate"] == 16_000 and 0.55 < row["duration_s"] < 0.65
    assert "24 clips" in capsys.readouterr().out


def test_song_clips_and_macos_metadata_beside_the_speech_are_left_out_with_a_note(ravdess_tree, tmp_path, capsys):
    """The song set unpacked beside the speech set, and a copy made on a Mac (._<name> files, __MACOSX/): left out
    and counted, not bad files that stop preparation."""
    write_tone(ravdess_tree / "Actor_01" / "03-02-03-01-01-01-01.wav", seed=99)  # a song clip
    (ravdess_tree / "Actor_01" / "._03-01-01-01-01-01-01.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (ravdess_tree / "__MACOSX" / "Actor_02").mkdir(parents=True)
    (ravdess_tree / "__MACOSX" / "Actor_02" / "._03-01-01-01-01-01-02.wav").write_bytes(b"\x00\x05\x16\x07")
    out = tmp_path / "m.csv"
    assert run_prepare("ravdess", ravdess_tree, out) == 0
    printed = capsys.readouterr().out
    assert "left out 1 song clip(s) (vocal channel 02)" in printed
    assert "left out 2 macOS metadata entries" in printed
    df = read_manifest(out)
    assert len(df) == 24 and not df["utt_id"].str.contains("03-02-").any()


def test_bad_file_stops_with_every_bad_file_listed(ravdess_tree, tmp_path, capsys):
    (ravdess_tree / "Actor_01" / "03-01-01-01-01-02-01.wav").write_bytes(b"")
    (ravdess_tree / "Actor_02" / "03-01-09-01-01-02-02.wav").write_bytes(b"RIFF")  # unknown emotion 09
    out = tmp_path / "m.csv"
    assert run_prepare("ravdess", ravdess_tree, out) == 2
    err = capsys.readouterr().err
    assert "2 bad file(s)" in err and "empty file" in err and "unknown label '09'" in err
    assert not out.exists()
    assert run_prepare("ravdess", ravdess_tree, out, "--skip-bad") == 0
    assert len(read_manifest(out)) == 24
    report = pd.read_csv(tmp_path / "m.problems.csv")
    assert len(report) == 2


def test_byte_identical_clips_are_reported(ravdess_tree, tmp_path, capsys):
    a = ravdess_tree / "Actor_01" / "03-01-01-01-01-01-01.wav"
    (ravdess_tree / "Actor_02" / "03-01-03-01-01-02-02.wav").write_bytes(a.read_bytes())
    assert run_prepare("ravdess", ravdess_tree, tmp_path / "m.csv") == 0
    out = capsys.readouterr().out
    assert "byte-identical audio in 2 clips" in out and "ravdess_02" in out


def test_tess(tmp_path):
    root = tmp_path / "tess"
    for i, (folder, name) in enumerate([("OAF_angry", "OAF_back_angry"), ("OAF_Fear", "OAF_bath_fear"),
                                         ("YAF_pleasant_surprised", "YAF_back_ps"), ("YAF_sad", "YAF_bath_Sad")]):
        write_tone(root / folder / f"{name}.wav", seed=i + 1, sr=24_414)
    (root / "OAF_angry" / "._OAF_back_angry.wav").write_bytes(b"\x00\x05\x16\x07")  # copied on a Mac
    out = tmp_path / "m.csv"
    assert run_prepare("tess", root, out) == 0
    df = read_manifest(out).set_index("utt_id")
    assert set(df["label"]) == {"angry", "fearful", "surprised", "sad"}
    assert df.loc["tess_YAF_back_ps", "transcript"] == "Say the word back"
    assert set(df["speaker"]) == {"tess_OAF", "tess_YAF"}


def test_indian_english(tmp_path, capsys):
    root = tmp_path / "ie"
    for i, emo in enumerate(["base", "excited", "apologetic"]):
        write_tone(root / emo / "wavs" / f"{emo}_0001.wav", seed=i + 1, sr=22_050)
        (root / emo / "metadata.csv").write_text(f"{emo}_0001|Text number {i}\n")
    out = tmp_path / "m.csv"
    assert run_prepare("indian_english", root, out) == 0
    df = read_manifest(out)
    assert sorted(df["label"]) == ["happy", "neutral", "sad"]
    assert (df["sample_rate"] == 22_050).all() and df["transcript"].str.startswith("Text number").all()
    assert "no speaker ids in this layout" in capsys.readouterr().out


def test_indian_english_speakers_from_the_layout(tmp_path, capsys):
    """A metadata line's third field names the speaker; otherwise speakers.csv; otherwise the one speaker."""
    root = tmp_path / "ie"
    for i, emo in enumerate(["base", "excited"]):
        for k in range(3):
            write_tone(root / emo / "wavs" / f"{emo}_{k}.wav", seed=10 * i + k + 1)
    (root / "base" / "metadata.csv").write_text("".join(f"base_{k}|Text {k}|spk{k % 2}\n" for k in range(3)))
    (root / "excited" / "metadata.csv").write_text("".join(f"excited_{k}|Text {k}\n" for k in range(3)))
    (root / "speakers.csv").write_text("file,speaker\nexcited_0.wav,spk7\nexcited_1.wav,spk0\n")
    out = tmp_path / "m.csv"
    assert run_prepare("indian_english", root, out) == 0
    speaker = read_manifest(out).set_index("utt_id")["speaker"]
    assert speaker["indian_english_base_base_0"] == "spk0" and speaker["indian_english_base_base_1"] == "spk1"
    assert speaker["indian_english_excited_excited_0"] == "spk7" and speaker["indian_english_excited_excited_1"] == "spk0"
    assert speaker["indian_english_excited_excited_2"] == "indian_english_spk0"
    text = capsys.readouterr().out
    assert "4 speaker(s) read from the layout; 1 clip(s) without a speaker id" in text


def test_cremad(tmp_path):
    root = tmp_path / "cremad"
    write_tone(root / "AudioWAV" / "1001_DFA_ANG_XX.wav", seed=1)
    write_tone(root / "AudioWAV" / "1002_IEO_HAP_HI.wav", seed=2)
    (root / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,C,N\n1002,21,Female,C,N\n")
    (root / "AudioWAV" / "._1001_DFA_ANG_XX.wav").write_bytes(b"\x00\x05\x16\x07")  # copied on a Mac
    out = tmp_path / "m.csv"
    assert run_prepare("cremad", root, out) == 0
    df = read_manifest(out).set_index("utt_id")
    assert len(df) == 2
    assert df.loc["cremad_1001_DFA_ANG_XX", "transcript"] == "Don't forget a jacket"
    assert df.loc["cremad_1001_DFA_ANG_XX", "gender"] == "M" and df.loc["cremad_1002_IEO_HAP_HI", "label"] == "happy"


def test_iemocap(iemocap_tree, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert run_prepare("iemocap", iemocap_tree.parent, out) == 0
    df = read_manifest(out).set_index("utt_id")
    assert len(df) == 16  # 20 utterances, 4 xxx excluded
    row = df.loc["Ses02M_script01_1_M001"]
    assert row["speaker"] == "Ses02M" and row["session"] == "2" and row["label"] == "angry"
    assert row["transcript"] == "sentence number 1 of Ses02M_script01_1" and row["improvised"] == "False"
    assert df.loc["Ses01F_impro01_F002", "label"] == "happy" and df.loc["Ses01F_impro01_F002", "raw_label"] == "exc"
    assert "xxx 4" in capsys.readouterr().out


def test_csv_corpus_with_label_map(tmp_path, capsys):
    for i in range(3):
        write_tone(tmp_path / "audio" / f"c{i}.wav", seed=i + 1)
    (tmp_path / "corpus.csv").write_text(
        "path,label,speaker,transcript\naudio/c0.wav,joy,s1,hello\naudio/c1.wav,angry,s2,\naudio/c2.wav,Joy ,s2,x\n")
    out = tmp_path / "m.csv"
    assert run_prepare("csv", tmp_path / "corpus.csv", out) == 2
    err = capsys.readouterr().err
    assert "unknown label 'joy'" in err and "unknown label 'Joy'" in err
    # one line sums the unknown labels up (case and spaces folded, as they are matched) with the keys that fix them
    assert "unknown label(s) 'joy' (2): map it with prepare.label_map.<raw label>=" in err
    assert "prepare.exclude_labels=[...]" in err
    assert pd.read_csv(tmp_path / "m.problems.csv")["unknown_label"].tolist() == ["joy", "Joy"]
    assert run_prepare("csv", tmp_path / "corpus.csv", out, "prepare.label_map.joy=happy") == 0
    df = read_manifest(out)
    assert sorted(df["label"]) == ["angry", "happy", "happy"]
    assert sorted(df["raw_label"]) == ["Joy", "angry", "joy"]  # the corpus's own spelling is kept


@pytest.mark.parametrize("sep", [";", "\t"])
def test_csv_corpus_separated_by_semicolons_or_tabs(tmp_path, sep):
    """Spreadsheets in many locales write ';' (or tabs): the header tells which, with spaces around names."""
    for i in range(2):
        write_tone(tmp_path / "audio" / f"c{i}.wav", seed=i + 1)
    rows = [["path", " label", "speaker "], ["audio/c0.wav", "Happy", "s1"], ["audio/c1.wav", "sad", "s1, the first"]]
    (tmp_path / "corpus.csv").write_text("".join(sep.join(r) + "\n" for r in rows))
    out = tmp_path / "m.csv"
    assert run_prepare("csv", tmp_path / "corpus.csv", out) == 0
    df = read_manifest(out)
    assert df["label"].tolist() == ["happy", "sad"] and df["speaker"].tolist() == ["s1", "s1, the first"]


def test_clips_below_16k_are_warned_about_and_a_mix_with_full_band_ones_too(tmp_path, capsys):
    write_tone(tmp_path / "phone.wav", sr=8_000, seed=1)
    write_tone(tmp_path / "studio.wav", sr=48_000, seed=2)
    (tmp_path / "corpus.csv").write_text("path,label,speaker\nphone.wav,angry,s1\nstudio.wav,sad,s2\n")
    assert run_prepare("csv", tmp_path / "corpus.csv", tmp_path / "m.csv") == 0
    out = capsys.readouterr().out
    assert "warning: 1 clip(s) recorded below 16000 Hz (rates [8000] Hz, e.g. ['csv_phone'])" in out
    assert "the band itself can become a cue" in out
    (tmp_path / "corpus.csv").write_text("path,label,speaker\nphone.wav,angry,s1\n")
    assert run_prepare("csv", tmp_path / "corpus.csv", tmp_path / "m.csv") == 0
    out = capsys.readouterr().out
    assert "recorded below 16000 Hz" in out and "become a cue" not in out  # all narrow-band: no mix


def test_a_csv_written_on_windows_names_its_files_with_backslashes(tmp_path):
    for i in range(2):
        write_tone(tmp_path / "audio" / "day 1" / f"c{i}.wav", seed=i + 1)
    (tmp_path / "corpus.csv").write_text("path,label,speaker\r\n" + "".join(
        f"audio\\day 1\\c{i}.wav,{label},s1\r\n" for i, label in enumerate(("angry", "sad"))))
    assert run_prepare("csv", tmp_path / "corpus.csv", tmp_path / "m.csv") == 0
    df = read_manifest(tmp_path / "m.csv", check_files=True)
    assert [Path(p).resolve() for p in df["path"]] == [(tmp_path / "audio" / "day 1" / f"c{i}.wav").resolve()
                                                      for i in range(2)]
    assert list(df["utt_id"]) == ["csv_audio_day 1_c0", "csv_audio_day 1_c1"]


def test_a_csv_saved_in_a_legacy_code_page_is_refused_with_the_fix(tmp_path, capsys):
    write_tone(tmp_path / "a.wav", seed=1)
    (tmp_path / "corpus.csv").write_bytes("path,label,speaker\na.wav,angry,José\n".encode("cp1252"))
    assert run_prepare("csv", tmp_path / "corpus.csv", tmp_path / "m.csv") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'corpus.csv'}: not UTF-8 text (line 2: a.wav,angry,Jos\\xe9)" in err
    assert "save the corpus CSV as UTF-8" in err


def test_csv_paths_outside_its_folder_and_missing_columns(tmp_path, capsys):
    """A CSV kept beside the audio, not above it: '../' and absolute paths are the files they name."""
    write_tone(tmp_path / "audio" / "a.wav", seed=1)
    write_tone(tmp_path / "elsewhere" / "b.wav", seed=2)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "corpus.csv").write_text(
        f"path,label,speaker\n../audio/a.wav,angry,s1\n{tmp_path / 'elsewhere' / 'b.wav'},sad,s1\n")
    assert run_prepare("csv", tmp_path / "c" / "corpus.csv", tmp_path / "c" / "m.csv") == 0
    df = read_manifest(tmp_path / "c" / "m.csv")
    assert [Path(p).resolve() for p in df["path"]] == [(tmp_path / "audio" / "a.wav").resolve(),
                                                      (tmp_path / "elsewhere" / "b.wav").resolve()]
    (tmp_path / "c" / "bad.csv").write_text("file,emotion\nx.wav,angry\n")
    assert run_prepare("csv", tmp_path / "c" / "bad.csv", tmp_path / "m.csv") == 2
    assert "missing column(s) ['path', 'label', 'speaker']" in capsys.readouterr().err


@pytest.mark.ravdess
@pytest.mark.skipif(not SHARED_RAVDESS.is_dir(), reason="../shared/data/ravdess not present")
def test_real_ravdess(tmp_path, capsys):
    out = tmp_path / "ravdess.csv"
    assert run_prepare("ravdess", SHARED_RAVDESS, out) == 0
    df = read_manifest(out)
    assert len(df) == 1080 and df["speaker"].nunique() == 18 and df["label"].nunique() == 8
    assert (df.groupby("speaker").size() == 60).all()


def test_ravdess_under_emobox_folds(tmp_path, capsys):
    """The shipped EmoBox RAVDESS folds: six groups of four actors, each actor tested once."""
    import itertools

    from tests.conftest import write_tone

    root = tmp_path / "ravdess"
    for seed, actor in enumerate(f"{a:02d}" for a in range(1, 25)):
        for emo, stmt in itertools.product(("01", "05"), ("01", "02")):
            write_tone(root / f"Actor_{actor}" / f"03-01-{emo}-01-{stmt}-01-{actor}.wav", seed=seed * 4 + int(emo) + int(stmt))
    assert main(["prepare", "ravdess", str(root), "--out", str(tmp_path / "m.csv")]) == 0
    capsys.readouterr()
    assert main(["folds", str(tmp_path / "m.csv"), "--config", "configs/experiment/ravdess_emobox_audio.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("6 file folds")
    assert "test speakers ['ravdess_01', 'ravdess_11', 'ravdess_20', 'ravdess_21']" in out
    assert "test speakers ['ravdess_06', 'ravdess_13', 'ravdess_17', 'ravdess_22']" in out
    # a manifest without one group's actors: that fold is left out, said as one note line (no Python warning)
    import pandas as pd

    rows = pd.read_csv(tmp_path / "m.csv")
    fold6 = ["ravdess_06", "ravdess_13", "ravdess_17", "ravdess_22"]
    rows[~rows["speaker"].isin(fold6)].to_csv(tmp_path / "m5.csv", index=False)
    assert main(["folds", str(tmp_path / "m5.csv"), "--config", "configs/experiment/ravdess_emobox_audio.yaml"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("5 file folds")
    assert "mmser: note: " in printed.err
    assert "ravdess_emobox.csv: fold 6 has none of the manifest's speakers" in printed.err
    assert "UserWarning" not in printed.err and "warnings.warn" not in printed.err
