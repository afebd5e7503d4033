"""Which front end a config names, and the matching cache and on-the-fly extractor.

``features.kind`` is ``logmel`` (the default: the study's 64-band log-mel) or
``whisper_encoder`` (frozen Whisper encoder outputs; the ``pretrained`` extra). Training reads
either from the feature cache; prediction on new audio rebuilds the same front end from the
settings a checkpoint stores.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import EmofuseError
from .logmel import FrontendConfig, LogMel
from .store import FeatureStore
from .whisper import KIND as WHISPER, WhisperFeatureConfig, WhisperFeatureStore

LOGMEL = "logmel"
KINDS = (LOGMEL, WHISPER)


def feature_config(d: dict | None) -> FrontendConfig | WhisperFeatureConfig:
    """The config's ``features:`` group -> settings; unknown kinds and keys fail with the known ones."""
    d = dict(d or {})
    kind = d.pop("kind", LOGMEL)
    if kind not in KINDS:
        raise EmofuseError(f"features.kind must be one of {list(KINDS)}, not {kind!r}")
    cls = WhisperFeatureConfig if kind == WHISPER else FrontendConfig
    known = set(cls.__dataclass_fields__) - {"kind"}
    bad = sorted(set(d) - known)
    if bad:
        raise EmofuseError(f"features: unknown keys {bad} for kind {kind}; known keys are {sorted(known)}")
    return cls(**d)


def pad_sequences(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_i, D) tensors -> zero-padded (B, max n, D) and (B,) lengths."""
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def open_store(cache_root, cfg: FrontendConfig | WhisperFeatureConfig) -> FeatureStore | WhisperFeatureStore:
    """The feature cache for these settings under ``cache_root``."""
    return WhisperFeatureStore(cache_root, cfg) if isinstance(cfg, WhisperFeatureConfig) else FeatureStore(cache_root, cfg)


class Extractor:
    """Features of new audio, as training read them from the cache (for prediction).

    Args:
        frontend: the settings a checkpoint stores (``hparams["frontend"]``).

    Call: a list of 16 kHz mono clips -> ((B, T, F) float32 padded with zeros past each clip,
    (B,) valid frames).
    """

    def __init__(self, frontend: dict | None) -> None:
        self.cfg = feature_config(frontend)
        self.kind = WHISPER if isinstance(self.cfg, WhisperFeatureConfig) else LOGMEL
        self._logmel = LogMel(self.cfg) if self.kind == LOGMEL else None
        self._whisper = None

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def min_samples(self) -> int:
        """The shortest clip the front end accepts (one analysis window)."""
        return self.cfg.win_length if self.kind == LOGMEL else 400

    def __call__(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == LOGMEL:
            batch = torch.zeros(len(waves), max(len(w) for w in waves))
            for i, w in enumerate(waves):
                batch[i, : len(w)] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
            with torch.no_grad():
                return self._logmel(batch, torch.tensor([len(w) for w in waves]))
        if self._whisper is None:
            self._whisper = self.cfg.load_model()
        return pad_sequences([torch.from_numpy(f) for f in self._whisper.encode(waves, self.cfg.batch_size)])
