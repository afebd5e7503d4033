"""Checkpoints a resumed fold can trust: written atomically, checked before use, with the RNG state.

- ``AtomicCheckpointIO``: every checkpoint is written to a temporary file in its own folder,
  flushed to disk, then renamed over the old one, so a full disk or a kill leaves the previous
  checkpoint whole (Lightning writes the target file in place).
- ``last.ckpt`` is written after every finished epoch (Lightning's ``save_last`` follows the
  monitored checkpoint and skips epochs that did not improve, so a resumed fold went back to the
  last improvement and ended with another result).
- ``RngState``: the Python, NumPy and torch generators travel in the checkpoint, so a resumed
  fold draws the same dropout masks and augmentations as an uninterrupted one.
- ``best.ckpt`` is for inference only (``best_checkpoint_callback``): weights, hyper-parameters
  (classes, front end, text settings), version and epoch; no optimiser, scheduler or loop state,
  which only a resume needs and which ``last.ckpt`` alone carries (the optimiser's moments are
  twice the weights: a third of the size).
- ``usable_checkpoint``: a ``last.ckpt`` that does not load is renamed aside (``*.corrupt-TIME``)
  and the fold starts again, said in one line.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into ``.NAME.PID.tmp`` beside the target, fsync, then ``os.replace``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)


def last_checkpoint_callback(dirpath: Path) -> L.Callback:
    """Writes ``last.ckpt`` at the end of every epoch (after validation), whatever the score."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
                           save_last=False, enable_version_counter=False, auto_insert_metric_name=False)


def best_checkpoint_callback(dirpath: Path, monitor: str, mode: str) -> L.Callback:
    """Writes ``best.ckpt`` when ``monitor`` improves: weights only (see the module's docstring)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(dirpath=dirpath, filename="best", monitor=monitor, mode=mode, save_top_k=1,
                           save_weights_only=True, enable_version_counter=False, auto_insert_metric_name=False)


class RngState(L.Callback):
    """Carries the global random generators in the checkpoint and restores them on resume."""

    def state_dict(self) -> dict:
        np_state = np.random.get_state()
        return {"python": random.getstate(), "torch": torch.get_rng_state(),
                "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                          "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state_dict(self, state: dict) -> None:
        random.setstate(_tuples(state["python"]))
        torch.set_rng_state(state["torch"])
        n = state["numpy"]
        np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        if state.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def checkpoint_loads(path: Path) -> bool:
    """Whether ``path`` is a whole checkpoint (loads with the safe unpickler, has its epoch)."""
    from ..inference import read_checkpoint

    try:
        raw = read_checkpoint(path)
        return isinstance(raw, dict) and "state_dict" in raw and "epoch" in raw
    except Exception:
        return False


def usable_checkpoint(ckdir: Path, fold: int) -> Path | None:
    """The checkpoint to resume fold ``fold`` from: ``last.ckpt`` if whole, else none (the fold
    starts again: ``best.ckpt`` holds no optimiser state to resume from). A corrupt one is
    renamed aside, with one line on stderr."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in ("last.ckpt",):
        path = ckdir / name
        if not path.is_file():
            continue
        if checkpoint_loads(path):
            return path
        aside = path.with_name(f"{name}.corrupt-{stamp}")
        path.replace(aside)
        print(f"fold {fold}: {path} is corrupt (truncated or unreadable); set aside as {aside.name}", file=sys.stderr)
    return None
