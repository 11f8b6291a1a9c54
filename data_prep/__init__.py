"""Raw corpus -> manifest. One module per corpus layout; :mod:`data_prep.common` does the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from data_prep import cremad, csv_corpus, iemocap, indian_english, ravdess, tess
from data_prep.common import PrepareError, Scan, prepare

SCANNERS: dict[str, Callable[[str | Path], Scan]] = {
    "ravdess": ravdess.scan,
    "tess": tess.scan,
    "indian_english": indian_english.scan,
    "cremad": cremad.scan,
    "iemocap": iemocap.scan,
    "csv": csv_corpus.scan,
}

__all__ = ["SCANNERS", "PrepareError", "Scan", "prepare"]
