"""IEMOCAP: the official release layout, and the simple ``wavs/`` + ``labels.csv`` layout.

Release layout (per session ``SessionN``)::

    SessionN/sentences/wav/<dialog>/<utt>.wav
    SessionN/dialog/EmoEvaluation/<dialog>.txt    [6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5, 2.5, 2.5]
    SessionN/dialog/transcriptions/<dialog>.txt   Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.

The speaker is the session plus the letter before the utterance number: in
``Ses01F_impro01_F000`` the ``F`` of ``F000`` is the female actor of session 1 (the ``F`` of
``Ses01F`` only says who wore the motion-capture markers). Speakers come from this parsed
field, never from a fixed character index.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS
from ..errors import EmofuseError
from ..labels import IEMOCAP_LABELS, get_class_map
from .base import (BAD_NAME, BAD_ROW, TRANSCRIPT_NO_AUDIO, UNKNOWN_LABEL, Candidate, ParseResult, Problem,
                   outside_problem, register_corpus, relative_inside)

_EVAL_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\t(\S+)\t(\S+)\t")
_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[[\d.]+\s*-\s*[\d.]+\]:\s?(.*)$")
_UTT = re.compile(r"^Ses(\d\d)[FM]_.*_([FM])\d+$")
_SESSION_DIR = re.compile(r"^Session(\d+)$")
_GENDER = {"F": "female", "M": "male"}


def speaker_of(utt_id: str) -> tuple[str, str, str] | None:
    """(speaker, session, gender) of an IEMOCAP utterance id, or None if it does not parse."""
    m = _UTT.match(utt_id)
    if not m:
        return None
    session = f"Session{int(m.group(1))}"
    return f"Ses{m.group(1)}_{m.group(2)}", session, _GENDER[m.group(2)]


@register_corpus("iemocap")
def parse_iemocap(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "iemocap4", known=IEMOCAP_LABELS)
    if (root / "labels.csv").is_file() and (root / "wavs").is_dir():
        return _parse_simple(root, cmap)
    sessions = sorted(p for p in root.iterdir() if p.is_dir() and _SESSION_DIR.match(p.name)) if root.is_dir() else []
    if not sessions:
        raise EmofuseError(
            f"{root}: no IEMOCAP layout found (expected Session1..Session5/ folders, or wavs/ plus labels.csv); "
            "pass the folder that holds the sessions"
        )
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    meta: list[Path] = []
    for sdir in sessions:
        texts: dict[str, str] = {}
        for tfile in sorted((sdir / "dialog" / "transcriptions").glob("*.txt")):
            meta.append(tfile)
            for line in tfile.read_text(errors="replace").splitlines():
                m = _TRANSCRIPT_LINE.match(line.strip())
                if m:
                    texts[m.group(1)] = m.group(2).strip()
        evaluated: set[str] = set()
        eval_files = sorted((sdir / "dialog" / "EmoEvaluation").glob("*.txt"))
        if not eval_files:
            problems.append(Problem(BAD_ROW, str(sdir / "dialog" / "EmoEvaluation"),
                                    "no EmoEvaluation files in this session; check the release is complete"))
        for efile in eval_files:
            meta.append(efile)
            dialog = efile.stem
            for line in efile.read_text(errors="replace").splitlines():
                m = _EVAL_LINE.match(line)
                if not m:
                    continue
                utt, raw = m.group(3), m.group(4)
                evaluated.add(utt)
                rel = _find_audio(sdir, dialog, utt)
                who = speaker_of(utt)
                if who is None:
                    problems.append(Problem(BAD_NAME, str(efile.relative_to(root)),
                                            f"utterance id {utt!r} does not name its speaker (..._F000 / ..._M000)"))
                    continue
                if not cmap.is_known(raw):
                    problems.append(Problem(UNKNOWN_LABEL, str(efile.relative_to(root)),
                                            f"{utt} has label {raw!r}, not one of {sorted(cmap.known)}"))
                    continue
                inside = relative_inside(root, rel.relative_to(root))
                if inside is None:  # an utterance id with '..' in it, or a linked file
                    problems.append(outside_problem(root, str(efile.relative_to(root)), rel.relative_to(root).as_posix()))
                    continue
                speaker, session, gender = who
                candidates.append(Candidate(
                    utt, inside, speaker, session, raw, gender, texts.get(utt, ""),
                    {"dialog": dialog, "start": m.group(1), "end": m.group(2)},
                ))
        wav_root = sdir / "sentences" / "wav"
        for utt in sorted(texts):
            if utt in evaluated or not _UTT.match(utt):
                continue
            dialog = utt.rsplit("_", 1)[0]
            if not _find_audio(sdir, dialog, utt).is_file():
                problems.append(Problem(TRANSCRIPT_NO_AUDIO, str((wav_root / dialog / f"{utt}.wav").relative_to(root)),
                                        "a transcript line has no audio file; restore the wav or ignore this line"))
    return ParseResult(candidates, problems, meta, cmap)


def _find_audio(sdir: Path, dialog: str, utt: str) -> Path:
    base = sdir / "sentences" / "wav" / dialog / utt
    for ext in AUDIO_EXTENSIONS:
        if base.with_suffix(ext).is_file():
            return base.with_suffix(ext)
    return base.with_suffix(".wav")


def _parse_simple(root: Path, cmap) -> ParseResult:
    """``wavs/SessionN/<file>`` plus ``labels.csv`` with columns file_name, emotion_label."""
    labels = root / "labels.csv"
    by_name: dict[str, Path] = {}
    for p in sorted((root / "wavs").rglob("*")):
        if p.suffix.lower() in AUDIO_EXTENSIONS:
            by_name.setdefault(p.name, p)
            by_name.setdefault(p.stem, p)
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    with labels.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"file_name", "emotion_label"}
        if not need <= set(reader.fieldnames or []):
            raise EmofuseError(f"{labels}: needs columns {sorted(need)}, found {reader.fieldnames}")
        for lineno, row in enumerate(reader, start=2):
            name, raw = (row["file_name"] or "").strip(), (row["emotion_label"] or "").strip()
            utt = Path(name).stem
            who = speaker_of(utt)
            if who is None:
                problems.append(Problem(BAD_NAME, f"labels.csv:{lineno}", f"{name!r} does not name its speaker (..._F000 / ..._M000)"))
                continue
            if not cmap.is_known(raw):
                problems.append(Problem(UNKNOWN_LABEL, f"labels.csv:{lineno}", f"{name} has label {raw!r}, not one of {sorted(cmap.known)}"))
                continue
            path = by_name.get(name) or by_name.get(utt)
            rel = path.relative_to(root).as_posix() if path else f"wavs/{who[1]}/{name}"
            if relative_inside(root, rel) is None:  # a file_name with '..' in it, or a linked file
                problems.append(outside_problem(root, f"labels.csv:{lineno}", rel))
                continue
            speaker, session, gender = who
            candidates.append(Candidate(utt, rel, speaker, session, raw, gender, (row.get("text") or "").strip()))
    return ParseResult(candidates, problems, [labels], cmap)
