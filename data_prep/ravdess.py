"""RAVDESS speech: ``Actor_XX/03-01-EE-II-SS-RR-AA.wav|flac``.

Fields: modality (03 audio-only), vocal channel (01 speech), emotion EE, intensity II, statement SS,
repetition RR, actor AA. Odd actors are male, even female. The transcript is the statement. Song clips (vocal
channel 02) and macOS metadata files are left out with a note; any other file is a bad file.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.common import Candidate, Problem, Scan, os_metadata_notes
from mmser.audio import without_os_metadata

STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
INTENSITIES = {"01": "normal", "02": "strong"}
FILE_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
AUDIO_SUFFIXES = (".wav", ".flac")


def scan(root: str | Path) -> Scan:
    root = Path(root)
    files, left_out = without_os_metadata(sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES))
    notes = os_metadata_notes(left_out)
    candidates, problems, songs = [], [], 0
    for path in files:
        match = FILE_RE.match(path.stem)
        if not match:
            problems.append(Problem(str(path), "", "file name is not RAVDESS 03-01-EE-II-SS-RR-AA"))
            continue
        modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
        if modality == "03" and channel == "02":  # the song set, downloaded beside the speech set
            songs += 1
            continue
        if modality != "03" or channel != "01":
            problems.append(Problem(str(path), path.stem, f"not audio-only speech (modality {modality}, channel {channel})"))
            continue
        folder = path.parent.name
        if folder.startswith("Actor_") and folder != f"Actor_{actor}":
            problems.append(Problem(str(path), path.stem, f"actor {actor} in the file name but folder {folder}"))
            continue
        if statement not in STATEMENTS or intensity not in INTENSITIES:
            problems.append(Problem(str(path), path.stem, f"unknown statement {statement} or intensity {intensity}"))
            continue
        candidates.append(Candidate(
            utt_id=f"ravdess_{path.stem}", path=str(path), corpus="ravdess", speaker=f"ravdess_{actor}",
            raw_label=emotion, gender="M" if int(actor) % 2 else "F", session="",
            transcript=STATEMENTS[statement],
            extras={"intensity": INTENSITIES[intensity], "statement": statement, "repetition": repetition},
        ))
    if songs:
        notes.append(f"left out {songs} song clip(s) (vocal channel 02): mmser reads RAVDESS speech")
    return Scan(candidates, problems, notes)
