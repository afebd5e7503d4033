"""CREMA-D: ``AudioWAV/1001_DFA_ANG_XX.wav`` (or the same files directly in the folder given).

File-name code (CREMA-D README, github.com/CheyneyComputerScience/CREMA-D; Cao et al., IEEE Trans.
Affective Computing 2014): ``ActorID_Sentence_Emotion_Level``. ActorID 1001-1091 (91 actors);
Sentence one of the 12 codes in ``SENTENCES``; Emotion ANG, DIS, FEA, HAP, NEU, SAD; Level LO, MD, HI
or XX (unspecified). The label is the *intended* emotion from the file name, not the crowd's
perceived one (``processedResults/tabulatedVotes.csv``, not read here).

Gender comes from ``VideoDemographics.csv`` (columns ActorID, Age, Sex, Race, Ethnicity) when it
lies in the folder given or beside ``AudioWAV/``; without it gender is left empty. Each actor is one
speaker and one session. Every actor reads the same 12 sentences: transcripts overlap across
speakers by construction (a text model learns nothing speaker-independent from them).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmofuseError
from ..labels import CREMAD_CODES, get_class_map
from ._files import audio_files, known_label, named_files
from .base import Candidate, ParseResult, Problem, register_corpus
from .csv_corpus import read_csv_rows

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.", "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.", "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.", "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
DEMOGRAPHICS = "VideoDemographics.csv"


@register_corpus("cremad")
def parse_cremad(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "cremad6", known=frozenset(CREMAD_CODES))
    audio_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    files = audio_files(audio_dir, recursive=False)
    if not files:
        raise EmofuseError(f"{root}: no CREMA-D audio found (expected AudioWAV/1001_DFA_ANG_XX.wav ...); pass the "
                           "CREMA-D folder that holds AudioWAV/")
    meta: list[Path] = []
    gender: dict[str, str] = {}
    demo = next((p for p in (root / DEMOGRAPHICS, root.parent / DEMOGRAPHICS) if p.is_file()), None)
    if demo is not None:
        meta.append(demo)
        for row in read_csv_rows(demo):
            gender[(row.get("ActorID") or "").strip()] = (row.get("Sex") or "").strip().lower()
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    expected = "expected ActorID_Sentence_Emotion_Level such as 1001_DFA_ANG_XX (see the CREMA-D README); rename or remove it"
    for f, rel, m in named_files(root, files, _NAME, problems, expected,
                                 lambda m: m.group(2) in SENTENCES and m.group(4) in LEVELS):
        actor, sentence, emotion, level = m.groups()
        if not known_label(cmap, emotion, rel, problems, "emotion code", CREMAD_CODES):
            continue
        speaker = f"cremad_{actor}"
        candidates.append(Candidate(f.stem, rel, speaker, speaker, emotion, gender.get(actor, ""), SENTENCES[sentence],
                                    {"sentence": sentence, "intensity": LEVELS[level]}))
    return ParseResult(candidates, problems, meta, cmap)
