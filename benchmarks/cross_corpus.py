"""Benchmark (issue #21): a RAVDESS 4-class audio run evaluated on another corpus.

The plumbing of cross-corpus evaluation, measured: the demo's CNN+BiLSTM trained on fold 0 of
RAVDESS 4-class (angry / happy / sad / neutral, speaker-independent) for a few epochs, then
``emofuse evaluate`` applies it to a corpus made by ``emofuse synth`` with other voices (another
seed: other speakers, pitch and timbre) and the IEMOCAP layout. The in-corpus test score of the
same fold is recorded beside it. The second corpus is synthetic: its figure shows the
pipeline runs and what a domain shift does, not what RAVDESS -> a real corpus gives (the
README cites published cross-corpus figures for that).

    python benchmarks/cross_corpus.py      # ~3-5 min on 2 cores (RAVDESS at ../shared/data/ravdess)
    python benchmarks/render_tables.py     # README tables from the committed records

Writes the record ``benchmarks/results/cross_corpus.json`` (committed); work goes to
``bench_out/cross_corpus/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import RAVDESS, commit, ravdess_manifest, run_step
from _common import machine as describe_machine

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "benchmarks" / "results" / "cross_corpus.json"
RECIPE = ["train.max_epochs=6", "train.early_stopping_patience=3", "data.feature_workers=2"]
SYNTH = {"sessions": 2, "per_class": 10, "seed": 7}  # 4 speakers the run never heard, ~180 utterances


def headline(m: dict) -> dict:
    return {k: round(float(m[k]), 4) for k in ("macro_f1", "ua", "wa")} | {"n": m.get("n")} | {
        "per_class_f1": {c: round(float(v), 4) for c, v in m.get("per_class_f1", {}).items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(RAVDESS))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "cross_corpus"))
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.time()
    ravdess = ravdess_manifest(args.ravdess, out, task=4)
    if ravdess is None:
        return 2
    synth = out / "synth"
    if not (synth / "SYNTHETIC.json").is_file():
        run_step("synth", ["synth", str(synth), "--sessions", str(SYNTH["sessions"]), "--per-class",
                           str(SYNTH["per_class"]), "--seed", str(SYNTH["seed"])])
    run_step("prepare synth", ["prepare", "iemocap", str(synth), "--out", str(out / "synth_manifest")])
    run = out / "run"
    train = run_step("train", ["train", "demo", f"data.manifest={ravdess}", *RECIPE, "--fold", "0", "--out", str(run),
                               "--overwrite"])
    in_corpus = json.loads((run / "fold_0" / "metrics.json").read_text())
    ev = run_step("evaluate", ["evaluate", str(run), str(out / "synth_manifest"), "--out", str(out / "evaluate")])
    cross = json.loads((out / "evaluate" / "metrics.json").read_text())
    test = in_corpus.get("test", in_corpus)
    record = {"experiment": "cross_corpus", "command": "python benchmarks/cross_corpus.py", "commit": commit(),
              "machine": describe_machine(), "date": time.strftime("%Y-%m-%d"),
              "model": "demo (cnn_bilstm, channels [16, 32, 64], lstm_hidden 64)", "recipe": RECIPE,
              "train": {"corpus": "RAVDESS", "class_map": "ravdess4", "fold": 0,
                        "utterances": int(sum(json.loads((ravdess / "prepare.json").read_text())["label_counts"].values()))},
              "in_corpus_test": headline(test),
              "cross_corpus": {"corpus": "emofuse synth (IEMOCAP layout, other voices)", "synth": SYNTH,
                               "class_map": "iemocap4", **headline(cross["metrics"]), "counts": cross["counts"],
                               "alignment": cross["alignment"]},
              "chance_ua": 0.25,
              "wall_seconds": {"train": train["wall_s"], "evaluate": ev["wall_s"], "total": round(time.time() - t0, 1)}}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(f"in-corpus Macro-F1 {record['in_corpus_test']['macro_f1']:.3f}, cross-corpus "
          f"{record['cross_corpus']['macro_f1']:.3f}; wrote {RECORD}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
