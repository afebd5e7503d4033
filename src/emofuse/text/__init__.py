"""Text branch inputs: the frozen encoder (offline) and its per-corpus embedding cache."""

from .encoder import DEFAULT_ENCODER, TextConfig, TextEncoder, resolve_encoder_path
from .store import TextStore, text_key

__all__ = ["DEFAULT_ENCODER", "TextConfig", "TextEncoder", "resolve_encoder_path", "TextStore", "text_key"]
