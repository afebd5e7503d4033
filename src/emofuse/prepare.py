"""``emofuse prepare``: corpus folder -> validated manifest. Idempotent.

Parsing is cheap; decoding every clip to check it is not. The inputs' fingerprint (every
file's relative path, size and modification time, plus the options) is stored in
``prepare.json``, and a second run with the same fingerprint does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from . import __version__
from .atomic import write_csv_atomic
from .audio import EMPTY, MISSING, NON_FINITE, SILENT, TOO_SHORT, TRUNCATED, UNREADABLE, AudioCheck, check_audio, file_sha1
from .corpora import Candidate, Problem, get_corpus
from .corpora.base import DUPLICATE_ID
from .duplicates import find_in_manifest, summary_lines
from .errors import EmofuseError
from .manifest import COLUMNS, META_NAME, MANIFEST_NAME, NEAR_DUPLICATES_NAME, write_manifest
from .shards import process_pool
from .writable import check_writable

_NAMED = re.compile(r"^([A-Za-z][\w-]*):(.+)$")  # NAME:DIR in 'prepare merge' (a folder named x:y: give ./x:y)


@dataclass
class PrepareSummary:
    manifest: Path
    rows: int
    skipped: Counter
    excluded: int
    up_to_date: bool
    problems: list[Problem]
    case_merged: list[dict] = field(default_factory=list)  # speakers whose ids differed only by case
    near_duplicates: list[str] = field(default_factory=list)  # what duplicates.summary_lines says of them

    def lines(self) -> list[str]:
        if self.up_to_date:
            return [f"{self.manifest}: up to date ({self.rows} utterances); nothing to do"] + self.near_duplicates
        out = [f"wrote {self.manifest} ({self.rows} utterances)"] + self.near_duplicates
        if self.excluded:
            out.append(f"  {self.excluded} utterances with labels outside the class map were left out")
        for m in self.case_merged:
            out.append(f"  warning: speaker ids {m['spellings']} differ only by case; they are taken as one person "
                       f"({m['speaker']!r}) for the folds; give them distinct ids if they are different people")
        for reason, n in sorted(self.skipped.items()):
            out.append(f"  skipped {n}: {reason}")
        if self.problems:
            out.append(f"  details: {self.manifest.parent / 'skipped.csv'}")
            for p in self.problems[:5]:
                out.append(f"    {p.line()}")
        return out


def _check_file(path: str) -> tuple[AudioCheck, str]:
    """Worker: hash the file's bytes and check that it decodes to usable audio, both in
    blocks, so memory stays a block whatever the file's length."""
    p = Path(path)
    if not p.is_file():
        return AudioCheck(MISSING), ""
    return check_audio(p), file_sha1(p)


def _fingerprint(corpus: str, root: Path, files: list[Path], options: dict) -> str:
    h = hashlib.sha1(json.dumps({"corpus": corpus, "options": options, "version": 1}, sort_keys=True).encode())
    for f in sorted(set(files)):
        try:
            st = f.stat()
            h.update(f"{f.relative_to(root) if f.is_relative_to(root) else f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{f}|missing\n".encode())
    return h.hexdigest()


