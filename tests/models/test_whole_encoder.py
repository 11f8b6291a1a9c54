"""The whole encoder trained from the waveform (top_layers=all): before training it reproduces the frozen
encoder's cached hidden states for every clip of a padded batch, and it learns."""

import json

import numpy as np
import pytest
import torch

from mmser.config import WHOLE_ENCODER
from mmser.errors import MmserError
from mmser.features.batching import collate
from mmser.features.encoders.registry import build_audio_encoder
from mmser.labels import class_mask
from mmser.models.builders import ModelDims, build_model
from mmser.models.whole_encoder import build_whole_encoder, whole_encoder_weights
from tests.conftest import save_tiny_wav2vec2, save_tiny_whisper


def _clips(lengths=(4000, 9000, 6400, 3333)):
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    whisper = save_tiny_whisper(root / "tiny.pt", state=64, layers=2)
    return [build_audio_encoder(f"whisper:{whisper}", "all", whisper_window="clip"),
            build_audio_encoder(f"hf:{save_tiny_wav2vec2(root / 'w2v-layer', layers=2)}", "all", batch_size=4),
            build_audio_encoder(f"hf:{save_tiny_wav2vec2(root / 'w2v-group', layers=2, feat_extract_norm='group', stable=False)}",
                                "all", batch_size=4)]


def test_whole_encoder_reproduces_the_cached_states(encoders):
    clips = _clips()
    for encoder in encoders:
        cached = encoder.encode(clips)  # (L, T_i, D) each, as the feature cache holds them
        arch, state = whole_encoder_weights(encoder)
        module = build_whole_encoder(arch).eval()
        module.load_state_dict(state)
        batch = collate([{"index": i, "target": 0, "audio": w, "text": None} for i, w in enumerate(clips)])
        assert batch["audio"].shape == (len(clips), max(len(w) for w in clips))
        with torch.no_grad():
            hidden, mask = module(batch["audio"], batch["audio_mask"])  # (B, L, T, D), (B, T)
        for b, f in enumerate(cached):
            n = f.shape[1]
            assert int(mask[b].sum()) == n, encoder.encoder_id
            np.testing.assert_allclose(hidden[b, :, :n].numpy(), f, atol=3e-4, err_msg=f"{encoder.encoder_id} clip {b}")


def _whole_model(encoder) -> torch.nn.Module:
    arch, state = whole_encoder_weights(encoder)
    dims = ModelDims(kind="audio_only", audio_dim=encoder.dim, num_audio_layers=encoder.num_layers, hidden_dim=16,
                     class_mask=class_mask(["angry", "sad"]), finetune_layers=WHOLE_ENCODER, frame_stride=2,
                     encoder_blocks=json.dumps(arch))
    model = build_model(dims)
    model.audio_encoder.load_state_dict(state)
    return model


def test_a_whole_encoder_model_trains_its_encoder_from_waveforms(encoders):
    torch.manual_seed(0)
    model = _whole_model(encoders[0])
    assert model.dims.reads_waveforms
    before = {k: v.clone() for k, v in model.audio_encoder.state_dict().items()}
    batch = collate([{"index": i, "target": t, "audio": w, "text": None}
                     for i, (w, t) in enumerate(zip(_clips(), [4, 3, 4, 3]))])
    model.eval()  # no dropout: the loss falls step by step
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.cross_entropy(model.forward_batch(batch), batch["target"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    after = model.audio_encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in ("conv1.weight", "blocks.0.attn.query.weight"))


def test_refuses_a_clip_longer_than_whispers_input(encoders):
    model = _whole_model(encoders[0]).eval()
    wave = torch.zeros(1, 30 * 16000 + 640)
    with pytest.raises(MmserError, match="longer than the encoder"):
        model(wave, torch.ones_like(wave, dtype=torch.bool))


def test_refuses_an_encoder_without_every_hidden_state(tmp_path):
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    with pytest.raises(MmserError, match="every hidden state"):
        whole_encoder_weights(build_audio_encoder(f"whisper:{whisper}", "last", whisper_window="clip"))


def test_runs_under_bf16_mixed_precision_with_a_float32_spectrogram(encoders):
    model = _whole_model(encoders[0]).eval()
    batch = collate([{"index": i, "target": 0, "audio": w, "text": None} for i, w in enumerate(_clips())])
    with torch.no_grad():
        reference = model.forward_batch(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mel = model.audio_encoder.log_mel(batch["audio"], batch["audio_mask"].sum(dim=1))
            mixed = model.forward_batch(batch).float()
    assert mel.dtype == torch.float32
    assert torch.isfinite(mixed).all()
    torch.testing.assert_close(mixed, reference, atol=0.15, rtol=0.1)
