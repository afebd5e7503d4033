"""Benchmark: the study's three audio models on RAVDESS, speaker-independent folds.

Prepares RAVDESS 4-class and 8-class manifests, runs ``emofuse cv`` for each model and task
(6 folds of 4 actors, 2 male + 2 female; 4 more training actors for validation), and writes
a table of Macro-F1 / UA / WA (mean and std over folds), training throughput and wall time.
Each entry is an ordinary, resumable run folder: re-running the script continues where it
stopped and re-uses finished runs.

    python benchmarks/ravdess_audio_models.py                      # everything
    python benchmarks/ravdess_audio_models.py --tasks 8 --models resnet18 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import machine as describe_machine, run_entry, write_record
from emofuse.config import load_config
from emofuse.prepare import prepare
from emofuse.training.run import open_run, run_cv

REPO = Path(__file__).resolve().parents[1]
# Per-model settings for a 2-core CPU budget; the shipped configs stay the study's defaults.
CPU_SETTINGS = {
    "resnet18": ["model.base_channels=32"],
    "cnn_bilstm": [],
    "audio_transformer": [],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    ap.add_argument("--models", default="resnet18,cnn_bilstm,audio_transformer")
    ap.add_argument("--tasks", default="4,8", help="class sets: 4 and/or 8")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--full-width", action="store_true", help="use the shipped model sizes (no CPU trimming)")
    ap.add_argument("--quick", action="store_true", help="a smoke run (2 folds, 1 epoch); writes no record")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every run")
    args = ap.parse_args()
    ravdess, out = Path(args.ravdess), Path(args.out)
    if not ravdess.is_dir():
        print(f"RAVDESS not found at {ravdess}; pass --ravdess DIR", file=sys.stderr)
        return 2
    rows = []
    for task in args.tasks.split(","):
        manifest = out / f"manifest{task}"
        print(" ".join(prepare("ravdess", ravdess, manifest, class_map=f"ravdess{task}").lines()), file=sys.stderr)
        for model in args.models.split(","):
            overrides = [f"data.manifest={manifest}", f"data.cache_dir={out / 'cache'}", f"train.max_epochs={args.epochs}",
                         "train.early_stopping_patience=6", "data.crop_seconds=3.0", f"name={model}_ravdess{task}",
                         *([] if args.full_width else CPU_SETTINGS.get(model, [])), *args.overrides]
            if args.quick:
                overrides += ["train.max_epochs=1", "cv.n_folds=2", "train.limit_train_batches=3", "train.limit_val_batches=2", f"name={model}_ravdess{task}_quick"]
            cfg = load_config(model, overrides)
            run_dir = out / "runs" / f"{model}_ravdess{task}{'_quick' if args.quick else ''}"
            t0 = time.time()
            summary = run_cv(open_run(cfg, run_dir), progress=False)
            rows.append(run_entry(summary, run_dir, task=f"RAVDESS {task}-class", settings=" ".join(overrides[3:]),
                                  width="full" if args.full_width else "cpu", this_call_seconds=round(time.time() - t0, 1)))
            print(table(rows), file=sys.stderr)
    machine = describe_machine()
    text = f"Machine: {machine}\n\n{table(rows)}\n"
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(text)
    path = write_record("ravdess_audio_models", {"command": "python benchmarks/ravdess_audio_models.py", "epochs": args.epochs,
                                                 "runs": rows}, quick=args.quick, merge_on=("task", "model", "width"))
    print(f"wrote {path}; now: python benchmarks/render_tables.py" if path else "quick run: no record written", file=sys.stderr)
    return 0


def table(rows: list[dict]) -> str:
    lines = ["| task | model | Macro-F1 | UA | WA | train utt/s | wall (s, all folds) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['model']} | " + " | ".join(
            f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}" for k in ("macro_f1", "ua", "wa"))
            + f" | {r['train_utt_per_s']:.0f} | {r['wall_seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
