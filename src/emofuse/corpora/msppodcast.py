"""MSP-Podcast: ``Labels/labels_consensus.csv`` and ``Audios/<FileName>``.

Release layout (MSP-Podcast release README, v1.9 onwards; Lotfian & Busso, IEEE Trans. Affective
Computing 2019): ``Audios/MSP-PODCAST_0001_0008.wav`` (podcast 0001, segment 0008),
``Labels/labels_consensus.csv`` with columns FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID,
Gender, Split_Set, and (when present) ``Transcripts/<stem>.txt``. EmoClass codes: A anger, S
sadness, H happiness, U surprise, F fear, D disgust, C contempt, N neutral, O other, X no
agreement (O and X are known labels that no built-in map keeps). Split_Set is the official
partition: Train, Development, Test1, Test2 (and Test3 in later releases, whose labels are
withheld: rows without an EmoClass are reported and skipped). It is recorded in the
``official_split`` column; the partitions are built speaker-independent by the corpus authors.

Quirks handled: some releases spell the file ``labels_concensus.csv``; both names are read.
SpkrID is ``Unknown`` for many segments: those are grouped by podcast (``msp_podcast<NNNN>``)
rather than pooled into one pseudo-speaker. A podcast's unknown segments could come from a
speaker who is also listed by id elsewhere; the corpus gives no way to tell. Gender Male/Female
is kept, Unknown left empty. Arousal, valence and dominance are kept as columns.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmofuseError
from ..labels import MSPPODCAST_LABELS, get_class_map
from .base import (BAD_NAME, BAD_ROW, UNKNOWN_LABEL, Candidate, ParseResult, Problem, outside_problem,
                   register_corpus, relative_inside)
from .csv_corpus import read_csv_rows

LABEL_FILES = ("labels_consensus.csv", "labels_concensus.csv")
_NAME = re.compile(r"^MSP-PODCAST_(\d{4})_(\d{4}(?:_\d{4})?)\.(wav|flac)$")


@register_corpus("msppodcast")
def parse_msppodcast(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "msppodcast8", known=MSPPODCAST_LABELS)
    table = next((root / "Labels" / n for n in LABEL_FILES if (root / "Labels" / n).is_file()), None)
    if table is None:
        raise EmofuseError(f"{root}: Labels/labels_consensus.csv not found; pass the MSP-Podcast release folder")
    rows = read_csv_rows(table)
    need = {"FileName", "EmoClass", "SpkrID", "Gender", "Split_Set"}
    if rows and not need <= set(rows[0]):
        raise EmofuseError(f"{table}: needs columns {sorted(need)}, found {sorted(rows[0])}")
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    meta = [table]
    for lineno, row in enumerate(rows, start=2):
        where = f"Labels/{table.name}:{lineno}"
        name, raw = (row.get("FileName") or "").strip(), (row.get("EmoClass") or "").strip()
        m = _NAME.match(name)
        if not m:
            problems.append(Problem(BAD_NAME, where, f"{name!r} is not MSP-PODCAST_NNNN_NNNN.wav"))
            continue
        if not raw:
            problems.append(Problem(BAD_ROW, where, f"{name} has no EmoClass (Test3 labels are withheld); nothing to do"))
            continue
        if not cmap.is_known(raw):
            problems.append(Problem(UNKNOWN_LABEL, where, f"{name} has EmoClass {raw!r}, not one of {sorted(MSPPODCAST_LABELS)}"))
            continue
        rel = f"Audios/{name}"
        if relative_inside(root, rel) is None:
            problems.append(outside_problem(root, where, rel))
            continue
        spk = (row.get("SpkrID") or "").strip()
        speaker = f"msp_{spk}" if spk and spk.lower() != "unknown" else f"msp_podcast{m.group(1)}"
        gender = (row.get("Gender") or "").strip().lower()
        transcript = root / "Transcripts" / f"{Path(name).stem}.txt"
        text = transcript.read_text(encoding="utf-8", errors="replace").strip() if transcript.is_file() else ""
        candidates.append(Candidate(
            Path(name).stem, rel, speaker, speaker, raw, gender if gender in ("male", "female") else "", text,
            {"official_split": (row.get("Split_Set") or "").strip(), "podcast": m.group(1),
             **{k.lower(): (row.get(k) or "").strip() for k in ("EmoAct", "EmoVal", "EmoDom")}},
        ))
    return ParseResult(candidates, problems, meta, cmap)
