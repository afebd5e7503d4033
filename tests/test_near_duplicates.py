"""The same recording under another name or encoding (issue #17): prepare finds it, the fold audit fails on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import TINY, run_cli
from emofuse.splits import FoldSplit, audit_split


def speechlike(seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """Syllables of a voice with moving pitch and formants: every seed a different take."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 140 * 2 ** (0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6)) + rng.normal(0, 0.1))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum((0.7 ** k) * np.sin(k * phase) * (1 + np.sin(2 * np.pi * rng.uniform(1, 5) * t + k)) for k in range(1, 12))
    env = np.zeros(n)
    pos = 0
    while pos < n:
        d = int(sr * rng.uniform(0.12, 0.3))
        env[pos:pos + d] = np.hanning(d)[: n - pos] * rng.uniform(0.5, 1)
        pos += d + int(sr * rng.uniform(0.02, 0.15))
    x = env * wav + 0.01 * rng.normal(size=n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def test_audit_fails_on_a_near_duplicate_across_parts():
    df = pd.DataFrame({"utt_id": ["a", "b", "c"], "speaker": ["s1", "s2", "s3"], "label": ["x", "y", "x"],
                       "audio_sha1": ["1", "2", "3"]})
    split = FoldSplit(0, "speaker", ["s3"], ["a"], ["b"], ["c"])
    assert audit_split(split, df, near_duplicates=[])["passed"]
    audit = audit_split(split, df, near_duplicates=[("a", "c", 0.05)])
    assert not audit["passed"] and audit["checks"]["near_duplicate_audio_in_train_and_test"] == ["a ~ c (BER 0.05)"]
    assert "not run" in audit_split(split, df)["near_duplicate_check"]


@pytest.fixture(scope="module")
def copied_corpus(tmp_path_factory) -> Path:
    """4 speakers x 8 takes; speaker s4's take 0 is s1's take 0 re-encoded (44.1 kHz stereo, +3 dB, 20 ms cut)."""
    root = tmp_path_factory.mktemp("copies") / "corpus"
    rows = []
    for s in range(1, 5):
        for i in range(8):
            lab = ["angry", "happy", "sad", "neutral"][i % 4]
            p = root / f"s{s}" / f"take{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, speechlike(2.0, seed=100 * s + i), 16000)
            rows.append({"path": p.relative_to(root).as_posix(), "label": lab, "speaker": f"s{s}"})
    import soxr

    x = speechlike(2.0, seed=100 * 1 + 0)[320:] * 10 ** (3 / 20)
    y = soxr.resample(x, 16000, 44100)
    sf.write(root / "s4" / "take0.wav", np.stack([y, y], 1), 44100)
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def test_prepare_reports_near_duplicates_and_the_run_refuses_them(copied_corpus, tmp_path):
    out = tmp_path / "manifest"
    r = run_cli("prepare", "csv", str(copied_corpus), "--out", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "near-duplicate" in r.stdout and "s1/take0.wav" in r.stdout and "s4/take0.wav" in r.stdout
    pairs = pd.read_csv(out / "near_duplicates.csv")
    assert len(pairs) == 1 and {pairs.loc[0, "path_a"], pairs.loc[0, "path_b"]} == {"s1/take0.wav", "s4/take0.wav"}
    assert json.loads((out / "prepare.json").read_text())["near_duplicate_pairs"] == 1
    run = run_cli("cv", "demo", f"data.manifest={out}", *TINY, "cv.n_folds=4", "cv.val_speakers=1", "--out", str(tmp_path / "run"))
    assert run.returncode == 2 and "near_duplicate_audio" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "run" / "summary.json").exists()
