"""Feature cache: log-mel features keyed by audio content, one folder per front-end setting.

Layout under the cache root: ``logmel-<settings hash>/`` holds ``settings.json`` and shards of
(frames, n_mels) float32 keyed by the sha1 of the audio file (see ``emofuse.shards``). An
interrupted run keeps every finished shard; reads are memory-mapped.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..audio import read_audio
from ..shards import ShardedArrays, map_in_processes
from .logmel import FrontendConfig, LogMel

SHARD_UTTERANCES = 256


def _extract_chunk(args: tuple[list[str], FrontendConfig]) -> list[np.ndarray]:
    """Worker: decode a chunk of files and run the log-mel module on it in batches of similar length."""
    paths, cfg = args
    torch.set_num_threads(1)
    frontend = LogMel(cfg)
    waves = [read_audio(p, cfg.sample_rate) for p in paths]
    out: list[np.ndarray | None] = [None] * len(waves)
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    for start in range(0, len(order), 16):
        idx = order[start:start + 16]
        n = max(len(waves[i]) for i in idx)
        batch = torch.zeros(len(idx), n)
        for row, i in enumerate(idx):
            batch[row, : len(waves[i])] = torch.from_numpy(waves[i])
        lengths = torch.tensor([len(waves[i]) for i in idx])
        with torch.no_grad():
            feats, frames = frontend(batch, lengths)
        for row, i in enumerate(idx):
            out[i] = feats[row, : int(frames[row])].numpy().astype(np.float32)
    return out  # type: ignore[return-value]


class CachedFeatures:
    """The read side shared by the audio feature caches: ``cfg`` (settings with ``sample_rate``
    and ``hop_length``) and ``arrays`` (the ``ShardedArrays`` folder), set by the subclass."""

    cfg: FrontendConfig
    arrays: ShardedArrays

    @property
    def frame_seconds(self) -> float:
        return self.cfg.hop_length / self.cfg.sample_rate

    def describe(self) -> dict:
        """What a checkpoint stores to rebuild this front end on new audio."""
        return asdict(self.cfg)

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def missing(self, keys: list[str]) -> list[str]:
        return self.arrays.missing(keys)

    def frames(self, key: str) -> int:
        return self.arrays.rows(key)

    def get(self, key: str) -> np.ndarray:
        """(T, dim) float32 view (memory-mapped; copy before writing to it)."""
        return self.arrays.get(key)


class FeatureStore(CachedFeatures):
    """Content-keyed, memory-mapped log-mel features (one ``ShardedArrays`` folder per setting).

    Args:
        cache_root: the cache folder (shared by every corpus and run).
        cfg: front-end settings; they name the sub-folder.
    """

    def __init__(self, cache_root: str | Path, cfg: FrontendConfig = FrontendConfig()) -> None:
        self.cfg = cfg
        self.arrays = ShardedArrays(Path(cache_root) / f"logmel-{cfg.key()}", asdict(cfg), "features for audio")
        self.dir = self.arrays.dir

    @property
    def dim(self) -> int:
        """Feature size per frame (mel bands)."""
        return self.cfg.n_mels

    def ensure(self, keys: list[str], paths: list[str | Path], workers: int | None = None, progress: bool = True) -> int:
        """Compute and store features for every key not yet cached.

        Args:
            keys: content keys (the manifest's ``audio_sha1``), one per path.
            paths: the audio files.
            workers: decoding processes (default: the machine's cores, at most 8).

        Returns:
            how many utterances were computed (0 when everything was cached).
        """
        todo: dict[str, str] = {}
        for k, p in zip(keys, paths):
            if k not in self.arrays and k not in todo:
                todo[k] = str(p)
        if not todo:
            return 0
        items = list(todo.items())
        workers = workers or min(8, os.cpu_count() or 1)
        chunk = 32
        jobs = [([p for _, p in items[i:i + chunk]], self.cfg) for i in range(0, len(items), chunk)]
        with closing(map_in_processes(_extract_chunk, jobs, workers)) as results:  # the pool stops with us, even on Ctrl-C
            pairs = ([(k, f) for (k, _), f in zip(items[j * chunk: j * chunk + len(feats)], feats)] for j, feats in enumerate(results))
            with tqdm(total=len(items), desc="log-mel features", unit="utt", disable=not progress) as bar:
                self.arrays.store_stream(pairs, SHARD_UTTERANCES, bar.update)
        return len(items)
