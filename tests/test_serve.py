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
