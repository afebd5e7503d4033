"""The manifest: the one table that data preparation writes and training reads.

A manifest folder holds ``manifest.csv`` (one row per usable utterance) and ``prepare.json``
(the corpus root, class map and class order, counts, and the fingerprint of the inputs).
Audio paths in the CSV are relative to the corpus root recorded in ``prepare.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .atomic import write_csv_atomic, write_text_atomic
from .errors import EmofuseError

COLUMNS = ["utt_id", "path", "speaker", "session", "gender", "label", "text", "duration", "sample_rate",
           "channels", "raw_label", "audio_sha1"]
MANIFEST_NAME = "manifest.csv"
META_NAME = "prepare.json"
NEAR_DUPLICATES_NAME = "near_duplicates.csv"


@dataclass
class Manifest:
    """A loaded manifest: the table, its corpus root and its ordered class names."""

    df: pd.DataFrame
    root: Path
    classes: list[str]
    meta: dict
    path: Path

    def audio_path(self, rel: str) -> Path:
        return self.root / rel

    def label_index(self) -> pd.Series:
        return self.df["label"].map({c: i for i, c in enumerate(self.classes)})

    def near_duplicates(self) -> list[tuple[str, str, float]] | None:
        """(utt_a, utt_b, bit error rate) pairs of the same recording in another form, found by
        ``emofuse prepare`` (``near_duplicates.csv``); None when this manifest has no such file."""
        path = self.path.parent / NEAR_DUPLICATES_NAME
        if not path.is_file():
            return None
        table = pd.read_csv(path, dtype={"utt_a": str, "utt_b": str}, keep_default_na=False)
        return [(a, b, float(r)) for a, b, r in zip(table["utt_a"], table["utt_b"], table["ber"])]


def resolve_manifest_path(path: str | Path) -> Path:
    """A manifest folder or its CSV file -> the CSV path."""
    p = Path(path)
    return p / MANIFEST_NAME if p.is_dir() else p


def read_manifest(path: str | Path) -> Manifest:
    """Load a manifest written by ``emofuse prepare``.

    Raises:
        EmofuseError: missing file, missing columns, or a duplicate utt_id.
    """
    csv_path = resolve_manifest_path(path)
    if not csv_path.is_file():
        raise EmofuseError(f"{csv_path}: manifest not found; run 'emofuse prepare CORPUS ROOT --out DIR' first")
    meta_path = csv_path.parent / META_NAME
    if not meta_path.is_file():
        raise EmofuseError(f"{meta_path}: missing beside the manifest; re-run 'emofuse prepare'")
    meta = json.loads(meta_path.read_text())
    df = pd.read_csv(csv_path, dtype={"utt_id": str, "path": str, "speaker": str, "session": str, "gender": str,
                                      "label": str, "text": str, "raw_label": str, "audio_sha1": str},
                     keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise EmofuseError(f"{csv_path}: columns {missing} are missing; re-run 'emofuse prepare'")
    dup = df["utt_id"][df["utt_id"].duplicated()].tolist()
    if dup:
        raise EmofuseError(f"{csv_path}: duplicate utt_id {dup[:3]}; utt_ids must be unique")
    classes = list(meta["classes"])
    unknown = sorted(set(df["label"]) - set(classes))
    if unknown:
        raise EmofuseError(f"{csv_path}: labels {unknown} are not in the class list {classes} of {meta_path.name}")
    root = Path(meta["root"])
    if not root.is_absolute():
        root = (csv_path.parent / root).resolve()
    return Manifest(df.reset_index(drop=True), root, classes, meta, csv_path)


def write_manifest(df: pd.DataFrame, meta: dict, out_dir: Path) -> Path:
    """Write manifest.csv and prepare.json atomically (temp file, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / MANIFEST_NAME
    write_csv_atomic(df, csv_path)
    write_text_atomic(out_dir / META_NAME, json.dumps(meta, indent=2, sort_keys=True))
    return csv_path
