"""`emofuse cv` unchanged for text-only, early fusion and cross-attention configs on a tiny synthetic corpus."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_cli
from emofuse.manifest import read_manifest, write_manifest

COMMON = ["data.batch_size=16", "train.max_epochs=1", "train.warmup_epochs=0", "data.feature_workers=1"]
SMALL = {
    "text_mlp": ["model.hidden=16"],
    "early_fusion": ["model.audio.base_channels=4", "model.hidden=16"],
    "cross_attention": ["model.audio.dim=16", "model.audio.depth=1", "model.audio.heads=2", "model.dim=16", "model.heads=2"],
}


@pytest.mark.parametrize("config", list(SMALL))
def test_cv_of_each_text_and_fusion_config(config, synth_manifest, tmp_path):
    run = tmp_path / config
    r = run_cli("cv", config, f"data.manifest={synth_manifest}", *COMMON, *SMALL[config], "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    expected = ["text"] if config == "text_mlp" else ["audio", "text"]
    assert summary["complete"] and summary["modalities"] == expected and summary["text_encoder"] == "all-minilm-l6-v2"
    assert f"({config}, {', '.join(expected)})" in r.stdout
    assert f"modalities: {' + '.join(expected)}" in (run / "results.md").read_text()
    audit = json.loads((run / "audit.json").read_text())
    assert audit["passed"] and audit["modalities"] == expected and "frozen encoder" in audit["guarantees"]["text"]
    assert "transcripts: manual (column 'text')" in audit["guarantees"]["text"]
    n = len(pd.read_csv(synth_manifest / "manifest.csv"))
    assert sum(map(sum, summary["confusion"])) == n
    for k in range(5):
        assert (run / f"fold_{k}" / "predictions.csv").is_file()
        assert (run / f"fold_{k}" / "norm.json").is_file() == (config != "text_mlp")  # no audio, no audio statistics
    # The text cache holds each distinct transcript once, computed by the first run that needed it.
    cache = synth_manifest / "cache"
    [text_dir] = list(cache.glob("text-all-minilm-l6-v2-*"))
    n_texts = len(set(pd.read_csv(synth_manifest / "manifest.csv", keep_default_na=False)["text"]))
    stored = sum(len(pd.read_csv(p)) for p in text_dir.glob("shard-*.csv"))
    assert stored == n_texts < n


def test_missing_transcripts_fail_clearly_unless_empty_text_is_allowed(synth_manifest, tmp_path):
    m = read_manifest(synth_manifest)
    df = m.df.copy()
    df.loc[3, "text"] = ""
    out = tmp_path / "no_text"
    write_manifest(df, {**m.meta, "root": str(m.root)}, out)
    args = ["train", "early_fusion", "--fold", "0", f"data.manifest={out}", f"data.cache_dir={synth_manifest / 'cache'}",
            *COMMON, *SMALL["early_fusion"]]
    r = run_cli(*args, "--out", str(tmp_path / "r1"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert df.loc[3, "utt_id"] in r.stderr and "text.missing=empty" in r.stderr
    r = run_cli(*args, "text.missing=empty", "--out", str(tmp_path / "r2"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "r2" / "fold_0" / "metrics.json").is_file()
    # Audio-only models never need transcripts.
    r = run_cli("train", "resnet18", "--fold", "0", f"data.manifest={out}", f"data.cache_dir={synth_manifest / 'cache'}",
                *COMMON, "model.base_channels=4", "--out", str(tmp_path / "r3"))
    assert r.returncode == 0, r.stderr[-3000:]
