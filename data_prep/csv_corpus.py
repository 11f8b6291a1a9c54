"""Any corpus given as a CSV: columns ``path,label,speaker`` (optional ``utt_id,session,transcript,gender``),
separated by commas, or by semicolons or tabs (as spreadsheets in many locales write them: found from the header).

Absolute paths are taken as they are; relative ones are resolved against the CSV's folder (``../audio/x.wav``
included: a CSV kept in a metadata folder beside the audio); a CSV written on Windows (``audio\\x.wav``) is read
with ``/``. Labels go through ``prepare.label_map`` (identity on the 8 shared names, matched regardless of case).
"""

from __future__ import annotations

from pathlib import Path

from data_prep.common import Candidate, Problem, Scan
from mmser.data.manifest import listed_name, read_listing

REQUIRED = ("path", "label", "speaker")


def scan(csv_path: str | Path) -> Scan:
    csv_path = Path(csv_path)
    table = read_listing(csv_path, REQUIRED, "corpus CSV")
    root = csv_path.resolve().parent
    candidates, problems = [], []
    for n, row in enumerate(table.to_dict("records"), start=2):
        raw_path = listed_name(root, row["path"].strip())
        path = (root / raw_path).resolve()
        utt_id = row.get("utt_id") or f"csv_{Path(raw_path).with_suffix('').as_posix().replace('/', '_')}"
        if not raw_path or not row["speaker"].strip() or not row["label"].strip():
            problems.append(Problem(f"{csv_path}:{n}", utt_id, "empty path, label or speaker"))
            continue
        candidates.append(Candidate(
            utt_id=utt_id, path=str(path), corpus=row.get("corpus") or "csv", speaker=row["speaker"].strip(),
            raw_label=row["label"].strip(), gender=row.get("gender", ""), session=row.get("session", ""),
            transcript=row.get("transcript", ""),
        ))
    return Scan(candidates, problems)
