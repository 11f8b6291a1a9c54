"""``mmser train``: one model (or ensemble) on a whole manifest, validation speakers held out -> checkpoint."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mmser.checkpoint import Member, save_checkpoint
from mmser.data.splits import holdout_validation
from mmser.errors import MmserError
from mmser.evaluation.crossval import dataset_for, load_protocol_manifest, members_of, train_member
from mmser.evaluation.features import load_bank


def audio_only_start(cfg: DictConfig, df, split, bank, encoder: str, seed: int) -> dict | None:
    """With ``model.init_from_audio_only``: train the audio-only member a fused member starts from."""
    if not cfg.model.init_from_audio_only:
        return None
    audio_cfg = cfg.copy()
    audio_cfg.model.kind = "audio_only"
    train = dataset_for(df, split.train, bank, encoder, None)
    val = dataset_for(df, split.val, bank, encoder, None) if split.val else None
    model, summary = train_member(audio_cfg, bank, encoder, None, train, val, seed)
    print(f"  audio-only start for {encoder} seed {seed}: best validation UA {summary['best_val_ua']}", flush=True)
    return model.state_dict()


def train_checkpoint(cfg: DictConfig, out: str | Path, progress: bool = True) -> tuple[Path, list[dict]]:
    if cfg.features.speaker_norm and cfg.features.speaker_norm_enrol_clips is None:
        raise MmserError("features.speaker_norm with statistics over all of a speaker's clips is for cross-validation "
                         "only (it is transductive); set features.speaker_norm_enrol_clips=K to train a checkpoint "
                         "that standardises with K enrolment clips of the speaker (`mmser predict --enrol`), or "
                         "features.speaker_norm=false")
    if cfg.features.speaker_norm_test_enrol_labels is not None:
        raise MmserError("features.speaker_norm_test_enrol_labels sets the test speakers' enrolment clips in "
                         "cross-validation only; a checkpoint is trained with features.speaker_norm_enrol_labels")
    kind = cfg.model.kind
    text_source = cfg.data.text_source if kind != "audio_only" else None
    df = load_protocol_manifest(cfg)
    split = holdout_validation(df, cfg.split.val_speakers, cfg.split.seed)
    audio_specs = list(cfg.features.audio_encoders) if kind != "text_only" else []
    bank = load_bank(df, cfg.features, audio_specs, [text_source] if text_source else [], progress)
    members, summaries = [], []
    for encoder, seed in members_of(cfg, kind):
        train = dataset_for(df, split.train, bank, encoder, text_source)
        val = dataset_for(df, split.val, bank, encoder, text_source) if split.val else None
        init = audio_only_start(cfg, df, split, bank, encoder, seed) if kind in ("concat", "cross_attn") else None
        model, summary = train_member(cfg, bank, encoder, text_source, train, val, seed, init)
        members.append(Member(model, encoder, bank.fingerprints.get(encoder) if encoder else None, text_source))
        summaries.append({"audio_encoder": encoder, "seed": seed, "val_speakers": list(split.val_speakers), **summary})
        print(f"  member {encoder or 'text'} seed {seed}: best validation UA {summary['best_val_ua']}", flush=True)
    f = cfg.features
    features = {"whisper_window": f.whisper_window, "frame_stride": f.frame_stride, "audio_layers": f.audio_layers,
                "text_layers": f.text_layers, "max_text_tokens": f.max_text_tokens,
                "speaker_norm_enrol_clips": f.speaker_norm_enrol_clips if f.speaker_norm else None,
                "speaker_norm_enrol_labels": (list(f.speaker_norm_enrol_labels)
                                              if f.speaker_norm and f.speaker_norm_enrol_labels else None)}
    text_encoder = ({"spec": f.text_encoder, "fingerprint": bank.fingerprints.get(f.text_encoder)}
                    if text_source else None)
    path = save_checkpoint(out, members, features, text_encoder, OmegaConf.to_container(cfg, resolve=True))
    return path, summaries
