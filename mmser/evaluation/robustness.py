"""Robustness to noise: a cross-validated run's test clips with noise added at given SNRs, predicted by each
fold's own checkpoint (``mmser robustness``).

For every fold of a run and every SNR, the fold's test clips get ``kind`` noise (white or pink; a draw seeded
by the clip and the SNR, the same for every model) and are predicted through
:class:`~mmser.inference.Predictor` from ``<run>/<fold>/model.safetensors``, the path a deployed model takes.
Predictions are stored per utterance as ``<run>/noise_<kind>_<snr>dB/<fold>/predictions.csv`` (a fold already
written is skipped), so every figure is rebuilt from stored predictions (``mmser table`` lists them as runs too).

``split="val"`` does the same with each fold's validation clips (speakers of the fold's training side, held out of
its training: ``val_predictions.csv``), stored as ``<run>/val_noise_<kind>_<snr>dB/<fold>/val_predictions.csv``
(so results tables, which list test predictions, leave them out): a choice of recipe for noisy recordings made
there never looks at the test speakers.

A model trained with ``speaker_norm.mode: running`` hears each test speaker's clips in the arrival order of
cross-validation, every clip at the same SNR (a speaker in one noisy room), so its running statistics are those
of the speaker's noisy clips so far: at a high SNR it reproduces the fold's clean predictions. A model standardised
with enrolment clips gets, for each test clip, the enrolment clips cross-validation drew for it, with noise at
the same SNR (the speaker enrolled in the same noisy room): at a high SNR it, too, reproduces the clean
predictions.

The number of enrolment clips is the other condition an enrolment model meets (``enrolment_fold``): each clean clip
standardised with a seeded draw of K other clips of its speaker (the draw cross-validation makes for
``speaker_norm.test_clips: K``), stored as ``<run>/[val_]enrol_<K>clips/<fold>/``. On the validation split it
says, without looking at the test speakers, how many clips to ask of each new speaker.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm import tqdm

from mmser.audio import load_audio
from mmser.data.manifest import atomic_write_bytes, write_table
from mmser.data.protocol import text_column
from mmser.errors import MmserError
from mmser.evaluation.crossval import FOLD_CHECKPOINT, PROB_COLUMNS
from mmser.evaluation.selection import group_run
from mmser.evaluation.tables import read_predictions, run_classes, run_row
from mmser.features.augment import add_noise
from mmser.features.speaker_norm import arrival_order, enrolment_draws
from mmser.features.store import enrolment_rows
from mmser.labels import EMOTIONS
from mmser.training.metrics import classification_metrics

if TYPE_CHECKING:
    from mmser.inference import RunningSpeaker

ROBUSTNESS_NOISES = ("white", "pink", "telephone", "telephone_g711")  # babble would need other speakers' test speech
# which clips of a fold are scored: its test speakers, or its validation speakers (from the training side)
SPLIT_PREDICTIONS = {"test": "predictions.csv", "val": "val_predictions.csv"}


def condition_name(kind: str, snr_db: float, split: str = "test") -> str:
    """Folder of a run's predictions under noise: ``noise_white_10dB`` (test clips), ``val_noise_white_10dB``."""
    return ("" if split == "test" else f"{split}_") + f"noise_{kind}_{snr_db:g}dB"


def enrolment_name(clips: int, split: str = "test") -> str:
    """Folder of a run's predictions with ``clips`` enrolment clips per clip: ``enrol_10clips``, ``val_enrol_10clips``."""
    return ("" if split == "test" else f"{split}_") + f"enrol_{clips}clips"


# the folder names of the two functions above; "val_": validation clips
CONDITION_FOLDER = re.compile(r"^(?P<val>val_)?(noise_[a-z]+_-?[\d.]+dB|enrol_\d+clips)$")


def condition_split(folder_name: str) -> str | None:
    """Which clips a condition folder (``noise_white_10dB``, ``val_enrol_10clips``) scored, ``test`` or ``val``;
    None for a folder that is no condition's."""
    match = CONDITION_FOLDER.match(folder_name)
    return None if match is None else "val" if match["val"] else "test"


def enrolment_stem(split: str) -> str:
    """File name (without suffix) of an enrolment-size table and plot: ``enrolment``, or ``enrolment_val``."""
    return "enrolment" if split == "test" else f"enrolment_{split}"


