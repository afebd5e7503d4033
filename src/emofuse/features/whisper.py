"""Whisper encoder features in the feature cache: frame-level outputs of a frozen Whisper encoder.

Computed once per corpus (keyed by audio content and by the model's identity), trimmed to each
clip's real length (one frame per 20 ms), stored like log-mel features in memory-mapped shards,
and read by the same datasets, normalisation and models (``whisper_mlp``, or as the audio side
of ``early_fusion`` / ``cross_attention``). Needs the ``pretrained`` extra.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio import read_audio
from ..shards import ShardedArrays
from .registry import FeatureKind, pad_sequences, register_feature
from .store import CachedFeatures

KIND = "whisper_encoder"
SHARD_UTTERANCES = 256


@dataclass(frozen=True)
class WhisperFeatureConfig:
    """The ``features:`` group for Whisper encoder features.

    Attributes:
        model: ``tiny.en`` (packaged) or a local CTranslate2 Whisper folder.
        compute_type: CTranslate2 compute type (part of the cache key).
        device: ``auto``, ``cpu`` or ``cuda`` for the extraction.
        batch_size: 30 s chunks per encoder call.
        threads: CPU threads (0: CTranslate2's default).
    """

    kind: str = KIND
    model: str = "tiny.en"
    compute_type: str = "default"
    device: str = "auto"
    batch_size: int = 8
    threads: int = 0

    sample_rate = 16000
    hop_length = 320  # samples per encoder frame (20 ms)

    def key(self) -> str:
        from ..pretrained import model_identity

        ident = {"kind": KIND, "model": model_identity(self.model), "compute_type": self.compute_type}
        return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]

    def load_model(self):
        """The frozen ``WhisperModel`` these settings name (needs the ``pretrained`` extra)."""
        from ..pretrained import WhisperModel

        return WhisperModel(self.model, self.device, self.compute_type, self.threads)

    def n_frames(self, n_samples: int) -> int:
        from ..pretrained import encoder_frames

        return encoder_frames(n_samples)


class WhisperFeatureStore(CachedFeatures):
    """Content-keyed Whisper encoder outputs; the interface of ``FeatureStore``.

    Args:
        cache_root: the cache folder (shared with the log-mel and text caches).
        cfg: model and extraction settings; the model's identity names the sub-folder.
    """

    def __init__(self, cache_root: str | Path, cfg: WhisperFeatureConfig = WhisperFeatureConfig()) -> None:
        self.cfg = cfg
        self.arrays = ShardedArrays(Path(cache_root) / f"whisper-{cfg.key()}", asdict(cfg), "Whisper features for audio")
        self.dir = self.arrays.dir
        self._model = None

    @property
    def dim(self) -> int:
        """Feature size per frame (the encoder's width: 384 for tiny)."""
        keys = self.arrays.keys()
        if keys:
            return int(self.arrays.get(keys[0]).shape[1])
        return int(self.model().encode([np.zeros(16000, np.float32)])[0].shape[1])

    def model(self):
        if self._model is None:
            self._model = self.cfg.load_model()
        return self._model

    def ensure(self, keys: list[str], paths: list[str | Path], workers: int | None = None, progress: bool = True) -> int:
        """Encode and store every clip not yet cached; returns how many were computed.

        Clips are decoded a batch at a time (never the whole corpus in memory), sorted by length
        so long clips share batches. ``workers`` is accepted for symmetry with ``FeatureStore``:
        CTranslate2 threads itself (``threads``).
        """
        todo = {k: p for k, p in zip(keys, paths) if k not in self.arrays}
        if not todo:
            return 0
        items = sorted(todo.items(), key=lambda kv: Path(kv[1]).stat().st_size)
        bs = max(1, int(self.cfg.batch_size))
        bar = tqdm(total=len(items), desc="whisper features", unit="utt", disable=not progress)

        def chunks():
            for s in range(0, len(items), bs):
                part = items[s:s + bs]
                feats = self.model().encode([read_audio(p, self.cfg.sample_rate) for _, p in part], batch_size=bs)
                yield [(k, f) for (k, _), f in zip(part, feats)]

        try:
            return self.arrays.store_stream(chunks(), SHARD_UTTERANCES, on_chunk=bar.update)
        finally:
            bar.close()


def _whisper_encoder(cfg: WhisperFeatureConfig):
    import torch

    model = cfg.load_model()
    return lambda waves: pad_sequences([torch.from_numpy(f) for f in model.encode(waves, cfg.batch_size)])


register_feature(FeatureKind(
    name=KIND, config=WhisperFeatureConfig, store=WhisperFeatureStore, encoder=_whisper_encoder,
    what="Whisper encoder frames",
    frame="(batch, frames, d_model) float32 Whisper encoder outputs (20 ms frames), zero past each length",
    recipe=("mono 16 kHz in 30 s chunks through the frozen CTranslate2 Whisper encoder named by 'model' "
            "(emofuse.pretrained.WhisperModel.encode), trimmed to one frame per 20 ms of audio"),
    min_samples=lambda cfg: 400,
    dry_dim=lambda d: 384,  # Whisper tiny.en; only used for the dry build of the model
    check=lambda cfg: _check(cfg)))


def _check(cfg: WhisperFeatureConfig) -> None:
    from ..errors import EmofuseError

    if cfg.threads < 0:
        raise EmofuseError(f"features.threads={cfg.threads}: must be 0 (CTranslate2's default) or more")
