"""Small helpers the file-name-coded corpora share: list audio files, keep paths inside the root."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

from ..audio import AUDIO_EXTENSIONS
from ..labels import ClassMap
from .base import BAD_NAME, UNKNOWN_LABEL, Problem, outside_problem, relative_inside


def audio_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Audio files under ``folder`` (sorted; hidden files such as macOS ``._x.wav`` left out)."""
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in found if f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith(".") and f.is_file())


def inside(root: Path, f: Path, problems: list[Problem]) -> str | None:
    """``f`` relative to ``root`` as POSIX text, or None (and a problem) when a link leads out."""
    rel = f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)
    if relative_inside(root, rel) is None:
        problems.append(outside_problem(root, rel, rel))
        return None
    return rel



def named_files(root: Path, files: list[Path], pattern: re.Pattern, problems: list[Problem], expected: str,
                valid: Callable[[re.Match], bool] = lambda m: True) -> Iterator[tuple[Path, str, re.Match]]:
    """(file, its path relative to ``root``, the match of its stem) for every file whose name follows
    the corpus's code (``pattern`` and ``valid``); any other file becomes a problem saying what was
    ``expected``, and a file whose link leads out of the root a problem of its own."""
    for f in files:
        rel = inside(root, f, problems)
        if rel is None:
            continue
        m = pattern.match(f.stem)
        if m is None or not valid(m):
            problems.append(Problem(BAD_NAME, rel, expected))
            continue
        yield f, rel, m


def known_label(cmap: ClassMap, code: str, rel: str, problems: list[Problem], what: str, codes) -> bool:
    """Whether the class map knows ``code``; if not, a problem naming the file and the codes it knows."""
    if cmap.is_known(code):
        return True
    problems.append(Problem(UNKNOWN_LABEL, rel, f"{what} {code!r} is not one of {sorted(codes)}"))
    return False
