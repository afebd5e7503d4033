"""SAVEE (Surrey Audio-Visual Expressed Emotion): ``AudioData/DC/a01.wav``.

Release layout (Haq & Jackson 2009, kahlan.eps.surrey.ac.uk/savee): four male speakers DC, JE, JK,
KL, one folder each under ``AudioData/``; the file name is an emotion code and a sentence number:
a (anger), d (disgust), f (fear), h (happiness), n (neutral), sa (sadness), su (surprise); 15
sentences per emotion and 30 neutral (``n01``..``n30``), 480 files.

Quirk handled: copies such as the Kaggle one flatten the folders into speaker-prefixed names,
``ALL/DC_a01.wav`` (or ``DC_a01.wav`` in the folder given); both forms are read, at any depth.
The speaker comes from the prefix or the speaker folder; a file whose prefix and folder name
different speakers is reported.

No transcripts: the sentences (TIMIT prompts, partly emotion-specific) ship only as a document,
not per file. All four speakers are male, so gender-balanced folds are not possible.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmofuseError
from ..labels import SAVEE_CODES, get_class_map
from ._files import audio_files, inside
from .base import BAD_NAME, UNKNOWN_LABEL, Candidate, ParseResult, Problem, register_corpus

SPEAKERS = ("DC", "JE", "JK", "KL")
_NAME = re.compile(r"^(?:(DC|JE|JK|KL)_)?([a-z]{1,2})(\d\d)$")


@register_corpus("savee")
def parse_savee(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "savee7", known=frozenset(SAVEE_CODES))
    files = audio_files(root)
    if not files:
        raise EmofuseError(f"{root}: no SAVEE audio found (expected AudioData/DC/a01.wav or DC_a01.wav); pass the SAVEE folder")
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    for f in files:
        rel = inside(root, f, problems)
        if rel is None:
            continue
        m = _NAME.match(f.stem)
        folder_spk = f.parent.name if f.parent.name in SPEAKERS else None
        spk = m.group(1) if m else None
        if not m or (spk is None and folder_spk is None):
            problems.append(Problem(BAD_NAME, rel, "expected <SPK>/<code><NN> or <SPK>_<code><NN> with SPK one of "
                                                   f"{list(SPEAKERS)} (e.g. DC/a01.wav); rename or remove it"))
            continue
        if spk and folder_spk and spk != folder_spk:
            problems.append(Problem(BAD_NAME, rel, f"the name says speaker {spk} but the folder says {folder_spk}; "
                                                   "move the file to its speaker's folder"))
            continue
        code, number = m.group(2), m.group(3)
        if not cmap.is_known(code):
            problems.append(Problem(UNKNOWN_LABEL, rel, f"emotion code {code!r} is not one of {sorted(SAVEE_CODES)}"))
            continue
        speaker = f"savee_{spk or folder_spk}"
        candidates.append(Candidate(f"{spk or folder_spk}_{code}{number}", rel, speaker, speaker, code, "male", "",
                                    {"sentence": number}))
    return ParseResult(candidates, problems, [], cmap)
