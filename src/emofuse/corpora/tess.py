"""TESS (Toronto emotional speech set): ``<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav``.

Release layout (University of Toronto Dataverse, doi:10.5683/SP2/E8H2MF; Dupuis & Pichora-Fuller
2010): two actresses, OAF (older, aged 64) and YAF (younger, aged 26), each say "Say the word
_" with 200 target words in 7 emotions: angry, disgust, fear, happy, neutral, pleasant surprise
(``ps``), sad - 2,800 files. Folder per speaker and emotion, e.g. ``OAF_angry/OAF_back_angry.wav``.

Quirks handled:
- Folder names vary in case and spelling between copies: ``OAF_Fear``, ``OAF_Pleasant_surprise``,
  ``YAF_pleasant_surprised``; the file names say ``ps``. The label comes from the file name (its
  last ``_`` field, case-folded; ``pleasant_surprise(d)`` read as ``ps``); a folder whose emotion
  disagrees with its file is reported, not guessed.
- The Kaggle copy nests the whole set twice (``TESS Toronto emotional speech set data/`` inside
  itself): files are found at any depth and the second copy of a name is skipped by ``prepare``
  as a duplicate utt_id (counted in skipped.csv).

Speakers: two, both female. Speaker-independent cross-validation needs at least three speakers
(train, validation, test), so TESS alone cannot be cross-validated honestly: use it as a
cross-corpus test set (``emofuse evaluate``) or beside other corpora. The transcript is the carrier
phrase "Say the word <word>."; both speakers say the same 200 words.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmofuseError
from ..labels import TESS_CODES, get_class_map
from ._files import audio_files, named_files
from .base import BAD_NAME, UNKNOWN_LABEL, Candidate, ParseResult, Problem, register_corpus

_NAME = re.compile(r"^(OAF|YAF)_(.+?)_(pleasant_surprised?|[a-z]+)$", re.IGNORECASE)
AGE = {"OAF": "64", "YAF": "26"}


def _emotion(token: str) -> str:
    token = token.lower()
    return "ps" if token.startswith("pleasant") else token


@register_corpus("tess")
def parse_tess(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "tess7", known=frozenset(TESS_CODES))
    files = audio_files(root)
    if not files:
        raise EmofuseError(f"{root}: no TESS audio found (expected OAF_angry/OAF_back_angry.wav ...); pass the TESS folder")
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    expected = "expected OAF_<word>_<emotion> or YAF_<word>_<emotion> (see the TESS release); rename or remove it"
    for f, rel, m in named_files(root, files, _NAME, problems, expected):
        spk, word, emotion = m.group(1).upper(), m.group(2).lower(), _emotion(m.group(3))
        if not cmap.is_known(emotion):  # the message names the token as written, not the normalised code
            problems.append(Problem(UNKNOWN_LABEL, rel, f"emotion {m.group(3)!r} is not one of {sorted(TESS_CODES)}"))
            continue
        parts = f.parent.name.split("_", 1)
        if len(parts) == 2 and parts[0].upper() in AGE and _emotion(parts[1]) != emotion:
            problems.append(Problem(BAD_NAME, rel, f"the folder says {parts[1]!r} but the file name says {m.group(3)!r}; "
                                                   "move the file to its emotion's folder"))
            continue
        candidates.append(Candidate(f.stem, rel, f"tess_{spk}", f"tess_{spk}", emotion, "female",
                                    f"Say the word {word}.", {"word": word, "age": AGE[spk]}))
    return ParseResult(candidates, problems, [], cmap)
