"""Atomic file writes: a whole new file or the old one, never half of one.

The temporary name carries the process id, so several processes writing the same file at once
(two benchmarks preparing one manifest, folds trained in parallel) each rename a whole file of
their own instead of one losing its temporary file to the other.
"""

from __future__ import annotations

import os
from pathlib import Path


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
