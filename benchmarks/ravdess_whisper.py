"""Benchmark: frozen Whisper tiny.en on RAVDESS 8-class as transcriber and feature extractor
(issues #8 and #23): the two one-off steps that every Whisper run pays before training.

1. ASR: ``emofuse transcribe``'s code path (greedy unless ``--beam-size``) on every clip; word error
   rate against the two known sentences ("Kids are talking by the door." / "Dogs are sitting by
   the door."), overall and per emotion, the share of word-exact clips and the commonest outputs.
2. Features: Whisper encoder frames into the feature cache (computed once per corpus, timed).

The trained heads over those frames (``whisper_mlp``, ``ssl_weighted``) are compared with the
from-scratch models in ``ravdess_ssl_layers.py``'s record, not here. Writes
``benchmarks/results/ravdess_whisper.json``. Both steps resume (transcripts side file, feature
shards); a step that did not process every distinct recording records no time ("not timed"), so
a timing in the record is always a full pass. Needs the ``pretrained`` extra.

    python benchmarks/ravdess_whisper.py --threads 2        # ~40 min on the 2-core reference CPU
    python benchmarks/ravdess_whisper.py --quick            # 8 clips in a scratch folder: checks the script
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import RESULTS, load_average, ravdess_manifest, show_record, write_record
from emofuse.asr import normalize_words, transcribe_manifest, wer
from emofuse.config import load_config
from emofuse.features import open_store
from emofuse.manifest import read_manifest
from emofuse.training.run import frontend_config

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    ap.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0: its default)")
    ap.add_argument("--beam-size", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="one clip per emotion, scratch folder, no record written")
    ap.add_argument("--force", action="store_true", help="write the record even where a step found its work done and "
                    "so could not time it (by default a timed record is never replaced by an untimed one)")
    args = ap.parse_args()
    out = Path(args.out)
    manifest = ravdess_manifest(args.ravdess, out, 8)
    if manifest is None:
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        if args.quick:
            out, manifest = Path(scratch), _subset(manifest, Path(scratch) / "manifest8", per_label=1)
        record = measure(manifest, out / "cache", args.threads, args.beam_size)
    untimed = [step for step in ("asr", "features") if record[step]["wall_s"] is None]
    if untimed and not args.quick and not args.force and (RESULTS / "ravdess_whisper.json").is_file():
        print(f"record unchanged: {' and '.join(untimed)} found their work already done under {out} and could not be "
              "timed; delete the transcripts side file (manifest8/asr) or the whisper feature cache to re-time them, "
              "or pass --force", file=sys.stderr)
        return 0
    path = write_record("ravdess_whisper", record, quick=args.quick)
    show_record("ravdess_whisper", path, record)
    return 0


def measure(manifest: Path, cache: Path, threads: int, beam_size: int) -> dict:
    """Transcribe and extract encoder frames for every clip of ``manifest``; the record's fields."""
    import ctranslate2

    before = load_average()
    t0 = time.perf_counter()
    asr = transcribe_manifest(manifest, beam_size=beam_size, threads=threads, progress=False)
    t_asr = time.perf_counter() - t0
    m = read_manifest(manifest)
    df = m.df
    print(f"ASR: {asr.transcribed} clips transcribed in {t_asr:.0f} s", file=sys.stderr)

    cfg = load_config("whisper_mlp", [f"data.manifest={manifest}", f"data.cache_dir={cache}", f"features.threads={threads}"])
    store = open_store(cache, frontend_config(cfg))
    t0 = time.perf_counter()
    computed = store.ensure(df["audio_sha1"].tolist(), [m.audio_path(p) for p in df["path"]], progress=False)
    t_feat = time.perf_counter() - t0
    print(f"features: {computed} clips computed in {t_feat:.0f} s", file=sys.stderr)
    audio_s = float(df["duration"].sum())
    distinct = df["audio_sha1"].nunique()  # both steps work per distinct recording: identical files are done once
    return {
        "command": "python benchmarks/ravdess_whisper.py" + (f" --threads {threads}" if threads else "")
                   + (f" --beam-size {beam_size}" if beam_size != 1 else ""),
        "corpus": "RAVDESS speech, 8 classes", "model": "Whisper tiny.en (CTranslate2, packaged)",
        "ctranslate2": ctranslate2.__version__, "threads": threads or "CTranslate2 default", "beam_size": beam_size,
        "clips": len(df), "distinct_recordings": distinct, "audio_s": round(audio_s, 1),
        "asr": {"wall_s": round(t_asr, 1) if asr.transcribed == distinct else None, "transcribed": asr.transcribed,
                **_scores(df), "per_label": {lab: {"clips": len(g), **_scores(g)} for lab, g in df.groupby("label")},
                "commonest": [[t, int(n)] for t, n in df["text_asr"].value_counts().head(5).items()]},
        "features": {"wall_s": round(t_feat, 1) if computed == distinct else None, "computed": computed,
                     "dim": store.dim, "frames_per_s": round(1 / store.frame_seconds)},
        "load_average": {"before": before, "after": load_average()},
    }


def _scores(df: pd.DataFrame) -> dict:
    """Word error rate and the share of word-exact clips (case and punctuation aside)."""
    exact = (df["text"].map(normalize_words) == df["text_asr"].map(normalize_words)).mean()
    return {"wer": round(wer(df["text"].tolist(), df["text_asr"].tolist()), 4), "exact": round(float(exact), 4)}


def _subset(manifest: Path, dest: Path, per_label: int) -> Path:
    """A copy of ``manifest`` with ``per_label`` clips of each class, its audio root made absolute."""
    m = read_manifest(manifest)
    dest.mkdir(parents=True)
    raw = pd.read_csv(manifest / "manifest.csv", dtype=str, keep_default_na=False)
    raw.groupby("label").head(per_label).to_csv(dest / "manifest.csv", index=False)
    meta = json.loads((manifest / "prepare.json").read_text())
    meta["root"] = str(m.root)
    (dest / "prepare.json").write_text(json.dumps(meta))
    return dest


if __name__ == "__main__":
    sys.exit(main())
