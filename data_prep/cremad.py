"""CREMA-D: ``AudioWAV/<actor>_<SENT>_<EMO>_<LVL>.wav``, optional ``VideoDemographics.csv`` for gender."""

from __future__ import annotations

import csv
from pathlib import Path

from data_prep.common import Candidate, Problem, Scan, os_metadata_notes
from mmser.audio import without_os_metadata

SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened", "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about", "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold", "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment", "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before", "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}


def _genders(root: Path) -> dict[str, str]:
    demo = next(iter(sorted(root.rglob("VideoDemographics.csv"))), None)
    if demo is None:
        return {}
    with open(demo, newline="", encoding="utf-8") as handle:
        return {row["ActorID"]: {"Male": "M", "Female": "F"}.get(row.get("Sex", ""), "") for row in csv.DictReader(handle)}


def scan(root: str | Path) -> Scan:
    root = Path(root)
    audio_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    genders = _genders(root)
    candidates, problems = [], []
    files, left_out = without_os_metadata(sorted(audio_dir.glob("*.wav")))
    for path in files:
        parts = path.stem.split("_")
        if len(parts) != 4 or parts[1] not in SENTENCES or parts[3] not in LEVELS:
            problems.append(Problem(str(path), path.stem, "file name is not <actor>_<SENT>_<EMO>_<LVL>.wav"))
            continue
        actor, sentence, emotion, level = parts
        candidates.append(Candidate(
            utt_id=f"cremad_{path.stem}", path=str(path), corpus="cremad", speaker=f"cremad_{actor}",
            raw_label=emotion, gender=genders.get(actor, ""), transcript=SENTENCES[sentence],
            extras={"intensity": LEVELS[level], "statement": sentence},
        ))
    notes = os_metadata_notes(left_out) + ([] if genders else ["VideoDemographics.csv not found: gender left empty"])
    return Scan(candidates, problems, notes)