def robustness_stem(split: str, kind: str = "white") -> str:
    """File name (without suffix) of a robustness table and plot: ``robustness``, or ``robustness_val``, for white
    noise; ``robustness_telephone[_val]`` for another kind, so each kind's table sits beside the others."""
    return "robustness" + ("" if kind == "white" else f"_{kind}") + ("" if split == "test" else f"_{split}")


def condition_names(split: str, kind: str, snrs: list[float], enrol_counts: list[int] | None) -> list[str]:
    """Folders of the conditions a robustness call asks for: one per SNR, or (``enrol_counts``) per K."""
    if enrol_counts is not None:
        return [enrolment_name(k, split) for k in enrol_counts]
    return [condition_name(kind, snr, split) for snr in snrs]


def lost_fold_checkpoints(run: Path, names: list[str]) -> list[Path]:
    """Checkpoints of ``run``'s cross-validated folds (those with stored test predictions) that a condition of
    ``names`` still has to be predicted with, but that are gone: cross-validation keeps such a fold as done and
    will not write them again. Empty when every condition of a fold is stored (its table needs no weights)."""
    return [done.parent / FOLD_CHECKPOINT for done in sorted(run.glob("*/predictions.csv"))
            if not all(condition_stored(run, name, done.parent.name) for name in names)
            and not (done.parent / FOLD_CHECKPOINT).is_file()]


def condition_stored(run: Path, name: str, fold: str) -> bool:
    """Whether condition ``name``'s predictions of ``fold`` are stored (its metrics are written last)."""
    return (run / name / fold / "metrics.json").is_file()


def noise_seed(utt_id: str, kind: str, snr_db: float) -> int:
    return int(hashlib.sha256(f"{utt_id}|{kind}|{snr_db:g}".encode()).hexdigest()[:15], 16)


def noisy_fold(run: Path, fold: str, rows: pd.DataFrame, kind: str, snrs: list[float], device: str = "cpu",
               progress: bool = True, split: str = "test") -> None:
    """Predict fold ``fold``'s test clips (``split="val"``: its validation clips) with ``kind`` noise at each of
    ``snrs`` (dB) not stored yet: the fold's checkpoint is loaded once and each clip read once for all of them."""
    todo = [snr for snr in snrs if not condition_stored(run, condition_name(kind, snr, split), fold)]
    if not todo:
        return
    clean, predictor, transcripts = _fold_predictor(run, fold, rows, device, split)
    desc = f"{run.name}/{fold} noisy{'' if split == 'test' else ' ' + split}"
    if predictor.needs_enrolment:
        # the enrolment draw cross-validation made: test speakers' (speaker_norm.test_labels, test_clips), or training's
        sn = predictor.features.speaker_norm
        pool = enrolment_rows(rows, sn.test_enrolment_labels if split == "test" else sn.labels)
        clips = sn.test_enrolment_clips if split == "test" else sn.clips
        enrolled = _enrolled_probabilities(predictor, clean, rows, transcripts, kind, todo, desc, progress, pool, [clips])
        probs = {snr: enrolled[snr, clips] for snr in todo}
    else:
        probs = _probabilities(predictor, clean, rows, transcripts, kind, todo, desc, progress)
    for snr in todo:
        extra = {"noise": kind, "snr_db": snr}
        if predictor.needs_enrolment:
            extra["enrolment"] = "the speaker's clips cross-validation drew, with noise at the same SNR"
        _write_condition(run / condition_name(kind, snr, split) / fold, run, fold, clean, probs[snr], split, extra)


def enrolment_fold(run: Path, fold: str, rows: pd.DataFrame, counts: list[int], device: str = "cpu",
                   progress: bool = True, split: str = "test") -> None:
    """Predict fold ``fold``'s clean test clips (``split="val"``: its validation clips), each standardised with K
    enrolment clips of its speaker for each K of ``counts`` not stored yet: the seeded draw of K among the clips
    cross-validation could draw from (the test speakers' pool, ``speaker_norm.test_labels``, or training's), the
    draw cross-validation makes for ``speaker_norm.test_clips: K``. Refuses a model without enrolment clips."""
    todo = [k for k in counts if not condition_stored(run, enrolment_name(k, split), fold)]
    if not todo:
        return
    clean, predictor, transcripts = _fold_predictor(run, fold, rows, device, split)
    if not predictor.needs_enrolment:
        raise MmserError(f"{run / fold / FOLD_CHECKPOINT}: standardises no clip with enrolment clips "
                         "(features.speaker_norm.mode is not enrol): the number of enrolment clips does not apply")
    sn = predictor.features.speaker_norm
    pool = enrolment_rows(rows, sn.test_enrolment_labels if split == "test" else sn.labels)
    desc = f"{run.name}/{fold} enrolment sizes{'' if split == 'test' else ' ' + split}"
    probs = _enrolled_probabilities(predictor, clean, rows, transcripts, "", [None], desc, progress, pool, todo)
    for k in todo:
        extra = {"enrolment_clips": k, "trained_with_clips": sn.clips,
                 "enrolment": "a seeded draw of that many of the speaker's other clips, as cross-validation draws them"}
        _write_condition(run / enrolment_name(k, split) / fold, run, fold, clean, probs[None, k], split, extra)


