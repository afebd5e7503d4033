"""Which folds run, in which process, in what order: in turn in this process, or as separate
``emofuse train --fold K`` processes, ``jobs`` at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

from ..errors import EmofuseError
from ..runfolder import PARENT_LOCK_ENV
from ..summary import summarize_run
from .fold import train_fold
from .lifecycle import RunContext, is_primary_process


def run_cv(ctx: RunContext, folds: list[int] | None = None, jobs: int = 1, progress: bool = True,
           config_arg: str | None = None) -> dict | None:
    """Train every (selected) fold, then summarise. Finished folds are skipped."""
    todo = folds if folds is not None else list(range(len(ctx.folds)))
    pending = [k for k in todo if not (ctx.run_dir / f"fold_{k}" / "metrics.json").is_file()]
    for k in sorted(set(todo) - set(pending)):
        print(f"fold {k}: finished earlier, kept", file=sys.stderr)
    if jobs > 1 and len(pending) > 1:
        _run_parallel(ctx, pending, jobs)
    else:
        train_with_progress(ctx, pending, progress)
    if not is_primary_process():
        return None
    return summarize_run(ctx)


class _Terminated(KeyboardInterrupt):
    """SIGTERM reached a parallel CV's parent: handled as Ctrl-C is, after its fold processes stopped."""


@contextmanager
def _sigterm_as_interrupt():
    """While the block runs, SIGTERM raises ``_Terminated`` instead of killing this process on the
    spot (the default), so the fold processes it started can be stopped first (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_parallel(ctx: RunContext, pending: list[int], jobs: int) -> None:
    """Folds as separate `emofuse train` processes, ``jobs`` at a time (threads split between them).

    On SIGTERM (``kill``, a batch scheduler's end of job) or Ctrl-C, the parent passes SIGTERM on to
    the fold processes still running, waits for them (each stops at the end of its epoch, keeping
    ``last.ckpt``, or at once outside training), then raises ``KeyboardInterrupt``: the command ends
    with the line that resumes the run, and no fold process outlives it."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # The children train inside this process's run lock (they check that it is their parent's).
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **{PARENT_LOCK_ENV: str(os.getpid())})
    running: list[tuple[int, subprocess.Popen]] = []
    queue = list(pending)
    failed = []
    with _sigterm_as_interrupt():
        try:
            _schedule(ctx, queue, running, failed, jobs, env)
        except KeyboardInterrupt as exc:
            _stop(ctx, running, signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT)
            raise
    if failed:
        raise EmofuseError(f"folds {failed} failed; see {ctx.run_dir}/fold_K/train.log, then re-run the same command to resume")


def _stop(ctx: RunContext, running: list, sig: int) -> None:
    """Pass ``sig`` on to the fold processes still running and wait for each to end. SIGINT stops a
    fold at once (a terminal's Ctrl-C has reached them already; it changes nothing then); a fold
    that ignores it (started from a shell that ignores SIGINT) gets SIGTERM after 30 s. SIGTERM
    stops a fold at the end of the epoch in progress."""
    alive = [(k, p) for k, p in running if p.poll() is None]
    for _, proc in alive:
        proc.send_signal(sig)
    if alive:
        print(f"waiting for fold(s) {', '.join(str(k) for k, _ in alive)} to stop"
              + (" at the end of their epoch" if sig == signal.SIGTERM else ""), file=sys.stderr)
    for k, proc in alive:
        try:
            proc.wait(timeout=None if sig == signal.SIGTERM else 30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        kept = (ctx.run_dir / f"fold_{k}" / "checkpoints" / "last.ckpt").is_file()
        print(f"fold {k}: stopped (exit {proc.returncode}){'; its last.ckpt is kept' if kept else ''}", file=sys.stderr)


def _schedule(ctx: RunContext, queue: list[int], running: list, failed: list[int], jobs: int, env: dict) -> None:
    """Start fold processes from ``queue``, ``jobs`` at a time, until all have ended (``running``
    and ``failed`` are the caller's, so it can stop what is still running)."""
    while queue or running:
        while queue and len(running) < jobs:
            k = queue.pop(0)
            cmd = [sys.executable, "-m", "emofuse", "train", str(ctx.run_dir / "config.yaml"), "--fold", str(k),
                   "--out", str(ctx.run_dir), "--no-progress"]
            log = open(ctx.run_dir / f"fold_{k}" / "train.log", "a")
            print(f"fold {k}: started in a separate process (log: {log.name})", file=sys.stderr)
            running.append((k, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(1.0)
        for k, proc in list(running):
            if proc.poll() is not None:
                running.remove((k, proc))
                if proc.returncode != 0:
                    failed.append(k)
                print(f"fold {k}: {'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'}", file=sys.stderr)



def train_with_progress(ctx: RunContext, folds: list[int], progress: bool = True) -> dict | None:
    """Train ``folds`` in turn in this process, one line per epoch with the overall progress and
    the time left (``CVClock``). Returns the last fold's metrics."""
    from .callbacks import CVClock

    clock = CVClock(folds, int(ctx.cfg["train"]["max_epochs"]))
    result = None
    for k in folds:
        print(f"fold {k} ({folds.index(k) + 1}/{len(folds)}): test = {', '.join(ctx.folds[k].test_groups)}", file=sys.stderr)
        result = train_fold(ctx, k, progress, callbacks=[clock.fold_log(k)])
    return result
