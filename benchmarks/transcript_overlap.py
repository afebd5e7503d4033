"""Benchmark (issue #17): how much of a text or fusion result rests on recognised script lines?

The synthetic corpus in the IEMOCAP layout with ``scripts="shared"``: every session's scripted
dialogue reads the same script (one line per emotion), improvised utterances say sentences
found nowhere else, so about half of every test fold says a line its training sessions said.
Four runs, 5-fold leave-one-session-out, the demo's recipe: ``text_mlp`` and ``early_fusion``
(the demo's CNN+BiLSTM + [CLS]), each with ``cv.protocol=standard`` and ``script_disjoint``.

    python benchmarks/transcript_overlap.py            # ~10-20 min on 2 cores; resumable
    python benchmarks/render_tables.py                 # README tables from the committed records

Writes the record ``benchmarks/results/transcript_overlap.json`` (committed); runs go to
``bench_out/overlap/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import commit, machine as describe_machine
from emofuse.config import load_config
from emofuse.prepare import prepare
from emofuse.synth import SynthSpec, make_synthetic_corpus
from emofuse.training.run import open_run, run_cv

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "benchmarks" / "results" / "transcript_overlap.json"
RECIPE = ["train.max_epochs=12", "train.warmup_epochs=1", "train.lr=2.0e-3", "train.early_stopping_patience=5",
          "data.batch_size=16"]
AUDIO = "{channels: [16, 32, 64], lstm_hidden: 64, lstm_layers: 1}"  # the demo's encoder
RUNS = [("text_mlp", []), ("early_fusion", ["model.audio_encoder=cnn_bilstm", f"model.audio={AUDIO}"])]
PROTOCOLS = ("standard", "script_disjoint")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "bench_out" / "overlap"))
    ap.add_argument("--seed", type=int, default=0, help="synthetic corpus seed")
    ap.add_argument("--quick", action="store_true", help="a smoke run (tiny corpus, 1 epoch); writes no record")
    args = ap.parse_args()
    out = Path(args.out) / ("quick" if args.quick else f"seed{args.seed}")
    corpus, manifest = out / "corpus", out / "manifest"
    spec = SynthSpec(seed=args.seed, scripts="shared", **({"per_class": 2} if args.quick else {}))
    if not (corpus / "SYNTHETIC.json").is_file():
        make_synthetic_corpus(corpus, spec)
    prepare("iemocap", corpus, manifest)
    recipe = ["train.max_epochs=1", "data.batch_size=16"] if args.quick else RECIPE
    rows = []
    for model, extra in RUNS:
        for protocol in PROTOCOLS:
            cfg = load_config(model, [f"data.manifest={manifest}", *recipe, *extra, f"cv.protocol={protocol}",
                                      f"name={model}_{protocol}"])
            t0 = time.time()
            s = run_cv(open_run(cfg, out / "runs" / f"{model}_{protocol}"), progress=False)
            ov = s["transcript_overlap"]
            rows.append({"model": model, "protocol": protocol, "modalities": s["modalities"],
                         **{k: s[k] for k in ("macro_f1", "ua", "wa", "per_class_f1", "subsets")},
                         "overlap": {k: ov.get(k) for k in ("test_share", "test_share_min_words", "val_share",
                                                            "min_words", "removed_from_train", "level")},
                         "wall_seconds": s["wall_seconds"], "this_call_seconds": round(time.time() - t0, 1)})
            print(f"{model} {protocol}: Macro-F1 {s['macro_f1']['mean']:.3f}, overlap {ov.get('test_share')}",
                  file=sys.stderr)
    record = {"experiment": "transcript_overlap", "command": "python benchmarks/transcript_overlap.py",
              "commit": commit(), "machine": describe_machine(), "date": time.strftime("%Y-%m-%d"),
              "corpus": {"kind": "synthetic IEMOCAP layout", "scripts": "shared", "seed": args.seed,
                         "sessions": spec.sessions, "per_class": spec.per_class},
              "recipe": recipe, "audio_encoder": AUDIO, "runs": rows}
    if args.quick:
        print(json.dumps(record, indent=2))
        return 0
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RECORD}; now: python benchmarks/render_tables.py", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
