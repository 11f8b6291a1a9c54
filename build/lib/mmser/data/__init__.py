"""Manifests, speaker-independent splits, datasets over cached features."""
