"""Model registry: every model is a function registered by name, with the inputs it reads.

Audio models take ``(x, lengths)``; text models ``(text, text_lengths)``; fusion models all
four. ``model_inputs(name)`` tells the training code which batch fields to hand over, so the
models stay plain ``nn.Module``s that never see a config.
"""

from __future__ import annotations

import inspect
import typing
from typing import Callable

import torch
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


def create_audio_encoder(name: str, n_mels: int, kwargs: dict | None = None, pooled: bool = True,
                         runtime: dict | None = None) -> nn.Module:
    """A registered audio model used as the audio side of a fusion model.

    Its classifier head is removed (the fusion model has its own); with ``pooled=False`` its
    pooling module is removed too, because the fusion model pools the frame/patch sequence
    itself (unused parameters would break DDP). ``runtime``: arguments the features decide
    (``n_layers``), given to the encoder when its constructor takes them.
    """
    if name not in _MODELS or _MODALITIES[name] != ("audio",):
        raise EmofuseError(f"audio_encoder={name!r} is not a registered audio model; choose one of {list_models('audio', only=True)}")
    enc = create_model(name, n_mels=n_mels, n_classes=2, **accepted_args(name, runtime or {}), **(kwargs or {}))
    enc.head = nn.Identity()
    if not pooled and isinstance(getattr(enc, "attn", None), nn.Module):
        enc.attn = None
    return enc


# Set by the run from the features, the manifest and the text encoder; never from the config.
RUNTIME_ARGS = ("n_mels", "n_classes", "text_dim", "n_layers", "encoder_path", "encoder_layers")


def accepted_args(name: str, available: dict) -> dict:
    """The runtime arguments (from the features: ``n_layers``, ...) that model ``name``'s constructor takes."""
    params = inspect.signature(_MODELS[name]).parameters if name in _MODELS else {}
    return {k: v for k, v in available.items() if k in params}


def check_model_config(model: dict, n_mels: int = 64) -> dict:
    """The config's ``model:`` group checked against the registered constructor's signature.

    Unknown keys are refused with the closest parameter, values are coerced to the annotated
    types (``Literal`` annotations give the allowed names: ``pooling``, ``direction``), sizes
    (whole-number parameters) must be at least 1 and ``dropout`` lie in [0, 1); a fusion model's
    ``audio:`` mapping is checked against its ``audio_encoder``. Finally the model is built on
    the meta device (no memory, no weights), so a combination its constructor refuses
    (``patch_f`` that does not divide ``n_mels``) fails now, not after the features are cached.

    Returns:
        the group with coerced values (``name`` first).
    """
    from ..schema import closest

    if not isinstance(model, dict):
        raise EmofuseError(f"model: must be a mapping with a 'name' (got {model!r})")
    name = model.get("name")
    if name not in _MODELS:
        raise EmofuseError(f"model.name={name}: not a registered model{closest(name, _MODELS)} (registered: {list_models()})")
    out = {"name": name, **_check_kwargs(name, {k: v for k, v in model.items() if k != "name"}, "model")}
    kwargs = {k: v for k, v in out.items() if k != "name"}
    try:
        with torch.device("meta"):
            create_model(name, **({"n_mels": n_mels} if "n_mels" in _params(name) else {}), **kwargs)
    except EmofuseError:
        raise
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as exc:
        raise EmofuseError(f"model {name!r}: the config's model settings do not fit together "
                           f"({str(exc).splitlines()[0][:200]}); change them") from None
    return out


def _params(name: str) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(_MODELS[name]).parameters)


def _check_kwargs(name: str, given: dict, where: str) -> dict:
    from ..schema import check_bounds, closest, coerce_value, refuse_unknown

    params = _params(name)
    hints = typing.get_type_hints(_MODELS[name])
    for k in given:
        if k in RUNTIME_ARGS:
            raise EmofuseError(f"{where}.{k}: set by the run (from the features, the manifest or the text encoder), "
                               f"not by the config; remove it")
    known = [p for p in params if p not in RUNTIME_ARGS]
    refuse_unknown(where, given, known)
    out = {}
    for k, v in given.items():
        key = f"{where}.{k}"
        default = params[k].default if params[k].default is not inspect.Parameter.empty else None
        value = coerce_value(key, v, hints.get(k, typing.Any), default)
        if k == "dropout":
            check_bounds(key, value, {"ge": 0, "lt": 1}, default)
        elif isinstance(value, int) and not isinstance(value, bool):
            check_bounds(key, value, {"ge": 1}, default)
        elif isinstance(value, list):
            for item in value:
                check_bounds(key, item, {"ge": 1}, default)
        elif isinstance(value, float):
            check_bounds(key, value, {"gt": 0}, default)
        out[k] = value
    if "audio_encoder" in params:
        enc = out.get("audio_encoder", params["audio_encoder"].default)
        if enc not in _MODELS or _MODALITIES[enc] != ("audio",):
            audio = list_models("audio", only=True)
            raise EmofuseError(f"{where}.audio_encoder={enc}: not a registered audio model{closest(enc, audio)} "
                               f"(audio models: {audio})")
        if out.get("audio") is not None:
            out["audio"] = _check_kwargs(enc, out["audio"], f"{where}.audio")
    return out
