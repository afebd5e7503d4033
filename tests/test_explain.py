"""Explain: Grad-CAM (hooks) for the CNNs, attention maps for the Transformer and cross-attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tone
from emofuse.explain import explain, plot_explanation
from emofuse.inference import Predictor
from emofuse.training.module import EmotionModule

CLASSES = ["angry", "happy", "sad", "neutral"]
MODELS = {
    "resnet18": ("grad-cam", {"base_channels": 8}),
    "cnn_bilstm": ("grad-cam", {"channels": [8, 8, 16], "lstm_hidden": 16}),
    "audio_transformer": ("attention", {"dim": 32, "depth": 2, "heads": 2}),
    "early_fusion": ("grad-cam", {"audio": {"base_channels": 8}, "hidden": 16}),
    "cross_attention": ("attention", {"audio": {"dim": 32, "depth": 1, "heads": 2}, "dim": 32, "heads": 2}),
}


def _predictor(name: str) -> Predictor:
    torch.manual_seed(0)
    kwargs = MODELS[name][1]
    text = {"encoder": "all-minilm-l6-v2", "max_tokens": 64} if name in ("early_fusion", "cross_attention") else None
    module = EmotionModule(name, kwargs, CLASSES, 64, text_dim=384 if text else None, text=text,
                           frontend={"sample_rate": 16000}).eval()
    return Predictor([module])


def _clip() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.concatenate([tone(0.8, 16000, 150.0), 0.05 * rng.standard_normal(4000).astype(np.float32), tone(0.7, 16000, 260.0)])
    return x.astype(np.float32)


@pytest.mark.parametrize("name", list(MODELS))
def test_maps_have_the_spectrogram_shape_and_are_not_constant(name, tmp_path):
    pred = _predictor(name)
    text = "I can't believe you did that!" if pred.needs_text else None
    e = explain(pred, _clip(), text=text, sample_rate=16000, utt="clip")
    assert e.kind == MODELS[name][0]
    assert e.saliency.shape == e.logmel.shape and e.logmel.shape[0] == 64 and e.logmel.shape[1] > 100
    assert np.isfinite(e.saliency).all() and 0 <= e.saliency.min() and e.saliency.max() <= 1
    assert e.saliency.std() > 1e-3, "a map that is constant explains nothing"
    if name == "cross_attention":
        assert e.tokens[0] == "[CLS]" and e.tokens[-1] == "[SEP]" and "believe" in e.tokens
        assert e.token_map.shape[0] == len(e.tokens) and e.token_map.shape[1] >= 1 and e.token_map.std() > 0
    png = plot_explanation(e, tmp_path / f"{name}.png")
    assert png.stat().st_size > 10_000


def test_grad_cam_follows_the_requested_class():
    pred = _predictor("resnet18")
    a = explain(pred, _clip(), sample_rate=16000, target="angry")
    s = explain(pred, _clip(), sample_rate=16000, target="sad")
    assert a.explained == "angry" and s.explained == "sad" and not np.allclose(a.saliency, s.saliency)


def test_explain_says_which_fold_it_explains():
    from emofuse.errors import EmofuseError

    torch.manual_seed(0)
    modules = [EmotionModule("resnet18", {"base_channels": 8}, CLASSES, 64, frontend={"sample_rate": 16000}).eval()
               for _ in range(2)]
    pred = Predictor(modules, folds=[3, 4])
    assert pred.which == "ensemble of folds 3-4"
    first, fourth = explain(pred, _clip(), sample_rate=16000), explain(pred, _clip(), sample_rate=16000, fold=4)
    assert first.which == "fold 3" and fourth.which == "fold 4" and not np.allclose(first.saliency, fourth.saliency)
    with pytest.raises(EmofuseError, match="fold 5: this model is ensemble of folds 3-4; pick one of folds 3, 4"):
        explain(pred, _clip(), sample_rate=16000, fold=5)
    assert explain(Predictor(modules[:1]), _clip(), sample_rate=16000).which == "the given model"
