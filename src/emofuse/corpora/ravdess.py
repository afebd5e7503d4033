"""RAVDESS (speech or song, audio-only): ``Actor_XX/MM-VV-EE-II-SS-RR-AA.(wav|flac)``.

Field codes (from the corpus README): EE emotion, II intensity, SS statement, RR repetition,
AA actor (odd male, even female). Each actor is its own recording session.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS
from ..errors import EmofuseError
from ..labels import RAVDESS_CODES, get_class_map
from .base import (BAD_NAME, UNKNOWN_LABEL, Candidate, ParseResult, Problem, outside_problem, register_corpus,
                   relative_inside)

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}


@register_corpus("ravdess")
def parse_ravdess(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "ravdess8", known=frozenset(RAVDESS_CODES))
    actors = sorted(p for p in root.glob("Actor_*") if p.is_dir()) if root.is_dir() else []
    if not actors:
        raise EmofuseError(f"{root}: no Actor_XX/ folders found; pass the RAVDESS folder that holds Actor_01..Actor_24")
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    for adir in actors:
        files = [f for f in sorted(adir.iterdir()) if f.suffix.lower() in AUDIO_EXTENSIONS]
        stems = [f.stem for f in files]
        for f in files:
            rel = f.relative_to(root).as_posix()
            if relative_inside(root, rel) is None:  # a link (file or Actor_XX folder) to somewhere else
                problems.append(outside_problem(root, rel, rel))
                continue
            m = _NAME.match(f.stem)
            if not m:
                problems.append(Problem(BAD_NAME, rel, "expected MM-VV-EE-II-SS-RR-AA (see the corpus README); rename or remove it"))
                continue
            _, channel, emotion, intensity, statement, rep, actor = m.groups()
            if not cmap.is_known(emotion):
                problems.append(Problem(UNKNOWN_LABEL, rel, f"emotion code {emotion!r} is not one of {sorted(RAVDESS_CODES)}"))
                continue
            speaker = f"Actor_{actor}"
            gender = "male" if int(actor) % 2 else "female"
            utt = f.name if stems.count(f.stem) > 1 else f.stem  # x.wav and x.flac: two distinct ids
            candidates.append(Candidate(
                utt, rel, speaker, speaker, emotion, gender, STATEMENTS.get(statement, ""),
                {"intensity": "strong" if intensity == "02" else "normal", "statement": statement,
                 "repetition": rep, "channel": "song" if channel == "02" else "speech"},
            ))
    return ParseResult(candidates, problems, [], cmap)
