"""ESD (Emotional Speech Dataset), English part: ``0011/Angry/train/0011_000351.wav``.

Release layout (github.com/HLTSingapore/Emotional-Speech-Data README; Zhou et al., ICASSP 2021):
``Emotion Speech Dataset/<SPK>/<Emotion>/<part>/<SPK>_<NNNNNN>.wav`` with SPK 0001-0020, Emotion
Angry, Happy, Neutral, Sad, Surprise, part ``train`` / ``evaluation`` / ``test`` (the official
split, 300 / 20 / 30 sentences per speaker and emotion), and ``<SPK>/<SPK>.txt`` with one line per
utterance: ``0011_000001<TAB>text<TAB>Neutral``. The folder given may be the release folder or
its parent. Copies without the part folders (``0011/Angry/0011_000351.wav``) are read too, with an
empty ``official_split``.

Speakers 0001-0010 are Mandarin and are left out (this is the English part, 0011-0020); gender
from the README: 0011-0014 and 0020 male, 0015-0019 female.

The official split is by sentence, with every speaker in every part: it is speaker-dependent
(made for voice conversion), so it is recorded in the ``official_split`` column only, never used
as a speaker-independent evaluation. All speakers read the same 350 sentences per emotion, so
transcripts overlap across speakers by construction.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EmofuseError
from ..labels import ESD_CODES, get_class_map
from ._files import audio_files, inside
from .base import BAD_NAME, UNKNOWN_LABEL, Candidate, ParseResult, Problem, register_corpus

ENGLISH = tuple(f"{i:04d}" for i in range(11, 21))
GENDER = {s: ("female" if 15 <= int(s) <= 19 else "male") for s in ENGLISH}
PARTS = ("train", "evaluation", "test")
_NAME = re.compile(r"^(\d{4})_(\d{6})$")


def _release(root: Path) -> Path:
    for cand in (root, root / "Emotion Speech Dataset", root / "Emotional Speech Dataset (ESD)"):
        if any((cand / s).is_dir() for s in ENGLISH):
            return cand
    raise EmofuseError(f"{root}: no ESD English speaker folders (0011..0020) found; pass the 'Emotion Speech Dataset' folder")


def _transcripts(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    if not path.is_file():
        return texts
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        fields = [x.strip() for x in line.split("\t")]
        if len(fields) >= 2 and _NAME.match(fields[0]):
            texts[fields[0]] = fields[1]
    return texts


@register_corpus("esd")
def parse_esd(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "esd5", known=frozenset(ESD_CODES))
    base = _release(root)
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    meta: list[Path] = []
    for spk in ENGLISH:
        sdir = base / spk
        if not sdir.is_dir():
            continue
        tfile = sdir / f"{spk}.txt"
        if tfile.is_file():
            meta.append(tfile)
        texts = _transcripts(tfile)
        speaker = f"esd_{spk}"
        for f in audio_files(sdir):
            rel = inside(root, f, problems)
            if rel is None:
                continue
            sub = f.relative_to(sdir).parts  # (Emotion, [part,] file)
            m = _NAME.match(f.stem)
            if not m or m.group(1) != spk or len(sub) not in (2, 3) or (len(sub) == 3 and sub[1] not in PARTS):
                problems.append(Problem(BAD_NAME, rel, f"expected {spk}/<Emotion>/[train|evaluation|test/]{spk}_NNNNNN.wav "
                                                       "(see the ESD README); rename or remove it"))
                continue
            emotion = sub[0]
            if not cmap.is_known(emotion):
                problems.append(Problem(UNKNOWN_LABEL, rel, f"emotion folder {emotion!r} is not one of {sorted(ESD_CODES)}"))
                continue
            candidates.append(Candidate(f.stem, rel, speaker, speaker, emotion, GENDER[spk], texts.get(f.stem, ""),
                                        {"official_split": sub[1] if len(sub) == 3 else ""}))
    if not candidates and not problems:
        raise EmofuseError(f"{base}: no audio in the ESD English speaker folders (0011..0020); check the release is unpacked")
    return ParseResult(candidates, problems, meta, cmap)
