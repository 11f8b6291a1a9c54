"""``mmser serve``: the HTTP service (FastAPI). The model is loaded once; requests never share state.

A checkpoint trained with ``features.speaker_norm.mode: running`` standardises each clip with its speaker's
clips so far: a ``/predict`` upload is its own speaker (its own statistics), the segments of one
``/timeline`` recording or one ``/stream`` are one speaker's, in order.

- ``POST /predict``: multipart ``audio`` file (+ optional ``transcript`` form field, + ``enrol`` files: other
  clips of the same speaker, for checkpoints trained with per-speaker standardisation; one that is the clip
  itself is left out, as training draws other clips) -> label + probabilities
- ``POST /timeline``: multipart ``audio`` (a long recording, up to ``max_timeline_s``) + optional ``transcribe``
  form field (fused/text models: each segment's words from Whisper's word timestamps) -> the emotion of each
  speech segment, with start and end times (:meth:`mmser.inference.Predictor.timeline`)
- ``WS /stream``: live audio. The client sends binary chunks of mono PCM16 (little-endian) at 16 kHz, or at the
  rate it names as ``/stream?rate=8000`` (an integer from ``min_rate_hz`` to ``max_rate_hz``: telephone lines
  carry 8 kHz, sound cards 44.1, 48 or 96 kHz; resampled as it arrives, as an uploaded file would be), then the
  text message ``end``; the server sends ``{"type": "ready", sample_rate, ...}`` (with a ``note`` below 16 kHz),
  then one ``{"type": "segment", start_s, end_s, status, label, probabilities}`` as soon as the voice-activity
  detector closes each segment, and ``{"type": "end"}``. A fused/text model streams with ``?transcribe=1``: each
  speech segment is transcribed by Whisper when it closes and classified on its audio and those words (sent as
  ``words``), as ``mmser predict --transcribe`` does a clip. Bounded: chunk size, chunks, stream duration, open
  streams; a broken rule closes the socket with a code and the reason (1003 text other than ``end``, 1007 odd
  byte count, 1008 too long, a rate out of range, or a model that needs enrolment, or words without
  ``transcribe=1``, 1009 chunk too large, 1013 too many streams).
- ``GET /``: the web page (``mmser/web/index.html``: upload or record, label + 8 bars, the timeline of long
  recordings, live segments over ``/stream``), which uses only the endpoints above; no build step, nothing
  fetched from elsewhere.
- ``GET /health`` (what a request needs: a transcript, enrolment clips and how many the model was trained
  with; ``stream``: the rates ``/stream`` takes, whether it transcribes, and why it refuses this model, if it
  does), ``GET /labels``; OpenAPI docs at ``/docs``.
Uploads are decoded by :func:`mmser.audio.decode_audio` (the rules of every other input path). Uploads over ``max_upload_bytes`` get 413, clips over ``max_duration_s`` or unusable audio get 422,
a fused model without a transcript gets 422 — each with the reason. An answer about uploads recorded below 16 kHz
carries a ``note`` saying so (as ``mmser predict`` notes such files).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import threading

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from mmser.audio import SAMPLE_RATE, AudioError, ChunkResampler, decode_audio, narrow_band_warning, upload_rate
from mmser.checkpoint import telephone_band_training
from mmser.errors import MmserError
from mmser.labels import EMOTIONS

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # bytes
DEFAULT_MAX_DURATION_S = 120.0  # s
DEFAULT_MAX_TIMELINE_S = 1800.0  # s, the longest recording /timeline accepts


@dataclass(frozen=True)
class StreamLimits:
    """What ``/stream`` accepts."""

    max_chunk_bytes: int = 64 * 1024  # bytes per binary message (2 s of PCM16)
    max_chunks: int = 200_000  # messages per stream
    max_stream_s: float = 3600.0  # s of audio per stream
    max_streams: int = 4  # streams open at once
    min_rate_hz: int = 8000  # the sample rates a client may name (?rate=)
    max_rate_hz: int = 96000


def create_app(predictor, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_duration_s: float = DEFAULT_MAX_DURATION_S, max_timeline_s: float = DEFAULT_MAX_TIMELINE_S,
               stream_limits: StreamLimits = StreamLimits(), documents: list[dict] | None = None):
    """The app serving ``predictor``; ``documents``: its checkpoint files' documents
    (:func:`mmser.checkpoint.file_documents`), whose training the notes about narrow-band audio describe."""
    app = FastAPI(title="mmser", description="Speech + text emotion recognition", version="1")
    open_streams = [0]
    training = f"; {telephone_band_training(documents)}" if documents else ""  # ends a narrow-band note
    streams_lock = threading.Lock()

    page = (Path(__file__).parent / "web" / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/health")
    def health() -> dict:
        sn = predictor.features.speaker_norm
        return {"status": "ok", "needs_transcript": predictor.needs_text, "needs_enrolment": predictor.needs_enrolment,
                "speaker_norm": sn.mode, "enrolment_clips": sn.clips,
                "prior_clips": sn.prior_clips, "members": predictor.member_count,
                "stream": {"rates_hz": [stream_limits.min_rate_hz, stream_limits.max_rate_hz],
                           "transcribe": predictor.needs_text, "refused": _stream_refusal(predictor, True)}}

    @app.get("/labels")
    def labels() -> dict:
        return {"labels": list(EMOTIONS)}

    @app.post("/predict")
    def predict(audio: UploadFile = File(...), transcript: Optional[str] = Form(None),
                enrol: Optional[list[UploadFile]] = File(None)) -> dict:
        uploads = [audio, *(enrol or [])]
        budget = max_upload_bytes  # for the request's files together
        blobs = []
        for upload in uploads:
            blobs.append(upload.file.read(budget + 1))
            budget -= len(blobs[-1])
            if budget < 0:
                raise HTTPException(413, f"{upload.filename}: uploads larger than {max_upload_bytes} bytes in all")
        try:
            wavs = [decode_audio(data, upload.filename or "upload", max_duration_s)  # the one loader's rules
                    for upload, data in zip(uploads, blobs)]
            result = predictor.predict(wavs[0], transcript=transcript, enrolment=wavs[1:] or None,
                                       sample_rate=SAMPLE_RATE)
        except (AudioError, MmserError) as err:
            raise HTTPException(422, str(err)) from None
        return {"file": audio.filename, **result.to_dict(), **_narrow_band_note(uploads, blobs, training)}

    @app.post("/timeline")
    def timeline(audio: UploadFile = File(...), transcribe: bool = Form(False)) -> dict:
        data = audio.file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"{audio.filename}: upload larger than {max_upload_bytes} bytes")
        try:
            wav = decode_audio(data, audio.filename or "upload", max_timeline_s)
            result = predictor.timeline(wav, sample_rate=SAMPLE_RATE, transcribe=transcribe)
        except (AudioError, MmserError) as err:
            raise HTTPException(422, str(err)) from None
        return {"file": audio.filename, **result.to_dict(), **_narrow_band_note([audio], [data], training)}

    @app.websocket("/stream")
    async def stream(socket: WebSocket) -> None:
        from mmser.streaming import StreamSegmenter

        await socket.accept()
        limits = stream_limits
        try:
            rate = _stream_rate(socket.query_params.get("rate"), limits)
            refusal = _stream_refusal(predictor, _stream_flag("transcribe", socket.query_params.get("transcribe")))
        except ValueError as malformed:  # a parameter the stream cannot take
            refusal = str(malformed)
        if refusal:
            await socket.close(1008, refusal)
            return
        with streams_lock:
            if open_streams[0] >= limits.max_streams:
                refused = True
            else:
                refused, open_streams[0] = False, open_streams[0] + 1
        if refused:
            await socket.close(1013, f"{limits.max_streams} streams are open; try again later")
            return
        try:
            await _serve_stream(socket, StreamSegmenter(), ChunkResampler(rate), limits,
                                predictor.new_speaker() if predictor.accumulates_speaker else None)
        except WebSocketDisconnect:
            pass
        finally:
            with streams_lock:
                open_streams[0] -= 1

    async def _serve_stream(socket: WebSocket, segmenter, resampler: ChunkResampler, limits: StreamLimits,
                            speaker) -> None:
        """One stream; ``resampler``: from the client's rate to 16 kHz; ``speaker``: its
        :class:`~mmser.inference.RunningSpeaker` (mode running) or None."""
        ready = {"type": "ready", "sample_rate": resampler.rate, "format": "pcm_s16le mono",
                 "max_chunk_bytes": limits.max_chunk_bytes, "max_stream_s": limits.max_stream_s,
                 "transcribe": predictor.needs_text}
        if resampler.rate < SAMPLE_RATE:
            ready["note"] = (f"audio at {resampler.rate} Hz is upsampled to {SAMPLE_RATE} Hz with nothing above "
                             f"{resampler.rate // 2} Hz: an encoder and a model that heard full-band speech are less "
                             f"accurate on it{training}")
        await socket.send_json(ready)
        chunks = 0
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                if message["text"].strip() != "end":
                    await socket.close(1003, f"send binary {resampler.rate} Hz PCM16 chunks, then the text "
                                             "message 'end'")
                    return
                closed = await run_in_threadpool(segmenter.push, resampler.flush())
                for segment in closed + segmenter.flush():
                    await socket.send_json(await run_in_threadpool(_segment_result, segment, speaker))
                await socket.send_json({"type": "end", "duration_s": round(resampler.received / resampler.rate, 3)})
                await socket.close(1000)
                return
            data = message.get("bytes") or b""
            chunks += 1
            if len(data) > limits.max_chunk_bytes:
                await socket.close(1009, f"chunk of {len(data)} bytes; at most {limits.max_chunk_bytes}")
                return
            if len(data) % 2:
                await socket.close(1007, "PCM16 chunks need an even number of bytes")
                return
            if chunks > limits.max_chunks or (resampler.received + len(data) // 2) / resampler.rate > limits.max_stream_s:
                await socket.close(1008, f"stream longer than {limits.max_stream_s:g} s or {limits.max_chunks} chunks")
                return
            pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0  # (n,) at the client's rate
            for segment in await run_in_threadpool(lambda: segmenter.push(resampler.push(pcm))):
                await socket.send_json(await run_in_threadpool(_segment_result, segment, speaker))

    def _segment_result(segment, speaker) -> dict:
        out = {"type": "segment", "start_s": round(segment.start_s, 3), "end_s": round(segment.end_s, 3),
               "status": segment.status}
        if segment.status == "speech":
            with predictor._lock:
                words = predictor.transcribe(segment.wav) if predictor.needs_text else None
                probs = predictor.window_probabilities([segment.wav], [words], speaker)[0]
            if words is not None:
                out["words"] = words
            out["label"] = EMOTIONS[int(np.argmax(probs))]
            out["probabilities"] = {e: round(float(x), 6) for e, x in zip(EMOTIONS, probs)}
        return out

    return app


def _narrow_band_note(uploads: list[UploadFile], blobs: list[bytes], training: str) -> dict:
    """``{"note": ...}`` naming the decoded uploads recorded below 16 kHz (telephone audio), as ``mmser predict``
    notes such files, ended by ``training`` (what the checkpoint's training heard, or ""); ``{}`` when there are
    none."""
    rates = [upload_rate(blob) for blob in blobs]
    narrow = [(upload.filename or "upload", rate) for upload, rate in zip(uploads, rates) if rate < SAMPLE_RATE]
    return {"note": narrow_band_warning([n for n, _ in narrow], [r for _, r in narrow]) + training} if narrow else {}


def _stream_refusal(predictor, transcribe: bool) -> Optional[str]:
    """Why ``/stream`` refuses ``predictor``'s model (``transcribe``: the client asked for words), or None."""
    if predictor.needs_enrolment:
        return "this checkpoint needs enrolment clips of the speaker, which a stream does not carry"
    if predictor.needs_text and not transcribe:
        return ("this checkpoint needs words (a fused/text model): connect to /stream?transcribe=1 and Whisper "
                "transcribes each segment as it closes")
    return None


def _stream_flag(name: str, value: Optional[str]) -> bool:
    """A yes/no ``/stream?name=`` (absent: False); ValueError with the reason for anything else."""
    answers = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if value is None:
        return False
    if value.strip().lower() not in answers:
        raise ValueError(f"{name}={value[:20]!r}: give 1 or 0 (true/false, yes/no)")
    return answers[value.strip().lower()]


def _stream_rate(value: Optional[str], limits: StreamLimits) -> int:
    """The sample rate (Hz) a ``/stream?rate=`` names (16 kHz when it names none); ValueError with the reason
    for a rate it cannot take."""
    if value is None:
        return SAMPLE_RATE
    try:
        rate = int(value)
    except ValueError:
        rate = None
    if rate is None or not limits.min_rate_hz <= rate <= limits.max_rate_hz:
        raise ValueError(f"rate={value[:20]!r}: give the sample rate of the PCM16 chunks in Hz, an integer from "
                         f"{limits.min_rate_hz} to {limits.max_rate_hz}")
    return rate
