"""Which folds run, in which process, in what order: in turn in this process, or as separate
``emofuse train --fold K`` processes, ``jobs`` at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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


def _run_parallel(ctx: RunContext, pending: list[int], jobs: int) -> None:
    """Folds as separate `emofuse train` processes, ``jobs`` at a time (threads split between them)."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # The children train inside this process's run lock (they check that it is their parent's).
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **{PARENT_LOCK_ENV: str(os.getpid())})
    running: list[tuple[int, subprocess.Popen]] = []
    queue = list(pending)
    failed = []
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
    if failed:
        raise EmofuseError(f"folds {failed} failed; see {ctx.run_dir}/fold_K/train.log, then re-run the same command to resume")



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
