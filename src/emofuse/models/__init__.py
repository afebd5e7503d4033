"""Registered models: ``create_model(name, **kwargs)``, ``list_models()``, ``model_modalities(name)``."""

from . import audio_transformer, cnn_bilstm, cross_attention, early_fusion, resnet18, ssl_finetune, ssl_weighted, text_mlp, whisper_mlp  # noqa: F401  (registration)
from .registry import accepted_args, create_audio_encoder, create_model, list_models, model_modalities, register_model

__all__ = ["accepted_args", "create_model", "create_audio_encoder", "list_models", "model_modalities", "register_model"]
