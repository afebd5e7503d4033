"""Atomic file writes: a whole new file or the old one, never half of one.

The temporary name carries the process id, so several processes writing the same file at once
(two benchmarks preparing one manifest, folds trained in parallel) each rename a whole file of
their own instead of one losing its temporary file to the other.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


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


def replace_into(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a fresh temporary file beside ``path`` (created exclusively, so no
    existing file or link is followed), then rename it over ``path``. A symbolic link at ``path`` is
    replaced by the file, and its target left alone: outputs stay inside their folder. The
    temporary file is removed when ``write`` fails."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
