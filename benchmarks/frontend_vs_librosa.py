"""Benchmark: the emofuse front end against the study's librosa recipe, on the RAVDESS files.

Same settings both ways: 16 kHz mono, 64-band Slaney mel, 25 ms Hann window in a 512-point
FFT, 10 ms hop, power_to_db with an 80 dB floor.

- librosa, clip by clip as the study's code does: librosa.load(sr=16000) +
  librosa.feature.melspectrogram + librosa.power_to_db.
- emofuse: FeatureStore.ensure into a fresh cache (decode + soxr resample + batched torch log-mel
  in worker processes, written to memory-mapped shards), i.e. what `emofuse features` does.

Both run in this one process on the same files, alternating, ``--repeats`` times each (the
table shows medians; the files are in the page cache after the first pass); prints both times,
the ratio of the medians and of the best passes (on a shared VM single passes vary by +-25%;
the best pass is each front end with the least interference), seconds of audio per second, the
time of decoding alone (libsndfile through soundfile, as librosa decodes, and emofuse's own),
and the largest difference between the two outputs.

    python benchmarks/frontend_vs_librosa.py                 # all 1,440 RAVDESS files (FLAC, as shipped)
    python benchmarks/frontend_vs_librosa.py --format wav    # the same audio as 16-bit WAV (IEMOCAP's format)
    python benchmarks/frontend_vs_librosa.py --limit 300 --workers 2
    python benchmarks/frontend_vs_librosa.py --matrix --repeats 5   # the README's rows: FLAC and WAV on all cores, FLAC on one

``--format wav`` writes the files once as 16-bit WAV into a temporary folder (not timed), so
both front ends decode WAV: what they cost on IEMOCAP, whose release is WAV.

A run over the whole corpus writes its rows of ``benchmarks/results/frontend_vs_librosa.json``
(one row per format and worker count, merged), the record the READMEs' table is rendered
from; ``--limit`` and ``--no-record`` runs print only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import load_average, show_record, write_record

REPO = Path(__file__).resolve().parents[1]
TARGET = 5.0  # issue #7: the front end at least 5x librosa's clip-by-clip recipe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--limit", type=int, default=0, help="use the first N files (0: all)")
    ap.add_argument("--workers", type=int, default=0, help="emofuse worker processes (0: all cores)")
    ap.add_argument("--repeats", type=int, default=3, help="passes of each front end (medians and best passes are reported)")
    ap.add_argument("--format", choices=("as-is", "wav"), default="as-is",
                    help="wav: convert the files to 16-bit WAV first (untimed)")
    ap.add_argument("--matrix", action="store_true", help="the README's rows in one call: as-is and WAV with all cores, "
                    "as-is with one worker (ignores --format and --workers)")
    ap.add_argument("--no-record", action="store_true", help="print only; leave the record alone")
    args = ap.parse_args()
    files = sorted(Path(args.ravdess).glob("Actor_*/*.*"))
    files = [f for f in files if f.suffix.lower() in (".wav", ".flac")][: args.limit or None]
    if not files:
        print(f"no RAVDESS audio under {args.ravdess}; pass --ravdess DIR", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    settings = ([("as-is", cores), ("wav", cores), ("as-is", 1)] if args.matrix
                else [(args.format, args.workers or cores)])
    runs = []
    tmp = Path(tempfile.mkdtemp(prefix="emofuse_frontend_bench_"))
    try:
        for fmt, workers in settings:
            before = load_average()
            audio = to_wav(files, tmp / "wav") if fmt == "wav" else files
            runs.append({"format": audio[0].suffix[1:].lower(), "workers": workers, "cores": cores,
                         **measure(audio, tmp / f"{fmt}_{workers}", workers, args.repeats),
                         "load_average": {"before": before, "after": load_average()}})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record = {"command": "python benchmarks/frontend_vs_librosa.py --matrix --repeats 5", "corpus": "RAVDESS speech",
              "target_speedup": TARGET, "runs": runs}
    path = write_record("frontend_vs_librosa", record, quick=bool(args.limit) or args.no_record, merge_on=("format", "workers"))
    show_record("frontend_vs_librosa", path, record)
    return 0


def to_wav(files: list[Path], folder: Path) -> list[Path]:
    """The same samples as 16-bit WAV files in ``folder``."""
    import soundfile as sf

    folder.mkdir(parents=True)
    out = []
    for f in files:
        data, sr = sf.read(str(f), dtype="int16")
        out.append(folder / f"{f.stem}.wav")
        sf.write(str(out[-1]), data, sr, subtype="PCM_16")
    return out


def measure(files: list[Path], tmp: Path, workers: int, repeats: int) -> dict:
    """Alternate the two front ends ``repeats`` times on ``files``; their passes (s), decoding alone
    (s, one process each way) and the largest difference between their outputs (dB)."""
    import librosa
    import soundfile as sf

    from emofuse.audio import read_audio
    from emofuse.features import FeatureStore, FrontendConfig

    seconds = sum(sf.info(str(f)).duration for f in files)
    cfg = FrontendConfig()
    keys = [f"{i:040x}" for i in range(len(files))]

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

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    librosa.feature.melspectrogram(y=np.zeros(cfg.sample_rate, np.float32), sr=cfg.sample_rate)  # its JIT, outside the passes
    t_librosa, t_emofuse = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        ref = run_librosa()
        t_librosa.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store = run_emofuse(tmp / f"pass{r}")
        t_emofuse.append(time.perf_counter() - t0)
    diff = max(float(np.abs(np.asarray(store.get(k)).T - r[:, : store.frames(k)]).max()) for k, r in zip(keys, ref))
    t_decode = timed(lambda: [sf.read(str(f), dtype="float32") for f in files])
    t_decode_ours = timed(lambda: [read_audio(f, cfg.sample_rate) for f in files])
    return {"files": len(files), "audio_seconds": round(seconds, 1), "repeats": repeats, "librosa_version": librosa.__version__,
            "librosa_passes_s": [round(t, 3) for t in t_librosa], "emofuse_passes_s": [round(t, 3) for t in t_emofuse],
            "decode_soundfile_s": round(t_decode, 3), "decode_emofuse_s": round(t_decode_ours, 3), "max_diff_db": diff}


if __name__ == "__main__":
    sys.exit(main())
