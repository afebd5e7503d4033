"""SER metrics (Macro-F1, UA = mean recall, WA = accuracy), fold summaries, confusion plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from .atomic import replacing


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Metrics for one evaluation. Classes absent from ``y_true`` still get a row and an F1 of 0."""
    labels = list(range(len(classes)))
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = sorted(set(np.asarray(y_true).tolist()))
    return {
        "n": int(len(y_true)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "ua": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "wa": float(accuracy_score(y_true, y_pred)),
        "per_class_f1": {c: float(v) for c, v in zip(classes, f1)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


HEADLINE = ("macro_f1", "ua", "wa")


def summarize(fold_metrics: list[dict], classes: list[str]) -> dict:
    """Mean and standard deviation (sample, ddof=1) across folds, pooled confusion matrix."""
    out: dict = {"folds": len(fold_metrics)}
    for key in HEADLINE:
        vals = np.array([m[key] for m in fold_metrics], dtype=float)
        out[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    "per_fold": vals.round(4).tolist()}
    out["per_class_f1"] = {}
    for c in classes:
        vals = np.array([m["per_class_f1"][c] for m in fold_metrics], dtype=float)
        out["per_class_f1"][c] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    out["confusion"] = np.sum([np.array(m["confusion"]) for m in fold_metrics], axis=0).tolist()
    return out


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = 1.6 + 0.55 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title or "confusion (rows: true class, normalised)")
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)

