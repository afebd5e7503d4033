"""Reports: one run as a self-contained HTML page (and the same numbers as Markdown), and
several runs side by side (the study's table, re-made from our own runs).

A report reads only the run folder: config.yaml, audit.json, fold_K/{metrics.json,
confusion.png, tb/ (training curves), augment_audit.json}, summary.json; and, for a few class
activation maps, the best checkpoint and the test audio the manifest points to (skipped with a
note when the audio is not there).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from .errors import EmofuseError
from .metrics import HEADLINE

NAMES = {"macro_f1": "Macro-F1", "ua": "UA", "wa": "WA"}


def _summary(run: Path) -> dict:
    for name in ("summary.json", "summary.partial.json"):
        if (run / name).is_file():
            return json.loads((run / name).read_text())
    raise EmofuseError(f"{run}: no summary.json; give a run folder written by 'emofuse cv' (finished or partial)")


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _fig_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def training_curves(run: Path) -> dict[int, dict[str, list[tuple[int, float]]]]:
    """fold -> tag -> [(step, value)] from each fold's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[int, dict] = {}
    for tb in sorted(run.glob("fold_*/tb")):
        k = int(tb.parent.name.split("_")[1])
        acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
        acc.Reload()
        out[k] = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags().get("scalars", [])
                  if t in ("train/loss_epoch", "train/loss", "val/loss", "val/macro_f1")}
    return out


def _curves_png(curves: dict) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for k, tags in sorted(curves.items()):
        for tag, ax, style in (("train/loss_epoch", axes[0], "-"), ("train/loss", axes[0], "-"), ("val/loss", axes[0], "--"),
                               ("val/macro_f1", axes[1], "-")):
            if tag in tags and tags[tag]:
                xs = np.arange(len(tags[tag]))
                ax.plot(xs, [v for _, v in tags[tag]], style, marker="o", ms=2, label=f"fold {k} {tag.split('/')[0]}", lw=1)
    axes[0].set(title="loss per epoch (solid train, dashed validation)", xlabel="epoch")
    axes[1].set(title="validation Macro-F1 (model selection)", xlabel="epoch")
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _fig_png(fig)


def _cams(run: Path, summary: dict, n: int) -> tuple[list[tuple[str, str]], str | None]:
    """A few maps for fold 0's test items: [(caption, data uri)], or a note why there are none."""
    if n <= 0:
        return [], None
    try:
        import pandas as pd

        from .explain import explain, plot_explanation
        from .inference import load
        from .manifest import read_manifest

        if "audio" not in summary.get("modalities", ["audio"]):
            return [], "text-only model: no audio maps"
        predictor = load(run / "fold_0", device="cpu")
        manifest = read_manifest(summary["manifest"])
        preds = pd.read_csv(run / "fold_0" / "predictions.csv").groupby("label").head(1).head(n)
        df = manifest.df.set_index("utt_id")
        out = []
        for utt in preds["utt_id"]:
            row = df.loc[utt]
            e = explain(predictor, manifest.audio_path(row["path"]), text=row["text"] or None, utt=utt)
            tmp = plot_explanation(e, run / f".cam_{utt}.png")
            out.append((f"{utt}: true {row['label']}, predicted {e.label} ({e.kind})", _png(tmp)))
            tmp.unlink()
        return out, None
    except EmofuseError as exc:
        return [], f"maps skipped: {exc}"
    except Exception as exc:  # a report must not fail for want of audio
        return [], f"maps skipped: {type(exc).__name__}: {str(exc)[:200]}"


