"""wav2vec2-family frames through transformers (Wav2Vec2, HuBERT, WavLM, data2vec-audio; AutoModel).

Frozen, every hidden state returned (CNN-feature projection + each transformer layer) so a model can
learn a weighted sum of layers. Padding never changes a clip's frames: models whose feature encoder
uses group norm (``feat_extract_norm == "group"``, e.g. wav2vec2-base) get no attention mask from
their authors and are run one clip at a time; layer-norm models are batched by length with an
attention mask, and every clip is cut to its own frame count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mmser.devices import autocast
from mmser.features.encoders.base import ModelUnavailableError, length_buckets, parse_layers, state_dict_fingerprint

OFFLINE_HINT = ("No copy is cached here and the model hub cannot be reached. Save the model on a machine with "
                "access (AutoModel.from_pretrained(id).save_pretrained(DIR), same for AutoFeatureExtractor) and "
                "pass DIR, e.g. features.audio_encoders=['hf:/models/wav2vec2-base']")


def load_pretrained(loader, spec: str, **kwargs):
    """``loader.from_pretrained(spec)``: local folder, then local hub cache, then the hub."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar per model load
    if Path(spec).expanduser().is_dir():
        try:
            return loader.from_pretrained(str(Path(spec).expanduser()), **kwargs)
        except OSError as err:
            raise ModelUnavailableError(spec, str(err).splitlines()[0][:300],
                                        "The folder must hold what save_pretrained writes") from None
    try:
        return loader.from_pretrained(spec, local_files_only=True, **kwargs)
    except OSError:
        pass
    try:
        return loader.from_pretrained(spec, **kwargs)
    except OSError as err:
        raise ModelUnavailableError(spec, str(err).splitlines()[0], OFFLINE_HINT) from None


class HFAudioEncoder:
    """Frozen wav2vec2-family encoder returning ``(L, T, D)`` hidden states per clip."""

    def __init__(self, spec: str, layers: str = "all", device: str = "cpu", batch_size: int = 8):
        from transformers import AutoConfig, AutoModel

        name = spec.partition(":")[2] or spec
        config = load_pretrained(AutoConfig, name)
        self.model = load_pretrained(AutoModel, name).to(device).eval()
        self.encoder_id, self.device, self.batch_size = spec, device, batch_size
        self.use_mask = getattr(config, "feat_extract_norm", "layer") == "layer"
        self.normalize = True
        try:
            from transformers import AutoFeatureExtractor

            self.normalize = bool(getattr(load_pretrained(AutoFeatureExtractor, name), "do_normalize", True))
        except ModelUnavailableError:
            pass  # no preprocessor config saved: wav2vec2 checkpoints expect zero-mean unit-variance input
        available = config.num_hidden_layers + 1
        self.layers = parse_layers(layers, available)
        self.num_layers, self.dim = len(self.layers), config.hidden_size
        strides = int(np.prod(config.conv_stride))
        self.frame_rate = 16_000 / strides
        self.fingerprint = state_dict_fingerprint(self.model)

    def _prepare(self, wav: np.ndarray) -> np.ndarray:
        if self.normalize:
            return (wav - wav.mean()) / np.sqrt(wav.var() + 1e-7)
        return wav

    @torch.inference_mode()
    def encode(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(wavs)
        batch_size = self.batch_size if self.use_mask else 1
        for idx in length_buckets([len(w) for w in wavs], batch_size):
            lengths = [len(wavs[i]) for i in idx]
            batch = np.zeros((len(idx), max(lengths)), np.float32)  # (B, n_samples)
            mask = np.zeros_like(batch, dtype=np.int64)
            for row, i in enumerate(idx):
                batch[row, : lengths[row]] = self._prepare(wavs[i])
                mask[row, : lengths[row]] = 1
            kwargs = {"attention_mask": torch.from_numpy(mask).to(self.device)} if self.use_mask else {}
            with autocast(self.device):
                result = self.model(torch.from_numpy(batch).to(self.device), output_hidden_states=True, **kwargs)
            hidden = torch.stack([result.hidden_states[i] for i in self.layers])  # (L, B, T, D)
            frames = self.model._get_feat_extract_output_lengths(torch.tensor(lengths)).tolist()
            hidden = hidden.float().cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = hidden[:, row, : frames[row]]
        return out  # type: ignore[return-value]
