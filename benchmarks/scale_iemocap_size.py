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
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import machine as describe_machine

REPO = Path(__file__).resolve().parents[1]


def _tree_rss(root: int) -> int:
    """Proportional resident bytes (PSS: shared pages split between their users, so the
    libraries every worker maps count once) of ``root`` and all its descendants (Linux /proc)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_step(name: str, args: list[str]) -> dict:
    """Run ``emofuse ARGS``; wall time and peak tree memory."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "emofuse", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env=env)
    peak = [0]

    def sample():
        while p.poll() is None:
            peak[0] = max(peak[0], _tree_rss(p.pid))
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = p.communicate()[0]
    th.join()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        print(out[-3000:], file=sys.stderr)
        raise SystemExit(f"step {name} failed (exit {p.returncode})")
    last = [line for line in out.splitlines() if line.strip()][-1:]
    print(f"{name}: {wall:.0f} s, peak {peak[0] / 2**20:.0f} MiB | {last[0][:160] if last else ''}", file=sys.stderr)
    return {"step": name, "wall_s": round(wall, 1), "peak_mib": round(peak[0] / 2**20), "output": out[-4000:]}


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
