"""Patch-level cross-attention fusion between audio patches (or frames) and text tokens."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .layers import lengths_to_mask, mask_mean, valid_mask
from .registry import create_audio_encoder, register_model

DIRECTIONS = ("both", "audio_to_text", "text_to_audio")


class CrossBlock(nn.Module):
    """Pre-norm cross-attention + feed-forward: queries attend to a padded key/value sequence.

    Shapes:
        q: (B, Sq, D); q_valid: (B, Sq) bool; kv: (B, Sk, D); kv_valid: (B, Sk) bool.
        returns (B, Sq, D) (zero at invalid queries) and weights (B, heads, Sq, Sk) or None.
    """

    def __init__(self, dim: int, heads: int, dropout: float, ff_mult: int = 4) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * dim, dim),
                                nn.Dropout(dropout))

    def forward(self, q: torch.Tensor, q_valid: torch.Tensor, kv: torch.Tensor, kv_valid: torch.Tensor,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        kvn = self.norm_kv(kv)
        h, w = self.attn(self.norm_q(q), kvn, kvn, key_padding_mask=~kv_valid, need_weights=need_weights,
                         average_attn_weights=False)
        q = q + h
        q = q + self.ff(self.norm_ff(q))
        return q * q_valid[:, :, None].to(q.dtype), w


class CrossAttentionFusion(nn.Module):
    """Audio patches x text tokens cross-attention, then pooling of both streams and a classifier.

    The audio encoder (any registered audio model) turns the log-mel into a sequence of patches
    (``audio_transformer``) or frames (``resnet18``, ``cnn_bilstm``); the frozen text encoder's
    token embeddings are the other sequence (every token, not one [CLS] vector). Both are
    projected to ``dim``; each layer lets audio queries attend to text tokens and, with
    ``direction="both"``, text queries attend to audio patches, with padding masks on both
    sides. The two streams are mean-pooled over their valid positions, concatenated and
    classified.

    Args:
        n_mels, n_classes: input bands and output classes.
        text_dim: the text encoder's hidden size.
        audio_encoder, audio: a registered audio model and its constructor arguments.
        dim, heads, depth: the cross-attention stack.
        direction: ``both``, ``audio_to_text`` (audio queries text) or ``text_to_audio``.
        dropout, hidden: regularisation and classifier width.
        n_layers: layers per frame of multi-layer encoder features (set by the run), for an
            audio encoder with a layer axis (``ssl_weighted``).

    Shapes:
        x: (B, T, F); lengths: (B,); text: (B, L, text_dim); text_lengths: (B,).
        returns logits (B, n_classes); with ``return_attention=True`` also a dict with
        ``audio_to_text``: list over layers of (B, heads, S_audio, L) weights (rows: audio
        patches, columns: text tokens), ``text_to_audio``: list of (B, heads, L, S_audio),
        ``audio_valid``: (B, S_audio) and ``text_valid``: (B, L).
    """

    def __init__(self, n_mels: int = 64, n_classes: int = 4, text_dim: int = 384, audio_encoder: str = "audio_transformer",
                 audio: dict | None = None, dim: int = 128, heads: int = 4, depth: int = 1, direction: str = "both",
                 dropout: float = 0.1, hidden: int = 256, n_layers: int = 1) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        self.direction = direction
        self.audio = create_audio_encoder(audio_encoder, n_mels, audio, pooled=False, runtime={"n_layers": n_layers})
        self.proj_a = nn.Sequential(nn.Linear(self.audio.out_dim, dim), nn.LayerNorm(dim))
        self.proj_t = nn.Sequential(nn.Linear(text_dim, dim), nn.LayerNorm(dim))
        self.a2t = nn.ModuleList([CrossBlock(dim, heads, dropout) for _ in range(depth)]) if direction != "text_to_audio" else None
        self.t2a = nn.ModuleList([CrossBlock(dim, heads, dropout) for _ in range(depth)]) if direction != "audio_to_text" else None
        self.mlp = nn.Sequential(nn.LayerNorm(2 * dim), nn.Dropout(dropout), nn.Linear(2 * dim, hidden), nn.GELU(),
                                 nn.Dropout(dropout))
        self.out_dim = hidden
        self.head = nn.Linear(hidden, n_classes)

    def _fuse(self, x, lengths, text, text_lengths, need_weights: bool):
        seq, second = self.audio.encode(x, lengths)
        a_valid = valid_mask(seq, second)  # (B, S)
        a = self.proj_a(seq) * a_valid[:, :, None].to(seq.dtype)  # (B, S, dim)
        t_valid = lengths_to_mask(text_lengths.clamp(min=1), text.shape[1])  # (B, L)
        t = self.proj_t(text) * t_valid[:, :, None].to(text.dtype)
        maps: dict = {"audio_to_text": [], "text_to_audio": [], "audio_valid": a_valid, "text_valid": t_valid}
        for i in range(len(self.a2t if self.a2t is not None else self.t2a)):
            a_in, t_in = a, t  # both directions read the previous layer's streams
            if self.a2t is not None:
                a, w = self.a2t[i](a_in, a_valid, t_in, t_valid, need_weights)
                maps["audio_to_text"].append(w)
            if self.t2a is not None:
                t, w = self.t2a[i](t_in, t_valid, a_in, a_valid, need_weights)
                maps["text_to_audio"].append(w)
        emb = self.mlp(torch.cat([mask_mean(a, a_valid), mask_mean(t, t_valid)], dim=1))  # (B, hidden)
        return emb, maps

    def embed(self, x: torch.Tensor, lengths: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        return self._fuse(x, lengths, text, text_lengths, False)[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor,
                return_attention: bool = False):
        emb, maps = self._fuse(x, lengths, text, text_lengths, return_attention)
        logits = self.head(emb)
        return (logits, maps) if return_attention else logits


@register_model(modalities=("audio", "text"))
def cross_attention(n_mels: int = 64, n_classes: int = 4, text_dim: int = 384, audio_encoder: str = "audio_transformer",
                    audio: dict | None = None, dim: int = 128, heads: int = 4, depth: int = 1,
                    direction: Literal["both", "audio_to_text", "text_to_audio"] = "both", dropout: float = 0.1,
                    hidden: int = 256, n_layers: int = 1) -> CrossAttentionFusion:
    return CrossAttentionFusion(n_mels, n_classes, text_dim, audio_encoder, audio, dim, heads, depth, direction, dropout,
                                hidden, n_layers)
