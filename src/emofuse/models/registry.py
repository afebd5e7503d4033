"""Model registry: every model is a function registered by name, with the inputs it reads.

Audio models take ``(x, lengths)``; text models ``(text, text_lengths)``; fusion models all
four. ``model_inputs(name)`` tells the training code which batch fields to hand over, so the
models stay plain ``nn.Module``s that never see a config.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import EmofuseError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_MODALITIES: dict[str, tuple[str, ...]] = {}
MODALITIES = ("audio", "text")


def register_model(fn: Callable[..., nn.Module] | None = None, *, modalities: tuple[str, ...] = ("audio",)):
    """Register a model constructor under its function name (``@register_model`` or
    ``@register_model(modalities=("audio", "text"))``)."""
    bad = set(modalities) - set(MODALITIES)
    if bad or not modalities:
        raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, not {modalities}")

    def add(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[f.__name__] = f
        _MODALITIES[f.__name__] = tuple(m for m in MODALITIES if m in modalities)
        return f

    return add(fn) if fn is not None else add


def list_models(modality: str | None = None, only: bool = False) -> list[str]:
    """Registered names; ``modality`` keeps models that read it (``only``: and nothing else)."""
    names = sorted(_MODELS)
    if modality is None:
        return names
    return [n for n in names if (_MODALITIES[n] == (modality,) if only else modality in _MODALITIES[n])]


def model_modalities(name: str) -> tuple[str, ...]:
    """``("audio",)``, ``("text",)`` or ``("audio", "text")``."""
    if name not in _MODALITIES:
        raise EmofuseError(f"unknown model {name!r}: registered models are {list_models()}")
    return _MODALITIES[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; an unknown name fails with the list of known ones."""
    if name not in _MODELS:
        raise EmofuseError(f"unknown model {name!r}: registered models are {list_models()}")
    try:
        return _MODELS[name](**kwargs)
    except TypeError as exc:
        raise EmofuseError(f"model {name!r}: bad arguments in the config's model section ({exc})") from None


def create_audio_encoder(name: str, n_mels: int, kwargs: dict | None = None, pooled: bool = True) -> nn.Module:
    """A registered audio model used as the audio side of a fusion model.

    Its classifier head is removed (the fusion model has its own); with ``pooled=False`` its
    pooling module is removed too, because the fusion model pools the frame/patch sequence
    itself (unused parameters would break DDP).
    """
    if name not in _MODELS or _MODALITIES[name] != ("audio",):
        raise EmofuseError(f"audio_encoder={name!r} is not a registered audio model; choose one of {list_models('audio', only=True)}")
    enc = create_model(name, n_mels=n_mels, n_classes=2, **(kwargs or {}))
    enc.head = nn.Identity()
    if not pooled and isinstance(getattr(enc, "attn", None), nn.Module):
        enc.attn = None
    return enc
