"""Fine-tuning the top transformer layers of a pretrained encoder, on top of its cached hidden states.

The encoder's convolutional front end and its lower layers stay frozen (as in wav2vec2's own
fine-tuning recipe, ``freeze_feature_encoder``): their outputs are the cached hidden states of
``features.kind=hf_encoder``. The top ``unfreeze`` transformer layers are
loaded from the model folder with their pretrained weights and trained with their own learning
rate (``encoder_lr``), starting from the cached input of the first of them (``unfreeze: null``:
every transformer layer, from hidden state 0). Every hidden state
(the cached lower ones and the recomputed upper ones) is layer-normalised and mixed by a learned
softmax weighting, then projected, pooled and classified as in ``ssl_weighted``.

Works for wav2vec2, HuBERT, data2vec-audio and Whisper encoders. WavLM is refused (its layers
share a relative position bias computed by its first layer, not rebuilt here): use
``ssl_weighted`` for WavLM. A Whisper layer here attends over the clip's real frames only, where
the frozen extraction attended over the whole 30 s window: the first epochs adapt to that.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .layers import AttentionPool, lengths_to_mask, masked_mean
from .registry import register_model
from .ssl_weighted import LayerWeights


class SSLFineTune(nn.Module):
    """Cached hidden states -> the top encoder layers (trainable) -> layer mix -> pooling -> MLP.

    Args:
        n_mels: feature size per frame (n_layers * hidden; set by the run).
        n_classes: output classes.
        n_layers: hidden states per frame in the cache (set by the run).
        encoder_path: the model folder the features came from (set by the run).
        encoder_layers: the cached hidden-state indices (set by the run).
        unfreeze: how many top transformer layers to fine-tune (None: every layer).
        encoder_lr: their learning rate (the head uses ``train.lr``).
        hidden, pooling, dropout: the head, as in ``ssl_weighted``.

    Shapes:
        x: (B, T, n_layers * D) z-scored cached states; lengths: (B,). Returns logits (B, n_classes).
        The raw states are recovered with the training module's normalisation statistics
        (``bind_input_stats``), because the pretrained layers expect them.
    """

    def __init__(self, n_mels: int = 768, n_classes: int = 4, n_layers: int = 1, encoder_path: str = "",
                 encoder_layers: list[int] | None = None, unfreeze: int | None = None, encoder_lr: float = 1e-5,
                 hidden: int = 256, pooling: str = "attention", dropout: float = 0.2) -> None:
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', not {pooling!r}")
        self.n_cached, self.dim = int(n_layers), n_mels // max(1, int(n_layers))
        self.encoder_lr = float(encoder_lr)
        self._stats: list = []  # the training module's Normalize, bound after construction (not a submodule)
        self.layers = nn.ModuleList()
        self.final_norm: nn.Module = nn.Identity()
        cached = list(encoder_layers) if encoder_layers is not None else list(range(self.n_cached))
        if encoder_path:  # empty only in the dry build of a config check
            self._load(encoder_path, cached, unfreeze)
        else:
            self.start, self.keep = cached[-1] if cached else 0, list(range(len(cached)))
        n_mix = len(self.keep) + len(self.layers)
        self.mix = LayerWeights(max(1, n_mix))
        self.proj = nn.Sequential(nn.Linear(self.dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.attn = AttentionPool(hidden) if pooling == "attention" else None
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout))
        self.out_dim = hidden
        self.head = nn.Linear(hidden, n_classes)

    def _load(self, path: str, cached: list[int], unfreeze: int | None) -> None:
        from ..errors import EmofuseError
        from ..features.hf import load_hf_encoder, resolve_model_path

        model, config = load_hf_encoder(resolve_model_path(path))
        kind = getattr(config, "model_type", "")
        if kind == "wavlm":
            raise EmofuseError("model=ssl_finetune: WavLM layers share a relative position bias, which fine-tuning "
                               "from cached states does not rebuild; use model=ssl_weighted for WavLM")
        blocks = model.layers if kind == "whisper" else model.encoder.layers
        total = len(blocks)
        n = total if unfreeze is None else min(int(unfreeze), total)
        self.start = total - n  # hidden-state index of the first trained layer's input
        if self.start not in cached:
            raise EmofuseError(f"model.unfreeze={unfreeze}: the fine-tuned layers start from hidden state {self.start}, "
                               f"which is not cached (features.layers={cached}); cache it or change model.unfreeze")
        self.input_pos = cached.index(self.start)
        self.keep = [i for i, c in enumerate(cached) if c <= self.start]  # cached states below the trained layers
        self.layers = nn.ModuleList(blocks[self.start:])
        if kind == "whisper":
            self.final_norm = model.layer_norm
        elif getattr(config, "do_stable_layer_norm", False):
            self.final_norm = model.encoder.layer_norm
        for p in self.parameters():
            p.requires_grad_(True)

    def bind_input_stats(self, norm: nn.Module) -> None:
        """Use ``norm``'s (mean, std) to turn the z-scored input back into the encoder's own states."""
        self._stats = [norm]

    def param_groups(self, lr: float) -> list[dict]:
        """The head at ``lr``, the pretrained layers at ``encoder_lr`` (AdamW parameter groups)."""
        enc = {id(p) for p in self.layers.parameters()} | {id(p) for p in self.final_norm.parameters()}
        head = [p for p in self.parameters() if id(p) not in enc]
        groups = [{"params": head, "lr": lr}]
        if enc:
            groups.append({"params": [p for p in self.parameters() if id(p) in enc], "lr": self.encoder_lr})
        return groups

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, F = x.shape
        if self._stats:
            norm = self._stats[0]
            x = x * norm.std + norm.mean  # the cached (raw) hidden states
        states = x.reshape(B, T, self.n_cached, self.dim)  # (B, T, L, D)
        mixed = [states[:, :, i] for i in self.keep]
        if len(self.layers):
            valid = lengths_to_mask(lengths, T)  # (B, T)
            bias = torch.zeros(B, 1, T, T, dtype=x.dtype, device=x.device)
            bias = bias.masked_fill(~valid[:, None, None, :], torch.finfo(x.dtype).min)  # padded keys
            h = states[:, :, self.input_pos]
            for i, layer in enumerate(self.layers):
                out = layer(h, attention_mask=bias)
                h = out[0] if isinstance(out, tuple) else out
                mixed.append(self.final_norm(h) if i == len(self.layers) - 1 else h)
        stack = torch.stack([nn.functional.layer_norm(s, (self.dim,)) for s in mixed], dim=2)  # (B, T, L', D)
        seq = self.proj(self.mix(stack.reshape(B, T, -1)))  # (B, T, hidden)
        return seq * lengths_to_mask(lengths, T)[:, :, None].to(seq.dtype), lengths

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seq, lengths = self.encode(x, lengths)
        return self.mlp(self.attn(seq, lengths) if self.attn is not None else masked_mean(seq, lengths))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, lengths))


@register_model
def ssl_finetune(n_mels: int = 768, n_classes: int = 4, n_layers: int = 1, encoder_path: str = "",
                 encoder_layers: list[int] | None = None, unfreeze: int | None = None, encoder_lr: float = 1e-5,
                 hidden: int = 256, pooling: Literal["attention", "mean"] = "attention",
                 dropout: float = 0.2) -> SSLFineTune:
    return SSLFineTune(n_mels, n_classes, n_layers, encoder_path, encoder_layers, unfreeze, encoder_lr, hidden, pooling,
                       dropout)
