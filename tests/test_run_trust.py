"""Run-folder trust (issue #16): a failed audit stays failed, a changed manifest is refused, resume
continues from the last finished epoch with the same result, --overwrite deletes only emofuse runs,
one process per run folder, atomic and checked checkpoints, validation before anything is written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from conftest import TINY, run_cli, tone


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("emofuse: error:")]
    assert len(lines) == 1, r.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def leaky_manifest(tmp_path_factory) -> Path:
    """A csv corpus of 5 speakers where speaker s5's files are speaker s1's, copied byte for byte."""
    root = tmp_path_factory.mktemp("leaky") / "corpus"
    rows = []
    for s in range(1, 5):
        for i, lab in enumerate(["angry", "happy", "sad", "neutral"] * 2):
            p = root / f"s{s}" / f"u{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, tone(0.8, 16000, 120 + 30 * (i % 4) + 7 * s, seed=s * 10 + i), 16000)
            rows.append({"path": p.relative_to(root).as_posix(), "label": lab, "speaker": f"s{s}",
                         "gender": "f" if s % 2 else "m"})
    shutil.copytree(root / "s1", root / "s5")
    rows += [{**r, "path": r["path"].replace("s1/", "s5/"), "speaker": "s5", "gender": "m"}
             for r in rows if r["speaker"] == "s1"]
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    out = root.parent / "manifest"
    from emofuse.prepare import prepare

    prepare("csv", root, out, workers=1)
    return out


def test_failed_audit_stays_failed_when_run_again(leaky_manifest, tmp_path):
    run = tmp_path / "run"
    args = ["cv", "demo", f"data.manifest={leaky_manifest}", *TINY, "--out", str(run)]
    for _ in range(2):
        r = run_cli(*args)
        line = one_line_error(r)
        assert "leak" in line.lower()
        assert not (run / "summary.json").exists() and not (run / "summary.partial.json").exists()
        assert not list(run.glob("fold_*/metrics.json"))
    # A fold trained on its own is refused just the same.
    r = run_cli("train", "demo", "--fold", "0", f"data.manifest={leaky_manifest}", *TINY, "--out", str(run))
    one_line_error(r)
    assert not list(run.glob("fold_*/metrics.json"))


def _copy_manifest(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cache"))
    meta = json.loads((dst / "prepare.json").read_text())
    meta["root"] = str(Path(json.loads((src / "prepare.json").read_text())["root"]))
    (dst / "prepare.json").write_text(json.dumps(meta))
    return dst


def test_changed_manifest_is_refused(synth_manifest, tmp_path):
    manifest = _copy_manifest(synth_manifest, tmp_path / "manifest")
    run = tmp_path / "run"
    args = ["cv", "demo", f"data.manifest={manifest}", *TINY, "--out", str(run)]
    r = run_cli(*args, "--folds", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_csv(manifest / "manifest.csv", dtype=str, keep_default_na=False)
    relabelled = df.copy()
    relabelled.loc[0, "label"] = "sad" if df.loc[0, "label"] != "sad" else "happy"
    relabelled.to_csv(manifest / "manifest.csv", index=False)
    line = one_line_error(run_cli(*args))
    assert "manifest" in line and "changed" in line and "--out" in line
    moved = df.copy()
    moved.loc[0, "speaker"] = df.loc[df["speaker"] != df.loc[0, "speaker"], "speaker"].iloc[0]
    moved.to_csv(manifest / "manifest.csv", index=False)
    one_line_error(run_cli(*args))
    df.drop(index=3).to_csv(manifest / "manifest.csv", index=False)  # a deleted row: no KeyError traceback
    one_line_error(run_cli(*args))
    assert not list(run.glob("fold_[1-4]/metrics.json"))
    df.to_csv(manifest / "manifest.csv", index=False)  # restored: the run goes on
    r = run_cli(*args, "--folds", "1")
    assert r.returncode == 0, r.stderr[-3000:]


class _Stop(RuntimeError):
    pass


def _stop_after(epoch: int):
    import lightning as L

    class StopAfter(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            if trainer.current_epoch > epoch:
                raise _Stop(f"stopped before epoch {trainer.current_epoch}")

    return StopAfter()


def test_resume_continues_from_last_epoch_with_the_same_result(synth_manifest, tmp_path):
    from emofuse.config import load_config
    from emofuse.training.run import open_run, train_fold

    overrides = [f"data.manifest={synth_manifest}", *TINY, "train.max_epochs=4", "train.early_stopping_patience=null",
                 "train.deterministic=true", "model.dropout=0.3"]
    cfg = load_config("demo", overrides)
    whole = train_fold(open_run(cfg, tmp_path / "whole"), 1, progress=False)

    ctx = open_run(cfg, tmp_path / "resumed")
    with pytest.raises(_Stop):
        train_fold(ctx, 1, progress=False, callbacks=[_stop_after(1)])
    last = tmp_path / "resumed" / "fold_1" / "checkpoints" / "last.ckpt"
    import torch

    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1  # the last finished epoch
    resumed = train_fold(open_run(cfg, tmp_path / "resumed"), 1, progress=False)
    assert resumed["epochs_trained"] == whole["epochs_trained"]
    for part in ("val", "test"):
        assert resumed[part] == whole[part], part
    a = pd.read_csv(tmp_path / "whole" / "fold_1" / "predictions.csv")
    b = pd.read_csv(tmp_path / "resumed" / "fold_1" / "predictions.csv")
    pd.testing.assert_frame_equal(a, b)


def test_overwrite_deletes_only_emofuse_runs(synth_manifest, tmp_path):
    manifest = _copy_manifest(synth_manifest, tmp_path / "data")
    line = one_line_error(run_cli("cv", "demo", f"data.manifest={manifest}", *TINY, "--out", str(manifest), "--overwrite"))
    assert "not an emofuse run folder" in line
    assert (manifest / "manifest.csv").is_file() and (manifest / "prepare.json").is_file()
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("keep me")
    for name in ("..", ".", "../x", str(tmp_path / "x"), "a/b"):  # an absolute name too
        r = run_cli("cv", "demo", f"data.manifest={manifest}", *TINY, f"name={name}", "--overwrite", cwd=work)
        line = one_line_error(r)
        assert "name" in line
    assert (work / "precious.txt").read_text() == "keep me"


def test_second_process_on_a_run_folder_is_refused(synth_manifest, tmp_path):
    from emofuse.runfolder import RunLock

    run = tmp_path / "run"
    run.mkdir()
    holder = RunLock(run / ".lock").acquire(command="emofuse cv test-holder")
    try:
        line = one_line_error(run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--out", str(run)))
        assert f"pid {os.getpid()}" in line and "in use" in line
        assert not (run / "config.yaml").exists()
    finally:
        holder.release()
    # A lock left by a process that died is no lock: the run goes on.
    dead = subprocess.run([sys.executable, "-c", "import os, sys; sys.path.insert(0, 'src'); "
                           "from emofuse.runfolder import RunLock; RunLock(sys.argv[1]).acquire(command='dead'); os._exit(0)",
                           str(run / ".lock")], cwd=Path(__file__).resolve().parents[1])
    assert dead.returncode == 0 and (run / ".lock").is_file()
    r = run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--folds", "0", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list(run.glob("fold_0/checkpoints/*-v1.ckpt"))


def test_corrupt_checkpoint_is_set_aside(synth_manifest, tmp_path):
    run = tmp_path / "run"
    args = ["train", "demo", "--fold", "0", f"data.manifest={synth_manifest}", *TINY, "--out", str(run)]
    ckdir = run / "fold_0" / "checkpoints"
    ckdir.mkdir(parents=True)
    (ckdir / "last.ckpt").write_bytes(b"PK\x03\x04 truncated by a full disk")
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "corrupt" in r.stderr and "set aside" in r.stderr
    assert list(ckdir.glob("last.ckpt.corrupt*")) and (run / "fold_0" / "metrics.json").is_file()


def test_checkpoints_are_written_atomically(tmp_path):
    import torch

    from emofuse.training.checkpointing import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "ck" / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1

    class Full(OSError):
        pass

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    orig = torch.save
    torch.save = boom
    try:
        with pytest.raises(OSError):
            io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    finally:
        torch.save = orig
    assert torch.load(path, weights_only=True)["epoch"] == 1  # the old checkpoint, whole
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_invalid_config_writes_nothing_and_the_fixed_command_runs(synth_manifest, tmp_path):
    run = tmp_path / "run"
    base = ["cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--folds", "0", "--out", str(run)]
    line = one_line_error(run_cli(*base, "model.widht=8"))
    assert "widht" in line
    assert not (run / "config.yaml").exists()
    one_line_error(run_cli("cv", "demo", f"data.manifest={tmp_path / 'nope'}", *TINY, "--out", str(run)))
    assert not (run / "config.yaml").exists()
    r = run_cli(*base)
    assert r.returncode == 0, r.stderr[-3000:]


def test_failed_audit_gets_no_report_and_no_compare_row(tmp_path):
    from emofuse.report import compare_runs, write_report
    from emofuse.splits import LeakageError

    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"model": "x", "per_fold": [], "n_folds": 1}))
    for audit in (None, {"passed": False}):
        if audit is not None:
            (run / "audit.json").write_text(json.dumps(audit))
        with pytest.raises(LeakageError, match="audit"):
            write_report(run, cams=0)
        # compare lists it under "Not ranked" with the reason, and shows none of its numbers
        table = compare_runs([run])
        assert f"| {run} | {'audit failed' if audit else 'audit missing'} |" in table and "## Group" not in table
    assert not (run / "report.html").exists()
