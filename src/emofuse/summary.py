"""A run's summary: aggregate the finished folds (``summarize_run``) and render the result, one
renderer for every place that shows it (the CLI's table, results.md, the report's tables).

``summary_tables(summary)`` gives the tables as plain cells; ``render(summary, "text")`` is what
``emofuse cv`` prints and ``render(summary, "markdown")`` is results.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .atomic import write_text_atomic
from .metrics import HEADLINE, compute_metrics, plot_confusion, summarize
from .splits import LeakageError
from .subsets import overlap_lines

if TYPE_CHECKING:
    from .training.lifecycle import RunContext

NAMES = {"macro_f1": "Macro-F1", "ua": "UA", "wa": "WA"}
SPEAKERS_WIDTH = 28  # the text table's test-speaker column


def speakers_cell(groups: list, width: int | None = None) -> str:
    """Test speakers as one cell: all of them when they fit in ``width`` characters, else the first
    few, an ellipsis, the last one and the count, e.g. ``01, 02, ..., 24 (6)``. Never cut silently."""
    names = [str(g) for g in groups]
    full = ", ".join(names)
    if width is None or len(full) <= width or len(names) < 3:
        return full
    tail = f", ..., {names[-1]} ({len(names)})"
    head = names[0]
    for n in names[1:-1]:
        if len(head) + len(", " + n) + len(tail) > width:
            break
        head += ", " + n
    return head + tail


def summary_tables(summary: dict, speakers_width: int | None = None) -> list[tuple[list[str], list[list[str]], bool]]:
    """The run's tables as plain text cells: [(header, rows, last row is the mean)]: per fold
    (test speakers, Macro-F1, UA, WA, best epoch) with mean ± std, and per-class F1."""
    per_fold = [[str(f["fold"]), speakers_cell(f["test_groups"], speakers_width)] + [f"{f[k]:.3f}" for k in HEADLINE]
                + [str(f["best_epoch"])] for f in summary["per_fold"]]
    per_fold.append(["mean ± std", ""] + [f"{summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}" for k in HEADLINE] + [""])
    classes = [[str(c), f"{v['mean']:.3f} ± {v['std']:.3f}"] for c, v in summary["per_class_f1"].items()]
    return [(["fold", "test"] + [NAMES[k] for k in HEADLINE] + ["best epoch"], per_fold, True),
            (["class", "F1 mean ± std"], classes, False)]


def render(summary: dict, fmt: str = "text", run_dir=None) -> str:
    """The summary as the CLI prints it (``text``; ``run_dir`` adds where the files are) or as
    results.md (``markdown``, every data value escaped)."""
    if fmt == "markdown":
        return _markdown(summary)
    if fmt != "text":
        raise ValueError(f"fmt={fmt!r}: use 'text' or 'markdown'")
    return _text(summary, run_dir)


def _text(summary: dict, run_dir=None) -> str:
    w = {"macro_f1": 8, "ua": 6, "wa": 6}
    (_, per_fold, _), (_, classes, _) = summary_tables(summary, SPEAKERS_WIDTH)
    lines = ["", f"{summary.get('name') or summary['model']} ({summary['model']}, {', '.join(summary['modalities'])}) on "
                 f"{summary['corpus']}: {summary['n_folds']} speaker-independent folds ({summary['scheme']})"
                 f"{'' if summary['complete'] else ' [partial]'}",
             f"{'fold':>4}  {'test speakers':<{SPEAKERS_WIDTH}} {'Macro-F1':>8} {'UA':>6} {'WA':>6}"]
    for row in per_fold[:-1]:
        lines.append(f"{row[0]:>4}  {row[1]:<{SPEAKERS_WIDTH}} " + " ".join(f"{c:>{w[k]}}" for c, k in zip(row[2:], HEADLINE)))
    for stat in ("mean", "std"):
        lines.append(f"{stat:>4}  {'':<{SPEAKERS_WIDTH}} " + " ".join(f"{summary[k][stat]:>{w[k]}.3f}" for k in HEADLINE))
    lines.append("per-class F1: " + ", ".join(f"{c} {v.split(' ± ')[0]}" for c, v in classes))
    lines += overlap_lines(summary)
    if run_dir is not None:
        lines.append(f"files: {run_dir}/summary.json, results.md, confusion.png, audit.json, fold_*/predictions.csv; "
                     f"TensorBoard: tensorboard --logdir {run_dir}")
    return "\n".join(lines) + "\n"


def _markdown(summary: dict) -> str:
    from .report import md_text as t  # labels, speakers and names are data: no live HTML, no broken tables

    lines = [f"# {t(summary.get('name') or summary['model'])}: {t(summary['corpus'])}, {summary['n_folds']} speaker-independent folds"
             f" ({t(summary['scheme'])}){'' if summary['complete'] else ' (PARTIAL)'}", "",
             f"Model {t(summary['model'])}, modalities: {t(' + '.join(summary.get('modalities', ['audio'])))}"
             + (f" (text encoder: {t(summary['text_encoder'])})" if summary.get("text_encoder") else "")
             + f"; augmentation: {t(summary.get('augmentation', 'none'))}"]
    for header, rows, has_mean in summary_tables(summary, 40):
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, row in enumerate(rows):
            mean = has_mean and i == len(rows) - 1
            cells = [t(c) for c in row]
            if mean:
                cells = [f"**{c}**" if c else "" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Protocol, transcript overlap and test subsets", ""] + [f"- {t(ln)}" for ln in overlap_lines(summary)]
    return "\n".join(lines) + "\n"


def summarize_run(ctx: "RunContext") -> dict | None:
    """Aggregate finished folds into summary.json, results.md and confusion.png (only for a run
    whose leakage audit passed)."""
    audit = ctx.run_dir / "audit.json"
    if not audit.is_file() or json.loads(audit.read_text()).get("passed") is not True:
        raise LeakageError(f"{audit}: missing or failed; a run whose leakage audit fails gets no summary")
    fold_metrics = []
    for k in range(len(ctx.folds)):
        p = ctx.run_dir / f"fold_{k}" / "metrics.json"
        if p.is_file():
            fold_metrics.append(json.loads(p.read_text()))
    if not fold_metrics:
        return None
    complete = len(fold_metrics) == len(ctx.folds)
    summary = summarize([m["test"] for m in fold_metrics], ctx.classes)
    summary.update({
        "complete": complete, "folds_done": [m["fold"] for m in fold_metrics], "n_folds": len(ctx.folds),
        "model": ctx.cfg["model"]["name"], "modalities": list(ctx.modalities),
        "text_encoder": ctx.text_store.cfg.encoder if ctx.text_store else None,
        "augmentation": ctx.policy.name if ctx.policy is not None and ctx.policy.active else "none", "classes": ctx.classes,
        "corpus": ctx.manifest.meta.get("corpus"), "manifest": str(ctx.manifest.path),
        "scheme": ctx.folds[0].scheme, "name": ctx.cfg.get("name"),
        "train_utt_per_s": float(np.mean([m["train_utt_per_s"] or 0 for m in fold_metrics])),
        "wall_seconds": float(sum(m["wall_seconds"] for m in fold_metrics)),
        "per_fold": [{"fold": m["fold"], "test_groups": m["test_groups"], "best_epoch": m["best_epoch"],
                      **{k: m["test"][k] for k in HEADLINE}} for m in fold_metrics],
        "protocol": ctx.folds[0].protocol["name"], "subset": ctx.cfg["data"].get("subset") or "all",
        "transcript_overlap": json.loads(audit.read_text()).get("transcript_overlap", {"available": False}),
        "subsets": pooled_subsets(ctx, [m["fold"] for m in fold_metrics]),
    })
    write_text_atomic(ctx.run_dir / ("summary.json" if complete else "summary.partial.json"), json.dumps(summary, indent=2))
    write_text_atomic(ctx.run_dir / "results.md", render(summary, "markdown"))
    plot_confusion(summary["confusion"], ctx.classes, ctx.run_dir / "confusion.png",
                   f"{summary['model']}: all folds pooled")
    return summary


def pooled_subsets(ctx: "RunContext", folds: list[int]) -> dict:
    """Metrics on the test subsets (scripted / improvised, transcript seen / unseen in training),
    over the finished folds' test predictions pooled (a subset is small in any one fold)."""
    tables = [pd.read_csv(ctx.run_dir / f"fold_{k}" / "predictions.csv") for k in folds]
    table = pd.concat(tables, ignore_index=True)
    cls = {c: i for i, c in enumerate(ctx.classes)}
    out = {}
    for col in [c for c in table.columns if c.startswith("in_")]:
        rows = table[table[col] == 1]
        if len(rows):
            m = compute_metrics(rows["label"].map(cls).to_numpy(), rows["pred"].map(cls).to_numpy(), ctx.classes)
            out[col[3:]] = {"n": int(len(rows)), **{k: m[k] for k in HEADLINE}, "per_class_f1": m["per_class_f1"]}
    return out

