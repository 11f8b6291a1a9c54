"""Evaluation: the cross-validation runner (folds -> checkpoints, predictions, metrics), tables and plots, all
built from stored per-utterance predictions."""
