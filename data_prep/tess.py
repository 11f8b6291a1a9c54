"""TESS: ``OAF_angry/OAF_back_angry.wav``, ``YAF_pleasant_surprised/YAF_bath_ps.wav``, ...

Two speakers (OAF, YAF); the emotion is the last ``_`` field of the file name (case varies between
folders: lower-cased here); the carrier phrase is "Say the word <word>".
"""

from __future__ import annotations

from pathlib import Path

from data_prep.common import Candidate, Problem, Scan, os_metadata_notes
from mmser.audio import without_os_metadata


def scan(root: str | Path) -> Scan:
    root = Path(root)
    candidates, problems = [], []
    files, left_out = without_os_metadata(sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav"))
    for path in files:
        parts = path.stem.split("_")
        if len(parts) < 3:
            problems.append(Problem(str(path), "", "file name is not <speaker>_<word>_<emotion>.wav"))
            continue
        speaker, word, emotion = parts[0].upper(), "_".join(parts[1:-1]), parts[-1].lower()
        candidates.append(Candidate(
            utt_id=f"tess_{speaker}_{word}_{emotion}", path=str(path), corpus="tess", speaker=f"tess_{speaker}",
            raw_label=emotion, gender="F", transcript=f"Say the word {word}", extras={"word": word},
        ))
    speakers = {c.speaker for c in candidates}
    notes = os_metadata_notes(left_out) + [f"TESS has {len(speakers)} speaker(s): speaker-independent folds need at least 2 (train on one, "
                        "test on the other)"]
    return Scan(candidates, problems, notes)
