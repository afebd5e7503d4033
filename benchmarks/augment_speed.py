"""Benchmark: training throughput with augmentation off and on, same data, same model, one run.

RAVDESS 8-class, fold 0 (16 training actors), resnet18 at width 32 with 3 s crops, a few epochs
each: policy none versus the study's class-differentiated policy (waveform variants + per-class
SpecAugment). Prints the one-off rendering time of the waveform variants, the training
throughput (utterances/s, share of step time waiting on data) of both runs, and their ratio.

    python benchmarks/augment_speed.py                 # needs ../shared/data/ravdess
    python benchmarks/augment_speed.py --epochs 3 --variants 4

Writes ``benchmarks/results/augment_speed.json``, the record the READMEs' table is rendered from
(``--no-record``: print only).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from _common import load_average, noise_bank, ravdess_manifest, show_record, write_record
from emofuse.config import load_config
from emofuse.training.run import fold_augment, open_run, train_fold

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "augment_speed"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--no-record", action="store_true", help="print only; leave the record alone")
    args = ap.parse_args()
    out = Path(args.out)
    manifest = ravdess_manifest(args.ravdess, out, 8)
    if manifest is None:
        return 2
    noise = noise_bank(out / "noise")
    common = [f"data.manifest={manifest}", f"data.cache_dir={out / 'cache'}", f"train.max_epochs={args.epochs}",
              "train.early_stopping_patience=null", "data.crop_seconds=3.0", "model.base_channels=32"]
    rows, before = {}, load_average()
    for policy in ("none", "class_differentiated"):
        run_dir = out / "runs" / policy
        shutil.rmtree(run_dir, ignore_errors=True)  # a fresh fold each time: throughput, not resuming
        cfg = load_config("resnet18_augment", [*common, f"augment.policy={policy}", f"augment.noise_dir={noise}",
                                               f"augment.variants={args.variants}", f"name=augment_speed_{policy}"])
        ctx = open_run(cfg, run_dir)
        render_s = 0.0
        if policy != "none":  # render fold 0's variants from scratch, timed on their own
            for old in (out / "cache").glob("augmented-logmel-*"):
                shutil.rmtree(old)
            t0 = time.time()
            aug = fold_augment(ctx, ctx.folds[0], run_dir / "fold_0")
            render_s = time.time() - t0
            rendered = sum(1 for u in aug.train if aug.waveform_variants(u))
        t0 = time.time()
        result = train_fold(ctx, 0, progress=False)
        rows[policy] = {"fold_seconds": time.time() - t0, "utt_per_s": result["train_utt_per_s"],
                        "wait": result.get("data_wait_fraction"), "render_s": render_s,
                        "train_items": len(ctx.folds[0].train), "rendered": rendered if policy != "none" else 0}
    record = {"command": "python benchmarks/augment_speed.py", "corpus": "RAVDESS 8-class, fold 0",
              "model": "resnet18, width 32, 3 s crops", "epochs": args.epochs, "variants": args.variants, "target_slowdown": 1.5,
              "load_average": {"before": before, "after": load_average()},
              "runs": [{"policy": name, **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}}
                       for name, r in rows.items()]}
    show_record("augment_speed", write_record("augment_speed", record, quick=args.no_record), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
