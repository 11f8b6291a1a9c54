"""Live audio -> segments as they close: silero-vad's streaming iterator over 16 kHz PCM chunks.

:class:`StreamSegmenter` takes chunks of any size, runs the VAD on 32 ms windows (512 samples) and returns
each segment as soon as the VAD closes it (``min_silence_s`` of silence after speech) or it reaches
``max_segment_s``: ``(start s, end s, waveform, status)`` with status ``speech`` or ``too_short`` (the same
rules as :mod:`mmser.timeline`). ``flush()`` closes the segment open at the end of the stream. The WebSocket
endpoint of :mod:`mmser.serve` classifies each ``speech`` segment and sends its result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmser.audio import SAMPLE_RATE
from mmser.timeline import TimelineOptions, vad_model

VAD_WINDOW = 512  # samples (32 ms), what silero-vad takes at 16 kHz


@dataclass
class ClosedSegment:
    start_s: float
    end_s: float
    wav: np.ndarray  # (n,) float32, 16 kHz
    status: str  # speech | too_short


class StreamSegmenter:
    def __init__(self, options: TimelineOptions | None = None):
        from silero_vad import VADIterator

        self.options = options or TimelineOptions()
        self.options.check()
        self.vad = VADIterator(vad_model(), threshold=self.options.threshold, sampling_rate=SAMPLE_RATE,
                               min_silence_duration_ms=int(1000 * self.options.min_silence_s),
                               speech_pad_ms=int(1000 * self.options.pad_s))
        self.vad.reset_states()
        self.audio = np.zeros(0, np.float32)  # everything not yet dropped, starting at sample `offset`
        self.offset = 0  # stream sample of audio[0]
        self.pending = np.zeros(0, np.float32)  # samples not yet given to the VAD (< one window)
        self.fed = 0  # stream samples given to the VAD
        self.start: int | None = None  # stream sample where the open segment starts

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds."""
        return (self.offset + len(self.audio)) / SAMPLE_RATE

    def push(self, chunk: np.ndarray) -> list[ClosedSegment]:
        """Add ``chunk`` (n,) float32 at 16 kHz; returns the segments that closed."""
        import torch

        chunk = np.asarray(chunk, dtype=np.float32)
        self.audio = np.concatenate([self.audio, chunk])
        self.pending = np.concatenate([self.pending, chunk])
        closed = []
        while len(self.pending) >= VAD_WINDOW:
            window, self.pending = self.pending[:VAD_WINDOW], self.pending[VAD_WINDOW:]
            event = self.vad(torch.from_numpy(window.copy()))
            self.fed += VAD_WINDOW
            if event and "start" in event and self.start is None:
                self.start = max(int(event["start"]), self.offset)
            elif event and "end" in event and self.start is not None:
                closed.append(self._close(min(int(event["end"]), self.fed)))
            if self.start is not None and (self.fed - self.start) / SAMPLE_RATE >= self.options.max_segment_s:
                closed.append(self._close(self.fed))  # too long: cut here, the speech goes on in a new segment
                self.start = self.fed
        self._drop_before(self.start if self.start is not None else self.fed - int(self.options.pad_s * SAMPLE_RATE))
        return closed

    def flush(self) -> list[ClosedSegment]:
        """Close the segment still open at the end of the stream (if any)."""
        if self.start is None:
            return []
        return [self._close(self.offset + len(self.audio))]

    def _close(self, end: int) -> ClosedSegment:
        start, self.start = self.start, None
        wav = self.audio[max(start - self.offset, 0):max(end - self.offset, 0)]
        duration = len(wav) / SAMPLE_RATE
        status = "speech" if duration >= self.options.min_segment_s else "too_short"
        return ClosedSegment(start / SAMPLE_RATE, end / SAMPLE_RATE, wav.copy(), status)

    def _drop_before(self, sample: int) -> None:
        """Forget audio before stream sample ``sample`` (memory stays bounded by the open segment)."""
        cut = max(0, min(sample - self.offset, len(self.audio)))
        if cut:
            self.audio = self.audio[cut:]
            self.offset += cut
