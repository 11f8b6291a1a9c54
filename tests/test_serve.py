"""The HTTP service: the API's answers, bad uploads refused with 4xx and the reason, no mixing under concurrency."""

from concurrent.futures import ThreadPoolExecutor

from mmser.labels import EMOTIONS
from tests.conftest import write_tone


def test_http_matches_api_and_refuses_bad_uploads(client, tmp_path):
    http, predictor = client
    clip = write_tone(tmp_path / "c.wav", seconds=1.0)
    assert http.get("/health").json()["status"] == "ok"
    assert http.get("/labels").json()["labels"] == list(EMOTIONS)
    r = http.post("/predict", files={"audio": ("c.wav", clip.read_bytes(), "audio/wav")})
    assert r.status_code == 200 and r.json()["probabilities"] == predictor.predict(clip).probabilities
    r = http.post("/predict", files={"audio": ("x.wav", b"not audio", "audio/wav")})
    assert r.status_code == 422 and "x.wav" in r.json()["detail"]
    big = write_tone(tmp_path / "big.wav", seconds=8.0, sr=48_000)
    assert http.post("/predict", files={"audio": ("big.wav", big.read_bytes(), "audio/wav")}).status_code == 413
    long = write_tone(tmp_path / "long.wav", seconds=12.0, sr=8_000, subtype="PCM_U8")
    r = http.post("/predict", files={"audio": ("long.wav", long.read_bytes(), "audio/wav")})
    assert r.status_code == 422 and "too long" in r.json()["detail"]
    assert http.post("/predict", files={"audio": ("e.wav", b"", "audio/wav")}).status_code == 422


def test_concurrent_requests_do_not_mix(client, tmp_path):
    http, predictor = client
    clips = [write_tone(tmp_path / f"c{i}.wav", seconds=0.6 + 0.2 * i, freq=150 + 60 * i, seed=i) for i in range(4)]
    expected = {c.name: predictor.predict(c).probabilities for c in clips}

    def call(i):
        c = clips[i % 4]
        return c.name, http.post("/predict", files={"audio": (c.name, c.read_bytes(), "audio/wav")}).json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        for name, body in pool.map(call, range(24)):
            assert body["file"] == name and body["probabilities"] == expected[name]


def test_serve_flags_set_the_services_limits(checkpoint, tmp_path, monkeypatch, capsys):
    """`mmser serve --max-streams/--max-stream-duration/--max-timeline/--max-duration` reach the app; a limit
    of 0 or below is refused before any model is loaded."""
    import numpy as np
    import pytest
    import soundfile as sf
    import uvicorn
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from mmser.cli import main

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    assert main(["serve", "--checkpoint", str(checkpoint), "--max-streams", "1", "--max-stream-duration", "0.5",
                 "--max-timeline", "2", "--max-duration", "1"]) == 0
    assert served["host"] == "127.0.0.1"
    http = TestClient(served["app"])
    with http.websocket_connect("/stream") as first:
        assert first.receive_json()["max_stream_s"] == 0.5
        with http.websocket_connect("/stream") as second:
            with pytest.raises(WebSocketDisconnect) as closed:
                second.receive_json()
        assert closed.value.code == 1013 and "1 streams are open" in closed.value.reason
    long = tmp_path / "long.wav"
    sf.write(long, 0.1 * np.sin(np.arange(48_000) / 10).astype(np.float32), 16_000)  # 3 s
    for route, limit in (("/timeline", "2"), ("/predict", "1")):
        refused = http.post(route, files={"audio": ("long.wav", long.read_bytes(), "audio/wav")})
        assert refused.status_code == 422 and f"maximum {limit}" in refused.json()["detail"], route
    assert main(["serve", "--checkpoint", str(checkpoint), "--max-streams", "0"]) == 2
    assert "--max-streams 0: must be > 0" in capsys.readouterr().err


def test_uploads_recorded_below_16k_get_a_note(client, tmp_path):
    """An 8 kHz clip is predicted as the Python API predicts it, and the answer says it was recorded below 16 kHz;
    a 16 or 44.1 kHz clip gets no note. /timeline alike."""
    http, predictor = client
    clips = {rate: write_tone(tmp_path / f"c{rate}.wav", seconds=1.0, sr=rate) for rate in (8000, 16000, 44100)}

    def post(route, rate):
        return http.post(route, files={"audio": (f"c{rate}.wav", clips[rate].read_bytes(), "audio/wav")}).json()

    for route in ("/predict", "/timeline"):
        noted = post(route, 8000)
        assert "c8000.wav" in noted["note"] and "below 16000 Hz" in noted["note"] and "8000" in noted["note"], route
        assert "note" not in post(route, 16000) and "note" not in post(route, 44100), route
    assert post("/predict", 8000)["probabilities"] == predictor.predict(clips[8000]).probabilities


def test_served_notes_say_whether_the_training_heard_telephone_copies(checkpoint, tmp_path, monkeypatch):
    """`mmser serve` reads its checkpoints' documents: the note on an 8 kHz upload or stream ends as `mmser
    predict`'s does, with whether the training heard telephone-band copies."""
    import uvicorn
    from fastapi.testclient import TestClient

    from mmser.checkpoint import load_checkpoint, save_checkpoint
    from mmser.cli import main
    from tests.conftest import tiny_features

    heard = tmp_path / "telephone.safetensors"
    augment = {"variants": 2, "noise": ["white", "telephone"]}
    save_checkpoint(heard, load_checkpoint(checkpoint).members, tiny_features(), None, {"features": {"augment": augment}})
    clip = write_tone(tmp_path / "phone.wav", seconds=1.0, sr=8000)
    for path, expected in ((checkpoint, "heard no telephone-band copies (features.augment.noise can add them)"),
                           (heard, "heard telephone-band copies of its clips")):
        served = {}
        monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app))
        assert main(["serve", "--checkpoint", str(path)]) == 0
        http = TestClient(served["app"])
        note = http.post("/predict", files={"audio": ("phone.wav", clip.read_bytes(), "audio/wav")}).json()["note"]
        assert note.startswith("1 clip(s) recorded below 16000 Hz") and note.endswith(expected)
        with http.websocket_connect("/stream?rate=8000") as ws:
            assert expected in ws.receive_json()["note"]
