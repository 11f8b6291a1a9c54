"""``mmser serve``: the HTTP service (FastAPI). The model is loaded once; requests never share state.

- ``POST /predict``: multipart ``audio`` file (+ optional ``transcript`` form field, + ``enrol`` files: other
  clips of the same speaker, for checkpoints trained with per-speaker standardisation) -> label + probabilities
- ``POST /timeline``: multipart ``audio`` (a long recording, up to ``max_timeline_s``) + optional ``transcribe``
  form field (fused/text models: each segment's words from Whisper's word timestamps) -> the emotion of each
  speech segment, with start and end times (:meth:`mmser.inference.Predictor.timeline`)
- ``GET /health``, ``GET /labels``; OpenAPI docs at ``/docs``.
Uploads are decoded by :func:`mmser.audio.decode_audio` (the rules of every other input path). Uploads over ``max_upload_bytes`` get 413, clips over ``max_duration_s`` or unusable audio get 422,
a fused model without a transcript gets 422 — each with the reason.
"""

from typing import Optional

from fastapi import FastAPI, File, Form, HTTPException, UploadFile

from mmser.audio import SAMPLE_RATE, AudioError, decode_audio
from mmser.errors import MmserError
from mmser.labels import EMOTIONS

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # bytes
DEFAULT_MAX_DURATION_S = 120.0  # s
DEFAULT_MAX_TIMELINE_S = 1800.0  # s, the longest recording /timeline accepts


def create_app(predictor, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_duration_s: float = DEFAULT_MAX_DURATION_S, max_timeline_s: float = DEFAULT_MAX_TIMELINE_S):
    app = FastAPI(title="mmser", description="Speech + text emotion recognition", version="1")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "needs_transcript": predictor.needs_text, "needs_enrolment": predictor.needs_enrolment,
                "members": len(predictor.ckpt.members)}

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
        return {"file": audio.filename, **result.to_dict()}

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
        return {"file": audio.filename, **result.to_dict()}

    return app
