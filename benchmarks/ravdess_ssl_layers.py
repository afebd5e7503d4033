"""Benchmark: Whisper tiny.en on RAVDESS 8-class, last layer versus every layer weighted (issue #19).

1. ``emofuse convert-whisper tiny.en`` (the packaged CTranslate2 weights) into a transformers
   folder, once.
2. Features, timed, with their cache size: the CTranslate2 encoder's last layer
   (``whisper_encoder``, float32) and every hidden state of the converted model (``hf_encoder``,
   5 states x 384, float16).
3. The 6 speaker folds, for each head of ``--heads`` (default: all): ``whisper_mlp`` on the last
   layer, with and without mixup, versus ``ssl_weighted`` on all layers, with the layer weights at
   ``train.lr``, at their own rate, and at their own rate with mixup (the shipped recipe), under
   each training setting of ``--settings``: ``budget`` (the RAVDESS audio-models table's: 20
   epochs max, patience 6, 3 s training crops) and ``whole`` (whole clips, 40 epochs max,
   patience 10: the features are cached, so a longer schedule costs minutes).
   Macro-F1 / UA / WA mean +- std over folds, the validation speakers' Macro-F1 (what a head or
   setting may honestly be chosen on: the test speakers' scores must not pick it), and the learned
   layer weights (mean over folds).

Writes ``benchmarks/results/ravdess_ssl_layers.json`` (rendered into the READMEs by
render_tables.py). Every step is resumable (converted folder, feature shards, run folders).

    python benchmarks/ravdess_ssl_layers.py                 # RAVDESS at ../shared/data/ravdess
    python benchmarks/ravdess_ssl_layers.py --dry-run       # a small synthetic corpus, 1 epoch (checks the script)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from _common import chosen, ravdess_manifest, run_entry, show_record, write_record
from emofuse.config import load_config
from emofuse.features import open_store
from emofuse.manifest import read_manifest
from emofuse.pretrained.convert import convert_whisper
from emofuse.training.run import frontend_config, open_run, run_cv

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"budget": ["train.max_epochs=20", "train.early_stopping_patience=6", "data.crop_seconds=3.0"],
            "whole": ["train.max_epochs=40", "train.early_stopping_patience=10", "data.crop_seconds=null"]}
DRY = ["train.max_epochs=1", "train.warmup_epochs=0"]
# head: (record name, experiment, overrides, run-name tag). Each head pins the recipe keys, so a
# change of the shipped config never changes (or refuses to resume) a recorded row.
# ``weighted_lr`` gives the softmax logits over layers their own rate: at train.lr, a fold's ~30
# AdamW steps per epoch move them by ~0.3 in all, which keeps the weights near uniform; 0.02 lets
# them move by a few units, as SUPERB's long schedules do. The ``_mixup`` heads add mixup of the
# z-scored frames: the heads fit their 960 training clips within ~10 epochs (training loss 0.05,
# validation loss rising). ``last_mixup`` is the control: mixup on the last layer alone.
PLAIN, MIX = ["train.mixup_alpha=0.0"], ["train.mixup_alpha=0.4"]
HF, FIXED, OWN = ["features.model={hf}"], ["train.layer_weights_lr=null"], ["train.layer_weights_lr=0.02"]
HEADS = {"last": ("whisper_mlp (last layer, CTranslate2)", "whisper_mlp", PLAIN, ""),
         "last_mixup": ("whisper_mlp (last layer, CTranslate2, mixup 0.4)", "whisper_mlp", MIX, "_mix"),
         "weighted": ("ssl_weighted (all 5 hidden states, HF)", "ssl_weighted", [*HF, *FIXED, *PLAIN], ""),
         "weighted_lr": ("ssl_weighted (all 5 hidden states, HF, layer weights at lr 0.02)", "ssl_weighted",
                         [*HF, *OWN, *PLAIN], "_lwlr"),
         "weighted_lr_mixup": ("ssl_weighted (all 5 hidden states, HF, layer weights at lr 0.02, mixup 0.4)", "ssl_weighted",
                               [*HF, *OWN, *MIX], "_lwlr_mix")}


def _cache_bytes(store) -> int:
    return sum(p.stat().st_size for p in Path(store.dir).glob("shard-*.npy"))


def _features(cfg, manifest: Path, cache: Path) -> dict:
    """Fill the feature cache (timed) and say what it costs. The fill time is kept beside the cache
    (``feature_seconds.json``), so a later call that finds the cache full still reports it."""
    m = read_manifest(manifest)
    store = open_store(cache, frontend_config(cfg))
    log = cache / "feature_seconds.json"
    times = json.loads(log.read_text()) if log.is_file() else {}
    t0 = time.time()
    n = store.ensure(m.df["audio_sha1"].tolist(), [m.audio_path(p) for p in m.df["path"]], progress=False)
    if n:
        times[store.dir.name] = {"computed": n, "seconds": round(time.time() - t0, 1), "load_average": [round(x, 2) for x in os.getloadavg()]}
        log.write_text(json.dumps(times, indent=2))
    filled = times.get(store.dir.name, {})
    return {"computed": filled.get("computed"), "seconds": filled.get("seconds"), "cache_mb": round(_cache_bytes(store) / 1e6, 1),
            "audio_seconds": round(float(m.df["duration"].sum()), 1), "dim": store.dim, "folder": store.dir.name,
            "fill_load_average": filled.get("load_average")}


def _synthetic(out: Path) -> Path:
    from emofuse.prepare import prepare
    from emofuse.synth import SynthSpec, make_synthetic_corpus

    if not (out / "manifest" / "manifest.csv").is_file():
        make_synthetic_corpus(out / "corpus", SynthSpec(sessions=4, per_class=1, extra_fraction=0.0, min_seconds=0.8,
                                                        max_seconds=1.2, seed=3))
        prepare("iemocap", out / "corpus", out / "manifest", workers=1)
    return out / "manifest"


def _summary_row(name: str, s: dict, run: Path, feats: dict) -> dict:
    """The record's row: run_entry's config, per-fold metrics and per-class F1, plus the features'
    cost, the best epochs and the learned layer weights (mean and std over folds)."""
    row = run_entry(s, run, model=name, features=feats, best_epochs=[f["best_epoch"] for f in s.get("per_fold", [])])
    weights = [json.loads(p.read_text()) for p in sorted(run.glob("fold_*/layer_weights.json"))]
    if weights:
        w = np.array([x["weights"] for x in weights])
        row["layer_weights"] = {"layers": weights[0]["layers"], "mean": np.round(w.mean(0), 4).tolist(),
                                "std": np.round(w.std(0), 4).tolist()}
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess_ssl"))
    ap.add_argument("--dry-run", action="store_true", help="synthetic corpus (4 session folds), 1 epoch; the record stays in --out")
    ap.add_argument("--settings", default="budget", help=f"comma-separated training settings: {', '.join(SETTINGS)}")
    ap.add_argument("--heads", default=",".join(HEADS), help=f"comma-separated heads: {', '.join(HEADS)}")
    args = ap.parse_args()
    out = Path(args.out)
    manifest = _synthetic(out / "synth") if args.dry_run else ravdess_manifest(args.ravdess, out, 8)
    if manifest is None:
        return 2
    settings, heads = chosen(args.settings, SETTINGS, "--settings"), chosen(args.heads, HEADS, "--heads")
    if settings is None or heads is None:
        return 2
    cache = out / "cache"
    hf = out / "models" / "whisper-tiny.en-hf"
    if not (hf / "model.safetensors").is_file():
        convert_whisper("tiny.en", hf)

    rows = []
    for setting in settings:
        train = [*SETTINGS[setting], *(DRY if args.dry_run else [])]
        suffix = ("" if setting == "budget" else f"_{setting}") + ("_dry" if args.dry_run else "")
        for head in heads:
            name, exp, extra, tag = HEADS[head]
            extra = [x.format(hf=hf) for x in extra]
            cfg = load_config(exp, [f"data.manifest={manifest}", f"data.cache_dir={cache}", *train,
                                    f"name={exp}{tag}_ravdess8{suffix}", *extra])
            feats = _features(cfg, manifest, cache)
            print(f"{head}: features {feats}", file=sys.stderr)
            run = out / "runs" / f"{exp}{tag}_ravdess8{suffix}"
            s = run_cv(open_run(cfg, run), progress=False)
            rows.append({**_summary_row(name, s, run, feats), "settings": setting, "training": SETTINGS[setting]})

    record = {"command": "python benchmarks/ravdess_ssl_layers.py --settings " + args.settings + " --heads " + args.heads
              + (" --dry-run" if args.dry_run else ""),
              "corpus": "synthetic (dry run)" if args.dry_run else "RAVDESS 8-class, 6 speaker folds", "runs": rows}
    path = write_record("ravdess_ssl_layers", record, quick=args.dry_run, merge_on=("model", "settings"))
    show_record("ravdess_ssl_layers", path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
