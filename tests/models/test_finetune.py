"""Fine-tuned top blocks: before training they reproduce the frozen encoder's cached hidden states."""

import numpy as np
import pytest
import torch

from mmser.features.encoders.registry import build_audio_encoder
from mmser.features.frames import pool_frames
from mmser.models.finetune import TopBlocks, encoder_top_blocks, pool_masked
from tests.conftest import save_tiny_wav2vec2, save_tiny_whisper


def _clips(lengths=(4000, 9000, 6400)):
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def _batch(frames: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, T_i, D) arrays -> padded (B, L, T_max, D) float32 and mask (B, T_max)."""
    t_max = max(f.shape[1] for f in frames)
    out = torch.zeros(len(frames), frames[0].shape[0], t_max, frames[0].shape[2])
    mask = torch.zeros(len(frames), t_max, dtype=torch.bool)
    for b, f in enumerate(frames):
        out[b, :, : f.shape[1]] = torch.from_numpy(f)
        mask[b, : f.shape[1]] = True
    return out, mask


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("w2v") / "tiny-wav2vec2", layers=3)


def _encoders(tmp_path_factory, tiny_wav2vec2):
    ckpt = save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny.pt", state=64, layers=3)
    return [build_audio_encoder(f"whisper:{ckpt}", "all", whisper_window="clip"),
            build_audio_encoder(f"hf:{tiny_wav2vec2}", "all", batch_size=3)]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_blocks_reproduce_the_cached_states(tmp_path_factory, tiny_wav2vec2, k):
    for encoder in _encoders(tmp_path_factory, tiny_wav2vec2):
        frames = encoder.encode(_clips())  # (L, T, D) each, L = blocks + 1
        arch, state = encoder_top_blocks(encoder, k)
        blocks = TopBlocks(arch, k).eval()
        blocks.load_state_dict(state)
        hidden, mask = _batch(frames)
        with torch.no_grad():
            top = blocks(hidden[:, -k - 1], mask)  # (B, K, T, D)
        for b, f in enumerate(frames):
            n = f.shape[1]
            np.testing.assert_allclose(top[b, :, :n].numpy(), f[-k:], atol=2e-4,
                                       err_msg=f"{encoder.encoder_id} K={k} clip {b}")
        # padding frames are never attended to: clip 0 alone gives its own states
        with torch.no_grad():
            alone = blocks(hidden[:1, -k - 1, : frames[0].shape[1]], mask[:1, : frames[0].shape[1]])
        np.testing.assert_allclose(alone[0].numpy(), top[0, :, : frames[0].shape[1]].numpy(), atol=1e-5)


def test_top_blocks_refuse_what_they_cannot_fine_tune(tmp_path_factory, tiny_wav2vec2):
    from mmser.errors import MmserError

    whisper, _ = _encoders(tmp_path_factory, tiny_wav2vec2)
    with pytest.raises(MmserError, match="has 3 blocks"):
        encoder_top_blocks(whisper, 4)
    last_only = build_audio_encoder(f"hf:{tiny_wav2vec2}", "last")
    with pytest.raises(MmserError, match="audio_layers=all"):
        encoder_top_blocks(last_only, 1)


def test_pool_masked_matches_pool_frames():
    rng = np.random.default_rng(1)
    frames = [rng.standard_normal((2, n, 5)).astype(np.float32) for n in (7, 12, 1)]
    hidden, mask = _batch(frames)
    pooled, pooled_mask = pool_masked(hidden, mask, 4)
    for b, f in enumerate(frames):
        expect = pool_frames(f, 4).astype(np.float32)
        n = expect.shape[1]
        assert pooled_mask[b].sum() == n and bool(pooled_mask[b, :n].all())
        np.testing.assert_allclose(pooled[b, :, :n].numpy(), expect, rtol=1e-3, atol=1e-3)  # pool_frames rounds to float16
