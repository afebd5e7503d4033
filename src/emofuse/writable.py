"""Can we write there? Asked before any work, so a read-only output fails in one line, not after hours.

``check_writable`` creates (and removes) a temporary file in the folder, or in its nearest
existing ancestor when the folder is not there yet (that is where ``mkdir`` would create it):
permission bits, read-only mounts, immutable folders and ACLs all answer the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import EmofuseError


def check_writable(folder: str | Path, what: str = "output", fix: str = "give a folder you can write to") -> Path:
    """Raise one ``EmofuseError`` line naming ``folder`` and ``fix`` unless files can be created in it.

    Returns:
        ``folder`` as a Path (not created).
    """
    folder = Path(folder).expanduser()
    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise EmofuseError(f"{folder}: cannot write the {what} there ({probe} is a file, not a folder); {fix}")
    try:
        fd, name = tempfile.mkstemp(prefix=".emofuse-write-test-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        where = "" if probe == folder.absolute() else f" (its nearest existing folder {probe})"
        raise EmofuseError(f"{folder}: cannot write the {what} there{where}: {exc.strerror or exc}; {fix}") from None
    return folder
