"""The run folder: its layout, its lock, and the record of the inputs it was made from.

One class owns where things are in a run, so training, inference and reports ask it instead
of spelling paths::

    run.json               marks an emofuse run; the manifest's fingerprint when the run began, and its
                           path (absolute, and relative to the run folder: see ``manifest_path``)
    inputs/manifest.csv    the manifest columns the run depends on, as they were (for the diff)
    config.yaml            the resolved config (what every fold trains with)
    audit.json             leakage audit of every fold, and what each step was allowed to see
    .lock                  held while a process works in the run (see ``RunLock``)
    fold_K/split.csv       utt_id, speaker, part (train / val / test)
    fold_K/audit.json      this fold's overlap checks, re-made against the manifest on every open
    fold_K/norm.json       z-score statistics (training items only)
    fold_K/checkpoints/    best.ckpt (selected on validation speakers), last.ckpt (last finished epoch)
    fold_K/.lock           held while a process trains this fold
    fold_K/tb/             TensorBoard logs
    fold_K/predictions.csv test predictions per utterance with class probabilities
    fold_K/provenance.json versions, commit, device, wall time, peak memory (``emofuse.provenance``)
    fold_K/metrics.json    test (and validation) metrics; its presence marks the fold finished
    fold_K/confusion.png
    summary.json, results.md, confusion.png   across folds (mean and std)

Only a folder that holds an emofuse run is ever deleted (``--overwrite``), and then its
contents, never the folder's parents.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

import pandas as pd

from .atomic import write_csv_atomic, write_text_atomic
from .errors import EmofuseError

MARKER = "run.json"
LOCK = ".lock"
# Entries a run folder written by earlier versions (without run.json) may hold.
_LEGACY_ENTRIES = re.compile(r"^(config\.yaml|audit\.json|summary(\.partial)?\.json|results\.md|confusion\.png|"
                             r"report\.(html|md)|fold_\d+|\.lock|\..*\.tmp|\.cam_.*\.png|lightning_logs)$")
# The manifest columns a run's folds and labels depend on (the text column is added for text models).
FINGERPRINT_COLUMNS = ["utt_id", "speaker", "session", "gender", "label", "audio_sha1"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# Set for `emofuse train` processes that `cv --jobs` starts: the pid of the parent holding the run lock.
PARENT_LOCK_ENV = "EMOFUSE_RUN_LOCK_PID"


class RunInUse(EmofuseError):
    """Another live process holds the run folder (or one of its folds)."""


def check_run_name(name: str) -> str:
    """A run name becomes a folder under ``runs/``: one plain path component, nothing that climbs out."""
    name = str(name)
    if not _NAME.match(name) or name in (".", ".."):
        raise EmofuseError(f"run name {name!r} is not a plain folder name; use letters, digits, '.', '_', '+' or '-' "
                           "(e.g. name=resnet18_lr3e-4), or give the folder with --out")
    return name


class RunLock:
    """An advisory lock on a file (``flock``): held while this process lives, gone when it dies.

    A lock file left behind by a killed process is no lock (the kernel drops ``flock`` locks with
    the process), so there is nothing stale to recover by hand. The holder writes who it is into
    the file, so a refused process can say who holds it. Locks are re-entrant within a process.
    """

    _held: dict[str, tuple["RunLock", int]] = {}

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, command: str | None = None, shared: bool = False, what: str | None = None) -> "RunLock":
        key = str(self.path.resolve())
        if key in RunLock._held:  # this process holds it already
            lock, n = RunLock._held[key]
            RunLock._held[key] = (lock, n + 1)
            return lock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunInUse(f"{what or self.path.parent} is in use by {self.holder()}; wait for it to finish or stop it, "
                           "then run the command again (or use another --out)") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": command or " ".join(["emofuse", *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        RunLock._held[key] = (self, 1)
        return self

    def release(self) -> None:
        key = str(self.path.resolve())
        lock, n = RunLock._held.get(key, (self, 1))
        if n > 1:
            RunLock._held[key] = (lock, n - 1)
            return
        RunLock._held.pop(key, None)
        if lock._fd is not None:
            os.close(lock._fd)  # closing drops the flock
            lock._fd = None

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if not info.get("pid"):
            return "another process"
        return (f"pid {info['pid']} on {info.get('host', '?')} (running '{info.get('command', '?')}' since "
                f"{info.get('since', '?')})")

    @staticmethod
    def held_by_parent(path: Path) -> bool:
        """True in an `emofuse train` process that `cv --jobs` started while it holds ``path``."""
        pid = os.environ.get(PARENT_LOCK_ENV)
        if not pid or int(pid) != os.getppid():
            return False
        try:
            return int(json.loads(path.read_text()).get("pid", -1)) == int(pid)
        except (OSError, ValueError):
            return False


def manifest_table(df: pd.DataFrame, text_column: str | None = None) -> pd.DataFrame:
    """The manifest columns a run depends on, sorted by utt_id."""
    cols = FINGERPRINT_COLUMNS + ([text_column] if text_column and text_column in df.columns else [])
    return df[cols].astype(str).sort_values("utt_id").reset_index(drop=True)


def fingerprint(table: pd.DataFrame, classes: list[str]) -> str:
    h = hashlib.sha1(json.dumps({"classes": classes, "columns": list(table.columns)}).encode())
    h.update(table.to_csv(index=False).encode())
    return h.hexdigest()


def describe_change(old: pd.DataFrame, new: pd.DataFrame) -> str:
    """'2 rows removed (first: x), 1 relabelled (y: sad -> happy)...' for two manifest tables."""
    a, b = old.set_index("utt_id"), new.set_index("utt_id")
    removed, added = sorted(set(a.index) - set(b.index)), sorted(set(b.index) - set(a.index))
    parts = []
    if removed:
        parts.append(f"{len(removed)} rows removed (first: {removed[0]})")
    if added:
        parts.append(f"{len(added)} rows added (first: {added[0]})")
    common = sorted(set(a.index) & set(b.index))
    for col in [c for c in a.columns if c in b.columns]:
        diff = [u for u in common if a.at[u, col] != b.at[u, col]]
        if diff:
            u = diff[0]
            parts.append(f"{len(diff)} rows with another {col} (first: {u}: {a.at[u, col]!r} -> {b.at[u, col]!r})")
    return "; ".join(parts) or "class list or columns changed"


def _relative(target: Path, start: Path) -> str:
    """``target`` relative to ``start`` (both resolved), e.g. '../../prepared/ravdess/manifest.csv'."""
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


class RunFolder:
    """The layout of one run folder and the operations on it as a whole."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- layout -------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def marker(self) -> Path:
        return self.path / MARKER

    @property
    def inputs(self) -> Path:
        return self.path / "inputs" / "manifest.csv"

    @property
    def audit(self) -> Path:
        return self.path / "audit.json"

    def fold_dir(self, k: int) -> Path:
        return self.path / f"fold_{k}"

    def checkpoints(self, k: int) -> Path:
        return self.fold_dir(k) / "checkpoints"

    def metrics(self, k: int) -> Path:
        return self.fold_dir(k) / "metrics.json"

    def is_finished(self, k: int) -> bool:
        return self.metrics(k).is_file()

    def has_trained_state(self) -> bool:
        """Whether any fold has trained (a checkpoint or metrics): then the config may not change."""
        return any(self.path.glob("fold_*/metrics.json")) or any(self.path.glob("fold_*/checkpoints/*.ckpt"))

    # -- identity -----------------------------------------------------------------------------
    def is_run(self) -> bool:
        """True for a folder emofuse wrote as a run (``run.json``, or an earlier version's layout)."""
        if self.marker.is_file():
            try:
                return json.loads(self.marker.read_text()).get("kind") == "emofuse run"
            except ValueError:
                return False
        entries = [p.name for p in self.path.iterdir()] if self.path.is_dir() else []
        return bool(entries) and "config.yaml" in entries and all(_LEGACY_ENTRIES.match(e) for e in entries)

    def clear(self) -> None:
        """Delete the run's contents (``--overwrite``), keeping the lock this process holds;
        refuse a folder that is not an emofuse run."""
        if not self.path.exists():
            return
        if not self.path.is_dir() or self.path.is_symlink():
            raise EmofuseError(f"{self.path} is not an emofuse run folder; --overwrite deletes only run folders, "
                               "give another --out")
        entries = [p for p in self.path.iterdir() if p.name != LOCK]
        if entries and not self.is_run():
            shown = ", ".join(sorted(p.name for p in entries)[:4])
            raise EmofuseError(f"{self.path} is not an emofuse run folder (it holds {shown}); --overwrite deletes only "
                               "run folders, give another --out")
        for p in entries:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()

    def lock(self, shared: bool = False) -> RunLock:
        """Take the run's lock (exclusive for `cv`, shared for `train --fold K`)."""
        lock = RunLock(self.path / LOCK)
        if RunLock.held_by_parent(lock.path):
            return lock  # `cv --jobs` holds it for this child
        return lock.acquire(shared=shared, what=f"run folder {self.path}")

    def lock_fold(self, k: int) -> RunLock:
        return RunLock(self.fold_dir(k) / LOCK).acquire(what=f"fold {k} of {self.path}")

    # -- inputs -------------------------------------------------------------------------------
    def check_inputs(self, table: pd.DataFrame, classes: list[str], manifest_path: Path) -> str | None:
        """Compare the manifest with the one the run began with; raise when it changed.

        Returns None when they match, or a note for a run of an earlier version that recorded
        no fingerprint (it is recorded now, and the folds are re-audited against it).
        """
        fp = fingerprint(table, classes)
        if self.marker.is_file():
            old = json.loads(self.marker.read_text())
            if old.get("manifest_fingerprint") == fp:
                return None
            detail = "class list or columns changed"
            if self.inputs.is_file():
                before = pd.read_csv(self.inputs, dtype=str, keep_default_na=False)
                if list(before.columns) == list(table.columns):
                    detail = describe_change(before, table)
            raise EmofuseError(f"{manifest_path} changed since run {self.path} began ({detail}); its folds and finished "
                               "results rest on the old manifest: start a new run with --out NEW_FOLDER, or --overwrite")
        self.record_inputs(table, classes, manifest_path)
        return "run of an earlier version: manifest fingerprint recorded now"

    def manifest_path(self, recorded: str | None = None) -> tuple[Path | None, str]:
        """The manifest this run was made from, found again after the run folder (and the prepared
        corpus with it) moved or from another working directory: the path run.json records relative
        to the run folder first, then its absolute path, then ``recorded`` (a summary's, for runs of
        earlier versions). Returns (manifest CSV, how it was found) or (None, what was tried)."""
        from .manifest import resolve_manifest_path

        meta = {}
        if self.marker.is_file():
            try:
                meta = json.loads(self.marker.read_text())
            except ValueError:
                meta = {}
        tried = []
        for how, value in (("path relative to the run folder", meta.get("manifest_relative")),
                           ("absolute path in run.json", meta.get("manifest")), ("path in summary.json", recorded)):
            if not value:
                continue
            p = resolve_manifest_path(self.path / value if how.startswith("path relative") else Path(value))
            if p.is_file():
                return p, f"{how} ({value})"
            tried.append(str(p))
        return None, ("no manifest recorded" if not tried else "not found at " + " or ".join(dict.fromkeys(tried)))

    def record_inputs(self, table: pd.DataFrame, classes: list[str], manifest_path: Path) -> None:
        from . import __version__

        self.inputs.parent.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(table, self.inputs)
        write_text_atomic(self.marker, json.dumps({
            "kind": "emofuse run", "emofuse_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "manifest": str(manifest_path.resolve()), "manifest_relative": _relative(manifest_path, self.path),
            "manifest_fingerprint": fingerprint(table, classes),
            "fingerprint_columns": list(table.columns), "classes": classes}, indent=2))

    # -- folds and their checkpoints (for inference, export, explain) ---------------------------
    def folds(self) -> list[int]:
        """The fold numbers that have a folder here, in order."""
        found = (re.fullmatch(r"fold_(\d+)", p.name) for p in self.path.glob("fold_*") if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def fold_of(self, folder: str | Path) -> int | None:
        """The fold number whose folder ``folder`` is, or None."""
        return next((k for k in self.folds() if self.fold_dir(k).resolve() == Path(folder).resolve()), None)

    def best_checkpoint(self, k: int) -> Path:
        """Fold ``k``'s selected checkpoint: the one its ``metrics.json`` names (a path inside the
        run), else ``checkpoints/best.ckpt``. It may not exist (an unfinished fold)."""
        rel = None
        if self.is_finished(k):
            try:
                rel = json.loads(self.metrics(k).read_text()).get("checkpoint")
            except (ValueError, AttributeError):
                raise EmofuseError(f"{self.metrics(k)}: not a metrics file (invalid JSON); remove the fold or train it "
                                   "again") from None
            if rel is not None and not isinstance(rel, str):
                raise EmofuseError(f"{self.metrics(k)}: 'checkpoint' must be a path inside the run, not {type(rel).__name__}")
        return self.path / rel if rel else self.checkpoints(k) / "best.ckpt"
