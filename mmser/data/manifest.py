"""The manifest: one row per utterance, the same schema for every corpus.

Columns (``MANIFEST_COLUMNS``): ``utt_id, path, corpus, speaker, gender, session, label, raw_label,
transcript, duration_s, sample_rate, audio_sha256`` plus optional extras (``dialog``, ``improvised``,
ASR transcript columns such as ``asr_faster-whisper_tiny.en``). Paths are absolute, or relative to the
manifest's folder. CSV and Parquet are read and written by suffix; writes are atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mmser.atomic import atomic_write_bytes  # noqa: F401  (re-exported)
from mmser.errors import MmserError
from mmser.labels import LABEL_TO_INDEX

MANIFEST_COLUMNS: tuple[str, ...] = (
    "utt_id", "path", "corpus", "speaker", "gender", "session", "label", "raw_label",
    "transcript", "duration_s", "sample_rate", "audio_sha256",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("utt_id", "path", "speaker", "label")
STRING_COLUMNS = ("utt_id", "path", "corpus", "speaker", "gender", "session", "label", "raw_label", "transcript")


class ManifestError(MmserError):
    """A manifest that cannot be used, naming the file and what is wrong."""


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as err:
        raise ManifestError(f"{path}: not a readable manifest ({err})") from None


SEPARATORS = (",", ";", "\t")  # a hand-made list's: the first whose header has every required column


def read_listing(path: str | Path, required: tuple[str, ...], what: str) -> pd.DataFrame:
    """A CSV written by hand or by a spreadsheet (a corpus list, ``mmser predict``'s clip list), every cell a
    string: separated by commas, or by semicolons or tabs (as spreadsheets in many locales write them; found
    from the header), column names stripped of spaces (``path, label``). ``what`` names the file in errors
    (``corpus CSV``); a missing file, an unreadable one or a missing ``required`` column is a
    :class:`ManifestError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: {what} not found")
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline().rstrip("\r\n")
        sep = next((s for s in SEPARATORS if set(required) <= {name.strip() for name in header.split(s)}), ",")
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text ({_first_non_utf8(path)}); save the {what} as UTF-8 (a "
                            "spreadsheet's 'CSV UTF-8')") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as err:
        raise ManifestError(f"{path}: not a readable {what} ({err})") from None
    table.columns = [str(name).strip() for name in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing} of a {what}; needs {list(required)}, "
                            f"has {list(table.columns)}")
    return table


def _first_non_utf8(path: Path) -> str:
    """Where the file ``path`` first stops being UTF-8: ``line 3: a.wav,Jos\\xe9,sad``."""
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return f"line {number}: {line.decode('utf-8', 'backslashreplace')}"
    return "a byte pandas could not decode"


def listed_name(folder: Path, name: str) -> str:
    """A hand-made list's file ``name`` as it is meant: with ``/`` for the ``\\`` of a list written on Windows
    (``audio\\a.wav``) where the name as written is no file; relative names are looked up in ``folder`` (the
    list's own)."""
    if "\\" in name and not (folder / name).exists():
        return name.replace("\\", "/")
    return name


def read_manifest(path: str | Path, check_files: bool = False) -> pd.DataFrame:
    """Read and validate a manifest written by ``mmser prepare``.

    Checks required columns, non-empty ids, unique ``utt_id``, labels inside the 8-class space and
    (``check_files``) that every audio path exists. Relative paths are resolved against the manifest's
    folder. Numeric columns are converted to numbers.
    """
    path = Path(path)
    df = _read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        hint = (f" (a corpus CSV of path,label,speaker becomes a manifest with `mmser prepare csv {path} --out "
                "manifest.csv`)" if "utt_id" in missing and {"path", "label", "speaker"} <= set(df.columns) else "")
        raise ManifestError(f"{path}: missing column(s) {missing}; has {list(df.columns)}{hint}")
    if df.empty:
        raise ManifestError(f"{path}: manifest has no rows")
    for col in STRING_COLUMNS:
        if col in df.columns:
            df[col] = df[col].fillna("").astype(str)
    for col in ("utt_id", "path", "speaker", "label"):
        empty = df.index[df[col].str.strip() == ""]
        if len(empty):
            raise ManifestError(f"{path}: empty {col!r} in row(s) {[int(i) + 2 for i in empty[:10]]}")
    dup = df["utt_id"][df["utt_id"].duplicated()].unique()
    if len(dup):
        raise ManifestError(f"{path}: duplicate utt_id(s) {list(dup[:10])}")
    unknown = sorted(set(df["label"]) - set(LABEL_TO_INDEX))
    if unknown:
        raise ManifestError(f"{path}: label(s) {unknown} outside the 8-class space {list(LABEL_TO_INDEX)}")
    base = path.resolve().parent
    written_paths = list(df["path"])
    df["path"] = [p if os.path.isabs(p) else str(base / p) for p in df["path"]]
    for col in ("duration_s", "sample_rate"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if "session" not in df.columns:
        df["session"] = ""
    if "transcript" not in df.columns:
        df["transcript"] = ""
    # without check_files, the first relative path alone is looked at (two stats for any corpus size): paths
    # written from the working folder instead of the manifest's are found here, not when encoding fails later
    first_relative = next((i for i, w in enumerate(written_paths) if not os.path.isabs(w)), None)
    rows = range(len(df)) if check_files else [] if first_relative is None else [first_relative]
    absent = [i for i in rows if not Path(df["path"].iloc[i]).is_file()]
    written = [written_paths[i] for i in absent]
    from_here = bool(written) and all(not os.path.isabs(w) and Path(w).is_file() for w in written[:5])
    if absent and (check_files or from_here):
        hint = (" (they are there relative to the working folder: a manifest's relative paths are read from the "
                "manifest's own folder; write them from there, or absolute)" if from_here else "")
        count = f"{len(absent)} audio file(s)" if check_files else "audio file(s)"
        raise ManifestError(f"{path}: {count} not found, e.g. {[df['path'].iloc[i] for i in absent[:5]]}{hint}")
    return df.reset_index(drop=True)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as CSV or Parquet (by suffix), atomically."""
    path = Path(path)
    if path.suffix == ".parquet":
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))


def write_manifest(df: pd.DataFrame, path: str | Path) -> None:
    """Write a manifest with the schema columns first, extras after, atomically."""
    cols = [c for c in MANIFEST_COLUMNS if c in df.columns] + [c for c in df.columns if c not in MANIFEST_COLUMNS]
    write_table(df[cols], path)
