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
import tempfile
from pathlib import Path

import numpy as np

from .atomic import replace_into
from .errors import EmofuseError
from .metrics import HEADLINE
from .subsets import overlap_lines

NAMES = {"macro_f1": "Macro-F1", "ua": "UA", "wa": "WA"}


def _own(run: Path, rel: str | Path) -> Path | None:
    """``run/rel`` if it is a file inside the run folder after symbolic links, else None: the
    report embeds only the run's own files (a link in a received run could point at any file)."""
    p = run / rel
    return p if p.is_file() and p.resolve().is_relative_to(run.resolve()) else None


def _summary(run: Path) -> dict:
    """The run's summary, only for a run whose leakage audit passed (a failed one gets no report or row)."""
    from .splits import LeakageError

    audit = json.loads((run / "audit.json").read_text()) if _own(run, "audit.json") else {}
    if audit.get("passed") is not True:
        raise LeakageError(f"{run / 'audit.json'}: {'failed' if audit else 'missing'}; a run whose leakage audit "
                           "fails gets no report and no compare row")
    for name in ("summary.json", "summary.partial.json"):
        if _own(run, name):
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
        with tempfile.TemporaryDirectory() as scratch:  # not named after the utt_id: ids are data, not paths
            for i, utt in enumerate(preds["utt_id"]):
                row = df.loc[utt]
                e = explain(predictor, manifest.audio_path(row["path"]), text=row["text"] or None, utt=str(utt))
                png = plot_explanation(e, Path(scratch) / f"map_{i}.png")
                out.append((f"{utt}: true {row['label']}, predicted {e.label} ({e.kind})", _png(png)))
        return out, None
    except EmofuseError as exc:
        return [], f"maps skipped: {exc}"
    except Exception as exc:  # a report must not fail for want of audio
        return [], f"maps skipped: {type(exc).__name__}: {str(exc)[:200]}"


# Every value from a run folder (labels, speakers, test groups, names, paths, config, captions) is
# data, never markup: HTML is built here with html.escape on each value (no Markdown-to-HTML pass,
# which would let raw HTML and javascript: links through), and Markdown gets md_text on each value.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\[]|"})


def md_text(value) -> str:
    """A data value as inert Markdown text: no HTML (``<``, ``>``, ``&`` as entities), no links
    (``[ ]`` escaped), no table cell breaks (``|`` escaped, newlines as spaces). Underscores stay,
    so ``cnn_bilstm`` reads as itself."""
    s = html.escape(str(value), quote=False)
    return " ".join(s.translate(_MD_SPECIAL).splitlines())


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _tables(summary: dict) -> list[tuple[list[str], list[list[str]], bool]]:
    """The run's tables as plain text cells: [(header, rows, last row is the mean)]."""
    per_fold = [[str(f["fold"]), ", ".join(map(str, f["test_groups"]))] + [f"{f[k]:.3f}" for k in HEADLINE] + [str(f["best_epoch"])]
                for f in summary["per_fold"]]
    per_fold.append(["mean ± std", ""] + [f"{summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}" for k in HEADLINE] + [""])
    classes = [[str(c), f"{v['mean']:.3f} ± {v['std']:.3f}"] for c, v in summary["per_class_f1"].items()]
    return [(["fold", "test"] + [NAMES[k] for k in HEADLINE] + ["best epoch"], per_fold, True),
            (["class", "F1 mean ± std"], classes, False)]


def _facts(summary: dict, audit: dict) -> list[list[tuple[str, bool]]]:
    """The bullet lines above the tables, as (text, is data) pieces."""
    model = [("model ", False), (summary["model"], True), (", modalities: ", False),
             (" + ".join(map(str, summary.get("modalities", ["audio"]))), True)]
    if summary.get("text_encoder"):
        model += [(", text encoder ", False), (summary["text_encoder"], True)]
    model += [(", augmentation: ", False), (summary.get("augmentation", "none"), True)]
    return [model,
            [(f"{summary['n_folds']} folds (", False), (summary["scheme"], True),
             (f"), {'complete' if summary['complete'] else 'PARTIAL'}", False)],
            [(f"leakage audit: {'passed' if audit.get('passed') else 'FAILED'}", False)]]


def run_markdown(run: Path, summary: dict, audit: dict) -> str:
    lines = [f"# {md_text(summary.get('name') or summary['model'])}: {md_text(summary['corpus'])}", ""]
    lines += ["- " + "".join(md_text(t) if data else t for t, data in fact) for fact in _facts(summary, audit)]
    for header, rows, mean_last in _tables(summary):
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, row in enumerate(rows):
            bold = mean_last and i == len(rows) - 1
            lines.append("| " + " | ".join((f"**{md_text(c)}**" if bold and c else md_text(c)) for c in row) + " |")
    lines += ["", "## Protocol, transcript overlap and test subsets", ""] + [f"- {md_text(ln)}" for ln in overlap_lines(summary)]
    lines += ["", "## Leakage audit", ""] + [f"- **{md_text(k)}**: {md_text(v)}" for k, v in audit.get("guarantees", {}).items()]
    return "\n".join(lines) + "\n"


