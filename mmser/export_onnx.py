"""``mmser export onnx``: each member's model (fusion + head over encoder outputs) to ONNX, checked
against PyTorch with ONNX Runtime.

Inputs are the encoder outputs the model consumes (``audio`` (B, L_a, T, D_a) + ``audio_mask`` (B, T),
and/or ``text`` (B, L_t, N, D_t) + ``text_mask`` (B, N)), with dynamic batch and sequence axes; the
output is ``logits`` (B, 8). The encoders themselves stay in PyTorch/CTranslate2, except what a fine-tuned
model trained (``model.finetune.top_layers``), which is part of the graph:

- the top K blocks: the graph takes every hidden state at the encoder's frame rate, ``T`` a multiple of
  ``frames_multiple_of`` (export.json; pad with masked frames);
- the whole encoder (``all``): the graph takes the encoder's own input (``audio_input`` in export.json), made
  from the waveforms outside the graph as ``audio_encoder.front`` makes it: a Whisper encoder's per-clip
  log-mel ``audio`` (B, n_mels, 2T) with the frame mask ``audio_mask`` (B, T) (each clip padded with zeros
  to a multiple of 320 samples, ``whisper.log_mel_spectrogram``, zero-padded to the batch's longest, ``T`` a
  multiple of ``frames_multiple_of``), or a wav2vec2-family model's standardised waveforms ``audio`` (B, S)
  with the sample mask ``audio_mask`` (B, S). wav2vec2-family models without an attention mask run one clip
  at a time and are not exported.

A member over hidden states takes them as :mod:`mmser.inference` gives them to it, which ``audio_frames`` in
export.json spells out (:func:`frames_recipe`): every selected layer's frames, pooled by ``features.frame_stride``
outside the graph, then standardised per speaker when the model was trained so (``features.speaker_norm``); a
checkpoint's population statistics (``prior_clips``) are written beside the graphs as ``speaker_prior.safetensors``.

Several checkpoints (``--checkpoint A B ...``, a recipe that averages them) are exported each into its own
``part<k>`` folder, as one would be; the top ``export.json`` names the parts and their weights in the mean of
their probabilities, the mean ``mmser predict --checkpoint A B ...`` gives.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mmser.atomic import atomic_write_bytes
from mmser.audio import SAMPLE_RATE
from mmser.checkpoint import Checkpoint
from mmser.errors import MmserError
from mmser.features.encoders.whisper_frames import SAMPLES_PER_FRAME
from mmser.features.speaker_norm import EPS
from mmser.models.whole_encoder import WhisperWholeEncoder

TOLERANCE = 1e-4  # max |probability difference| accepted between ONNX Runtime and PyTorch
PRIOR_FILE = "speaker_prior.safetensors"  # the population moments of a checkpoint trained with prior_clips
SPEAKER_STATISTICS = {  # features.speaker_norm.mode -> the frames a clip's mean and std are taken over
    "instance": "the clip's own pooled frames",
    "running": "the pooled frames of the speaker's clips so far, the clip itself included (in the order they "
               "come), added to the population moments of speaker_prior_file when there is one",
    "enrol": "the pooled frames of the speaker's enrolment clips (other clips than the one predicted)",
}


class _AudioInputs(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, audio, audio_mask):
        return self.model.from_encoder_input(audio, audio_mask, None, None)


class _TextInputs(_AudioInputs):
    def forward(self, text, text_mask):
        return self.model.from_encoder_input(None, None, text, text_mask)


class _FusedInputs(_AudioInputs):
    def forward(self, audio, audio_mask, text, text_mask):
        return self.model.from_encoder_input(audio, audio_mask, text, text_mask)


def _wrap(model) -> torch.nn.Module:
    """The model with the explicit positional inputs the exporter needs."""
    if model.dims.uses_audio and model.dims.uses_text:
        return _FusedInputs(model)
    return _AudioInputs(model) if model.dims.uses_audio else _TextInputs(model)


def audio_input(model) -> dict:
    """What the graph's ``audio`` input is (export.json's ``audio_input``)."""
    if not model.dims.reads_waveforms:
        return {"kind": "hidden_states"}
    encoder = model.audio_encoder
    if isinstance(encoder, WhisperWholeEncoder):
        return {"kind": "whisper_log_mel", "n_mels": encoder.n_mels, "max_frames": encoder.n_ctx}
    return {"kind": "waveform_standardised" if encoder.normalize else "waveform", "sample_rate": SAMPLE_RATE}


def _example_waveforms(model, batch: int, frames: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The whole encoder's input for ``batch`` random clips, the first ``frames`` frames long and the others
    shorter: ``audio_encoder.front`` of the padded waveforms, frames padded (masked) to whole groups."""
    lengths = [frames * SAMPLES_PER_FRAME] + [(frames // 2) * SAMPLES_PER_FRAME - 77] * (batch - 1)  # samples
    wave = 0.1 * torch.randn(batch, lengths[0], generator=generator)  # (B, S)
    mask = torch.arange(lengths[0])[None] < torch.tensor(lengths)[:, None]  # (B, S)
    with torch.inference_mode():
        audio, audio_mask = model.audio_encoder.front(wave * mask, mask)
    pad = (-audio_mask.shape[1]) % model.dims.frame_stride
    if pad and audio_input(model)["kind"] == "whisper_log_mel":  # (B, n_mels, 2T), (B, T): zero mel, masked frames
        audio, audio_mask = F.pad(audio, (0, 2 * pad)), F.pad(audio_mask, (0, pad))
    return {"audio": audio, "audio_mask": audio_mask}


def example_inputs(model, batch: int = 2, frames: int = 37, tokens: int = 9, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random graph inputs for ``model`` (an ``EmotionModel``): ``batch`` rows, the second onwards padded."""
    dims = model.dims
    g = torch.Generator().manual_seed(seed)
    out = {}
    frames += (-frames) % dims.frame_stride  # models that pool frames themselves take whole groups (see export)
    if dims.uses_audio and dims.reads_waveforms:
        out.update(_example_waveforms(model, batch, frames, g))
    elif dims.uses_audio:
        out["audio"] = torch.randn(batch, dims.num_audio_layers, frames, dims.audio_dim, generator=g)
        mask = torch.ones(batch, frames, dtype=torch.bool)
        mask[1:, frames // 2:] = False  # a padded row
        out["audio_mask"] = mask
    if dims.uses_text:
        out["text"] = torch.randn(batch, dims.num_text_layers, tokens, dims.text_dim, generator=g)
        mask = torch.ones(batch, tokens, dtype=torch.bool)
        mask[1:, 3:] = False
        out["text_mask"] = mask
    return out


def _audio_axes(model) -> dict[str, dict]:
    """The dynamic axes of ``audio`` and ``audio_mask``: batch and frames (or samples)."""
    batch = torch.export.Dim("batch", min=2, max=100_000)
    source, stride = audio_input(model), model.dims.frame_stride
    kind = source["kind"]
    if kind.startswith("waveform"):  # (B, S), (B, S): the exporter derives the range of S from the convolutions
        return {"audio": {0: batch, 1: torch.export.Dim.AUTO}, "audio_mask": {0: batch, 1: torch.export.Dim.AUTO}}
    top = source.get("max_frames", 100_000)
    frames = torch.export.Dim("frames", min=2, max=top)
    if stride > 1:  # a fine-tuning model pools frames after its encoder blocks, and the graph takes a whole
        frames = stride * torch.export.Dim("frame_groups", min=2, max=top // stride)  # number of groups
    if kind == "whisper_log_mel":  # (B, n_mels, 2T), (B, T)
        return {"audio": {0: batch, 2: 2 * frames}, "audio_mask": {0: batch, 1: frames}}
    return {"audio": {0: batch, 2: frames}, "audio_mask": {0: batch, 1: frames}}


def frames_recipe(ckpt: Checkpoint, prior_file: str | None) -> dict:
    """How a graph's ``audio`` hidden states (B, L, T, D) are made from an encoder's frames, as
    :meth:`mmser.features.spec.FeatureSpec.pooled` and ``standardised`` make them (export.json's ``audio_frames``)."""
    features = ckpt.features
    stride = features.input_pool_stride  # fine-tuned blocks pool in the graph
    recipe = {
        "layers": f"the encoder's hidden states {features.audio_layers!r} (features.audio_layers), as L",
        "pool_stride": stride,
        "pool": "mean over non-overlapping groups of pool_stride frames; the last group is filled up by repeating "
                "the clip's last frame" if stride > 1 else "none",
    }
    norm = features.speaker_norm
    if norm.mode == "off":
        return {**recipe, "speaker_norm": "off"}
    return {**recipe, "speaker_norm": norm.mode, "speaker_statistics": SPEAKER_STATISTICS[norm.mode],
            "standardise": f"(x - mean) / (std + {EPS:g}) per layer and dimension, over the pooled frames named in "
                           "speaker_statistics; std is the population std (divided by the frame count)",
            "speaker_prior_file": prior_file,
            "speaker_prior_tensors": "<audio encoder>.total and .total_sq (L, D) sums, .count (frames, as a "
                                     "fraction of the population's: prior_clips clips)" if prior_file else None}


def _write_prior(ckpt: Checkpoint, out_dir: Path) -> str | None:
    """``speaker_prior.safetensors`` (the population moments, per audio encoder) when the checkpoint has some."""
    if not ckpt.speaker_prior:
        return None
    from safetensors.numpy import save

    tensors = {}
    for encoder, moments in ckpt.speaker_prior.items():
        tensors[f"{encoder}.total"] = np.ascontiguousarray(moments.total, dtype=np.float64)
        tensors[f"{encoder}.total_sq"] = np.ascontiguousarray(moments.total_sq, dtype=np.float64)
        tensors[f"{encoder}.count"] = np.asarray(moments.count, dtype=np.float64)
    atomic_write_bytes(out_dir / PRIOR_FILE, save(tensors))  # export.json, written last, names it
    return PRIOR_FILE


def check_exportable(ckpt: Checkpoint, checkpoint: str | Path) -> None:
    """Raises MmserError, naming ``checkpoint`` and the member, for a model the graphs cannot take."""
    for j, member in enumerate(ckpt.members):
        encoder = getattr(member.model, "audio_encoder", None)
        if encoder is not None and not isinstance(encoder, WhisperWholeEncoder) and not encoder.use_mask:
            raise MmserError(f"{checkpoint}: member {j} trained a whole wav2vec2-family encoder without an attention "
                             "mask (group-norm feature encoder), which runs one clip at a time; ONNX export does not "
                             "take it (use mmser predict / serve)")


def remove_previous_export(out_dir: Path) -> None:
    """Remove what an earlier export wrote into ``out_dir``, as its export.json names it (graphs, the prior file,
    part folders, export.json itself), so that no graph of an earlier, larger export is left beside the new ones;
    any other file stays. Names that are not plain file names are not followed."""
    document_path = out_dir / "export.json"
    try:
        document = json.loads(document_path.read_text())
    except (OSError, ValueError):  # none there, or not one of ours: nothing of ours to remove
        return
    if not isinstance(document, dict):
        return

    def own(name) -> Path | None:
        return out_dir / name if isinstance(name, str) and name and Path(name).name == name and name != ".." else None

    for part in document.get("parts") or []:
        folder = own(part.get("folder")) if isinstance(part, dict) else None
        if folder is not None and folder.is_dir():
            remove_previous_export(folder)
            if not any(folder.iterdir()):
                folder.rmdir()
    names = [m.get("file") for m in document.get("members") or [] if isinstance(m, dict)]
    frames = document.get("audio_frames")
    names.append(frames.get("speaker_prior_file") if isinstance(frames, dict) else None)
    for path in filter(None, map(own, names)):
        path.unlink(missing_ok=True)
    document_path.unlink()


def export(checkpoints: str | Path | list[str | Path], out_dir: str | Path, progress: bool = False) -> dict:
    """Export one checkpoint's members into ``out_dir`` (:func:`_export_checkpoint`), or several checkpoints, each
    into its own ``out_dir/part<k>``, with an ``export.json`` that names the parts and how their probabilities
    are averaged (equally, as ``mmser predict --checkpoint A B ...`` and ``mmser average`` do; an averaged file
    counts as its parts). Every checkpoint
    is loaded and checked before any graph is written, and what an earlier export wrote into ``out_dir`` is
    removed first (:func:`remove_previous_export`); ``progress``: a bar over the graphs. Returns the top
    export.json's document."""
    from mmser.ensemble import check_one_speaker_norm, checkpoint_paths, named_checkpoints

    named = named_checkpoints(checkpoint_paths([checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)))
    paths, loaded = [name for name, _ in named], [ckpt for _, ckpt in named]
    check_one_speaker_norm([(name, c.features) for name, c in named])
    for path, ckpt in zip(paths, loaded):
        check_exportable(ckpt, path)
    out_dir = Path(out_dir)
    remove_previous_export(out_dir)
    if len(loaded) == 1:
        return _export_checkpoint(loaded[0], paths[0], out_dir, progress)
    parts = []
    for k, (path, ckpt) in enumerate(zip(paths, loaded)):
        remove_previous_export(out_dir / f"part{k}")  # a part folder of an export that stopped before its top file
        document = _export_checkpoint(ckpt, path, out_dir / f"part{k}", progress)
        parts.append({"folder": f"part{k}", "checkpoint": str(path), "weight": 1 / len(paths), "document": document})
    top = {"checkpoints": [str(p) for p in paths],
           "parts": [{k: v for k, v in part.items() if k != "document"} for part in parts],
           "probabilities": "the weighted mean (weight) over parts of each part's probabilities, which its own "
                            "export.json says how to make from its graphs; every part takes the same clip, and the "
                            "same speaker's clips when it standardises per speaker, each making its frames as its "
                            "export.json says (its own encoder and window, its own speaker statistics)"}
    atomic_write_bytes(out_dir / "export.json", json.dumps(top, indent=2).encode())
    return {**top, "parts": parts}


def _export_checkpoint(ckpt: Checkpoint, checkpoint: str | Path, out_dir: str | Path, progress: bool = False) -> dict:
    """Export every member of ``ckpt`` (loaded from ``checkpoint``, checked by :func:`export`); returns
    export.json's document (``members``: per-member check results, max abs probability difference;
    ``audio_frames``: how the graphs' hidden states are made; ``probabilities``: how the members' logits make the
    checkpoint's probabilities)."""
    import onnxruntime as ort

    # the exporter logs a line per torchvision operator it cannot register (torchvision is not a dependency)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    members = tqdm(ckpt.members, desc=f"export {Path(checkpoint).name}", unit="graph", disable=not progress)
    for j, member in enumerate(members):
        model = member.model.eval()
        inputs = example_inputs(model)
        names = list(inputs)
        tokens = torch.export.Dim("tokens", min=2, max=100_000)
        dynamic = {**_audio_axes(model), "text": {2: tokens}, "text_mask": {1: tokens}}
        dynamic["text"][0] = dynamic["text_mask"][0] = dynamic["audio"][0]  # one batch axis for every input
        path = out_dir / f"member{j}.onnx"
        torch.onnx.export(_wrap(model), tuple(inputs.values()), str(path), input_names=names, output_names=["logits"],
                          dynamic_shapes=tuple(dynamic[n] for n in names), opset_version=18, dynamo=True,
                          external_data=False, verbose=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        case = example_inputs(model, batch=3, frames=51, tokens=5, seed=1)  # other shapes than the traced ones
        with torch.inference_mode():
            ref = torch.softmax(_wrap(model)(*case.values()), -1).numpy()
        got = session.run(None, {k: v.numpy() for k, v in case.items()})[0]
        got = np.exp(got - got.max(-1, keepdims=True))
        got /= got.sum(-1, keepdims=True)
        worst = float(np.abs(ref - got).max())
        reports.append({"member": j, "file": path.name, "audio_encoder": member.audio_encoder,
                        "max_abs_prob_diff": worst, "tolerance": TOLERANCE,
                        "inputs": names, "frames_multiple_of": model.dims.frame_stride,
                        "audio_input": audio_input(model) if model.dims.uses_audio else None})
        if worst > TOLERANCE:
            raise MmserError(f"{path}: ONNX Runtime differs from PyTorch by {worst:.2e} > {TOLERANCE}")
    document = {"checkpoint": str(checkpoint), "members": reports, "features": ckpt.meta["features"],
                "probabilities": "the mean over members of softmax(logits) (B, 8)"}
    if any((r["audio_input"] or {}).get("kind") == "hidden_states" for r in reports):
        document["audio_frames"] = frames_recipe(ckpt, _write_prior(ckpt, out_dir))
    if ckpt.features.test_time_speeds:
        document["test_time_speeds"] = {
            "speeds": list(ckpt.features.test_time_speeds),
            "how": "predict the clip, and the clip played at each speed (resampled from speed x 16000 Hz, rounded to "
                   "100 Hz, to 16000 Hz: tempo and pitch change together), each copy's frames standardised with the "
                   "same statistics as the clip's; the probabilities are the mean over the clip and its copies"}
    atomic_write_bytes(out_dir / "export.json", json.dumps(document, indent=2).encode())
    return document
