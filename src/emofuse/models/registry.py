"""Model registry: every model is a function registered by name; configs name it."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import EmofuseError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model constructor under its function name."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; an unknown name fails with the list of known ones."""
    if name not in _MODELS:
        raise EmofuseError(f"unknown model {name!r}: registered models are {list_models()}")
    try:
        return _MODELS[name](**kwargs)
    except TypeError as exc:
        raise EmofuseError(f"model {name!r}: bad arguments in the config's model section ({exc})") from None
