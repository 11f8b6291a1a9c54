"""Load on the HTTP service: a real server on loopback, a bounded burst of concurrent valid and invalid uploads.
No 5xx, every valid answer equals the single-request answer, the server's memory stays bounded."""

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mmser.checkpoint import Member, save_checkpoint
from mmser.features.spec import FeatureSpec
from mmser.features.encoders.registry import build_audio_encoder
from mmser.models.builders import ModelDims, build_model
from tests.conftest import save_tiny_whisper, write_tone

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.fixture
def server(tmp_path):
    save_tiny_whisper(tmp_path / "w.pt")
    spec = f"whisper:{tmp_path / 'w.pt'}"
    enc = build_audio_encoder(spec, "all", whisper_window="clip")
    model = build_model(ModelDims("audio_only", audio_dim=32, num_audio_layers=2, hidden_dim=16))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", [Member(model, spec, enc.fingerprint, None)],
                           FeatureSpec(audio_encoders=(spec,), whisper_window="clip", max_text_tokens=16), None, {})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mmser.cli", "serve", "--checkpoint", str(ckpt), "--port", str(port),
                             "--max-upload-mb", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("server did not start")
    yield url, proc
    proc.terminate()
    proc.wait(timeout=30)


def test_bounded_burst_mixed_valid_and_invalid(server, tmp_path):
    url, proc = server
    valid = [write_tone(tmp_path / f"v{i}.wav", seconds=0.5 + 0.3 * i, freq=120 + 50 * i, seed=i) for i in range(3)]
    invalid = [("junk.wav", b"nonsense"), ("empty.wav", b""), ("big.wav", b"RIFF" + bytes(1_200_000))]
    expected = {p.name: httpx.post(url + "/predict", files={"audio": (p.name, p.read_bytes())}).json() for p in valid}
    rss_before = rss_mib(proc.pid)

    def call(i: int):
        if i % 4 == 3:
            name, data = invalid[i % len(invalid)]
        else:
            name, data = valid[i % len(valid)].name, valid[i % len(valid)].read_bytes()
        r = httpx.post(url + "/predict", files={"audio": (name, data)}, timeout=60)
        return name, r.status_code, r.json()

    start = time.time()
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(call, range(96)))  # bounded: 96 requests, then it stops
    assert time.time() - start < 300
    for name, status, body in results:
        assert status < 500, body
        if name in expected:
            assert status == 200 and body["probabilities"] == expected[name]["probabilities"]
        else:
            assert status in (413, 422) and body["detail"]
    assert rss_mib(proc.pid) - rss_before < 200  # MiB: no per-request growth
