"""Rewrite the README tables that come from committed result records (never typed by hand).

A table block in README.md or benchmarks/README.md looks like::

    <!-- table: transcript_overlap -->
    ...generated...
    <!-- /table -->

and is regenerated from ``benchmarks/results/<name>.json`` by the renderer of that name below;
``<!-- table: name:line -->`` renders the same record through the renderer ``name:line`` (the
main README's one-line summaries).
``python benchmarks/render_tables.py`` rewrites every block; ``--check`` only says which differ
(the test suite runs the check, so a table and its record cannot disagree).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DOCS = [REPO / "README.md", REPO / "benchmarks" / "README.md"]
# NAME or NAME:VARIANT (a second rendering of the same record, e.g. the README's one-line summary)
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w:-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _pm(m: dict) -> str:
    return f"{m['mean']:.3f} ± {m['std']:.3f}"


def transcript_overlap(rec: dict) -> str:
    lines = ["| model | protocol | test lines seen in training (all / 3+ words) | training items left out per fold "
             "| Macro-F1 | UA | test: scripted | test: improvised | test: line seen | test: line unseen |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        ov, sub = r["overlap"], r["subsets"]
        cell = lambda name: f"{sub[name]['macro_f1']:.3f} (n={sub[name]['n']})" if name in sub else "-"  # noqa: E731
        lines.append(f"| `{r['model']}` | {r['protocol']} | {ov['test_share']:.0%} / {ov['test_share_min_words']:.0%} | "
                     f"{', '.join(map(str, ov['removed_from_train']))} | {_pm(r['macro_f1'])} | {_pm(r['ua'])} | "
                     f"{cell('scripted')} | {cell('improvised')} | {cell('transcript_seen')} | {cell('transcript_unseen')} |")
    lines.append("")
    lines.append(f"Record `benchmarks/results/transcript_overlap.json` ({rec['command']}; commit {rec['commit']}, "
                 f"{rec['date']}, {rec['machine']}). Subset columns: Macro-F1 over the test items of that kind, folds pooled.")
    return "\n".join(lines) + "\n"


def cross_corpus(rec: dict) -> str:
    ins, cross, train = rec["in_corpus_test"], rec["cross_corpus"], rec["train"]
    counts = cross["counts"]
    lines = ["| trained on | evaluated on | utterances | Macro-F1 | UA | WA |", "|---|---|---|---|---|---|",
             f"| {train['corpus']} {train['class_map']}, fold {train['fold']} train part | {train['corpus']} fold "
             f"{train['fold']} test part (unseen actors) | {ins.get('n', '-')} | {ins['macro_f1']:.3f} | {ins['ua']:.3f} | "
             f"{ins['wa']:.3f} |",
             f"| {train['corpus']} {train['class_map']}, fold {train['fold']} train part | {cross['corpus']} | "
             f"{counts['evaluated']} of {counts['manifest']} | {cross['macro_f1']:.3f} | {cross['ua']:.3f} | {cross['wa']:.3f} |",
             ""]
    left = ", ".join(f"{k} {v}" for k, v in counts["not_predictable_by_class"].items()) or "none"
    lines.append(f"Chance UA {rec['chance_ua']:.2f}. Left out of the cross-corpus metrics: classes the run cannot "
                 f"predict ({left}), audio it trained on ({counts['audio_the_run_trained_on']}). Record "
                 f"`benchmarks/results/cross_corpus.json` ({rec['command']}; commit {rec['commit']}, {rec['date']}, "
                 f"{rec['machine']}; {rec['model']}, {' '.join(rec['recipe'])}; train {rec['wall_seconds']['train']:.0f} s, "
                 f"evaluate {rec['wall_seconds']['evaluate']:.0f} s).")
    return "\n".join(lines) + "\n"


def serve_load(rec: dict) -> str:
    svc = rec["service"]
    lines = ["| requests | in flight | service concurrency / queue | failed | p50 latency | p95 latency | throughput "
             "| server memory (idle / peak PSS) |",
             "|---|---|---|---|---|---|---|---|",
             f"| {rec['requests']} | {rec['clients']} | {svc['concurrency']} / {svc['queue']} | {rec['failed']} | "
             f"{rec['p50_ms']:.0f} ms | {rec['p95_ms']:.0f} ms | {rec['throughput_rps']:.1f} req/s | "
             f"{rec['server_idle_mib']} / {rec['server_peak_mib']} MiB |",
             "",
             f"Record `benchmarks/results/serve_load.json` ({rec['command']}; commit {rec['commit']}, {rec['date']}, "
             f"{rec['machine']}; machine load average {rec['load_avg'][0]} / {rec['load_avg'][1]} before / after, shared with "
             f"other jobs). Model: {rec['model']}; each request one {rec['clip']}, over loopback."]
    return "\n".join(lines) + "\n"


def _frontend_rows(rec: dict) -> list[dict]:
    """The front-end rows in a fixed order (format, then most workers first), each with its median
    passes, their ratio (what the target is judged on) and whether it counts for the target: the
    target is for all of a machine's cores, so one-worker rows are context."""
    rows = []
    for r in sorted(rec["runs"], key=lambda r: (r["format"], -r["workers"])):
        lib, ours = statistics.median(r["librosa_passes_s"]), statistics.median(r["emofuse_passes_s"])
        rows.append({**r, "librosa_s": lib, "emofuse_s": ours, "ratio": lib / ours,
                     "judged": r["workers"] == r.get("cores", rec.get("cores")), "label":
                     f"{r['format'].upper()} with {r['workers']} worker{'s' if r['workers'] != 1 else ''}"})
    return rows


