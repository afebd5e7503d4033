"""ResNet-18 on one-channel log-mel input, trained from scratch, with time masking."""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_out_len, mask_time, masked_mean
from .registry import register_model


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual path; steps past each item's length are zeroed."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                     if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, C, F, T)
        out_len = conv_out_len(lengths, 3, self.stride, 1)
        h = mask_time(torch.relu(self.bn1(self.conv1(x))), out_len)
        h = self.bn2(self.conv2(h))
        return mask_time(torch.relu(h + self.down(x)), out_len), out_len


class ResNet18(nn.Module):
    """ResNet-18 (2-2-2-2 basic blocks) adapted to (B, T, F) log-mel input.

    Args:
        n_mels: frequency bands of the input.
        n_classes: output classes.
        base_channels: width of the first stage (64 is the original ResNet-18).
        dropout: before the classifier.

    Shapes:
        x: (B, T, F) z-scored log-mel, zero past each length; lengths: (B,) valid frames.
        returns logits (B, n_classes).
    """

    def __init__(self, n_mels: int = 64, n_classes: int = 4, base_channels: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        c = base_channels
        self.stem = nn.Sequential(nn.Conv2d(1, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        widths = [c, 2 * c, 4 * c, 8 * c]
        blocks = []
        c_in = c
        for i, w in enumerate(widths):
            blocks += [BasicBlock(c_in, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            c_in = w
        self.blocks = nn.ModuleList(blocks)
        self.out_dim = widths[-1]
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.out_dim, n_classes))

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame-level embeddings: (B, T', D) and (B,) lengths, T' = T / 32."""
        h = mask_time(x.transpose(1, 2).unsqueeze(1), lengths)  # (B, 1, F, T)
        lengths = conv_out_len(lengths, 7, 2, 3)
        h = mask_time(self.stem(h), lengths)  # (B, c, F/2, T/2)
        lengths = conv_out_len(lengths, 3, 2, 1)
        h = mask_time(self.pool(h), lengths)  # (B, c, F/4, T/4); ReLU output >= 0, so zero padding cannot win a max
        for block in self.blocks:
            h, lengths = block(h, lengths)  # ends (B, 8c, F/32, T/32)
        return h.mean(dim=2).transpose(1, 2), lengths  # (B, T', 8c)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pooled utterance embedding (B, out_dim)."""
        return masked_mean(*self.encode(x, lengths))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, lengths))  # (B, n_classes)


@register_model
def resnet18(n_mels: int = 64, n_classes: int = 4, base_channels: int = 64, dropout: float = 0.3) -> ResNet18:
    return ResNet18(n_mels, n_classes, base_channels, dropout)
