"""Benchmark: the emofuse front end against the study's librosa recipe, on the RAVDESS files.

Same settings both ways: 16 kHz mono, 64-band Slaney mel, 25 ms Hann window in a 512-point
FFT, 10 ms hop, power_to_db with an 80 dB floor.

- librosa, clip by clip as the study's code does: librosa.load(sr=16000) +
  librosa.feature.melspectrogram + librosa.power_to_db.
- emofuse: FeatureStore.ensure into a fresh cache (decode + soxr resample + batched torch log-mel
  in worker processes, written to memory-mapped shards), i.e. what `emofuse features` does.

Both run in this one process on the same files, alternating, ``--repeats`` times each (the
median counts; the files are in the page cache after the first pass); prints both times, the
ratio, seconds of audio per second, the time of decoding alone (the part both share: libsndfile
through soundfile), and the largest difference between the two outputs.

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
    ap.add_argument("--repeats", type=int, default=3, help="passes of each front end (the median counts)")
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

    def run_librosa() -> list[np.ndarray]:
        out = []
        for f in files:
            y, _ = librosa.load(str(f), sr=cfg.sample_rate, mono=True)
            mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length,
                                                 hop_length=cfg.hop_length, n_mels=cfg.n_mels, power=2.0)
            out.append(librosa.power_to_db(mel, ref=1.0, amin=cfg.amin, top_db=cfg.top_db))
        return out

    def run_emofuse(folder: Path) -> FeatureStore:
        store = FeatureStore(folder, cfg)  # a fresh cache: everything is computed
        store.ensure(keys, files, workers=workers, progress=False)
        return store

    workers = args.workers or os.cpu_count() or 1
    keys = [f"{i:040x}" for i in range(len(files))]
    tmp = Path(tempfile.mkdtemp(prefix="emofuse_frontend_bench_"))
    t_librosa, t_emofuse = [], []
    try:
        for r in range(args.repeats):
            t0 = time.perf_counter()
            ref = run_librosa()
            t_librosa.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store = run_emofuse(tmp / f"pass{r}")
            t_emofuse.append(time.perf_counter() - t0)
        diff = max(float(np.abs(np.asarray(store.get(k)).T - r[:, : store.frames(k)]).max()) for k, r in zip(keys, ref))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    for f in files:
        sf.read(str(f), dtype="float32")
    t_decode = time.perf_counter() - t0
    t_librosa_med, t_emofuse_med = float(np.median(t_librosa)), float(np.median(t_emofuse))
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, librosa {librosa.__version__}")
    print(f"{len(files)} files, {seconds / 60:.1f} min of audio")
    print("| front end | wall (s) | audio s per s |\n|---|---|---|")
    print(f"| librosa load + melspectrogram + power_to_db, clip by clip | {t_librosa_med:.2f} | {seconds / t_librosa_med:.0f} |")
    print(f"| emofuse FeatureStore.ensure ({workers} worker processes, into memory-mapped shards) | {t_emofuse_med:.2f} | "
          f"{seconds / t_emofuse_med:.0f} |")
    print(f"| (decoding alone, soundfile, one process: the part both share) | {t_decode:.2f} | {seconds / t_decode:.0f} |")
    print(f"\npasses (s): librosa {' '.join(f'{t:.2f}' for t in t_librosa)}; emofuse {' '.join(f'{t:.2f}' for t in t_emofuse)}")
    print(f"speed-up (medians): {t_librosa_med / t_emofuse_med:.1f}x (target >= 5x); largest difference: {diff:.2e} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
