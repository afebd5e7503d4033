"""A small head over frozen Whisper encoder frames: per-frame MLP, masked pooling, classifier."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .layers import AttentionPool, masked_mean
from .registry import register_model


class WhisperMLP(nn.Module):
    """Frame MLP -> attention or mean pooling over valid frames -> linear classifier.

    Reads precomputed encoder outputs (``features.kind=whisper_encoder``); the encoder itself
    stays frozen and outside the model. Also usable as the audio side of ``early_fusion``
    (its pooled ``embed``) and ``cross_attention`` (its frame sequence from ``encode``).

    Args:
        n_mels: feature size per frame (the encoder's width, 384 for tiny).
        n_classes: output classes.
        hidden: width of the frame MLP and of the embedding.
        layers: frame MLP depth (Linear + GELU + dropout each).
        pooling: ``attention`` or ``mean`` over valid frames.
        dropout: in the frame MLP and before the classifier.

    Shapes:
        x: (B, T, n_mels) z-scored encoder frames, zero past each length; lengths: (B,).
        Returns logits (B, n_classes).
    """

    def __init__(self, n_mels: int = 384, n_classes: int = 4, hidden: int = 256, layers: int = 1,
                 pooling: str = "attention", dropout: float = 0.2) -> None:
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', not {pooling!r}")
        blocks, d = [nn.Dropout(dropout)], n_mels
        for _ in range(max(1, int(layers))):
            blocks += [nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout)]
            d = hidden
        self.frames = nn.Sequential(*blocks)
        self.out_dim = hidden
        self.attn = AttentionPool(hidden) if pooling == "attention" else None
        self.head = nn.Linear(hidden, n_classes)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, hidden) frame embeddings and (B,) lengths."""
        return self.frames(x), lengths

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seq, lengths = self.encode(x, lengths)
        return self.attn(seq, lengths) if self.attn is not None else masked_mean(seq, lengths)  # (B, hidden)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, lengths))


@register_model
def whisper_mlp(n_mels: int = 384, n_classes: int = 4, hidden: int = 256, layers: int = 1,
                pooling: Literal["attention", "mean"] = "attention", dropout: float = 0.2) -> WhisperMLP:
    return WhisperMLP(n_mels, n_classes, hidden, layers, pooling, dropout)
