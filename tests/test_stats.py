"""Statistics on synthetic runs whose true differences are known."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats as st

from emofuse.metrics import compute_metrics
from emofuse.stats import (HEADLINE, baselines, metrics_from_confusion, confusions_by_group, paired_folds,
                           paired_speaker_test, per_class, speaker_bootstrap, t_interval, wilcoxon_folds)

K = 4
CLASSES = ["angry", "happy", "sad", "neutral"]


def synthetic_items(seed: int, n_speakers: int = 20, per_speaker: int = 275, n_folds: int = 6):
    """~5,500 test items: labels, speakers, folds (speakers split over folds), and a per-speaker
    ease (real speakers differ, so items of one speaker are not independent)."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"spk{i:02d}" for i in range(n_speakers)], per_speaker)
    folds = np.repeat(np.arange(n_speakers) % n_folds, per_speaker)
    y = rng.choice(K, size=len(speakers), p=[0.2, 0.3, 0.2, 0.3])
    ease = np.repeat(rng.normal(0, 0.08, n_speakers), per_speaker)
    return y, speakers, folds, ease


def draw_predictions(y, accuracy, rng) -> np.ndarray:
    """Right with probability ``accuracy`` (per item), else a random wrong class."""
    right = rng.random(len(y)) < np.clip(accuracy, 0, 1)
    wrong = (y + rng.integers(1, K, size=len(y))) % K
    return np.where(right, y, wrong)


def per_fold(y, pred, folds) -> dict[int, dict]:
    return {int(k): compute_metrics(y[folds == k], pred[folds == k], CLASSES) for k in np.unique(folds)}


def test_t_interval_matches_scipy():
    v = [0.61, 0.58, 0.66, 0.63, 0.59, 0.64]
    ci = t_interval(v)
    lo, hi = st.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=st.sem(v))
    assert ci["mean"] == pytest.approx(np.mean(v)) and ci["std"] == pytest.approx(np.std(v, ddof=1))
    assert (ci["lo"], ci["hi"]) == pytest.approx((lo, hi))
    assert "t interval over 6 folds" in ci["method"]
    one = t_interval([0.5])
    assert one["lo"] == one["hi"] == 0.5 and one["std"] == 0.0


def test_confusion_metrics_match_compute_metrics():
    rng = np.random.default_rng(3)
    y = rng.choice(3, size=300)  # class 3 absent from the labels but predicted sometimes
    pred = draw_predictions(y, 0.6, rng)
    cm, _ = confusions_by_group(y, pred, np.zeros(len(y)), K)
    got = metrics_from_confusion(cm.sum(0))
    want = compute_metrics(y, pred, CLASSES)
    for k in HEADLINE:
        assert float(got[k]) == pytest.approx(want[k])
    rows = per_class(cm.sum(0), CLASSES)
    assert [r["support"] for r in rows] == np.bincount(y, minlength=K).tolist()
    assert [r["f1"] for r in rows] == pytest.approx(list(want["per_class_f1"].values()))


def test_speaker_bootstrap_is_fast_seeded_and_named():
    y, spk, _, ease = synthetic_items(0)
    pred = draw_predictions(y, 0.55 + ease, np.random.default_rng(1))
    t0 = time.perf_counter()
    res = speaker_bootstrap(y, pred, spk, K, b=1000, seed=7)
    assert time.perf_counter() - t0 < 5.0  # 1000 resamples of 5,500 items: seconds at most
    assert res == speaker_bootstrap(y, pred, spk, K, b=1000, seed=7)
    assert res["n_speakers"] == 20 and "speaker bootstrap" in res["method"] and "B=1000" in res["method"]
    for k in HEADLINE:
        assert res[k]["lo"] < res[k]["value"] < res[k]["hi"]
    assert res["wa"]["value"] == pytest.approx((pred == y).mean())
    # resampling speakers gives a wider interval than resampling utterances when speakers differ
    rng = np.random.default_rng(2)
    acc = [(pred[i] == y[i]).mean() for i in (rng.integers(0, len(y), len(y)) for _ in range(300))]
    assert res["wa"]["hi"] - res["wa"]["lo"] > np.quantile(acc, 0.975) - np.quantile(acc, 0.025)