def prepare(corpus: str, root: str | Path, out: str | Path, class_map: str | None = None, strict: bool = False,
            workers: int | None = None, min_seconds: float = 0.25, force: bool = False, **options: str) -> PrepareSummary:
    """Parse a corpus, check every clip, write ``out/manifest.csv`` and ``out/prepare.json``.

    Args:
        corpus: a registered corpus name (``iemocap``, ``ravdess``, ``csv``).
        root: the corpus folder.
        out: the manifest folder to write.
        class_map: a class-map name or YAML path (corpus default when None).
        strict: fail on the first problem instead of skipping with a count.
        workers: processes that decode audio (default: the machine's cores, at most 8).
        min_seconds: clips shorter than this are skipped as too short.
        force: rebuild even when the inputs have not changed.
    """
    root = Path(root).expanduser().resolve()
    out = Path(out)
    if not root.is_dir():
        raise EmofuseError(f"{root}: corpus folder not found; check the path")
    out_fix = "give --out a folder you can write to"
    if not (out / META_NAME).is_file():  # (an existing manifest may be up to date: nothing to write)
        check_writable(out, "manifest", out_fix)
    parsed = get_corpus(corpus)(root, class_map, **options)
    cmap = parsed.class_map
    problems = list(parsed.problems)
    if strict and problems:
        raise EmofuseError(f"{problems[0].line()} (--strict; drop --strict to skip and count such items)")

    kept: list[Candidate] = []
    seen: set[str] = set()
    excluded = 0
    for c in parsed.candidates:
        if c.utt_id in seen:
            problems.append(Problem(DUPLICATE_ID, c.path, f"utt_id {c.utt_id!r} appears twice; the second is skipped, make ids unique"))
            if strict:
                raise EmofuseError(f"{problems[-1].line()} (--strict)")
            continue
        seen.add(c.utt_id)
        if cmap.map(c.raw_label) is None:
            excluded += 1
            continue
        kept.append(c)

    opts = {"class_map": cmap.name, "classes": list(cmap.classes), "mapping": cmap.mapping, "strict": strict,
            "min_seconds": min_seconds, **{k: str(v) for k, v in options.items()}}
    audio_files = [root / c.path for c in kept]
    fingerprint = _fingerprint(corpus, root, audio_files + parsed.metadata_files, opts)
    meta_path, csv_path = out / META_NAME, out / MANIFEST_NAME
    if not force and meta_path.is_file() and csv_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("fingerprint") == fingerprint:
            near = []
            if not (out / NEAR_DUPLICATES_NAME).is_file():  # a manifest of an earlier version: search it now
                table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
                near = summary_lines(find_in_manifest(table, [root / p for p in table["path"]], out, workers or 1), out)
            return PrepareSummary(csv_path, int(old.get("rows", 0)), Counter(), excluded, True, [], near_duplicates=near)

    check_writable(out, "manifest", out_fix)  # before decoding every clip
    workers = workers or min(8, os.cpu_count() or 1)
    paths = [str(p) for p in audio_files]
    if workers > 1 and len(paths) > 64:
        with process_pool(workers) as pool:
            results = list(tqdm(pool.map(_check_file, paths, chunksize=16), total=len(paths), desc="checking audio", unit="file"))
    else:
        results = [_check_file(p) for p in tqdm(paths, desc="checking audio", unit="file")]

    rows = []
    for c, (check, sha1) in zip(kept, results):
        if check.problem is not None or check.duration < min_seconds:
            reason = check.problem or TOO_SHORT
            problems.append(Problem(reason, c.path, _fix_for(reason, check, min_seconds)))
            if strict:
                raise EmofuseError(f"{problems[-1].line()} (--strict)")
            continue
        rows.append({"utt_id": c.utt_id, "path": c.path, "speaker": c.speaker, "session": c.session,
                     "gender": c.gender, "label": cmap.map(c.raw_label), "text": c.text,
                     "duration": round(check.duration, 4), "sample_rate": check.sample_rate,
                     "channels": check.channels, "raw_label": c.raw_label, "audio_sha1": sha1, **c.extra})
    if not rows:
        raise EmofuseError(f"{root}: no usable utterances found for corpus {corpus!r} (see the skipped counts); check the layout and the class map")
    df = pd.DataFrame(rows)
    case_merged = merge_case_variants(df)
    df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
    counts = Counter(p.reason for p in problems)
    meta = {"corpus": corpus, "root": str(root), "class_map": cmap.name, "classes": list(cmap.classes),
            "mapping": cmap.mapping, "rows": len(df), "excluded_by_class_map": excluded,
            "skipped": dict(counts), "label_counts": df["label"].value_counts().to_dict(),
            "speakers": int(df["speaker"].nunique()), "hours": round(float(df["duration"].sum()) / 3600, 4),
            "fingerprint": fingerprint, "emofuse_version": __version__, **({"speaker_case_merged": case_merged} if case_merged else {})}
    out.mkdir(parents=True, exist_ok=True)
    # The same recording under another name, encoding, rate, gain or trim: the fold audit reads these pairs.
    near = find_in_manifest(df, [root / p for p in df["path"]], out, workers)
    meta["near_duplicate_pairs"] = len(near)
    write_csv_atomic(pd.DataFrame([{"file": p.file, "reason": p.reason, "detail": p.detail} for p in problems],
                                  columns=["file", "reason", "detail"]), out / "skipped.csv")
    written = write_manifest(df, meta, out)
    return PrepareSummary(written, len(df), counts, excluded, False, problems, case_merged, summary_lines(near, out))


