"""``mmser transcribe``: add an ASR transcript column to a manifest, resumably.

Each finished transcript is appended to ``<manifest>.<column>.partial.jsonl`` (flushed per decoding batch), so
a killed run resumes where it stopped (with ``--shard I/N``, to ``...partial.IofN.jsonl``, one journal per
shard, merged by the next run without a shard); at the end the column is merged into the manifest (atomic
write), the WER against gold transcripts is printed and stored beside it, and the partial file goes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from mmser.audio import load_audio, require_files
from mmser.data.manifest import atomic_write_bytes, read_manifest, write_manifest
from mmser.errors import MmserError
from mmser.features.asr import asr_column, build_asr, wer_report
from mmser.features.cache import audio_key, text_key
from mmser.features.sharding import in_shard


def _raw_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _read_partial(path: Path) -> dict[str, str]:
    done: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that clip is transcribed again
            done[item["utt_id"]] = item["text"]
    return done


def row_keys(df: pd.DataFrame) -> list[str]:
    """A content key per row for sharding: the audio's hash when the manifest has it, else the utt_id's."""
    if "audio_sha256" in df.columns and (df["audio_sha256"].astype(str).str.len() == 64).all():
        return [audio_key(s) for s in df["audio_sha256"]]
    return [text_key(u) for u in df["utt_id"]]


def transcribe_manifest(manifest: str | Path, spec: str, asr_cfg, force: bool = False, progress: bool = True,
                        asr=None, shard: tuple[int, int] | None = None) -> dict | None:
    """Transcribe every row missing from the ``asr_*`` column of ``spec``; returns the WER report.

    ``shard`` (I, N): transcribe only that shard's rows into its own journal and leave the manifest as it
    is (returns None); a later run without a shard merges every shard's journal into the column."""
    manifest = Path(manifest)
    df = read_manifest(manifest)
    col = asr_column(spec)
    if shard is not None and force:
        raise MmserError("--force and --shard exclude each other: a forced run re-transcribes the whole manifest")
    own = f".{shard[0]}of{shard[1]}" if shard else ""
    partial = manifest.with_name(f"{manifest.name}.{col}.partial{own}.jsonl")
    journals = sorted(manifest.parent.glob(f"{manifest.name}.{col}.partial*.jsonl"))
    done: dict[str, str] = {}
    if not force:
        for journal in journals:
            done.update(_read_partial(journal))
    if col in df.columns and not force:
        done.update({u: t for u, t in zip(df["utt_id"], df[col].fillna("").astype(str)) if t and u not in done})
    keys = row_keys(df)
    todo = [i for i, u in enumerate(df["utt_id"]) if u not in done and in_shard(keys[i], shard)]
    if todo:
        require_files(df["path"].iloc[todo], f"transcribing {len(todo)} clips")
        asr = asr or build_asr(spec, asr_cfg.device, asr_cfg.language, asr_cfg.beam_size, asr_cfg.batch_size)
        batch = max(1, asr.batch_size)
        with open(partial, "a", encoding="utf-8") as handle, \
                tqdm(total=len(todo), desc=f"transcribe {spec}", unit="clip", disable=not progress) as bar:
            for first in range(0, len(todo), batch):
                rows = todo[first:first + batch]
                texts = asr.transcribe_many([load_audio(df["path"].iloc[i]) for i in rows])
                for i, text in zip(rows, texts, strict=True):
                    done[df["utt_id"].iloc[i]] = text
                    handle.write(json.dumps({"utt_id": df["utt_id"].iloc[i], "text": text}) + "\n")
                handle.flush()  # journalled per batch: a kill loses at most the batch in flight
                os.fsync(handle.fileno())
                bar.update(len(rows))
    if shard is not None:
        return None  # the unsharded run merges every shard's journal
    table = _raw_table(manifest)  # as stored: relative paths stay relative
    table[col] = [done.get(u, "") for u in table["utt_id"]]
    write_manifest(table, manifest)
    for journal in [*journals, partial]:
        journal.unlink(missing_ok=True)
    report = None
    if "transcript" in df.columns and (df["transcript"].astype(str).str.strip() != "").any():
        df[col] = table[col].values
        report = wer_report(df, col)
        atomic_write_bytes(manifest.with_name(f"{manifest.stem}.{col}.wer.json"),
                           json.dumps(report, indent=2).encode())
    return report


def describe_wer(manifest: str | Path, spec: str, report: dict | None) -> str:
    """What ``mmser transcribe`` prints: the column written and the WER, overall and per speaker."""
    lines = [f"wrote column {asr_column(spec)} to {manifest}"]
    if report:
        lines.append(f"WER {report['wer']:.3f} over {report['utterances']} utterances with gold transcripts")
        lines += [f"  {spk}: {wer:.3f}" for spk, wer in report.get("per_speaker", {}).items()]
    return "\n".join(lines)
