"""Datasets over the feature store, length-bucketed batches, and the Lightning data module."""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..features import FeatureStore, pad_sequences


class FeatureDataset(Dataset):
    """Utterances of one part of a fold, read from the memory-mapped caches by content key.

    Args:
        store: the audio feature store, or None for a text-only model (no audio is read).
        keys: content keys (audio sha1) of the items, in a fixed order.
        labels: class indices, one per key.
        crop_frames: training items longer than this are cropped to a random window (None: never).
        max_frames: evaluation items longer than this keep their first ``max_frames`` frames.
        train: random crops when True; deterministic reads otherwise.
        text_store, text_keys: the text embedding cache and each item's text key (text models).
        utt_ids, augment: the items' ids and the fold's ``FoldAugment`` (training sets only): an
            epoch reads a rendered waveform variant instead of the clean item with probability
            1 - clean_prob, and oversampled classes get extra items that always read a variant.

    Items:
        ``dataset[i]`` or ``dataset[(i, epoch)]`` (what ``BucketBatchSampler`` yields): dict with
        ``x`` (T, F) float32 log-mel (audio models), ``text`` (L, D) float32 token embeddings
        (text models), ``y`` the label and ``index`` the position in this dataset. A training
        item's random choices (crop window, clean or variant) come from a generator seeded by
        (seed, epoch, i): the same in any data-loader worker, for any ``num_workers``, and new
        each epoch.
    """

    def __init__(self, store: FeatureStore | None, keys: list[str], labels: list[int], crop_frames: int | None = None,
                 max_frames: int | None = None, train: bool = False, seed: int = 0, text_store=None,
                 text_keys: list[str] | None = None, utt_ids: list[str] | None = None, augment=None) -> None:
        if augment is not None and (not train or len(utt_ids or []) != len(keys)):
            raise ValueError("augmentation is for training sets only, and needs one utt_id per item")
        self.utt_ids = list(utt_ids or [])
        self.augment = augment
        self.n_variants = [augment.waveform_variants(u) for u in self.utt_ids] if augment is not None else []
        base = list(range(len(keys)))
        copies: list[int] = []
        if augment is not None:  # oversampling: extra copies of a class's items, each read as a variant
            copies = [i for i in base for _ in range(augment.copies(self.utt_ids[i]) - 1) if self.n_variants[i] > 0]
        self.source = base + copies  # dataset position -> item
        self.is_copy = [False] * len(base) + [True] * len(copies)
        keys = [keys[i] for i in self.source]
        labels = [labels[i] for i in self.source]
        text_keys = [text_keys[i] for i in self.source] if text_keys else text_keys
        self.store, self.keys, self.labels = store, list(keys), list(labels)
        self.crop, self.max_frames, self.train = crop_frames, max_frames, train
        self.text_store, self.text_keys = text_store, list(text_keys or [])
        if store is None and text_store is None:
            raise ValueError("a dataset needs audio features, text embeddings, or both")
        if text_store is not None and len(self.text_keys) != len(self.keys):
            raise ValueError("text_keys must give one text key per item")
        self.seed = seed
        if store is not None:
            full = np.array([store.frames(k) for k in self.keys], dtype=np.int64)  # clean lengths, for bucketing
            limit = crop_frames if train else max_frames
            self.lengths = np.minimum(full, limit) if limit else full
        else:  # text only: bucket by token count
            self.lengths = np.array([text_store.tokens(k) for k in self.text_keys], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        item: dict = {"y": self.labels[i], "index": i}
        if self.store is not None:
            rng = np.random.default_rng([self.seed, epoch, i]) if self.train else None
            feats = self.store.get(self.keys[i])
            if self.augment is not None:
                j = self.source[i]
                k = self.n_variants[j]
                if k and (self.is_copy[i] or rng.random() >= self.augment.policy.clean_prob):
                    feats = self.augment.variant(self.utt_ids[j], int(rng.integers(k)))
            limit = self.crop if self.train else self.max_frames
            n = min(len(feats), limit) if limit else len(feats)
            start = 0
            if rng is not None and len(feats) > n:
                start = int(rng.integers(0, len(feats) - n + 1))
            item["x"] = torch.from_numpy(np.array(feats[start:start + n], dtype=np.float32))
        if self.text_store is not None:
            item["text"] = torch.from_numpy(np.array(self.text_store.get(self.text_keys[i]), dtype=np.float32))
        return item


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    """Pad to the longest item. Returns y (B,), index (B,), and x (B, T, F) + lengths (B,)
    and/or text (B, L, D) + text_lengths (B,), as the items carry them."""
    out = {"y": torch.tensor([b["y"] for b in batch]), "index": torch.tensor([b["index"] for b in batch])}
    if "x" in batch[0]:
        out["x"], out["lengths"] = pad_sequences([b["x"] for b in batch])
    if "text" in batch[0]:
        out["text"], out["text_lengths"] = pad_sequences([b["text"] for b in batch])
    return out


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so padding stays small; shuffled per epoch; rank-aware for DDP.

    Items are sorted by length inside random pools of ``pool_batches`` batches, cut into
    batches, and the batches are shuffled. Under DDP every rank builds the same batch list
    (same seed and epoch) and keeps every ``world_size``-th batch, after trimming the list to a
    multiple of the world size so all ranks run the same number of steps.

    Training batches (``shuffle``) carry the epoch with each index, as ``(i, epoch)``, so the
    dataset draws each item's random crop from (seed, epoch, i) whichever process loads it;
    evaluation batches are plain indices.

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

    @property
    def sampler(self) -> "BucketBatchSampler":
        """Lightning hands each epoch to ``loader.batch_sampler.sampler.set_epoch`` (never to the
        batch sampler itself), so this batch sampler is its own ``sampler``: without it every
        epoch would replay epoch 0's batches."""
        return self

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
        if not self.shuffle:
            return iter(self._batches())
        return iter([[(i, self.epoch) for i in batch] for batch in self._batches()])

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
        self.start_epoch = 0

    def state_dict(self) -> dict:
        """Saved in every checkpoint (all are written at an epoch's end): the epoch to run next."""
        trainer = getattr(self, "trainer", None)
        return {"next_epoch": int(trainer.current_epoch) + 1} if trainer is not None else {}

    def load_state_dict(self, state: dict) -> None:
        # Lightning builds the resumed epoch's batch iterator before it hands the sampler its epoch,
        # so a resumed fold would replay epoch 0's batches once: the sampler starts at the saved epoch.
        self.start_epoch = int(state.get("next_epoch", 0))

    def _loader(self, part: str, shuffle: bool) -> DataLoader:
        ds = self.datasets[part]
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = BucketBatchSampler(ds.lengths, self.batch_size, shuffle=shuffle, drop_last=shuffle,
                                     seed=self.seed, rank=rank, world_size=world)
        if shuffle:
            sampler.set_epoch(self.start_epoch)
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