def _fold_predictor(run: Path, fold: str, rows: pd.DataFrame, device: str, split: str):
    """The fold's stored clean predictions of ``split`` (a table), its checkpoint's predictor and the transcripts
    its fused members read (None for audio-only ones)."""
    from mmser.inference import Predictor

    stored = run / fold / SPLIT_PREDICTIONS[split]
    if not stored.is_file():
        raise MmserError(f"{stored}: no {split} predictions stored for this fold (robustness --split val needs runs "
                         "trained with validation speakers, split.val_speakers > 0)")
    clean = pd.read_csv(stored, dtype={"true": str, "pred": str, "utt_id": str})
    predictor = Predictor.from_checkpoint(run / fold / FOLD_CHECKPOINT, device=device)
    sources = {m.text_source for m in predictor.ckpt.members if m.text_source}
    transcripts = text_column(rows, sources.pop()).set_axis(rows["utt_id"]) if sources else None
    return clean, predictor, transcripts


def _write_condition(out: Path, run: Path, fold: str, clean: pd.DataFrame, probs: np.ndarray, split: str,
                     extra: dict) -> None:
    """One condition's predictions ``probs`` (N, 8) of the fold's clips (``clean``'s order) and metrics -> ``out``."""
    table = clean[["utt_id", "speaker", "true"]].copy()
    table["pred"] = [EMOTIONS[i] for i in probs.argmax(axis=1)]
    table[PROB_COLUMNS] = np.round(probs, 6)
    metrics = classification_metrics(table["true"].values, table["pred"].values, run_classes(run))
    metrics.update({"fold": fold, **extra, "split": split})
    write_table(table, out / SPLIT_PREDICTIONS[split])
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=2).encode())


def _noisy(wav: np.ndarray, utt_id: str, kind: str, snr: float | None) -> np.ndarray:
    """``wav`` with ``kind`` noise at ``snr`` dB, the draw seeded by the clip and the SNR, clipped to [-1, 1];
    ``wav`` itself for ``snr`` None (clean)."""
    if snr is None:
        return wav
    return np.clip(add_noise(wav, kind, snr, np.random.default_rng(noise_seed(utt_id, kind, snr))), -1, 1)


def _probabilities(predictor, clean: pd.DataFrame, rows: pd.DataFrame, transcripts: pd.Series | None, kind: str,
                   snrs: list[float], desc: str, progress: bool) -> dict[float, np.ndarray]:
    """SNR -> ``(N, 8)`` probabilities of the fold's N test clips (``clean``'s order) with noise, for models that
    standardise a clip alone or with its speaker's clips so far (``running``: batches follow each speaker's
    arrival order, a state per speaker and SNR)."""
    paths = rows.set_index("utt_id")["path"]
    probs = {snr: np.zeros((len(clean), len(EMOTIONS)), dtype=np.float32) for snr in snrs}
    running: dict[tuple[str, float], RunningSpeaker] = {}  # (speaker, SNR) -> RunningSpeaker of its noisy clips so far
    batch = 8
    for positions in tqdm(_batches(clean, rows, predictor.accumulates_speaker, batch), desc=desc, unit="batch",
                          disable=not progress):
        ids = clean["utt_id"].iloc[positions].tolist()
        wavs = [load_audio(paths[u]) for u in ids]
        texts = [None if transcripts is None else str(transcripts[u]) for u in ids]
        for snr in snrs:
            clips = [(_noisy(wav, u, kind, snr), text) for u, wav, text in zip(ids, wavs, texts)]
            speaker = None
            if predictor.accumulates_speaker:  # one batch holds one speaker's next clips
                key = (str(clean["speaker"].iloc[positions[0]]), snr)
                if key not in running:
                    running[key] = predictor.new_speaker()
                speaker = running[key]
            for position, result in zip(positions, predictor.predict_many(clips, batch_size=batch, speaker=speaker)):
                if isinstance(result, Exception):
                    raise result
                probs[snr][position] = [result.probabilities[e] for e in EMOTIONS]
    return probs


