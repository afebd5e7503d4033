"""Atomic file writes: a whole new file or the old one, never half of one.

Temporary names are unique (created exclusively), so several processes writing the same file at
once (two benchmarks preparing one manifest, folds trained in parallel) each rename a whole file
of their own, and a link planted at an output or temporary name is never written through.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """``with replacing(p) as tmp: write(tmp)``: ``p`` becomes the whole new file, or stays as it was.

    The temporary file is created exclusively beside ``path`` (no existing file or link is
    followed), then renamed over ``path``: a symbolic link at ``path`` is replaced by the file
    and its target left alone, so outputs stay inside their folder. It is removed when writing
    fails.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_into(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` into a fresh temporary file, then renamed over ``path`` (see ``replacing``)."""
    with replacing(path) as tmp:
        write(tmp)
    return Path(path)


def write_csv_atomic(df, path: str | Path, **kwargs) -> Path:
    """``df.to_csv(path)`` through a temporary file and a rename."""
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False, **kwargs)
    return Path(path)
