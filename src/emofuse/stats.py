"""Statistics a reviewer asks for: intervals over folds, speaker-grouped bootstrap intervals,
paired comparisons of two runs, and the chance / majority baselines.

Plain numpy / scipy on integer label arrays (index ``i`` is class ``i``); reading run folders is
``report.py``'s job. Metrics follow ``metrics.compute_metrics``: Macro-F1 and UA average over the
classes present in the labels, WA is accuracy.

Everything that resamples works on per-speaker confusion matrices, (S, K, K): a resample of
speakers is a count vector over speakers, and its confusion matrix is one matrix product, so
1000 resamples of any number of utterances take milliseconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from .metrics import HEADLINE

EXACT_UP_TO = 4096  # the speaker permutation test enumerates every swap up to this many (12 speakers)
NAMES = {"macro_f1": "Macro-F1", "ua": "UA", "wa": "WA"}


# ----------------------------------------------------------------------------- across folds
def t_interval(values, level: float = 0.95) -> dict:
    """Mean, sample std (ddof=1) and the t-based interval for the mean of per-fold values.

    With one value there is no interval (``lo`` = ``hi`` = the value, ``n`` says why)."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    mean = float(v.mean()) if n else float("nan")
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    half = float(st.t.ppf(0.5 + level / 2, n - 1) * std / np.sqrt(n)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n, "lo": mean - half, "hi": mean + half, "level": level,
            "method": f"t interval over {n} folds (df={max(n - 1, 0)})"}


