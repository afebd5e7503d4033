"""Fixtures: tiny corpora in the real layouts, made by the tests themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emofuse.synth import SynthSpec, make_synthetic_corpus

REPO = Path(__file__).resolve().parents[1]
SHARED_RAVDESS = REPO.parent / "shared" / "data" / "ravdess"


def tone(seconds: float = 1.0, sr: int = 16000, f0: float = 220.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voice-like harmonic tone with a little noise; (N,) or (N, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.5 ** k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(5)) * 0.2 + 0.01 * rng.normal(size=t.size)
    x = x.astype(np.float32)
    return np.stack([x, 0.8 * x], axis=1) if channels == 2 else x


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "corpus"
    make_synthetic_corpus(root, SynthSpec(sessions=5, per_class=3, min_seconds=0.8, max_seconds=1.3, seed=1))
    return root


@pytest.fixture(scope="session")
def synth_manifest(synth_corpus, tmp_path_factory) -> Path:
    from emofuse.prepare import prepare

    out = tmp_path_factory.mktemp("synth_manifest")
    prepare("iemocap", synth_corpus, out, workers=1)
    return out


def write_ravdess(root: Path, actors=(1, 2, 3, 4), emotions=("01", "03", "04", "05"), sr: int = 48000,
                  channels: int = 2, ext: str = "wav") -> Path:
    """RAVDESS layout, 48 kHz stereo like the original release."""
    for a in actors:
        d = root / f"Actor_{a:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for e in emotions:
            for stmt in ("01", "02"):
                inten = "01" if e == "01" else "02"
                name = f"03-01-{e}-{inten}-{stmt}-01-{a:02d}.{ext}"
                sf.write(d / name, tone(0.6, sr, 150 + 20 * int(e), channels, seed=a), sr)
    return root


def write_iemocap_release(root: Path, sr: int = 48000, channels: int = 2) -> Path:
    """Two sessions of the official release layout, with one line per label kind."""
    for s in (1, 2):
        sdir = root / f"Session{s}"
        dialog = f"Ses0{s}F_impro01"
        wav_dir = sdir / "sentences" / "wav" / dialog
        wav_dir.mkdir(parents=True)
        (sdir / "dialog" / "EmoEvaluation").mkdir(parents=True)
        (sdir / "dialog" / "transcriptions").mkdir(parents=True)
        evals, texts = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""], []
        for i, (who, lab) in enumerate([("F", "neu"), ("M", "ang"), ("F", "exc"), ("M", "hap"), ("F", "sad"), ("M", "fru")]):
            utt = f"{dialog}_{who}{i:03d}"
            sf.write(wav_dir / f"{utt}.wav", tone(0.7, sr, 200 if who == "F" else 120, channels, seed=i), sr)
            evals += [f"[{i * 2 + 0.5:.4f} - {i * 2 + 1.2:.4f}]\t{utt}\t{lab}\t[2.5000, 2.5000, 2.5000]", "C-E1:\tNeutral;\t()", ""]
            texts.append(f"{utt} [{i * 2 + 0.5:08.4f}-{i * 2 + 1.2:08.4f}]: Sentence number {i}, with a comma.")
        (sdir / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(evals) + "\n")
        (sdir / "dialog" / "transcriptions" / f"{dialog}.txt").write_text("\n".join(texts) + "\n")
    return root


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "emofuse", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


# A small model and a short schedule: end-to-end tests check the pipeline, not accuracy.
TINY = ["model.channels=[8,16,16]", "model.lstm_hidden=16", "model.lstm_layers=1", "data.batch_size=16",
        "train.max_epochs=1", "train.warmup_epochs=0", "data.feature_workers=1"]


def assert_tables_whole(text: str) -> None:
    """Every row of every Markdown table in ``text`` has its header's number of cells (an
    escaped ``\\|`` inside a value is not a cell border): data never breaks a table."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            width = lines[i - 1].count("|") - lines[i - 1].count("\\|")
            for row in lines[i + 1:]:
                if not row.startswith("|"):
                    break
                assert row.count("|") - row.count("\\|") == width, row


@pytest.fixture(scope="session")
def trained_run(synth_manifest, tmp_path_factory):
    """Folds 0 and 1 of the demo model, trained once for the predict, export, report and evaluate tests."""
    run = tmp_path_factory.mktemp("trained") / "run"
    r = run_cli("cv", "demo", f"data.manifest={synth_manifest}", *TINY, "--folds", "0,1", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    return run
