"""What a checkpoint file holds and what predicting with it takes (``mmser info``), from its document alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mmser.checkpoint import Checkpoint, load_checkpoints


def what_prediction_needs(ckpt: Checkpoint) -> list[str]:
    """What ``mmser predict`` must be given beyond a clip, in words (empty: the clip alone)."""
    norm = ckpt.features.speaker_norm
    needs = []
    if norm.mode == "enrol":
        pool = f" among {', '.join(norm.labels)} clips" if norm.labels else " of any emotion"
        needs.append(f"{norm.clips} other clips of the speaker{pool} (--enrol, or a clip list with a speaker column)")
    elif norm.mode == "running":
        needs.append("each speaker's clips in the order they came (one speaker per call, or a clip list with a "
                     "speaker column); a speaker's first clips get few statistics")
    elif norm.mode == "transductive":
        needs.append("all of the speaker's clips (a cross-validation model: statistics over them, the clip included)")
    if ckpt.uses_text:
        needs.append("a transcript (--transcript, or --transcribe)")
    return needs


def describe(ckpt: Checkpoint) -> dict:
    """A JSON-able summary of one checkpoint: its recipe (the config's name when ``mmser train`` was given several),
    model kind, members' encoders, how frames are made, what prediction needs and what it was trained on."""
    config = ckpt.meta.get("config") or {}
    data = config.get("data") or {}
    spec = ckpt.features
    return {
        "recipe": ckpt.meta.get("recipe"),
        "model": (config.get("model") or {}).get("kind"),
        "members": dict(Counter(m.audio_encoder or f"text ({m.text_source})" for m in ckpt.members)),
        "frames": {"window": spec.whisper_window, "layers": spec.audio_layers, "pooled_by": spec.frame_stride,
                   "speaker_norm": spec.speaker_norm.mode, "finetuned_top_layers": spec.finetune_top_layers,
                   "test_time_speeds": list(spec.test_time_speeds)},
        "needs": what_prediction_needs(ckpt),
        "trained_on": {"data": data.get("name"), "manifest": data.get("manifest"), "classes": data.get("classes"),
                       "train_speakers": ckpt.meta.get("train_speakers"), "val_speakers": ckpt.meta.get("val_speakers"),
                       "fold": ckpt.meta.get("fold"), "test_speakers": ckpt.meta.get("test_speakers")},
    }


def describe_file(path: str | Path) -> dict:
    """:func:`describe` of each checkpoint the file holds (one, or each part of an averaged file)."""
    parts = [describe(c) for c in load_checkpoints(path)]
    return {"path": str(path), "parts": parts}


def info_text(document: dict) -> str:
    """:func:`describe_file`'s document as a few lines."""
    parts = document["parts"]
    head = (f"{document['path']}: one checkpoint" if len(parts) == 1
            else f"{document['path']}: the mean of {len(parts)} checkpoints' probabilities (each weighs 1/{len(parts)})")
    lines = [head]
    for k, part in enumerate(parts):
        name = "" if len(parts) == 1 else f"part {k}{' ' + part['recipe'] if part['recipe'] else ''}: "
        members = ", ".join(f"{encoder} x{n}" for encoder, n in part["members"].items())
        frames = part["frames"]
        tuned = f", top {frames['finetuned_top_layers']} blocks fine-tuned" if frames["finetuned_top_layers"] else ""
        speeds = f", also played at {frames['test_time_speeds']}" if frames["test_time_speeds"] else ""
        trained = part["trained_on"]
        lines.append(f"  {name}{part['model']}, {sum(part['members'].values())} member(s): {members}")
        lines.append(f"    frames: {frames['window']} window, layers {frames['layers']}, pooled by {frames['pooled_by']}, "
                     f"speaker statistics {frames['speaker_norm']}{tuned}{speeds}")
        fold = (f"; cross-validation {trained['fold']}, test speakers {trained['test_speakers']}"
                if trained["fold"] else "")
        speakers = (f", {len(trained['train_speakers'])} training speakers" if trained["train_speakers"] is not None
                    else "")
        lines.append(f"    trained on {trained['data']} ({trained['manifest']}){speakers}, classes {trained['classes']}, "
                     f"validation speakers {trained['val_speakers']}{fold}")
    needs = list(dict.fromkeys(n for part in parts for n in part["needs"]))
    lines.append("  predicting takes the clip" + "".join(f"; {n}" for n in needs))
    return "\n".join(lines)