def _frontend_verdict(rec: dict, rows: list[dict]) -> str:
    judged = [r for r in rows if r["judged"]]
    if not judged:
        return "not judged (no row uses all of its machine's cores)"
    met = [r["label"] for r in judged if r["ratio"] >= rec["target_speedup"]]
    missed = [r["label"] for r in judged if r["ratio"] < rec["target_speedup"]]
    return "; ".join(part for part in (f"met on {', '.join(met)}" if met else "",
                                      f"not met on {', '.join(missed)}" if missed else "") if part)


def frontend_vs_librosa(rec: dict) -> str:
    """One row per audio format and worker count: medians of the alternating passes, their ratio
    and the ratio of the best passes (least interference); every pass and the load are kept."""
    lines = ["| audio | emofuse workers | files (audio) | librosa, median pass (s) | emofuse, median pass (s) | speed-up (medians) "
             "| speed-up (best passes) | emofuse audio s per s | decoding alone, soundfile / emofuse (s) | largest difference (dB) "
             "| 1-min load before / after |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = _frontend_rows(rec)
    for r in rows:
        la = r.get("load_average") or rec.get("load_average") or {"before": ["-"], "after": ["-"]}
        lines.append(f"| {r['format'].upper()} | {r['workers']} of {r.get('cores', rec.get('cores'))} cores | {r['files']:,} "
                     f"({r['audio_seconds'] / 60:.1f} min) | {r['librosa_s']:.2f} | {r['emofuse_s']:.2f} | {r['ratio']:.1f}x | "
                     f"{min(r['librosa_passes_s']) / min(r['emofuse_passes_s']):.1f}x | {r['audio_seconds'] / r['emofuse_s']:,.0f} | "
                     f"{r['decode_soundfile_s']:.2f} / {r['decode_emofuse_s']:.2f} | {r['max_diff_db']:.1e} | "
                     f"{la['before'][0]} / {la['after'][0]} |")
    passes = "; ".join(f"{r['label']}: librosa {' '.join(f'{t:.2f}' for t in r['librosa_passes_s'])}, "
                       f"emofuse {' '.join(f'{t:.2f}' for t in r['emofuse_passes_s'])}" for r in rows)
    versions = ", ".join(dict.fromkeys(r["librosa_version"] for r in rows))
    return ("\n".join(lines) + f"\n\nSpeed-up target >= {rec['target_speedup']:g}x with all cores, judged on the medians: "
            f"{_frontend_verdict(rec, rows)}. Passes (s), alternating in one process: {passes}. librosa {versions}. "
            + _source(rec, "frontend_vs_librosa") + "\n")


def _step_ms(r: dict) -> float | None:
    """Milliseconds per training step (None where the run measured no throughput)."""
    return 1000 * r["batch"] / r["utt_per_s"] if r.get("utt_per_s") else None


def train_throughput(rec: dict) -> str:
    lines = ["| model | device | threads | precision | batch | train utt/s | ms per step | data wait | largest batch of 8 s clips "
             "| 1-min load before / after |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        ms, la = _step_ms(r), r.get("load_average") or rec.get("load_average") or {"before": ["-"], "after": ["-"]}
        cells = [f"`{r['model']}`", r["device"], r.get("threads", rec.get("threads", "-")), r["precision"], r["batch"],
                 f"{r['utt_per_s']:,.1f}" if r.get("utt_per_s") else "-", f"{ms:,.0f}" if ms is not None else "-",
                 f"{100 * r['data_wait']:.1f}%" if r.get("data_wait") is not None else "-", r.get("largest_batch_8s", "-"),
                 f"{la['before'][0]} / {la['after'][0]}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return ("\n".join(lines) + f"\n\n{rec['corpus']}; {rec['steps_per_epoch']} training steps x {rec['epochs']} epochs per model "
            f"through `train_fold`. Data wait: the share of training wall time between one step's end and the next step's start "
            f"(loading, collation, copy). " + _source(rec, "train_throughput") + "\n")


def _slowdown(rec: dict) -> tuple[dict, float | None, str]:
    """The augmented row, its training slowdown against the first (unaugmented) row, and the verdict."""
    off, on = rec["runs"][0], rec["runs"][-1]
    if on is off or not on.get("utt_per_s"):
        return on, None, "not measured"
    slowdown = off["utt_per_s"] / on["utt_per_s"]
    return on, slowdown, f"target < {rec['target_slowdown']:g}x: {'met' if slowdown < rec['target_slowdown'] else 'not met'}"


def augment_speed(rec: dict) -> str:
    lines = ["| augmentation | train utt/s | data wait | fold wall (s) | one-off rendering (s) | items rendered |", "|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        wait = f"{100 * r['wait']:.1f}%" if r.get("wait") is not None else "-"
        utt = f"{r['utt_per_s']:.1f}" if r.get("utt_per_s") else "-"
        lines.append(f"| {r['policy']} | {utt} | {wait} | {r['fold_seconds']:.0f} | {r['render_s']:.0f} | {r['rendered']} of {r['train_items']} |")
    on, slowdown, verdict = _slowdown(rec)
    la = rec["load_average"]
    return ("\n".join(lines) + f"\n\n**Training slowdown with `{on['policy']}`: "
            + (f"{slowdown:.2f}x** ({verdict})" if slowdown else "not measured**")
            + f". Rendering is paid once: {on['render_s']:.0f} s for {rec['variants']} variants of the {on['rendered']} training "
            f"items whose classes have waveform effects, cached for later folds and runs. {rec['corpus']}, {rec['model']}, "
            f"{rec['epochs']} epochs. 1-minute load average {la['before'][0]:g} before, {la['after'][0]:g} after. "
            + _source(rec, "augment_speed") + "\n")


def realtime_factor(rec: dict) -> str:
    lines = ["| model | parameters | RTF (compute s / audio s) | ms per clip |", "|---|---|---|---|"]
    for r in rec["runs"]:
        head = f" (head only: its {r['head_only_over']} features are not timed)" if r.get("head_only_over") else ""
        lines.append(f"| `{r['model']}`{head} | {r['parameters'] / 1e6:.2f}M | {r['seconds_per_clip'] / rec['clip_seconds']:.4f} | "
                     f"{1000 * r['seconds_per_clip']:.1f} |")
    la = rec["load_average"]
    return ("\n".join(lines) + f"\n\nShipped model sizes, untrained weights, one {rec['clip_seconds']:g} s clip, batch 1: log-mel front "
            f"end + model + softmax, mean of {rec['repeats']} after a warm-up, {rec['threads']} torch thread(s). The frozen text encoder "
            f"({rec['text_encoder']}) adds {rec['text_encoder_ms']:.1f} ms once per transcript. 1-minute load average "
            f"{la['before'][0]:g} before, {la['after'][0]:g} after. " + _source(rec, "realtime_factor") + "\n")


def scale_iemocap_size(rec: dict) -> str:
    lines = ["| step | wall (s) | peak memory, process tree PSS (MiB) |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['wall_s']:.0f} | {s['peak_mib']:,} |" for s in rec["steps"]]
    audio_s = rec["hours"] * 3600
    feats = next((s for s in rec["steps"] if s["step"] == "features"), None)
    speed = f" Features ran at {audio_s / feats['wall_s']:,.0f} s of audio per second." if feats else ""
    return ("\n".join(lines) + f"\n\n{rec['utterances_written']:,} clips written, {rec['manifest_rows']:,} in the 4-class manifest "
            f"(IEMOCAP: 5,531), {rec['hours']:.2f} h; all its waveforms as float32 would take {rec['waveforms_gib']:.2f} GiB.{speed} "
            f"One epoch's leave-one-session-out Macro-F1: {_pm(rec['cv_macro_f1'])}. 1-minute load average "
            f"{rec['load_average']['before'][0]:g} before, {rec['load_average']['after'][0]:g} after, on {rec['cores']} cores. "
            + _source(rec, "scale_iemocap_size") + "\n")


def timeline_rtf(rec: dict) -> str:
    lines = ["| audio | speech segments | processing time | real-time factor | peak memory (before the file) |",
             "|---|---|---|---|---|",
             f"| {rec['audio_s'] / 60:.0f} min ({rec['speech_s'] / 60:.0f} min speech) | {rec['segments']} | "
             f"{rec['wall_s']:.0f} s | {rec['rtf']:.4f} | {rec['peak_mib']} MiB ({rec['before_mib']} MiB) |",
             "",
             f"Record `benchmarks/results/timeline_rtf.json` ({rec['command']}; commit {rec['commit']}, {rec['date']}, "
             f"{rec['machine']}, {rec['torch_threads']} torch threads; machine load average {rec['load_avg'][0]} / "
             f"{rec['load_avg'][1]} before / after, shared with other jobs). Model: {rec['model']}. File: {rec['file']}."]
    return "\n".join(lines) + "\n"


def ravdess_ssl_layers(rec: dict) -> str:
    lines = ["| model | training | Macro-F1 | UA | WA | validation Macro-F1 | best epochs | CV wall (s, sum of folds) | features: seconds / cache MB | learned layer weights (mean over folds) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        f = r["features"]
        w = r.get("layer_weights")
        weights = " ".join(f"{i}:{m:.2f}" for i, m in zip(w["layers"], w["mean"])) if w else "-"
        feat = f"{f['seconds'] if f['seconds'] is not None else 'cached'} / {f['cache_mb']}"
        best = "-".join(str(e) for e in (min(r["best_epochs"]), max(r["best_epochs"]))) if r.get("best_epochs") else "-"
        val = f"{r['val']['macro_f1']['mean']:.3f}" if r.get("val") else "-"
        lines.append(f"| `{r['model']}` | {r.get('settings', '')} | {_pm(r['macro_f1'])} | "
                     f"{_pm(r['ua'])} | {_pm(r['wa'])} | {val} | {best} | {_seconds(r.get('wall_seconds'))} | {feat} | {weights} |")
    settings = {r.get("settings"): " ".join(f"`{t}`" for t in r.get("training", [])) for r in rec["runs"]}
    return ("\n".join(lines) + "\n\n" + _ssl_selected(rec) + f"{rec['corpus']}; training settings: "
            + "; ".join(f"{k}: {v}" for k, v in settings.items()) + ". Layer 0 is the input of the first encoder layer, 4 the last layer's "
            "output. Validation Macro-F1: the validation speakers' score at the selected epoch, mean over folds "
            "(heads and settings are compared on it, never on the test speakers). Feature seconds: the first call that filled "
            "the cache ('cached': an earlier call did). "
            + _source(rec, "ravdess_ssl_layers") + "\n")


def _ssl_selected(rec: dict) -> str:
    """The head each training setting selects on validation Macro-F1 (never on the test speakers),
    its test UA, and issue #19's target (UA >= 0.70 with every layer of tiny.en) against it."""
    out = []
    for setting in dict.fromkeys(r.get("settings") for r in rec["runs"]):
        rows = [r for r in rec["runs"] if r.get("settings") == setting and r.get("val")]
        if not rows:
            continue
        best = max(rows, key=lambda r: r["val"]["macro_f1"]["mean"])
        layers = "every layer" if best.get("layer_weights") else "the last layer only"
        met = "met" if best["ua"]["mean"] >= 0.70 and best.get("layer_weights") else "not met"
        out.append(f"**Selected on validation ({setting}): `{best['model']}`** (validation Macro-F1 "
                   f"{best['val']['macro_f1']['mean']:.3f}), test UA {_pm(best['ua'])} on {layers}: the target "
                   f"UA >= 0.70 with every layer is {met}.")
    return "".join(line + "\n\n" for line in out)


def _source(rec: dict, name: str) -> str:
    commits = sorted({r.get("commit", rec["commit"]) for r in rec.get("runs", [])} or {rec["commit"]})
    dates = sorted({r.get("date", rec["date"]) for r in rec.get("runs", [])} or {rec["date"]})
    trained = sorted({c for r in rec.get("runs", []) for c in r.get("trained_commits") or []} - set(commits))
    if trained:  # runs trained at other commits, then collected into the record
        commits = [*commits, f"folds trained at {', '.join(trained)}"]
    runs = rec.get("runs", [])
    # rows of one record may come from several calls and machines (older records stamp neither per row)
    commands = list(dict.fromkeys(r["invoked"] for r in runs if r.get("invoked"))) or [rec["command"]]
    machines = list(dict.fromkeys(r.get("machine", rec["machine"]) for r in runs)) or [rec["machine"]]
    return (f"Record `benchmarks/results/{name}.json` ({'; '.join(f'`{c}`' for c in commands)}; commit {', '.join(commits)}, "
            f"{' to '.join(dict.fromkeys([dates[0], dates[-1]]))}, {'; '.join(machines)}).")


def _seconds(s) -> str:
    return f"{s:.0f}" if isinstance(s, (int, float)) else "-"


def _f1s(r: dict) -> str:
    return ", ".join(f"{c} {v['mean']:.2f}" for c, v in sorted(r["per_class_f1"].items(), key=lambda kv: -kv[1]["mean"]))


STUDY_RANKING = ("resnet18", "cnn_bilstm", "audio_transformer")  # the study's order, best first
# Issue #23's from-scratch reference on strict speaker-independent RAVDESS 8-class folds, and its target.
FROM_SCRATCH_REFERENCE = "ResLSTM-SA, UAR 0.623 ± 0.012 over 10 runs, best 0.652"
TARGET_UA_8 = 0.65


def _best_epochs(r: dict) -> str:
    best = [f["best_epoch"] for f in r.get("per_fold", []) if f.get("best_epoch") is not None]
    epochs = ((r.get("config") or {}).get("train") or {}).get("max_epochs")
    return (f"{min(best)}-{max(best)}" + (f" of {epochs}" if epochs else "")) if best else "-"


def _model_size(r: dict) -> str:
    """The model overrides of a row ('cpu' width trims some models for the CPU), else the shipped size."""
    trims = [o for o in str(r.get("settings", "")).split() if o.startswith("model.")]
    return " ".join(f"`{o}`" for o in trims) or "shipped"


def ravdess_audio_models(rec: dict) -> str:
    lines = ["| task | model | size | folds | Macro-F1 | UA | WA | best epochs | train utt/s | wall (s, sum of folds) | per-class F1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rec["runs"], key=lambda r: (r["task"], -r["macro_f1"]["mean"])):
        lines.append(f"| {r['task']} | `{r['model']}` | {_model_size(r)} | {r['folds']} | {_pm(r['macro_f1'])} | {_pm(r['ua'])} | "
                     f"{_pm(r['wa'])} | {_best_epochs(r)} | {r['train_utt_per_s']:.0f} | {r['wall_seconds']:.0f} | {_f1s(r)} |")
    return "\n".join(lines) + "\n\n" + _audio_models_summary(rec) + _source(rec, "ravdess_audio_models") + "\n"


def _audio_models_summary(rec: dict) -> str:
    """Per task and width: the models ranked by Macro-F1 against the study's order, the study's
    models the record lacks, and (8-class) the best UA against issue #23's target and reference."""
    out = []
    for task, width in sorted({(r["task"], r.get("width")) for r in rec["runs"]}):
        rows = sorted((r for r in rec["runs"] if (r["task"], r.get("width")) == (task, width)), key=lambda r: -r["macro_f1"]["mean"])
        models = [r["model"] for r in rows]
        study = [m for m in STUDY_RANKING if m in models]
        order = "the study's order" if [m for m in models if m in STUDY_RANKING] == study and len(study) > 1 else (
            "one model" if len(models) == 1 else f"not the study's order ({' > '.join(STUDY_RANKING)})")
        line = (f"{task}{', full width' if width == 'full' else ''}: " + " > ".join(f"`{r['model']}` {r['macro_f1']['mean']:.3f}" for r in rows)
                + f" Macro-F1 ({order})")
        missing = [m for m in STUDY_RANKING if m not in models]
        if missing:
            line += "; not in this record yet: " + ", ".join(f"`{m}`" for m in missing)
        if task.startswith("RAVDESS 8"):
            best = max(rows, key=lambda r: r["ua"]["mean"])
            met = "met" if best["ua"]["mean"] >= TARGET_UA_8 else "not met"
            line += (f". Best UA {_pm(best['ua'])} (`{best['model']}`) against the from-scratch reference "
                     f"({FROM_SCRATCH_REFERENCE}): the target UA >= {TARGET_UA_8} is {met}")
        out.append(line + ".")
    return "".join(line + "\n\n" for line in out)


def augment_ablation(rec: dict) -> str:
    base = next((r for r in rec["runs"] if r["policy"] == "none"), None)
    lines = ["| policy | folds | Macro-F1 | Macro-F1 vs none | folds above none | UA | WA | per-class F1 | train utt/s | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        delta, above = (_f1_change(r, base), _folds_above(r, base)) if base and r is not base else ("-", "-")
        utt = f"{r['train_utt_per_s']:.0f}" if r.get("train_utt_per_s") else "-"
        wall = f"{r['wall_seconds']:.0f}" if r.get("wall_seconds") else "-"
        lines.append(f"| {r['policy']} | {r['folds']} | {_pm(r['macro_f1'])} | {delta} | {above} | {_pm(r['ua'])} | {_pm(r['wa'])} | "
                     f"{_f1s(r)} | {utt} | {wall} |")
    return ("\n".join(lines) + "\n\n" + _augment_changes(rec, base) + _source(rec, "augment_ablation")
            + f" Noise: {rec.get('noise', '')}.\n")


def _f1_change(r: dict, base: dict) -> str:
    return f"{r['macro_f1']['mean'] - base['macro_f1']['mean']:+.3f}"


def _folds_above(r: dict, base: dict) -> str:
    """How many folds score a higher Macro-F1 than the same fold without augmentation (a paired count)."""
    ours = {f["fold"]: f["macro_f1"] for f in r.get("per_fold") or []}
    theirs = {f["fold"]: f["macro_f1"] for f in base.get("per_fold") or []}
    shared = sorted(set(ours) & set(theirs))
    return f"{sum(ours[k] > theirs[k] for k in shared)}/{len(shared)}" if shared else "-"


def _augment_changes(rec: dict, base: dict | None) -> str:
    """Per policy, the classes whose F1 (mean over folds) moves most against no augmentation, and
    where the test clips of the class that falls most go (pooled confusion, rows = true class)."""
    if base is None:
        return ""
    out = []
    for r in rec["runs"]:
        if r is base:
            continue
        moves = sorted(((c, v["mean"] - base["per_class_f1"][c]["mean"]) for c, v in r["per_class_f1"].items()
                        if c in base["per_class_f1"]), key=lambda cv: cv[1])
        worst = ", ".join(f"{c} {base['per_class_f1'][c]['mean']:.2f} -> {r['per_class_f1'][c]['mean']:.2f}" for c, _ in moves[:2])
        line = (f"`{r['policy']}` against none: Macro-F1 {_f1_change(r, base)} "
                f"(fold std of none {base['macro_f1']['std']:.3f}); per-class F1, the two largest losses (or smallest gains): {worst}.")
        if moves:
            line += _where_it_goes(moves[0][0], r, base)
        out.append(line)
    return "".join(line + "\n\n" for line in out)


def _where_it_goes(cls: str, r: dict, base: dict) -> str:
    """' <cls> test clips called <cls>: a of n (none: b of n); instead: x 30, y 10.' from the pooled confusions."""
    if not (r.get("confusion") and base.get("confusion") and cls in (r.get("classes") or []) and r.get("classes") == base.get("classes")):
        return ""
    i = r["classes"].index(cls)
    row, base_row = r["confusion"][i], base["confusion"][i]
    instead = sorted(((c, n) for c, n in zip(r["classes"], row) if c != cls and n), key=lambda cn: -cn[1])[:3]
    return (f" {cls} test clips called {cls}: {row[i]} of {sum(row)} (none: {base_row[i]} of {sum(base_row)})"
            + (f"; instead: {', '.join(f'{c} {n}' for c, n in instead)}" if instead else "") + ".")


def fusion_ablation(rec: dict) -> str:
    lines = ["| corpus | run | modalities | folds | Macro-F1 | UA | WA | wall (s, all folds) |", "|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        lines.append(f"| {r['corpus']} | {r['label']} | {' + '.join(r['modalities'])} | {r['folds']} | {_pm(r['macro_f1'])} | "
                     f"{_pm(r['ua'])} | {_pm(r['wa'])} | {r['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n\n" + _source(rec, "fusion_ablation") + "\n"


def cpu_speed(rec: dict) -> str:
    lines = ["| model | variant | ms per step | utt/s | speed-up vs fp32 |", "|---|---|---|---|---|"]
    for r in rec["runs"]:
        if "error" in r:
            lines.append(f"| `{r['model']}` | {r['variant']} | failed: {r['error']} | | |")
        else:
            lines.append(f"| `{r['model']}` | {r['variant']} | {1000 * r['median_step_s']:.0f} | {r['utt_per_s']:.1f} | "
                         f"{r['speedup_vs_fp32']:.2f}x |")
    flags = ", ".join(rec.get("cpu_flags", [])) or "none recorded"
    return ("\n".join(lines) + f"\n\nA training step (forward, loss, backward, AdamW) on a batch of {rec['batch']} clips of "
            f"{rec['seconds']:g} s, shipped model sizes, median of {rec['rounds']} interleaved rounds, {rec['threads']} threads; "
            f"CPU flags: {flags}; 1-minute load average {rec['load_average']['before'][0]:g} before, "
            f"{rec['load_average']['after'][0]:g} after on {rec['cores']} cores. " + _source(rec, "cpu_speed") + "\n")


def cv_shipped_probe(rec: dict) -> str:
    return cv_shipped(rec, "cv_shipped_probe")


def cv_shipped(rec: dict, name: str = "cv_shipped") -> str:
    lines = ["| variant | how it runs | folds | Macro-F1 | UA | WA | CV wall (min) | speed-up | peak PSS (MiB) | epochs per fold |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    base = next((r for r in rec["runs"] if r["variant"] == "fp32"), None)
    for r in rec["runs"]:
        speed = f"{base['cv_wall_s'] / r['cv_wall_s']:.2f}x" if base else "-"
        lines.append(f"| {r['variant']} | {r['label']} | {r['folds']} | {_pm(r['macro_f1'])} | {_pm(r['ua'])} | {_pm(r['wa'])} | "
                     f"{r['cv_wall_s'] / 60:.1f} | {speed} | {r['cv_peak_pss_mib']} | {' '.join(map(str, r['epochs']))} |")
    la, peak = rec["load_average"], rec.get("fp32_peak") or {}
    work = " ".join(f"{r['variant']}: {r['train_clip_passes']:,} training clip passes x {rec['train_gflop_per_clip']:.2f} GFLOP "
                    f"= {r['train_tflop']:,} TFLOP, {r['achieved_gflops']:.0f} GFLOP/s over the wall."
                    for r in rec["runs"] if r.get("achieved_gflops"))
    roof = (f" This CPU's fp32 peak: {peak['gflops']:.0f} GFLOP/s ({peak['cores']} cores x {peak['mhz']} MHz x "
            f"{peak['flop_per_cycle']} FLOP per cycle, assumed from its vector flags)." if peak else "")
    return ("\n".join(lines) + f"\n\nWork (forward + backward, {rec['mean_train_frames']} frames, the mean training clip): "
            f"{work}{roof}\n\nFeatures cached beforehand ({rec['features_s']:.0f} s, outside both walls). "
            f"1-minute load average {la['before'][0]:g} before, {la['after'][0]:g} after on {rec['cores']} cores. "
            + f"{rec['corpus']}. " + _source(rec, name) + "\n")


def roofline_line(rec: dict) -> str:
    """How much faster the shipped CV could get by execution settings alone: whole epochs' FLOP rate
    (this probe record) against the isolated training step's (the cpu_speed record, same model),
    which is what the CV would reach if everything outside the step cost nothing."""
    fp32 = next((r for r in rec["runs"] if r["variant"] == "fp32" and r.get("achieved_gflops")), None)
    speed_path = RESULTS / "cpu_speed.json"
    step = None
    if speed_path.is_file():
        speed = json.loads(speed_path.read_text())
        step = next((r for r in speed["runs"] if r["model"] == "resnet18" and r["variant"] == "fp32"), None)
    if fp32 is None or step is None or not rec.get("fp32_peak"):
        return "The roofline needs the fp32 row of this record and the resnet18 fp32 row of `cpu_speed.json`.\n"
    frames = speed["seconds"] * 100 + 1  # 10 ms hop
    step_gflops = step["utt_per_s"] * rec["train_gflop_per_clip"] * frames / rec["mean_train_frames"]  # FLOPs grow with frames
    peak, ceiling = rec["fp32_peak"]["gflops"], step_gflops / fp32["achieved_gflops"]
    verdict = ("short of the 2x that the 20-minute target asks of the 38.6-minute run. Execution settings cannot close "
               "that gap; only less work (fewer or earlier-stopped epochs, a narrower model) or other hardware can" if ceiling < 2
               else "the roofline does not rule out the 20-minute target")
    return (f"Roofline: whole epochs run at {fp32['achieved_gflops']:.0f} GFLOP/s ({fp32['achieved_gflops'] / peak:.0%} of the "
            f"{peak:.0f} GFLOP/s fp32 peak); the isolated training step (`cpu_speed`, {step['utt_per_s']:.1f} clips/s of "
            f"{speed['seconds']:g} s) at {step_gflops:.0f} GFLOP/s ({step_gflops / peak:.0%}). If everything outside the step "
            f"cost nothing, the CV would run at most {ceiling:.2f}x faster: {verdict}.\n")


def _recipe_budget(row: dict) -> str:
    """A recipe row's training budget, from the config the run folder recorded."""
    cfg = row.get("config") or {}
    model, data, train = cfg.get("model", {}), cfg.get("data", {}), cfg.get("train", {})
    return (f"width {model.get('base_channels', '?')}, {data.get('crop_seconds', '?'):g} s crops, {train.get('max_epochs', '?')} "
            f"epochs max, patience {train.get('early_stopping_patience', '?')}") if cfg else "config not recorded"


def ravdess_recipe8(rec: dict) -> str:
    """One row per recipe and budget, with its UA change against the same budget's shipped row."""
    lines = ["| budget | recipe | overrides | folds | UA | UA vs shipped | Macro-F1 | WA | best epoch (mean) | per-class F1 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    base = {r["budget"]: r for r in rec["runs"] if r["recipe"] == "shipped"}
    for r in sorted(rec["runs"], key=lambda r: r["budget"]):
        best = [f["best_epoch"] for f in r.get("per_fold", []) if f.get("best_epoch") is not None]
        mean_epochs = f"{sum(best) / len(best):.1f}" if best else "-"
        ref = base.get(r["budget"])
        change = f"{r['ua']['mean'] - ref['ua']['mean']:+.3f}" if ref is not None and ref is not r else "-"
        lines.append(f"| {r['budget']} | {r['recipe']} | {' '.join(f'`{o}`' for o in r['overrides']) or '-'} | "
                     f"{r['folds']} | {_pm(r['ua'])} | {change} | {_pm(r['macro_f1'])} | {_pm(r['wa'])} | {mean_epochs} | {_f1s(r)} |")
    budgets = "; ".join(f"{b}: {_recipe_budget(r)} (its shipped row)" for b, r in sorted(base.items()))
    return ("\n".join(lines) + (f"\n\nBudgets: {budgets}. " if budgets else "\n\n")
            + f"Target: {rec['target']}. " + _source(rec, "ravdess_recipe8") + "\n")


def _date(rec: dict) -> str:
    """The day the newest row of a record was measured."""
    return max([r.get("date", rec["date"]) for r in rec.get("runs", [])] or [rec["date"]])


def frontend_line(rec: dict) -> str:
    rows = _frontend_rows(rec)
    parts = [f"**{r['ratio']:.1f}x** on {r['label']} ({r['emofuse_s']:.2f} s vs {r['librosa_s']:.2f} s, median passes)" for r in rows]
    return (f"- Front end vs librosa clip by clip, all {rows[0]['files']:,} RAVDESS files: " + "; ".join(parts)
            + f". Target >= {rec['target_speedup']:g}x with all cores: {_frontend_verdict(rec, rows)} ({_date(rec)}).\n")


def throughput_line(rec: dict) -> str:
    """CPU fp32 throughput per model and the data-wait share, and whether the record has GPU rows."""
    cpu = [r for r in rec["runs"] if r["device"] == "CPU" and r["precision"] == "32-true" and _step_ms(r) is not None]
    gpu = [r for r in rec["runs"] if r["device"] != "CPU" and _step_ms(r) is not None]
    # a step of half a second or more computes something; shorter ones are heads over cached encoder outputs
    heavy = [r for r in cpu if _step_ms(r) >= 500 and r.get("data_wait") is not None]
    light = [r for r in cpu if _step_ms(r) < 500 and r.get("data_wait") is not None]
    parts = []
    if cpu:
        threads = ", ".join(str(t) for t in dict.fromkeys(r.get("threads", rec.get("threads", "?")) for r in cpu))
        parts.append(f"training on CPU ({threads} thread(s), shipped sizes): "
                     + ", ".join(f"`{r['model']}` {r['utt_per_s']:,.1f} utt/s" for r in cpu))
    if heavy:
        parts.append(f"data wait at most {100 * max(r['data_wait'] for r in heavy):.1f}% of training time for every model whose "
                     "step takes half a second or more")
    if light:
        parts.append("shorter steps: " + ", ".join(f"`{r['model']}` {100 * r['data_wait']:.1f}% of a {_step_ms(r):.0f} ms step"
                                                   for r in light))
    devices = ", ".join(dict.fromkeys(r["device"] for r in gpu))
    parts.append(f"GPU rows: {devices}" if gpu else "no GPU rows in the record yet")
    text = "; ".join(parts)
    return f"- {text[0].upper()}{text[1:]} ({_date(rec)}).\n"


def augment_speed_line(rec: dict) -> str:
    on, slowdown, verdict = _slowdown(rec)
    if slowdown is None:
        return f"- Augmentation: training slowdown not measured ({_date(rec)}).\n"
    return (f"- Augmentation (`{on['policy']}`): **{slowdown:.2f}x** training slowdown ({verdict}); its waveform variants are "
            f"rendered once, in {on['render_s']:.0f} s ({_date(rec)}).\n")


def scale_line(rec: dict) -> str:
    steps = {s["step"].split(",")[0]: s for s in rec["steps"]}
    parts = [f"{name} {steps[name]['wall_s']:.0f} s" for name in ("prepare",) if name in steps]
    if "features" in steps:
        parts.append(f"features {steps['features']['wall_s']:.0f} s at {steps['features']['peak_mib'] / 1024:.2f} GiB peak for the "
                     f"process tree (the waveforms would take {rec['waveforms_gib']:.2f} GiB)")
    cv = [s for s in rec["steps"] if s["step"].startswith("cv")]
    parts += [f"one CV epoch over 5 folds {s['wall_s']:.0f} s" for s in cv]
    return (f"- IEMOCAP-sized synthetic corpus ({rec['manifest_rows']:,} clips, {rec['hours']:.1f} h): " + ", ".join(parts)
            + f" ({_date(rec)}).\n")


def cpu_speed_line(rec: dict) -> str:
    by_variant: dict[str, list[float]] = {}
    for r in rec["runs"]:
        if r["variant"] != "fp32" and "error" not in r:
            by_variant.setdefault(r["variant"], []).append(r["speedup_vs_fp32"])
    span = lambda v: f"{min(v):.2f}x" if min(v) == max(v) else f"{min(v):.2f}-{max(v):.2f}x"  # noqa: E731
    flags = rec.get("cpu_flags", [])
    models = ", ".join(f"`{m}`" for m in dict.fromkeys(r["model"] for r in rec["runs"]))
    speeds = ", ".join(f"{k} {span(v)}" for k, v in by_variant.items()) or "no variant ran"
    bf16 = [x for k, v in by_variant.items() if "bf16" in k for x in v]
    why = (" bf16 is slower here: this CPU has neither AVX-512 BF16 nor AMX, so bf16 matrix products are emulated."
           if bf16 and max(bf16) < 1 and not {"avx512_bf16", "amx_bf16"} & set(flags) else "")
    return (f"- CPU speed switches (one isolated training step, speed-up against fp32 over {models}): {speeds}; CPU flags: "
            f"{', '.join(flags) or 'none recorded'} ({_date(rec)}).{why}\n")


def realtime_line(rec: dict) -> str:
    rows = sorted((r for r in rec["runs"] if not r.get("head_only_over")), key=lambda r: -r["seconds_per_clip"])
    return (f"Real-time factor ({rec['threads']} thread(s), {rec['clip_seconds']:g} s clips, batch 1, front end + model + softmax; "
            f"`python benchmarks/realtime_factor.py --threads 1`): "
            + ", ".join(f"`{r['model']}` {r['seconds_per_clip'] / rec['clip_seconds']:.4f}" for r in rows)
            + f"; the text encoder adds {rec['text_encoder_ms']:.0f} ms per transcript ({_date(rec)}).\n")


RENDERERS = {"transcript_overlap": transcript_overlap, "ravdess_audio_models": ravdess_audio_models,
             "augment_ablation": augment_ablation, "fusion_ablation": fusion_ablation, "cpu_speed": cpu_speed,
             "ravdess_ssl_layers": ravdess_ssl_layers, "cv_shipped": cv_shipped, "cv_shipped_probe": cv_shipped_probe, "ravdess_recipe8": ravdess_recipe8,
             "serve_load": serve_load, "timeline_rtf": timeline_rtf, "frontend_vs_librosa": frontend_vs_librosa,
             "train_throughput": train_throughput, "augment_speed": augment_speed,
             "realtime_factor": realtime_factor, "scale_iemocap_size": scale_iemocap_size,
             "frontend_vs_librosa:line": frontend_line, "train_throughput:line": throughput_line,
             "augment_speed:line": augment_speed_line, "scale_iemocap_size:line": scale_line, "cpu_speed:line": cpu_speed_line,
             "realtime_factor:line": realtime_line, "cv_shipped_probe:roofline": roofline_line, "cross_corpus": cross_corpus}


def render(text: str) -> str:
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"README table {name!r} has no renderer in benchmarks/render_tables.py")
        record = RESULTS / f"{name.split(':')[0]}.json"
        if not record.is_file():
            raise SystemExit(f"README table {name!r}: record {record} is missing; run its benchmark")
        return m.group(1) + RENDERERS[name](json.loads(record.read_text())) + m.group(4)

    return BLOCK.sub(sub, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a table differs from its record")
    args = ap.parse_args()
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        new = render(text)
        if new != text:
            stale.append(doc)
            if not args.check:
                doc.write_text(new)
    verb = "differ from their records" if args.check else "rewritten"
    print(f"{len(stale)} file(s) {verb}: {', '.join(str(d.relative_to(REPO)) for d in stale) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
