"""Renderers of the timing records (front end, training throughput and CPU speed switches, the
shipped-config CV, augmentation speed, real-time factor, service load, IEMOCAP-sized run, Whisper
steps): each turns ``benchmarks/results/NAME.json`` into its README table or one-line summary.
``render_tables.py`` holds the registry and rewrites the README blocks."""

from __future__ import annotations

import json
import statistics

from _render import RESULTS, budget, date, f1s, load_cell, pm, source

# Issue #23's targets for the shipped-config 6-fold CV on this 2-core CPU.
CV_TARGET_MIN = 20
CV_TARGET_GIB = 3


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
        lines.append(f"| {r['format'].upper()} | {r['workers']} of {r.get('cores', rec.get('cores'))} cores | {r['files']:,} "
                     f"({r['audio_seconds'] / 60:.1f} min) | {r['librosa_s']:.2f} | {r['emofuse_s']:.2f} | {r['ratio']:.1f}x | "
                     f"{min(r['librosa_passes_s']) / min(r['emofuse_passes_s']):.1f}x | {r['audio_seconds'] / r['emofuse_s']:,.0f} | "
                     f"{r['decode_soundfile_s']:.2f} / {r['decode_emofuse_s']:.2f} | {r['max_diff_db']:.1e} | "
                     f"{load_cell(r, rec)} |")
    passes = "; ".join(f"{r['label']}: librosa {' '.join(f'{t:.2f}' for t in r['librosa_passes_s'])}, "
                       f"emofuse {' '.join(f'{t:.2f}' for t in r['emofuse_passes_s'])}" for r in rows)
    versions = ", ".join(dict.fromkeys(r["librosa_version"] for r in rows))
    return ("\n".join(lines) + f"\n\nSpeed-up target >= {rec['target_speedup']:g}x with all cores, judged on the medians: "
            f"{_frontend_verdict(rec, rows)}. Passes (s), alternating in one process: {passes}. librosa {versions}. "
            + source(rec, "frontend_vs_librosa") + "\n")


def _step_ms(r: dict) -> float | None:
    """Milliseconds per training step (None where the run measured no throughput)."""
    return 1000 * r["batch"] / r["utt_per_s"] if r.get("utt_per_s") else None


def train_throughput(rec: dict) -> str:
    lines = ["| model | device | threads | precision | batch | train utt/s | ms per step | data wait | largest batch of 8 s clips "
             "| 1-min load before / after |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        ms = _step_ms(r)
        cells = [f"`{r['model']}`", r["device"], r.get("threads", rec.get("threads", "-")), r["precision"], r["batch"],
                 f"{r['utt_per_s']:,.1f}" if r.get("utt_per_s") else "-", f"{ms:,.0f}" if ms is not None else "-",
                 f"{100 * r['data_wait']:.1f}%" if r.get("data_wait") is not None else "-", r.get("largest_batch_8s", "-"),
                 load_cell(r, rec)]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return ("\n".join(lines) + f"\n\n{rec['corpus']}; {rec['steps_per_epoch']} training steps x {rec['epochs']} epochs per model "
            f"through `train_fold`. Data wait: the share of training wall time between one step's end and the next step's start "
            f"(loading, collation, copy). " + source(rec, "train_throughput") + "\n")


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
            + source(rec, "augment_speed") + "\n")


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
            f"{la['before'][0]:g} before, {la['after'][0]:g} after. " + source(rec, "realtime_factor") + "\n")


