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

from ..audio import audio_seconds, read_audio_unless_longer, stream_audio
from ..heap import hold_freed_memory
from ..shards import ShardedArrays, uses_processes
from .logmel import FrontendConfig, LogMel
from .registry import FeatureKind, register_feature

SHARD_UTTERANCES = 256  # most files per shard (one worker job)
DECODE_CHUNK = 32  # waveforms a worker holds at once
BATCH = 4  # clips per log-mel call (small batches stay in the CPU cache: faster than 16 or 32)
SMALLEST_JOB = 16  # files; the jobs shrink towards this size as the work runs out (see job_sizes)
LONG_CLIP_SECONDS = 60.0  # longer files are decoded and turned into log-mel block by block (LogMel.stream)


def job_sizes(n: int, workers: int, largest: int | None = None, smallest: int = SMALLEST_JOB) -> list[int]:
    """Sizes of the jobs ``n`` files are cut into for ``workers`` processes, in order.

    Guided scheduling: each job takes 1 / (2 * workers) of what is left (between ``smallest``
    and ``largest``, default ``SHARD_UTTERANCES``), so the first jobs are large (few shards, little
    per-job cost) and the last ones small, so the workers finish close together instead of one
    core idling while the other ends a large job (clips differ in length from job to job: on
    RAVDESS equal jobs of 180 files left a core idle for 0.1-0.17 s of a 1 s run).
    One worker: jobs of ``largest`` (nothing to balance).
    """
    largest = largest or SHARD_UTTERANCES
    if workers <= 1:
        return [min(largest, n - i) for i in range(0, n, largest)]
    sizes, left = [], n
    while left > 0:
        size = min(left, largest, max(smallest, -(-left // (2 * workers))))
        sizes.append(size)
        left -= size
    return sizes


def _extract_files(args: tuple[list[str], FrontendConfig, bool]) -> list[np.ndarray]:
    """Worker: log-mel of a list of files, one (frames_i, n_mels) float32 array each, in order.

    Decodes ``DECODE_CHUNK`` files at a time (a worker holds at most that many waveforms) and
    runs the module on batches of ``BATCH`` clips of similar length from each chunk. A file
    longer than ``LONG_CLIP_SECONDS`` is streamed instead (decoded, resampled and turned into
    log-mel block by block), so a worker's memory does not grow with a clip's length beyond
    the clip's features.
    """
    paths, cfg, one_thread = args
    threads = torch.get_num_threads()
    if one_thread:  # a worker process: the cores are shared out between processes
        torch.set_num_threads(1)
        hold_freed_memory()  # reuse batch buffers instead of faulting fresh pages in per batch
    try:
        frontend = LogMel(cfg)
        out: list[np.ndarray] = []
        for start in range(0, len(paths), DECODE_CHUNK):
            part = paths[start:start + DECODE_CHUNK]
            waves = [read_audio_unless_longer(p, LONG_CLIP_SECONDS, cfg.sample_rate) for p in part]
            order = sorted((i for i, w in enumerate(waves) if w is not None), key=lambda i: len(waves[i]))
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
            long = [i for i, w in enumerate(waves) if w is None]
            waves = batch = mel = None  # the decoded clips are done with before a long one streams
            for i in long:
                seconds = audio_seconds(part[i])  # inf when the header does not say
                hint = cfg.n_frames(int(seconds * cfg.sample_rate) + 2 * cfg.hop_length) if seconds < 1e6 else 0
                feats[i] = frontend.stream(stream_audio(part[i], cfg.sample_rate), frames_hint=hint)
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
        # Each job is written as its own shard by its worker (in this process when there is one job).
        sizes = job_sizes(len(items), workers)
        in_workers = uses_processes(workers, len(sizes))
        jobs, start = [], 0
        for size in sizes:
            part = items[start:start + size]
            jobs.append(([k for k, _ in part], ([p for _, p in part], self.cfg, in_workers)))
            start += size
        with tqdm(total=len(items), desc="log-mel features", unit="utt", disable=not progress) as bar:
            self.arrays.fill(_extract_files, jobs, workers, bar.update)
        return len(items)


def _logmel_encoder(cfg: FrontendConfig):
    frontend = LogMel(cfg)

    def encode(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = torch.zeros(len(waves), max(len(w) for w in waves))
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        with torch.no_grad():
            return frontend(batch, torch.tensor([len(w) for w in waves]))

    return encode


register_feature(FeatureKind(
    name="logmel", config=FrontendConfig, store=FeatureStore, encoder=_logmel_encoder, what="log-mel",
    frame="(batch, frames, n_mels) float32 log-mel in dB, zero past each length",
    recipe=("mono, resample to sample_rate; power mel spectrogram (Hann window of win_length in n_fft, hop_length, "
            "Slaney mel unless htk); 10*log10(max(amin, S)); floor at max - top_db (per clip)"),
    min_samples=lambda cfg: cfg.win_length,
    dry_dim=lambda d: int(d.get("n_mels", FrontendConfig.n_mels))))
