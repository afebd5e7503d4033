"""Benchmark: peak memory of prepare's check, feature extraction and prediction on long files.

For each length, a 44.1 kHz stereo 16-bit WAV of speech-like audio is written block by block
into a temporary folder (deleted afterwards; never commit audio), and each step runs in a fresh
process that reports its peak resident memory (VmHWM) before and after the step:

- prepare: ``prepare._check_file`` (hash + decode check of one file);
- features: ``FeatureStore.ensure`` on the file, one process (the log-mel cache);
- predict: ``Predictor.predict`` on the file with an untrained model of the shipped size
  (resnet18, 8 s windows; memory does not depend on the weights).

"Before" is measured after imports and a warm-up on a short clip (a 2 s file; for predict a
130 s clip, a full batch of windows), so "growth" is what the long file adds.

    python benchmarks/long_audio_memory.py                       # 10, 30 and 60 minutes
    python benchmarks/long_audio_memory.py --minutes 10 60
    python benchmarks/long_audio_memory.py --minutes 10 --src /tmp/old/src   # another checkout's code
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import hwm_mib

REPO = Path(__file__).resolve().parents[1]
STAGES = ("prepare", "features", "predict")


def write_wav(path: Path, seconds: float, sr: int = 44100, channels: int = 2) -> Path:
    """Speech-like audio (a gliding harmonic tone with a syllable-rate envelope), 10 s at a time."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    n, block = int(seconds * sr), sr * 10
    with sf.SoundFile(path, "w", sr, channels, subtype="PCM_16") as f:
        for start in range(0, n, block):
            t = (np.arange(start, min(n, start + block)) / sr)[:, None]
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)
            x = 0.2 * env * np.sin(2 * np.pi * (150 + 40 * np.sin(t)) * t) + 0.01 * rng.normal(size=(t.size, 1))
            f.write(np.repeat(x, channels, axis=1))
    return path


def run_stage(stage: str, path: Path, work: Path) -> None:
    """In a fresh process: warm up, then one step on ``path``; prints 'before after seconds'."""
    import torch

    from emofuse.features import FeatureStore, FrontendConfig
    from emofuse.inference import Predictor
    from emofuse.prepare import _check_file

    warm = write_wav(work / f"warm-{stage}.wav", 2.0)
    predictor = None
    if stage == "predict":
        from dataclasses import asdict

        from emofuse.config import load_config
        from emofuse.training.module import EmotionModule

        cfg = load_config("resnet18")["model"]
        cfg.pop("name")
        module = EmotionModule("resnet18", cfg, ["angry", "happy", "sad", "neutral"], 64, frontend=asdict(FrontendConfig()))
        predictor = Predictor([module.eval()])
        predictor.predict(torch.randn(16000 * 130).numpy() * 0.1, sample_rate=16000)
    elif stage == "features":
        FeatureStore(work / "warm-cache").ensure(["warm"], [warm], workers=1, progress=False)
    else:
        _check_file(str(warm))
    before = hwm_mib()
    t0 = time.perf_counter()
    if stage == "prepare":
        check, _ = _check_file(str(path))
        assert check.problem is None, check
    elif stage == "features":
        FeatureStore(work / f"cache-{os.getpid()}").ensure(["long"], [path], workers=1, progress=False)
    else:
        predictor.predict(path)
    print(f"{before:.0f} {hwm_mib():.0f} {time.perf_counter() - t0:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--src", help="run this source folder's emofuse instead (e.g. an older checkout's src/)")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        run_stage(args.stage, Path(args.file), Path(args.work))
        return 0
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.src).resolve()), env.get("PYTHONPATH", "")])
    print(f"44.1 kHz stereo 16-bit WAV; peak RSS (VmHWM) of one process per step; code: {args.src or REPO / 'src'}")
    print("| minutes | step | peak RSS MB | before the file MB | growth MB | seconds |\n|---|---|---|---|---|---|")
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory(prefix="emofuse-longaudio-") as tmp:
            path = write_wav(Path(tmp) / "long.wav", minutes * 60)
            for stage in args.stages:
                r = subprocess.run([sys.executable, __file__, "--stage", stage, "--file", str(path), "--work", tmp],
                                   capture_output=True, text=True, env=env)
                if r.returncode != 0:
                    print(f"| {minutes:g} | {stage} | failed: {r.stderr.strip().splitlines()[-1][:120]} | | | |")
                    continue
                before, after, seconds = map(float, r.stdout.split()[-3:])
                print(f"| {minutes:g} | {stage} | {after:.0f} | {before:.0f} | {after - before:.0f} | {seconds:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
