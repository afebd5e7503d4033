"""CUDA checks (marked ``gpu``; skipped where no CUDA device is present). Run on the device by
``benchmarks/device_check.sh``: the front end, training with mixed precision and prediction on
the GPU give what the CPU gives."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import TINY, run_cli, tone

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_logmel_on_cuda_matches_cpu():
    from emofuse.features.logmel import FrontendConfig, LogMel

    rng = np.random.default_rng(0)
    wav = torch.from_numpy(rng.standard_normal((3, 16000 * 2)).astype(np.float32) * 0.1)
    lengths = torch.tensor([32000, 24000, 16000])
    front = LogMel(FrontendConfig())
    cpu, n_cpu = front(wav, lengths)
    gpu, n_gpu = front.cuda()(wav.cuda(), lengths.cuda())
    assert torch.equal(n_cpu, n_gpu.cpu())
    # float32 STFTs on two devices: a few 1e-3 dB apart at most, far below anything a model sees
    assert (cpu - gpu.cpu()).abs().max().item() < 1e-2


def test_fold_trains_on_cuda_with_mixed_precision(synth_manifest, tmp_path):
    run = tmp_path / "run"
    r = run_cli("train", "demo", "--fold", "0", "--accelerator", "gpu", f"data.manifest={synth_manifest}", *TINY,
                "train.precision=auto", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((run / "fold_0" / "metrics.json").read_text())
    assert all(math.isfinite(metrics["test"][k]) for k in ("macro_f1", "ua", "wa"))


def test_predict_on_cuda_matches_cpu(trained_run, tmp_path):
    import soundfile as sf

    from emofuse.inference import load

    path = tmp_path / "clip.wav"
    sf.write(path, tone(2.0, f0=180.0), 16000)
    p_cpu = load(trained_run, device="cpu").predict(str(path))
    p_gpu = load(trained_run, device="cuda").predict(str(path))
    assert p_cpu.label == p_gpu.label
    diff = max(abs(p_cpu.probs[c] - p_gpu.probs[c]) for c in p_cpu.probs)
    assert diff < 1e-3, diff