def scale_iemocap_size(rec: dict) -> str:
    lines = ["| step | wall (s) | peak memory, process tree PSS (MiB) |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['wall_s']:.0f} | {s['peak_mib']:,} |" for s in rec["steps"]]
    audio_s = rec["hours"] * 3600
    feats = next((s for s in rec["steps"] if s["step"] == "features"), None)
    speed = f" Features ran at {audio_s / feats['wall_s']:,.0f} s of audio per second." if feats else ""
    return ("\n".join(lines) + f"\n\n{rec['utterances_written']:,} clips written, {rec['manifest_rows']:,} in the 4-class manifest "
            f"(IEMOCAP: 5,531), {rec['hours']:.2f} h; all its waveforms as float32 would take {rec['waveforms_gib']:.2f} GiB.{speed} "
            f"One epoch's leave-one-session-out Macro-F1: {pm(rec['cv_macro_f1'])}. 1-minute load average "
            f"{rec['load_average']['before'][0]:g} before, {rec['load_average']['after'][0]:g} after, on {rec['cores']} cores. "
            + source(rec, "scale_iemocap_size") + "\n")


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
            f"{rec['load_average']['after'][0]:g} after on {rec['cores']} cores. " + source(rec, "cpu_speed") + "\n")


def cv_shipped_probe(rec: dict) -> str:
    return cv_shipped(rec, "cv_shipped_probe")


