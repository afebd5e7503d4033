"""Benchmark: the shipped-config 6-fold CV of ``resnet18`` on RAVDESS 4-class (width 64, 8 s crops,
30 epochs max, patience 8), today's execution against the faster CPU settings, side by side
(issues #7 and #23): wall time, peak memory, Macro-F1 / UA / WA.

Variants (same config, same folds, same feature cache; only how the work runs differs):

- ``fp32``: one fold at a time, one process with every core's thread (what ``emofuse cv`` does);
- ``channels_last``: the same with ``train.channels_last=true`` (NHWC convolution weights);
- ``fast``: ``train.channels_last=true`` and ``--jobs 2``: two folds at once, each a process with
  one thread (``emofuse cv`` splits the cores between the jobs).

The log-mel cache is computed first (``emofuse features``, timed on its own), so neither variant
pays for it. Each variant runs ``emofuse cv`` as a child process, sampling the PSS of its process
tree every 5 s. Run folders resume: an interrupted call continues (finished folds are kept) and
the wall time sums the calls. Writes ``benchmarks/results/cv_shipped.json`` (one run per variant,
merged, so ``--variants fast`` re-measures that row alone); ``--probe`` writes ``cv_shipped_probe.json``.

    python benchmarks/ravdess_cv_shipped.py                    # every variant (~1.2 h per variant on 2 cores)
    python benchmarks/ravdess_cv_shipped.py --variants fast
    python benchmarks/ravdess_cv_shipped.py --quick            # 2 folds, 1 epoch, width 8: checks the script
    python benchmarks/ravdess_cv_shipped.py --probe --variants fp32,channels_last,fast   # same 2 folds x 3 epochs each
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from _common import (chosen, fp32_peak_gflops, load_average, machine as describe_machine, ravdess_manifest, read_summary,
                     run_entry, run_step, show_record, train_gflop_per_clip, write_record)

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {"fp32": ([], 1, "fp32, one fold at a time, 1 process x 2 threads"),
            "channels_last": (["train.channels_last=true"], 1, "channels_last, one fold at a time, 1 process x 2 threads"),
            "fast": (["train.channels_last=true"], 2, "channels_last, 2 folds at once, 2 processes x 1 thread")}
QUICK = ["train.max_epochs=1", "train.warmup_epochs=0", "model.base_channels=8", "--folds", "0,1"]
# The same work for every variant in minutes: folds 0 and 1, 3 epochs each, full width, no early stop.
PROBE = ["train.max_epochs=3", "train.early_stopping_patience=null", "--folds", "0,1"]


def _finished(run: Path, partial: bool) -> bool:
    """The run needs no call: complete, or (a 2-fold quick or probe run) folds 0 and 1 done."""
    if not ((run / "summary.json").is_file() or (run / "summary.partial.json").is_file()):
        return False
    summary = read_summary(run)
    return bool(summary.get("complete")) or (partial and {0, 1} <= set(summary.get("folds_done", [])))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    ap.add_argument("--quick", action="store_true", help="2 folds, 1 epoch, width 8 (no record written)")
    ap.add_argument("--probe", action="store_true",
                    help="folds 0 and 1, 3 epochs each at full width: the variants' speed on the same work "
                         "(record cv_shipped_probe)")
    args = ap.parse_args()
    names = chosen(args.variants, VARIANTS, "variant")
    out = Path(args.out)
    manifest = ravdess_manifest(args.ravdess, out, 4) if names else None
    if manifest is None:
        return 2
    cache = out / "cache"
    feats = run_step("features", ["features", str(manifest), "--cache", str(cache)])
    runs, before = [], load_average()
    import pandas as pd

    from emofuse.config import load_config

    durations = pd.read_csv(manifest / "manifest.csv")["duration"]
    crop = load_config("resnet18")["data"]["crop_seconds"]  # the shipped config's training crop
    frames = int(round(durations.clip(upper=crop).mean() * 100))  # 10 ms hop
    width = 8 if args.quick else 64
    gflop = train_gflop_per_clip("resnet18", frames, base_channels=width)
    for name in names:
        overrides, jobs, label = VARIANTS[name]
        tag = f"resnet18_ravdess4_shipped_{name}{'_quick' if args.quick else '_probe' if args.probe else ''}"
        run = out / "runs" / tag
        calls_path = out / f"cv_shipped_{tag}.json"
        calls = json.loads(calls_path.read_text()) if calls_path.is_file() else []
        if not _finished(run, partial=args.quick or args.probe):
            step = run_step(f"cv {name}", ["cv", "resnet18", f"data.manifest={manifest}", f"data.cache_dir={cache}",
                                           f"name={tag}", *overrides, *(QUICK if args.quick else PROBE if args.probe else []),
                                           "--jobs", str(jobs), "--no-progress", "--out", str(run)], interval=5.0)
            calls.append({k: step[k] for k in ("wall_s", "peak_mib", "sampler_cpu_s")}
                         | {"machine": describe_machine(), "cores": os.cpu_count()})
            calls_path.write_text(json.dumps(calls, indent=2))
        summary = read_summary(run)
        folds = [json.loads((run / f"fold_{k}" / "metrics.json").read_text()) for k in summary.get("folds_done", [])]
        entry = run_entry(summary, run, variant=name, label=label, jobs=jobs, overrides=overrides,
                          cv_wall_s=round(sum(c["wall_s"] for c in calls), 1),
                          cv_peak_pss_mib=max((c["peak_mib"] for c in calls), default=None), calls=len(calls),
                          fold_wall_s=[round(f["wall_seconds"]) for f in folds],
                          epochs=[f["epochs_trained"] for f in folds])
        entry.pop("peak_rss_mib")  # this script's own memory says nothing: the child's tree PSS is the figure
        # The work done: clip passes (training items over all epochs) x GFLOP per pass at the corpus's mean
        # training-clip length, against the CV wall time, to set beside the CPU's peak.
        passes = sum(f["train_items"] for f in folds)  # metrics.json counts the items of every epoch
        entry["train_clip_passes"] = passes
        entry["train_tflop"] = round(passes * gflop / 1000, 1)
        entry["achieved_gflops"] = round(passes * gflop / entry["cv_wall_s"], 1) if entry["cv_wall_s"] else None
        runs.append(entry)
        print(f"{name}: {entry['cv_wall_s']:.0f} s, peak {entry['cv_peak_pss_mib']} MiB, Macro-F1 "
              f"{entry['macro_f1']['mean']:.3f} ± {entry['macro_f1']['std']:.3f}", file=sys.stderr)
    record = {"command": "python benchmarks/ravdess_cv_shipped.py", "corpus": "RAVDESS 4-class, 6 speaker folds",
              "features_s": feats["wall_s"], "cores": os.cpu_count(), "mean_train_frames": frames,
              "train_gflop_per_clip": round(gflop, 3), "fp32_peak": fp32_peak_gflops(), "load_average": {"before": before, "after": load_average()},
              "runs": runs}
    name = "cv_shipped_probe" if args.probe else "cv_shipped"
    if args.probe:
        record["command"] += " --probe --variants " + args.variants
        record["corpus"] = "RAVDESS 4-class, folds 0 and 1, 3 epochs each, no early stopping"
    path = write_record(name, record, quick=args.quick, merge_on=("variant",))
    show_record(name, path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
