"""Model invariants: shapes, class masking, padding, empty text, starting a fused model from audio-only."""

import numpy as np
import pytest
import torch

from mmser.features.batching import FeatureDataset, collate
from mmser.labels import class_mask
from mmser.models.builders import MODEL_KINDS, ModelDims, build_model


def dims(kind, mask=None):
    return ModelDims(kind=kind, audio_dim=12, num_audio_layers=3, text_dim=10, num_text_layers=2, hidden_dim=16,
                     num_heads=4, dropout=0.0, fusion_dropout=0.0,
                     class_mask=tuple(mask or [True] * 8))


def batch(n=3, seed=0, text_tokens=(5, 2, 7)):
    rng = np.random.default_rng(seed)
    audio = [rng.standard_normal((3, t, 12)).astype(np.float16) for t in (20, 9, 31)[:n]]
    text = [rng.standard_normal((2, k, 10)).astype(np.float16) for k in text_tokens[:n]]
    ds = FeatureDataset([f"u{i}" for i in range(n)], ["angry"] * n, audio, text)
    return ds, collate([ds[i] for i in range(n)])


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_logits_and_padding_invariance(kind):
    torch.manual_seed(0)
    model = build_model(dims(kind)).eval()
    ds, b = batch()
    with torch.no_grad():
        logits = model(b["audio"], b["audio_mask"], b["text"], b["text_mask"])
        assert logits.shape == (3, 8) and torch.isfinite(logits).all()
        for i in range(3):
            one = collate([ds[i]])
            alone = model(one["audio"], one["audio_mask"], one["text"], one["text_mask"])
            torch.testing.assert_close(alone[0], logits[i], atol=1e-4, rtol=1e-4)


def test_masked_classes_get_no_probability():
    mask = class_mask(["neutral", "happy", "sad", "angry"])
    model = build_model(dims("cross_attn", mask)).eval()
    _, b = batch()
    probs = torch.softmax(model(b["audio"], b["audio_mask"], b["text"], b["text_mask"]), -1)
    assert torch.all(probs[:, [1, 5, 6, 7]] == 0) and torch.allclose(probs.sum(-1), torch.ones(3))


def test_empty_transcript_is_handled():
    model = build_model(dims("cross_attn")).eval()
    _, b = batch(text_tokens=(2, 2, 2))  # [CLS] [SEP] only
    assert torch.isfinite(model(b["audio"], b["audio_mask"], b["text"], b["text_mask"])).all()


@pytest.mark.parametrize("kind", ["concat", "cross_attn"])
def test_fused_model_starts_as_the_audio_only_model(kind):
    torch.manual_seed(1)
    audio_only = build_model(dims("audio_only")).eval()
    fused = build_model(dims(kind)).eval()
    copied = fused.init_from_audio_only(audio_only.state_dict())
    assert any(k.startswith("head.") for k in copied) and any(k.startswith("audio_proj.") for k in copied)
    _, b = batch()
    with torch.no_grad():
        torch.testing.assert_close(fused(b["audio"], b["audio_mask"], b["text"], b["text_mask"]),
                                   audio_only(b["audio"], b["audio_mask"]))


def test_freezing_the_audio_branch_leaves_only_text_and_fusion_trainable():
    fused = build_model(dims("cross_attn"))
    assert fused.freeze_audio_branch() > 0
    _, b = batch()
    fused(b["audio"], b["audio_mask"], b["text"], b["text_mask"]).sum().backward()
    for name, p in fused.named_parameters():
        audio_side = name.startswith(("audio_layers.", "audio_proj.", "audio_pool.", "head."))
        assert (p.grad is None) == audio_side, name


def test_layer_weights_are_a_convex_mix():
    model = build_model(dims("audio_only"))
    w = torch.softmax(model.audio_layers.logits, 0)
    assert torch.isclose(w.sum(), torch.tensor(1.0)) and (w > 0).all()


def test_dims_roundtrip():
    d = dims("cross_attn", class_mask(["angry", "sad"]))
    assert ModelDims.from_dict(d.to_dict()) == d
