"""EmoDB (Berlin Database of Emotional Speech): ``wav/03a01Fa.wav``.

File-name code (emodb.bilderbar.info documentation; Burkhardt et al., Interspeech 2005):
positions 1-2 speaker, 3-5 text code, 6 emotion letter (German initial: W anger / Wut, L boredom /
Langeweile, E disgust / Ekel, A fear / Angst, F happiness / Freude, T sadness / Trauer, N neutral),
7 version (a, b, c, ... where a sentence was recorded more than once). 10 actors (5 female,
5 male) and 10 German sentences, 535 files. The speakers' gender and age are from the same
documentation (``SPEAKERS``). Files directly in the folder given are read too.

Every actor speaks the same 10 sentences, so transcripts overlap across speakers by
construction. The release's other folders (``labsilb/``, ``silb/``, ``lablaut/``) are not read.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmofuseError
from ..labels import EMODB_CODES, get_class_map
from ._files import audio_files, known_label, named_files
from .base import Candidate, ParseResult, Problem, register_corpus

_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")
SPEAKERS = {"03": ("male", "31"), "08": ("female", "34"), "09": ("female", "21"), "10": ("male", "32"),
            "11": ("male", "26"), "12": ("male", "30"), "13": ("female", "32"), "14": ("female", "35"),
            "15": ("male", "25"), "16": ("female", "31")}
TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}


@register_corpus("emodb")
def parse_emodb(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "emodb7", known=frozenset(EMODB_CODES))
    audio_dir = root / "wav" if (root / "wav").is_dir() else root
    files = audio_files(audio_dir, recursive=False)
    if not files:
        raise EmofuseError(f"{root}: no EmoDB audio found (expected wav/03a01Fa.wav ...); pass the EmoDB folder that holds wav/")
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    expected = ("expected SSTTTEV such as 03a01Fa (speaker 03..16, text a01..b10, emotion letter, version; see the "
                "EmoDB documentation); rename or remove it")
    for f, rel, m in named_files(root, files, _NAME, problems, expected,
                                 lambda m: m.group(1) in SPEAKERS and m.group(2) in TEXTS):
        spk, text, emotion, version = m.groups()
        if not known_label(cmap, emotion, rel, problems, "emotion letter", EMODB_CODES):
            continue
        gender, age = SPEAKERS[spk]
        speaker = f"emodb_{spk}"
        candidates.append(Candidate(f.stem, rel, speaker, speaker, emotion, gender, TEXTS[text],
                                    {"text_code": text, "version": version, "age": age}))
    return ParseResult(candidates, problems, [], cmap)
