"""``mmser cv``: every fold of the configured speaker-independent protocol, resumable.

Per fold it stores ``config.yaml`` (resolved), ``predictions.csv`` (utt_id, speaker, true, pred and the
8 probabilities), the trained members' weights (safetensors + dims JSON) and, last, ``metrics.json``;
a fold whose ``metrics.json`` exists is skipped on a re-run. Model selection (early stopping, best
epoch) uses validation speakers drawn from the training side only; the test fold is only predicted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from safetensors.torch import load_file, save_file

from mmser.config import require, to_yaml
from mmser.data.dataset import FeatureDataset
from mmser.data.manifest import atomic_write_bytes, read_manifest, write_table
from mmser.data.splits import Fold, build_folds
from mmser.encoders.asr import normalize_text
from mmser.encoders.extract import text_column
from mmser.errors import MmserError
from mmser.evaluation.features import FeatureBank, load_bank
from mmser.labels import EMOTIONS, class_mask
from mmser.models.builders import ModelDims, build_model
from mmser.training.fit import fit, predict_proba
from mmser.training.metrics import classification_metrics

PROB_COLUMNS = [f"prob_{e}" for e in EMOTIONS]


def load_protocol_manifest(cfg: DictConfig) -> pd.DataFrame:
    """The manifest restricted to the protocol (classes, improvised-only), saying what it leaves out.

    Sets ``cfg.data.classes`` when unset: the labels present (cross-corpus: those both corpora share).
    """
    require(cfg, "data.manifest")
    df = read_manifest(cfg.data.manifest)
    if cfg.data.test_manifest:
        test = read_manifest(cfg.data.test_manifest)
        shared = sorted(set(df["label"]) & set(test["label"]), key=EMOTIONS.index)
        print(f"cross-corpus: train {cfg.data.manifest} ({len(df)}), test {cfg.data.test_manifest} ({len(test)}); "
              f"shared labels {shared}")
        clash = set(df["utt_id"]) & set(test["utt_id"])
        if clash:
            raise MmserError(f"cross-corpus manifests share utt_id(s) {sorted(clash)[:5]}")
        df = pd.concat([df.assign(cross_corpus_part="train"), test.assign(cross_corpus_part="test")], ignore_index=True)
        df = df[df["label"].isin(shared)]
        if not cfg.data.classes:
            cfg.data.classes = shared
    if not cfg.data.classes:  # the head predicts the classes the corpus has (others masked); recorded in config.yaml
        cfg.data.classes = [e for e in EMOTIONS if e in set(df["label"])]
    if cfg.data.classes:
        keep = df["label"].isin(list(cfg.data.classes))
        if (~keep).any():
            print(f"protocol classes {list(cfg.data.classes)}: leaving out {int((~keep).sum())} utterance(s) "
                  f"labelled {sorted(df.loc[~keep, 'label'].unique())}")
        df = df[keep]
    if cfg.data.improvised_only:
        if "improvised" not in df.columns:
            raise MmserError("data.improvised_only needs an 'improvised' column (IEMOCAP manifests have it)")
        df = df[df["improvised"].astype(str).str.lower() == "true"]
        print(f"improvised dialogs only: {len(df)} utterances")
    return df.reset_index(drop=True)


def make_folds(df: pd.DataFrame, cfg: DictConfig) -> list[Fold]:
    if "cross_corpus_part" in df.columns:
        return [cross_corpus_fold(df, cfg)]
    s = cfg.split
    return build_folds(df, s.protocol, s.speakers_per_fold, s.val_speakers, s.seed, s.shuffle, s.folds_file)


def cross_corpus_fold(df: pd.DataFrame, cfg: DictConfig) -> Fold:
    """Train (+ validation speakers) on the training corpus, test on the whole other corpus."""
    from mmser.data.splits import assert_speaker_disjoint, holdout_validation

    train_side = df[df["cross_corpus_part"] == "train"]
    inner = holdout_validation(train_side, cfg.split.val_speakers, cfg.split.seed)
    test = df[df["cross_corpus_part"] == "test"]
    fold = Fold("cross_corpus", inner.train, inner.val, tuple(test["utt_id"]), tuple(sorted(test["speaker"].unique())),
                inner.val_speakers)
    assert_speaker_disjoint(df, fold)
    return fold


def limit_per_class(df: pd.DataFrame, ids: tuple[str, ...], n: int | None, seed: int) -> tuple[str, ...]:
    """At most ``n`` utterances per class from ``ids`` (seeded), for data-efficiency curves."""
    if n is None:
        return ids
    labels = df.set_index("utt_id").loc[list(ids), "label"]
    rng = np.random.default_rng(seed)
    keep: set[str] = set()
    for _, group in labels.groupby(labels):
        keep.update(rng.choice(group.index.to_numpy(), size=min(n, len(group)), replace=False).tolist())
    return tuple(i for i in ids if i in keep)


def sentence_overlap(df: pd.DataFrame, fold: Fold, text_source: str) -> float:
    """Fraction of test utterances whose transcript also occurs on the training side."""
    text = text_column(df, text_source).map(normalize_text)
    idx = pd.Series(range(len(df)), index=df["utt_id"])
    seen = set(text.iloc[idx[list(fold.train) + list(fold.val)].values])
    test = text.iloc[idx[list(fold.test)].values]
    return float(test.isin(seen).mean()) if len(test) else 0.0


def members_of(cfg: DictConfig, kind: str) -> list[tuple[str | None, int]]:
    """(audio encoder, seed) of each ensemble member."""
    seeds = [int(cfg.train.seed) + 1000 * j for j in range(int(cfg.train.ensemble_seeds))]
    encoders = list(cfg.features.audio_encoders) if kind != "text_only" else [None]
    return [(enc, seed) for enc in encoders for seed in seeds]


def dataset_for(df: pd.DataFrame, ids: tuple[str, ...], bank: FeatureBank, encoder: str | None,
             text_source: str | None, test: bool = False) -> FeatureDataset:
    """The rows ``ids`` as a dataset; ``test``: frames standardised under the test speakers' enrolment rule."""
    pos = pd.Series(range(len(df)), index=df["utt_id"])[list(ids)].values
    frames = bank.test_audio.get(encoder, bank.audio.get(encoder)) if test else bank.audio.get(encoder)
    audio = [frames[i] for i in pos] if encoder else None
    text = [bank.text[text_source][i] for i in pos] if text_source else None
    return FeatureDataset(list(ids), df["label"].values[pos].tolist(), audio, text)


