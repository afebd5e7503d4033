"""The SUPERB / EmoBox head over a pretrained encoder's layers: a learned softmax-weighted sum of
the layers, a frame projection, attention pooling over valid frames, then an MLP."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..errors import EmofuseError
from .layers import AttentionPool, masked_mean
from .registry import register_model

WEIGHTS_FILE = "layer_weights.json"  # in each fold's folder (see report_layer_weights)


class LayerWeights(nn.Module):
    """Softmax-weighted sum over a layer axis.

    Args:
        n_layers: layers stacked (layer-major) in each frame.

    Shapes:
        x: (B, T, n_layers * D) -> (B, T, D).
    """

    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.n_layers = int(n_layers)
        self.logits = nn.Parameter(torch.zeros(self.n_layers))  # uniform at the start

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)  # (L,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, F = x.shape
        x = x.reshape(B, T, self.n_layers, F // self.n_layers)  # (B, T, L, D)
        return torch.einsum("btld,l->btd", x, self.weights())


class SSLWeighted(nn.Module):
    """Layer-weighted sum -> frame projection -> attention (or mean) pooling -> MLP -> classifier.

    Reads cached hidden states of a frozen encoder (``features.kind=hf_encoder``), z-scored per
    layer and dimension. Also the audio side of ``early_fusion`` (its pooled ``embed``) and
    ``cross_attention`` (its frame sequence from ``encode``).

    Args:
        n_mels: feature size per frame (n_layers * hidden; set by the run).
        n_classes: output classes.
        n_layers: layers in each frame (set by the run from the features; 1 for single-layer features).
        hidden: width of the projection, the pooled embedding and the MLP.
        pooling: ``attention`` or ``mean`` over valid frames.
        dropout: after the projection and in the MLP.

    Shapes:
        x: (B, T, n_layers * D); lengths: (B,). Returns logits (B, n_classes).
    """

    def __init__(self, n_mels: int = 768, n_classes: int = 4, n_layers: int = 1, hidden: int = 256,
                 pooling: str = "attention", dropout: float = 0.2) -> None:
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', not {pooling!r}")
        if n_mels % n_layers:
            raise ValueError(f"feature size {n_mels} is not a multiple of n_layers={n_layers}")
        self.mix = LayerWeights(n_layers)
        self.proj = nn.Sequential(nn.Linear(n_mels // n_layers, hidden), nn.GELU(), nn.Dropout(dropout))
        self.attn = AttentionPool(hidden) if pooling == "attention" else None
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout))
        self.out_dim = hidden
        self.head = nn.Linear(hidden, n_classes)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, hidden) projected frames of the weighted layer sum, and (B,) lengths."""
        return self.proj(self.mix(x)), lengths

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seq, lengths = self.encode(x, lengths)
        pooled = self.attn(seq, lengths) if self.attn is not None else masked_mean(seq, lengths)  # (B, hidden)
        return self.mlp(pooled)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, lengths))


@register_model
def ssl_weighted(n_mels: int = 768, n_classes: int = 4, n_layers: int = 1, hidden: int = 256,
                 pooling: Literal["attention", "mean"] = "attention", dropout: float = 0.2) -> SSLWeighted:
    return SSLWeighted(n_mels, n_classes, n_layers, hidden, pooling, dropout)


def layer_mixers(model: nn.Module) -> list[LayerWeights]:
    """Every ``LayerWeights`` inside ``model`` (empty for a model without a layer axis)."""
    return [m for m in model.modules() if isinstance(m, LayerWeights)]


def require_layer_mixers(model: nn.Module, name: str, layer_weights_lr: float) -> None:
    """``train.layer_weights_lr`` needs a model with layer weights: refuse it in one line otherwise."""
    if not layer_mixers(model):
        raise EmofuseError(f"train.layer_weights_lr={layer_weights_lr}: model {name!r} has no layer weights "
                           "(only models over a multi-layer encoder's features do); set train.layer_weights_lr=null")


def layer_weights(model: nn.Module) -> list[float] | None:
    """The learned layer weights of the first ``LayerWeights`` inside ``model`` (None if it has none)."""
    mixers = layer_mixers(model)
    return [round(float(w), 6) for w in mixers[0].weights().detach().cpu()] if mixers else None


def report_layer_weights(model: nn.Module, fold_dir: Path, layers: list[int] | None = None, label: str = "") -> Path | None:
    """Write ``fold_dir/layer_weights.json`` ({"layers": encoder layer ids, "weights": softmax
    weights}) and print them, for a model with a layer axis; None for any other model."""
    w = layer_weights(model)
    if w is None:
        return None
    layers = list(layers) if layers is not None and len(layers) == len(w) else list(range(len(w)))
    path = Path(fold_dir) / WEIGHTS_FILE
    from ..atomic import write_text_atomic

    write_text_atomic(path, json.dumps({"layers": layers, "weights": w}, indent=2))
    print(f"{label}layer weights: " + " ".join(f"{i}:{v:.3f}" for i, v in zip(layers, w)), file=sys.stderr)
    return path