def merge_case_variants(df: pd.DataFrame) -> list[dict]:
    """Speaker ids that differ only by case (``SPK2`` / ``spk2``) become one id, in place.

    A speaker-independent split must never put one person on both sides; two ids that differ
    only by case are far more likely one person typed two ways than two people, and taking them
    as one can only make the folds stricter. The most frequent spelling (then the first in sort
    order) names them all; a session that was named after the speaker (the csv corpus default)
    follows. Returns ``[{"speaker": kept, "spellings": [...]}]`` for the summary and prepare.json.
    """
    counts = df["speaker"].value_counts()
    groups: dict[str, list[str]] = {}
    for spk in sorted(counts.index):
        groups.setdefault(spk.casefold(), []).append(spk)
    merged, rename = [], {}
    for spellings in groups.values():
        if len(spellings) > 1:
            keep = sorted(spellings, key=lambda s: (-counts[s], s))[0]
            rename.update({s: keep for s in spellings if s != keep})
            merged.append({"speaker": keep, "spellings": sorted(spellings)})
    if rename:
        named_after = df["session"] == df["speaker"]
        df["speaker"] = df["speaker"].replace(rename)
        df.loc[named_after, "session"] = df.loc[named_after, "speaker"]
    return merged


def _fix_for(reason: str, check: AudioCheck, min_seconds: float) -> str:
    return {
        MISSING: "the labels name this file but it is not there; restore it or remove its label line",
        UNREADABLE: "libsndfile cannot decode it; re-export it as WAV/FLAC or remove it",
        EMPTY: "the file has no samples (zero bytes, or a header without audio); re-export it or remove it",
        TRUNCATED: "the file ends before the length its header announces (an interrupted copy or download); "
                   "re-copy or re-export it",
        SILENT: "every sample is (near) zero; check the recording or remove it",
        NON_FINITE: "the file holds NaN/inf samples; re-export it",
        TOO_SHORT: f"{check.duration:.3f}s is under the {min_seconds}s minimum (--min-seconds)",
    }.get(reason, reason)


@dataclass
class MergeSummary:
    manifest: Path
    rows: dict[str, int]             # utterances per corpus
    classes: list[str]
    absent: dict[str, list[str]]     # corpus -> classes of the merge it never labels
    class_maps: dict[str, str]
    near_duplicates: list[str]

    def lines(self) -> list[str]:
        out = [f"wrote {self.manifest} ({sum(self.rows.values())} utterances: "
               + ", ".join(f"{c} {n}" for c, n in self.rows.items()) + f"; classes {self.classes})"]
        if len(set(self.class_maps.values())) > 1:
            out.append("  class maps " + ", ".join(f"{c}: {m}" for c, m in self.class_maps.items())
                       + " are aligned by class name")
        for corpus, missing in self.absent.items():
            if missing:
                out.append(f"  {corpus} has no {missing} utterances: a fold testing on {corpus} cannot score those "
                           "classes, and one training without it sees them only from the other corpora")
        return out + self.near_duplicates