def _enrolled_probabilities(predictor, clean: pd.DataFrame, rows: pd.DataFrame, transcripts: pd.Series | None,
                            kind: str, snrs: list[float | None], desc: str, progress: bool,
                            pool: list[bool] | None, counts: list[int],
                            batch: int = 8) -> dict[tuple[float | None, int], np.ndarray]:
    """As :func:`_probabilities`, for models standardised with enrolment clips, keyed (SNR, K) for each SNR of
    ``snrs`` (None: clean) and K of ``counts``: each clip of ``clean`` gets the K enrolment clips cross-validation
    draws for it with K per clip (the same draw, :func:`enrolment_draws` over the protocol's rows, ``pool``: the
    rows it could draw from), all with noise at the clip's SNR (a speaker enrolled in the same noisy room),
    predicted through :meth:`Predictor.predict_many` with their statistics (:meth:`Predictor.clip_moments`).

    Speaker by speaker (a draw never leaves the speaker) and SNR by SNR, each noisy clip is encoded once: its
    frames are kept (:meth:`Predictor.keeping_frames`) between taking its moments and predicting it, for every K,
    in batches of ``batch`` clips."""
    from mmser.inference import combine_speaker

    ids = rows["utt_id"].astype(str).tolist()
    speakers = rows["speaker"].astype(str).tolist()
    position = {u: i for i, u in enumerate(clean["utt_id"])}
    scored_speakers = set(clean["speaker"].astype(str))
    needed = [j for j, speaker in enumerate(speakers) if speaker in scored_speakers]  # scored clips = enrolment pool
    if any(ids[j] not in position for j in needed) or len(needed) != len(clean):
        raise MmserError("robustness: the fold's scored clips are not their speakers' rows of the protocol (was the "
                         "manifest changed after cross-validation?)")
    # other speakers' rows only keep the draw's order (one seeded draw over every row, as in training)
    draws = {k: enrolment_draws(speakers, k, may_enrol=pool) for k in counts}
    by_speaker: dict[str, list[int]] = {}
    for j in needed:
        by_speaker.setdefault(speakers[j], []).append(j)
    paths = rows["path"].tolist()
    probs = {(snr, k): np.zeros((len(clean), len(EMOTIONS)), dtype=np.float32) for snr in snrs for k in counts}
    with tqdm(total=len(needed) * len(probs), desc=desc, unit="clip", disable=not progress) as bar:
        for speaker_rows in by_speaker.values():
            wavs = {j: load_audio(paths[j]) for j in speaker_rows}
            texts = {j: None if transcripts is None else str(transcripts[ids[j]]) for j in speaker_rows}
            for snr in snrs:
                noisy = {j: _noisy(wav, ids[j], kind, snr) for j, wav in wavs.items()}
                with predictor.keeping_frames():
                    own = dict(zip(speaker_rows, predictor.clip_moments([noisy[j] for j in speaker_rows], batch)))
                    for count, drawn in draws.items():
                        for start in range(0, len(speaker_rows), batch):
                            chunk = speaker_rows[start:start + batch]
                            given = [combine_speaker([own[k] for k in drawn[j]]) for j in chunk]
                            results = predictor.predict_many([(noisy[j], texts[j]) for j in chunk], batch_size=batch,
                                                             speaker=given)
                            for j, result in zip(chunk, results):
                                if isinstance(result, Exception):
                                    raise result
                                probs[snr, count][position[ids[j]]] = [result.probabilities[e] for e in EMOTIONS]
                            bar.update(len(chunk))
    return probs


def _batches(clean: pd.DataFrame, rows: pd.DataFrame, by_arrival: bool, size: int) -> list[list[int]]:
    """Positions in ``clean`` (a fold's test predictions) in batches of at most ``size``: in stored order, or,
    ``by_arrival``, speaker by speaker in the arrival order cross-validation used (:func:`arrival_order` over the
    protocol's rows), a batch never holding two speakers."""
    if not by_arrival:
        return [list(range(start, min(start + size, len(clean)))) for start in range(0, len(clean), size)]
    position = {u: i for i, u in enumerate(clean["utt_id"])}
    ids = rows["utt_id"].astype(str).tolist()
    batches = []
    for speaker, order in arrival_order(rows["speaker"].astype(str).tolist()).items():
        arrived = [position[ids[j]] for j in order if ids[j] in position]
        batches += [arrived[start:start + size] for start in range(0, len(arrived), size)]
    if sum(map(len, batches)) != len(clean):
        raise MmserError("robustness: the fold's test clips are not all in the protocol's rows (was the manifest "
                         "changed after cross-validation?)")
    return batches


