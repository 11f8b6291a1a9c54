"""Cross-validation of one model over a protocol's folds: train each fold's members, predict its test
speakers, persist, resume.

Per fold it stores ``config.yaml`` (resolved), ``model.safetensors`` (the fold's members as one mmser
checkpoint: ``mmser predict --checkpoint <run>/<fold>/model.safetensors`` works for any fold),
``predictions.csv`` (utt_id, speaker, true, pred and the 8 probabilities), ``val_predictions.csv`` (the same
for the fold's validation speakers, read by recipe selection) and, last, ``metrics.json``;
a fold whose ``metrics.json`` exists is skipped on a re-run. Model selection (early stopping, best
epoch) uses validation speakers drawn from the training side only; the test fold is only predicted.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from mmser.checkpoint import Member, load_checkpoint, save_checkpoint
from mmser.config import stored_yaml_under_schema, to_yaml
from mmser.data.manifest import atomic_write_bytes, write_table
from mmser.data.protocol import Protocol, limit_per_class, make_folds, sentence_overlap
from mmser.data.splits import SPEAKER_DEPENDENT_NOTE, Fold, speakers_of, validation_group
from mmser.distributed import is_main, say
from mmser.errors import MmserError
from mmser.features.store import FeatureStore
from mmser.features.variants import prediction_datasets, training_dataset
from mmser.evaluation.tables import SUBGROUP_COLUMNS
from mmser.labels import EMOTIONS
from mmser.run_lock import writing
from mmser.training.fit import predict_proba
from mmser.training.member import ensemble_members, member_dims, train_member
from mmser.training.metrics import classification_metrics

PROB_COLUMNS = [f"prob_{e}" for e in EMOTIONS]
FUSED_KINDS = ("concat", "cross_attn")
FOLD_CHECKPOINT = "model.safetensors"


def run_config(cfg: DictConfig, protocol: Protocol) -> DictConfig:
    """The config a run stores: ``cfg`` with the protocol's classes recorded in ``data.classes``."""
    stored = copy.deepcopy(cfg)
    stored.data.classes = list(protocol.classes)
    return stored


def audio_only_start(audio_init_dir: Path | None, fold: str, member: int) -> dict:
    """The weights of member ``member`` of the fold's audio-only model (``model.init_from_audio_only``)."""
    source = (audio_init_dir or Path("")) / fold / FOLD_CHECKPOINT
    if audio_init_dir is None or not source.is_file():
        raise MmserError(f"model.init_from_audio_only: no audio-only checkpoint at {source} "
                         "(run the audio_only model first, e.g. through `mmser ablate`)")
    members = load_checkpoint(source).members
    if member >= len(members):
        raise MmserError(f"{source}: {len(members)} audio-only member(s), the fused ensemble needs member {member}")
    return members[member].model.state_dict()


def predicted(model, datasets: list) -> np.ndarray:
    """``model``'s probabilities ``(N, 8)`` of the same N clips, averaged over ``datasets`` (their readings)."""
    return np.mean([predict_proba(model, d) for d in datasets], axis=0)


def prediction_table(df: pd.DataFrame, ids: tuple[str, ...], probs: np.ndarray) -> pd.DataFrame:
    """Per-utterance predictions of ``ids``: utt_id, speaker, true, pred, the 8 probabilities ``probs`` (N, 8), and
    the rows' corpus and gender when the manifest has them."""
    rows = df.set_index("utt_id").loc[list(ids)]
    table = pd.DataFrame({"utt_id": list(ids), "speaker": rows["speaker"].values, "true": rows["label"].values,
                          "pred": [EMOTIONS[i] for i in probs.argmax(axis=1)]})
    table[PROB_COLUMNS] = np.round(probs, 6)
    for column in SUBGROUP_COLUMNS:  # the tables' per-corpus and per-gender rows
        if column in rows.columns:
            table[column] = rows[column].fillna("").astype(str).values
    return table


