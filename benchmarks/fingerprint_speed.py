"""Benchmark: near-duplicate search at IEMOCAP size (10,000 clips of 1-30 s), on synthetic fingerprints.

Fingerprints are random bits (what unrelated recordings look like to the comparison) with
IEMOCAP's skewed durations (log-normal, median 3.8 s, clipped to 1-30 s), about 10 % inactive
frames, and summaries drawn around a few shared centres (a corpus of a few speakers: many
candidates per clip, like real data). ``--copies`` of them are planted as copies: 15 % of
the bits flipped (Ogg Vorbis on RAVDESS flips 12-19 %), trimmed by 0-100 ms, and the summary
perturbed. Reports the search time and whether exactly the planted pairs came back. Also times
``fingerprint`` itself on synthetic speech-like audio.

    python benchmarks/fingerprint_speed.py
    python benchmarks/fingerprint_speed.py --clips 20000 --copies 50
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from emofuse.fingerprint import HOP_SECONDS, SUMMARY_DIM, Fingerprint, find_near_duplicates, fingerprint
from emofuse.synth import _voice


def synthetic_corpus(clips: int, copies: int, seed: int = 0):
    """(items, planted pairs): items as find_near_duplicates takes them."""
    rng = np.random.default_rng(seed)
    durations = np.clip(rng.lognormal(np.log(3.8), 0.55, clips), 1.0, 30.0)
    centres = rng.normal(0, 1, (10, SUMMARY_DIM))
    items = []
    for i, d in enumerate(durations):
        frames = int(d / HOP_SECONDS)
        words = rng.integers(0, 2 ** 32, frames, dtype=np.uint32)
        level = np.where(rng.random(frames) < 0.1, -60, -5).astype(np.int8)
        summary = (centres[rng.integers(10)] + 0.3 * rng.normal(size=SUMMARY_DIM)).astype(np.float32)
        items.append((f"utt{i:05d}", Fingerprint(words, level, summary), float(d)))
    planted = set()
    for c, src in enumerate(rng.choice(clips, copies, replace=False)):
        _, fp, d = items[src]
        trim = int(rng.integers(0, 21))                      # 0-100 ms, in 5 ms frames
        flips = (rng.random((fp.n_frames, 32)) < 0.15) << np.arange(32, dtype=np.uint64)
        words = (fp.words ^ flips.sum(axis=1).astype(np.uint32))[trim:]
        summary = fp.summary + 0.05 * rng.normal(size=SUMMARY_DIM).astype(np.float32)
        copy_id = f"copy{c:03d}"
        items.append((copy_id, Fingerprint(words, fp.level[trim:], summary), d - trim * HOP_SECONDS))
        planted.add((items[src][0], copy_id))
    return items, planted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=10_000)
    ap.add_argument("--copies", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}")

    wave = _voice(np.random.default_rng(0), 16000, 10.0, 140.0, 0.1, 0.7, 4.0, 0.6, 0.02)
    fingerprint(wave)
    t = time.perf_counter()
    for _ in range(10):
        fingerprint(wave)
    per_second = (time.perf_counter() - t) / 100.0
    print(f"fingerprint: {per_second * 1000:.2f} ms per second of audio "
          f"({per_second * 4.5 * 10_000:.0f} s for 10,000 clips of 4.5 s, decoding not included)")

    items, planted = synthetic_corpus(args.clips, args.copies)
    frames = sum(fp.n_frames for _, fp, _ in items)
    t = time.perf_counter()
    pairs = find_near_duplicates(items)
    took = time.perf_counter() - t
    found = {(a, b) for a, b, _ in pairs}
    print(f"search: {len(items)} clips ({frames * HOP_SECONDS / 3600:.1f} h), {took:.1f} s; "
          f"{len(found & planted)}/{len(planted)} planted pairs found, {len(found - planted)} others")
    return 0 if found == planted else 1


if __name__ == "__main__":
    raise SystemExit(main())
