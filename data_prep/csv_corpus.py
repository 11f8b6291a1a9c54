"""Any corpus given as a CSV: columns ``path,label,speaker`` (optional ``utt_id,session,transcript,gender``),
separated by commas, or by semicolons or tabs (as spreadsheets in many locales write them: found from the header).

Absolute paths are taken as they are; relative ones are resolved against the CSV's folder (``../audio/x.wav``
included: a CSV kept in a metadata folder beside the audio). Labels go through ``prepare.label_map`` (identity on
the 8 shared names, matched regardless of case).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_prep.common import Candidate, Problem, Scan
from mmser.data.manifest import ManifestError

REQUIRED = ("path", "label", "speaker")
SEPARATORS = (",", ";", "\t")  # the first whose header has every required column is the file's


def _separator(csv_path: Path) -> str:
    """The column separator of ``csv_path``, found from its header line (a comma when none fits)."""
    with open(csv_path, encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
    for sep in SEPARATORS:
        if set(REQUIRED) <= {name.strip() for name in header.rstrip("\r\n").split(sep)}:
            return sep
    return ","


def scan(csv_path: str | Path) -> Scan:
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: corpus CSV not found")
    try:
        table = pd.read_csv(csv_path, sep=_separator(csv_path), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ManifestError(f"{csv_path}: not a readable CSV ({err})") from None
    table.columns = [str(name).strip() for name in table.columns]  # "path, label, speaker" as written by hand
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ManifestError(f"{csv_path}: missing column(s) {missing}; needs {list(REQUIRED)}, has {list(table.columns)}")
    root = csv_path.resolve().parent
    candidates, problems = [], []
    for n, row in enumerate(table.to_dict("records"), start=2):
        raw_path = row["path"].strip()
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
