"""Where a result came from: the software, the machine and what training cost.

``collect()`` gathers the static facts (date, emofuse version and git commit, torch,
Lightning and Python versions, CPU model, GPU name); ``reset_peaks()`` and ``peaks()`` measure
peak memory around one fold's training; ``fold_record()`` puts them together as the fold's
``provenance.json``. Nothing here may fail a run: a fact that cannot be found is "unknown".
"""

from __future__ import annotations

import json
import re
import platform
import subprocess
import sys
import time
from pathlib import Path

from .atomic import write_text_atomic

UNKNOWN = "unknown"
NAME = "provenance.json"


def _git_commit(where: Path) -> str:
    """The commit of the git checkout ``where`` is in (with '+dirty' for local changes), else 'unknown'."""
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(where), *a], capture_output=True, text=True, timeout=5)  # noqa: E731
        head = run("rev-parse", "HEAD")
        # A package installed into a virtualenv that lies inside some checkout is not that checkout's code.
        if head.returncode != 0 or run("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return UNKNOWN
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return head.stdout.strip()[:12] + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except Exception:  # not installed, or a broken install: provenance never fails a run
        return UNKNOWN


def collect() -> dict:
    """The static facts of this process: software versions, code commit and machine."""
    from . import __version__

    gpu, cuda = None, None
    try:
        import torch

        if torch.cuda.is_available():
            gpu, cuda = torch.cuda.get_device_name(0), torch.version.cuda
    except Exception:
        pass
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "emofuse": __version__,
            "git_commit": _git_commit(Path(__file__).resolve().parent),
            "python": platform.python_version(), "torch": _version("torch"), "lightning": _version("lightning"),
            "platform": platform.platform(), "cpu": _cpu_model(), "gpu": gpu, "cuda": cuda}


def reset_peaks() -> None:
    """Start measuring a new CUDA memory peak (RSS peaks cannot be reset: they cover the process)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    except Exception:
        pass


def peaks() -> dict:
    """Peak resident memory of this process so far and peak CUDA memory since ``reset_peaks``, in MiB."""
    out = {"peak_rss_mib": None, "peak_cuda_mib": None}
    try:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        out["peak_rss_mib"] = round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):
        pass
    try:
        import torch

        if torch.cuda.is_available():
            out["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception:
        pass
    return out


def fold_record(metrics: dict) -> dict:
    """One fold's provenance: the static facts, its peak memory, and its wall time and throughput
    (copied from the fold's metrics so the record stands alone)."""
    keys = ("wall_seconds", "train_seconds", "train_items", "train_utt_per_s", "epochs_trained")
    return {**collect(), **peaks(), "fold": metrics.get("fold"), **{k: metrics.get(k) for k in keys}}


def write_fold(fold_dir: Path, metrics: dict) -> None:
    """Write ``fold_dir/provenance.json``; never raises (a provenance failure must not lose a trained fold)."""
    try:
        write_text_atomic(Path(fold_dir) / NAME, json.dumps(fold_record(metrics), indent=2))
    except Exception as exc:
        print(f"{fold_dir}: provenance not recorded ({type(exc).__name__}: {exc})", file=sys.stderr)


def read_run(run: Path) -> list[dict]:
    """Every fold's provenance record in a run folder, by fold (folds without one left out)."""
    out = []
    found = [p for p in Path(run).glob(f"fold_*/{NAME}") if re.fullmatch(r"fold_\d+", p.parent.name)]
    for p in sorted(found, key=lambda p: int(p.parent.name.split("_")[1])):
        try:
            rec = json.loads(p.read_text())
            if isinstance(rec, dict):
                out.append(rec)
        except (OSError, ValueError):
            continue
    return out
