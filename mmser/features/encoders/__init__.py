"""Encoders: acoustic frames (wav2vec2 family, Whisper), text tokens (BERT family), ASR, and the feature cache."""
