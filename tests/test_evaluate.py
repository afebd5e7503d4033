"""Cross-corpus evaluation: a run trained on one manifest applied to another, by class name."""

import json
import shutil

import pandas as pd
import pytest
import soundfile as sf

from emofuse.errors import EmofuseError
from emofuse.evaluate import align_classes, evaluate
from emofuse.manifest import read_manifest
from emofuse.prepare import prepare

from conftest import run_cli, tone


@pytest.fixture(scope="module")
def other_manifest(synth_corpus, synth_manifest, tmp_path_factory):
    """A second corpus (csv layout, other voices) labelled angry / sad / calm, plus one clip copied
    byte for byte from the training corpus."""
    base = tmp_path_factory.mktemp("other")
    root = base / "corpus"
    rows = []
    for i, (label, f0) in enumerate([("angry", 300), ("angry", 320), ("sad", 90), ("sad", 95), ("calm", 140), ("calm", 150)]):
        path = f"clips/x{i}.wav"
        (root / "clips").mkdir(parents=True, exist_ok=True)
        sf.write(root / path, tone(1.0, 16000, f0, seed=10 + i), 16000)
        rows.append({"path": path, "label": label, "speaker": f"other_{i % 3}"})
    trained = read_manifest(synth_manifest)
    first = trained.df[trained.df["label"] == "angry"].iloc[0]
    shutil.copy(trained.audio_path(first["path"]), root / "clips" / "copied.wav")
    rows.append({"path": "clips/copied.wav", "label": first["label"], "speaker": "other_9"})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    prepare("csv", root, base / "m", workers=1)
    return base / "m"


def test_align_classes_reports_both_sides():
    a = align_classes(["angry", "happy", "sad", "neutral"], ["angry", "sad", "calm"])
    assert a == {"shared": ["angry", "sad"], "run_only": ["happy", "neutral"], "corpus_only": ["calm"]}
    with pytest.raises(EmofuseError, match="no class in common"):
        align_classes(["angry"], ["calm"])


def test_evaluate_counts_what_it_leaves_out(trained_run, other_manifest, tmp_path):
    rec = evaluate(trained_run, other_manifest, tmp_path / "ev", device="cpu")
    assert len(rec["run"]) == 2                                           # the fold ensemble
    assert rec["alignment"]["corpus_only"] == ["calm"] and rec["alignment"]["run_only"] == ["happy", "neutral"]
    c = rec["counts"]
    assert c["not_predictable_by_class"] == {"calm": 2} and c["audio_the_run_trained_on"] == 1
    assert c["evaluated"] == 4 and c["manifest"] == 7
    m = rec["metrics"]
    assert m["n"] == 4 and sum(map(sum, m["confusion"])) == 4 and len(m["confusion"]) == 4
    preds = pd.read_csv(tmp_path / "ev" / "predictions.csv", keep_default_na=False)
    assert len(preds) == 7 and preds["used"].sum() == 4
    assert set(preds.loc[~preds["used"], "skipped"]) == {"class the run cannot predict", "audio the run trained on"}
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["metrics"]["wa"] == m["wa"]
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000
    md = (tmp_path / "ev" / "results.md").read_text()
    assert "calm (2)" in md and "happy, neutral" in md


def test_evaluate_command_and_its_errors(trained_run, other_manifest, synth_manifest, tmp_path):
    r = run_cli("evaluate", str(trained_run / "fold_0"), str(other_manifest), "--out", str(tmp_path / "f0"), "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "on 4 utterances (3 left out" in r.stdout and (tmp_path / "f0" / "metrics.json").is_file()
    r = run_cli("evaluate", str(trained_run), str(tmp_path / "no_manifest"), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and r.stderr.startswith("emofuse: error:") and "Traceback" not in r.stderr
    # The training manifest itself: every clip is audio the run trained on, so nothing is left to evaluate.
    r = run_cli("evaluate", str(trained_run), str(synth_manifest), "--out", str(tmp_path / "same"), "--device", "cpu")
    assert r.returncode == 2 and "audio the run trained on" in r.stderr and len(r.stderr.strip().splitlines()) == 1
