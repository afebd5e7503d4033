"""Near-duplicate recordings in a prepared corpus (``emofuse prepare`` runs this once per manifest).

Every clip's content fingerprint (``emofuse.fingerprint``) is computed from its first
``MAX_SECONDS`` of decoded 16 kHz mono audio, cached by audio content in
``<manifest>/fingerprints.npz`` (an unchanged clip is never fingerprinted twice), and the
corpus is searched for the same recording under another name, encoding, rate, gain or trim.
The pairs go to ``<manifest>/near_duplicates.csv`` (utt_a, utt_b, ber, path_a, path_b), which
the fold audit reads: a pair across train / validation / test fails it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from .atomic import write_csv_atomic
from .audio import TARGET_SR, read_audio, to_mono_16k
from .errors import EmofuseError
from .fingerprint import Fingerprint, duplicate_groups, find_near_duplicates, fingerprint, load_fingerprints, save_fingerprints
from .manifest import NEAR_DUPLICATES_NAME

CACHE_NAME = "fingerprints.npz"
MAX_SECONDS = 60.0  # a copy is recognised long before this; keeps memory flat on hour-long files


def _head(path: str) -> np.ndarray:
    """The first ``MAX_SECONDS`` of a clip as 16 kHz mono float32 (read without decoding the rest)."""
    try:
        with sf.SoundFile(path) as f:
            data = f.read(frames=int(MAX_SECONDS * f.samplerate), dtype="float32", always_2d=True)
            sr = f.samplerate
    except Exception:  # a format libsndfile cannot seek in: decode it whole
        return read_audio(path, TARGET_SR)[: int(MAX_SECONDS * TARGET_SR)]
    return to_mono_16k(data, sr, TARGET_SR)


def _fingerprint_file(path: str) -> Fingerprint:
    return fingerprint(_head(path), TARGET_SR)


def fingerprints_for(df: pd.DataFrame, paths: list[Path], cache: Path, workers: int = 1) -> dict[str, Fingerprint]:
    """sha1 -> fingerprint for every row, from the cache where it has them (computed otherwise, then saved)."""
    from .shards import map_in_processes

    known: dict[str, Fingerprint] = {}
    if cache.is_file():
        try:
            known = load_fingerprints(cache)
        except EmofuseError as exc:
            print(f"{cache}: {exc}; fingerprints are computed again", file=sys.stderr)
    first = dict(zip(df["audio_sha1"], map(str, paths)))  # one file per distinct content
    todo = [sha for sha in first if sha not in known]
    if todo:
        for sha, fp in zip(todo, map_in_processes(_fingerprint_file, [first[s] for s in todo], workers)):
            known[sha] = fp
        save_fingerprints(cache, {sha: known[sha] for sha in first})
    return known


def find_in_manifest(df: pd.DataFrame, paths: list[Path], out_dir: Path, workers: int = 1) -> pd.DataFrame:
    """Write ``out_dir/near_duplicates.csv`` for a manifest table and return it (one row per pair)."""
    fps = fingerprints_for(df, paths, out_dir / CACHE_NAME, workers)
    items = [(u, fps[sha], float(d)) for u, sha, d in zip(df["utt_id"], df["audio_sha1"], df["duration"])]
    pairs = find_near_duplicates(items)
    path_of = dict(zip(df["utt_id"], df["path"]))
    table = pd.DataFrame([{"utt_a": a, "utt_b": b, "ber": round(float(r), 4), "path_a": path_of[a], "path_b": path_of[b]}
                          for a, b, r in pairs], columns=["utt_a", "utt_b", "ber", "path_a", "path_b"])
    write_csv_atomic(table, out_dir / NEAR_DUPLICATES_NAME)
    return table


def summary_lines(table: pd.DataFrame, out_dir: Path, shown: int = 3) -> list[str]:
    """What prepare prints about the pairs it found."""
    if table.empty:
        return ["  no near-duplicate recordings (the content fingerprints of every clip were compared)"]
    groups = duplicate_groups(zip(table["utt_a"], table["utt_b"], table["ber"]))
    out = [f"  {len(table)} near-duplicate pairs ({len(groups)} recordings stored more than once: re-encoded, resampled, "
           f"gain-changed or trimmed copies, or identical files); the fold audit fails if a pair is split across "
           f"train/val/test; all pairs: {out_dir / NEAR_DUPLICATES_NAME}"]
    for r in table.head(shown).itertuples():
        out.append(f"    {r.path_a} ~ {r.path_b} (bit error rate {r.ber:.2f})")
    return out
