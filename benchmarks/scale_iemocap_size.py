"""Benchmark: an IEMOCAP-sized synthetic corpus through prepare + features + one CV epoch.

IEMOCAP's 4-class set has 5,531 utterances of 1-20 s, about 7 hours. ``emofuse synth
--durations iemocap`` writes the same release layout with that skewed length distribution
(per-class 138: 5,520 4-class utterances plus fru/xxx that the class map leaves out). Each step
runs as its own ``emofuse`` command; a sampler reads /proc every 0.2 s and records the peak
proportional resident memory (PSS) of the whole process tree (worker processes included), which shows the
pipeline never holds the corpus's waveforms in memory at once.

    python benchmarks/scale_iemocap_size.py                   # ~7 h corpus under bench_out/scale
    python benchmarks/scale_iemocap_size.py --per-class 20    # a quick look
The CV epoch uses resnet18 at width 32 with 3 s crops (the RAVDESS benchmark's CPU setting).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from _common import machine as describe_machine, run_step

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "bench_out" / "scale"))
    ap.add_argument("--per-class", type=int, default=138)
    ap.add_argument("--keep", action="store_true", help="re-use a corpus already written under --out")
    args = ap.parse_args()
    out = Path(args.out)
    corpus, manifest, run = out / "corpus", out / "manifest", out / "run"
    steps = []
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
    lines = [f"Machine: {describe_machine()}, {os.cpu_count()} cores",
             f"Corpus: {info['utterances']} utterances written, {meta['rows']} in the 4-class manifest, "
             f"{meta['hours']:.2f} h; all its waveforms as float32 would take {wave_gib:.2f} GiB", "",
             "| step | wall (s) | peak memory, process tree PSS (MiB) |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['wall_s']:.0f} | {s['peak_mib']} |" for s in steps]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.md").write_text(text)
    (out / "scale.json").write_text(json.dumps(steps, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
