"""Shared preparation step: corpus scanner output -> validated manifest + summary + problem report.

Each corpus module only knows its layout (``scan(root) -> Scan``). Everything else — label mapping,
audio validation, duplicate checks, the summary, strict vs ``skip_bad`` behaviour — happens here once.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from mmser.audio import SAMPLE_RATE, AudioError, audio_info, file_sha256, narrow_band_warning, validate_waveform
from mmser.data.manifest import write_manifest, write_table
from mmser.errors import MmserError
from mmser.labels import UNKNOWN_LABEL_FIX, LabelMap, UnknownLabelError, folded_label


@dataclass
class Candidate:
    """One utterance as a corpus layout describes it, before validation."""

    utt_id: str
    path: str
    corpus: str
    speaker: str
    raw_label: str
    gender: str = ""
    session: str = ""
    transcript: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Problem:
    """A file left out of (or stopping) preparation, and why."""

    path: str
    utt_id: str
    reason: str
    unknown_label: str = ""  # the raw label, when that is the reason (summed up with the fix)


def unknown_label_lines(problems: list[Problem]) -> list[str]:
    """One line naming every unknown raw label with its count, and the keys that map or exclude them."""
    counts = Counter(folded_label(p.unknown_label) for p in problems if p.unknown_label)
    if not counts:
        return []
    listed = ", ".join(f"{label!r} ({n})" for label, n in counts.most_common())
    return [f"unknown label(s) {listed}: {UNKNOWN_LABEL_FIX} (`mmser labels <corpus>` prints the known ones)"]


@dataclass
class Scan:
    """What a corpus module found: candidates, layout problems, and notes for the summary."""

    candidates: list[Candidate]
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # speaker -> fold, when the layout publishes its folds (EmoBox): written beside the manifest as
    # ``<manifest stem>.folds.csv`` for ``split.protocol: file``
    folds: dict[str, str] | None = None


def os_metadata_notes(left_out: int) -> list[str]:
    """The summary's note for ``left_out`` entries dropped by :func:`~mmser.audio.without_os_metadata` (none for 0)."""
    return [f"left out {left_out} macOS metadata entries (._<name>, __MACOSX/): not audio"] if left_out else []


class PrepareError(MmserError):
    """Preparation stopped on bad files; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem], report: Path | None = None):
        self.problems = problems
        lines = [f"  {p.path}: {p.reason}" for p in problems[:50]]
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        where = f"\nfull list: {report}" if report else ""
        fix = "".join(f"\n{line}" for line in unknown_label_lines(problems))
        super().__init__(
            f"{len(problems)} bad file(s); nothing written (use --skip-bad to write the manifest without them):\n"
            + "\n".join(lines) + more + where + fix
        )


MAX_WORKERS = 8  # processes that decode audio in prepare (disks, not cores, bound more than this)
PARALLEL_MIN_CLIPS = 200  # fewer clips are checked in the calling process (starting workers costs more)
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (full scale = 1.0)
QUIET_PEAK_DBFS = -36.0  # dBFS, clips whose peak is below this are reported as very quiet


def check_audio(path: str) -> dict[str, Any]:
    """Decode ``path`` fully once; returns duration_s, sample_rate, audio_sha256, peak_dbfs, clipped_fraction.

    Raises AudioError for anything unusable.
    """
    info = audio_info(path)
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)  # (n_samples, channels)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from None
    validate_waveform(data.mean(axis=1), path, sr)  # the one rule of mmser.audio
    peak = float(np.abs(data).max())
    return {
        "duration_s": round(info.frames / info.samplerate, 4), "sample_rate": int(info.samplerate),
        "audio_sha256": file_sha256(path), "peak_dbfs": round(20 * np.log10(peak), 2),
        "clipped_fraction": float(np.mean(np.abs(data) >= CLIP_LEVEL)),
    }


def _checked(path: str) -> dict[str, Any] | str:
    """:func:`check_audio`'s facts, or the reason the file cannot be used (a plain string crosses processes)."""
    try:
        return check_audio(path)
    except AudioError as err:
        return err.reason


def check_all(paths: list[str], workers: int = 0, progress: bool = True) -> list[dict[str, Any] | str]:
    """:func:`_checked` of every path, in order, decoded by ``workers`` processes (0: one per core available, at
    most :data:`MAX_WORKERS`; a corpus under :data:`PARALLEL_MIN_CLIPS` clips is checked in this process)."""
    if workers == 0:
        workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                      MAX_WORKERS)
    bar = {"desc": "checking audio", "unit": "clip", "total": len(paths), "disable": not progress}
    if workers <= 1 or len(paths) < PARALLEL_MIN_CLIPS:
        return [_checked(path) for path in tqdm(paths, **bar)]
    with ProcessPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(_checked, paths, chunksize=16), **bar))