def test_truly_better_run_is_found():
    y, spk, folds, ease = synthetic_items(11)
    rng = np.random.default_rng(12)
    a = draw_predictions(y, 0.5 + ease, rng)
    b = np.where(rng.random(len(y)) < 0.15, y, a)  # B is right on a random 15% more of the items
    res = paired_speaker_test(y, a, b, spk, K, b=1000, seed=0)
    fa, fb = per_fold(y, a, folds), per_fold(y, b, folds)
    for k in HEADLINE:
        p = paired_folds({f: m[k] for f, m in fa.items()}, {f: m[k] for f, m in fb.items()}, k, res[k])
        assert res[k]["diff"] > 0.05 and res[k]["lo"] > 0 and res[k]["p"] < 0.01
        assert p.wins == 6 and p.fold_ci["lo"] > 0 and p.significant()
        assert p.wilcoxon["p"] == pytest.approx(0.03125)  # 6/6 folds: the smallest p 6 folds allow
    s = paired_folds({f: m["macro_f1"] for f, m in fa.items()}, {f: m["macro_f1"] for f, m in fb.items()},
                     "macro_f1", res["macro_f1"]).sentence("A", "B")
    assert s.startswith("B beats A by 0.") and "Macro-F1" in s and "6/6 folds" in s and "95% CI [+0." in s


def test_equal_runs_are_not_called_different():
    """Two runs drawn from the same accuracy: the speaker-level test rejects at about its level."""
    positives = 0
    seeds = range(20)
    for seed in seeds:
        y, spk, _, ease = synthetic_items(100 + seed)
        rng = np.random.default_rng(seed)
        a = draw_predictions(y, 0.55 + ease, rng)
        b = draw_predictions(y, 0.55 + ease, rng)
        res = paired_speaker_test(y, a, b, spk, K, b=500, seed=seed)
        positives += res["macro_f1"]["p"] < 0.05
        assert abs(res["macro_f1"]["diff"]) < 0.05
    assert positives <= 4  # expected 1 of 20; 4 or fewer has probability > 0.98 under a valid test


def test_permutation_is_exact_for_few_speakers():
    y, spk, _, _ = synthetic_items(5, n_speakers=5, per_speaker=40)
    rng = np.random.default_rng(0)
    a = draw_predictions(y, 0.3, rng)
    b = np.where(rng.random(len(y)) < 0.6, y, a)
    res = paired_speaker_test(y, a, b, spk, K, b=1000)
    assert res["exact"] and "exact over all 32 swaps" in res["method"]
    assert res["wa"]["p"] == pytest.approx(2 / 32)  # 5 speakers cannot give less, however clear the gap
    ten, spk10, _, _ = synthetic_items(6, n_speakers=10, per_speaker=30)
    res = paired_speaker_test(ten, draw_predictions(ten, 0.3, rng), draw_predictions(ten, 0.4, rng), spk10, K, b=1000)
    assert res["exact"] and "exact over all 1024 swaps" in res["method"]  # IEMOCAP's 10 speakers


def test_wilcoxon_floor_is_stated():
    assert wilcoxon_folds([0.1] * 5)["p"] == pytest.approx(0.0625)
    assert "smallest two-sided p this test can give is 0.03125" in wilcoxon_folds([0.1] * 6)["note"]
    assert wilcoxon_folds([0.0, 0.0, 0.0])["p"] == 1.0


def test_baselines():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)  # class 3 of 4 absent
    base = baselines(y, K)
    assert base["chance"]["ua"] == pytest.approx(0.25) and base["chance"]["wa"] == pytest.approx(0.25)
    # expected Macro-F1 of a uniform guess: mean over present classes of 2 p_k / (K p_k + 1)
    want = np.mean([2 * p / (K * p + 1) for p in (0.5, 0.3, 0.2)])
    assert base["chance"]["macro_f1"] == pytest.approx(want)
    maj = base["majority"]
    assert maj["class"] == 0 and maj["wa"] == pytest.approx(0.5) and maj["ua"] == pytest.approx(1 / 3)
    assert maj["macro_f1"] == pytest.approx((2 * 0.5 / 1.5) / 3)
    # a simulation of the uniform guess agrees with the expected values
    rng = np.random.default_rng(0)
    sims = [metrics_from_confusion(confusions_by_group(y, rng.integers(0, K, len(y)), np.zeros(len(y)), K)[0].sum(0))
            for _ in range(400)]
    assert np.mean([s["macro_f1"] for s in sims]) == pytest.approx(want, abs=0.01)
