"""Datasets over the feature store, length-bucketed batches, and the Lightning data module."""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..features import FeatureStore


class FeatureDataset(Dataset):
    """Utterances of one part of a fold, read from the memory-mapped store by content key.

    Args:
        store: the feature store.
        keys: content keys (audio sha1) of the items, in a fixed order.
        labels: class indices, one per key.
        crop_frames: training items longer than this are cropped to a random window (None: never).
        max_frames: evaluation items longer than this keep their first ``max_frames`` frames.
        train: random crops when True; deterministic reads otherwise.

    Items:
        (features (T, F) float32 tensor, label, index into this dataset)
    """

    def __init__(self, store: FeatureStore, keys: list[str], labels: list[int], crop_frames: int | None = None,
                 max_frames: int | None = None, train: bool = False, seed: int = 0) -> None:
        self.store, self.keys, self.labels = store, list(keys), list(labels)
        self.crop, self.max_frames, self.train = crop_frames, max_frames, train
        self.rng = np.random.default_rng(seed)
        full = np.array([store.frames(k) for k in self.keys], dtype=np.int64)
        limit = crop_frames if train else max_frames
        self.lengths = np.minimum(full, limit) if limit else full
        self.full_lengths = full

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        feats = self.store.get(self.keys[i])
        n = int(self.lengths[i])
        start = 0
        if self.train and self.full_lengths[i] > n:
            start = int(self.rng.integers(0, self.full_lengths[i] - n + 1))
        return torch.from_numpy(np.array(feats[start:start + n], dtype=np.float32)), self.labels[i], i


def collate(batch: list[tuple[torch.Tensor, int, int]]) -> dict[str, torch.Tensor]:
    """Pad to the longest item. Returns x (B, T, F), lengths (B,), y (B,), index (B,)."""
    lengths = torch.tensor([b[0].shape[0] for b in batch], dtype=torch.long)
    x = torch.zeros(len(batch), int(lengths.max()), batch[0][0].shape[1])
    for i, (f, _, _) in enumerate(batch):
        x[i, : f.shape[0]] = f
    return {"x": x, "lengths": lengths, "y": torch.tensor([b[1] for b in batch]), "index": torch.tensor([b[2] for b in batch])}


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so padding stays small; shuffled per epoch; rank-aware for DDP.

    Items are sorted by length inside random pools of ``pool_batches`` batches, cut into
    batches, and the batches are shuffled. Under DDP every rank builds the same batch list
    (same seed and epoch) and keeps every ``world_size``-th batch, after trimming the list to a
    multiple of the world size so all ranks run the same number of steps.

    Args:
        lengths: (N,) item lengths in frames.
        batch_size: items per batch.
        shuffle: reshuffle each epoch (training); False gives a fixed, length-sorted order.
        drop_last: drop a final short batch (training).
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, pool_batches: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size, self.pool = seed, rank, world_size, pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        idx = list(range(len(self.lengths)))
        if self.shuffle:
            rng = random.Random(self.seed * 100003 + self.epoch)
            rng.shuffle(idx)
            pool = self.batch_size * self.pool
            idx = [i for s in range(0, len(idx), pool) for i in sorted(idx[s:s + pool], key=lambda j: self.lengths[j])]
        else:
            idx.sort(key=lambda j: self.lengths[j])
        batches = [idx[s:s + self.batch_size] for s in range(0, len(idx), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size and len(batches) > 1:
            batches.pop()
        if self.shuffle:
            random.Random(self.seed * 7919 + self.epoch).shuffle(batches)
        if self.world_size > 1:
            if self.shuffle:
                batches = batches[: len(batches) - len(batches) % self.world_size] or batches[:1]
            batches = batches[self.rank::self.world_size]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class FoldDataModule(L.LightningDataModule):
    """Train / validation / test loaders for one fold; the test part is only read after fitting.

    Args:
        datasets: ``{"train": FeatureDataset, "val": ..., "test": ...}``.
        batch_size: items per batch.
        num_workers: data-loader worker processes.
    """

    def __init__(self, datasets: dict[str, FeatureDataset], batch_size: int = 32, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.datasets, self.batch_size, self.num_workers, self.seed = datasets, batch_size, num_workers, seed

    def _loader(self, part: str, shuffle: bool) -> DataLoader:
        ds = self.datasets[part]
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = BucketBatchSampler(ds.lengths, self.batch_size, shuffle=shuffle, drop_last=shuffle,
                                     seed=self.seed, rank=rank, world_size=world)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)


def class_weights(labels: list[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (classes absent from training get 0)."""
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return torch.tensor(w / w[w > 0].mean() if (w > 0).any() else w, dtype=torch.float32)

