"""Indian English emotion set: ``<emotion>/wavs/<file>.wav`` with ``<emotion>/metadata.csv`` lines ``<file>|<text>``.

Speaker ids are read wherever the layout gives them, first found wins: a third field of a metadata line
(``<file>|<text>|<speaker>``), or a ``speakers.csv`` at the root (columns ``file,speaker``). The public release
has neither and one speaker; clips without a speaker id get that one speaker, and the summary says how many.
"""

from __future__ import annotations

from pathlib import Path

from data_prep.common import Candidate, Problem, Scan, os_metadata_notes
from mmser.audio import without_os_metadata

SPEAKER = "indian_english_spk0"


def _read_metadata(path: Path) -> tuple[dict[str, str], dict[str, str], list[Problem]]:
    """(file stem -> text, file stem -> speaker where a line names one, problems)."""
    texts, speakers, problems = {}, {}, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if "|" not in line:
            problems.append(Problem(str(path), "", f"line {n} is not <file>|<text>"))
            continue
        fields = line.split("|")
        stem = Path(fields[0].strip()).stem
        texts[stem] = fields[1].strip()
        if len(fields) >= 3 and fields[2].strip():
            speakers[stem] = fields[2].strip()
    return texts, speakers, problems


def _speaker_file(root: Path) -> tuple[dict[str, str], list[Problem]]:
    """file stem -> speaker from ``root/speakers.csv`` (columns file,speaker), when there is one."""
    path = root / "speakers.csv"
    if not path.is_file():
        return {}, []
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"file", "speaker"} <= set(table.columns):
        return {}, [Problem(str(path), "", f"needs columns file,speaker; has {list(table.columns)}")]
    return {Path(f).stem: s.strip() for f, s in zip(table["file"], table["speaker"]) if s.strip()}, []


def scan(root: str | Path) -> Scan:
    root = Path(root)
    candidates, problems = [], []
    from_file, problems = _speaker_file(root)
    unnamed = 0
    emotion_dirs, left_out = without_os_metadata(sorted(d for d in root.iterdir() if d.is_dir()))
    for emotion_dir in emotion_dirs:
        emotion = emotion_dir.name.lower()
        meta = emotion_dir / "metadata.csv"
        texts, named, meta_problems = (_read_metadata(meta) if meta.is_file()
                                       else ({}, {}, [Problem(str(meta), "", "metadata.csv not found")]))
        problems += meta_problems
        wavs, os_files = without_os_metadata(sorted((emotion_dir / "wavs").glob("*.wav")))
        left_out += os_files
        for wav in wavs:
            if wav.stem not in texts:
                problems.append(Problem(str(wav), wav.stem, f"no transcript line in {meta}"))
                continue
            speaker = named.get(wav.stem) or from_file.get(wav.stem)
            unnamed += speaker is None
            candidates.append(Candidate(
                utt_id=f"indian_english_{emotion}_{wav.stem}", path=str(wav), corpus="indian_english",
                speaker=speaker or SPEAKER, raw_label=emotion, transcript=texts[wav.stem],
            ))
        listed_missing = set(texts) - {w.stem for w in wavs}
        problems += [Problem(str(emotion_dir / "wavs" / f"{m}.wav"), m, "listed in metadata.csv but file not found")
                     for m in sorted(listed_missing)]
    speakers = sorted({c.speaker for c in candidates})
    if unnamed == len(candidates):
        notes = ["no speaker ids in this layout (metadata.csv <file>|<text>|<speaker>, or speakers.csv file,speaker): "
                 f"every clip gets the one speaker {SPEAKER!r}, so speaker-independent evaluation on this set alone "
                 "is impossible (use it for cross-corpus testing, or within a combined corpus)"]
    else:
        notes = [f"{len(speakers)} speaker(s) read from the layout"
                 + (f"; {unnamed} clip(s) without a speaker id got {SPEAKER!r}" if unnamed else "")]
    return Scan(candidates, problems, os_metadata_notes(left_out) + notes)
