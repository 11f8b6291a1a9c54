"""Encoders: acoustic frames (wav2vec2 family, Whisper) and text tokens (BERT family), by spec."""
