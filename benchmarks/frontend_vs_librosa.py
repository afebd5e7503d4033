"""Benchmark: the emofuse front end against the study's librosa recipe, on the RAVDESS files.

Same settings both ways: 16 kHz mono, 64-band Slaney mel, 25 ms Hann window in a 512-point
FFT, 10 ms hop, power_to_db with an 80 dB floor.

- librosa, clip by clip as the study's code does: librosa.load(sr=16000) +
  librosa.feature.melspectrogram + librosa.power_to_db.
- emofuse: FeatureStore.ensure into a fresh cache (decode + soxr resample + batched torch log-mel
  in worker processes, written to memory-mapped shards), i.e. what `emofuse features` does.

Both run in this one process, one after the other, on the same files; prints both times, the
ratio, seconds of audio per second, and the largest difference between the two outputs.

    python benchmarks/frontend_vs_librosa.py                 # all 1,440 RAVDESS files
    python benchmarks/frontend_vs_librosa.py --limit 300 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--limit", type=int, default=0, help="use the first N files (0: all)")
    ap.add_argument("--workers", type=int, default=0, help="emofuse worker processes (0: all cores)")
    args = ap.parse_args()
    files = sorted(Path(args.ravdess).glob("Actor_*/*.*"))
    files = [f for f in files if f.suffix.lower() in (".wav", ".flac")][: args.limit or None]
    if not files:
        print(f"no RAVDESS audio under {args.ravdess}; pass --ravdess DIR", file=sys.stderr)
        return 2
    import librosa
    import soundfile as sf
    import torch

    from emofuse.features import FeatureStore, FrontendConfig

    seconds = sum(sf.info(str(f)).duration for f in files)
    cfg = FrontendConfig()
    # librosa, clip by clip.
    t0 = time.perf_counter()
    ref = []
    for f in files:
        y, _ = librosa.load(str(f), sr=cfg.sample_rate, mono=True)
        mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length,
                                             hop_length=cfg.hop_length, n_mels=cfg.n_mels, power=2.0)
        ref.append(librosa.power_to_db(mel, ref=1.0, amin=cfg.amin, top_db=cfg.top_db))
    t_librosa = time.perf_counter() - t0
    # emofuse, into a fresh cache.
    workers = args.workers or os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="emofuse_frontend_bench_"))
    try:
        store = FeatureStore(tmp, cfg)
        keys = [f"{i:040x}" for i in range(len(files))]
        t0 = time.perf_counter()
        store.ensure(keys, files, workers=workers, progress=False)
        t_emofuse = time.perf_counter() - t0
        diff = max(float(np.abs(np.asarray(store.get(k)).T - r[:, : store.frames(k)]).max()) for k, r in zip(keys, ref))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, librosa {librosa.__version__}")
    print(f"{len(files)} files, {seconds / 60:.1f} min of audio")
    print("| front end | wall (s) | audio s per s |\n|---|---|---|")
    print(f"| librosa load + melspectrogram + power_to_db, clip by clip | {t_librosa:.1f} | {seconds / t_librosa:.0f} |")
    print(f"| emofuse FeatureStore.ensure ({workers} worker processes, into memory-mapped shards) | {t_emofuse:.1f} | "
          f"{seconds / t_emofuse:.0f} |")
    print(f"\nspeed-up: {t_librosa / t_emofuse:.1f}x (target >= 5x); largest difference: {diff:.2e} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
