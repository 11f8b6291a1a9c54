"""Self-contained checkpoints: one safetensors file, no pickle.

The file holds every ensemble member's weights (``member{j}.<param>``) and, in the safetensors header
metadata under ``"mmser"``, a JSON document: format version, label space, each member's
:class:`ModelDims` and encoder ids + weight fingerprints, the :class:`FeatureSpec` the members were
trained on, the text encoder's fingerprint, the resolved config and a SHA-256 of the tensors. A model trained
with ``features.speaker_norm.prior_clips`` also carries, per audio encoder, the population's frame moments its
speakers' running statistics start from (``speaker_prior{i}.total`` / ``.total_sq``, float64 ``(L, D)``). Every
trained model is such a file: ``mmser train`` writes one, and so does each fold of ``mmser cv``. Loading rebuilds the models from the file alone, refuses anything that is not
such a file (a pickle/zip ``torch.save`` file, a plain safetensors file, another label space) and
detects tampering with the weights.

An *averaged* file (:func:`save_average`; ``mmser train`` given several configs) holds whole checkpoints as parts:
part ``k``'s tensors are named ``part{k}.<tensor>`` and its document is ``parts[k]`` of the file's; a predictor
averages the parts' probabilities (:func:`load_checkpoints`, :func:`mmser.ensemble.open_predictor`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from safetensors import safe_open

from mmser.atomic import atomic_write_bytes
from mmser.errors import MmserError
from mmser.features.speaker_norm import FrameMoments
from mmser.features.spec import FeatureSpec
from mmser.labels import EMOTIONS
from mmser.models.builders import EmotionModel, ModelDims, build_model

FORMAT = "mmser-checkpoint"
VERSION = 2  # 2: FeatureSpec (typed) replaces v1's untyped feature dict
MEMBER_KEYS = ("dims", "audio_encoder", "audio_fingerprint", "text_source")  # each member's entry in the document


class CheckpointError(MmserError):
    """A checkpoint refused, with the file and the reason."""


@dataclass
class Member:
    model: EmotionModel
    audio_encoder: str | None  # encoder spec, e.g. "whisper-ct2:base"
    audio_fingerprint: str | None
    text_source: str | None


@dataclass
class Checkpoint:
    members: list[Member]
    features: FeatureSpec  # how the members' inputs were made
    text_fingerprint: str | None  # weights fingerprint of features.text_encoder (None: no member reads text)
    meta: dict  # the whole JSON document (labels, config, ...)
    # audio encoder spec -> the population frame moments a speaker's running statistics start from
    # (features.speaker_norm.prior_clips; empty otherwise)
    speaker_prior: dict[str, FrameMoments] = field(default_factory=dict)

    @property
    def uses_text(self) -> bool:
        return any(m.text_source for m in self.members)


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, members: list[Member], features: FeatureSpec, text_fingerprint: str | None,
                    config: dict, extra: dict | None = None,
                    speaker_prior: dict[str, FrameMoments] | None = None) -> Path:
    """Write ``members`` (+ everything needed to rebuild and feed them) into one safetensors file.

    ``text_fingerprint``: of ``features.text_encoder`` when a member reads text; ``extra``: more JSON-able
    facts kept in the metadata (e.g. the fold's held-out speakers); ``speaker_prior``: per audio encoder, the
    population moments of ``features.speaker_norm.prior_clips``."""
    tensors = {f"member{j}.{k}": v.detach().cpu().contiguous() for j, m in enumerate(members)
               for k, v in m.model.state_dict().items()}
    priors = []
    for i, (encoder, moments) in enumerate(sorted((speaker_prior or {}).items())):
        tensors[f"speaker_prior{i}.total"] = torch.from_numpy(np.ascontiguousarray(moments.total, dtype=np.float64))
        tensors[f"speaker_prior{i}.total_sq"] = torch.from_numpy(np.ascontiguousarray(moments.total_sq, dtype=np.float64))
        priors.append({"audio_encoder": encoder, "count": float(moments.count)})
    meta = {
        "format": FORMAT, "version": VERSION, "labels": list(EMOTIONS),
        "members": [{"dims": m.model.dims.to_dict(), "audio_encoder": m.audio_encoder,
                     "audio_fingerprint": m.audio_fingerprint, "text_source": m.text_source} for m in members],
        "features": features.to_dict(), "text_fingerprint": text_fingerprint, "config": config,
        "sha256": _tensor_digest(tensors), "speaker_prior": priors, **(extra or {}),
    }
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={"mmser": json.dumps(meta)}))
    return path


def heard_speakers(documents: list[dict]) -> dict[str, str] | None:
    """The speakers the training of the checkpoints ``documents`` heard (their ``train_speakers`` and
    ``val_speakers``), each with its part: "training", or "validation" (early stopping and any choice read them);
    "training" when both. None when a checkpoint was written before its training speakers were recorded."""
    heard: dict[str, str] = {}
    for meta in documents:
        if "train_speakers" not in meta:
            return None
        for who in meta.get("val_speakers") or []:
            heard.setdefault(str(who), "validation")
        heard.update({str(who): "training" for who in meta["train_speakers"]})
    return heard


def trained_classes(documents: list[dict]) -> list[str]:
    """The classes some member of the checkpoints ``documents`` (:func:`file_documents`) was trained on, in
    :data:`~mmser.labels.EMOTIONS` order (the others' probabilities are 0)."""
    masks = [ModelDims.from_dict(info["dims"]).class_mask for meta in documents for info in meta["members"]]
    return [e for i, e in enumerate(EMOTIONS) if any(mask[i] for mask in masks)]


def heard_telephone_band(documents: list[dict]) -> bool:
    """Whether the training of every checkpoint in ``documents`` heard telephone-band copies of its clips
    (``features.augment`` with variants and ``telephone`` among its noises, in the stored config)."""
    def augment(meta: dict) -> dict:
        return ((meta.get("config") or {}).get("features") or {}).get("augment") or {}

    return bool(documents) and all(augment(m).get("variants", 0) > 0 and "telephone" in (augment(m).get("noise") or [])
                                   for m in documents)


def telephone_band_training(documents: list[dict]) -> str:
    """What the notes about audio recorded below 16 kHz say of the checkpoints ``documents``' training: whether it
    heard telephone-band copies (:func:`heard_telephone_band`), and how to add them if not."""
    if heard_telephone_band(documents):
        return "this checkpoint's training heard telephone-band copies of its clips"
    return "this checkpoint's training heard no telephone-band copies (features.augment.noise can add them)"


def text_sources(documents: list[dict]) -> list[str]:
    """The transcript sources the members of the checkpoints ``documents`` were trained on ("gold", or a
    manifest's ASR column), sorted."""
    return sorted({info["text_source"] for meta in documents for info in meta["members"] if info["text_source"]})


def file_documents(path: str | Path) -> list[dict]:
    """The document of each checkpoint the file ``path`` holds, from its header alone (no tensor is read): its own,
    or each part's of an averaged file (:func:`save_average`), each with its members' dims checked. Refuses what
    :func:`read_document` refuses, a part of another format, and members without usable dims."""
    meta = read_document(path)
    documents = _parts(path, meta) if "parts" in meta else [meta]
    for k, document in enumerate(documents):
        _member_dims(path if len(documents) == 1 else f"{path} (part {k})", document)
    return documents


def _member_dims(where: str | Path, meta: dict) -> list[ModelDims]:
    """Each member's :class:`ModelDims` from the document ``meta``; CheckpointError naming ``where`` for a
    document without members or a member without usable dims."""
    if not isinstance(meta.get("members"), list) or not meta["members"]:
        raise CheckpointError(f"{where}: refused: its metadata lists no members")
    dims = []
    for j, info in enumerate(meta["members"]):
        missing = [key for key in MEMBER_KEYS if not isinstance(info, dict) or key not in info]
        if missing:
            raise CheckpointError(f"{where}: refused: member {j} lacks {', '.join(missing)}")
        try:
            dims.append(ModelDims.from_dict(info["dims"]))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{where}: refused: member {j} has unusable dims ({err})") from None
    return dims


def _parts(path: str | Path, meta: dict) -> list[dict]:
    """The parts' documents of the averaged file ``path`` (document ``meta``), each checked by its header."""
    parts = meta["parts"]
    if not isinstance(parts, list) or not parts:
        raise CheckpointError(f"{path}: refused: its 'parts' is not a non-empty list of checkpoints")
    for k, part in enumerate(parts):
        _check_header(f"{path} (part {k})", part)
        if "parts" in part:
            raise CheckpointError(f"{path} (part {k}): refused: a part holds parts of its own")
    return parts


def read_document(path: str | Path) -> dict:
    """The mmser document of the checkpoint ``path``, from the file's header alone (no tensor is read); raises
    CheckpointError for anything that is not an mmser checkpoint of this format version and label space."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.safetensors"))
        hint = f": give a checkpoint file inside it ({', '.join(inside[:3])})" if inside else ", not a checkpoint file"
        raise CheckpointError(f"{path}: a folder{hint}")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(path, err) from None
    if "mmser" not in metadata:
        raise CheckpointError(f"{path}: refused: a safetensors file without mmser metadata (not written by mmser train)")
    try:
        meta = json.loads(metadata["mmser"])
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: refused: corrupt mmser metadata") from None
    _check_header(path, meta)
    return meta


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The mmser document (:func:`read_document`) and the tensors of the safetensors file ``path``."""
    meta = read_document(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(path, err) from None
    return meta, tensors


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    """The refusal of a file safetensors cannot read, naming a pickle (torch.save) file as such."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:1] == b"\x80" or head[:2] == b"PK":  # pickle protocol >= 2, or torch.save's zip
        return CheckpointError(f"{path}: refused: this is a pickle/zip (torch.save) file; mmser never unpickles "
                               "checkpoints and loads only its own safetensors checkpoints (mmser train)")
    return CheckpointError(f"{path}: refused: not a readable safetensors checkpoint ({err})")


def _check_header(where: str | Path, meta: dict) -> None:
    """Refuse a document of another format, version or label space."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: refused: its mmser metadata is not a JSON object")
    if meta.get("format") == FORMAT and meta.get("version") == 1:
        raise CheckpointError(f"{where}: refused: written by an earlier mmser (format v1, untyped feature settings); "
                              f"this mmser reads v{VERSION}: train it again (mmser train / mmser cv)")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{where}: refused: format {meta.get('format')} v{meta.get('version')}, "
                              f"this mmser reads {FORMAT} v{VERSION}")
    if meta.get("labels") != list(EMOTIONS):
        raise CheckpointError(f"{where}: refused: trained for labels {meta.get('labels')}, mmser's label space is "
                              f"{list(EMOTIONS)}")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the members of an mmser checkpoint; raises CheckpointError for anything else, and for a file that
    holds several averaged checkpoints (:func:`load_checkpoints` reads those)."""
    path = Path(path)
    meta, tensors = _read(path)
    if "parts" in meta:
        raise CheckpointError(f"{path}: holds the average of {len(meta['parts'])} checkpoints (mmser train with "
                              "several configs); open it with mmser.ensemble.open_predictor or Predictor.from_checkpoint")
    return _rebuild(path, meta, tensors)


def load_checkpoints(path: str | Path) -> list[Checkpoint]:
    """The checkpoints of ``path``: itself, or each part of an averaged file (:func:`save_average`), in order.
    Raises CheckpointError, naming the part, for anything :func:`load_checkpoint` refuses."""
    path = Path(path)
    meta, tensors = _read(path)
    if "parts" not in meta:
        return [_rebuild(path, meta, tensors)]
    parts = _parts(path, meta)
    prefixes = [f"part{k}." for k in range(len(parts))]
    stray = sorted(name for name in tensors if not name.startswith(tuple(prefixes)))
    if stray:
        raise CheckpointError(f"{path}: refused: tensors outside its {len(parts)} parts ({', '.join(stray[:3])})")
    checkpoints = []
    for k, (prefix, part) in enumerate(zip(prefixes, parts)):
        own = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
        checkpoints.append(_rebuild(f"{path} (part {k})", part, own))
    return checkpoints


def save_average(path: str | Path, sources: list[str | Path]) -> Path:
    """One file holding the checkpoints ``sources`` as parts (``part{k}.<tensor>``; the mmser document's
    ``parts``, each a checkpoint's own document), whose probabilities a predictor averages equally, each part's
    members first (:func:`mmser.ensemble.open_predictor`): what ``mmser predict --checkpoint A B ...`` does with
    the separate files. Each source is checked as :func:`load_checkpoint` checks it; written atomically."""
    if not sources:
        raise CheckpointError(f"{path}: no checkpoint to hold")
    tensors, documents = {}, []
    for k, source in enumerate(sources):
        meta, own = _read(Path(source))
        if "parts" in meta:
            raise CheckpointError(f"{source}: holds parts itself; name its own sources instead")
        _rebuild(source, meta, own)  # refuses a tampered or unusable source
        tensors.update({f"part{k}.{name}": t for name, t in own.items()})
        documents.append(meta)
    document = {"format": FORMAT, "version": VERSION, "labels": list(EMOTIONS), "parts": documents}
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={"mmser": json.dumps(document)}))
    return path


def _rebuild(path: str | Path, meta: dict, tensors: dict[str, torch.Tensor]) -> Checkpoint:
    """The :class:`Checkpoint` of one document and its tensors (names without a part prefix)."""
    if _tensor_digest(tensors) != meta.get("sha256"):
        raise CheckpointError(f"{path}: refused: the weights do not match the checksum stored with them (modified file)")
    members = []
    for j, (info, dims) in enumerate(zip(meta["members"], _member_dims(path, meta))):
        try:
            model = build_model(dims)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: refused: member {j} has unusable dims ({err})") from None
        prefix = f"member{j}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"{path}: refused: member {j} weights do not fit its dims ({str(err)[:200]})") from None
        members.append(Member(model.eval(), info["audio_encoder"], info["audio_fingerprint"], info["text_source"]))
    try:
        features = FeatureSpec.from_dict(meta["features"])
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: refused: its feature settings do not read as a FeatureSpec ({err})") from None
    return Checkpoint(members, features, meta.get("text_fingerprint"), meta, _speaker_prior(path, meta, tensors, features))


def _speaker_prior(path: str | Path, meta: dict, tensors: dict[str, torch.Tensor], features: FeatureSpec) -> dict[str, FrameMoments]:
    """The population moments stored for ``features.speaker_norm.prior_clips``, one per audio encoder the
    members read; raises CheckpointError when one is missing or malformed."""
    prior = {}
    for i, info in enumerate(meta.get("speaker_prior") or []):
        try:
            total, total_sq = tensors[f"speaker_prior{i}.total"].numpy(), tensors[f"speaker_prior{i}.total_sq"].numpy()
            count = float(info["count"])
            encoder = str(info["audio_encoder"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: refused: speaker prior {i} is incomplete ({err})") from None
        if total.shape != total_sq.shape or total.ndim != 2 or not count > 0:
            raise CheckpointError(f"{path}: refused: speaker prior {i} ({encoder}) has shapes {tuple(total.shape)} / "
                                  f"{tuple(total_sq.shape)} and count {count}; expected two (layers, dim) sums, count > 0")
        prior[encoder] = FrameMoments(total, total_sq, count)
    if features.speaker_norm.prior_clips is not None:
        wanted = {m["audio_encoder"] for m in meta["members"] if m["audio_encoder"]}
        missing = sorted(wanted - set(prior))
        if missing:
            raise CheckpointError(f"{path}: refused: trained with features.speaker_norm.prior_clips, but it holds no "
                                  f"population statistics for {', '.join(missing)}")
    return prior
