"""Emotion over a long recording: voice-activity segmentation (silero-vad, weights shipped in its package),
then one prediction per speech segment (:meth:`mmser.inference.Predictor.timeline`).

The timeline covers the whole recording, nothing dropped: every stretch is a :class:`Segment` with a status,
``speech`` (classified: a label and 8 probabilities), ``too_short`` (speech shorter than ``min_segment_s``:
reported, not classified) or ``silence`` (between speech segments). Speech longer than ``max_segment_s`` is
cut at the VAD's best pause inside it. With Whisper's word timestamps, each segment gets the words spoken
inside it (a word belongs to the segment holding its midpoint), never the whole transcript.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmser.audio import SAMPLE_RATE
from mmser.errors import MmserError
from mmser.labels import EMOTIONS

SILENCE_MIN_S = 0.05  # s, gaps shorter than this between segments are not listed


@dataclass(frozen=True)
class TimelineOptions:
    """How a recording is cut into segments."""

    min_segment_s: float = 1.0  # s, shorter speech is reported as too_short, not classified
    max_segment_s: float = 15.0  # s, longer speech is cut (at most the model's 30 s window)
    pad_s: float = 0.1  # s, added before and after each speech region
    min_silence_s: float = 0.3  # s, pauses shorter than this do not end a segment
    threshold: float = 0.5  # VAD speech probability threshold

    def check(self) -> None:
        if not 0 < self.min_segment_s <= self.max_segment_s <= 30:
            raise MmserError(f"timeline: need 0 < min segment ({self.min_segment_s} s) <= max segment "
                             f"({self.max_segment_s} s) <= 30 s")
        if self.pad_s < 0 or self.min_silence_s <= 0 or not 0 < self.threshold < 1:
            raise MmserError("timeline: pad >= 0, min silence > 0 and 0 < threshold < 1")


@dataclass
class Segment:
    start_s: float
    end_s: float
    status: str  # speech | too_short | silence
    label: str | None = None
    probabilities: dict[str, float] | None = None
    words: str | None = None  # the words spoken inside the segment (with a transcribing model)

    def to_dict(self) -> dict:
        out = {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "status": self.status}
        if self.label is not None:
            out.update(label=self.label, probabilities=self.probabilities)
        if self.words is not None:
            out["words"] = self.words
        return out


@dataclass
class Timeline:
    duration_s: float
    segments: list[Segment] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"duration_s": round(self.duration_s, 3), "segments": [s.to_dict() for s in self.segments]}

    def table(self):
        """One row per segment: start_s, end_s, status, label, prob_<emotion> ..., words."""
        import pandas as pd

        rows = []
        for s in self.segments:
            probs = s.probabilities or {}
            rows.append({"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "status": s.status,
                         "label": s.label or "", **{f"prob_{e}": probs.get(e, np.nan) for e in EMOTIONS},
                         "words": s.words or ""})
        return pd.DataFrame(rows)


_VAD = None


def vad_model():
    """The silero-vad model (loaded once per process, from the weights inside the package)."""
    global _VAD
    if _VAD is None:
        from silero_vad import load_silero_vad

        _VAD = load_silero_vad()
    return _VAD


def speech_regions(wav: np.ndarray, options: TimelineOptions) -> list[tuple[int, int]]:
    """(start, end) samples of each speech region of a 16 kHz waveform ``(n,)`` (short ones included)."""
    import torch
    from silero_vad import get_speech_timestamps

    found = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), vad_model(),
                                  threshold=options.threshold, sampling_rate=SAMPLE_RATE, min_speech_duration_ms=60,
                                  max_speech_duration_s=options.max_segment_s - 2 * options.pad_s,
                                  min_silence_duration_ms=int(1000 * options.min_silence_s),
                                  speech_pad_ms=int(1000 * options.pad_s))
    return [(int(r["start"]), min(int(r["end"]), len(wav))) for r in found]


def segments_of(wav: np.ndarray, options: TimelineOptions) -> list[Segment]:
    """The whole recording as speech / too_short / silence segments, in time order (not yet classified)."""
    out, cursor = [], 0
    for start, end in speech_regions(wav, options):
        start = max(start, cursor)
        if end <= start:
            continue
        if (start - cursor) / SAMPLE_RATE >= SILENCE_MIN_S:
            out.append(Segment(cursor / SAMPLE_RATE, start / SAMPLE_RATE, "silence"))
        status = "speech" if (end - start) / SAMPLE_RATE >= options.min_segment_s else "too_short"
        out.append(Segment(start / SAMPLE_RATE, end / SAMPLE_RATE, status))
        cursor = end
    if (len(wav) - cursor) / SAMPLE_RATE >= SILENCE_MIN_S or not out:
        out.append(Segment(cursor / SAMPLE_RATE, len(wav) / SAMPLE_RATE, "silence"))
    return out


def words_in(segments: list[Segment], words: list[tuple[float, float, str]]) -> None:
    """Give each speech or too_short segment the words whose midpoint lies inside it (``words``: (start s,
    end s, word)); a word in a pause goes to the nearest such segment."""
    spoken = [s for s in segments if s.status != "silence"]
    parts: dict[int, list[str]] = {id(s): [] for s in spoken}
    for start, end, word in words:
        if not spoken:
            break
        mid = (start + end) / 2
        inside = [s for s in spoken if s.start_s <= mid < s.end_s]
        target = inside[0] if inside else min(spoken, key=lambda s: min(abs(mid - s.start_s), abs(mid - s.end_s)))
        parts[id(target)].append(word.strip())
    for s in spoken:
        s.words = " ".join(w for w in parts[id(s)] if w)


def plot_timeline(timeline: Timeline, out, title: str = "") -> None:
    """The 8 probabilities of each speech segment as stacked bars over time, too-short segments hatched,
    silences blank; the label above each segment -> ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(max(6.0, min(24.0, timeline.duration_s / 4)), 3.2))
    for s in timeline.segments:
        width = s.end_s - s.start_s
        if s.status == "too_short":
            ax.bar(s.start_s, 1.0, width, align="edge", color="0.9", hatch="//", edgecolor="0.6")
        elif s.status == "speech":
            bottom = 0.0
            for k, e in enumerate(EMOTIONS):
                ax.bar(s.start_s, s.probabilities[e], width, bottom=bottom, align="edge", color=colors[k],
                       edgecolor="white", linewidth=0.3, label=e)
                bottom += s.probabilities[e]
            ax.text(s.start_s + width / 2, 1.02, s.label, ha="center", va="bottom", fontsize=7)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=6, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.set(xlim=(0, timeline.duration_s), ylim=(0, 1.12), xlabel="time (s)", ylabel="probability", title=title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