def cv_shipped(rec: dict, name: str = "cv_shipped") -> str:
    lines = ["| variant | how it runs | folds | Macro-F1 | UA | WA | CV wall (min) | speed-up | peak PSS (MiB) | epochs per fold |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    base = next((r for r in rec["runs"] if r["variant"] == "fp32"), None)
    for r in rec["runs"]:
        speed = f"{base['cv_wall_s'] / r['cv_wall_s']:.2f}x" if base else "-"
        lines.append(f"| {r['variant']} | {r['label']} | {r['folds']} | {pm(r['macro_f1'])} | {pm(r['ua'])} | {pm(r['wa'])} | "
                     f"{r['cv_wall_s'] / 60:.1f} | {speed} | {r['cv_peak_pss_mib']} | {' '.join(map(str, r['epochs']))} |")
    la, peak = rec["load_average"], rec.get("fp32_peak") or {}
    work = " ".join(f"{r['variant']}: {r['train_clip_passes']:,} training clip passes x {rec['train_gflop_per_clip']:.2f} GFLOP "
                    f"= {r['train_tflop']:,} TFLOP, {r['achieved_gflops']:.0f} GFLOP/s over the wall."
                    for r in rec["runs"] if r.get("achieved_gflops"))
    roof = (f" This CPU's fp32 peak: {peak['gflops']:.0f} GFLOP/s ({peak['cores']} cores x {peak['mhz']} MHz x "
            f"{peak['flop_per_cycle']} FLOP per cycle, assumed from its vector flags)." if peak else "")
    folds = "".join(_cv_folds(r) for r in rec["runs"] if name == "cv_shipped" and r.get("per_fold") and _complete(r))
    return ("\n".join(lines) + f"\n\nWork (forward + backward, {rec['mean_train_frames']} frames, the mean training clip): "
            f"{work}{roof}\n\n{folds}Features cached beforehand ({rec['features_s']:.0f} s, outside both walls). "
            f"1-minute load average {la['before'][0]:g} before, {la['after'][0]:g} after on {rec['cores']} cores. "
            + f"{rec['corpus']}. " + source(rec, name) + "\n")


def _complete(r: dict) -> bool:
    """Every fold of the row's CV has run ("6/6")."""
    done, _, total = str(r.get("folds", "")).partition("/")
    return bool(total) and done == total


def _cv_folds(r: dict) -> str:
    """Per fold of a full CV row: fit time, epochs run (best), validation Macro-F1 of the selected
    epoch; then where the wall went (one fold at a time only), the training speed, what early
    stopping saved, and per-class F1."""
    folds = r["per_fold"]
    val_list = (r.get("val") or {}).get("macro_f1", {}).get("per_fold") or []
    # records without per-fold keys kept the validation scores as a list over the folds that had them
    val = [f.get("val_macro_f1", val_list[i] if len(val_list) == len(folds) else None) for i, f in enumerate(folds)]
    epochs = [f.get("epochs_run", e) for f, e in zip(folds, r.get("epochs") or [None] * len(folds))]
    cap = ((r.get("config") or {}).get("train") or {}).get("max_epochs")
    cell = lambda v, fmt: format(v, fmt) if isinstance(v, (int, float)) else "-"  # noqa: E731
    rows = [f"| {r['variant']}: fold | " + " | ".join(str(f["fold"]) for f in folds) + " |",
            "|---" * (len(folds) + 1) + "|",
            "| fit (s: training and each epoch's validation) | " + " | ".join(cell(w, ",") for w in r.get("fold_wall_s") or []) + " |",
            "| epochs run (best) | " + " | ".join(f"{cell(e, 'd')} ({cell(f.get('best_epoch'), 'd')})" for e, f in zip(epochs, folds)) + " |",
            "| validation Macro-F1 of the selected epoch | " + " | ".join(cell(v, ".3f") for v in val) + " |"]
    ran = [e for e in epochs if isinstance(e, int)]
    early = ""
    if cap and ran:
        mean = sum(ran) / len(ran)
        early = (f" Early stopping ended {sum(e < cap for e in ran)} of {len(ran)} folds before the {cap}-epoch cap "
                 f"({min(ran)}-{max(ran)} epochs): without it the run would take about {cap} / {mean:.1f} = {cap / mean:.1f}x longer.")
    wall = ""
    if r.get("jobs", 1) == 1 and r.get("fold_wall_s"):  # with folds side by side their fit times overlap
        wall = (f" The folds' fits take {sum(r['fold_wall_s']):,} s of the {r['cv_wall_s']:,.0f} s wall; the rest is starting the "
                "command, each fold's setup and its final validation and test pass, and the summary.")
    speed = f" Training ran at {r['train_utt_per_s']:.1f} utt/s." if r.get("train_utt_per_s") else ""
    return "\n".join(rows) + f"\n\n{r['variant']}:{wall}{speed}{early} Per-class F1: {f1s(r)}.\n\n"



def _shipped_fp32() -> dict | None:
    """The fp32 row of the full shipped-config CV record (``cv_shipped.json``), if every fold has run."""
    path = RESULTS / "cv_shipped.json"
    if not path.is_file():
        return None
    return next((r for r in json.loads(path.read_text())["runs"] if r["variant"] == "fp32" and r.get("cv_wall_s")
                 and _complete(r)), None)



def cv_shipped_line(rec: dict) -> str:
    """The README's summary of the full shipped-config CV: wall, peak memory, scores, against issue #23's
    targets (judged on a complete run only)."""
    r = next((r for r in rec["runs"] if r["variant"] == "fp32"), rec["runs"][0] if rec["runs"] else None)
    if r is None:
        return "- Full shipped-config CV: the record has no run.\n"
    wall_min, peak_gib = r["cv_wall_s"] / 60, r["cv_peak_pss_mib"] / 1024
    verdict = (", ".join(f"{what} {'met' if ok else 'not met'}" for what, ok in
                         ((f"<= {CV_TARGET_MIN} min", wall_min <= CV_TARGET_MIN), (f"<= {CV_TARGET_GIB} GiB", peak_gib <= CV_TARGET_GIB)))
               if _complete(r) else f"not judged ({r['folds']} folds)")
    return (f"- Full 6-fold CV of `{r['model']}` on RAVDESS 4-class with the shipped config ({budget(r.get('config'))}; "
            f"{r['label']}): **{wall_min:.1f} min** ({r['cv_wall_s']:,.0f} s) at **{peak_gib:.1f} GiB** peak (process tree PSS), "
            f"Macro-F1 {pm(r['macro_f1'])}, folds {r['folds']}; targets {verdict} ({date(rec)}).\n")



def roofline_line(rec: dict) -> str:
    """How much faster the shipped CV could get by execution settings alone: whole epochs' FLOP rate
    (this probe record) against the isolated training step's (the cpu_speed record, same model),
    which is what the CV would reach if everything outside the step cost nothing; set against the
    speed-up the 20-minute target asks of the full CV's record (``cv_shipped.json``)."""
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
    full = _shipped_fp32()
    if full is None:
        verdict = "the full CV has no complete record yet (`cv_shipped.json`), so the speed-up it needs is unknown"
    else:
        # The VM's speed varies by day: where the full CV ran slower than this probe (FLOP rate over the
        # wall), its minutes are rescaled to the probe's speed, the more favourable day for the target.
        minutes, rate = full["cv_wall_s"] / 60, full.get("achieved_gflops")
        if rate and rate < fp32["achieved_gflops"]:
            at_probe = minutes * rate / fp32["achieved_gflops"]
            whose = (f"the full CV's {at_probe:.1f} minutes at this probe's speed (`cv_shipped`, {full['date']}: {minutes:.1f} "
                     f"minutes at {rate:.0f} GFLOP/s)")
            minutes = at_probe
        else:
            whose = f"the full CV's {minutes:.1f} minutes (`cv_shipped`, {full['date']})"
        need = minutes / CV_TARGET_MIN
        asks = f"the {need:.2f}x that the {CV_TARGET_MIN}-minute target asks of {whose}"
        verdict = (f"the full CV already meets the {CV_TARGET_MIN}-minute target (`cv_shipped`, {full['date']})" if need <= 1
                   else f"short of {asks}. Execution settings cannot close that gap; only less work (fewer or earlier-stopped "
                   "epochs, a narrower model) or other hardware can" if ceiling < need
                   else f"enough for {asks}: the roofline does not rule the target out")
    return (f"Roofline: whole epochs run at {fp32['achieved_gflops']:.0f} GFLOP/s ({fp32['achieved_gflops'] / peak:.0%} of the "
            f"{peak:.0f} GFLOP/s fp32 peak); the isolated training step (`cpu_speed`, {step['utt_per_s']:.1f} clips/s of "
            f"{speed['seconds']:g} s) at {step_gflops:.0f} GFLOP/s ({step_gflops / peak:.0%}). If everything outside the step "
            f"cost nothing, the CV would run at most {ceiling:.2f}x faster: {verdict}.\n")


def frontend_line(rec: dict) -> str:
    rows = _frontend_rows(rec)
    parts = [f"**{r['ratio']:.1f}x** on {r['label']} ({r['emofuse_s']:.2f} s vs {r['librosa_s']:.2f} s, median passes)" for r in rows]
    return (f"- Front end vs librosa clip by clip, all {rows[0]['files']:,} RAVDESS files: " + "; ".join(parts)
            + f". Target >= {rec['target_speedup']:g}x with all cores: {_frontend_verdict(rec, rows)} ({date(rec)}).\n")


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
    return f"- {text[0].upper()}{text[1:]} ({date(rec)}).\n"


def augment_speed_line(rec: dict) -> str:
    on, slowdown, verdict = _slowdown(rec)
    if slowdown is None:
        return f"- Augmentation: training slowdown not measured ({date(rec)}).\n"
    return (f"- Augmentation (`{on['policy']}`): **{slowdown:.2f}x** training slowdown ({verdict}); its waveform variants are "
            f"rendered once, in {on['render_s']:.0f} s ({date(rec)}).\n")


def scale_line(rec: dict) -> str:
    steps = {s["step"].split(",")[0]: s for s in rec["steps"]}
    parts = [f"{name} {steps[name]['wall_s']:.0f} s" for name in ("prepare",) if name in steps]
    if "features" in steps:
        parts.append(f"features {steps['features']['wall_s']:.0f} s at {steps['features']['peak_mib'] / 1024:.2f} GiB peak for the "
                     f"process tree (the waveforms would take {rec['waveforms_gib']:.2f} GiB)")
    cv = [s for s in rec["steps"] if s["step"].startswith("cv")]
    parts += [f"one CV epoch over 5 folds {s['wall_s']:.0f} s" for s in cv]
    return (f"- IEMOCAP-sized synthetic corpus ({rec['manifest_rows']:,} clips, {rec['hours']:.1f} h): " + ", ".join(parts)
            + f" ({date(rec)}).\n")


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
            f"{', '.join(flags) or 'none recorded'} ({date(rec)}).{why}\n")


