"""Which front end a config names, and the matching cache and on-the-fly extractor.

``features.kind`` names a registered front end (``emofuse.features.registry``): ``logmel`` (the
default: the study's 64-band log-mel), ``whisper_encoder`` (frozen CTranslate2 Whisper encoder
outputs; the ``pretrained`` extra) or ``hf_encoder`` (hidden states of every layer of any local
Hugging Face audio encoder). Training reads any of them from the feature cache; prediction on
new audio rebuilds the same front end from the settings a checkpoint stores.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from . import hf, store, whisper  # noqa: F401  (registration of the built-in kinds)
from .registry import DEFAULT_KIND, feature_config, kind_of, list_features, open_store, pad_sequences

LOGMEL = DEFAULT_KIND
KINDS = tuple(list_features())

__all__ = ["LOGMEL", "KINDS", "Extractor", "feature_config", "open_store", "pad_sequences"]


class Extractor:
    """Features of new audio, as training read them from the cache (for prediction).

    Args:
        frontend: the settings a checkpoint stores (``hparams["frontend"]``).

    Call: a list of 16 kHz mono clips -> ((B, T, F) float32 padded with zeros past each clip,
    (B,) valid frames).
    """

    def __init__(self, frontend: dict | None) -> None:
        self.cfg = feature_config(frontend)
        self._kind = kind_of(self.cfg)
        self.kind = self._kind.name
        self.what = self._kind.what  # how plots name one frame ("log-mel", "Whisper encoder frames", ...)
        self._encode = None
        self._lock = threading.Lock()  # the encoder loads once even when several threads ask at once

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def min_samples(self) -> int:
        """The shortest clip the front end accepts (one analysis window)."""
        return self._kind.min_samples(self.cfg)

    def __call__(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        if self._encode is None:  # the encoder loads on first use (a model folder can be large)
            with self._lock:
                if self._encode is None:
                    self._encode = self._kind.encoder(self.cfg)
        return self._encode(waves)
