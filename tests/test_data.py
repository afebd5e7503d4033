"""The training input pipeline: length bucketing, per-epoch shuffling, random crops that do
not depend on the data-loader workers, and DDP rank splits."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

from emofuse.training.data import BucketBatchSampler, FeatureDataset, FoldDataModule


class ArrayStore:
    """The two methods FeatureDataset reads from a feature cache, over in-memory arrays."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def frames(self, key: str) -> int:
        return len(self.arrays[key])

    def get(self, key: str) -> np.ndarray:
        return self.arrays[key]


def _dataset(n: int = 40, train: bool = True, seed: int = 0) -> FeatureDataset:
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 300, size=n)
    # Each frame holds its own index, so a crop's first value is its start.
    arrays = {f"k{i}": np.repeat(np.arange(m, dtype=np.float32)[:, None], 4, axis=1) for i, m in enumerate(lengths)}
    return FeatureDataset(ArrayStore(arrays), list(arrays), [i % 4 for i in range(n)], crop_frames=50, train=train, seed=seed)


def _padding(batches: list[list[int]], lengths: np.ndarray) -> float:
    """Padded frames / real frames over a list of batches."""
    real = sum(int(lengths[b].sum()) for b in batches)
    return sum(int(lengths[b].max()) * len(b) for b in batches) / real - 1


def test_buckets_cut_padding_and_cover_every_item_once():
    lengths = np.random.default_rng(1).integers(100, 2000, size=1000)
    sampler = BucketBatchSampler(lengths, 16, shuffle=True, drop_last=False, seed=0)
    batches = [[i for i, _ in b] for b in sampler]
    assert sorted(i for b in batches for i in b) == list(range(1000))
    rng = np.random.default_rng(2)
    random_batches = [list(b) for b in np.array_split(rng.permutation(1000), len(batches))]
    assert _padding(batches, lengths) < 0.1 < 0.5 < _padding(random_batches, lengths)


def test_each_epoch_reshuffles_and_the_same_epoch_repeats():
    sampler = BucketBatchSampler(np.arange(200), 8, shuffle=True, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert [i for i, _ in first[0]] != [i for i, _ in second[0]]
    assert {e for b in second for _, e in b} == {1}
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_evaluation_batches_are_plain_sorted_indices():
    sampler = BucketBatchSampler(np.array([5, 1, 3, 2]), 2, shuffle=False)
    assert list(sampler) == [[1, 3], [2, 0]]


def test_ddp_ranks_split_the_batches_with_equal_step_counts():
    lengths = np.random.default_rng(0).integers(10, 100, size=103)
    ranks = [list(BucketBatchSampler(lengths, 8, shuffle=True, drop_last=True, seed=1, rank=r, world_size=3))
             for r in range(3)]
    assert len({len(r) for r in ranks}) == 1
    seen = [i for r in ranks for b in r for i, _ in b]
    assert len(seen) == len(set(seen))


def test_random_crops_depend_on_seed_epoch_and_item_only():
    ds = _dataset()
    long_items = [i for i in range(len(ds)) if ds.store.frames(ds.keys[i]) > 80]
    starts = {i: float(ds[(i, 0)]["x"][0, 0]) for i in long_items}
    assert all(float(_dataset()[(i, 0)]["x"][0, 0]) == s for i, s in starts.items())  # a worker's copy agrees
    assert any(float(ds[(i, 1)]["x"][0, 0]) != s for i, s in starts.items())  # a new epoch crops anew
    assert any(float(_dataset(seed=1)[(i, 0)]["x"][0, 0]) != s for i, s in starts.items())
    assert all(ds[(i, 0)]["x"].shape[0] == 50 for i in long_items)
    evaluation = _dataset(train=False)
    assert all(float(evaluation[i]["x"][0, 0]) == 0 for i in long_items)  # evaluation: from the start, whole


class _Recorder(L.LightningModule):
    """Records the item indices of every training batch, per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 4)
        self.seen: dict[int, list[list[int]]] = {}
        self.crops: dict[int, list[float]] = {}

    def training_step(self, batch, _):
        self.seen.setdefault(self.current_epoch, []).append(batch["index"].tolist())
        self.crops.setdefault(self.current_epoch, []).extend(batch["x"][:, 0, 0].tolist())
        return self.layer(batch["x"].mean(1)).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_gives_each_epoch_new_batches_with_worker_processes():
    """Lightning sets the epoch on ``batch_sampler.sampler`` only; with two loader workers
    the batches and the crops must still change from epoch to epoch, and match a run
    without workers."""
    runs = []
    for workers in (0, 2):
        ds = _dataset()
        dm = FoldDataModule({"train": ds, "val": _dataset(train=False), "test": _dataset(train=False)}, batch_size=8,
                            num_workers=workers, seed=5)
        module = _Recorder()
        trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                            use_distributed_sampler=False)
        trainer.fit(module, datamodule=dm)
        assert module.seen[0] != module.seen[1]
        runs.append((module.seen, module.crops))
    assert runs[0] == runs[1]
