"""Benchmark: frozen Whisper tiny.en on RAVDESS 8-class (issue: pretrained encoder + ASR).

1. ASR: ``emofuse transcribe`` on every clip (greedy), word error rate against the two known
   sentences ("Kids are talking by the door." / "Dogs are sitting by the door."), overall and
   per emotion.
2. Features: Whisper encoder frames into the feature cache (timed; computed once per corpus).
3. ``whisper_mlp`` 6-fold speaker-independent CV with the settings of the resnet18 row of
   ravdess_audio_models.py (20 epochs max, patience 6, 3 s crops), compared with that row.

Every step is resumable (transcripts side file, feature shards, run folders). Needs the
``pretrained`` extra.

    python benchmarks/ravdess_whisper.py
    python benchmarks/ravdess_whisper.py --threads 2 --beam-size 5
Prints (and writes to bench_out/ravdess/whisper.md) the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from _common import machine as describe_machine, ravdess_manifest
from emofuse.asr import normalize_words, transcribe_manifest, wer
from emofuse.config import load_config
from emofuse.features import open_store
from emofuse.manifest import read_manifest
from emofuse.training.run import frontend_config, open_run, run_cv

REPO = Path(__file__).resolve().parents[1]
BASE = ["train.max_epochs=20", "train.early_stopping_patience=6", "data.crop_seconds=3.0"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    ap.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0: its default)")
    ap.add_argument("--beam-size", type=int, default=1)
    ap.add_argument("--skip-cv", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    manifest = ravdess_manifest(args.ravdess, out, 8)
    if manifest is None:
        return 2
    lines = [f"Machine: {describe_machine()}; CTranslate2 threads: {args.threads or 'default'}", ""]

    t0 = time.time()
    r = transcribe_manifest(manifest, beam_size=args.beam_size, threads=args.threads, progress=False)
    t_asr = time.time() - t0
    df = read_manifest(manifest).df
    lines += ["| ASR (Whisper tiny.en, CTranslate2, beam %d) | clips | WER | exact sentence | seconds (this run) |" % args.beam_size,
              "|---|---|---|---|---|",
              f"| all | {len(df)} | {wer(df['text'].tolist(), df['text_asr'].tolist()):.3f} | "
              f"{_exact(df):.3f} | {t_asr:.0f} ({r.transcribed} new) |"]
    for lab, g in df.groupby("label"):
        lines.append(f"| {lab} | {len(g)} | {wer(g['text'].tolist(), g['text_asr'].tolist()):.3f} | {_exact(g):.3f} | |")
    common = _top(df["text_asr"])
    lines += ["", "Most frequent transcripts: " + "; ".join(f"\"{t}\" x{n}" for t, n in common), ""]
    print("\n".join(lines), file=sys.stderr)

    cfg = load_config("whisper_mlp", [f"data.manifest={manifest}", f"data.cache_dir={out / 'cache'}", *BASE,
                                      "name=whisper_mlp_ravdess8", f"features.threads={args.threads}"])
    store = open_store(out / "cache", frontend_config(cfg))
    t0 = time.time()
    n = store.ensure(df["audio_sha1"].tolist(), [read_manifest(manifest).audio_path(p) for p in df["path"]], progress=False)
    t_feat = time.time() - t0
    hours = df["duration"].sum() / 3600
    lines += [f"Whisper encoder features: {n} clips computed in {t_feat:.0f} s ({hours * 3600 / max(t_feat, 1e-9):.1f} s of audio "
              f"per second)" if n else f"Whisper encoder features: all {len(df)} clips already cached in {store.dir.name}", ""]
    if not args.skip_cv:
        rows = []
        s = run_cv(open_run(cfg, out / "runs" / "whisper_mlp_ravdess8"), progress=False)
        rows.append(("whisper_mlp (frozen tiny.en encoder)", s))
        ref = out / "runs" / "resnet18_ravdess8" / "summary.json"
        if ref.is_file():
            rows.append(("resnet18 (width 32, from scratch)", json.loads(ref.read_text())))
        lines += ["| RAVDESS 8-class, 6 speaker folds | Macro-F1 | UA | WA | train utt/s | wall s |", "|---|---|---|---|---|---|"]
        for name, s in rows:
            lines.append(f"| {name} | " + " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in ("macro_f1", "ua", "wa"))
                         + f" | {s.get('train_utt_per_s', float('nan')):.0f} | {s.get('wall_seconds', float('nan')):.0f} |")
    text = "\n".join(lines) + "\n"
    (out / "whisper.md").write_text(text)
    print(text)
    return 0


def _exact(df: pd.DataFrame) -> float:
    """Share of clips whose transcript has exactly the sentence's words (case and punctuation aside)."""
    return float((df["text"].map(normalize_words) == df["text_asr"].map(normalize_words)).mean())


def _top(col: pd.Series, k: int = 5) -> list[tuple[str, int]]:
    return list(col.value_counts().head(k).items())


if __name__ == "__main__":
    sys.exit(main())
