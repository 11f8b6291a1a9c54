"""Training on cached features: the Lightning module, fit with model selection on validation speakers, the
ensemble members, and the metrics."""
