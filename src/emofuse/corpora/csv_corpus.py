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
    rows = read_csv_rows(table)
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
    ids = _path_ids(rows, root)
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
        utt = (row.get("utt_id") or "").strip() or ids[rel.as_posix()]
        candidates.append(Candidate(
            utt, rel.as_posix(), speaker, (row.get("session") or "").strip() or speaker, raw,
            (row.get("gender") or "").strip().lower(), (row.get("text") or "").strip(),
        ))
    return ParseResult(candidates, problems, [table], cmap)


def read_csv_rows(table: Path) -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV (a byte-order mark, as Excel writes, is dropped, not glued to the
    first column's name); any other encoding stops with one line naming the file and the fix."""
    try:
        with table.open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))
    except UnicodeDecodeError as exc:
        raise EmofuseError(f"{table}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}); save it as "
                           "UTF-8 (in Excel: 'CSV UTF-8'; or iconv -f latin1 -t utf-8)") from None
    except csv.Error as exc:
        raise EmofuseError(f"{table}: not a readable CSV ({exc}); check its quoting") from None


def _path_ids(rows: list[dict[str, str]], root: Path) -> dict[str, str]:
    """Path-derived utt_ids: the path without extension, '/' -> '_' (``clips/a.wav`` -> ``clips_a``).
    Distinct files that would share one (``x.wav`` and ``x.flac``) keep their extension instead."""
    paths = []
    for row in rows:
        raw = (row.get("path") or "").strip()
        inside = relative_inside(root, raw) if raw else None
        paths.append(Path(inside if inside is not None else raw).as_posix())
    base = {p: Path(p).with_suffix("").as_posix().replace("/", "_") for p in dict.fromkeys(paths)}
    taken: dict[str, int] = {}
    for b in base.values():
        taken[b] = taken.get(b, 0) + 1
    return {p: (p.replace("/", "_") if taken[b] > 1 else b) for p, b in base.items()}
