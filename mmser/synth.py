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

LEXICON: dict[str, list[str]] = {
    "hap": ["I am so happy today", "This is wonderful news", "I love this, it is great", "What a lovely gift",
            "We won the game, fantastic", "I feel great about this", "That was a delightful evening",
            "Thank you, this is amazing", "I am thrilled to see you", "Best day of my life"],
    "sad": ["I miss her so much", "Everything feels hopeless now", "I lost my job yesterday", "Nobody came to see me",
            "I feel so lonely and tired", "It is all my fault", "We had to say goodbye forever",
            "I cannot stop crying", "My old dog died last night", "Nothing will ever be the same"],
    "ang": ["Get out of my office now", "This is completely unacceptable", "I am sick of your excuses",
            "Stop lying to me", "You ruined everything again", "How dare you say that", "I hate waiting in this line",
            "Do not touch my things", "You never listen to me", "That is outrageous and stupid"],
    "neu": ["The meeting starts at ten", "Please put the box on the table", "The train leaves from platform two",
            "I will call you tomorrow", "The report is on my desk", "We need to buy some milk",
            "The weather is cloudy today", "Turn left at the next corner", "The store opens at nine",
            "My sister lives in another city"],
}
# Prosody per raw label: espeak-ng pitch (0-99), rate (words/min), amplitude (0-200).
PROSODY: dict[str, tuple[float, float, float]] = {
    # Arousal is clear (neu/sad low, hap/ang high); within an arousal level the voice differs only
    # slightly (well inside the jitter), so the words are needed to tell neutral from sad, happy from angry.
    "neu": (44, 150, 85), "sad": (40, 142, 80), "hap": (66, 190, 150), "ang": (62, 196, 158),
    "exc": (68, 194, 152), "fru": (52, 170, 120),
}
JITTER = (8.0, 15.0, 25.0)  # uniform +- on pitch, rate, amplitude
P_OWN_WORDS, P_NEUTRAL_WORDS = 0.55, 0.35  # rest: another emotion's words (misleading)
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
                    source = rng.choice([e for e in emotions if e not in (emo, "neu")])
                text = rng.choice(LEXICON[source])
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
        raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng) to generate the synthetic corpus")
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
