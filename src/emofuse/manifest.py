"""The manifest: the one table that data preparation writes and training reads.

A manifest folder holds ``manifest.csv`` (one row per usable utterance) and ``prepare.json``
(the corpus root, class map and class order, counts, and the fingerprint of the inputs).
Audio paths in the CSV are relative to the corpus root recorded in ``prepare.json``.
``emofuse prepare`` is the only writer of both.

ASR transcripts (``emofuse transcribe``) live beside them in a side cache keyed by audio content
and ASR model, ``asr/<model>-<id>-beam<N>.csv`` (audio_sha1, text), listed by ``asr/columns.json``
(column name -> side file and model); ``read_manifest`` joins each listed column onto the table
by ``audio_sha1`` (a clip without a transcript gets an empty string), so re-preparing a corpus
keeps its transcripts and the manifest is never rewritten by another command.
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
ASR_DIR = "asr"
ASR_INDEX = "columns.json"  # in ASR_DIR: {column: {"side_file": NAME, "model": ..., ...}}


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
                                      "label": str, "text": str, "raw_label": str, "audio_sha1": str, "corpus": str,
                                      "official_split": str},
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
    df = join_asr(df, csv_path.parent, meta)
    root = Path(meta["root"])
    if not root.is_absolute():
        root = (csv_path.parent / root).resolve()
    return Manifest(df.reset_index(drop=True), root, classes, meta, csv_path)


def join_asr(df: pd.DataFrame, folder: Path, meta: dict) -> pd.DataFrame:
    """``df`` with every ASR column listed in ``folder/asr/columns.json`` joined by ``audio_sha1``;
    ``meta["asr"]`` gets each column's record (model, beam, WER against the manual text).

    Raises:
        EmofuseError: the index names a side file that is missing, or a column the corpus owns.
    """
    index = folder / ASR_DIR / ASR_INDEX
    if not index.is_file():
        return df
    listed = json.loads(index.read_text())
    for column, info in listed.items():
        if column in COLUMNS:
            raise EmofuseError(f"{index}: lists column {column!r}, which the corpus owns; remove that entry")
        side = folder / ASR_DIR / info["side_file"]
        if not side.is_file():
            raise EmofuseError(f"{side}: ASR side file listed in {index} is missing; re-run 'emofuse transcribe' "
                               f"or remove the {column!r} entry")
        table = pd.read_csv(side, dtype=str, keep_default_na=False)
        text = dict(zip(table["audio_sha1"], table["text"]))
        df[column] = df["audio_sha1"].map(text).fillna("")
        meta.setdefault("asr", {})[column] = info
    return df


def write_manifest(df: pd.DataFrame, meta: dict, out_dir: Path) -> Path:
    """Write manifest.csv and prepare.json atomically (temp file, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / MANIFEST_NAME
    write_csv_atomic(df, csv_path)
    write_text_atomic(out_dir / META_NAME, json.dumps(meta, indent=2, sort_keys=True))
    return csv_path
