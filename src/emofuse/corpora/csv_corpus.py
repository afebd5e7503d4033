"""Any folder of audio plus a user CSV with columns path, label, speaker [, text, session, gender, utt_id]."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import EmofuseError
from ..labels import ClassMap, get_class_map
from .base import (BAD_ROW, UNKNOWN_LABEL, Candidate, ParseResult, Problem, outside_problem, register_corpus,
                   relative_inside)


@register_corpus("csv")
def parse_csv(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    table = Path(options.get("csv") or root / "metadata.csv")
    if not table.is_file():
        raise EmofuseError(f"{table}: metadata CSV not found; pass --csv FILE (columns path, label, speaker [, text, session, gender, utt_id])")
    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
        fields = set(rows[0].keys()) if rows else set()
    need = {"path", "label", "speaker"}
    if not need <= fields:
        raise EmofuseError(f"{table}: needs columns {sorted(need)}, found {sorted(fields)}")
    if class_map:
        cmap = get_class_map(class_map)
    else:  # identity map over the labels present
        labels = tuple(sorted({(r["label"] or "").strip() for r in rows} - {""}))
        cmap = ClassMap(f"{table.stem}_labels", labels, {label: label for label in labels}, frozenset(labels))
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    for lineno, row in enumerate(rows, start=2):
        where = f"{table.name}:{lineno}"
        path, raw, speaker = ((row.get(k) or "").strip() for k in ("path", "label", "speaker"))
        if not path or not raw or not speaker:
            problems.append(Problem(BAD_ROW, where, "path, label and speaker must all be filled in"))
            continue
        if not cmap.is_known(raw):
            problems.append(Problem(UNKNOWN_LABEL, where, f"{path} has label {raw!r}, not one of {sorted(cmap.mapping)}"))
            continue
        inside = relative_inside(root, path)  # absolute or relative, after '..' and symbolic links
        if inside is None:
            problems.append(outside_problem(root, where, path))
            continue
        rel = Path(inside)
        utt = (row.get("utt_id") or "").strip() or rel.with_suffix("").as_posix().replace("/", "_")
        candidates.append(Candidate(
            utt, rel.as_posix(), speaker, (row.get("session") or "").strip() or speaker, raw,
            (row.get("gender") or "").strip().lower(), (row.get("text") or "").strip(),
        ))
    return ParseResult(candidates, problems, [table], cmap)
