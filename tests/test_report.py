"""The run report's title, dataset statistics, audit evidence, provenance, figures, and a run folder
that moved: on copies of the session's trained run (no training here)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import assert_tables_whole, run_cli
from emofuse.report import training_curves, write_report
from emofuse.runfolder import RunFolder


def _copy(run: Path, dst: Path) -> Path:
    shutil.copytree(run, dst, symlinks=True)
    for p in dst.glob("report.*"):
        p.unlink()
    return dst


def _table(md: str, title: str) -> pd.DataFrame:
    """The Markdown table under '## title' as a DataFrame of strings."""
    lines = md.split(f"## {title}\n", 1)[1].lstrip("\n").splitlines()
    rows = [ln for ln in lines[: next((i for i, ln in enumerate(lines) if not ln.startswith("|")), len(lines))]]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]
    return pd.DataFrame(cells[2:], columns=cells[0])


@pytest.fixture(scope="module")
def reported(trained_run, tmp_path_factory):
    """A copy of the trained run with its report (one map per class)."""
    run = _copy(trained_run, tmp_path_factory.mktemp("reported") / "run")
    write_report(run, cams=1)
    return run


def test_provenance_is_recorded_at_training_time(trained_run):
    import lightning
    import torch

    for k in (0, 1):
        rec = json.loads((trained_run / f"fold_{k}" / "provenance.json").read_text())
        metrics = json.loads((trained_run / f"fold_{k}" / "metrics.json").read_text())
        assert rec["fold"] == k and rec["torch"] == torch.__version__ and rec["lightning"] == lightning.__version__
        assert re.fullmatch(r"[0-9a-f]{12}(\+dirty)?|unknown", rec["git_commit"]), rec["git_commit"]
        assert rec["peak_rss_mib"] > 50 and rec["peak_cuda_mib"] is None  # CPU tests: no CUDA peak
        assert rec["wall_seconds"] == metrics["wall_seconds"] > 0 and rec["train_utt_per_s"] > 0
        assert rec["cpu"] and rec["date"][:2] == "20"


def test_git_commit_is_unknown_outside_a_checkout(tmp_path):
    from emofuse.provenance import _git_commit

    assert _git_commit(tmp_path) == "unknown"
    assert _git_commit(tmp_path / "no" / "such" / "folder") == "unknown"


def test_report_title_dataset_statistics_and_audit_evidence(reported):
    md = (reported / "report.md").read_text()
    assert_tables_whole(md)
    summary = json.loads(next(reported.glob("summary*.json")).read_text())
    title = md.splitlines()[0]
    assert title.startswith("# ") and "iemocap" in title and f"model {summary['model']}" in title
    assert "class map " in title and "protocol standard" in title and "speaker-independent CV" in title

    # Items and hours per class add up to the manifest the run was made from.
    manifest = pd.read_csv(Path(summary["manifest"]), dtype=str, keep_default_na=False)
    per_class = _table(md, "Dataset: items, hours and speakers per class").set_index("class")
    for c in summary["classes"]:
        rows = manifest[manifest["label"] == c]
        assert int(per_class.at[c, "items"]) == len(rows)
        assert float(per_class.at[c, "hours"]) == pytest.approx(rows["duration"].astype(float).sum() / 3600, abs=0.006)
    assert int(per_class.at["all", "items"]) == len(manifest)

    # Speakers and their gender per part of each fold, from the fold's split.
    parts = _table(md, "Dataset: each fold's parts")
    split = pd.read_csv(reported / "fold_1" / "split.csv", dtype=str)
    gender = manifest.drop_duplicates("speaker").set_index("speaker")["gender"]
    for part in ("train", "val", "test"):
        row = parts[(parts["fold"] == "1") & (parts["part"] == part)].iloc[0]
        spk = sorted(set(split.loc[split["part"] == part, "speaker"]))
        assert int(row["items"]) == (split["part"] == part).sum() and int(row["speakers"]) == len(spk)
        counts = gender[spk].value_counts()
        assert row["speakers by gender"] == ", ".join(f"{g} {n}" for g, n in sorted(counts.items()))

    # The audit's evidence: validation speakers per fold and every check with its counts.
    audit = json.loads((reported / "audit.json").read_text())
    evidence = _table(md, "Leakage audit: speakers per fold").set_index("fold")
    for f in audit["folds"]:
        assert evidence.at[str(f["fold"]), "validation speakers"] == ", ".join(f["speakers"]["val"])
        assert evidence.at[str(f["fold"]), "test speakers"] == ", ".join(f["speakers"]["test"])
    checks = _table(md, "Leakage audit: overlaps found by each check, per fold").set_index("check")
    fold_checks = json.loads((reported / "fold_0" / "audit.json").read_text())["checks"]
    assert set(checks.index) == set(fold_checks) and "speakers_in_train_and_test" in checks.index
    assert (checks == "0").all().all(), checks


def test_report_run_metadata(reported):
    import torch

    md = (reported / "report.md").read_text()
    meta = _table(md, "Run metadata").set_index("")
    assert meta.at["torch", "value"] == torch.__version__ and meta.at["GPU", "value"] == "none"
    assert meta.at["emofuse version", "value"] and meta.at["CPU", "value"]
    cost = _table(md, "Run cost per fold").set_index("fold")
    walls = [json.loads((reported / f"fold_{k}" / "metrics.json").read_text())["wall_seconds"] for k in (0, 1)]
    assert float(cost.at["total", "wall time (s)"]) == pytest.approx(sum(walls), abs=0.1)
    assert float(cost.at["0", "train utterances / s"]) > 0 and float(cost.at["0", "peak RSS (MiB)"]) > 50
    assert "run metadata" not in md.split("## ")[0].lower(), "nothing skipped for a run with provenance"


def test_report_figures_curves_confusions_and_a_map_per_class(reported):
    page = (reported / "report.html").read_text()
    summary = json.loads(next(reported.glob("summary*.json")).read_text())
    assert "alt='training curves'" in page and "alt='fold 0'" in page and "alt='fold 1'" in page
    maps = re.findall(r"<figcaption>class ([^:]+): ", page)
    assert sorted(maps) == sorted(summary["classes"]), "a map for every class"
    wrong = sorted(set(re.findall(r"class ([^:]+): no correctly predicted test item", page)))
    top = (reported / "report.md").read_text().split("## ")[0]
    for c in summary["classes"]:  # a correctly predicted item when there is one, else said at the top
        right = f"<figcaption>class {c}: " in page and re.search(rf"class {c}: [^<]*true {c}, predicted {c};", page)
        assert bool(right) != (c in wrong), c
        assert (f"class {c}: no correctly predicted test item" in top) == (c in wrong)


def test_curves_are_read_by_global_step_across_resumed_sessions(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "run" / "fold_3" / "tb"
    for steps in ((4, 8, 12), (12, 16, 20)):  # a second session resumes at step 12 and re-logs it
        w = SummaryWriter(str(tb))
        for s in steps:
            w.add_scalar("val/macro_f1", s / 100, s)
        w.close()
    curves = training_curves(tmp_path / "run")
    assert [s for s, _ in curves[3]["val/macro_f1"]] == [4, 8, 12, 16, 20]


def test_report_of_a_run_without_provenance_says_so(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path / "old")
    for p in run.glob("fold_*/provenance.json"):
        p.unlink()
    write_report(run, cams=0)
    md = (run / "report.md").read_text()
    top = md.split("## ")[0]
    assert "run metadata (versions, commit, device, peak memory): not recorded (run made by an older emofuse)" in top
    assert "class activation maps (HTML): left out (--cams 0)" in top
    cost = _table(md, "Run cost per fold").set_index("fold")
    assert cost.at["0", "peak RSS (MiB)"] == "not recorded" and float(cost.at["0", "wall time (s)"]) > 0


def _moved(trained_run: Path, synth_manifest: Path, tmp_path: Path) -> Path:
    """The run and its prepared corpus made in tmp/orig (runs/r and prepared/), then moved to tmp/moved."""
    orig = tmp_path / "orig"
    shutil.copytree(synth_manifest, orig / "prepared", ignore=shutil.ignore_patterns("cache"))
    run = _copy(trained_run, orig / "runs" / "r")
    meta = json.loads((run / "run.json").read_text())
    RunFolder(run).record_inputs(pd.read_csv(run / "inputs" / "manifest.csv", dtype=str, keep_default_na=False),
                                 meta["classes"], orig / "prepared" / "manifest.csv")
    for p in run.glob("summary*.json"):
        p.write_text(json.dumps({**json.loads(p.read_text()), "manifest": str(orig / "prepared" / "manifest.csv")}))
    (tmp_path / "moved").parent.mkdir(exist_ok=True)
    orig.rename(tmp_path / "moved")
    return tmp_path / "moved" / "runs" / "r"


def test_run_json_records_the_manifest_absolute_and_relative(trained_run, synth_manifest):
    meta = json.loads((trained_run / "run.json").read_text())
    assert Path(meta["manifest"]).is_absolute()
    assert (trained_run / meta["manifest_relative"]).resolve() == (synth_manifest / "manifest.csv").resolve()


def test_moved_run_reported_from_another_directory_finds_its_manifest(trained_run, synth_manifest, tmp_path):
    run = _moved(trained_run, synth_manifest, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rel = Path("..") / "moved" / "runs" / "r"
    r = run_cli("report", str(rel), "--cams", "1", cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-2000:]
    md = (run / "report.md").read_text()
    assert "found by the path relative to the run folder" in md and "not found" not in md.split("## ")[0]
    per_class = _table(md, "Dataset: items, hours and speakers per class")
    assert (per_class["hours"].astype(float) > 0).all()
    assert "<figcaption>class " in (run / "report.html").read_text(), "the maps found the audio"


def test_lost_manifest_falls_back_to_the_runs_copy_and_says_so_at_the_top(trained_run, synth_manifest, tmp_path):
    run = _moved(trained_run, synth_manifest, tmp_path)
    shutil.rmtree(tmp_path / "moved" / "prepared")
    r = run_cli("report", str(run), "--cams", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    md = (run / "report.md").read_text()
    top = md.split("## ")[0]
    assert "manifest not found at" in top and "the run's copy inputs/manifest.csv" in top
    assert "hours per class and part" in top and "class activation maps skipped" in top
    per_class = _table(md, "Dataset: items, hours and speakers per class")
    assert (per_class["hours"] == "n/a").all() and int(per_class.set_index("class").at["all", "items"]) > 0
    page = (run / "report.html").read_text()
    assert "class='skipped'" in page and page.index("class='skipped'") < page.index("<table>")
