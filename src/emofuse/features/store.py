"""Feature cache: log-mel features keyed by audio content, one folder per front-end setting.

Layout under the cache root::

    logmel-<settings hash>/settings.json
    logmel-<settings hash>/shard-00000.npy      (frames, n_mels) float32, many utterances end to end
    logmel-<settings hash>/shard-00000.csv      key, offset, frames   (key = sha1 of the audio file)

Shards are written whole to a temporary name and renamed, so an interrupted run keeps every
finished shard and the next run computes only what is missing. Reads are memory-mapped:
a training process touches only the frames it uses, and never holds the corpus in memory.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..audio import read_audio
from ..errors import EmofuseError
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


class FeatureStore:
    """Content-keyed, memory-mapped log-mel features.

    Args:
        cache_root: the cache folder (shared by every corpus and run).
        cfg: front-end settings; they name the sub-folder.
    """

    def __init__(self, cache_root: str | Path, cfg: FrontendConfig = FrontendConfig()) -> None:
        self.cfg = cfg
        self.dir = Path(cache_root) / f"logmel-{cfg.key()}"
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = self.dir / "settings.json"
        if not settings.exists():
            settings.write_text(json.dumps(asdict(cfg), indent=2))
        self._index: dict[str, tuple[int, int, int]] = {}
        self._arrays: dict[int, np.ndarray] = {}
        self._load_index()

    def _load_index(self) -> None:
        self._index.clear()
        for csv in sorted(self.dir.glob("shard-*.csv")):
            shard = int(csv.stem.split("-")[1])
            if not (self.dir / f"shard-{shard:05d}.npy").exists():
                continue
            table = pd.read_csv(csv, dtype={"key": str})
            for key, off, n in zip(table["key"], table["offset"], table["frames"]):
                self._index[key] = (shard, int(off), int(n))

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def missing(self, keys: list[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self._index]

    def frames(self, key: str) -> int:
        return self._index[key][2]

    def get(self, key: str) -> np.ndarray:
        """(T, n_mels) float32 view (memory-mapped; copy before writing to it)."""
        try:
            shard, off, n = self._index[key]
        except KeyError:
            raise EmofuseError(f"features for audio {key[:12]}... are not in {self.dir}; run feature extraction first") from None
        arr = self._arrays.get(shard)
        if arr is None:
            arr = np.load(self.dir / f"shard-{shard:05d}.npy", mmap_mode="r")
            self._arrays[shard] = arr
        return arr[off: off + n]

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
            if k not in self._index and k not in todo:
                todo[k] = str(p)
        if not todo:
            return 0
        items = list(todo.items())
        next_shard = 1 + max((int(p.stem.split("-")[1]) for p in self.dir.glob("shard-*.npy")), default=-1)
        workers = workers or min(8, os.cpu_count() or 1)
        chunk = 32
        jobs = [([p for _, p in items[i:i + chunk]], self.cfg) for i in range(0, len(items), chunk)]
        bar = tqdm(total=len(items), desc="log-mel features", unit="utt", disable=not progress)
        pending_keys: list[str] = []
        pending: list[np.ndarray] = []
        pool = ProcessPoolExecutor(workers) if workers > 1 and len(jobs) > 1 else None
        try:
            results = pool.map(_extract_chunk, jobs) if pool else map(_extract_chunk, jobs)
            for j, feats in enumerate(results):
                pending_keys.extend(k for k, _ in items[j * chunk: j * chunk + len(feats)])
                pending.extend(feats)
                bar.update(len(feats))
                if len(pending) >= SHARD_UTTERANCES:
                    self._write_shard(next_shard, pending_keys, pending)
                    next_shard += 1
                    pending_keys, pending = [], []
            if pending:
                self._write_shard(next_shard, pending_keys, pending)
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
            bar.close()
        return len(items)

    def _write_shard(self, shard: int, keys: list[str], feats: list[np.ndarray]) -> None:
        lengths = [len(f) for f in feats]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
        npy = self.dir / f"shard-{shard:05d}.npy"
        tmp = self.dir / f".shard-{shard:05d}.tmp.npy"
        np.save(tmp, np.concatenate(feats, axis=0).astype(np.float32))
        tmp.replace(npy)
        csv_tmp = self.dir / f".shard-{shard:05d}.tmp.csv"
        pd.DataFrame({"key": keys, "offset": offsets, "frames": lengths}).to_csv(csv_tmp, index=False)
        csv_tmp.replace(self.dir / f"shard-{shard:05d}.csv")
        for k, off, n in zip(keys, offsets, lengths):
            self._index[k] = (shard, int(off), int(n))