def robustness_table(runs: list[Path], kind: str, snrs: list[float], split: str = "test",
                     val_groups: int = 1) -> pd.DataFrame:
    """UA (mean over folds, %) of each run on clean test clips (``split="val"``: validation clips, mean over
    ``val_groups`` validation groups) and at each SNR, from the stored predictions."""
    records = []
    for run in runs:
        record = {"run": run.name, "clean": mean_group_ua(run, None, split, val_groups)}
        for snr in snrs:
            record[f"{snr:g} dB"] = mean_group_ua(run, condition_name(kind, snr, split), split, val_groups)
        records.append(record)
    return pd.DataFrame(records)


def enrolment_table(runs: list[Path], counts: list[int], split: str = "test", val_groups: int = 1) -> pd.DataFrame:
    """UA (mean over folds, %) of each run as cross-validated (``clean``: the enrolment clips it drew) and with
    each K of ``counts`` enrolment clips per clip, from the stored predictions (``split="val"``: mean over
    ``val_groups`` validation groups)."""
    records = []
    for run in runs:
        record = {"run": run.name, "clean": mean_group_ua(run, None, split, val_groups)}
        for k in counts:
            record[f"{k} clips"] = mean_group_ua(run, enrolment_name(k, split), split, val_groups)
        records.append(record)
    return pd.DataFrame(records)


def mean_group_ua(run: Path, condition: str | None, split: str, val_groups: int = 1) -> float:
    """UA (%) of ``run``'s ``condition`` (None: as cross-validated), mean over folds, then over the ``val_groups``
    validation groups (:func:`~mmser.evaluation.selection.group_run`)."""
    runs = [group_run(run, group) for group in range(val_groups)]
    return float(np.mean([mean_fold_ua(r if condition is None else r / condition, r, split) for r in runs]))


def mean_fold_ua(folder: Path, run: Path, split: str) -> float:
    """UA (%) of ``folder``'s folds' ``split`` predictions, mean over folds, over the classes of ``run``."""
    if split == "test":
        return 100 * run_row(folder, folder.parent)["UA_mean"]
    paths = sorted(folder.glob(f"*/{SPLIT_PREDICTIONS[split]}"))
    if not paths:
        raise MmserError(f"{folder}: no <fold>/{SPLIT_PREDICTIONS[split]} stored")
    classes = run_classes(run)
    scores = [classification_metrics(p["true"].values, p["pred"].values, classes)["UA"]
              for p in map(read_predictions, paths)]
    return 100 * float(np.mean(scores))


def robustness_markdown(table: pd.DataFrame, kind: str, command: str, split: str = "test",
                        enrolment: bool = False, val_groups: int = 1) -> str:
    """The table of :func:`robustness_table` (``enrolment``: of :func:`enrolment_table`) as markdown."""
    columns = [c for c in table.columns if c != "run"]
    groups = (f"; mean over {val_groups} disjoint groups of them, each fold trained once per group"
              if val_groups > 1 else "")
    clips = ("test clips", "test speakers") if split == "test" else (
        f"validation clips (speakers of each fold's training side, held out of its training{groups})",
        "validation speakers")
    added = {"telephone": "band-limited as an 8 kHz telephone line carries them (nothing above 4 kHz), with white "
                          "noise in that band added at each SNR",
             "telephone_g711": "as a digital telephone line carries them (8 kHz, the 300-3400 Hz voice band, 8-bit "
                               "mu-law: telephone_g711), with white noise in that band added at each SNR before "
                               "the codec"}.get(kind, f"with {kind} noise added at each SNR")
    condition = (added if not enrolment else
                 "each standardised with K enrolment clips of its speaker (a seeded draw among its other clips; "
                 "clean: the clips cross-validation drew)")
    lines = [f"Generated by `{command}` from the per-utterance predictions below this folder.",
             f"UA (%), mean over folds, on the {clips[0]} {condition}; each fold's "
             f"checkpoint predicts its own {clips[1]}.", "",
             "| run | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for r in table.to_dict("records"):
        lines.append(f"| {r['run']} | " + " | ".join(f"{r[c]:.1f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"
