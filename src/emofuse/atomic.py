"""Atomic file writes: a whole new file or the old one, never half of one.

The temporary name carries the process id, so several processes writing the same file at once
(two benchmarks preparing one manifest, folds trained in parallel) each rename a whole file of
their own instead of one losing its temporary file to the other.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temp_path(path: str | Path) -> Path:
    """A sibling of ``path`` unique to this process: ``.NAME.PID.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = temp_path(path)
    tmp.write_text(text)
    tmp.replace(path)
    return path


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """``with replacing(p) as tmp: write(tmp)``: ``p`` becomes the whole new file, or stays as it was
    (the temporary file is removed when writing fails)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv_atomic(df, path: str | Path, **kwargs) -> Path:
    """``df.to_csv(path)`` through a temporary file and a rename."""
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False, **kwargs)
    return Path(path)
