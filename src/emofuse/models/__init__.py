"""Registered models: ``create_model(name, **kwargs)``, ``list_models()``."""

from . import audio_transformer, cnn_bilstm, resnet18  # noqa: F401  (registration)
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
