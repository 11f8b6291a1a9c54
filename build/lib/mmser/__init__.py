"""mmser: multimodal speech + text emotion recognition."""

__version__ = "0.1.0"
