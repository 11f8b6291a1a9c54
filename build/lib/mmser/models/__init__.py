"""Audio-only, text-only and fused emotion models sharing one 8-class head."""
