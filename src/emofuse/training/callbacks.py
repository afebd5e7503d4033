"""Training callbacks: throughput, the share of each step spent waiting on data, and progress lines."""

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


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class CVClock:
    """Overall progress of a cross-validation: which fold of how many, which epoch, and the time
    left, estimated from the epochs finished so far in this process (mean epoch time times the
    epochs still to train, counting ``max_epochs`` for every fold not started; early stopping
    can only make it shorter)."""

    def __init__(self, folds: list[int], max_epochs: int) -> None:
        self.folds, self.max_epochs = list(folds), max_epochs
        self.epoch_seconds: list[float] = []
        self.start = time.perf_counter()

    def fold_log(self, k: int, label: str = "") -> "EpochLog":
        return EpochLog(f"fold {k} ({self.folds.index(k) + 1}/{len(self.folds)}{label}) ", clock=self, fold=k)

    def eta(self, fold: int, epoch: int) -> str:
        """``elapsed, ~left`` after ``epoch`` (0-based) of ``fold`` finished."""
        elapsed = _duration(time.perf_counter() - self.start)
        if not self.epoch_seconds:
            return f"{elapsed} elapsed"
        later = len(self.folds) - self.folds.index(fold) - 1
        left_epochs = max(0, self.max_epochs - epoch - 1) + later * self.max_epochs
        mean = sum(self.epoch_seconds) / len(self.epoch_seconds)
        return f"{elapsed} elapsed, ~{_duration(mean * left_epochs)} left"


class EpochLog(L.Callback):
    """One line per epoch on stderr, for logs and terminals without progress bars; with a
    ``CVClock``, also the epoch out of ``max_epochs`` and the run's time left."""

    def __init__(self, prefix: str = "", clock: CVClock | None = None, fold: int | None = None) -> None:
        self.prefix, self.clock, self.fold = prefix, clock, fold
        self._t0: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        parts = [f"{k} {float(m[k]):.3f}" for k in ("train/loss", "val/loss", "val/macro_f1") if k in m]
        epoch = f"epoch {trainer.current_epoch}"
        if self.clock is not None:
            if self._t0 is not None:
                self.clock.epoch_seconds.append(time.perf_counter() - self._t0)
            epoch = f"epoch {trainer.current_epoch + 1}/{self.clock.max_epochs}"
            parts.append(self.clock.eta(self.fold, trainer.current_epoch))
        print(f"{self.prefix}{epoch}: " + ", ".join(parts), file=sys.stderr, flush=True)
