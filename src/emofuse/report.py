"""Reports: one run as a self-contained HTML page (and the same numbers as Markdown), and
several runs side by side (the study's table, re-made from our own runs).

A report reads the run folder: config.yaml, run.json, audit.json, summary.json, inputs/manifest.csv,
fold_K/{split.csv, audit.json, metrics.json, predictions.csv, provenance.json, layer_weights.json,
tb/ (training curves)};
the manifest the run was made from (found by ``RunFolder.manifest_path``: relative to the run folder,
then absolute), for durations and audio; and, for one class activation map per class, the folds'
best checkpoints. Whatever cannot be made is listed at the top of the report with the reason.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import tempfile
from pathlib import Path

import numpy as np

from .atomic import replace_into
from .errors import EmofuseError
from .metrics import HEADLINE
from .stats import NAMES
from .subsets import overlap_lines
from .summary import summary_tables


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
    """fold -> tag -> [(global step, value)] from each fold's TensorBoard events (every event file in
    the folder, so a resumed fold's second session continues its first; a step logged twice keeps
    its last value)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[int, dict] = {}
    for tb in sorted(run.glob("fold_*/tb")):
        if not re.fullmatch(r"fold_\d+", tb.parent.name) or not tb.resolve().is_relative_to(run.resolve()):
            continue
        k = int(tb.parent.name.split("_")[1])
        acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
        acc.Reload()
        out[k] = {t: sorted(dict((e.step, e.value) for e in acc.Scalars(t)).items()) for t in acc.Tags().get("scalars", [])
                  if t in ("train/loss_epoch", "train/loss", "val/loss", "val/macro_f1")}
    return out