def run_html(summary: dict, audit: dict) -> str:
    """The same content as ``run_markdown`` below its title, as HTML with every value escaped."""
    parts = ["<ul>" + "".join("<li>" + "".join(_esc(t) for t, _ in fact) + "</li>" for fact in _facts(summary, audit)) + "</ul>"]
    for header, rows, mean_last in _tables(summary):
        body = []
        for i, row in enumerate(rows):
            bold = mean_last and i == len(rows) - 1
            body.append("<tr>" + "".join(f"<td>{'<strong>' + _esc(c) + '</strong>' if bold and c else _esc(c)}</td>" for c in row) + "</tr>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>"
                     + "".join(body) + "</tbody></table>")
    warn = " class='warn'"
    parts.append("<h2>Protocol, transcript overlap and test subsets</h2><ul>" + "".join(
        f"<li{warn if ln.startswith('WARNING') else ''}>{_esc(ln)}</li>" for ln in overlap_lines(summary)) + "</ul>")
    parts.append("<h2>Leakage audit</h2><ul>" + "".join(f"<li><strong>{_esc(k)}</strong>: {_esc(v)}</li>"
                                                         for k, v in audit.get("guarantees", {}).items()) + "</ul>")
    return "\n".join(parts)


def _write_inside(folder: Path, name: str, data: str) -> Path:
    """``folder/name`` written through a temporary file and a rename: an existing symbolic link there
    (a received run folder may hold one) is replaced by the file, its target left alone."""
    return replace_into(folder / name, lambda tmp: tmp.write_text(data))


def write_report(run: str | Path, cams: int = 3) -> tuple[Path, Path]:
    """Write RUN/report.html (self-contained) and RUN/report.md."""
    run = Path(run)
    if not run.is_dir():
        raise EmofuseError(f"{run}: no such run folder")
    summary = _summary(run)
    audit = json.loads((run / "audit.json").read_text()) if _own(run, "audit.json") else {}
    md = run_markdown(run, summary, audit)
    config = (run / "config.yaml").read_text() if _own(run, "config.yaml") else ""
    curves = _curves_png(training_curves(run))
    maps, note = _cams(run, summary, cams)
    confusions = [(f"fold {k}", _png(p)) for k, p in sorted((int(p.parent.name.split("_")[1]), p)
                                                             for p in run.glob("fold_*/confusion.png") if _own(run, p.relative_to(run)))]
    title = _esc(summary.get("name") or summary["model"])
    parts = [f"<h1>{title}: {_esc(summary['corpus'])}</h1>", run_html(summary, audit)]
    if _own(run, "confusion.png"):
        parts.append(f"<h2>Confusion matrix (all folds pooled)</h2><img alt='pooled confusion' src='{_png(run / 'confusion.png')}'>")
    if curves:
        parts.append(f"<h2>Training curves</h2><img alt='training curves' src='{curves}'>")
    if confusions:
        parts.append("<h2>Per fold</h2><div class='grid'>" + "".join(
            f"<figure><img alt='{_esc(c)}' src='{u}'><figcaption>{_esc(c)}</figcaption></figure>" for c, u in confusions) + "</div>")
    parts.append("<h2>Class activation maps (fold 0, test speakers)</h2>")
    parts += [f"<figure><img alt='map' src='{u}'><figcaption>{_esc(c)}</figcaption></figure>" for c, u in maps]
    if note:
        parts.append(f"<p class='note'>{_esc(note)}</p>")
    parts.append(f"<h2>Config</h2><pre>{_esc(config)}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'>"
            # No script runs on this page, whatever a value holds (defence in depth behind the escaping).
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
            f"<title>emofuse report: {title}</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}.grid{display:grid;"
            "grid-template-columns:repeat(3,1fr);gap:8px}pre{background:#f5f5f5;padding:1em;font-size:12px}"
            ".note{color:#a60}.warn{color:#b00;font-weight:bold}</style></head><body>" + "\n".join(parts) + "</body></html>")
    html_path = _write_inside(run, "report.html", page)
    md_path = _write_inside(run, "report.md", md)
    return html_path, md_path


def compare_runs(runs: list[str | Path]) -> str:
    """A Markdown table of several runs (mean ± std over folds); every value from a run is escaped."""
    rows = ["| run | model | modalities | augmentation | folds | " + " | ".join(NAMES[k] for k in HEADLINE) + " |",
            "|---|---|---|---|---|---|---|---|"]
    for r in map(Path, runs):
        s = _summary(r)
        cells = [s.get("name") or r.name, s["model"], " + ".join(map(str, s.get("modalities", ["audio"]))),
                 s.get("augmentation", "none"), f"{len(s['per_fold'])}/{s['n_folds']}"]
        rows.append("| " + " | ".join(md_text(c) for c in cells) + " | "
                    + " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in HEADLINE) + " |")
    return "\n".join(rows) + "\n"
