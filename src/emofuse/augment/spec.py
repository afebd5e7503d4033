"""SpecAugment: batched time and frequency masking on the model's device, with per-item settings."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import EmofuseError

SPEC_KEYS = ("freq_masks", "freq_width", "time_masks", "time_width")


def spec_params(spec: dict) -> tuple[int, int, int, int]:
    """Validate ``{"name": "specaugment", "freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 20}``."""
    bad = sorted(set(spec) - {"name", "p", *SPEC_KEYS})
    if bad:
        raise EmofuseError(f"augment specaugment: unknown keys {bad}; known: {list(SPEC_KEYS)}")
    vals = []
    for k, default in zip(SPEC_KEYS, (2, 8, 2, 20)):
        v = spec.get(k, default)
        if not isinstance(v, int) or v < 0:
            raise EmofuseError(f"augment specaugment: {k}={v!r} must be a whole number >= 0")
        vals.append(v)
    return tuple(vals)  # type: ignore[return-value]


class SpecAugment(nn.Module):
    """Time and frequency masks, drawn per item, applied to a padded batch in one pass.

    Each row of ``table`` holds one setting (freq_masks, freq_width, time_masks, time_width);
    every item picks its row (e.g. its class under a class-differentiated policy). Each mask
    has a width uniform in [0, width]; masks only touch the item's valid frames. Masked
    cells are set to ``value`` (0 = the training mean after z-scoring).

    Args:
        table: (S, 4) integer settings; row of zeros = no masking.
        value: fill value.

    Shapes:
        x: (B, T, F); lengths: (B,); rows: (B,) row index per item -> (B, T, F).
    """

    def __init__(self, table: list[tuple[int, int, int, int]] | torch.Tensor, value: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.long).reshape(-1, 4), persistent=False)
        self.value = value

    @staticmethod
    def _masks(n: torch.Tensor, width: torch.Tensor, span: torch.Tensor, size: int, generator) -> torch.Tensor:
        """(B,) counts, (B,) max widths, (B,) valid span -> (B, size) bool, True where masked."""
        B, M = n.shape[0], int(n.max().item()) if n.numel() else 0
        if M == 0:
            return torch.zeros(B, size, dtype=torch.bool, device=n.device)
        r1 = torch.rand(B, M, generator=generator, device=n.device)
        r2 = torch.rand(B, M, generator=generator, device=n.device)
        w = torch.floor(r1 * (width[:, None] + 1).float()).long()
        w = torch.minimum(w, span[:, None]) * (torch.arange(M, device=n.device)[None, :] < n[:, None])  # unused masks: width 0
        start = torch.floor(r2 * (span[:, None] - w + 1).clamp(min=1).float()).long()
        pos = torch.arange(size, device=n.device)[None, None, :]
        return ((pos >= start[:, :, None]) & (pos < (start + w)[:, :, None])).any(1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        B, T, F = x.shape
        p = self.table.to(x.device)[rows.to(x.device)]  # (B, 4)
        full_f = torch.full((B,), F, device=x.device, dtype=torch.long)
        fmask = self._masks(p[:, 0], p[:, 1], full_f, F, generator)  # (B, F)
        tmask = self._masks(p[:, 2], p[:, 3], lengths.to(x.device).long(), T, generator)  # (B, T)
        valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
        masked = (fmask[:, None, :] | tmask[:, :, None]) & valid[:, :, None]  # padding frames stay as they are
        return x.masked_fill(masked, self.value)
