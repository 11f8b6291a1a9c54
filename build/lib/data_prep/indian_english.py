"""Indian English emotion set: ``<emotion>/wavs/<file>.wav`` with ``<emotion>/metadata.csv`` lines ``<file>|<text>``."""

from __future__ import annotations

from pathlib import Path

from data_prep.common import Candidate, Problem, Scan

SPEAKER = "indian_english_spk0"


def _read_metadata(path: Path) -> tuple[dict[str, str], list[Problem]]:
    texts, problems = {}, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if "|" not in line:
            problems.append(Problem(str(path), "", f"line {n} is not <file>|<text>"))
            continue
        name, text = line.split("|", 1)
        texts[Path(name.strip()).stem] = text.strip()
    return texts, problems


def scan(root: str | Path) -> Scan:
    root = Path(root)
    candidates, problems = [], []
    for emotion_dir in sorted(d for d in root.iterdir() if d.is_dir()):
        emotion = emotion_dir.name.lower()
        meta = emotion_dir / "metadata.csv"
        texts, meta_problems = _read_metadata(meta) if meta.is_file() else ({}, [Problem(str(meta), "", "metadata.csv not found")])
        problems += meta_problems
        for wav in sorted((emotion_dir / "wavs").glob("*.wav")):
            if wav.stem not in texts:
                problems.append(Problem(str(wav), wav.stem, f"no transcript line in {meta}"))
                continue
            candidates.append(Candidate(
                utt_id=f"indian_english_{emotion}_{wav.stem}", path=str(wav), corpus="indian_english",
                speaker=SPEAKER, raw_label=emotion, transcript=texts[wav.stem],
            ))
        listed_missing = set(texts) - {w.stem for w in (emotion_dir / "wavs").glob("*.wav")}
        problems += [Problem(str(emotion_dir / "wavs" / f"{m}.wav"), m, "listed in metadata.csv but file not found")
                     for m in sorted(listed_missing)]
    notes = ["the public Indian English set has a single speaker: speaker-independent evaluation on it alone is "
             "impossible (use it for cross-corpus testing, or accept speaker-dependent numbers, clearly named)"]
    return Scan(candidates, problems, notes)
