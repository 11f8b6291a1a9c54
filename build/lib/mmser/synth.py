"""A SYNTHETIC IEMOCAP-layout corpus spoken by espeak-ng (the embedded default for demos and tests).

5 sessions x 2 voices (one "F", one "M" espeak variant per session). Emotion is carried partly by the
words (an emotional lexicon, with neutral and misleading sentences mixed in) and partly by prosody
(pitch, rate, amplitude per emotion, with per-utterance jitter): arousal is clear in the voice while
valence within an arousal level is mostly in the words, so neither modality alone is perfect and a
fused model has something to gain. Deterministic under ``seed``. Everything it writes is marked
SYNTHETIC (a marker file, the README, the dialog names' corpus note in ``prepare``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from mmser.audio import SAMPLE_RATE, resample
from mmser.errors import MmserError

# Emotion words, split into one disjoint group per session: the words of a test session never occur in
# training, so recognising them takes word meaning (a pretrained text encoder) rather than memorised
# sound patterns (which the acoustic frames of a speech encoder also carry).
EMOTION_WORDS: dict[str, list[str]] = {
    "hap": ["delighted", "thrilled", "overjoyed", "cheerful", "ecstatic", "glad", "elated", "joyful", "pleased",
            "grateful", "jubilant", "content", "blissful", "merry", "radiant"],
    "sad": ["miserable", "heartbroken", "gloomy", "depressed", "devastated", "sorrowful", "lonely", "hopeless",
            "unhappy", "grieving", "crushed", "dejected", "tearful", "downcast", "wretched"],
    "ang": ["furious", "outraged", "livid", "irritated", "enraged", "annoyed", "infuriated", "fuming", "irate",
            "resentful", "hostile", "exasperated", "incensed", "indignant", "seething"],
}
EMOTION_TEMPLATES = ["I am so {w} about {t}", "Honestly I feel {w} about {t}", "We were all {w} after {t}",
                     "She looked {w} when she heard about {t}", "I was {w} about {t} all day"]
TOPICS = ["the meeting", "the new schedule", "the trip", "the letter", "the results", "the phone call", "the house",
          "the car", "the weekend", "the report"]
NEUTRAL_TEMPLATES = ["The meeting about {t} starts at ten", "Please put {t} on the list", "I will call you about {t}",
                     "We talked about {t} this morning", "Can you check {t} tomorrow", "They moved {t} to Tuesday"]
# Prosody per raw label: espeak-ng pitch (0-99), rate (words/min), amplitude (0-200).
PROSODY: dict[str, tuple[float, float, float]] = {
    # Arousal is clear (neu/sad low, hap/ang high); within an arousal level the voice differs only
    # slightly (well inside the jitter), so the words are needed to tell neutral from sad, happy from angry.
    "neu": (44, 150, 85), "sad": (40, 142, 80), "hap": (66, 190, 150), "ang": (62, 196, 158),
    "exc": (68, 194, 152), "fru": (52, 170, 120),
}
JITTER = (8.0, 15.0, 25.0)  # uniform +- on pitch, rate, amplitude
P_OWN_WORDS, P_NEUTRAL_WORDS = 0.65, 0.30  # rest: another emotion's words (misleading)
SESSIONS = 5
VOICES = {"F": "en-us+f{n}", "M": "en-us+m{n}"}


@dataclass
class SynthUtterance:
    session: int
    dialog: str
    utt_id: str
    raw_label: str
    text: str
    voice: str
    pitch: int
    rate: int
    amplitude: int


def session_words(emotion: str, session: int) -> list[str]:
    """The emotion words used in ``session`` (1-based): a disjoint slice per session."""
    words = EMOTION_WORDS[emotion]
    per = len(words) // SESSIONS
    return words[(session - 1) * per: session * per]


def sentence(source: str, session: int, rng: np.random.Generator) -> str:
    """A sentence carrying ``source``'s emotion words (or none, for "neu")."""
    topic = str(rng.choice(TOPICS))
    if source == "neu":
        return str(rng.choice(NEUTRAL_TEMPLATES)).format(t=topic)
    return str(rng.choice(EMOTION_TEMPLATES)).format(w=rng.choice(session_words(source, session)), t=topic)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def plan(seed: int = 0, per_speaker: int = 40) -> list[SynthUtterance]:
    """The utterances to speak: balanced labels per speaker (some happy as ``exc``, two ``fru`` extra)."""
    rng = np.random.default_rng(seed)
    emotions = ["neu", "hap", "sad", "ang"]
    out: list[SynthUtterance] = []
    for session in range(1, SESSIONS + 1):
        for gender, voice_fmt in VOICES.items():
            voice = voice_fmt.format(n=(session - 1) % 4 + 1)
            labels = [emotions[i % 4] for i in range(per_speaker)] + ["fru", "fru"]
            labels = [("exc" if lab == "hap" and rng.random() < 0.3 else lab) for lab in labels]
            rng.shuffle(labels)
            for idx, raw in enumerate(labels):
                emo = "hap" if raw in ("exc", "fru") else raw
                draw = rng.random()
                if emo == "neu" or draw < P_NEUTRAL_WORDS:
                    source = "neu"
                elif draw < P_NEUTRAL_WORDS + P_OWN_WORDS:
                    source = emo
                else:
                    source = str(rng.choice([e for e in emotions if e not in (emo, "neu")]))
                text = sentence(source, session, rng)
                pitch, rate, amp = (base + rng.uniform(-j, j) for base, j in zip(PROSODY[raw], JITTER))
                kind = "impro01" if idx % 2 == 0 else "script01_1"
                dialog = f"Ses{session:02d}{gender}_{kind}"
                out.append(SynthUtterance(session, dialog, f"{dialog}_{gender}{idx:03d}", raw, str(text), voice,
                                          int(np.clip(pitch, 0, 99)), int(rate), int(np.clip(amp, 10, 200))))
    return out


