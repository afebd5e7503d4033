"""Patch-based self-attention over the log-mel spectrogram (AST-style, trained from scratch)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .layers import lengths_to_mask, sinusoidal
from .registry import register_model


class AudioTransformer(nn.Module):
    """Non-overlapping (patch_f x patch_t) patches -> Transformer encoder -> CLS or mean pooling.

    Positions: a learned embedding per frequency patch plus a sinusoidal embedding per time
    patch, so any clip length works. Patches that start past a clip's end are masked out of
    attention; the spectrogram is zero past each length, so a partial last patch is the same
    whether the clip is padded in a batch or not.

    Args:
        n_mels: frequency bands (a multiple of ``patch_f``).
        n_classes: output classes.
        patch_f, patch_t: patch size in bands and frames.
        dim, depth, heads, mlp_ratio, dropout: encoder size.
        pooling: ``cls`` or ``mean`` over valid patches.

    Shapes:
        x: (B, T, F), lengths: (B,) -> logits (B, n_classes).
    """

    def __init__(self, n_mels: int = 64, n_classes: int = 4, patch_f: int = 16, patch_t: int = 16, dim: int = 192,
                 depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.1, pooling: str = "cls") -> None:
        super().__init__()
        if n_mels % patch_f:
            raise ValueError(f"n_mels={n_mels} must be a multiple of patch_f={patch_f}")
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', not {pooling!r}")
        self.patch_f, self.patch_t, self.dim, self.pooling = patch_f, patch_t, dim, pooling
        self.n_fp = n_mels // patch_f
        self.patch = nn.Conv2d(1, dim, (patch_f, patch_t), (patch_f, patch_t))
        self.freq_pos = nn.Parameter(torch.zeros(self.n_fp, dim))
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.freq_pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))

    def patchify(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) -> patch tokens (B, n_fp * n_tp, dim) with positions, and (B, n_fp * n_tp) validity."""
        B, T, F = x.shape
        valid_t = lengths_to_mask(lengths, T)
        x = x * valid_t[:, :, None]
        pad = (-T) % self.patch_t
        h = nn.functional.pad(x.transpose(1, 2), (0, pad)).unsqueeze(1)  # (B, 1, F, T + pad)
        h = self.patch(h)  # (B, dim, n_fp, n_tp)
        n_tp = h.shape[-1]
        h = h + self.freq_pos.t()[None, :, :, None] + sinusoidal(n_tp, self.dim, h.device).t()[None, :, None, :]
        tokens = h.flatten(2).transpose(1, 2)  # (B, n_fp * n_tp), frequency-major
        n_valid_tp = torch.div(lengths + self.patch_t - 1, self.patch_t, rounding_mode="floor")
        valid = lengths_to_mask(n_valid_tp, n_tp)[:, None, :].expand(B, self.n_fp, n_tp).reshape(B, -1)
        return tokens, valid

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded patch tokens (B, P, dim) (CLS excluded) and their (B, P) validity mask."""
        tokens, valid = self.patchify(x, lengths)
        seq = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1)  # (B, 1 + P, dim)
        keep = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)
        seq = self.norm(self.encoder(seq, src_key_padding_mask=~keep))
        self._cls_out = seq[:, 0]
        return seq[:, 1:], valid

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seq, valid = self.encode(x, lengths)
        if self.pooling == "cls":
            return self._cls_out
        w = valid.to(seq.dtype)
        return (seq * w[:, :, None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0)  # (B, dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, lengths))


@register_model
def audio_transformer(n_mels: int = 64, n_classes: int = 4, patch_f: int = 16, patch_t: int = 16, dim: int = 192,
                      depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.1,
                      pooling: Literal["cls", "mean"] = "cls") -> AudioTransformer:
    return AudioTransformer(n_mels, n_classes, patch_f, patch_t, dim, depth, heads, mlp_ratio, dropout, pooling)
