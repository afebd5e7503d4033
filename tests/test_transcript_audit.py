"""Transcript overlap (issue #17): measured per fold, removed by script_disjoint, and reported by subset.

The corpus is the synthetic IEMOCAP layout with ``scripts="shared"``: every session's scripted
dialogue reads one script, improvised utterances say sentences found nowhere else, so the
overlap is known in advance: exactly the scripted test items.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from emofuse.subsets import normalise_text


@pytest.fixture(scope="module")
def scripted_manifest(tmp_path_factory) -> Path:
    from emofuse.prepare import prepare
    from emofuse.synth import SynthSpec, make_synthetic_corpus

    root = tmp_path_factory.mktemp("scripted") / "corpus"
    make_synthetic_corpus(root, SynthSpec(sessions=5, per_class=3, min_seconds=0.8, max_seconds=1.2, scripts="shared", seed=3))
    out = root.parent / "manifest"
    prepare("iemocap", root, out, workers=1)
    return out


def test_normalise_text_folds_case_punctuation_and_space():
    assert normalise_text("Excuse me.") == normalise_text("  excuse   ME!! ") == "excuse me"
    assert normalise_text("I can't believe it") == "i can t believe it"
    assert normalise_text("") == ""


def _ctx(manifest: Path, tmp: Path, *overrides: str):
    from emofuse.config import load_config
    from emofuse.training.run import open_run

    cfg = load_config("demo", [f"data.manifest={manifest}", "data.feature_workers=1", *overrides])
    return open_run(cfg, tmp)


def test_overlap_is_the_scripted_test_items(scripted_manifest, tmp_path):
    ctx = _ctx(scripted_manifest, tmp_path / "run")
    for fold in ctx.folds:
        audit = json.loads((tmp_path / "run" / f"fold_{fold.fold}" / "audit.json").read_text())
        ov = audit["transcript_overlap"]
        scripted = [u for u in fold.test if "_script" in u]
        assert ov["available"] and ov["column"] == "text"
        assert ov["test"]["items"] == len(fold.test)
        assert ov["test"]["seen"] == len(scripted)  # every scripted line occurs in training, no improvised one
        assert ov["test"]["share"] == round(len(scripted) / len(fold.test), 4)
        assert set(ov["test"]["per_class"]) == {"angry", "happy", "sad", "neutral"}
        assert audit["protocol"] == {"name": "standard"} and audit["passed"]
    run_audit = json.loads((tmp_path / "run" / "audit.json").read_text())
    assert run_audit["transcript_overlap"]["level"] == "information"  # an audio model reads no text
    assert "reads no text" in run_audit["transcript_overlap"]["message"]


def test_script_disjoint_leaves_the_lines_out_of_training(scripted_manifest, tmp_path):
    standard = _ctx(scripted_manifest, tmp_path / "std")
    ctx = _ctx(scripted_manifest, tmp_path / "dis", "cv.protocol=script_disjoint")
    df = pd.read_csv(scripted_manifest / "manifest.csv", dtype=str, keep_default_na=False)
    text = dict(zip(df["utt_id"], df["text"].map(normalise_text)))
    for before, fold in zip(standard.folds, ctx.folds):
        held = {text[u] for u in fold.val + fold.test}
        assert not any(text[u] in held for u in fold.train)
        assert fold.val == before.val and fold.test == before.test
        assert fold.protocol["removed_from_train"] == len(before.train) - len(fold.train) > 0
        audit = json.loads((tmp_path / "dis" / f"fold_{fold.fold}" / "audit.json").read_text())
        assert audit["transcript_overlap"]["test"]["seen"] == 0 and audit["transcript_overlap"]["val"]["seen"] == 0
        assert audit["protocol"]["name"] == "script_disjoint"


def test_subset_selection(scripted_manifest, tmp_path):
    ctx = _ctx(scripted_manifest, tmp_path / "impro", "data.subset=improvised")
    assert all("_impro" in u for f in ctx.folds for u in f.train + f.val + f.test)


def test_text_model_gets_a_loud_warning_and_subset_figures(scripted_manifest, tmp_path):
    common = ["cv", "text_mlp", f"data.manifest={scripted_manifest}", "train.max_epochs=2", "data.feature_workers=1"]
    r = run_cli(*common, "--out", str(tmp_path / "std"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WARNING:" in r.stdout and "cv.protocol=script_disjoint" in r.stdout
    summary = json.loads((tmp_path / "std" / "summary.json").read_text())
    assert summary["transcript_overlap"]["level"] == "warning" and summary["protocol"] == "standard"
    subsets = summary["subsets"]
    n = sum(1 for _ in pd.read_csv(scripted_manifest / "manifest.csv").itertuples())
    assert subsets["improvised"]["n"] + subsets["scripted"]["n"] == n
    assert subsets["transcript_seen"]["n"] == subsets["scripted"]["n"]  # known in advance
    assert subsets["transcript_unseen"]["n"] == subsets["improvised"]["n"]
    md = (tmp_path / "std" / "results.md").read_text()
    assert "WARNING" in md and "test subset scripted" in md
    from emofuse.report import write_report

    page, md_path = write_report(tmp_path / "std", cams=0)
    assert "class='warn'>WARNING:" in page.read_text() and "test subset improvised" in md_path.read_text()
    preds = pd.read_csv(tmp_path / "std" / "fold_0" / "predictions.csv")
    assert {"in_improvised", "in_scripted", "in_transcript_seen", "in_transcript_unseen"} <= set(preds.columns)

    r = run_cli(*common, "cv.protocol=script_disjoint", "--out", str(tmp_path / "dis"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WARNING:" not in r.stdout and "protocol: script_disjoint" in r.stdout
    summary = json.loads((tmp_path / "dis" / "summary.json").read_text())
    assert summary["transcript_overlap"]["test_share"] == 0 and "transcript_seen" not in summary["subsets"]


def test_corpus_without_transcripts_says_so(tmp_path):
    from emofuse.subsets import transcript_overlap

    df = pd.DataFrame({"utt_id": ["a", "b"], "label": ["x", "y"], "text": ["", ""]})
    out = transcript_overlap({"train": ["a"], "val": [], "test": ["b"]}, df, None)
    assert out["available"] is False and "no transcripts" in out["note"]
