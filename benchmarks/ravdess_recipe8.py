"""Benchmark: which from-scratch recipe lifts ResNet-18 on RAVDESS 8-class (issue #23's UA >= 0.65 target).

Every row is the shipped ``resnet18`` config (width 64, 30 epochs max, patience 8) on the 6
speaker folds, plus one change; the last row combines them:

- ``shipped``: nothing added;
- ``specaugment``: uniform SpecAugment on every class (2 x 8 bands, 2 x 25 frames), no waveform effects;
- ``mixup``: ``train.mixup_alpha=0.4``;
- ``mixup_no_stop``: mixup with early stopping off, so every epoch of the schedule runs (mixup
  slows fitting, and the budget's patience of 6 stopped its fold 0 at epoch 10);
- ``label_smoothing``: ``train.label_smoothing=0.1``;
- ``longer``: 60 epochs max, patience 15;
- ``full_schedule40``: 40 epochs with no early stopping (patience 40), so the cosine schedule always
  runs to its end and the best validation epoch is kept: ``longer``'s patience can stop a fold while
  its learning rate is still high;
- ``combined``: SpecAugment, mixup, label smoothing and ``longer`` together.

``--budget`` runs every row at the CPU budget of the RAVDESS audio-models table instead (width 32,
3 s crops, 20 epochs max, patience 6; ``longer`` still means 60 epochs, patience 15): about 36
minutes a row with ``--jobs 2`` on 2 cores, so the recipes can be screened here and the winner
confirmed at full width. Its ``shipped`` row is that table's resnet18 8-class run folder (same
config), so it costs nothing once that benchmark has run.

Writes ``benchmarks/results/ravdess_recipe8.json`` (one run per recipe and budget, merged, so
``--recipes mixup`` re-measures that row alone); run folders resume under ``bench_out/ravdess/runs``.

    python benchmarks/ravdess_recipe8.py                       # every row (~9 h on 2 cores; minutes on a GPU)
    python benchmarks/ravdess_recipe8.py --recipes shipped,mixup
    python benchmarks/ravdess_recipe8.py --budget --jobs 2     # every row at the CPU budget (~3.5 h on 2 cores)
    python benchmarks/ravdess_recipe8.py --budget --jobs 2 --recipes longer --folds 2,5   # a partial row, completed later
    python benchmarks/ravdess_recipe8.py --quick               # 2 folds, 1 epoch, width 8: checks the script
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import chosen, ravdess_manifest, read_summary, run_entry, run_step, show_record, write_record

REPO = Path(__file__).resolve().parents[1]
SPEC = ["augment.policy=uniform", "augment.waveform=false"]
RECIPES = {"shipped": ("resnet18", []),
           "specaugment": ("resnet18_augment", SPEC),
           "mixup": ("resnet18", ["train.mixup_alpha=0.4"]),
           "mixup_no_stop": ("resnet18", ["train.mixup_alpha=0.4", "train.early_stopping_patience=0"]),
           "label_smoothing": ("resnet18", ["train.label_smoothing=0.1"]),
           "longer": ("resnet18", ["train.max_epochs=60", "train.early_stopping_patience=15"]),
           "full_schedule40": ("resnet18", ["train.max_epochs=40", "train.early_stopping_patience=40"]),
           "combined": ("resnet18_augment", [*SPEC, "train.mixup_alpha=0.4", "train.label_smoothing=0.1",
                                             "train.max_epochs=60", "train.early_stopping_patience=15"])}
QUICK = ["train.max_epochs=1", "train.warmup_epochs=0", "model.base_channels=8", "--folds", "0,1"]
# The CPU budget of ravdess_audio_models.py (its resnet18 8-class run), before each recipe's own overrides.
BUDGET = ["train.max_epochs=20", "train.early_stopping_patience=6", "data.crop_seconds=3.0", "model.base_channels=32"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    ap.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated: {', '.join(RECIPES)}")
    ap.add_argument("--jobs", type=int, default=1, help="folds trained at once, as processes (each with cores / jobs threads)")
    ap.add_argument("--budget", action="store_true", help="every row at the RAVDESS table's CPU budget (width 32, 3 s crops, "
                    "20 epochs, patience 6)")
    ap.add_argument("--folds", help="comma-separated folds to train now (a partial row, compared with the shipped row's "
                    "same folds; a later call without it completes the run)")
    ap.add_argument("--quick", action="store_true", help="2 folds, 1 epoch, width 8 (no record written)")
    args = ap.parse_args()
    names = chosen(args.recipes, RECIPES, "recipe")
    out = Path(args.out)
    manifest = ravdess_manifest(args.ravdess, out, 8) if names else None
    if manifest is None:
        return 2
    rows = []
    budget = "cpu" if args.budget else "shipped"
    for name in names:
        experiment, own = RECIPES[name]
        overrides = [*(BUDGET if args.budget else []), *own]
        tag = f"resnet18_ravdess8_recipe_{name}{'_budget' if args.budget else ''}{'_quick' if args.quick else ''}"
        if args.budget and name == "shipped" and not args.quick:
            tag = "resnet18_ravdess8"  # the audio-models table's run: the very same config
        run = out / "runs" / tag
        step = run_step(f"cv {name}", ["cv", experiment, f"data.manifest={manifest}", f"data.cache_dir={out / 'cache'}",
                                       f"name={tag}", *overrides, *(QUICK if args.quick else []),
                                       *(["--folds", args.folds] if args.folds and not args.quick else []),
                                       "--jobs", str(args.jobs), "--no-progress", "--out", str(run)])
        summary = read_summary(run)
        entry = run_entry(summary, run, recipe=name, budget=budget, overrides=own, last_call_wall_s=step["wall_s"],
                          last_call_peak_pss_mib=step["peak_mib"])
        entry.pop("peak_rss_mib")  # this script's own memory says nothing; the child tree's PSS is above
        rows.append(entry)
        print(f"{name} ({budget} budget): UA {entry['ua']['mean']:.3f} ± {entry['ua']['std']:.3f}, Macro-F1 "
              f"{entry['macro_f1']['mean']:.3f} ± {entry['macro_f1']['std']:.3f}", file=sys.stderr)
    record = {"command": "python benchmarks/ravdess_recipe8.py [--budget --jobs 2]", "corpus": "RAVDESS 8-class, 6 speaker folds",
              "target": "UA >= 0.65 (ResLSTM-SA: UAR 0.623 ± 0.012 over 10 runs, best 0.652)", "runs": rows}
    path = write_record("ravdess_recipe8", record, quick=args.quick, merge_on=("recipe", "budget"))
    show_record("ravdess_recipe8", path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
