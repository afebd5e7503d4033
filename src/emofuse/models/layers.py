"""Masking helpers shared by the models: lengths -> masks, masked pooling."""

from __future__ import annotations

import math

import torch
from torch import nn


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool, True on valid steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def conv_out_len(lengths: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """Output length of a convolution or pooling along one axis, for each item."""
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


def mask_time(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero every step past each item's length. x: (B, ..., T); lengths: (B,)."""
    mask = lengths_to_mask(lengths, x.shape[-1])
    return x * mask.view(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1]).to(x.dtype)


def masked_mean(seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B,) -> (B, D): mean over valid steps only."""
    mask = lengths_to_mask(lengths, seq.shape[1]).to(seq.dtype)  # (B, T)
    return (seq * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)


class AttentionPool(nn.Module):
    """Additive attention pooling over valid steps: (B, T, D), (B,) -> (B, D)."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        scores = self.score(seq).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~lengths_to_mask(lengths, seq.shape[1]), float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (B, T)
        return torch.bmm(weights.unsqueeze(1), seq).squeeze(1)


def sinusoidal(positions: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """(positions, dim) fixed sinusoidal encodings, for any sequence length."""
    pos = torch.arange(positions, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(positions, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


def valid_mask(seq: torch.Tensor, lengths_or_mask: torch.Tensor) -> torch.Tensor:
    """An audio encoder's second output -> (B, S) bool validity: (B,) lengths or a (B, S) mask."""
    if lengths_or_mask.dim() == 1:
        return lengths_to_mask(lengths_or_mask, seq.shape[1])
    return lengths_or_mask.bool()


def mask_mean(seq: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, S, D), (B, S) bool -> (B, D): mean over valid steps only."""
    w = valid.to(seq.dtype)
    return (seq * w[:, :, None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0)


def pool_text(tokens: torch.Tensor, lengths: torch.Tensor, pooling: str) -> torch.Tensor:
    """Token embeddings (B, L, D) with (B,) token counts -> (B, D): ``cls`` (row 0) or ``mean`` (valid tokens)."""
    if pooling == "cls":
        return tokens[:, 0]
    if pooling == "mean":
        return masked_mean(tokens, lengths)
    raise ValueError(f"text pooling must be 'cls' or 'mean', not {pooling!r}")
