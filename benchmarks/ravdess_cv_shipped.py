"""Benchmark: a full 6-fold CV of ``resnet18`` on RAVDESS 4-class with the shipped config
(width 64, 8 s crops, 30 epochs max, patience 8): wall time and peak memory (issue #7).

Runs ``emofuse cv resnet18`` as a child process and samples the peak PSS of its process tree
every 0.2 s. The run folder resumes: an interrupted benchmark continues with the next call
(finished folds are kept), and each call appends its wall time and peak to
``bench_out/ravdess/cv_shipped.json``; the table sums the calls and gives each fold's own
training wall time from its metrics.json.

    python benchmarks/ravdess_cv_shipped.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from _common import machine as describe_machine, ravdess_manifest, run_step

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    args = ap.parse_args()
    out = Path(args.out)
    manifest = ravdess_manifest(args.ravdess, out, 4)
    if manifest is None:
        return 2
    run = out / "runs" / "resnet18_ravdess4_shipped"
    log = out / "cv_shipped.json"
    calls = json.loads(log.read_text()) if log.is_file() else []
    step = run_step("cv", ["cv", "resnet18", f"data.manifest={manifest}", f"data.cache_dir={out / 'cache'}",
                           "name=resnet18_ravdess4_shipped", "--out", str(run)])
    calls.append({k: step[k] for k in ("wall_s", "peak_mib")} | {"machine": describe_machine(), "cores": os.cpu_count()})
    log.write_text(json.dumps(calls, indent=2))
    summary = json.loads((run / "summary.json").read_text())
    folds = [json.loads((run / f"fold_{k}" / "metrics.json").read_text()) for k in range(summary["folds"])]
    lines = [f"Machine: {calls[-1]['machine']}, {calls[-1]['cores']} cores; {len(calls)} call(s)", "",
             "| run | Macro-F1 | UA | WA | wall (s, all calls) | peak PSS (MiB) | fold wall (s) | epochs |", "|---|---|---|---|---|---|---|---|",
             "| resnet18 shipped, RAVDESS 4-class, 6 folds | " + " | ".join(f"{summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}"
                                                                       for k in ("macro_f1", "ua", "wa"))
             + f" | {sum(c['wall_s'] for c in calls):.0f} | {max(c['peak_mib'] for c in calls)} | "
             + " ".join(f"{f['wall_seconds']:.0f}" for f in folds) + " | " + " ".join(str(f["epochs_trained"]) for f in folds) + " |"]
    text = "\n".join(lines) + "\n"
    (out / "cv_shipped.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