def merge_manifests(sources: list[str], out: str | Path, workers: int | None = None) -> MergeSummary:
    """Join prepared manifests into one for leave-one-corpus-out folds (``emofuse prepare merge``).

    Each source is ``DIR`` (or its manifest.csv), or ``NAME:DIR`` to name the corpus (default: the
    corpus its prepare.json names; two sources may not share a name). The merged manifest gets a
    ``corpus`` column; its utt_ids, speakers and sessions are prefixed ``NAME/`` so that two
    corpora's ``Actor_01`` stay two people; classes are aligned by name (the union, in the first
    source's order, and each corpus's absent classes are reported, never dropped silently). The
    near-duplicate search runs again over all corpora together (each clip's fingerprint comes from
    its source's cache), so the audit can fail a recording shared across corpora.

    Raises:
        EmofuseError: fewer than two sources, a source that is itself a merge, or a name clash.
    """
    from .duplicates import CACHE_NAME
    from .fingerprint import load_fingerprints, save_fingerprints
    from .manifest import read_manifest

    if len(sources) < 2:
        raise EmofuseError("prepare merge needs two or more manifests: emofuse prepare merge A/manifest.csv B/manifest.csv --out DIR")
    out = check_writable(Path(out), "manifest", "give --out a folder you can write to")
    loaded = []
    for src in sources:
        named = _NAMED.match(str(src))
        name, where = (named.group(1), named.group(2)) if named else ("", str(src))
        m = read_manifest(where)
        if m.path.parent.resolve() == out.resolve():
            raise EmofuseError(f"--out {out}: is one of the manifests being merged (it would be overwritten); "
                               "give --out a new folder")
        if "corpus" in m.df.columns:
            raise EmofuseError(f"{m.path}: already a merged manifest; give the manifests it was merged from")
        name = name or str(m.meta.get("corpus") or m.path.parent.name)
        if any(name == n for n, _ in loaded):
            raise EmofuseError(f"{src}: two manifests are both named {name!r}; name them: NAME:{where}")
        loaded.append((name, m))
    classes: list[str] = []
    for _, m in loaded:
        classes += [c for c in m.classes if c not in classes]
    root = Path(os.path.commonpath([str(m.root) for _, m in loaded]))
    tables = []
    for name, m in loaded:
        df = m.df.copy()
        for col in ("utt_id", "speaker", "session"):
            df[col] = name + "/" + df[col].astype(str)
        df["path"] = [os.path.relpath(m.audio_path(p), root) for p in df["path"]]
        df.insert(len(COLUMNS), "corpus", name)
        tables.append(df)
    df = pd.concat(tables, ignore_index=True).fillna("")
    fps = {}
    for _, m in loaded:
        cache = m.path.parent / CACHE_NAME
        if cache.is_file():
            try:
                fps.update(load_fingerprints(cache))
            except EmofuseError:
                pass  # computed again below
    out.mkdir(parents=True, exist_ok=True)
    if fps:
        save_fingerprints(out / CACHE_NAME, fps)
    near = find_in_manifest(df, [root / p for p in df["path"]], out, workers or 1)
    absent = {name: [c for c in classes if c not in set(m.df["label"])] for name, m in loaded}
    meta = {"corpus": "merge", "root": str(root), "class_map": "merge", "classes": classes, "mapping": {},
            "sources": {name: {"manifest": str(m.path.resolve()), "corpus": m.meta.get("corpus"),
                               "class_map": m.meta.get("class_map"), "rows": len(m.df),
                               "fingerprint": m.meta.get("fingerprint")} for name, m in loaded},
            "absent_classes": absent, "rows": len(df), "label_counts": df["label"].value_counts().to_dict(),
            "speakers": int(df["speaker"].nunique()), "hours": round(float(df["duration"].astype(float).sum()) / 3600, 4),
            "near_duplicate_pairs": len(near), "emofuse_version": __version__}
    meta["fingerprint"] = hashlib.sha1(json.dumps(meta["sources"], sort_keys=True).encode()).hexdigest()
    written = write_manifest(df, meta, out)
    return MergeSummary(written, {name: len(m.df) for name, m in loaded}, classes, absent,
                        {name: str(m.meta.get("class_map")) for name, m in loaded}, summary_lines(near, out))
