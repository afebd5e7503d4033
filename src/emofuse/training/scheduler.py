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


class _Signals:
    """SIGTERM and SIGINT in a parallel CV's parent (main thread only): each raises an interrupt
    (``_Terminated``, ``KeyboardInterrupt``) instead of killing the parent on the spot, except while
    a fold process is being started: then it is held and raised once the process is in ``running``,
    so every process started can be stopped."""

    def __init__(self) -> None:
        self.spawning = False
        self.held: type[KeyboardInterrupt] | None = None

    def __call__(self, signum, frame) -> None:
        kind = _Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        if self.spawning:
            self.held = self.held or kind
            return
        raise kind()

    def release(self) -> None:
        """Raise the interrupt held while a process was being started, if any."""
        kind, self.held = self.held, None
        if kind is not None:
            raise kind()


@contextmanager
def _handled(handler, signums=(signal.SIGINT, signal.SIGTERM)):
    """``handler`` for ``signums`` while the block runs (main thread only: elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _run_parallel(ctx: RunContext, pending: list[int], jobs: int) -> None:
    """Folds as separate `emofuse train` processes, ``jobs`` at a time (threads split between them).

    On SIGTERM (``kill``, a batch scheduler's end of job) or Ctrl-C, the parent stops the fold
    processes still running (``_stop``: each ends after its batch in progress and keeps the
    ``last.ckpt`` of its last finished epoch), then raises ``KeyboardInterrupt``: the command ends
    with the line that resumes the run, and no fold process outlives it."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # The children train inside this process's run lock (they check that it is their parent's).
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **{PARENT_LOCK_ENV: str(os.getpid())})
    running: list[tuple[int, subprocess.Popen]] = []
    failed: list[int] = []
    signals = _Signals()
    with _handled(signals):
        try:
            _schedule(ctx, list(pending), running, failed, jobs, env, signals)
        except KeyboardInterrupt as exc:
            _stop(ctx, running, terminated=isinstance(exc, _Terminated))
            if failed:
                print(f"folds {failed} had failed before the interrupt; see {ctx.run_dir}/fold_K/train.log", file=sys.stderr)
            raise
    if failed:
        raise EmofuseError(f"folds {failed} failed; see {ctx.run_dir}/fold_K/train.log, then re-run the same command to resume")


def _wait_all(procs: list, seconds: float, again: list) -> bool:
    """Wait up to ``seconds`` for every process to end; False at once when ``again`` gets a signal."""
    deadline = time.monotonic() + seconds
    while any(p.poll() is None for _, p in procs):
        if again or time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _stop(ctx: RunContext, running: list, terminated: bool, grace: float = 5.0, limit: float = 300.0) -> None:
    """Stop the fold processes still running and wait for each to end.

    After Ctrl-C they are given ``grace`` seconds first, since a terminal's Ctrl-C reaches them
    too; then (and at once after SIGTERM) each still running gets SIGTERM, on which Lightning ends
    training after the batch in progress. One that has not ended ``limit`` seconds later, or when a
    second signal arrives, is killed (its files are written atomically: nothing finished is lost)."""
    alive = [(k, p) for k, p in running if p.poll() is None]
    if not alive:
        return
    again: list[int] = []
    with _handled(lambda signum, frame: again.append(signum)):
        print(f"stopping fold(s) {', '.join(str(k) for k, _ in alive)} after their batch in progress "
              "(a second Ctrl-C kills them)", file=sys.stderr)
        if not terminated:
            _wait_all(alive, grace, again)
        for _, proc in alive:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        if not _wait_all(alive, limit, again):
            for _, proc in alive:
                if proc.poll() is None:
                    proc.kill()
            for _, proc in alive:
                proc.wait()
    for k, proc in alive:
        kept = (ctx.run_dir / f"fold_{k}" / "checkpoints" / "last.ckpt").is_file()
        print(f"fold {k}: stopped (exit {proc.returncode}){'; its last.ckpt is kept' if kept else ''}", file=sys.stderr)


def _schedule(ctx: RunContext, queue: list[int], running: list, failed: list[int], jobs: int, env: dict,
              signals: _Signals) -> None:
    """Start fold processes from ``queue``, ``jobs`` at a time, until all have ended (``running``
    and ``failed`` are the caller's, so it can stop what is still running)."""
    while queue or running:
        while queue and len(running) < jobs:
            k = queue.pop(0)
            cmd = [sys.executable, "-m", "emofuse", "train", str(ctx.run_dir / "config.yaml"), "--fold", str(k),
                   "--out", str(ctx.run_dir), "--no-progress"]
            log = open(ctx.run_dir / f"fold_{k}" / "train.log", "a")
            print(f"fold {k}: started in a separate process (log: {log.name})", file=sys.stderr)
            signals.spawning = True  # a signal now is raised once the process is in `running`
            try:
                running.append((k, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
            finally:
                signals.spawning = False
            signals.release()
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
