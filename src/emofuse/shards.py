"""Content-keyed arrays in memory-mapped shards: the storage under the audio and text caches.

Layout of one cache folder::

    settings.json                  what the arrays were computed with (names the folder)
    shard-00000.npy                (rows, dim) float32, many items end to end
    shard-00000.csv                key, offset, frames   (rows of each item)

A shard is written whole under a temporary name and renamed, so an interrupted run keeps every
finished shard and the next one computes only what is missing. ``ShardedArrays.fill`` has
worker processes compute and write their shards themselves (only keys and row counts come
back); ``store_stream`` writes what one process computes. Several processes may write to
one folder at once (folds trained in parallel rendering their augmented variants, two
benchmarks sharing a cache): each shard number is claimed with an exclusive create first, so no
writer overwrites another's shard (the empty ``.shard-N.claim`` files stay as the record). Reads are memory-mapped: a
process touches only the rows it uses and never holds the corpus in memory.
"""

from __future__ import annotations

import ctypes
import errno
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from .atomic import write_text_atomic
from .errors import EmofuseError
from .writable import check_writable

CACHE_FIX = "point data.cache_dir (or --cache) at a folder you can write to"


class ShardedArrays:
    """Variable-length (rows, dim) float32 arrays by key, in one folder.

    Args:
        folder: the cache folder (created).
        settings: written to ``settings.json`` the first time, for people reading the cache.
        what: how errors name an item ("features for audio", "text embeddings for").
    """

    def __init__(self, folder: str | Path, settings: dict, what: str = "item") -> None:
        self.dir = Path(folder)
        self.what = what
        path = self.dir / "settings.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                write_text_atomic(path, json.dumps(settings, indent=2))
        except OSError as exc:
            raise EmofuseError(f"{self.dir}: cannot write the feature cache there ({exc.strerror or exc}); "
                               f"{CACHE_FIX}") from None
        self._index: dict[str, tuple[int, int, int]] = {}
        self._arrays: dict[int, np.ndarray] = {}
        for csv in sorted(self.dir.glob("shard-*.csv")):
            shard = int(csv.stem.split("-")[1])
            npy = self.dir / f"shard-{shard:05d}.npy"
            if not npy.exists():
                continue
            try:
                entries = _read_shard_index(csv, npy)
            except _DamagedShard as exc:
                self._set_aside(shard, str(exc))
                continue
            for key, off, n in entries:
                self._index[key] = (shard, off, n)

    def _set_aside(self, shard: int, reason: str) -> None:
        """Rename a damaged shard to ``*.bad`` (kept for inspection), so its items are recomputed."""
        names = [f"shard-{shard:05d}.npy", f"shard-{shard:05d}.csv"]
        try:
            for name in names:
                if (self.dir / name).exists():
                    (self.dir / name).replace(self.dir / f"{name}.bad")
            done = f"set aside as {names[0]}.bad and its items will be recomputed"
        except OSError as exc:  # a read-only cache: leave it, but never read the damaged shard
            done = f"not set aside ({exc.strerror}), its items will be recomputed"
        print(f"emofuse: {self.dir / names[0]} is damaged ({reason}); {done}", file=sys.stderr)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> list[str]:
        return list(self._index)

    def missing(self, keys: list[str]) -> list[str]:
        """Keys not stored yet, first occurrence order, without repeats."""
        return [k for k in dict.fromkeys(keys) if k not in self._index]

    def rows(self, key: str) -> int:
        return self._index[key][2]

    def get(self, key: str) -> np.ndarray:
        """(rows, dim) float32 view (memory-mapped; copy before writing to it)."""
        try:
            shard, off, n = self._index[key]
        except KeyError:
            raise EmofuseError(f"{self.what} {key[:12]}... not in {self.dir}; compute the cache first") from None
        arr = self._arrays.get(shard)
        if arr is None:
            arr = np.load(self.dir / f"shard-{shard:05d}.npy", mmap_mode="r")
            self._arrays[shard] = arr
        return arr[off: off + n]

    def next_shard(self) -> int:
        """Claim the next free shard number for this writer (exclusive create, safe across processes)."""
        return _claim_shard(self.dir)

    def write_shard(self, shard: int, keys: list[str], arrays: list[np.ndarray]) -> None:
        """Store ``arrays`` (each (rows_i, dim)) as one shard, atomically."""
        self._register(shard, keys, _write_shard(self.dir, shard, keys, arrays))

    def _register(self, shard: int, keys: list[str], lengths: list[int]) -> None:
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
        for k, off, n in zip(keys, offsets, lengths):
            self._index[k] = (shard, int(off), int(n))

    def fill(self, fn: Callable, jobs: list[tuple[list[str], object]], workers: int,
             on_job: Callable[[int], object] | None = None) -> int:
        """Compute and store items in worker processes, each job writing its own shard.

        ``fn(payload)`` returns one (rows_i, dim) array per key of the job; ``jobs`` are
        (keys, payload) pairs, payloads picklable. The arrays never travel back to this process
        (only the keys and row counts do), so the parent neither copies nor writes them, and an
        interruption keeps every finished job's shard. Returns how many items were stored.
        """
        total = 0
        work = [(fn, str(self.dir), keys, payload) for keys, payload in jobs]
        if work:
            check_writable(self.dir, "feature cache", CACHE_FIX)
        try:
            with closing(map_in_processes(_compute_and_write, work, workers)) as results:  # the pool stops with us
                for shard, keys, lengths in results:
                    self._register(shard, keys, lengths)
                    total += len(keys)
                    if on_job is not None:
                        on_job(len(keys))
        except OSError as exc:
            raise self._write_error(exc, total) from None
        return total

    def _write_error(self, exc: OSError, kept: int) -> EmofuseError:
        what = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "a write failed"
        return EmofuseError(f"{self.dir}: {what} while caching ({exc.strerror or exc}); {kept} items finished before are "
                            f"kept; free space there or {CACHE_FIX}, then run the same command again")

    def store_stream(self, chunks: Iterable[list[tuple[str, np.ndarray]]], shard_items: int,
                     on_chunk: Callable[[int], object] | None = None) -> int:
        """Store (key, array) pairs as they arrive, a shard every ``shard_items`` pairs and one for
        the rest, so an interruption keeps every finished shard. Returns how many were stored."""
        check_writable(self.dir, "feature cache", CACHE_FIX)
        shard, keys, arrays, total, stored = self.next_shard(), [], [], 0, 0
        try:
            for chunk in chunks:
                for key, arr in chunk:
                    keys.append(key)
                    arrays.append(arr)
                total += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
                if len(keys) >= shard_items:
                    self.write_shard(shard, keys, arrays)
                    stored += len(keys)
                    keys, arrays = [], []
                    shard = self.next_shard()
            if keys:
                self.write_shard(shard, keys, arrays)
            else:
                (self.dir / f".shard-{shard:05d}.claim").unlink(missing_ok=True)
        except OSError as exc:
            raise self._write_error(exc, stored) from None
        return total