def run_fold(protocol: Protocol, fold: Fold, cfg: DictConfig, store: FeatureStore, fold_dir: Path,
             text_source: str | None, audio_init_dir: Path | None = None) -> dict:
    """Train the fold's members, predict its test speakers, write checkpoint + predictions + metrics."""
    df, kind = protocol.rows, cfg.model.kind
    store = store.with_population_prior(fold.train)  # features.speaker_norm.prior_clips: the fold's training clips
    members, probs, val_probs, summaries = [], [], [], []
    start = time.perf_counter()
    for j, (encoder, seed) in enumerate(ensemble_members(list(cfg.features.audio_encoders), kind, cfg.train.seed,
                                                         cfg.train.ensemble_seeds)):
        init = None
        if cfg.model.init_from_audio_only and kind in FUSED_KINDS:
            init = audio_only_start(audio_init_dir, fold.name, j)
        train = training_dataset(store, limit_per_class(df, fold.train, cfg.train.max_per_class, seed), encoder,
                                 text_source, cfg.features)
        val = store.dataset(fold.val, encoder, text_source) if fold.val else None
        dims = member_dims(store, cfg.model, encoder, text_source, protocol.class_mask)
        model, summary = train_member(dims, train, val, cfg.train, cfg.trainer, seed, init,
                                      cfg.model.freeze_audio_branch, store, encoder, cfg.model.finetune,
                                      cfg.features.augment)
        members.append(Member(model, encoder, store.fingerprints.get(encoder) if encoder else None, text_source))
        # features.test_time_speeds: the average over each clip and its copies at other speeds
        probs.append(predicted(model, prediction_datasets(store, fold.test, encoder, text_source, cfg.features, test=True)))
        if fold.val:
            val_probs.append(predicted(model, prediction_datasets(store, fold.val, encoder, text_source, cfg.features)))
        summaries.append(summary)
    stored_cfg = run_config(cfg, protocol)
    text_fingerprint = store.fingerprints.get(store.spec.text_encoder) if text_source else None
    if is_main():  # several training processes: one writes
        save_checkpoint(fold_dir / FOLD_CHECKPOINT, members, store.spec, text_fingerprint,
                        OmegaConf.to_container(stored_cfg, resolve=True),
                        {"fold": fold.name, "test_speakers": list(fold.test_speakers),
                         "val_speakers": list(fold.val_speakers), "train_speakers": speakers_of(df, fold.train)},
                        store.speaker_prior)
    table = prediction_table(df, fold.test, np.mean(probs, axis=0))  # ensemble average
    metrics = classification_metrics(table["true"].values, table["pred"].values, list(protocol.classes))
    metrics.update({
        "fold": fold.name, "test_speakers": list(fold.test_speakers), "val_speakers": list(fold.val_speakers),
        "n_train": len(limit_per_class(df, fold.train, cfg.train.max_per_class, int(cfg.train.seed))),
        "n_val": len(fold.val), "train_seconds": round(time.perf_counter() - start, 2), "members": summaries,
        "protocol": "cross_corpus" if protocol.is_cross_corpus else str(cfg.split.protocol),
        "speaker_independent": not fold.speaker_dependent,
    })
    if text_source:
        metrics["test_sentences_in_train"] = sentence_overlap(df, fold, text_source)
    val_table = None
    if val_probs:  # the ensemble on the fold's validation speakers: what recipe selection reads (mmser select)
        val_table = prediction_table(df, fold.val, np.mean(val_probs, axis=0))
        val_metrics = classification_metrics(val_table["true"].values, val_table["pred"].values, list(protocol.classes))
        metrics["val_UA"], metrics["val_WA"] = val_metrics["UA"], val_metrics["WA"]
    if is_main():
        if val_table is not None:
            write_table(val_table, fold_dir / "val_predictions.csv")
        write_table(table, fold_dir / "predictions.csv")
        atomic_write_bytes(fold_dir / "metrics.json", json.dumps(metrics, indent=2).encode())  # last: the fold is done
    return metrics


def folds_done(cfg: DictConfig, protocol: Protocol, out_dir: str | Path) -> bool:
    """Every fold of ``cfg``'s protocol has its ``metrics.json`` under ``out_dir`` (a run has nothing left to train,
    so it needs no features)."""
    return all((Path(out_dir) / fold.name / "metrics.json").is_file() for fold in make_folds(protocol, cfg.split))


def _fold_score(metrics: dict, blind: bool) -> str:
    """A fold's progress figure: test UA and WA, or (``blind``) validation UA only."""
    if blind:
        return f"validation UA {metrics['val_UA']:.3f}" if "val_UA" in metrics else "no validation UA"
    return f"UA {metrics['UA']:.3f}  WA {metrics['WA']:.3f}"


