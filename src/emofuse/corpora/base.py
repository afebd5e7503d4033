"""What every corpus parser returns, and the registry that names them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ..errors import EmofuseError
from ..labels import ClassMap

# Problems a parser finds before any audio is read (audio problems live in emofuse.audio).
UNKNOWN_LABEL = "unknown label"
DUPLICATE_ID = "duplicate utt_id"
TRANSCRIPT_NO_AUDIO = "transcript without audio"
BAD_NAME = "file name outside the corpus code"
BAD_ROW = "bad metadata row"
OUTSIDE_ROOT = "path outside the corpus root"
# Not a problem: a known label the class map leaves out (IEMOCAP's fru, xxx, ...).
EXCLUDED = "excluded by class map"


@dataclass
class Candidate:
    """One utterance a parser found. ``path`` is relative to the corpus root."""

    utt_id: str
    path: str
    speaker: str
    session: str
    raw_label: str
    gender: str = ""
    text: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Problem:
    """Something skipped, with the file at fault and how to fix it."""

    reason: str
    file: str
    detail: str

    def line(self) -> str:
        return f"{self.file}: {self.reason}: {self.detail}"


@dataclass
class ParseResult:
    candidates: list[Candidate]
    problems: list[Problem]
    metadata_files: list[Path]
    class_map: ClassMap


def relative_inside(root: Path, path: str | Path) -> str | None:
    """``path`` (relative to ``root``, or absolute) as a POSIX path relative to ``root``, if it
    resolves inside ``root`` after '..' and symbolic links; None if it leads out. A corpus reads
    only its own files: ``../x.wav``, ``clips/../../x.wav`` and a link to a file elsewhere are out."""
    root = Path(root)
    p = Path(path)
    if not (root / p).resolve().is_relative_to(root.resolve()):
        return None
    if not p.is_absolute():
        return p.as_posix()
    for base in (root, root.resolve()):
        if p.is_relative_to(base):
            return p.relative_to(base).as_posix()
    return (root / p).resolve().relative_to(root.resolve()).as_posix()


def outside_problem(root: Path, where: str, path: str | Path) -> Problem:
    return Problem(OUTSIDE_ROOT, where, f"{path} resolves outside the corpus root {root} (through '..' or a symbolic "
                                        "link); give paths inside the root (copy or move the file under it)")


class CorpusParser(Protocol):
    def __call__(self, root: Path, class_map: str | None, **options: str) -> ParseResult: ...


_CORPORA: dict[str, CorpusParser] = {}


def register_corpus(name: str) -> Callable[[CorpusParser], CorpusParser]:
    def deco(fn: CorpusParser) -> CorpusParser:
        _CORPORA[name] = fn
        return fn
    return deco


def list_corpora() -> list[str]:
    return sorted(_CORPORA)


def get_corpus(name: str) -> CorpusParser:
    if name not in _CORPORA:
        raise EmofuseError(f"unknown corpus {name!r}: use one of {list_corpora()}")
    return _CORPORA[name]
