"""Shared by the benchmark scripts: the machine line, and RAVDESS + noise-bank preparation."""

from __future__ import annotations

import platform
import sys
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