# ----------------------------------------------------------------------------- metrics from confusions
def confusions_by_group(y_true, y_pred, groups, n_classes: int) -> tuple[np.ndarray, list]:
    """(G, K, K) confusion matrices (rows true, columns predicted), one per group, and the groups in order."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    names, gi = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    flat = (gi * n_classes + y_true) * n_classes + y_pred
    cm = np.bincount(flat, minlength=len(names) * n_classes * n_classes).reshape(len(names), n_classes, n_classes)
    return cm.astype(float), names.tolist()


def metrics_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Macro-F1, UA and WA of confusion matrices (..., K, K); classes absent from the labels of a
    matrix do not count in its averages (as in ``compute_metrics``)."""
    cm = np.asarray(cm, dtype=float)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(-1), cm.sum(-2)
    present = support > 0
    n_present = np.maximum(present.sum(-1), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(present, tp / support, 0.0)
        f1 = np.where(present, np.nan_to_num(2 * tp / (support + predicted)), 0.0)
    total = np.maximum(support.sum(-1), 1)
    return {"macro_f1": f1.sum(-1) / n_present, "ua": recall.sum(-1) / n_present, "wa": tp.sum(-1) / total}


def per_class(cm: np.ndarray, classes: list[str]) -> list[dict]:
    """Precision, recall, F1 and support per class of one confusion matrix (K, K)."""
    cm = np.asarray(cm, dtype=float)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    out = []
    for i, c in enumerate(classes):
        p = tp[i] / predicted[i] if predicted[i] else 0.0
        r = tp[i] / support[i] if support[i] else 0.0
        out.append({"class": c, "precision": float(p), "recall": float(r),
                    "f1": float(2 * p * r / (p + r)) if p + r else 0.0, "support": int(support[i])})
    return out


# ----------------------------------------------------------------------------- speaker bootstrap
def _speaker_counts(n_speakers: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """(B, S): how often each speaker is drawn when S speakers are drawn with replacement."""
    return rng.multinomial(n_speakers, np.full(n_speakers, 1.0 / n_speakers), size=b).astype(float)


def bootstrap_method(n_speakers: int, b: int, seed: int, level: float = 0.95) -> str:
    return (f"speaker bootstrap: {n_speakers} test speakers resampled with replacement, B={b}, "
            f"percentile {level:.0%} interval, seed {seed}")


def speaker_bootstrap(y_true, y_pred, speakers, n_classes: int, b: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict:
    """Point estimates on the pooled predictions and percentile intervals from resampling speakers
    (not utterances: a speaker's utterances are not independent of each other).

    Returns ``{metric: {"value", "lo", "hi"}, "method": str, "n_speakers", "n"}``."""
    cm, names = confusions_by_group(y_true, y_pred, speakers, n_classes)
    point = metrics_from_confusion(cm.sum(0))
    w = _speaker_counts(len(names), b, np.random.default_rng(seed))
    boot = metrics_from_confusion(np.einsum("bs,sij->bij", w, cm))
    a = (1 - level) / 2
    out: dict = {k: {"value": float(point[k]), "lo": float(np.quantile(boot[k], a)), "hi": float(np.quantile(boot[k], 1 - a))}
                 for k in HEADLINE}
    out.update(method=bootstrap_method(len(names), b, seed, level), n_speakers=len(names), n=int(len(np.asarray(y_true))))
    return out


# ----------------------------------------------------------------------------- paired comparison
def wilcoxon_folds(diffs) -> dict:
    """Two-sided Wilcoxon signed-rank test over per-fold differences (exact for few folds).

    With n folds the smallest p it can give is 2 / 2**n (0.0625 for 5 folds, 0.03125 for 6)."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    floor = 2.0 / 2 ** n if n else 1.0
    note = f"{n} folds: the smallest two-sided p this test can give is {floor:.4g}"
    if n == 0 or np.allclose(d, 0):
        return {"p": 1.0, "min_p": floor, "note": note}
    res = st.wilcoxon(d, alternative="two-sided")
    return {"p": float(res.pvalue), "min_p": floor, "note": note}


def _sign_vectors(n_speakers: int, b: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(P, S) 0/1 swap assignments: all 2**S when that is at most ``max(b, EXACT_UP_TO)`` (an exact test),
    else ``b`` random ones."""
    if 2 ** n_speakers <= max(b, EXACT_UP_TO):
        return np.array(list(itertools.product((0.0, 1.0), repeat=n_speakers))), True
    return rng.integers(0, 2, size=(b, n_speakers)).astype(float), False


def paired_speaker_test(y_true, pred_a, pred_b, speakers, n_classes: int, b: int = 1000, seed: int = 0,
                        level: float = 0.95) -> dict:
    """Run B minus run A on the same utterances: the pooled difference per metric, a speaker-bootstrap
    interval for it (the same speaker resample applied to both runs), and a speaker-level paired
    permutation test (each speaker's predictions swapped between the runs at random; exact, over every
    swap, when 2**S <= max(b, 4096): IEMOCAP's 10 speakers give 1024).

    Returns ``{metric: {"diff", "lo", "hi", "p"}, "method": str, "n_speakers", "exact"}``."""
    ca, names = confusions_by_group(y_true, pred_a, speakers, n_classes)
    cb, _ = confusions_by_group(y_true, pred_b, speakers, n_classes)
    s = len(names)
    rng = np.random.default_rng(seed)
    obs_a, obs_b = metrics_from_confusion(ca.sum(0)), metrics_from_confusion(cb.sum(0))
    w = _speaker_counts(s, b, rng)
    boot_a = metrics_from_confusion(np.einsum("bs,sij->bij", w, ca))
    boot_b = metrics_from_confusion(np.einsum("bs,sij->bij", w, cb))
    z, exact = _sign_vectors(s, b, rng)
    perm_a = metrics_from_confusion(np.einsum("ps,sij->pij", 1 - z, ca) + np.einsum("ps,sij->pij", z, cb))
    perm_b = metrics_from_confusion(np.einsum("ps,sij->pij", z, ca) + np.einsum("ps,sij->pij", 1 - z, cb))
    a = (1 - level) / 2
    out: dict = {}
    for k in HEADLINE:
        d = float(obs_b[k] - obs_a[k])
        diffs = boot_b[k] - boot_a[k]
        null = np.abs(perm_b[k] - perm_a[k])
        hits = int((null >= abs(d) - 1e-12).sum())
        p = hits / len(z) if exact else (hits + 1) / (len(z) + 1)
        out[k] = {"a": float(obs_a[k]), "b": float(obs_b[k]), "diff": d, "lo": float(np.quantile(diffs, a)),
                  "hi": float(np.quantile(diffs, 1 - a)), "p": float(p)}
    kind = f"exact over all {len(z)} swaps" if exact else f"{len(z)} random swaps"
    out.update(n_speakers=s, exact=exact, method=(
        f"pooled test predictions of the same utterances; interval: paired speaker bootstrap ({s} speakers, B={b}, "
        f"percentile, seed {seed}); p: speaker-level paired permutation test, two-sided ({kind})"))
    return out


@dataclass
class Paired:
    """One metric of run B against run A on the same folds."""

    metric: str
    fold_diffs: list[float]      # B - A per fold, in fold order
    fold_ci: dict                # t_interval of the fold differences
    wilcoxon: dict
    speaker: dict | None         # the pooled speaker-level test for this metric, when predictions are there

    @property
    def wins(self) -> int:
        return int(sum(d > 0 for d in self.fold_diffs))

    def sentence(self, a: str, b: str) -> str:
        """"B beats A by 0.041 Macro-F1, 95% CI [..]; 6/6 folds" and the tests behind it."""
        ci = self.fold_ci
        d, n = ci["mean"], len(self.fold_diffs)
        name = NAMES[self.metric]
        if d > 0:
            head = f"{b} beats {a} by {d:.3f} {name}"
        elif d < 0:
            head = f"{b} trails {a} by {-d:.3f} {name}"
        else:
            head = f"{b} ties {a} on {name}"
        text = (f"{head} (mean over folds), {ci['level']:.0%} CI [{ci['lo']:+.3f}, {ci['hi']:+.3f}] (t, {n} folds); "
                f"better on {self.wins}/{n} folds; Wilcoxon p = {self.wilcoxon['p']:.3g} (smallest possible {self.wilcoxon['min_p']:.3g})")
        if self.speaker:
            sp = self.speaker
            text += (f"; pooled over speakers: {sp['diff']:+.3f}, CI [{sp['lo']:+.3f}, {sp['hi']:+.3f}], "
                     f"permutation p = {sp['p']:.3g}")
        return text + "."

    def significant(self, alpha: float = 0.05) -> bool:
        """The speaker-level test when there is one (it has the power), else the fold interval excludes 0."""
        if self.speaker:
            return self.speaker["p"] < alpha
        return self.fold_ci["lo"] > 0 or self.fold_ci["hi"] < 0


def paired_folds(a: dict[int, float], b: dict[int, float], metric: str, speaker: dict | None = None,
                 level: float = 0.95) -> Paired:
    """Per-fold paired comparison over the folds both runs finished (``fold -> value`` each)."""
    folds = sorted(set(a) & set(b))
    diffs = [float(b[k] - a[k]) for k in folds]
    return Paired(metric, diffs, t_interval(diffs, level), wilcoxon_folds(diffs), speaker)


# ----------------------------------------------------------------------------- baselines
def baselines(y_true, n_classes: int) -> dict[str, dict[str, float]]:
    """What guessing scores on these test labels.

    chance: a uniform random guess over the K classes; its expected UA and WA are 1/K, its Macro-F1
    is computed from the expected confusion matrix (each class predicted for N/K items, n_k/K of
    them right). majority: always the most frequent class of these labels (an optimistic floor,
    since it peeks at the test labels)."""
    y = np.asarray(y_true, dtype=int)
    counts = np.bincount(y, minlength=n_classes).astype(float)
    chance_cm = np.outer(counts, np.full(n_classes, 1.0 / n_classes))
    major = int(np.argmax(counts))
    major_cm = np.zeros((n_classes, n_classes))
    major_cm[:, major] = counts
    out = {"chance": {k: float(v) for k, v in metrics_from_confusion(chance_cm).items()},
           "majority": {k: float(v) for k, v in metrics_from_confusion(major_cm).items()}}
    out["majority"]["class"] = major
    return out
