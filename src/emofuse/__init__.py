"""emofuse: multimodal speech emotion recognition with leak-free, speaker-independent evaluation."""

__version__ = "0.1.0"


def load(path, device=None, window_seconds: float = 8.0, hop_seconds=None, fold=None):
    """A trained checkpoint, fold folder or CV run (fold ensemble; ``fold``: that fold alone) ready to
    ``predict(audio, text=None)``."""
    from .inference import load as _load

    return _load(path, device, window_seconds, hop_seconds, fold)