def build_manifest(
    scan: Scan, label_map: LabelMap, progress: bool = True, workers: int = 0
) -> tuple[pd.DataFrame, list[Problem], list[str], dict[str, int]]:
    """Validate the scan (``workers`` processes decode the audio: :func:`check_all`): returns (manifest,
    problems, warnings, excluded-label counts)."""
    problems = list(scan.problems)
    warnings: list[str] = []
    excluded: dict[str, int] = defaultdict(int)
    rows = []
    seen_ids: dict[str, str] = {}
    labelled: list[tuple[Candidate, str]] = []
    for cand in scan.candidates:
        if cand.utt_id in seen_ids:
            problems.append(Problem(cand.path, cand.utt_id, f"duplicate utterance id (also {seen_ids[cand.utt_id]})"))
            continue
        seen_ids[cand.utt_id] = cand.path
        try:
            label = label_map.map(cand.raw_label, source=cand.path)
        except UnknownLabelError as err:
            problems.append(Problem(cand.path, cand.utt_id, f"unknown label {err.raw_label!r}", err.raw_label))
            continue
        if label is None:
            excluded[cand.raw_label] += 1
            continue
        labelled.append((cand, label))
    for (cand, label), audio in zip(labelled, check_all([c.path for c, _ in labelled], workers, progress)):
        if isinstance(audio, str):
            problems.append(Problem(cand.path, cand.utt_id, audio))
            continue
        rows.append({
            "utt_id": cand.utt_id, "path": cand.path, "corpus": cand.corpus, "speaker": cand.speaker,
            "gender": cand.gender, "session": cand.session, "label": label, "raw_label": cand.raw_label,
            "transcript": cand.transcript, **audio, **cand.extras,
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        for sha, group in df.groupby("audio_sha256"):
            if len(group) > 1:
                labels = sorted(set(group["label"]))
                speakers = sorted(set(group["speaker"]))
                warnings.append(
                    f"byte-identical audio in {len(group)} clips {list(group['utt_id'])} "
                    f"(labels {labels}, speakers {speakers})"
                )
        clipped = df[df["clipped_fraction"] > 0]
        if len(clipped):
            warnings.append(f"{len(clipped)} clip(s) reach full scale (clipping), worst "
                            f"{clipped['clipped_fraction'].max():.2e} of samples: "
                            f"{list(clipped.nlargest(5, 'clipped_fraction')['utt_id'])}")
        quiet = df[df["peak_dbfs"] < QUIET_PEAK_DBFS]
        if len(quiet):
            warnings.append(f"{len(quiet)} clip(s) peak below {QUIET_PEAK_DBFS:.0f} dBFS (very quiet), quietest "
                            f"{list(quiet.nsmallest(5, 'peak_dbfs')['utt_id'])}")
        narrow = df[df["sample_rate"] < SAMPLE_RATE]
        if len(narrow):
            warnings.append(narrow_band_warning(list(narrow["utt_id"]), narrow["sample_rate"],
                                                mixed=len(narrow) < len(df)))
    return df, problems, warnings, dict(excluded)


def summarize(df: pd.DataFrame, problems: list[Problem], warnings: list[str], excluded: dict[str, int],
              notes: list[str]) -> str:
    """Human-readable summary: clips, hours, per-label and per-speaker counts, and everything odd."""
    lines = []
    if df.empty:
        lines.append("no usable clips")
    else:
        hours = df["duration_s"].sum() / 3600
        lines.append(f"{len(df)} clips, {hours:.2f} h, {df['speaker'].nunique()} speakers, "
                     f"{df['label'].nunique()} labels, corpus {', '.join(sorted(df['corpus'].unique()))}")
        lines.append(f"duration: min {df['duration_s'].min():.2f} s, median {df['duration_s'].median():.2f} s, "
                     f"max {df['duration_s'].max():.2f} s; sample rates {sorted(df['sample_rate'].unique().tolist())} Hz")
        lines.append("per label: " + ", ".join(f"{k} {v}" for k, v in df["label"].value_counts().sort_index().items()))
        lines.append("per speaker: " + ", ".join(f"{k} {v}" for k, v in df["speaker"].value_counts().sort_index().items()))
        if df["session"].astype(str).str.len().gt(0).any():
            lines.append("per session: " + ", ".join(f"{k} {v}" for k, v in df["session"].value_counts().sort_index().items()))
    if excluded:
        lines.append("excluded labels (by config): " + ", ".join(f"{k} {v}" for k, v in sorted(excluded.items())))
    lines += [f"note: {n}" for n in notes]
    lines += [f"warning: {w}" for w in warnings]
    if problems:
        lines.append(f"{len(problems)} bad file(s):")
        lines += [f"  {p.path}: {p.reason}" for p in problems[:20]]
        if len(problems) > 20:
            lines.append(f"  ... and {len(problems) - 20} more (see the report)")
        lines += unknown_label_lines(problems)
    return "\n".join(lines)


def prepare(scan: Scan, label_map: LabelMap, out: str | Path, skip_bad: bool = False,
            progress: bool = True, workers: int = 0) -> tuple[pd.DataFrame, str]:
    """Validate ``scan`` and write the manifest to ``out``; returns (manifest, summary text).

    With problems and not ``skip_bad``: writes only ``<out>.problems.csv`` and raises PrepareError.
    With ``skip_bad``: writes the manifest without the bad files plus that report.
    """
    out = Path(out)
    df, problems, warnings, excluded = build_manifest(scan, label_map, progress, workers)
    report = out.with_name(out.stem + ".problems.csv")
    if problems:
        write_table(pd.DataFrame([p.__dict__ for p in problems]), report)
        if not skip_bad:
            raise PrepareError(problems, report)
    else:
        report.unlink(missing_ok=True)
    if df.empty:
        raise PrepareError(problems or [Problem(str(out), "", "no usable clips found")])
    df["path"] = [_portable_path(p, out) for p in df["path"]]
    write_manifest(df, out)
    notes = list(scan.notes)
    if scan.folds is not None:
        folds_file = out.with_name(out.stem + ".folds.csv")
        kept = sorted(set(df["speaker"]))
        write_table(pd.DataFrame({"speaker": kept, "fold": [scan.folds[s] for s in kept]}), folds_file)
        notes.append(f"the layout's folds: {folds_file} (split.protocol=file split.folds_file={folds_file})")
    return df, summarize(df, problems, warnings, excluded, notes)


def _portable_path(path: str, manifest: Path) -> str:
    """Relative to the manifest's folder when the audio lies below it, else absolute."""
    audio, base = Path(path).resolve(), manifest.resolve().parent
    return audio.relative_to(base).as_posix() if audio.is_relative_to(base) else str(audio)
