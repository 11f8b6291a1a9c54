"""Lightning training on cached features, and the metrics."""
