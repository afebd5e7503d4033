"""emofuse: multimodal speech emotion recognition with leak-free, speaker-independent evaluation."""

__version__ = "0.1.0"
