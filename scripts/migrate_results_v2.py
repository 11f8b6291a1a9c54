"""One-off migration (run once, kept for the record): results/ to the restructured layout and schema.

    .venv/bin/python scripts/migrate_results_v2.py

- moves each corpus's ablation cells to ``results/<corpus>/ablation/`` and every other run to
  ``results/<corpus>/studies/``;
- rewrites every stored ``config.yaml`` under the current schema: the flat ``features.speaker_norm*`` keys
  become ``features.speaker_norm: {mode, clips, labels, test_labels}``; ``prepare.min_duration_s`` (now one
  rule for every input path, ``mmser.audio.MIN_DURATION_S``) is dropped, and so are ``data.min_duration_s``
  and ``data.max_duration_s`` (dropped from the schema earlier, never read);
- a run's own ``config.yaml`` becomes its folds' config when every fold ran with the same one (some runs had
  been resumed with other overrides and kept an earlier run-level file).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1] / "results"
ABLATION_CELL = ("audio_only", "text_only__", "concat__", "cross_attn__")


def migrate(cfg: dict) -> dict:
    f = cfg.get("features", {})
    if not isinstance(f.get("speaker_norm"), dict):
        on = bool(f.pop("speaker_norm", False))
        clips = f.pop("speaker_norm_enrol_clips", None)
        labels = f.pop("speaker_norm_enrol_labels", None)
        test_labels = f.pop("speaker_norm_test_enrol_labels", None)
        mode = "off" if not on else ("transductive" if clips is None else "enrol")
        f["speaker_norm"] = {"mode": mode, "clips": clips if on else None, "labels": labels if on else None,
                             "test_labels": test_labels if on else None}
    cfg.get("prepare", {}).pop("min_duration_s", None)
    for key in ("min_duration_s", "max_duration_s"):  # data.* duration keys the schema dropped earlier (unused)
        cfg.get("data", {}).pop(key, None)
    return cfg


def main() -> None:
    for corpus in ("ravdess", "synthetic"):
        base = ROOT / corpus
        for run in sorted(p for p in base.iterdir() if p.is_dir() and p.name not in ("ablation", "studies")):
            part = "ablation" if run.name == "audio_only" or run.name.startswith(ABLATION_CELL[1:]) else "studies"
            (base / part).mkdir(exist_ok=True)
            subprocess.run(["git", "mv", str(run), str(base / part / run.name)], check=True)
        for stale in ("results.csv", "results.md"):
            if (base / stale).exists():
                subprocess.run(["git", "rm", "-q", str(base / stale)], check=True)
    for path in sorted(ROOT.rglob("config.yaml")):
        path.write_text(yaml.safe_dump(migrate(yaml.safe_load(path.read_text())), sort_keys=False))
    for run in sorted({p.parent.parent for p in ROOT.rglob("*/predictions.csv")}):
        folds = sorted(run.glob("*/config.yaml"))
        texts = {p.read_text() for p in folds}
        if len(texts) == 1 and (run / "config.yaml").read_text() != texts.pop():
            shutil.copy(folds[0], run / "config.yaml")
            print(f"{run.relative_to(ROOT)}: run config.yaml set to its folds' config")


if __name__ == "__main__":
    main()