def run_cv(cfg: DictConfig, protocol: Protocol, store: FeatureStore | None, out_dir: str | Path,
           text_source: str | None = None, audio_init_dir: Path | None = None, blind: bool = False,
           val_group: int = 0) -> dict:
    """Every fold of the protocol for ``cfg.model.kind`` (``text_source``: the transcripts a text or fused
    model reads); returns a summary (per-fold metrics, timings) also written to ``summary.json``. Folds with a
    ``metrics.json`` are kept; their ``train_seconds`` count in the summary's ``cv_seconds``, and a call that
    trains no fold leaves an existing ``summary.json`` (its encoding time among it) as it is.
    ``blind``: progress lines show each fold's validation UA, not its test UA (recipe selection: whoever
    watches it choosing does not see the test folds before the choice). ``val_group``: each fold validates on
    that group of its training-side speakers (:func:`~mmser.data.splits.validation_group`; 0: the fold's own).
    ``store`` may be None when every fold is done (:func:`folds_done`): nothing is read. Another command writing
    ``out_dir`` at the same time is refused (:func:`mmser.run_lock.writing`)."""
    with writing(out_dir):
        return _run_cv(cfg, protocol, store, Path(out_dir), text_source, audio_init_dir, blind, val_group)


def _run_cv(cfg: DictConfig, protocol: Protocol, store: FeatureStore | None, out_dir: Path, text_source: str | None,
            audio_init_dir: Path | None, blind: bool, val_group: int) -> dict:
    """:func:`run_cv` with ``out_dir``'s writer lock held."""
    kind = cfg.model.kind
    text_source = None if kind == "audio_only" else text_source or cfg.data.text_source
    folds = [validation_group(protocol.rows, fold, val_group, cfg.split.seed) for fold in make_folds(protocol, cfg.split)]
    resolved = to_yaml(run_config(cfg, protocol))
    stored = out_dir / "config.yaml"
    if not is_main():
        pass
    elif not stored.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(stored, resolved.encode())
    elif stored_yaml_under_schema(stored.read_text()) != resolved:  # a key added since is not a difference
        say(f"note: {stored} is from an earlier run and differs from this run's config; it is kept, and "
              "each fold's own config.yaml says how that fold ran")
    if any(f.speaker_dependent for f in folds):
        say(f"{out_dir.name}: {SPEAKER_DEPENDENT_NOTE}; these numbers do not measure new speakers")
    run_label = out_dir.name if val_group == 0 else f"{out_dir.parent.name}/{out_dir.name}"  # names the recipe
    results, start, earlier_seconds, trained = [], time.perf_counter(), 0.0, 0
    for fold in folds:
        fold_dir = out_dir / fold.name
        if (fold_dir / "metrics.json").is_file():
            results.append(json.loads((fold_dir / "metrics.json").read_text()))
            earlier_seconds += results[-1].get("train_seconds", 0.0)
            say(f"  {run_label}/{fold.name}: done earlier ({_fold_score(results[-1], blind)}), skipped")
            continue
        if store is None:
            raise RuntimeError(f"{fold_dir}: not done, and no feature store was given to train it")
        if is_main():
            fold_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(fold_dir / "config.yaml", resolved.encode())
        metrics = run_fold(protocol, fold, cfg, store, fold_dir, text_source, audio_init_dir)
        results.append(metrics)
        trained += 1
        flag = "  [speaker-dependent]" if fold.speaker_dependent else ""
        say(f"  {run_label}/{fold.name}: {_fold_score(metrics, blind)}  ({metrics['train_seconds']:.0f} s){flag}",
            flush=True)
    if not trained and (out_dir / "summary.json").is_file():  # nothing ran: the timings of the calls that did stay
        return json.loads((out_dir / "summary.json").read_text())
    summary = {"model": kind, "text_source": text_source, "folds": len(folds),
               "speaker_independent": not any(f.speaker_dependent for f in folds),
               "UA_mean": float(np.mean([r["UA"] for r in results])), "UA_std": float(np.std([r["UA"] for r in results])),
               "WA_mean": float(np.mean([r["WA"] for r in results])),
               # what a choice between recipes reads (None when a fold had no validation speakers)
               "val_UA_mean": (float(np.mean([r["val_UA"] for r in results]))
                               if all("val_UA" in r for r in results) else None),
               # folds done earlier count with their own training time, so a resumed run keeps the whole CV's time
               "cv_seconds": round(time.perf_counter() - start + earlier_seconds, 2),
               # encoding done by this call (0: all cached, or nothing to train)
               "encode_seconds": round(store.encode_seconds, 2) if store is not None else 0.0}
    if is_main():
        atomic_write_bytes(out_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary
