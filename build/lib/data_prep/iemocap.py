"""IEMOCAP (``IEMOCAP_full_release/``).

- labels: ``SessionN/dialog/EmoEvaluation/<dialog>.txt`` lines ``[start - end]\\t<utt_id>\\t<label>\\t[V, A, D]``
- text:   ``SessionN/dialog/transcriptions/<dialog>.txt`` lines ``<utt_id> [start-end]: text``
- audio:  ``SessionN/sentences/wav/<dialog>/<utt_id>.wav``

session = N; speaker = session + the gender letter that opens the utterance id's last field
(``Ses01F_impro01_M003`` -> ``Ses01M``); improvised when the dialog name contains ``impro``.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.common import Candidate, Problem, Scan
from mmser.errors import MmserError

EMO_RE = re.compile(r"^\[(\d+(?:\.\d+)?) - (\d+(?:\.\d+)?)\]\t(\S+)\t(\S+)\t\[([^\]]*)\]")
TRANS_RE = re.compile(r"^(\S+) \[[\d.]+-[\d.]+\]:\s?(.*)$")
SESSION_RE = re.compile(r"^Session(\d+)$")


def _transcripts(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = TRANS_RE.match(line.strip())
        if match:
            out[match.group(1)] = match.group(2).strip()
    return out


def scan(root: str | Path) -> Scan:
    root = Path(root)
    if (root / "IEMOCAP_full_release").is_dir():
        root = root / "IEMOCAP_full_release"
    sessions = sorted((d for d in root.iterdir() if d.is_dir() and SESSION_RE.match(d.name)), key=lambda d: d.name)
    if not sessions:
        raise MmserError(f"{root}: no SessionN folders (expected the IEMOCAP_full_release layout)")
    candidates, problems, notes = [], [], []
    synthetic = (root / "SYNTHETIC").exists()
    corpus = "synthetic" if synthetic else "iemocap"
    for session_dir in sessions:
        session = int(SESSION_RE.match(session_dir.name).group(1))
        for emo_file in sorted((session_dir / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = emo_file.stem
            texts = _transcripts(session_dir / "dialog" / "transcriptions" / f"{dialog}.txt")
            for line in emo_file.read_text(encoding="utf-8", errors="replace").splitlines():
                match = EMO_RE.match(line)
                if not match:
                    continue
                start, end, utt_id, raw_label, vad = match.groups()
                wav = session_dir / "sentences" / "wav" / dialog / f"{utt_id}.wav"
                letter = utt_id.rsplit("_", 1)[-1][:1].upper()
                if letter not in ("F", "M"):
                    problems.append(Problem(str(wav), utt_id, "cannot read the speaker's gender letter from the id"))
                    continue
                if utt_id not in texts:
                    problems.append(Problem(str(wav), utt_id, f"no transcript in {dialog}.txt"))
                    continue
                v, a, d = (float(x) for x in vad.split(",")) if vad.count(",") == 2 else (float("nan"),) * 3
                candidates.append(Candidate(
                    utt_id=utt_id, path=str(wav), corpus=corpus, speaker=f"Ses{session:02d}{letter}",
                    raw_label=raw_label, gender=letter, session=str(session), transcript=texts[utt_id],
                    extras={"dialog": dialog, "improvised": "impro" in dialog, "start_s": float(start),
                            "end_s": float(end), "valence": v, "arousal": a, "dominance": d},
                ))
    if synthetic:
        notes.append("this is the SYNTHETIC espeak-ng corpus in IEMOCAP layout, not IEMOCAP")
    return Scan(candidates, problems, notes)
