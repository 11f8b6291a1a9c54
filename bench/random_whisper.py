"""An openai-whisper checkpoint of a named size's shape with random weights, for timing on a machine that cannot
download the real ones (a transformer's time per step does not depend on its weights' values).

    python bench/random_whisper.py base /tmp/whisper-base-random.pt

The file loads as ``whisper:/tmp/whisper-base-random.pt`` (``whisper.load_model``'s own format). Nothing it
predicts means anything: use it for time and memory only.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

# whisper.model.ModelDimensions of the released sizes (the dims stored in openai-whisper's own checkpoints)
SIZES = {
    "tiny": dict(n_mels=80, n_audio_state=384, n_audio_head=6, n_audio_layer=4, n_text_layer=4),
    "base": dict(n_mels=80, n_audio_state=512, n_audio_head=8, n_audio_layer=6, n_text_layer=6),
    "small": dict(n_mels=80, n_audio_state=768, n_audio_head=12, n_audio_layer=12, n_text_layer=12),
    "medium": dict(n_mels=80, n_audio_state=1024, n_audio_head=16, n_audio_layer=24, n_text_layer=24),
    "large-v3": dict(n_mels=128, n_audio_state=1280, n_audio_head=20, n_audio_layer=32, n_text_layer=32),
}


def save_random_whisper(size: str, path: Path, seed: int = 0) -> Path:
    """A randomly initialised Whisper of ``size``'s dimensions (its text decoder cut to one block: the encoder is
    what mmser uses) saved at ``path`` in openai-whisper's checkpoint format."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    if size not in SIZES:
        raise SystemExit(f"unknown Whisper size {size!r}: one of {', '.join(SIZES)}")
    shape = SIZES[size]
    dims = ModelDimensions(n_mels=shape["n_mels"], n_audio_ctx=1500, n_audio_state=shape["n_audio_state"],
                           n_audio_head=shape["n_audio_head"], n_audio_layer=shape["n_audio_layer"],
                           n_vocab=51865 if size != "large-v3" else 51866, n_text_ctx=448,
                           n_text_state=shape["n_audio_state"], n_text_head=shape["n_audio_head"], n_text_layer=1)
    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", choices=sorted(SIZES))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(save_random_whisper(args.size, args.out))


if __name__ == "__main__":
    main()
