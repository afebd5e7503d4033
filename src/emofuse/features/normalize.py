"""Z-score normalisation whose statistics come from one fold's training items only."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .store import FeatureStore


def fit_stats(store: FeatureStore, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation over every frame of the given (training) items.

    Returns:
        ((n_mels,), (n_mels,)) float32 mean and std.
    """
    total = None
    sq = None
    count = 0
    for k in keys:
        x = np.asarray(store.get(k), dtype=np.float64)
        total = x.sum(0) if total is None else total + x.sum(0)
        sq = (x * x).sum(0) if sq is None else sq + (x * x).sum(0)
        count += x.shape[0]
    if count == 0:
        raise ValueError("no frames to fit normalisation statistics on")
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean * mean, 1e-8))
    return mean.astype(np.float32), std.astype(np.float32)


class Normalize(nn.Module):
    """(B, T, F) -> (B, T, F) z-scored per band; frames past ``lengths`` are set to 0.

    Args:
        mean, std: (F,) statistics from the training items of the current fold.
    """

    def __init__(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.asarray(std), dtype=torch.float32))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std  # (B, T, F)
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
        return x * valid[:, :, None]
