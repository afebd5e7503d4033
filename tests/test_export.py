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
