"""ASR transcripts for a manifest (``emofuse transcribe``) and word error rate.

Transcripts become a manifest column (``text_asr``), so the text branch runs on corpora
without manual transcripts (``text.source=asr``) and the cost of ASR text against manual text
can be measured. They are never written into ``manifest.csv`` (``emofuse prepare`` is its only
writer): every finished batch is appended to a side file keyed by audio content and model
(``<manifest folder>/asr/<model>-<id>-beam<N>.csv``), listed in ``asr/columns.json``, and
``read_manifest`` joins the column. An interrupted run keeps what it transcribed, and
re-preparing a corpus neither loses nor repeats the work.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .audio import TARGET_SR, read_audio
from .errors import EmofuseError
from .atomic import write_text_atomic
from .manifest import ASR_DIR, ASR_INDEX, COLUMNS, read_manifest

ASR_COLUMN = "text_asr"
_WORD = re.compile(r"[a-z0-9']+")


def normalize_words(text: str) -> list[str]:
    """Lower case, punctuation removed (apostrophes kept), split on anything else."""
    return _WORD.findall(str(text).lower().replace("’", "'"))


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after ``normalize_words``."""
    r, h = normalize_words(ref), normalize_words(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1], len(r)


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus word error rate: all edits over all reference words."""
    edits = words = 0
    for r, h in zip(refs, hyps):
        e, n = word_errors(r, h)
        edits, words = edits + e, words + n
    return edits / max(words, 1)


@dataclass
class TranscribeSummary:
    manifest: Path
    transcribed: int
    cached: int
    column: str
    wer_vs_manual: float | None
    side_file: Path


def transcribe_manifest(manifest: str | Path, model: str = "tiny.en", beam_size: int = 1, batch_size: int = 8,
                        device: str = "auto", compute_type: str = "default", threads: int = 0, language: str = "en",
                        column: str = ASR_COLUMN, progress: bool = True) -> TranscribeSummary:
    """Fill ``column`` of a manifest with Whisper transcripts (resumable; see the module doc)."""
    from .pretrained import WhisperModel, model_identity, resolve_whisper_path

    if column in COLUMNS:
        raise EmofuseError(f"--column {column}: that column holds corpus data; choose another name (default {ASR_COLUMN})")
    m = read_manifest(manifest)
    path = resolve_whisper_path(model)
    ident = model_identity(model).split("|")[1][:10]
    label = path.name if Path(str(model)).expanduser().is_dir() else str(model)  # "tiny.en", or the folder's name
    side = m.path.parent / ASR_DIR / f"{label}-{ident}-beam{int(beam_size)}.csv"
    side.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, str] = {}
    if side.is_file():
        prev = pd.read_csv(side, dtype=str, keep_default_na=False)
        done = dict(zip(prev["audio_sha1"], prev["text"]))
    todo = {}
    for sha, rel, dur in zip(m.df["audio_sha1"], m.df["path"], m.df["duration"]):
        if sha not in done and sha not in todo:
            todo[sha] = (m.audio_path(rel), float(dur))
    items = sorted(todo.items(), key=lambda kv: kv[1][1])  # similar lengths share a batch
    if items:
        whisper = WhisperModel(model, device, compute_type, threads)
        new = not side.is_file()
        with open(side, "a", newline="") as f, tqdm(total=len(items), desc="transcribing", unit="utt",
                                                     disable=not progress) as bar:
            writer = csv.writer(f)
            if new:
                writer.writerow(["audio_sha1", "text"])
            bs = max(1, int(batch_size))
            for s in range(0, len(items), bs):
                part = items[s:s + bs]
                texts = whisper.transcribe([read_audio(p, TARGET_SR) for _, (p, _) in part], bs, beam_size, language)
                for (sha, _), t in zip(part, texts):
                    writer.writerow([sha, t])
                    done[sha] = t
                f.flush()  # a batch written is a batch kept
                bar.update(len(part))
    hyp = m.df["audio_sha1"].map(done).fillna("")
    manual = m.df["text"].fillna("").astype(str).str.strip()
    has = manual != ""
    score = wer(manual[has].tolist(), hyp[has].tolist()) if has.any() else None
    index = side.parent / ASR_INDEX
    listed = json.loads(index.read_text()) if index.is_file() else {}
    listed[column] = {"model": str(model), "model_folder": path.name, "beam_size": int(beam_size),
                      "language": language, "wer_vs_text": score, "side_file": side.name}
    write_text_atomic(index, json.dumps(listed, indent=2, sort_keys=True))
    return TranscribeSummary(m.path, len(items), len(m.df) - len(items), column, score, side)