def run_markdown(run: Path, summary: dict, audit: dict) -> str:
    lines = [f"# {summary.get('name') or summary['model']}: {summary['corpus']}", "",
             f"- model `{summary['model']}`, modalities: {' + '.join(summary.get('modalities', ['audio']))}"
             + (f", text encoder {summary['text_encoder']}" if summary.get("text_encoder") else "")
             + f", augmentation: {summary.get('augmentation', 'none')}",
             f"- {summary['n_folds']} folds ({summary['scheme']}), {'complete' if summary['complete'] else 'PARTIAL'}",
             f"- leakage audit: {'passed' if audit.get('passed') else 'FAILED'}", "",
             "| fold | test | " + " | ".join(NAMES[k] for k in HEADLINE) + " | best epoch |", "|---|---|---|---|---|---|"]
    for f in summary["per_fold"]:
        lines.append(f"| {f['fold']} | {', '.join(f['test_groups'])} | " + " | ".join(f"{f[k]:.3f}" for k in HEADLINE)
                     + f" | {f['best_epoch']} |")
    lines.append("| **mean ± std** | | " + " | ".join(f"**{summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}**" for k in HEADLINE) + " | |")
    lines += ["", "| class | F1 mean ± std |", "|---|---|"]
    lines += [f"| {c} | {v['mean']:.3f} ± {v['std']:.3f} |" for c, v in summary["per_class_f1"].items()]
    lines += ["", "## Leakage audit", ""] + [f"- **{k}**: {v}" for k, v in audit.get("guarantees", {}).items()]
    return "\n".join(lines) + "\n"


def write_report(run: str | Path, cams: int = 3) -> tuple[Path, Path]:
    """Write RUN/report.html (self-contained) and RUN/report.md."""
    import markdown as md_lib

    run = Path(run)
    if not run.is_dir():
        raise EmofuseError(f"{run}: no such run folder")
    summary = _summary(run)
    audit = json.loads((run / "audit.json").read_text()) if (run / "audit.json").is_file() else {}
    md = run_markdown(run, summary, audit)
    config = (run / "config.yaml").read_text() if (run / "config.yaml").is_file() else ""
    curves = _curves_png(training_curves(run))
    maps, note = _cams(run, summary, cams)
    confusions = [(f"fold {k}", _png(p)) for k, p in sorted((int(p.parent.name.split("_")[1]), p)
                                                             for p in run.glob("fold_*/confusion.png"))]
    parts = [f"<h1>{html.escape(summary.get('name') or summary['model'])}</h1>", md_lib.markdown(md.split("\n", 2)[2], extensions=["tables"])]
    if (run / "confusion.png").is_file():
        parts.append(f"<h2>Confusion matrix (all folds pooled)</h2><img alt='pooled confusion' src='{_png(run / 'confusion.png')}'>")
    if curves:
        parts.append(f"<h2>Training curves</h2><img alt='training curves' src='{curves}'>")
    if confusions:
        parts.append("<h2>Per fold</h2><div class='grid'>" + "".join(
            f"<figure><img alt='{c}' src='{u}'><figcaption>{c}</figcaption></figure>" for c, u in confusions) + "</div>")
    parts.append("<h2>Class activation maps (fold 0, test speakers)</h2>")
    parts += [f"<figure><img alt='map' src='{u}'><figcaption>{html.escape(c)}</figcaption></figure>" for c, u in maps]
    if note:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    parts.append(f"<h2>Config</h2><pre>{html.escape(config)}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>emofuse report: "
            f"{html.escape(summary.get('name') or summary['model'])}</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}.grid{display:grid;"
            "grid-template-columns:repeat(3,1fr);gap:8px}pre{background:#f5f5f5;padding:1em;font-size:12px}"
            ".note{color:#a60}</style></head><body>" + "\n".join(parts) + "</body></html>")
    html_path, md_path = run / "report.html", run / "report.md"
    html_path.write_text(page)
    md_path.write_text(md)
    return html_path, md_path


def compare_runs(runs: list[str | Path]) -> str:
    """A Markdown table of several runs (mean ± std over folds)."""
    rows = ["| run | model | modalities | augmentation | folds | " + " | ".join(NAMES[k] for k in HEADLINE) + " |",
            "|---|---|---|---|---|---|---|---|"]
    for r in map(Path, runs):
        s = _summary(r)
        rows.append(f"| {s.get('name') or r.name} | {s['model']} | {' + '.join(s.get('modalities', ['audio']))} | "
                    f"{s.get('augmentation', 'none')} | {len(s['per_fold'])}/{s['n_folds']} | "
                    + " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in HEADLINE) + " |")
    return "\n".join(rows) + "\n"
