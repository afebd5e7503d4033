"""Early fusion: a pooled audio embedding concatenated with a pooled text embedding, then an MLP."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .layers import pool_text
from .registry import create_audio_encoder, register_model


class EarlyFusion(nn.Module):
    """Concatenate [audio embedding ; text embedding] and classify with an MLP.

    Each side is layer-normalised first, so neither modality dominates by scale alone.

    Args:
        n_mels: audio feature bands.
        n_classes: output classes.
        text_dim: the text encoder's hidden size.
        audio_encoder: any registered audio model (its pooled ``embed`` is used).
        audio: that model's constructor arguments.
        text_pooling: ``cls`` or ``mean``.
        hidden, dropout: the fusion MLP.
        n_layers: layers per frame of multi-layer encoder features (set by the run); an audio
            encoder with a layer axis (``ssl_weighted``) learns their weighting.

    Shapes:
        x: (B, T, F) z-scored log-mel; lengths: (B,) frames; text: (B, L, text_dim) tokens;
        text_lengths: (B,) tokens. Returns logits (B, n_classes).
    """

    def __init__(self, n_mels: int = 64, n_classes: int = 4, text_dim: int = 384, audio_encoder: str = "resnet18",
                 audio: dict | None = None, text_pooling: str = "cls", hidden: int = 256, dropout: float = 0.3,
                 n_layers: int = 1) -> None:
        super().__init__()
        self.audio = create_audio_encoder(audio_encoder, n_mels, audio, pooled=True, runtime={"n_layers": n_layers})
        self.text_pooling = text_pooling
        pool_text(torch.zeros(1, 1, 1), torch.ones(1, dtype=torch.long), text_pooling)  # validates the name
        da = self.audio.out_dim
        self.norm_a, self.norm_t = nn.LayerNorm(da), nn.LayerNorm(text_dim)
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(da + text_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.out_dim = hidden
        self.head = nn.Linear(hidden, n_classes)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        a = self.norm_a(self.audio.embed(x, lengths))  # (B, Da)
        t = self.norm_t(pool_text(text, text_lengths, self.text_pooling))  # (B, Dt)
        return self.mlp(torch.cat([a, t], dim=1))  # (B, hidden)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, lengths, text, text_lengths))


@register_model(modalities=("audio", "text"))
def early_fusion(n_mels: int = 64, n_classes: int = 4, text_dim: int = 384, audio_encoder: str = "resnet18",
                 audio: dict | None = None, text_pooling: Literal["cls", "mean"] = "cls", hidden: int = 256,
                 dropout: float = 0.3, n_layers: int = 1) -> EarlyFusion:
    return EarlyFusion(n_mels, n_classes, text_dim, audio_encoder, audio, text_pooling, hidden, dropout, n_layers)
