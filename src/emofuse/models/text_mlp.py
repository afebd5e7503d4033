"""Text-only model: the frozen encoder's [CLS] vector (or token mean) through an MLP."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .layers import pool_text
from .registry import register_model


class TextMLP(nn.Module):
    """MLP over a pooled sentence embedding of a frozen BERT-family encoder.

    Args:
        n_classes: output classes.
        text_dim: the encoder's hidden size (384 for all-MiniLM-L6-v2, 768 for bert-base).
        hidden: MLP width.
        pooling: ``cls`` ([CLS] token) or ``mean`` (mean of the valid tokens).
        dropout: on the input and the hidden layer.

    Shapes:
        text: (B, L, text_dim) token embeddings ([CLS] first), zero past each length;
        text_lengths: (B,) valid tokens; returns logits (B, n_classes).
    """

    def __init__(self, n_classes: int = 4, text_dim: int = 384, hidden: int = 256, pooling: str = "cls",
                 dropout: float = 0.3) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', not {pooling!r}")
        self.pooling = pooling
        self.mlp = nn.Sequential(nn.LayerNorm(text_dim), nn.Dropout(dropout), nn.Linear(text_dim, hidden), nn.GELU(),
                                 nn.Dropout(dropout))
        self.out_dim = hidden
        self.head = nn.Linear(hidden, n_classes)

    def embed(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        """(B, hidden) utterance embedding."""
        return self.mlp(pool_text(text, text_lengths, self.pooling))

    def forward(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(text, text_lengths))


@register_model(modalities=("text",))
def text_mlp(n_classes: int = 4, text_dim: int = 384, hidden: int = 256, pooling: Literal["cls", "mean"] = "cls",
             dropout: float = 0.3) -> TextMLP:
    return TextMLP(n_classes, text_dim, hidden, pooling, dropout)