def _speak(utt: SynthUtterance, wav_path: Path) -> float:
    """Speak one utterance to a 16 kHz mono 16-bit wav; returns its duration in seconds."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            ["espeak-ng", "-v", utt.voice, "-p", str(utt.pitch), "-s", str(utt.rate), "-a", str(utt.amplitude),
             "-w", tmp.name, utt.text], check=True, capture_output=True,
        )
        wav, sr = sf.read(tmp.name, dtype="float32")
    wav = resample(wav, sr, SAMPLE_RATE)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav_path, wav, SAMPLE_RATE, subtype="PCM_16")
    return len(wav) / SAMPLE_RATE


def synthesize(out_dir: str | Path, seed: int = 0, per_speaker: int = 40, workers: int = 2,
               progress: bool = True) -> Path:
    """Write the synthetic corpus under ``out_dir/IEMOCAP_full_release`` (IEMOCAP layout); returns that root."""
    if not espeak_available():
        raise MmserError("espeak-ng not found: install it (apt-get install espeak-ng) to generate the synthetic corpus")
    from tqdm import tqdm

    root = Path(out_dir) / "IEMOCAP_full_release"
    utts = plan(seed, per_speaker)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        paths = [root / f"Session{u.session}" / "sentences" / "wav" / u.dialog / f"{u.utt_id}.wav" for u in utts]
        durations = list(tqdm(pool.map(_speak, utts, paths), total=len(utts), desc="speaking (espeak-ng)",
                              unit="utt", disable=not progress))
    by_dialog: dict[tuple[int, str], list[tuple[SynthUtterance, float]]] = {}
    for utt, dur in zip(utts, durations):
        by_dialog.setdefault((utt.session, utt.dialog), []).append((utt, dur))
    for (session, dialog), items in by_dialog.items():
        base = root / f"Session{session}" / "dialog"
        emo_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        trans_lines, t = [], 0.0
        for utt, dur in items:
            emo_lines += [f"[{t:.4f} - {t + dur:.4f}]\t{utt.utt_id}\t{utt.raw_label}\t[2.5000, 2.5000, 2.5000]",
                          f"C-E1:\t{utt.raw_label};\t()", ""]
            trans_lines.append(f"{utt.utt_id} [{t:08.4f}-{t + dur:08.4f}]: {utt.text}")
            t += dur + 0.5
        for sub, lines in (("EmoEvaluation", emo_lines), ("transcriptions", trans_lines)):
            (base / sub).mkdir(parents=True, exist_ok=True)
            (base / sub / f"{dialog}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "SYNTHETIC").write_text("generated by mmser synth: espeak-ng speech, not IEMOCAP\n")
    (root / "README.txt").write_text(
        f"SYNTHETIC corpus in IEMOCAP layout, spoken by espeak-ng (mmser synth, seed {seed}).\n"
        f"{SESSIONS} sessions x 2 voices, {len(utts)} utterances. Not IEMOCAP; for demos and tests only.\n"
    )
    return root