def protocol_mask(cfg: DictConfig) -> tuple[bool, ...]:
    """Which of the 8 classes the protocol uses (``data.classes``; all when unset)."""
    return tuple(class_mask(list(cfg.data.classes) if cfg.data.classes else None))


def model_dims(cfg: DictConfig, bank: FeatureBank, encoder: str | None, text_source: str | None) -> ModelDims:
    """Dimensions of ``cfg.model`` fed by ``encoder`` frames and/or ``text_source`` tokens from ``bank``."""
    a_layers, a_dim = FeatureBank.shape(bank.audio[encoder]) if encoder else (0, 0)
    t_layers, t_dim = FeatureBank.shape(bank.text[text_source]) if text_source else (0, 0)
    return ModelDims(kind=cfg.model.kind, audio_dim=a_dim, audio_layers=a_layers, text_dim=t_dim, text_layers=t_layers,
                     hidden_dim=cfg.model.hidden_dim, num_heads=cfg.model.fusion.num_heads,
                     num_fusion_layers=cfg.model.fusion.num_layers, fusion_dropout=cfg.model.fusion.dropout,
                     dropout=cfg.model.dropout, class_mask=protocol_mask(cfg))


def train_member(cfg: DictConfig, bank: FeatureBank, encoder: str | None, text_source: str | None,
                 train: FeatureDataset, val: FeatureDataset | None, seed: int, init: dict | None = None):
    """Build and train one ensemble member (optionally started from audio-only weights ``init``).

    Seeded before the model is built, so a member's initial weights do not depend on what ran before it
    in the process (a resumed run reproduces an uninterrupted one).
    """
    torch.manual_seed(seed)
    model = build_model(model_dims(cfg, bank, encoder, text_source))
    if init is not None:
        model.init_from_audio_only(init)
        if cfg.model.freeze_audio_branch:
            model.freeze_audio_branch()
    return fit(model, train, val, cfg.train, cfg.trainer, seed, start_is_candidate=init is not None)


