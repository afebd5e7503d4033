"""A convolutional front end followed by a bidirectional LSTM over time."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .layers import AttentionPool, mask_time, masked_mean
from .registry import register_model


class CNNBiLSTM(nn.Module):
    """Conv blocks (3x3 conv, BN, ReLU, 2x2 max-pool) -> BiLSTM -> attention or mean pooling.

    Args:
        n_mels: frequency bands of the input.
        n_classes: output classes.
        channels: output channels of each conv block; each block halves frequency and time.
        lstm_hidden: hidden size per direction.
        lstm_layers: stacked LSTM layers.
        pooling: ``attention`` or ``mean`` over valid time steps.
        dropout: between LSTM layers and before the classifier.

    Shapes:
        x: (B, T, F), zero past each length; lengths: (B,). Returns logits (B, n_classes).
    """

    def __init__(self, n_mels: int = 64, n_classes: int = 4, channels: tuple[int, ...] = (32, 64, 128),
                 lstm_hidden: int = 128, lstm_layers: int = 2, pooling: str = "attention", dropout: float = 0.3) -> None:
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', not {pooling!r}")
        blocks, c_in = [], 1
        for c in channels:
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.pool2 = nn.MaxPool2d(2, 2)
        f_out = n_mels // (2 ** len(channels))
        self.proj = nn.Linear(c_in * f_out, lstm_hidden)
        self.lstm = nn.LSTM(lstm_hidden, lstm_hidden, lstm_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.out_dim = 2 * lstm_hidden
        self.pooling = pooling
        self.attn = AttentionPool(self.out_dim) if pooling == "attention" else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.out_dim, n_classes))

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T', 2*hidden) LSTM outputs and (B,) lengths, T' = T / 2^len(channels)."""
        h = mask_time(x.transpose(1, 2).unsqueeze(1), lengths)  # (B, 1, F, T)
        for block in self.blocks:
            h = mask_time(block(h), lengths)
            h = self.pool2(h)  # (B, C, F/2, T/2); non-overlapping windows inside the valid part
            lengths = torch.div(lengths, 2, rounding_mode="floor").clamp(min=1)
            h = mask_time(h, lengths)
        B, C, F, T = h.shape
        seq = self.proj(h.permute(0, 3, 1, 2).reshape(B, T, C * F))  # (B, T', hidden)
        packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T', 2*hidden)
        return out, lengths

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seq, lengths = self.encode(x, lengths)
        return self.attn(seq, lengths) if self.attn is not None else masked_mean(seq, lengths)  # (B, 2*hidden)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, lengths))


@register_model
def cnn_bilstm(n_mels: int = 64, n_classes: int = 4, channels: tuple[int, ...] | list[int] = (32, 64, 128),
               lstm_hidden: int = 128, lstm_layers: int = 2, pooling: Literal["attention", "mean"] = "attention",
               dropout: float = 0.3) -> CNNBiLSTM:
    return CNNBiLSTM(n_mels, n_classes, tuple(channels), lstm_hidden, lstm_layers, pooling, dropout)
