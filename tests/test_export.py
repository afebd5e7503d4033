"""Export: TorchScript and ONNX graphs give PyTorch's outputs (within 1e-4) without emofuse."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emofuse.export import ProbabilityGraph, example_inputs, export_model
from emofuse.training.module import EmotionModule

CLASSES = ["angry", "happy", "sad", "neutral"]
MODELS = {
    "resnet18": {"base_channels": 8},
    "cnn_bilstm": {"channels": [8, 8, 16], "lstm_hidden": 16},
    "audio_transformer": {"dim": 32, "depth": 1, "heads": 2},
    "text_mlp": {"hidden": 16},
    "early_fusion": {"audio": {"base_channels": 8}, "hidden": 16},
    "cross_attention": {"audio": {"dim": 32, "depth": 1, "heads": 2}, "dim": 32, "heads": 2},
}


def _checkpoint(name: str, tmp_path) -> tuple[EmotionModule, object]:
    import lightning as L

    torch.manual_seed(0)
    text = name in ("text_mlp", "early_fusion", "cross_attention")
    module = EmotionModule(name, MODELS[name], CLASSES, 64, mean=[-40.0] * 64, std=[12.0] * 64,
                           text_dim=24 if text else None, text={"encoder": "all-minilm-l6-v2", "max_tokens": 16} if text else None,
                           frontend={"sample_rate": 16000, "hop_length": 160}).eval()
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    path = tmp_path / "best.ckpt"
    trainer.save_checkpoint(path)
    return module, path


def _pad(t: torch.Tensor, n: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, 0, 0, n - t.shape[1]))


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("name", list(MODELS))
def test_exported_model_matches_pytorch(name, fmt, tmp_path):
    module, ckpt = _checkpoint(name, tmp_path)
    path, side = export_model(ckpt, fmt, tmp_path / "out", window_seconds=2.5)
    meta = json.loads(side.read_text())
    assert meta["classes"] == CLASSES and meta["model"] == name and meta["frontend"]["hop_length"] == 160
    inputs = example_inputs(module, batch=3, frames=197, tokens=9)  # other shapes than the export's
    with torch.no_grad():
        ref = ProbabilityGraph(module)(*inputs).numpy()
    assert np.allclose(ref.sum(1), 1, atol=1e-5)
    if fmt == "torchscript":
        got = torch.jit.load(str(path))(*inputs).detach().numpy()
    else:
        import onnxruntime as ort

        names = (["x", "lengths"] if "audio" in module.modalities else []) + (
            ["text", "text_lengths"] if "text" in module.modalities else [])
        feed = dict(zip(names, inputs))
        if meta["fixed_frames"]:  # attention graphs: pad to the fixed size, the lengths say what is real
            feed["x"] = _pad(feed["x"], meta["fixed_frames"])
        if meta["fixed_tokens"]:
            feed["text"] = _pad(feed["text"], meta["fixed_tokens"])
        session = ort.InferenceSession(str(path))
        wanted = {i.name for i in session.get_inputs()}
        got = session.run(None, {k: v.numpy() for k, v in feed.items() if k in wanted})[0]
    assert got.shape == (3, 4) and np.abs(got - ref).max() < 1e-4, np.abs(got - ref).max()


def _clips(folder):
    """A short clip (one window) at 22.05 kHz stereo and a long one (two windows and a tail) at 16 kHz."""
    import soundfile as sf

    from emofuse.synth import _voice

    folder.mkdir()
    short = _voice(np.random.default_rng(0), 22050, 1.4, 200.0, 0.3, 0.8, 4.5, 0.6, 0.05)
    sf.write(folder / "short.wav", np.stack([short, 0.7 * short], axis=1), 22050)
    sf.write(folder / "long.flac", _voice(np.random.default_rng(1), 16000, 8.6, 130.0, -0.2, 0.6, 4.0, 0.5, 0.05), 16000)
    return [folder / "short.wav", folder / "long.flac"]


def test_a_run_exports_its_fold_ensemble_and_the_onnx_example_reproduces_predict(trained_run, tmp_path):
    import subprocess
    import sys
    from io import StringIO

    import pandas as pd

    import emofuse
    from conftest import REPO, run_cli

    r = run_cli("export", str(trained_run), "--format", "onnx", "--out", str(tmp_path / "onnx"), "--window-seconds", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ensemble of folds 0-1" in r.stdout and "x ('batch', 'frames', 64) float32" in r.stdout, r.stdout
    meta = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert meta["which"] == "ensemble of folds 0-1" and meta["folds"] == [0, 1] and len(meta["checkpoints"]) == 2
    assert meta["inputs"]["x"] == {"shape": ["batch", "frames", 64], "dtype": "float32", "meaning": meta["inputs"]["x"]["meaning"]}
    assert meta["inputs"]["lengths"]["dtype"] == "int64" and meta["sample_rate"] == 16000 and meta["window_seconds"] == 4.0
    clips = _clips(tmp_path / "clips")
    # The runnable README example (front end + onnxruntime) against predict on the same clips.
    ex = subprocess.run([sys.executable, str(REPO / "examples" / "onnx_predict.py"), str(tmp_path / "onnx"), *map(str, clips)],
                        capture_output=True, text=True, timeout=300)
    assert ex.returncode == 0, ex.stderr[-2000:]
    got = pd.read_csv(StringIO(ex.stdout))
    model = emofuse.load(trained_run, device="cpu", window_seconds=4.0)
    preds = [model.predict(c) for c in clips]
    assert [p.windows for p in preds] == [1, 3]
    for (_, row), p in zip(got.iterrows(), preds):
        diff = max(abs(row[f"p_{c}"] - p.probs[c]) for c in model.classes)
        assert row["utt"] == p.utt and row["pred"] == p.label and diff <= 1e-4, (p.utt, diff)


def test_fold_k_exports_that_fold_alone(trained_run, tmp_path):
    import onnxruntime as ort

    import emofuse
    from emofuse.export import graph_inputs

    path, side = export_model(trained_run, "onnx", tmp_path / "f1", fold=1)
    meta = json.loads(side.read_text())
    assert meta["which"] == "fold 1" and meta["folds"] == [1] and meta["checkpoints"][0].endswith("fold_1/checkpoints/best.ckpt")
    clip = _clips(tmp_path / "clips")[0]
    probs = ort.InferenceSession(str(path)).run(None, graph_inputs(clip, meta))[0].mean(0)
    fold1 = emofuse.load(trained_run, device="cpu", fold=1)
    assert fold1.which == "fold 1" and emofuse.load(trained_run / "fold_1", device="cpu").which == "fold 1"
    ref = np.array(list(fold1.predict(clip).probs.values()))
    ens = np.array(list(emofuse.load(trained_run, device="cpu").predict(clip).probs.values()))
    assert np.abs(probs - ref).max() <= 1e-4 and np.abs(probs - ens).max() > 1e-4  # the fold, not the ensemble
    with pytest.raises(Exception, match="no finished fold 7"):
        export_model(trained_run, "onnx", tmp_path / "f7", fold=7)