def _claim_shard(folder: Path) -> int:
    taken = [*folder.glob("shard-*.npy"), *folder.glob(".shard-*.claim")]
    shard = 1 + max((int(p.name.split("-")[1].split(".")[0]) for p in taken), default=-1)
    while True:
        try:
            os.close(os.open(folder / f".shard-{shard:05d}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return shard
        except FileExistsError:
            shard += 1


def _write_shard(folder: Path, shard: int, keys: list[str], arrays: list[np.ndarray]) -> list[int]:
    """Write one shard (the .npy, then the .csv index, each under a temporary name and renamed);
    returns the row count of each array."""
    lengths = [len(a) for a in arrays]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    tmp = folder / f".shard-{shard:05d}.tmp.npy"
    csv_tmp = folder / f".shard-{shard:05d}.tmp.csv"
    try:
        _save_rows(tmp, arrays, sum(lengths))
        pd.DataFrame({"key": keys, "offset": offsets, "frames": lengths}).to_csv(csv_tmp, index=False)
    except BaseException:  # a full disk or an interruption: no half-written temporary file stays behind
        tmp.unlink(missing_ok=True)
        csv_tmp.unlink(missing_ok=True)
        raise
    tmp.replace(folder / f"shard-{shard:05d}.npy")
    csv_tmp.replace(folder / f"shard-{shard:05d}.csv")
    return lengths


class _DamagedShard(Exception):
    pass


def _read_shard_index(csv: Path, npy: Path) -> list[tuple[str, int, int]]:
    """A shard's (key, offset, rows) entries, checked against its array: a truncated or empty
    .npy, an unreadable index, or an index naming rows the array lacks raise ``_DamagedShard``."""
    try:
        arr = np.load(npy, mmap_mode="r")  # reads the header only; a short file fails to map
    except (ValueError, OSError, EOFError) as exc:
        raise _DamagedShard(f"array unreadable: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}") from None
    if arr.ndim != 2:
        raise _DamagedShard(f"array has shape {arr.shape}, not (rows, dim)")
    try:
        table = pd.read_csv(csv, dtype={"key": str})
        entries = [(str(k), int(o), int(n)) for k, o, n in zip(table["key"], table["offset"], table["frames"])]
    except Exception as exc:  # pandas raises several types for a garbled file
        raise _DamagedShard(f"index unreadable: {type(exc).__name__}") from None
    end = max((o + n for _, o, n in entries), default=0)
    if end > arr.shape[0] or any(o < 0 or n < 0 for _, o, n in entries):
        raise _DamagedShard(f"index names rows up to {end}, the array holds {arr.shape[0]}")
    return entries


def _save_rows(path: Path, arrays: list[np.ndarray], rows: int) -> None:
    """``np.save(path, np.concatenate(arrays).astype(float32))``, the same bytes, written array by
    array: a shard holding an hour-long clip's features is not copied once more in memory."""
    dims = {a.shape[1:] for a in arrays}
    if len(dims) != 1:
        raise ValueError(f"arrays of one shard must share their dim, got {sorted(dims)}")
    # float16 arrays stay float16 (a cache that asked for half the disk); everything else is float32
    dtype = np.float16 if arrays and all(a.dtype == np.float16 for a in arrays) else np.float32
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (rows, *dims.pop())}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for a in arrays:
            fh.write(np.ascontiguousarray(a, dtype=dtype).data)


def _compute_and_write(args: tuple[Callable, str, list[str], object]) -> tuple[int, list[str], list[int]]:
    """Worker side of ``ShardedArrays.fill``: compute one job's arrays and write them as a shard."""
    fn, folder, keys, payload = args
    arrays = fn(payload)
    if len(arrays) != len(keys):
        raise RuntimeError(f"{fn.__name__} returned {len(arrays)} arrays for {len(keys)} keys")
    shard = _claim_shard(Path(folder))
    return shard, keys, _write_shard(Path(folder), shard, keys, arrays)


def uses_processes(workers: int, n_jobs: int) -> bool:
    """Whether ``map_in_processes`` runs ``n_jobs`` jobs in worker processes (else in this one)."""
    return workers > 1 and n_jobs > 1


def map_in_processes(fn: Callable, jobs: list, workers: int) -> Iterator:
    """``map(fn, jobs)`` in ``workers`` processes (in this one when 1, or for a single job), in
    order; the pool is shut down (pending jobs cancelled) when the caller stops, even on an
    error or Ctrl-C, and its workers die with this process even when it is killed."""
    if not uses_processes(workers, len(jobs)):
        yield from map(fn, jobs)
        return
    pool = process_pool(workers)
    try:
        yield from pool.map(fn, jobs)
    finally:
        pool.shutdown(cancel_futures=True)


PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
PARENT_POLL_SECONDS = 1.0  # how often a worker off Linux looks for its parent


def process_pool(workers: int) -> ProcessPoolExecutor:
    """The one way emofuse starts worker processes: a ``ProcessPoolExecutor`` whose workers die
    with the process that started them, even when it is killed with SIGKILL (no cleanup runs,
    so ``shutdown`` never does; without this the workers would wait for jobs forever, each
    holding its memory). Every pool (features, augmentation, prepare) comes from here."""
    ctx = multiprocessing.get_context()
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent,
                               initargs=(os.getpid(), ctx.get_start_method()))


def _die_with_parent(parent: int, start_method: str) -> None:
    """Pool initializer: end this worker when ``parent`` (the pid that made the pool) ends.

    Linux: the kernel sends SIGKILL when the parent exits (``PR_SET_PDEATHSIG``). The parent may
    already be gone before that request is made (it then never fires), so the worker checks
    that its parent is still ``parent`` afterwards. Under ``forkserver`` the parent is the
    fork server, which itself ends with the main process. Elsewhere: a daemon thread looks
    for the parent every ``PARENT_POLL_SECONDS``.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
        if armed:
            if start_method != "forkserver" and os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)  # orphaned before the request took effect
            return
    threading.Thread(target=_watch_parent, args=(parent, start_method), daemon=True, name="emofuse-parent-watch").start()


def _watch_parent(parent: int, start_method: str) -> None:
    first = os.getppid()
    expected = first if start_method == "forkserver" else parent
    while os.getppid() == expected:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)