def realtime_line(rec: dict) -> str:
    rows = sorted((r for r in rec["runs"] if not r.get("head_only_over")), key=lambda r: -r["seconds_per_clip"])
    return (f"Real-time factor ({rec['threads']} thread(s), {rec['clip_seconds']:g} s clips, batch 1, front end + model + softmax; "
            f"`python benchmarks/realtime_factor.py --threads 1`): "
            + ", ".join(f"`{r['model']}` {r['seconds_per_clip'] / rec['clip_seconds']:.4f}" for r in rows)
            + f"; the text encoder adds {rec['text_encoder_ms']:.0f} ms per transcript ({date(rec)}).\n")



def _per_second(audio_s: float, wall_s: float | None) -> str:
    return f"{audio_s / wall_s:,.1f}" if wall_s else "-"


def _by_wer(asr: dict) -> list[tuple[str, dict]]:
    """The emotions of a transcription step with their scores, lowest word error rate first."""
    return sorted(asr["per_label"].items(), key=lambda kv: kv[1]["wer"])


def ravdess_whisper(rec: dict) -> str:
    """The two one-off Whisper steps (transcription, encoder frames): result, wall time, audio seconds
    per second; then WER per emotion and the commonest transcripts. A step found already done has no time."""
    asr, feats, n = rec["asr"], rec["features"], rec["clips"]
    wall = lambda s: (f"{s['wall_s']:,.0f}" if s.get("wall_s") else  # noqa: E731
                      f"not timed ({s.get('transcribed', s.get('computed'))} of {n:,} clips new)")
    lines = ["| step | clips | result | wall (s) | audio s per s |", "|---|---|---|---|---|",
             f"| transcription (`emofuse transcribe`, beam {rec['beam_size']}) | {n:,} | WER {asr['wer']:.3f}, "
             f"{asr['exact']:.1%} word-exact | {wall(asr)} | {_per_second(rec['audio_s'], asr.get('wall_s'))} |",
             f"| encoder frames into the feature cache | {n:,} | {feats['dim']}-d frames, {feats['frames_per_s']} per second | "
             f"{wall(feats)} | {_per_second(rec['audio_s'], feats.get('wall_s'))} |"]
    per = _by_wer(asr)
    common = "; ".join(f'"{t}" x{c}' for t, c in asr["commonest"])
    la = rec["load_average"]
    return ("\n".join(lines) + "\n\nWER per emotion, lowest first: "
            + ", ".join(f"{lab} {s['wer']:.3f}" for lab, s in per) + f". Commonest transcripts: {common}. "
            f"{rec['model']}, CTranslate2 {rec['ctranslate2']}, threads: {rec['threads']}; {rec['corpus']}, "
            f"{rec['audio_s'] / 60:.1f} min of audio. 1-minute load average {la['before'][0]:g} before, {la['after'][0]:g} after. "
            + source(rec, "ravdess_whisper") + "\n")


def whisper_line(rec: dict) -> str:
    """The README's summary of the transcription step: WER, word-exact share, time, the emotions at both ends."""
    asr = rec["asr"]
    per = _by_wer(asr)
    took = (f"{asr['wall_s']:,.0f} s (threads: {rec['threads']})" if asr.get("wall_s")
            else f"not timed ({asr['transcribed']} of {rec['clips']:,} clips new)")
    return (f"- `emofuse transcribe` with {rec['model']}, beam {rec['beam_size']}, on all {rec['clips']:,} clips against the two "
            f"known sentences: **WER {asr['wer']:.3f}**, {asr['exact']:.1%} of clips word-exact, {took}. Per emotion from "
            f"{per[0][0]} {per[0][1]['wer']:.3f} to {per[-1][0]} {per[-1][1]['wer']:.3f} ({date(rec)}).\n")