def _curves_png(curves: dict) -> str | None:
    """Loss and validation Macro-F1 against the global step, one colour per fold, with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not any(any(tags.values()) for tags in curves.values()):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for i, (k, tags) in enumerate(sorted(curves.items())):
        colour = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")(i % 20)
        train = "train/loss_epoch" if tags.get("train/loss_epoch") else "train/loss"
        for tag, ax, style in ((train, axes[0], "-"), ("val/loss", axes[0], "--"), ("val/macro_f1", axes[1], "-")):
            if tags.get(tag):
                ax.plot([s for s, _ in tags[tag]], [v for _, v in tags[tag]], style, color=colour, marker="o", ms=2.5, lw=1.2)
    handles = [Line2D([], [], color=plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")(i % 20), lw=2, label=f"fold {k}")
               for i, k in enumerate(sorted(curves))]
    axes[0].legend(handles=handles + [Line2D([], [], color="k", ls="-", label="train"),
                                      Line2D([], [], color="k", ls="--", label="validation")], fontsize=7, ncol=2)
    axes[1].legend(handles=handles, fontsize=7, ncol=2)
    axes[0].set(title="loss (solid: train, dashed: validation)", xlabel="global step (optimiser updates)")
    axes[1].set(title="validation Macro-F1 (model selection)", xlabel="global step (optimiser updates)")
    fig.tight_layout()
    return _fig_png(fig)


def _confusion_png(cm: list[list[int]], classes: list[str], title: str) -> str:
    """One small confusion matrix: colour and percentage row-normalised (recall per true class), counts below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(cm, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    n = len(classes)
    size = 1.4 + 0.48 * n
    fig, ax = plt.subplots(figsize=(size + 0.4, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(m[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center", fontsize=6 if n > 6 else 7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _fig_png(fig)


def _fold_confusions(run: Path, summary: dict) -> list[tuple[str, str]]:
    """[(caption, data uri)]: each finished fold's test confusion from its metrics.json."""
    classes = [str(c) for c in summary.get("classes", [])]
    out = []
    for k in folds_done(summary):
        rel = f"fold_{k}/metrics.json"
        if _own(run, rel) is None:
            continue
        try:
            m = json.loads((run / rel).read_text())
            cm = m["test"]["confusion"]
            tests = ", ".join(map(str, m.get("test_groups", [])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if len(cm) == len(classes):
            caption = f"fold {k}"
            out.append((caption, _confusion_png(cm, classes, f"fold {k}: test {tests[:40]}")))
    return out


def _cams(run: Path, summary: dict, n: int, manifest) -> tuple[list[tuple[str, str]], list[str]]:
    """One map per class: a correctly predicted test item of that class (the most confident, from
    any finished fold), explained for that class by the fold that tested it; for a class the
    model never got right, its test item with the highest probability for it (said in a note).
    Returns [(caption, data uri)] and notes (such classes, or why there are no maps)."""
    if n <= 0:
        return [], ["class activation maps: left out (--cams 0)"]
    if "audio" not in summary.get("modalities", ["audio"]):
        return [], ["class activation maps: text-only model, no audio maps"]
    if manifest is None:
        return [], ["class activation maps skipped: the manifest (and with it the audio) was not found"]
    try:
        from .explain import explain, plot_explanation
        from .inference import load

        df, why = pooled_predictions(run, summary)
        if df is None:
            return [], [f"class activation maps skipped: {why}"]
        prob = df.apply(lambda r: float(r.get(f"p_{r['label']}", 0) or 0), axis=1) if len(df) else df["y"]
        df = df.assign(conf=prob)
        rows = manifest.df.set_index("utt_id")
        out, notes, predictors = [], [], {}
        with tempfile.TemporaryDirectory() as scratch:  # not named after the utt_id: ids are data, not paths
            for i, c in enumerate(summary["classes"]):
                known = df[(df["label"] == str(c)) & df["utt_id"].isin(rows.index)]
                hits = known[known["pred"] == str(c)]
                if hits.empty:
                    notes.append(f"class {c}: no correctly predicted test item in the finished folds"
                                 + ("; its map is of the test item the model found most likely to be it" if len(known)
                                    else " and no test item of this class, so no map"))
                    hits = known
                    if hits.empty:
                        continue
                best = hits.sort_values(["conf", "fold"], ascending=[False, True]).iloc[0]
                k, utt = int(best["fold"]), best["utt_id"]
                if k not in predictors:
                    predictors[k] = load(run / f"fold_{k}", device="cpu")
                row = rows.loc[utt]
                tc = predictors[k].text_cfg  # the column the run's text branch read (ASR text for text.source=asr)
                column = ("text_asr" if tc.get("source") == "asr" else tc.get("column", "text")) if tc else "text"
                text = str(row[column]) if column in row.index and str(row[column]) else None
                e = explain(predictors[k], manifest.audio_path(row["path"]), text=text, target=str(c), utt=str(utt))
                png = plot_explanation(e, Path(scratch) / f"map_{i}.png")
                out.append((f"class {c}: {utt} (fold {k}, speaker {best['speaker']}), true {row['label']}, predicted "
                            f"{best['pred']}; {e.kind} map for {c}", _png(png)))
        return out, notes
    except EmofuseError as exc:
        return [], [f"class activation maps skipped: {exc}"]
    except Exception as exc:  # a report must not fail for want of audio
        return [], [f"class activation maps skipped: {type(exc).__name__}: {str(exc)[:200]}"]


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


def _facts(summary: dict, audit: dict, source: str | None = None) -> list[list[tuple[str, bool]]]:
    """The bullet lines above the tables, as (text, is data) pieces."""
    model = [("model ", False), (summary["model"], True), (", modalities: ", False),
             (" + ".join(map(str, summary.get("modalities", ["audio"]))), True)]
    if summary.get("text_encoder"):
        model += [(", text encoder ", False), (summary["text_encoder"], True)]
    model += [(", augmentation: ", False), (summary.get("augmentation", "none"), True)]
    return [model,
            [(f"{summary['n_folds']} folds (", False), (summary["scheme"], True),
             (f"), {'complete' if summary['complete'] else 'PARTIAL'}", False)],
            [(f"leakage audit: {'passed' if audit.get('passed') else 'FAILED'}", False)],
            [("manifest: ", False), (source or "not found", True)]]


Section = tuple  # (title, header, rows, notes below): plain text, rendered as Markdown or as escaped HTML
OLDER = "not recorded (run made by an older emofuse)"


def _title(summary: dict, class_map: str) -> str:
    """'NAME: CORPUS, class map MAP, MODEL, N-fold speaker-independent CV (SCHEME), PROTOCOL protocol'."""
    name = summary.get("name")
    head = f"{name}: " if name and str(name) != str(summary["model"]) else ""
    return (f"{head}{summary['corpus']}, class map {class_map}, model {summary['model']}, {summary['n_folds']}-fold "
            f"speaker-independent CV ({summary['scheme']}), protocol {summary.get('protocol', 'standard')}")


def _run_manifest(run: Path, summary: dict):
    """The manifest the run was made from: (Manifest or None, its table or None, where from, note or None).
    The recorded paths first (``RunFolder.manifest_path``), then the run's own copy
    inputs/manifest.csv (no durations and no audio paths: hours and maps are then left out)."""
    import pandas as pd

    from .manifest import read_manifest
    from .runfolder import RunFolder

    folder = RunFolder(run)
    path, how = folder.manifest_path(summary.get("manifest"))
    why = f"manifest {how}"
    if path is not None:
        try:
            m = read_manifest(path)
            return m, m.df, f"{path.resolve()}, found by the {how.split(' (')[0]}", None
        except EmofuseError as exc:
            why = str(exc)
    rel = folder.inputs.relative_to(folder.path)
    if _own(run, rel) is not None:
        table = pd.read_csv(run / rel, dtype=str, keep_default_na=False)
        return None, table, f"the run's copy {rel.as_posix()}", (
            f"{why}; the statistics use the run's copy {rel.as_posix()} (it has no durations and no audio paths)")
    return None, None, None, f"{why}, and the run has no {rel.as_posix()}"


def _splits(run: Path):
    """{fold: split table (utt_id, speaker, part)} for every fold with its own split.csv."""
    import pandas as pd

    out = {}
    for p in run.glob("fold_*/split.csv"):
        if re.fullmatch(r"fold_\d+", p.parent.name) and _own(run, p.relative_to(run)):
            out[int(p.parent.name.split("_")[1])] = pd.read_csv(p, dtype=str, keep_default_na=False)
    return dict(sorted(out.items()))


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def dataset_sections(run: Path, summary: dict, table) -> tuple[list[Section], list[str]]:
    """Items, hours and speakers per class, and items, hours, speakers and their gender per part of
    each fold, from the run's folds (fold_K/split.csv) and its manifest table. (sections, skip notes)"""
    splits = _splits(run)
    if table is None:
        return [], ["dataset statistics skipped: no manifest table (see above)"]
    if not splits:
        return [], [f"dataset statistics skipped: no fold_K/split.csv in {run}"]
    ids = sorted(set().union(*(set(t["utt_id"]) for t in splits.values())))
    df = table.drop_duplicates("utt_id").set_index("utt_id").reindex(ids)
    unknown = int(df["speaker"].isna().sum()) if "speaker" in df.columns else len(df)
    has_dur = "duration" in df.columns
    dur = df["duration"].astype(float).fillna(0.0) if has_dur else None
    notes, skipped = [], []
    if not has_dur:
        skipped.append("hours per class and part: the manifest table at hand has no durations (its original was not found)")
    if unknown:
        notes.append(f"{unknown} utterances of the folds are not in the manifest table")
    hours = (lambda mask: _hours(float(dur[mask].sum()))) if has_dur else (lambda mask: "n/a")  # noqa: E731
    classes = [str(c) for c in summary.get("classes", [])] or sorted(df["label"].dropna().unique())
    per_class = [[c, str(int((df["label"] == c).sum())), hours(df["label"] == c), str(df.loc[df["label"] == c, "speaker"].nunique())]
                 for c in classes]
    per_class.append(["all", str(len(df)), hours(np.ones(len(df), dtype=bool)), str(df["speaker"].nunique())])
    gender = (df.reset_index().drop_duplicates("speaker").set_index("speaker")["gender"].replace("", "unknown")
              if "gender" in df.columns else None)
    parts = []
    for k, t in splits.items():
        for part in ("train", "val", "test"):
            u = t.loc[t["part"] == part, "utt_id"]
            spk = sorted(set(t.loc[t["part"] == part, "speaker"]))
            g = gender.reindex(spk).fillna("unknown").value_counts().sort_index() if gender is not None else None
            parts.append([str(k), part, str(len(u)), hours(df.index.isin(u)), str(len(spk)),
                          ", ".join(f"{a} {n}" for a, n in g.items()) if g is not None else "n/a"])
    return [("Dataset: items, hours and speakers per class", ["class", "items", "hours", "speakers"], per_class,
             [f"the {len(ids)} utterances the run's folds hold (after any data.subset)"] + notes),
            ("Dataset: each fold's parts", ["fold", "part", "items", "hours", "speakers", "speakers by gender"], parts,
             ["validation speakers choose the checkpoint; test speakers are read once, after training"])], skipped


def audit_sections(run: Path, audit: dict) -> tuple[list[Section], list[str]]:
    """The audit's evidence: each fold's speakers per part, and every overlap check with the number
    of overlaps it found per fold (from fold_K/audit.json). (sections, skip notes)"""
    folds = audit.get("folds") or []
    if not folds:
        return [], ["leakage audit evidence skipped: audit.json lists no folds"]
    rows = []
    for f in folds:
        spk, counts = f.get("speakers", {}), f.get("counts", {})
        rows.append([str(f.get("fold")), "passed" if f.get("passed") else "FAILED", ", ".join(map(str, spk.get("test", []))),
                     ", ".join(map(str, spk.get("val", []))), str(len(spk.get("train", []))),
                     " / ".join(str(counts.get(p, "?")) for p in ("train", "val", "test"))])
    checks: dict[str, dict[int, str]] = {}
    near, skipped = set(), []
    for f in folds:
        k = f.get("fold")
        rel = f"fold_{k}/audit.json"
        try:
            rec = json.loads((run / rel).read_text()) if _own(run, rel) else None
        except (OSError, ValueError):
            rec = None
        if not isinstance(rec, dict):
            skipped.append(f"leakage audit checks of fold {k}: {rel} is missing or unreadable")
            continue
        for name, found in (rec.get("checks") or {}).items():
            checks.setdefault(str(name), {})[k] = str(len(found)) if isinstance(found, list) else str(found)
        if rec.get("near_duplicate_check"):
            near.add(str(rec["near_duplicate_check"]))
    ks = [f.get("fold") for f in folds]
    check_rows = [[name] + [by.get(k, "not recorded") for k in ks] for name, by in checks.items()]
    notes = ["a check passes with 0 overlaps; audit.json and fold_K/audit.json list the overlapping items (at most 20 each)"]
    notes += [f"near-duplicate audio: {n}" for n in sorted(near)]
    return [("Leakage audit: speakers per fold", ["fold", "audit", "test speakers", "validation speakers",
                                                  "training speakers", "items train / val / test"], rows, []),
            ("Leakage audit: overlaps found by each check, per fold", ["check"] + [f"fold {k}" for k in ks], check_rows, notes)
            ], skipped


def provenance_sections(run: Path, summary: dict) -> tuple[list[Section], list[str]]:
    """Run metadata: software, code commit and machine (fold_K/provenance.json), and per fold the
    wall time, training throughput and peak memory. (sections, skip notes)"""
    from .provenance import read_run

    records = {r.get("fold"): r for r in read_run(run) if _own(run, f"fold_{r.get('fold')}/provenance.json")}
    skipped = [] if records else [f"run metadata (versions, commit, device, peak memory): {OLDER}"]
    sections = []
    if records:
        rows = []
        for key, label in (("date", "date (fold finished)"), ("emofuse", "emofuse version"), ("git_commit", "git commit"),
                           ("python", "python"), ("torch", "torch"), ("lightning", "Lightning"), ("platform", "platform"),
                           ("cpu", "CPU"), ("gpu", "GPU"), ("cuda", "CUDA")):
            values: dict[str, list] = {}
            for k, r in records.items():
                values.setdefault(str(r.get(key) if r.get(key) is not None else "none"), []).append(k)
            rows.append([label, "; ".join(v if len(values) == 1 else f"{v} (fold {', '.join(map(str, ks))})"
                                          for v, ks in values.items())])
        sections.append(("Run metadata", ["", "value"], rows,
                         [f"fold {k}: {OLDER}" for k in folds_done(summary) if k not in records]))
    per, total_s, items, train_s = [], 0.0, 0, 0.0
    for k in folds_done(summary):
        m = {}
        if _own(run, f"fold_{k}/metrics.json"):
            try:
                m = json.loads((run / f"fold_{k}/metrics.json").read_text())
            except (OSError, ValueError):
                m = {}
        r = records.get(k, {})
        wall = m.get("wall_seconds", r.get("wall_seconds"))
        total_s += float(wall or 0)
        items += int(m.get("train_items") or 0)
        train_s += float(m.get("train_seconds") or 0)
        mib = lambda v: f"{v:.0f}" if isinstance(v, (int, float)) else ("none" if k in records else "not recorded")  # noqa: E731
        per.append([str(k), f"{wall:.1f}" if isinstance(wall, (int, float)) else "not recorded",
                    f"{m['train_utt_per_s']:.1f}" if isinstance(m.get("train_utt_per_s"), (int, float)) else "not recorded",
                    str(m.get("epochs_trained", "?")), mib(r.get("peak_rss_mib")), mib(r.get("peak_cuda_mib"))])
    if per:
        peak = [r.get("peak_rss_mib") for r in records.values() if isinstance(r.get("peak_rss_mib"), (int, float))]
        cuda = [r.get("peak_cuda_mib") for r in records.values() if isinstance(r.get("peak_cuda_mib"), (int, float))]
        per.append(["total", f"{total_s:.1f}", f"{items / train_s:.1f}" if train_s else "n/a", "",
                    f"{max(peak):.0f}" if peak else "", f"{max(cuda):.0f}" if cuda else ""])
        sections.append(("Run cost per fold", ["fold", "wall time (s)", "train utterances / s", "epochs",
                                               "peak RSS (MiB)", "peak CUDA (MiB)"], per,
                         ["wall time: the fold's training and selection (of its last session, when resumed); utterances / s: "
                          "training items over training-loop seconds; peak RSS: of the training process so far (folds "
                          "trained in one process share it); peak CUDA: allocated during the fold"]))
    return sections, skipped


def layer_weight_sections(run: Path, summary: dict) -> tuple[list[Section], list[str], str | None]:
    """The learned softmax weights over an encoder's layers (``fold_K/layer_weights.json``, written
    by models with a layer axis such as ``ssl_weighted``): per layer, each finished fold's weight
    and their mean ± std, and (HTML) a bar plot of the mean with each fold's weight as a dot.
    (sections, skip notes, plot or None). A run whose model has no layer axis gets nothing."""
    from .models.ssl_weighted import WEIGHTS_FILE

    done = folds_done(summary)
    found, bad = {}, []
    for k in done:
        rel = f"fold_{k}/{WEIGHTS_FILE}"
        if not (run / rel).exists():
            continue
        try:
            w = json.loads((run / rel).read_text()) if _own(run, rel) else None
            layers, weights = [int(x) for x in w["layers"]], [float(x) for x in w["weights"]]
            if len(layers) != len(weights):
                raise ValueError
            found[k] = dict(zip(layers, weights))
        except (OSError, ValueError, TypeError, KeyError):
            bad.append(k)
    skipped = [f"layer weights: fold {k} has an unreadable {WEIGHTS_FILE} (re-train the fold to write it again)" for k in bad]
    if not found:
        return [], skipped, None
    missing = [k for k in done if k not in found and k not in bad]
    skipped += [f"layer weights: fold {k} has no {WEIGHTS_FILE}" for k in missing]
    layers = sorted({layer for w in found.values() for layer in w})
    table = np.array([[found[k].get(layer, np.nan) for layer in layers] for k in found])  # (folds, layers)
    mean, std = np.nanmean(table, 0), np.nanstd(table, 0)
    rows = [[str(layer), *(f"{v:.3f}" if np.isfinite(v) else "-" for v in table[:, j]), f"{mean[j]:.3f} ± {std[j]:.3f}"]
            for j, layer in enumerate(layers)]
    top = layers[int(np.argmax(mean))]
    notes = ["softmax weights over the encoder's hidden states (0: the input of its first layer; the last: its output); "
             f"the largest mean weight is on layer {top}"]
    section = ("Learned layer weights", ["layer", *(f"fold {k}" for k in found), "mean ± std"], rows, notes)
    return [section], skipped, _layer_weights_png(layers, table, mean, std)


def _layer_weights_png(layers: list[int], table: np.ndarray, mean: np.ndarray, std: np.ndarray) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(layers), 3.2))
    x = np.arange(len(layers))
    ax.bar(x, mean, yerr=std, color="#4a7ab5", capsize=3, label="mean ± std over folds")
    for row in table:
        ax.plot(x, row, "o", color="#222", markersize=3, alpha=0.6)
    ax.set_xticks(x, [str(layer) for layer in layers])
    ax.set_xlabel("encoder hidden state")
    ax.set_ylabel("softmax weight")
    ax.set_title("Learned layer weights (dots: folds)")
    fig.tight_layout()
    return _fig_png(fig)


def _md_sections(sections: list[Section]) -> list[str]:
    lines = []
    for title, header, rows, notes in sections:
        lines += ["", f"## {md_text(title)}", ""] + _md_table(header, rows)
        lines += [""] * bool(notes) + [f"- {md_text(n)}" for n in notes]
    return lines


def _html_sections(sections: list[Section]) -> str:
    return "\n".join(f"<h2>{_esc(title)}</h2>" + _html_table(header, rows)
                     + ("<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>" if notes else "")
                     for title, header, rows, notes in sections)


def run_markdown(title: str, summary: dict, audit: dict, stats: dict | None, before: list[Section],
                 after: list[Section], skipped: list[str], source: str | None) -> str:
    lines = [f"# {md_text(title)}", ""]
    if skipped:
        lines += ["**Skipped or incomplete** (each with its reason):", ""] + [f"- {md_text(x)}" for x in skipped] + [""]
    lines += ["- " + "".join(md_text(t) if data else t for t, data in fact) for fact in _facts(summary, audit, source)]
    for header, rows, mean_last in summary_tables(summary):
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, row in enumerate(rows):
            bold = mean_last and i == len(rows) - 1
            lines.append("| " + " | ".join((f"**{md_text(c)}**" if bold and c else md_text(c)) for c in row) + " |")
    lines += _md_sections(before)
    lines += stats_markdown(stats) if stats else []
    lines += ["", "## Protocol, transcript overlap and test subsets", ""] + [f"- {md_text(ln)}" for ln in overlap_lines(summary)]
    lines += ["", "## Leakage audit", ""] + [f"- **{md_text(k)}**: {md_text(v)}" for k, v in audit.get("guarantees", {}).items()]
    lines += _md_sections(after)
    lines += ["", "Figures (training curves, per-fold confusion matrices, class activation maps) are in report.html."]
    return "\n".join(lines) + "\n"


def run_html(summary: dict, audit: dict, stats: dict | None, before: list[Section], after: list[Section],
             skipped: list[str], source: str | None) -> str:
    """The same content as ``run_markdown`` below its title, as HTML with every value escaped."""
    parts = []
    if skipped:
        parts.append("<div class='skipped'><strong>Skipped or incomplete</strong> (each with its reason):<ul>"
                     + "".join(f"<li>{_esc(x)}</li>" for x in skipped) + "</ul></div>")
    parts.append("<ul>" + "".join("<li>" + "".join(_esc(t) for t, _ in fact) + "</li>"
                                  for fact in _facts(summary, audit, source)) + "</ul>")
    for header, rows, mean_last in summary_tables(summary):
        body = []
        for i, row in enumerate(rows):
            bold = mean_last and i == len(rows) - 1
            body.append("<tr>" + "".join(f"<td>{'<strong>' + _esc(c) + '</strong>' if bold and c else _esc(c)}</td>" for c in row) + "</tr>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>"
                     + "".join(body) + "</tbody></table>")
    parts.append(_html_sections(before))
    if stats:
        parts.append(stats_html(stats))
    warn = " class='warn'"
    parts.append("<h2>Protocol, transcript overlap and test subsets</h2><ul>" + "".join(
        f"<li{warn if ln.startswith('WARNING') else ''}>{_esc(ln)}</li>" for ln in overlap_lines(summary)) + "</ul>")
    parts.append("<h2>Leakage audit</h2><ul>" + "".join(f"<li><strong>{_esc(k)}</strong>: {_esc(v)}</li>"
                                                         for k, v in audit.get("guarantees", {}).items()) + "</ul>")
    parts.append(_html_sections(after))
    return "\n".join(parts)


def _write_inside(folder: Path, name: str, data: str) -> Path:
    """``folder/name`` written through a temporary file and a rename: an existing symbolic link there
    (a received run folder may hold one) is replaced by the file, its target left alone."""
    return replace_into(folder / name, lambda tmp: tmp.write_text(data))


def write_report(run: str | Path, cams: int = 3) -> tuple[Path, Path]:
    """Write RUN/report.html (self-contained) and RUN/report.md. ``cams`` > 0: one class activation
    map per class (0 leaves them out). A section that cannot be made is listed at the top with why."""
    run = Path(run)
    if not run.is_dir():
        raise EmofuseError(f"{run}: no such run folder")
    summary = _summary(run)
    audit = json.loads((run / "audit.json").read_text()) if _own(run, "audit.json") else {}
    manifest, table, source, note = _run_manifest(run, summary)
    skipped = [note] if note else []
    cmap = class_map_name({**summary, "manifest": str(manifest.path)} if manifest is not None else summary)
    title = _title(summary, cmap)
    stats = run_stats(run, summary)
    if stats.get("pooled") is None and stats.get("note"):
        skipped.append(f"pooled statistics, per-class, per-speaker and per-gender tables: {stats['note']}")
    elif stats.get("gender_note"):
        skipped.append(stats["gender_note"])
    data, why = dataset_sections(run, summary, table)
    prov, why_prov = provenance_sections(run, summary)
    evidence, why_audit = audit_sections(run, audit)
    layer_w, why_layers, layer_plot = layer_weight_sections(run, summary)
    skipped += why + why_prov + why_audit + why_layers
    config = (run / "config.yaml").read_text() if _own(run, "config.yaml") else None
    if config is None:
        skipped.append("config: config.yaml is missing (or a link out of the run)")
    curves = _curves_png(training_curves(run))
    if not curves:
        skipped.append("training curves (HTML): no TensorBoard scalars in fold_K/tb")
    confusions = _fold_confusions(run, summary)
    if len(confusions) < len(folds_done(summary)):
        skipped.append(f"per-fold confusion matrices (HTML): {len(folds_done(summary)) - len(confusions)} finished "
                       "fold(s) have no readable fold_K/metrics.json")
    maps, map_notes = _cams(run, summary, cams, manifest)
    skipped += [n for n in map_notes if n != "class activation maps: left out (--cams 0)"]
    if cams <= 0:
        skipped.append("class activation maps (HTML): left out (--cams 0)")
    if not _own(run, "confusion.png"):
        skipped.append("pooled confusion matrix (HTML): confusion.png is missing")
    md = run_markdown(title, summary, audit, stats, prov + data + layer_w, evidence, skipped, source)
    parts = [f"<h1>{_esc(title)}</h1>", run_html(summary, audit, stats, prov + data + layer_w, evidence, skipped, source)]
    if layer_plot:
        parts.append(f"<h2>Learned layer weights: plot</h2><img alt='learned layer weights' src='{layer_plot}'>")
    if _own(run, "confusion.png"):
        parts.append(f"<h2>Confusion matrix (all folds pooled)</h2><img alt='pooled confusion' src='{_png(run / 'confusion.png')}'>")
    if curves:
        parts.append(f"<h2>Training curves</h2><img alt='training curves' src='{curves}'>")
    if confusions:
        parts.append("<h2>Per fold: test confusion matrices</h2><p>Rows: true class; each cell: count and share of its row "
                     "(recall on the diagonal).</p><div class='grid'>" + "".join(
                         f"<figure><img alt='{_esc(c)}' src='{u}'><figcaption>{_esc(c)}</figcaption></figure>" for c, u in confusions)
                     + "</div>")
    parts.append("<h2>Class activation maps (one correctly predicted test item per class)</h2>")
    parts += [f"<figure><img alt='map' src='{u}'><figcaption>{_esc(c)}</figcaption></figure>" for c, u in maps]
    parts += [f"<p class='note'>{_esc(n)}</p>" for n in map_notes]
    if config is not None:
        parts.append(f"<h2>Config</h2><pre>{_esc(config)}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'>"
            # No script runs on this page, whatever a value holds (defence in depth behind the escaping).
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
            f"<title>emofuse report: {_esc(title)}</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}.grid{display:grid;"
            "grid-template-columns:repeat(3,1fr);gap:8px}pre{background:#f5f5f5;padding:1em;font-size:12px}"
            ".note{color:#a60}.warn{color:#b00;font-weight:bold}.skipped{border:1px solid #a60;padding:.5em 1em;"
            "background:#fff8ee}</style></head><body>" + "\n".join(parts) + "</body></html>")
    html_path = _write_inside(run, "report.html", page)
    md_path = _write_inside(run, "report.md", md)
    return html_path, md_path


# ----------------------------------------------------------------------------- statistics of one run
def folds_done(summary: dict) -> list[int]:
    return sorted(summary.get("folds_done") or [f["fold"] for f in summary.get("per_fold", [])])


def pooled_predictions(run: Path, summary: dict):
    """The finished folds' test predictions in one table (a ``fold`` column added), with label and
    prediction as class indices (``y``, ``p``); or (None, why not)."""
    import pandas as pd

    classes = list(summary.get("classes") or [])
    if not classes:
        return None, "summary.json lists no classes"
    index = {c: i for i, c in enumerate(classes)}
    tables = []
    for k in folds_done(summary):
        rel = f"fold_{k}/predictions.csv"
        if _own(run, rel) is None:
            return None, f"{run / rel} is missing"
        t = pd.read_csv(run / rel, dtype=str, keep_default_na=False)
        if not {"utt_id", "speaker", "label", "pred"} <= set(t.columns):
            return None, f"{run / rel} lacks utt_id, speaker, label or pred"
        unknown = sorted((set(t["label"]) | set(t["pred"])) - set(index))
        if unknown:
            return None, f"{run / rel} holds classes {unknown[:3]} that summary.json does not list"
        tables.append(t.assign(fold=k))
    if not tables:
        return None, "no finished fold"
    df = pd.concat(tables, ignore_index=True)
    return df.assign(y=df["label"].map(index).astype(int), p=df["pred"].map(index).astype(int)), None


def run_stats(run: Path, summary: dict, b: int = 1000, seed: int = 0) -> dict:
    """Intervals over folds and by speaker bootstrap, per-class and per-speaker results, baselines."""
    from .stats import baselines, confusions_by_group, metrics_from_confusion, per_class, speaker_bootstrap, t_interval

    out: dict = {"folds": {k: t_interval([f[k] for f in summary["per_fold"]]) for k in HEADLINE}, "pooled": None}
    df, why = pooled_predictions(run, summary)
    out["note"] = None
    if df is None:
        out["note"] = f"pooled statistics skipped: {why}"
        return out
    classes = list(summary["classes"])
    y, p, spk = df["y"].to_numpy(), df["p"].to_numpy(), df["speaker"].to_numpy()
    out["pooled"] = speaker_bootstrap(y, p, spk, len(classes), b=b, seed=seed)
    cm, names = confusions_by_group(y, p, spk, len(classes))
    out["per_class"] = per_class(cm.sum(0), classes)
    m = metrics_from_confusion(cm)
    fold_of = df.groupby("speaker")["fold"].agg(lambda s: ", ".join(map(str, sorted(set(s)))))
    out["per_speaker"] = [{"speaker": s, "fold": fold_of[s], "n": int(cm[i].sum()), **{k: float(m[k][i]) for k in HEADLINE}}
                          for i, s in enumerate(names)]
    out["per_gender"], out["gender_note"] = _per_gender(run, df, len(classes))
    base = baselines(y, len(classes))
    base["majority"]["class"] = classes[base["majority"]["class"]]
    out["baselines"] = base
    return out


def _per_gender(run: Path, df, n_classes: int) -> tuple[list[dict], str | None]:
    """Results per gender from the pooled predictions and the run's own record of its manifest
    (inputs/manifest.csv, so a moved run still has it): (rows, None) or ([], why not)."""
    import pandas as pd

    from .runfolder import RunFolder
    from .stats import confusions_by_group, metrics_from_confusion

    rel = RunFolder(run).inputs.relative_to(run)
    if _own(run, rel) is None:
        return [], f"per-gender results skipped: {run / rel} is missing"
    record = pd.read_csv(run / rel, dtype=str, keep_default_na=False)
    if "gender" not in record.columns or "utt_id" not in record.columns:
        return [], f"per-gender results skipped: {run / rel} has no gender column"
    gender = df["utt_id"].map(record.drop_duplicates("utt_id").set_index("utt_id")["gender"]).fillna("").replace("", "unknown")
    cm, names = confusions_by_group(df["y"], df["p"], gender, n_classes)
    m = metrics_from_confusion(cm)
    speakers = df.groupby(gender.to_numpy())["speaker"].nunique()
    return [{"gender": g, "speakers": int(speakers[g]), "n": int(cm[i].sum()), **{k: float(m[k][i]) for k in HEADLINE}}
            for i, g in enumerate(names)], None


def _stat_sections(stats: dict) -> list[tuple[str, list[str], list[list[str]], list[str]]]:
    """The statistics as plain text: [(title, header, rows, notes below)]."""
    f, pooled = stats["folds"], stats["pooled"]
    rows = []
    for k in HEADLINE:
        row = [NAMES[k], f"{f[k]['mean']:.3f} ± {f[k]['std']:.3f}", Num(f"[{f[k]['lo']:.3f}, {f[k]['hi']:.3f}]")]
        if pooled:
            row += [f"{pooled[k]['value']:.3f}", Num(f"[{pooled[k]['lo']:.3f}, {pooled[k]['hi']:.3f}]")]
        rows.append(row)
    header = ["metric", "mean ± std over folds", "95% t interval"]
    notes = [f"{f['macro_f1']['method']}, on the per-fold values"]
    if pooled:
        header += [f"pooled ({pooled['n']} test utterances)", "95% speaker bootstrap"]
        notes.append(pooled["method"] + "; on the pooled test predictions of all finished folds")
        base = stats["baselines"]
        header += ["chance (uniform guess)", f"majority (always {base['majority']['class']})"]
        for row, k in zip(rows, HEADLINE):
            row += [f"{base['chance'][k]:.3f}", f"{base['majority'][k]:.3f}"]
        notes.append("baselines from the pooled test labels: chance = expected score of a uniform random guess; "
                     "majority = always the most frequent test class (it peeks at the test labels)")
    else:
        notes.append(stats["note"])
    out = [("Confidence intervals and baselines", header, rows, notes)]
    if pooled:
        out.append(("Per class (pooled test predictions)", ["class", "precision", "recall", "F1", "support"],
                    [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])]
                     for r in stats["per_class"]], []))
        out.append(("Per speaker (test predictions)", ["speaker", "fold", "n"] + [NAMES[k] for k in HEADLINE],
                    [[r["speaker"], r["fold"], str(r["n"])] + [f"{r[k]:.3f}" for k in HEADLINE] for r in stats["per_speaker"]],
                    ["Macro-F1 and UA per speaker average over the classes that speaker has"]))
        out.append(("Per gender (test predictions)", ["gender", "speakers", "n"] + [NAMES[k] for k in HEADLINE],
                    [[r["gender"], str(r["speakers"]), str(r["n"])] + [f"{r[k]:.3f}" for k in HEADLINE]
                     for r in stats["per_gender"]], [stats["gender_note"]] if stats["gender_note"] else []))
    return out


class Num(str):
    """Text this module formatted from numbers only (``f"[{lo:.3f}, {hi:.3f}]"``): nothing from a run
    is in it, so Markdown shows it as it is instead of escaping its brackets."""


def _md_cell(c) -> str:
    return str(c) if isinstance(c, Num) and re.fullmatch(r"[0-9.,:+\-−±/ \[\]a-z]*", c) else md_text(c)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(md_text(h) for h in header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows])


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    return ("<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows) + "</tbody></table>")


def stats_markdown(stats: dict) -> list[str]:
    lines = []
    for title, header, rows, notes in _stat_sections(stats):
        lines += ["", f"## {md_text(title)}", ""] + _md_table(header, rows)
        lines += [""] * bool(notes) + [f"- {md_text(n)}" for n in notes]
    return lines


def stats_html(stats: dict) -> str:
    return "\n".join(f"<h2>{_esc(title)}</h2>" + _html_table(header, rows)
                     + ("<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>" if notes else "")
                     for title, header, rows, notes in _stat_sections(stats))


# ----------------------------------------------------------------------------- several runs
def split_fingerprint(run: Path) -> str | None:
    """One hash of every fold's split.csv (utt_id, speaker, part): runs with the same fingerprint were
    trained and tested on the same folds. None when a fold's split.csv is missing."""
    import hashlib

    folds = sorted((int(p.name.split("_")[1]), p) for p in run.glob("fold_*") if re.fullmatch(r"fold_\d+", p.name))
    h = hashlib.sha1()
    for k, p in folds:
        f = _own(run, p.relative_to(run) / "split.csv")
        if f is None:
            return None
        h.update(f"fold_{k}\n".encode() + hashlib.sha1(f.read_bytes()).hexdigest().encode())
    return h.hexdigest()[:12] if folds else None


def class_map_name(summary: dict) -> str:
    """The class map's name (from the manifest's prepare.json when the summary does not say), else its classes."""
    if summary.get("class_map"):
        return str(summary["class_map"])
    try:
        meta = json.loads((Path(summary["manifest"]).parent / "prepare.json").read_text())
        if list(meta.get("classes", [])) == list(summary.get("classes", [])) and meta.get("class_map"):
            return str(meta["class_map"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return "/".join(map(str, summary.get("classes", [])))


def _entry(run: Path) -> dict:
    """One run for compare: {label, status, summary, key, ...}; status 'ok' or why it is not ranked."""
    from .splits import LeakageError

    e = {"run": run, "label": str(run), "summary": None, "status": "ok"}
    if not run.is_dir():
        return {**e, "status": "not a run folder"}
    try:
        s = _summary(run)
    except LeakageError:
        return {**e, "status": "audit failed" if _own(run, "audit.json") else "audit missing"}
    except EmofuseError:
        return {**e, "status": "unfinished: no fold finished yet (no summary.json)"}
    except (ValueError, OSError) as exc:
        return {**e, "status": f"unreadable summary: {type(exc).__name__}"}
    e["summary"] = s
    fp = split_fingerprint(run)
    if fp is None:
        return {**e, "status": "folds unknown (a fold_K/split.csv is missing)"}
    e["key"] = (str(s.get("corpus")), tuple(map(str, s.get("classes", []))), fp)
    e["complete"] = bool(s.get("complete"))
    return e


def _cell(summary: dict, k: str) -> str:
    from .stats import t_interval

    ci = t_interval([f[k] for f in summary["per_fold"]])
    return Num(f"{ci['mean']:.3f} ± {ci['std']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]")


def _paired_lines(ref: dict, other: dict, b: int, seed: int) -> tuple[list[list[str]], str, list[str]]:
    """Rows of the paired table, the Macro-F1 sentence and method notes (both Markdown, values escaped)
    for ``other`` against ``ref``."""
    from .stats import paired_folds, paired_speaker_test

    sa, sb = ref["summary"], other["summary"]
    fa = {f["fold"]: f for f in sa["per_fold"]}
    fb = {f["fold"]: f for f in sb["per_fold"]}
    common = sorted(set(fa) & set(fb))
    notes = []
    speaker = None
    da, why_a = pooled_predictions(ref["run"], {**sa, "folds_done": common})
    db, why_b = pooled_predictions(other["run"], {**sb, "folds_done": common})
    if da is not None and db is not None:
        m = da.merge(db, on="utt_id", suffixes=("_a", "_b"))
        if len(m) == len(da) == len(db) and (m["y_a"] == m["y_b"]).all():
            speaker = paired_speaker_test(m["y_a"].to_numpy(), m["p_a"].to_numpy(), m["p_b"].to_numpy(),
                                          m["speaker_a"].to_numpy(), len(sa["classes"]), b=b, seed=seed)
            notes.append(md_text(speaker["method"]))
        else:
            notes.append("speaker-level test skipped: the two runs' test utterances or labels differ")
    else:
        notes.append(f"speaker-level test skipped: {md_text(why_a or why_b)}")
    rows, sentence = [], ""
    for k in HEADLINE:
        pr = paired_folds({f: fa[f][k] for f in common}, {f: fb[f][k] for f in common}, k, speaker[k] if speaker else None)
        ci, sp = pr.fold_ci, pr.speaker
        rows.append([other["label"], NAMES[k], f"{ci['mean']:+.3f}", Num(f"[{ci['lo']:+.3f}, {ci['hi']:+.3f}]"),
                     f"{pr.wins}/{len(common)}", f"{pr.wilcoxon['p']:.3g}",
                     f"{sp['diff']:+.3f}" if sp else "", Num(f"[{sp['lo']:+.3f}, {sp['hi']:+.3f}]") if sp else "",
                     f"{sp['p']:.3g}" if sp else ""])
        if k == "macro_f1":
            sentence = pr.sentence(md_text(ref["label"]), md_text(other["label"]))
            verdict = ("a difference at the 5% level" if pr.significant() else "no evidence of a difference at the 5% level")
            sentence = sentence[:-1] + f": {verdict}."
            notes.insert(0, md_text(f"folds compared: {', '.join(map(str, common))}; {pr.wilcoxon['note']}"))
    return rows, sentence, notes


def compare_runs(runs: list[str | Path], b: int = 1000, seed: int = 0) -> str:
    """Several runs as Markdown: one ranked table per group of comparable runs (same corpus, classes
    and fold splits), with fold t-intervals, the chance and majority baselines, and each run paired
    with the group's first run (fold differences, Wilcoxon, speaker-level permutation test).
    Runs that cannot be ranked (unfinished, audit failed, folds unknown) are listed with the reason.
    Every value from a run is escaped."""
    if b < 100:
        raise EmofuseError(f"--bootstrap {b}: too few resamples for a 95% interval; use at least 100 (default 1000)")
    entries = [_entry(Path(r)) for r in runs]
    groups: dict[tuple, list[dict]] = {}
    for e in entries:
        if e["status"] == "ok":
            groups.setdefault(e["key"], []).append(e)
    lines = [f"# Compare: {len(entries)} runs", ""]
    if len(groups) > 1:
        lines += ["Runs on different corpora, class sets or folds (fold_K/split.csv fingerprints) are in separate "
                  "groups and are never ranked together.", ""]
    metric_header = [f"{NAMES[k]}: mean ± std (95% t)" for k in HEADLINE]
    for gi, ((corpus, classes, fp), members) in enumerate(groups.items(), 1):
        s0 = members[0]["summary"]
        lines += [f"## Group {gi}: {md_text(corpus)}, classes {md_text(', '.join(classes))}, folds {fp} "
                  f"({md_text(s0.get('n_folds'))} folds, {md_text(s0.get('scheme', '?'))})", ""]
        done = sorted((m for m in members if m["complete"]), key=lambda m: -m["summary"]["macro_f1"]["mean"])
        rank = {id(m): str(i) for i, m in enumerate(done, 1)}
        rows = []
        for m in members:
            s = m["summary"]
            named = s.get("name") and str(s["name"]) != m["run"].name
            rows.append([rank.get(id(m), "partial"), m["label"] + (f" (name: {s['name']})" if named else ""), s.get("corpus"), class_map_name(s), s.get("model"),
                         " + ".join(map(str, s.get("modalities", ["audio"]))), s.get("augmentation", "none"),
                         f"{len(s['per_fold'])}/{s['n_folds']}"] + [_cell(s, k) for k in HEADLINE])
        pooled, why = pooled_predictions(members[0]["run"], s0)
        if pooled is not None:
            from .stats import baselines

            base = baselines(pooled["y"].to_numpy(), len(classes))
            for name, label in (("chance", "chance (uniform guess)"),
                                ("majority", f"majority (always {classes[base['majority']['class']]})")):
                rows.append(["", label, "", "", "", "", "", ""] + [f"{base[name][k]:.3f}" for k in HEADLINE])
        header = ["rank", "run", "corpus", "class map", "model", "modalities", "augmentation", "folds"] + metric_header
        lines += _md_table(header, rows) + [""]
        lines.append("- ranked by mean Macro-F1 over folds (finished runs only); the interval in brackets is the 95% t interval over folds")
        lines.append(f"- baselines from the test labels of {md_text(members[0]['label'])} (pooled): chance = expected "
                     "score of a uniform random guess, majority = always the most frequent test class"
                     if pooled is not None else f"- baselines skipped: {md_text(why)}")
        if len(members) > 1:
            ref = members[0]
            lines += ["", f"### Paired with {md_text(ref['label'])} (B − A, A = {md_text(ref['label'])})", ""]
            prow, text = [], []
            for other in members[1:]:
                r, sentence, notes = _paired_lines(ref, other, b, seed)
                prow += r
                text += [f"- {sentence}"] + [f"  - {x}" for x in notes]
            lines += _md_table(["run B", "metric", "B − A (fold mean)", "95% t", "folds B better", "Wilcoxon p",
                                "pooled B − A", "95% speaker bootstrap", "permutation p"], prow) + [""] + text
        lines.append("")
    skipped = [e for e in entries if e["status"] != "ok"]
    if skipped:
        lines += ["## Not ranked", ""] + _md_table(["run", "status"], [[e["label"], e["status"]] for e in skipped]) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"
