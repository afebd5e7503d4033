"""Shared by the benchmark scripts: the machine line, and RAVDESS + noise-bank preparation."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RAVDESS = REPO.parent / "shared" / "data" / "ravdess"


def machine() -> str:
    """What a figure was measured on: CPU architecture, torch threads and version, GPU if any."""
    return f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, " + (
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only")


def ravdess_manifest(ravdess: str | Path, out: Path, task: int = 8) -> Path | None:
    """Prepare RAVDESS ``task``-class under ``out/manifest<task>`` (idempotent); None (with a message) if absent."""
    from emofuse.prepare import prepare

    if not Path(ravdess).is_dir():
        print(f"RAVDESS not found at {ravdess}; pass --ravdess DIR", file=sys.stderr)
        return None
    manifest = out / f"manifest{task}"
    prepare("ravdess", Path(ravdess), manifest, class_map=f"ravdess{task}")
    return manifest


def noise_bank(folder: Path, per_kind: int = 4) -> Path:
    """A synthetic MUSAN-layout noise bank (written once), for when MUSAN is not at hand."""
    from emofuse.synth import make_noise_folder

    if not (folder / "SYNTHETIC_NOISE.json").is_file():
        make_noise_folder(folder, per_kind=per_kind)
    return folder


def _tree_rss(root: int) -> int:
    """Proportional resident bytes (PSS: shared pages split between their users, so the
    libraries every worker maps count once) of ``root`` and all its descendants (Linux /proc)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_step(name: str, args: list[str]) -> dict:
    """Run ``emofuse ARGS``; wall time and peak tree memory."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "emofuse", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env=env)
    peak = [0]

    def sample():
        while p.poll() is None:
            peak[0] = max(peak[0], _tree_rss(p.pid))
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = p.communicate()[0]
    th.join()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        print(out[-3000:], file=sys.stderr)
        raise SystemExit(f"step {name} failed (exit {p.returncode})")
    last = [line for line in out.splitlines() if line.strip()][-1:]
    print(f"{name}: {wall:.0f} s, peak {peak[0] / 2**20:.0f} MiB | {last[0][:160] if last else ''}", file=sys.stderr)
    return {"step": name, "wall_s": round(wall, 1), "peak_mib": round(peak[0] / 2**20), "output": out[-4000:]}
