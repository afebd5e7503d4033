"""Benchmark: augmentation ablation for ResNet-18 on RAVDESS 8-class (the study's hypothesis H3).

Policies none / uniform / class_differentiated (configs/augment/study.yaml) and the study policy
with its waveform effects only (class-dependent SpecAugment off), 6 speaker folds,
the same CPU settings as ravdess_audio_models.py (width 32, 3 s crops, 20 epochs max, patience
6). The "none" run is the very run folder of ravdess_audio_models.py (same config), so the two
scripts share it. MUSAN is not available offline here: the happy class's environmental noise
comes from the synthetic MUSAN-layout bank of 'emofuse synth-noise' unless --noise-dir is given.

    python benchmarks/ravdess_augment_ablation.py
    python benchmarks/ravdess_augment_ablation.py --policies class_differentiated --noise-dir /data/musan
Finished folds are kept, so a re-run resumes. Prints (and writes to bench_out/ravdess/augment_ablation.md)
Macro-F1, UA, WA and per-class F1, mean and std over folds, and writes the record
benchmarks/results/augment_ablation.json that the READMEs' table is rendered from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import machine as describe_machine, noise_bank, ravdess_manifest, run_entry, write_record
from emofuse.config import load_config
from emofuse.training.run import open_run, run_cv

REPO = Path(__file__).resolve().parents[1]
# Exactly the overrides of ravdess_audio_models.py for resnet18, 8-class.
BASE = ["train.max_epochs=20", "train.early_stopping_patience=6", "data.crop_seconds=3.0"]
# Rows beyond the three policies: the class-differentiated policy with one half switched off.
VARIANTS = {"class_differentiated_waveform_only": ("class_differentiated", ["augment.specaugment=false"]),
            "class_differentiated_specaugment_only": ("class_differentiated", ["augment.waveform=false"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    ap.add_argument("--policies", default="none,uniform,class_differentiated,class_differentiated_waveform_only",
                    help=f"none, uniform, class_differentiated and the ablation rows {', '.join(VARIANTS)}")
    ap.add_argument("--noise-dir", help="MUSAN-layout folder (default: a synthetic bank under --out)")
    ap.add_argument("--quick", action="store_true", help="a smoke run (2 folds, 1 epoch, 3 batches); writes no record")
    args = ap.parse_args()
    out = Path(args.out)
    manifest = ravdess_manifest(args.ravdess, out, 8)
    if manifest is None:
        return 2
    noise = Path(args.noise_dir) if args.noise_dir else noise_bank(out / "noise_synthetic", per_kind=8)
    rows = []
    for policy in args.policies.split(","):
        common = [f"data.manifest={manifest}", f"data.cache_dir={out / 'cache'}", *BASE]
        quick = ["train.max_epochs=1", "cv.n_folds=2", "train.limit_train_batches=3", "train.limit_val_batches=2"] if args.quick else []
        tag = "_quick" if args.quick else ""
        if policy == "none":  # the audio benchmark's run, shared
            cfg = load_config("resnet18", [*common, f"name=resnet18_ravdess8{tag}", "model.base_channels=32", *quick])
            run_dir = out / "runs" / f"resnet18_ravdess8{tag}"
        else:
            base, extra = VARIANTS.get(policy, (policy, []))
            cfg = load_config("resnet18_augment", [*common, f"name=resnet18_ravdess8_{policy}{tag}", "model.base_channels=32",
                                                   f"augment.policy={base}", f"augment.noise_dir={noise}", *extra, *quick])
            run_dir = out / "runs" / f"resnet18_ravdess8_{policy}{tag}"
        s = run_cv(open_run(cfg, run_dir), progress=False)
        rows.append(run_entry(s, run_dir, policy=policy))
        print(table(rows), file=sys.stderr)
    machine = describe_machine()
    text = f"Machine: {machine}; noise: {noise}\n\n{table(rows)}\n"
    (out / "augment_ablation.md").write_text(text)
    (out / "augment_ablation.json").write_text(json.dumps(rows, indent=2))
    print(text)
    path = write_record("augment_ablation", {"command": "python benchmarks/ravdess_augment_ablation.py",
                                             "noise": "synthetic MUSAN-layout bank, 8 files per kind" if not args.noise_dir else "MUSAN",
                                             "runs": rows}, quick=args.quick, merge_on=("policy",))
    print(f"wrote {path}; now: python benchmarks/render_tables.py" if path else "quick run: no record written", file=sys.stderr)
    return 0


def table(rows: list[dict]) -> str:
    classes = list(rows[0]["per_class_f1"])
    lines = ["| policy | Macro-F1 | UA | WA | " + " | ".join(f"F1 {c}" for c in classes) + " |",
             "|---|---|---|---|" + "---|" * len(classes)]
    for r in rows:
        lines.append(f"| {r['policy']} | " + " | ".join(f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}" for k in ("macro_f1", "ua", "wa"))
                     + " | " + " | ".join(f"{r['per_class_f1'][c]['mean']:.2f} ± {r['per_class_f1'][c]['std']:.2f}" for c in classes)
                     + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
