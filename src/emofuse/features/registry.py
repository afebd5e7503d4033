"""Front-end registry: every feature kind (log-mel, a CTranslate2 Whisper encoder, any local Hugging
Face audio encoder) is registered by name with what the rest of emofuse asks of it.

A kind is one file that defines its settings dataclass, its cache and its on-the-fly encoder,
and calls ``register_feature(FeatureKind(...))``; a config selects it with ``features.kind``.
Training, the schema check, ``predict``, ``explain`` and ``export`` ask the registry instead of
branching on kind names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import EmofuseError


@dataclass(frozen=True)
class FeatureKind:
    """What a front end provides.

    Attributes:
        name: the ``features.kind`` value.
        config: frozen settings dataclass (its fields are the ``features:`` keys; ``kind`` excluded).
        store: ``(cache_root, cfg) -> cache`` with the ``CachedFeatures`` interface
            (``ensure``, ``get``, ``frames``, ``dim``, ``describe``, ``frame_seconds``).
        encoder: ``cfg -> callable`` turning a list of 16 kHz mono clips into ((B, T, F) float32
            zero-padded, (B,) valid frames): the same features as the cache, for new audio.
        what: how plots and the export sidecar name one frame ("log-mel", "Whisper encoder frames").
        frame: the export sidecar's description of ``x``.
        recipe: how to compute ``x`` from audio outside emofuse (export sidecar).
        min_samples: ``cfg -> int``, the shortest clip the front end accepts.
        dry_dim: ``features dict -> int``, a feature size for building the model before any
            feature exists (config checks).
        model_args: ``cfg -> dict`` of runtime model arguments the features decide (e.g.
            ``n_layers`` of a multi-layer encoder); given to models whose constructor takes them.
        check: ``cfg -> None``, raises ``EmofuseError`` on settings that do not fit together.
    """

    name: str
    config: type
    store: Callable
    encoder: Callable
    what: str
    frame: str
    recipe: str
    min_samples: Callable[[object], int]
    dry_dim: Callable[[dict], int]
    model_args: Callable[[object], dict] = field(default=lambda cfg: {})
    check: Callable[[object], None] = field(default=lambda cfg: None)


_KINDS: dict[str, FeatureKind] = {}
DEFAULT_KIND = "logmel"


def register_feature(kind: FeatureKind) -> FeatureKind:
    _KINDS[kind.name] = kind
    return kind


def list_features() -> list[str]:
    """Registered ``features.kind`` names."""
    return sorted(_KINDS)


def feature_kind(name: str | None) -> FeatureKind:
    """The registered kind; an unknown name fails with the known ones."""
    from ..schema import closest

    name = DEFAULT_KIND if name is None else name
    if name not in _KINDS:
        raise EmofuseError(f"features.kind={name}: must be one of {list_features()}{closest(str(name), _KINDS)} "
                           "(the registered front ends)")
    return _KINDS[name]


def kind_of(cfg) -> FeatureKind:
    """The kind whose settings class ``cfg`` is."""
    for k in _KINDS.values():
        if type(cfg) is k.config:
            return k
    raise TypeError(f"{type(cfg).__name__} is not the settings class of a registered feature kind")


def feature_config(d: dict | None):
    """The config's ``features:`` group (or a checkpoint's stored front end) -> settings;
    unknown kinds and keys fail with the known ones."""
    d = dict(d or {})
    kind = feature_kind(d.pop("kind", DEFAULT_KIND))
    known = set(kind.config.__dataclass_fields__) - {"kind"}
    bad = sorted(set(d) - known)
    if bad:
        raise EmofuseError(f"features: unknown keys {bad} for kind {kind.name}; known keys are {sorted(known)}")
    return kind.config(**d)


def open_store(cache_root, cfg):
    """The feature cache for these settings under ``cache_root``."""
    return kind_of(cfg).store(cache_root, cfg)


def model_args(frontend: dict | None) -> dict:
    """Runtime model arguments decided by a stored front end (``{}`` for single-layer features)."""
    cfg = feature_config(frontend)
    return dict(kind_of(cfg).model_args(cfg))


def pad_sequences(seqs: list) -> tuple:
    """(n_i, D) tensors -> zero-padded (B, max n, D) float32 and (B,) lengths."""
    import torch

    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s.float()
    return out, lengths
