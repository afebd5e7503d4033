"""Feature cache: log-mel features keyed by audio content, one folder per front-end setting.

Layout under the cache root: ``logmel-<settings hash>/`` holds ``settings.json`` and shards of
(frames, n_mels) float32 keyed by the sha1 of the audio file (see ``emofuse.shards``). An
interrupted run keeps every finished shard; reads are memory-mapped.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..audio import read_audio
from ..shards import ShardedArrays
from .logmel import FrontendConfig, LogMel

SHARD_UTTERANCES = 256  # most files per shard (one worker job)
DECODE_CHUNK = 32  # waveforms a worker holds at once
BATCH = 4  # clips per log-mel call (small batches stay in the CPU cache: faster than 16 or 32)


def _extract_files(args: tuple[list[str], FrontendConfig, bool]) -> list[np.ndarray]:
    """Worker: log-mel of a list of files, one (frames_i, n_mels) float32 array each, in order.

    Decodes ``DECODE_CHUNK`` files at a time (a worker holds at most that many waveforms) and
    runs the module on batches of ``BATCH`` clips of similar length from each chunk.
    """
    paths, cfg, one_thread = args
    threads = torch.get_num_threads()
    if one_thread:  # a worker process: the cores are shared out between processes
        torch.set_num_threads(1)
    try:
        frontend = LogMel(cfg)
        out: list[np.ndarray] = []
        for start in range(0, len(paths), DECODE_CHUNK):
            waves = [read_audio(p, cfg.sample_rate) for p in paths[start:start + DECODE_CHUNK]]
            order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
            feats: list[np.ndarray] = [np.empty(0)] * len(waves)
            for b in range(0, len(order), BATCH):
                idx = order[b:b + BATCH]
                lengths = torch.tensor([len(waves[i]) for i in idx])
                batch = torch.zeros(len(idx), int(lengths.max()))
                for row, i in enumerate(idx):
                    batch[row, : len(waves[i])] = torch.from_numpy(waves[i])
                with torch.no_grad():
                    mel, frames = frontend(batch, lengths)  # (B, T, n_mels), (B,)
                for row, i in enumerate(idx):
                    feats[i] = mel[row, : int(frames[row])].numpy()
            out.extend(feats)
        return out
    finally:
        torch.set_num_threads(threads)


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
        # Jobs of up to SHARD_UTTERANCES files, each written as its own shard by its worker; at
        # least ~4 jobs per worker so the last ones do not leave a core idle.
        size = max(1, min(SHARD_UTTERANCES, -(-len(items) // (4 * workers)))) if workers > 1 else SHARD_UTTERANCES
        jobs = [([k for k, _ in items[i:i + size]], ([p for _, p in items[i:i + size]], self.cfg, workers > 1))
                for i in range(0, len(items), size)]
        with tqdm(total=len(items), desc="log-mel features", unit="utt", disable=not progress) as bar:
            self.arrays.fill(_extract_files, jobs, workers, bar.update)
        return len(items)
