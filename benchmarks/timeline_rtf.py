"""Benchmark: `emofuse predict --timeline` on a long recording: real-time factor and peak memory.

A 44.1 kHz stereo 16-bit WAV of speech-like turns (2-7 s of voiced sound, pauses of 0.3-3 s
of room noise) is written block by block into a temporary folder (deleted afterwards), then
one fresh process loads the run, warms up on a 20 s file, and segments and classifies the long
file (``emofuse.timeline.timeline``: two streamed passes). Peak resident memory (VmHWM) is read
before and after; real-time factor = processing seconds / audio seconds.

Without ``--run`` the small run of ``serve_load.py`` is used (trained there if missing).

    python benchmarks/timeline_rtf.py                 # 30 minutes; writes benchmarks/results/timeline_rtf.json
    python benchmarks/timeline_rtf.py --minutes 60 --no-record
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, hwm_mib, machine  # noqa: E402

RECORD = REPO / "benchmarks" / "results" / "timeline_rtf.json"


def write_talk(path: Path, seconds: float, sr: int = 44100, seed: int = 0) -> float:
    """Turns of voiced sound and pauses, written a turn at a time; returns the seconds of speech."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    speech, pos, n = 0.0, 0, int(seconds * sr)
    with sf.SoundFile(path, "w", sr, 2, subtype="PCM_16") as f:
        while pos < n:
            talk, pause = rng.uniform(2, 7), rng.uniform(0.3, 3)
            m = min(n - pos, int((talk + pause) * sr))
            t = np.arange(m) / sr
            voiced = t < talk
            f0 = rng.uniform(100, 260)
            x = sum(0.5 ** k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(5)) * 0.2
            x = x * (0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)) * voiced
            x = (x + 3e-4 * rng.normal(size=m)).astype(np.float32)
            f.write(np.stack([x, 0.9 * x], axis=1))
            speech += min(talk, m / sr)
            pos += m
    return speech


def measure(run: str, path: str, warm: str) -> dict:
    """In a fresh process: load, warm up, then the timeline of ``path``."""
    import torch

    import emofuse
    from emofuse.timeline import timeline

    predictor = emofuse.load(run, device="cpu")
    timeline(predictor, warm)
    before = hwm_mib()
    t0 = time.perf_counter()
    tl = timeline(predictor, path)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 1), "audio_s": round(tl.seconds, 1), "rtf": round(wall / tl.seconds, 4),
            "segments": len(tl.segments), "speech_s": round(tl.speech_seconds, 1),
            "peak_mib": round(hwm_mib()), "before_mib": round(before), "torch_threads": torch.get_num_threads()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained run (default: serve_load.py's small run)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "emofuse-bench-serve"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    from serve_load import small_run

    run = args.run or str(small_run(Path(args.work)))
    with tempfile.TemporaryDirectory(prefix="emofuse-timeline-") as tmp:
        long, warm = Path(tmp) / "long.wav", Path(tmp) / "warm.wav"
        speech = write_talk(long, args.minutes * 60)
        write_talk(warm, 20.0, seed=1)
        load_before = os.getloadavg()[0]
        r = subprocess.run([sys.executable, __file__, "--measure", run, str(long), str(warm)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr[-3000:])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res["load_avg"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]  # whole machine, 1 min, before / after
    rec = {"experiment": "timeline_rtf",
           "command": "python benchmarks/timeline_rtf.py" + (f" --minutes {args.minutes:g}" if args.minutes != 30 else ""),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
           "machine": machine() + f", {os.cpu_count()} cores", "date": date.today().isoformat(),
           "model": "demo config (cnn_bilstm), 1 fold" if not args.run else args.run,
           "file": f"{args.minutes:g} min, 44.1 kHz stereo 16-bit WAV, {speech:.0f} s of voiced turns (2-7 s) between pauses",
           **res}
    print(json.dumps(rec, indent=2))
    if not args.no_record:
        RECORD.write_text(json.dumps(rec, indent=2) + "\n")
        print(f"wrote {RECORD.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
