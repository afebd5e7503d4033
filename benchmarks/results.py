"""Run (or resume) every benchmark experiment whose record the READMEs' tables are made from,
then rewrite those tables (issue #23).

Each experiment is a script in this folder that writes ``benchmarks/results/NAME.json`` (config,
commit, machine, per-fold metrics, per-class F1, wall time, peak memory). Their CV runs are
ordinary resumable run folders under ``bench_out/``: an interrupted call continues where it
stopped, and a finished run is read back, not retrained.

    python benchmarks/results.py --list                 # each experiment, its record's commit and date
    python benchmarks/results.py                        # everything (hours on a 2-core CPU)
    python benchmarks/results.py --only cpu_speed,fusion_ablation
    python benchmarks/results.py --quick                # every script's smoke run; no record changes
    python benchmarks/render_tables.py                  # tables only, from the committed records
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Experiment:
    script: str
    what: str
    cost: str                      # on the 2-core reference CPU
    args: tuple[str, ...] = ()
    needs: tuple[str, ...] = field(default=())   # "ravdess", "pretrained"
    quick: tuple[str, ...] | None = ("--quick",)  # the script's smoke-run flags (no record written); None: it has none


EXPERIMENTS: dict[str, Experiment] = {
    "demo_output": Experiment("demo_output.py", "the README's demo, report and compare outputs: `emofuse demo` (and its "
                              "time), a mean-pooling variant, `report`, `compare`", "~6 min", quick=("--no-record",)),
    "cpu_speed": Experiment("cpu_speed.py", "training-step speed per model: fp32, bf16, channels_last, compile, threads",
                            "~10 min"),
    "transcript_overlap": Experiment("transcript_overlap.py", "text/fusion results under standard vs script-disjoint folds",
                                     "~20 min"),
    "fusion_ablation": Experiment("fusion_ablation.py", "audio, text, early fusion, cross-attention (synthetic + RAVDESS text)",
                                  "~15 min", needs=("ravdess",)),
    "cv_shipped": Experiment("ravdess_cv_shipped.py", "shipped resnet18 6-fold CV, RAVDESS 4-class: fp32 vs "
                             "channels_last + 2 folds at once (wall, memory, Macro-F1)", "~1.2 h", needs=("ravdess",)),
    "cv_shipped_probe": Experiment("ravdess_cv_shipped.py", "the same 2 folds x 3 epochs of resnet18 under fp32, channels_last "
                                   "and 2 folds at once", "~10 min", ("--probe", "--variants", "fp32,channels_last,fast"),
                                   needs=("ravdess",)),
    "ravdess_recipe8": Experiment("ravdess_recipe8.py", "from-scratch recipes for resnet18, RAVDESS 8-class: SpecAugment, "
                                  "mixup, label smoothing, longer, combined (add --budget for the CPU screen, ~3.5 h)",
                                  "~9 h", needs=("ravdess",)),
    "ravdess_audio_models": Experiment("ravdess_audio_models.py", "3 audio models x RAVDESS 4/8-class, 6 speaker folds",
                                       "~3.5 h", needs=("ravdess",)),
    "augment_ablation": Experiment("ravdess_augment_ablation.py", "augmentation policies, resnet18, RAVDESS 8-class",
                                   "~3 h", ("--policies", "none,uniform,class_differentiated,"
                                            "class_differentiated_waveform_only,class_differentiated_specaugment_only"),
                                   needs=("ravdess",)),
    "ravdess_ssl_layers": Experiment("ravdess_ssl_layers.py", "Whisper tiny.en: last layer vs all layers weighted, "
                                     "RAVDESS 8-class", "~1 h", needs=("ravdess", "pretrained"), quick=("--dry-run",)),
    "ravdess_whisper": Experiment("ravdess_whisper.py", "Whisper tiny.en on RAVDESS: transcription (WER per emotion) and "
                                  "encoder frames, each timed", "~40 min", ("--threads", "2"), needs=("ravdess", "pretrained")),
    "cross_corpus": Experiment("cross_corpus.py", "a RAVDESS 4-class run evaluated on a corpus with other voices",
                               "~40 min", needs=("ravdess",), quick=None),
    "serve_load": Experiment("serve_load.py", "local service: 200 requests, 8 in flight (latency, throughput, memory)",
                             "~5 min", quick=("--requests", "16", "--no-record")),
    "timeline_rtf": Experiment("timeline_rtf.py", "emotion over time: real-time factor and memory on a 30-minute file",
                               "~6 min", quick=("--minutes", "2", "--no-record")),
    "frontend_vs_librosa": Experiment("frontend_vs_librosa.py", "log-mel front end vs librosa clip by clip, all RAVDESS files: "
                                      "FLAC and WAV on all cores, FLAC on one", "~5 min", ("--matrix", "--repeats", "5"),
                                      needs=("ravdess",), quick=("--limit", "40", "--repeats", "1")),
    "realtime_factor": Experiment("realtime_factor.py", "real-time factor per model, one 8 s clip, batch 1", "~1 min",
                                  ("--threads", "1"), quick=("--repeats", "1", "--no-record")),
    "train_throughput": Experiment("train_throughput.py", "training throughput and data-wait share per model (GPU rows on CUDA)",
                                   "~6 min", needs=("ravdess",), quick=("--batches", "2", "--epochs", "1", "--no-record")),
    "augment_speed": Experiment("augment_speed.py", "training throughput without and with the study's augmentation",
                                "~5 min", ("--epochs", "3"), needs=("ravdess",), quick=("--epochs", "1", "--no-record")),
    "scale_iemocap_size": Experiment("scale_iemocap_size.py", "an IEMOCAP-sized synthetic corpus: prepare, features, one CV "
                                     "epoch (wall, peak memory)", "~8 min", quick=("--per-class", "10")),
}


def record_line(name: str) -> str:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return "no record yet"
    rec = json.loads(path.read_text())
    runs = rec.get("runs", [])
    commits = sorted({r.get("commit", rec.get("commit")) for r in runs} or {rec.get("commit")})
    return f"record: {f'{len(runs)} run(s), ' if runs else ''}commit {', '.join(map(str, commits))}, {rec.get('date')}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help=f"comma-separated experiments: {', '.join(EXPERIMENTS)}")
    ap.add_argument("--list", action="store_true", help="list the experiments and their records; run nothing")
    ap.add_argument("--quick", action="store_true", help="each script's smoke run (writes no record)")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        print(f"unknown experiment(s) {unknown}; known: {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    if args.list:
        for n in names:
            e = EXPERIMENTS[n]
            print(f"{n:22s} {e.cost:>8s}  {e.what}\n{'':22s} {'':>8s}  python benchmarks/{e.script} {' '.join(e.args)}"
                  f"\n{'':22s} {'':>8s}  {record_line(n)}")
        return 0
    failed = []
    for n in names:
        e = EXPERIMENTS[n]
        if args.quick and e.quick is None:
            print(f"== {n}: no smoke run (it would replace its record); skipped", file=sys.stderr)
            continue
        cmd = [sys.executable, str(HERE / e.script), *e.args, *(e.quick if args.quick else [])]
        print(f"== {n} ({e.cost}): {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        t0 = time.time()
        rc = subprocess.call(cmd, cwd=HERE)
        print(f"== {n}: exit {rc} after {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        if rc != 0:
            failed.append(n)
    if not args.quick:
        subprocess.call([sys.executable, str(HERE / "render_tables.py")], cwd=HERE)
    if failed:
        print(f"failed: {', '.join(failed)} (their records are unchanged)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