def run_fold(df: pd.DataFrame, fold: Fold, cfg: DictConfig, bank: FeatureBank, fold_dir: Path,
             text_source: str | None, audio_init_dir: Path | None = None) -> dict:
    """Train the fold's members, predict its test speakers, write predictions + metrics; returns metrics."""
    kind = cfg.model.kind
    probs, summaries = [], []
    start = time.perf_counter()
    for j, (encoder, seed) in enumerate(members_of(cfg, kind)):
        init = None
        if cfg.model.init_from_audio_only and kind in ("concat", "cross_attn"):
            source = (audio_init_dir or Path("")) / fold.name / f"member{j}.safetensors"
            if audio_init_dir is None or not source.is_file():
                raise MmserError(f"model.init_from_audio_only: no audio-only weights at {source} "
                                 "(run the audio_only model first, e.g. through `mmser ablate`)")
            init = load_file(str(source))
        train_ids = limit_per_class(df, fold.train, cfg.train.max_per_class, seed)
        train = dataset_for(df, train_ids, bank, encoder, text_source)
        val = dataset_for(df, fold.val, bank, encoder, text_source) if fold.val else None
        model, summary = train_member(cfg, bank, encoder, text_source, train, val, seed, init)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(fold_dir / f"member{j}.safetensors"))
        atomic_write_bytes(fold_dir / f"member{j}.json", json.dumps(
            {"dims": model.dims.to_dict(), "audio_encoder": encoder, "text_encoder": cfg.features.text_encoder
             if text_source else None, "text_source": text_source, "seed": seed}, indent=2).encode())
        probs.append(predict_proba(model, dataset_for(df, fold.test, bank, encoder, text_source, test=True)))
        summaries.append(summary)
    mean_probs = np.mean(probs, axis=0)  # (N_test, 8): ensemble average
    test_rows = df.set_index("utt_id").loc[list(fold.test)]
    pred = [EMOTIONS[i] for i in mean_probs.argmax(axis=1)]
    table = pd.DataFrame({"utt_id": list(fold.test), "speaker": test_rows["speaker"].values,
                          "true": test_rows["label"].values, "pred": pred})
    table[PROB_COLUMNS] = np.round(mean_probs, 6)
    write_table(table, fold_dir / "predictions.csv")
    classes = [e for e, m in zip(EMOTIONS, protocol_mask(cfg)) if m]
    metrics = classification_metrics(table["true"].values, table["pred"].values, classes)
    metrics.update({
        "fold": fold.name, "test_speakers": list(fold.test_speakers), "val_speakers": list(fold.val_speakers),
        "n_train": len(limit_per_class(df, fold.train, cfg.train.max_per_class, int(cfg.train.seed))), "n_val": len(fold.val), "train_seconds": round(time.perf_counter() - start, 2),
        "members": summaries,
    })
    if text_source:
        metrics["test_sentences_in_train"] = sentence_overlap(df, fold, text_source)
    atomic_write_bytes(fold_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
    return metrics


def run_cv(cfg: DictConfig, out_dir: str | Path, text_source: str | None = None, bank: FeatureBank | None = None,
           df: pd.DataFrame | None = None, audio_init_dir: Path | None = None, progress: bool = True) -> dict:
    """Every fold of the protocol for ``cfg.model.kind``; returns a summary (per-fold metrics, timings)."""
    out_dir = Path(out_dir)
    kind = cfg.model.kind
    text_source = text_source if kind != "audio_only" else None
    if kind != "audio_only" and text_source is None:
        text_source = cfg.data.text_source
    df = load_protocol_manifest(cfg) if df is None else df
    folds = make_folds(df, cfg)
    if bank is None:
        audio_specs = list(cfg.features.audio_encoders) if kind != "text_only" else []
        bank = load_bank(df, cfg.features, audio_specs, [text_source] if text_source else [], progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = out_dir / "config.yaml"
    if not stored.is_file():
        atomic_write_bytes(stored, to_yaml(cfg).encode())
    elif stored.read_text() != to_yaml(cfg):
        print(f"note: {stored} is from an earlier run and differs from this run's config; it is kept, and "
              "each fold's own config.yaml says how that fold ran")
    results, start = [], time.perf_counter()
    for fold in folds:
        fold_dir = out_dir / fold.name
        if (fold_dir / "metrics.json").is_file():
            results.append(json.loads((fold_dir / "metrics.json").read_text()))
            print(f"  {out_dir.name}/{fold.name}: done earlier (UA {results[-1]['UA']:.3f}), skipped")
            continue
        fold_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(fold_dir / "config.yaml", to_yaml(cfg).encode())
        metrics = run_fold(df, fold, cfg, bank, fold_dir, text_source, audio_init_dir)
        results.append(metrics)
        print(f"  {out_dir.name}/{fold.name}: UA {metrics['UA']:.3f}  WA {metrics['WA']:.3f}  "
              f"({metrics['train_seconds']:.0f} s)", flush=True)
    summary = {"model": kind, "text_source": text_source, "folds": len(folds),
               "UA_mean": float(np.mean([r["UA"] for r in results])), "UA_std": float(np.std([r["UA"] for r in results])),
               "WA_mean": float(np.mean([r["WA"] for r in results])),
               "cv_seconds": round(time.perf_counter() - start, 2), "encode_seconds": round(bank.encode_seconds, 2)}
    atomic_write_bytes(out_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary
