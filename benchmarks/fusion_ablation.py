"""Benchmark: does audio + text beat either alone? (The study's hypothesis H1, on two corpora.)

synthetic: the built-in corpus (5 sessions, IEMOCAP layout) whose audio and text each carry
part of the class signal. Four runs with the same audio encoder (the demo's small CNN+BiLSTM)
and the same recipe: audio only, text only ([CLS] + MLP), early fusion, cross-attention fusion
(audio frames x text tokens). 5-fold leave-one-session-out.

ravdess: text only on RAVDESS 4- and 8-class (6 speaker folds). Its two sentences are the same
for every emotion, so text alone must be at chance: a check that nothing leaks through text.

    python benchmarks/fusion_ablation.py                    # both corpora
    python benchmarks/fusion_ablation.py --corpus synthetic --seed 1
Runs are resumable folders under bench_out/fusion/; the table goes to results.md there.
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
from emofuse.synth import SynthSpec, make_synthetic_corpus
from emofuse.training.run import open_run, run_cv

REPO = Path(__file__).resolve().parents[1]
RECIPE = ["train.max_epochs=12", "train.warmup_epochs=1", "train.lr=2.0e-3", "train.early_stopping_patience=5",
          "data.batch_size=16"]
AUDIO = "{channels: [16, 32, 64], lstm_hidden: 64, lstm_layers: 1}"  # the demo's encoder
SYNTH_RUNS = [
    ("audio only (cnn_bilstm)", "cnn_bilstm", ["model.channels=[16,32,64]", "model.lstm_hidden=64", "model.lstm_layers=1"]),
    ("text only (text_mlp, [CLS])", "text_mlp", []),
    ("early fusion (cnn_bilstm + [CLS])", "early_fusion", ["model.audio_encoder=cnn_bilstm", f"model.audio={AUDIO}"]),
    ("cross-attention (cnn_bilstm frames x tokens)", "cross_attention", ["model.audio_encoder=cnn_bilstm", f"model.audio={AUDIO}"]),
]


def run(label: str, config: str, overrides: list[str], run_dir: Path) -> dict:
    cfg = load_config(config, overrides)
    t0 = time.time()
    s = run_cv(open_run(cfg, run_dir), progress=False)
    return run_entry(s, run_dir, label=label, config_name=config, this_call_seconds=round(time.time() - t0, 1))


def table(rows: list[dict]) -> str:
    lines = ["| corpus | run | modalities | Macro-F1 | UA | WA | wall (s, all folds) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['label']} | {' + '.join(r['modalities'])} | " + " | ".join(
            f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}" for k in ("macro_f1", "ua", "wa")) + f" | {r['wall_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="synthetic,ravdess")
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "fusion"))
    ap.add_argument("--seed", type=int, default=0, help="synthetic corpus seed")
    ap.add_argument("--quick", action="store_true", help="a smoke run (tiny corpus, 1 epoch); writes no record")
    args = ap.parse_args()
    if args.quick:
        RECIPE[:] = ["train.max_epochs=1", "data.batch_size=16", "cv.n_folds=2"]
        args.out = str(Path(args.out) / "quick")
    out = Path(args.out)
    rows = []
    if "synthetic" in args.corpus:
        corpus, manifest = out / f"synth{args.seed}" / "corpus", out / f"synth{args.seed}" / "manifest"
        if not (corpus / "SYNTHETIC.json").is_file():
            make_synthetic_corpus(corpus, SynthSpec(seed=args.seed, **({"per_class": 2} if args.quick else {})))
        prepare("iemocap", corpus, manifest)
        for label, config, extra in SYNTH_RUNS:
            ov = [f"data.manifest={manifest}", *RECIPE, *extra, f"name={config}_synth{args.seed}"]
            rows.append({"corpus": f"synthetic (seed {args.seed})",
                         **run(label, config, ov, out / "runs" / f"synth{args.seed}_{config}")})
            print(table(rows), file=sys.stderr)
    if "ravdess" in args.corpus:
        ravdess = Path(args.ravdess)
        if not ravdess.is_dir():
            print(f"RAVDESS not found at {ravdess}; pass --ravdess DIR", file=sys.stderr)
            return 2
        for task in (4, 8):
            manifest = out / f"ravdess{task}"
            prepare("ravdess", ravdess, manifest, class_map=f"ravdess{task}")
            ov = [f"data.manifest={manifest}", "train.max_epochs=20", "train.early_stopping_patience=6",
                  f"name=text_mlp_ravdess{task}", *(RECIPE if args.quick else [])]
            rows.append({"corpus": f"RAVDESS {task}-class (chance UA {1 / task:.3f})",
                         **run("text only (text_mlp, [CLS])", "text_mlp", ov, out / "runs" / f"ravdess{task}_text_mlp")})
            print(table(rows), file=sys.stderr)
    machine = describe_machine()
    text = f"Machine: {machine}\n\n{table(rows)}\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(text)
    path = write_record("fusion_ablation", {"command": "python benchmarks/fusion_ablation.py", "recipe": RECIPE,
                                            "audio_encoder": AUDIO, "runs": rows}, quick=args.quick, merge_on=("corpus", "label"))
    print(f"wrote {path}; now: python benchmarks/render_tables.py" if path else "quick run: no record written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
