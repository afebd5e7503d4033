"""Mixup (Zhang et al., ICLR 2018) for training batches: each item is blended with another item of
the same batch, and the loss with both labels in the same proportion."""

from __future__ import annotations

import torch

# Batch fields that carry data (blended) and the lengths that go with them (the longer one is kept).
_PAIRS = (("x", "lengths"), ("text", "text_lengths"))


def mixup(inputs: dict[str, torch.Tensor], alpha: float) -> tuple[dict[str, torch.Tensor], torch.Tensor, float]:
    """Blend every item with a random partner of the same batch.

    Args:
        inputs: the model's batch fields, already normalised and SpecAugment-ed: ``x`` (B, T, F)
            with ``lengths`` (B,) and/or ``text`` (B, L, D) with ``text_lengths`` (B,); padding is 0.
        alpha: lambda ~ Beta(alpha, alpha), folded to [0.5, 1] so each item's own label dominates;
            0 turns mixup off (the inputs come back unchanged, lambda 1).

    Returns:
        (mixed inputs, perm (B,), lambda): item i becomes ``lambda * item_i + (1 - lambda) *
        item_perm[i]`` in every modality, with the longer of the two lengths; the loss is
        ``lambda * loss(y) + (1 - lambda) * loss(y[perm])``. Draws come from torch's global
        generator (seeded per run and saved in checkpoints), as SpecAugment's do.
    """
    first = next(v for k, v in inputs.items() if k in ("x", "text"))
    if alpha <= 0:
        return inputs, torch.arange(first.shape[0], device=first.device), 1.0
    lam = float(torch.distributions.Beta(float(alpha), float(alpha)).sample())
    lam = max(lam, 1.0 - lam)
    perm = torch.randperm(first.shape[0], device=first.device)
    mixed = dict(inputs)
    for data, lengths in _PAIRS:
        if data in inputs:
            mixed[data] = lam * inputs[data] + (1.0 - lam) * inputs[data][perm]
            mixed[lengths] = torch.maximum(inputs[lengths], inputs[lengths][perm])
    return mixed, perm, lam
