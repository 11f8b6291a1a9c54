"""Raw corpus -> manifest. One module per corpus layout; :mod:`data_prep.common` does the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from data_prep import cremad, csv_corpus, emobox, iemocap, indian_english, ravdess, tess
from data_prep.common import PrepareError, Scan, prepare

SCANNERS: dict[str, Callable[[str | Path], Scan]] = {
    "ravdess": ravdess.scan,
    "tess": tess.scan,
    "indian_english": indian_english.scan,
    "cremad": cremad.scan,
    "iemocap": iemocap.scan,
    "csv": csv_corpus.scan,
    "emobox": emobox.scan,
}

__all__ = ["SCANNERS", "PrepareError", "Scan", "prepare", "prepare_corpus"]


def prepare_corpus(corpus: str, root: str | Path, out: str | Path, prepare_cfg, progress: bool = True,
                   audio_root: str | Path | None = None):
    """Scan ``root`` as a ``corpus`` layout and write its validated manifest to ``out`` (``cfg.prepare``:
    label map, exclusions, skip_bad, workers); returns (manifest, summary text). Raises PrepareError listing every
    bad file."""
    from mmser.errors import MmserError
    from mmser.labels import label_map_for

    if corpus not in SCANNERS:
        raise MmserError(f"unknown corpus layout {corpus!r}; known: {sorted(SCANNERS)}")
    root = Path(root)
    if not root.exists():
        raise MmserError(f"{root}: corpus root not found")
    label_map = label_map_for(corpus, dict(prepare_cfg.label_map), prepare_cfg.exclude_labels)
    if audio_root is not None and corpus != "emobox":
        raise MmserError("--audio-root is for EmoBox metadata (mmser prepare emobox DATA/CORPUS --audio-root DIR)")
    scan = SCANNERS[corpus](root, audio_root) if corpus == "emobox" else SCANNERS[corpus](root)
    return prepare(scan, label_map, out, skip_bad=prepare_cfg.skip_bad, progress=progress, workers=prepare_cfg.workers)
