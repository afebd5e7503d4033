"""The real commands on a tiny synthetic corpus: every artefact, resuming, refusing to overwrite, DDP."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import TINY, run_cli


def test_cv_writes_every_artefact(synth_manifest, tmp_path):
    run = tmp_path / "run"
    r = run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "mean" in r.stdout and "Macro-F1" in r.stdout and str(run) in r.stdout
    for name in ("config.yaml", "audit.json", "summary.json", "results.md", "confusion.png"):
        assert (run / name).is_file(), name
    audit = json.loads((run / "audit.json").read_text())
    assert audit["passed"] and len(audit["folds"]) == 5 and "validation speakers" in audit["guarantees"]["model_selection"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and summary["n_folds"] == 5 and summary["modalities"] == ["audio"]
    for key in ("macro_f1", "ua", "wa"):
        assert 0 <= summary[key]["mean"] <= 1 and summary[key]["std"] >= 0 and len(summary[key]["per_fold"]) == 5
    assert set(summary["per_class_f1"]) == {"angry", "happy", "sad", "neutral"}
    assert sum(map(sum, summary["confusion"])) == len(pd.read_csv(synth_manifest / "manifest.csv"))
    for k in range(5):
        fold = run / f"fold_{k}"
        for name in ("split.csv", "audit.json", "norm.json", "predictions.csv", "metrics.json", "confusion.png",
                     "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
            assert (fold / name).is_file(), f"fold_{k}/{name}"
        assert list((fold / "tb").glob("events.out.tfevents.*"))
        preds = pd.read_csv(fold / "predictions.csv")
        split = pd.read_csv(fold / "split.csv")
        assert set(preds["utt_id"]) == set(split.loc[split["part"] == "test", "utt_id"])
        assert {"p_angry", "p_happy", "p_sad", "p_neutral"} <= set(preds.columns)
        assert (preds.filter(like="p_").sum(1) - 1).abs().max() < 1e-3
        metrics = json.loads((fold / "metrics.json").read_text())
        assert metrics["test"]["n"] == len(preds) and metrics["monitor"] == "val/macro_f1"
        norm = json.loads((fold / "norm.json").read_text())
        assert norm["fitted_on"] == "train" and norm["items"] == (split["part"] == "train").sum()

    # A finished run is kept: the same command trains nothing, another config is refused.
    again = run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--out", str(run))
    assert again.returncode == 0 and "finished run, kept" in again.stderr
    assert "epoch 0" not in again.stderr
    other = run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "train.lr=0.5", "--out", str(run))
    assert other.returncode == 2 and "another config" in other.stderr and "train.lr" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_each_model_config_trains_one_fold(synth_manifest, tmp_path):
    for name, small in (("resnet18", ["model.base_channels=8", "train.channels_last=true"]),
                        ("audio_transformer", ["model.dim=16", "model.depth=1", "model.heads=2", "train.mixup_alpha=0.4"])):
        r = run_cli("train", name, "--fold", "2", f"data.manifest={synth_manifest}", "train.max_epochs=1",
                    "data.feature_workers=1", *small, "--out", str(tmp_path / name))
        assert r.returncode == 0, r.stderr[-2000:]
        assert "fold 2: test Macro-F1" in r.stdout
        assert (tmp_path / name / "fold_2" / "metrics.json").is_file()
        assert not (tmp_path / name / "fold_0" / "metrics.json").exists()


def test_killed_run_resumes_without_redoing_finished_folds(synth_manifest, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "emofuse", "cv", "demo", f"data.manifest={synth_manifest}", *TINY,
            "train.max_epochs=6", "train.early_stopping_patience=null", "--out", str(run)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    last = run / "fold_1" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # no clean shutdown: as a power cut or an OOM kill would do
    proc.wait()
    assert (run / "fold_0" / "metrics.json").is_file() and last.is_file()
    assert not (run / "fold_1" / "metrics.json").exists()
    fold0 = (run / "fold_0" / "metrics.json").stat().st_mtime_ns
    done = run_cli(*args[3:])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fold 0: finished earlier, kept" in done.stderr
    assert "fold 1: resuming from" in done.stderr
    assert (run / "fold_0" / "metrics.json").stat().st_mtime_ns == fold0
    assert json.loads((run / "summary.json").read_text())["complete"]
    assert json.loads((run / "fold_1" / "metrics.json").read_text())["epochs_trained"] >= 5


@pytest.mark.slow
def test_ddp_two_cpu_processes(synth_manifest, tmp_path):
    run = tmp_path / "ddp"
    r = run_cli("train", "demo", "--fold", "0", f"data.manifest={synth_manifest}", *TINY, "train.max_epochs=2",
                "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--out", str(run), timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    metrics = json.loads((run / "fold_0" / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 2 and metrics["test"]["n"] > 0
    assert "gloo" in r.stderr.lower() or "distributed" in r.stderr.lower() or "ddp" in r.stderr.lower()


def test_parallel_folds_as_processes(synth_manifest, tmp_path):
    run = tmp_path / "par"
    r = run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--jobs", "2", "--folds", "0,1", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "started in a separate process" in r.stderr
    assert (run / "fold_0" / "metrics.json").is_file() and (run / "fold_1" / "metrics.json").is_file()
    assert json.loads((run / "summary.partial.json").read_text())["folds_done"] == [0, 1]


def test_cli_help_and_one_line_errors(tmp_path):
    r = run_cli("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("prepare", "cv", "train", "demo", "synth", "folds"))
    for cmd in ("prepare", "cv", "train", "demo", "synth", "folds", "features"):
        h = run_cli(cmd, "--help")
        assert h.returncode == 0 and "examples:" in h.stdout, cmd
    bad = run_cli("prepare", "ravdess", str(tmp_path / "missing"), "--out", str(tmp_path / "m"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "corpus folder not found" in bad.stderr
    nomani = run_cli("cv", "demo", "--out", str(tmp_path / "r"))
    assert nomani.returncode == 2 and "data.manifest" in nomani.stderr and "Traceback" not in nomani.stderr
    unknown = run_cli("cv", "demo", f"data.manifest={tmp_path}", "model.name=vgg", "--out", str(tmp_path / "r2"))
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
