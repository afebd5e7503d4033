"""Small helpers the file-name-coded corpora share: list audio files, keep paths inside the root."""

from __future__ import annotations

from pathlib import Path

from .base import Problem, outside_problem, relative_inside

AUDIO_EXTS = (".wav", ".flac", ".ogg")


def audio_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Audio files under ``folder`` (sorted; hidden files such as macOS ``._x.wav`` left out)."""
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in found if f.suffix.lower() in AUDIO_EXTS and not f.name.startswith(".") and f.is_file())


def inside(root: Path, f: Path, problems: list[Problem]) -> str | None:
    """``f`` relative to ``root`` as POSIX text, or None (and a problem) when a link leads out."""
    rel = f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)
    if relative_inside(root, rel) is None:
        problems.append(outside_problem(root, rel, rel))
        return None
    return rel

