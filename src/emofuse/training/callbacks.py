"""Training callbacks: throughput and the share of each step spent waiting on data."""

from __future__ import annotations

import sys
import time

import lightning as L


class Throughput(L.Callback):
    """Counts training utterances per second and the fraction of wall time spent waiting for batches.

    "Waiting" is the time between the end of one training step and the start of the next
    inside an epoch: data loading, collation and host-to-device copy.
    """

    def __init__(self) -> None:
        self.items = 0
        self.train_seconds = 0.0
        self.wait_seconds = 0.0
        self._epoch_start = 0.0
        self._last_end: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()
        self._last_end = self._epoch_start

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._last_end is not None:
            self.wait_seconds += time.perf_counter() - self._last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.items += int(batch["y"].shape[0])
        self._last_end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._last_end is not None:
            self.train_seconds += self._last_end - self._epoch_start
        self._last_end = None

    def report(self) -> dict:
        return {"train_items": self.items, "train_seconds": round(self.train_seconds, 3),
                "train_utt_per_s": round(self.items / self.train_seconds, 2) if self.train_seconds else None,
                "data_wait_fraction": round(self.wait_seconds / self.train_seconds, 4) if self.train_seconds else None}


class EpochLog(L.Callback):
    """One line per epoch on stderr, for logs and terminals without progress bars."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        parts = [f"{k} {float(m[k]):.3f}" for k in ("train/loss", "val/loss", "val/macro_f1") if k in m]
        print(f"{self.prefix}epoch {trainer.current_epoch}: " + ", ".join(parts), file=sys.stderr, flush=True)
