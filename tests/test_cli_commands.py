"""The CLI as thin handlers over library calls: a dispatch table, help texts from the registries,
`features` through the library, `--dry-run`, progress lines with the time left, quiet Lightning,
and Ctrl-C ending with one line that says how to resume."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

from emofuse import cli
from emofuse.config import list_configs

from conftest import TINY, run_cli


def test_every_command_has_one_handler():
    parser = cli._parser(full_help=False)
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(cli.COMMANDS)


def test_help_lists_come_from_the_registries():
    from emofuse.models import list_models

    r = run_cli("cv", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for name in (c.split("/", 1)[1] for c in list_configs() if c.startswith("experiment/")):
        assert name in text, name  # e.g. whisper_mlp and resnet18_augment, missing from the old hard-coded list
    top = " ".join(run_cli("--help").stdout.split())
    assert all(m in top for m in list_models())


def test_help_does_not_import_the_training_engine():
    """``emofuse --help`` lists the registries (models, front ends, export formats), which import
    torch; it must not also import Lightning and transformers, which took it from 4 s to 16 s."""
    code = ("import sys; from emofuse.cli import _parser; _parser().format_help(); "
            "print(sorted(m for m in ('lightning', 'transformers', 'emofuse.training.module') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


def test_features_command_is_a_library_call(synth_manifest, tmp_path):
    from emofuse.config import load_config
    from emofuse.manifest import read_manifest
    from emofuse.schema import check_config
    from emofuse.training.inputs import cache_features

    cfg = check_config(load_config("default"))
    m = read_manifest(synth_manifest)
    first = cache_features(m, cfg, tmp_path / "cache", workers=1)
    assert f"{len(m.df)} utterances computed, 0 already cached" in first[0]
    r = run_cli("features", str(synth_manifest), "--cache", str(tmp_path / "cache"), "--workers", "1")
    assert r.returncode == 0 and f"0 utterances computed, {len(m.df)} already cached" in r.stdout, r.stderr[-2000:]


def test_dry_run_prints_config_folds_and_estimate_and_writes_no_run(synth_manifest, tmp_path):
    run = tmp_path / "run"
    r = run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--out", str(run), "--dry-run")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "max_epochs: 1" in r.stdout and "# folds: 5 (session), audit passed" in r.stdout
    fold_rows = [ln for ln in r.stdout.splitlines() if ln.endswith("  to train")]
    assert len(fold_rows) == 5 and all("Session" in ln for ln in fold_rows)
    assert "ms per item: one measured training step" in r.stdout
    assert not run.exists()


def _resume_argv(line: str) -> list[str]:
    cmd = shlex.split(line.split("resume with: ", 1)[1])
    assert cmd[0] == "emofuse"
    return [sys.executable, "-m", "emofuse", *cmd[1:]]


def _signal_after_first_epoch(proc: subprocess.Popen, run, epochs: int, signum: int) -> list[str]:
    """Read ``proc``'s stderr until fold 0's first epoch line, wait for the last.ckpt that follows it,
    send ``signum``; the lines read so far."""
    seen, deadline = [], time.time() + 400
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if f"epoch 1/{epochs}" in line:
            while not (run / "fold_0" / "checkpoints" / "last.ckpt").is_file() and time.time() < deadline:
                time.sleep(0.05)
            proc.send_signal(signum)
            break
    return seen


def test_progress_eta_quiet_lightning_and_ctrl_c_resumes(synth_manifest, tmp_path):
    EPOCHS = 40
    run = tmp_path / "run"
    args = [sys.executable, "-m", "emofuse", "cv", "demo", f"data.manifest={synth_manifest}", *TINY,
            f"train.max_epochs={EPOCHS}", "train.early_stopping_patience=0", "--folds", "0", "--out", str(run), "--no-progress"]
    # A suite started as a background job of a non-interactive shell (`cmd &`) has SIGINT ignored, which its
    # children inherit, and Python then never raises KeyboardInterrupt. A caught signal is reset to its
    # default by exec, so catching it here while the child starts gives the child a working Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    finally:
        signal.signal(signal.SIGINT, previous)
    # The run must still be training when the signal lands: EPOCHS tiny epochs leave tens of seconds on a loaded machine.
    seen = _signal_after_first_epoch(proc, run, EPOCHS, signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err[-3000:]
    epoch_line = next(ln for ln in seen if f"epoch 1/{EPOCHS}" in ln)
    assert epoch_line.startswith(f"fold 0 (1/1) epoch 1/{EPOCHS}:") and "elapsed, ~" in epoch_line and "left" in epoch_line
    last = err.strip().splitlines()[-1]
    assert last.startswith("emofuse: interrupted during fold 0;") and "resume with: emofuse cv" in last, err[-2000:]
    assert sum(ln.startswith("emofuse:") for ln in err.splitlines()) == 1
    for noise in ("Traceback", "GPU available", "LOCAL_RANK", "Detected KeyboardInterrupt", "Trainer.fit", "logging interval"):
        assert noise not in err, noise
    assert (run / "fold_0" / "checkpoints" / "last.ckpt").is_file()

    done = subprocess.run(_resume_argv(last) + ["--verbose"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fold 0: resuming from" in done.stderr and f"epoch {EPOCHS}/{EPOCHS}" in done.stderr
    assert "GPU available" in done.stderr  # --verbose gives Lightning's own lines back
    assert (run / "fold_0" / "metrics.json").is_file()


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc)."""
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextmanager
def _process_group(args: list[str]):
    """``Popen(args)`` in a session of its own, killed with everything it started when the block
    ends, so a failing test leaves no training process behind."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_sigterm_from_a_batch_scheduler_stops_after_the_batch_with_the_resume_line(synth_manifest, tmp_path):
    """SLURM and other schedulers end a job with SIGTERM (then SIGKILL after a grace period): the
    fold stops after its batch in progress, keeps the last finished epoch's last.ckpt and prints
    the one line that resumes it."""
    EPOCHS = 8  # the signal lands in epoch 2 or 3
    run = tmp_path / "run"
    args = [sys.executable, "-m", "emofuse", "cv", "demo", f"data.manifest={synth_manifest}", *TINY,
            f"train.max_epochs={EPOCHS}", "train.early_stopping_patience=0", "--folds", "0", "--out", str(run), "--no-progress"]
    with _process_group(args) as proc:
        seen = _signal_after_first_epoch(proc, run, EPOCHS, signal.SIGTERM)
        _, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("emofuse: interrupted during fold 0;") and "resume with: emofuse cv" in last, err[-2000:]
    assert "Traceback" not in err and sum(ln.startswith("emofuse:") for ln in err.splitlines()) == 1
    assert (run / "fold_0" / "checkpoints" / "last.ckpt").is_file() and not (run / "fold_0" / "metrics.json").exists()
    done = subprocess.run(_resume_argv(last), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fold 0: resuming from" in done.stderr and (run / "fold_0" / "metrics.json").is_file()


def test_sigterm_to_a_parallel_cv_stops_its_fold_processes_and_prints_the_resume_line(synth_manifest, tmp_path):
    """``cv --jobs 2`` trains folds in child processes. A SIGTERM sent to the parent alone (``kill PID``)
    used to kill it on the spot, with no message, and leave its children training as orphans."""

    EPOCHS = 8
    run = tmp_path / "run"
    args = [sys.executable, "-m", "emofuse", "cv", "demo", f"data.manifest={synth_manifest}", *TINY,
            f"train.max_epochs={EPOCHS}", "train.early_stopping_patience=0", "--folds", "0,1", "--jobs", "2",
            "--out", str(run), "--no-progress"]
    with _process_group(args) as proc:
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None and not all(
                (run / f"fold_{k}" / "checkpoints" / "last.ckpt").is_file() for k in (0, 1)):
            time.sleep(0.1)
        children = _children(proc.pid)
        assert children, "no fold process was running"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        assert not [c for c in children if _alive(c)], "a fold process outlived the parent"
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("emofuse: interrupted;") and "resume with: emofuse cv" in last, err[-2000:]
    assert "Traceback" not in err
    # no fold process outlives the parent: each stopped and kept its last.ckpt, neither finished
    for k in (0, 1):
        assert "interrupted during fold" in (run / f"fold_{k}" / "train.log").read_text(), k
        assert (run / f"fold_{k}" / "checkpoints" / "last.ckpt").is_file() and not (run / f"fold_{k}" / "metrics.json").exists()
    assert "--folds 0,1 --jobs 2" in last  # resuming from last.ckpt itself: the Ctrl-C and SIGTERM tests above


def test_stopping_fold_processes_holds_signals_while_spawning_and_kills_what_ignores_sigterm(tmp_path):
    import signal as sig
    from types import SimpleNamespace

    import pytest

    from emofuse.training.scheduler import _Signals, _stop, _Terminated

    # a signal while a fold process is being started is held, then raised once it is in `running`
    signals = _Signals()
    signals.spawning = True
    signals(sig.SIGTERM, None)
    signals(sig.SIGINT, None)
    signals.spawning = False
    with pytest.raises(_Terminated):
        signals.release()
    signals.release()  # nothing held any more
    with pytest.raises(KeyboardInterrupt):
        signals(sig.SIGINT, None)

    # SIGTERM ends a plain process; one that ignores it is killed after the limit; neither outlives _stop
    code = "import signal, sys, time; {}; print('ready', flush=True); time.sleep(60)"
    procs = [subprocess.Popen([sys.executable, "-c", code.format(ignore)], stdout=subprocess.PIPE, text=True)
             for ignore in ("pass", "signal.signal(signal.SIGTERM, signal.SIG_IGN)")]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    t0 = time.time()
    _stop(SimpleNamespace(run_dir=tmp_path), list(enumerate(procs)), terminated=True, limit=2.0)
    assert [p.returncode for p in procs] == [-sig.SIGTERM, -sig.SIGKILL] and time.time() - t0 < 30


def test_resume_command_never_overwrites(tmp_path):
    import argparse

    run = tmp_path / "run"
    args = argparse.Namespace(command="cv", folds="0,2", jobs=2, argv=["cv", "demo", "--overwrite", "data.manifest=a b"])
    assert cli.resume_command(args, run) == "emofuse cv demo 'data.manifest=a b'"  # no run yet: the command as typed
    run.mkdir()
    (run / "config.yaml").write_text("name: demo\n")
    assert cli.resume_command(args, run) == f"emofuse cv {run}/config.yaml --folds 0,2 --jobs 2 --out {run}"
