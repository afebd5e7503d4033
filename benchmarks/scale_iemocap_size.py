"""Benchmark: an IEMOCAP-sized synthetic corpus through prepare + features + one CV epoch.

IEMOCAP's 4-class set has 5,531 utterances of 1-20 s, about 7 hours. ``emofuse synth
--durations iemocap`` writes the same release layout with that skewed length distribution
(per-class 138: 5,520 4-class utterances plus fru/xxx that the class map leaves out). Each step
runs as its own ``emofuse`` command; a sampler reads /proc every 0.2 s and records the peak
proportional resident memory (PSS) of the whole process tree (worker processes included), which shows the
pipeline never holds the corpus's waveforms in memory at once.

    python benchmarks/scale_iemocap_size.py                   # ~7 h corpus under bench_out/scale
    python benchmarks/scale_iemocap_size.py --per-class 20    # a quick look (prints, writes no record)
The CV epoch uses resnet18 at width 32 with 3 s crops (the RAVDESS benchmark's CPU setting).
The full-size run writes ``benchmarks/results/scale_iemocap_size.json``, the record the READMEs'
table is rendered from.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from _common import load_average, run_step, show_record, write_record

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "bench_out" / "scale"))
    ap.add_argument("--per-class", type=int, default=138)
    ap.add_argument("--keep", action="store_true", help="re-use a corpus already written under --out")
    ap.add_argument("--no-record", action="store_true", help="print only; leave the record alone")
    args = ap.parse_args()
    out = Path(args.out)
    corpus, manifest, run = out / "corpus", out / "manifest", out / "run"
    steps, before = [], load_average()
    if not (args.keep and (corpus / "SYNTHETIC.json").is_file()):
        steps.append(run_step("synth", ["synth", str(corpus), "--per-class", str(args.per_class), "--durations", "iemocap",
                                        "--max-seconds", "20"]))
    info = json.loads((corpus / "SYNTHETIC.json").read_text())
    steps.append(run_step("prepare", ["prepare", "iemocap", str(corpus), "--out", str(manifest)]))
    shutil.rmtree(manifest / "cache", ignore_errors=True)  # the features step computes everything, also with --keep
    steps.append(run_step("features", ["features", str(manifest)]))
    steps.append(run_step("cv, 1 epoch x 5 folds", ["cv", "resnet18", f"data.manifest={manifest}", "model.base_channels=32",
                                                    "data.crop_seconds=3.0", "train.max_epochs=1", "train.warmup_epochs=0",
                                                    "--out", str(run), "--overwrite"]))
    meta = json.loads((manifest / "prepare.json").read_text())
    wave_gib = meta["hours"] * 3600 * 16000 * 4 / 2**30
    summary = json.loads((run / "summary.json").read_text())
    record = {"command": "python benchmarks/scale_iemocap_size.py", "cores": os.cpu_count(), "per_class": args.per_class,
              "utterances_written": info["utterances"], "manifest_rows": meta["rows"], "hours": round(meta["hours"], 3),
              "waveforms_gib": round(wave_gib, 3), "cv_macro_f1": summary["macro_f1"],
              "load_average": {"before": before, "after": load_average()},
              "steps": [{k: v for k, v in step.items() if k != "output"} for step in steps]}
    show_record("scale_iemocap_size", write_record("scale_iemocap_size", record, quick=args.per_class != 138 or args.no_record), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
