"""BERT-family token embeddings (AutoModel + AutoTokenizer): ``(L, N_tokens, D)`` per transcript.

Padding is removed per text (special tokens kept), so a text's embeddings do not depend on its batch.
An empty transcript is a defined case: it encodes to just the special tokens ([CLS] [SEP]).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mmser.devices import autocast
from mmser.features.encoders.base import length_buckets, parse_layers, state_dict_fingerprint
from mmser.features.encoders.hf_audio import load_pretrained
from mmser.features.encoders.model_paths import bert_dir


class BertTextEncoder:
    def __init__(self, spec: str = "bert:minilm", layers: str = "last", device: str = "cpu", batch_size: int = 32,
                 max_tokens: int = 64):
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        name = bert_dir(spec.partition(":")[2] or spec)
        config = load_pretrained(AutoConfig, name)
        self.tokenizer = load_pretrained(AutoTokenizer, name)
        self.model = load_pretrained(AutoModel, name).to(device).eval()
        self.encoder_id, self.device, self.batch_size, self.max_tokens = spec, device, batch_size, max_tokens
        self.layers = parse_layers(layers, config.num_hidden_layers + 1)
        self.num_layers, self.dim = len(self.layers), config.hidden_size
        self.fingerprint = state_dict_fingerprint(self.model) + f"-t{max_tokens}"

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        texts = [str(t) if t is not None else "" for t in texts]
        out: list[np.ndarray | None] = [None] * len(texts)
        for idx in length_buckets([len(t) for t in texts], self.batch_size):
            tok = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_tokens,
                                 return_tensors="pt").to(self.device)
            with autocast(self.device):
                result = self.model(**tok, output_hidden_states=True)
            hidden = torch.stack([result.hidden_states[i] for i in self.layers]).float().cpu().numpy()  # (L, B, N, D)
            lengths = tok["attention_mask"].sum(dim=1).tolist()
            for row, i in enumerate(idx):
                out[i] = hidden[:, row, : lengths[row]]
        return out  # type: ignore[return-value]
