"""A generated long recording for the timeline example: espeak-ng sentences in different styles, joined with pauses.

    python scripts/long_recording.py runs/long.wav
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from mmser.audio import SAMPLE_RATE, load_audio

SENTENCES = [  # (text, espeak pitch 0-99, rate words/min, amplitude 0-200)
    ("the weather report says it will rain all afternoon", 35, 140, 90),
    ("I cannot believe you broke my favourite guitar again", 85, 220, 190),
    ("please bring the blue folder to the meeting room", 50, 150, 100),
    ("oh no, I think we missed the last train home tonight", 70, 110, 70),
    ("that was the best concert I have ever been to", 95, 200, 160),
]


def main(out: str) -> None:
    pieces = [np.zeros(SAMPLE_RATE // 2, np.float32)]
    with tempfile.TemporaryDirectory() as tmp:
        for k, (text, pitch, rate, amplitude) in enumerate(SENTENCES):
            path = Path(tmp) / f"{k}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-p", str(pitch), "-s", str(rate), "-a", str(amplitude),
                            "-w", str(path), text], check=True)
            pieces += [load_audio(path), np.zeros(int(1.2 * SAMPLE_RATE), np.float32)]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, np.concatenate(pieces), SAMPLE_RATE)
    print(f"wrote {out} ({sum(len(p) for p in pieces) / SAMPLE_RATE:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1])
