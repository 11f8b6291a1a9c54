"""Cross-validation, ablations, tables and plots (all built from stored per-utterance predictions)."""
