"""Frozen pretrained speech models (optional extra ``pretrained``): Whisper through CTranslate2."""

from .whisper import (DEFAULT_WHISPER, MISSING_EXTRA, WhisperModel, WhisperLogMel, encoder_frames, model_identity,
                      resolve_whisper_path)

__all__ = ["DEFAULT_WHISPER", "MISSING_EXTRA", "WhisperModel", "WhisperLogMel", "encoder_frames", "model_identity",
           "resolve_whisper_path"]
