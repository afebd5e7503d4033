"""Export a trained model to TorchScript or ONNX, to run without emofuse's models.

``export RUN`` exports what ``predict RUN`` runs: the fold ensemble, one graph whose output is
the mean of the folds' class probabilities (``--fold K``: that fold alone). The graph takes
what the models take after the front end: raw log-mel features (each fold's z-scoring is
inside the graph) and, for text and fusion models, the frozen encoder's token embeddings. It
returns class probabilities per window; a clip's are the mean over its windows, as ``predict``
averages them. A sidecar JSON says which model it is ("ensemble of folds 0-5", "fold 2"), names
the classes, the inputs (names, shapes, dtypes), the sample rate, the windows and the exact
front-end settings (16 kHz mono, 64-band Slaney log-mel, 25 ms / 10 ms, dB with an 80 dB floor:
reproducible with librosa), and the text encoder. ``graph_inputs`` computes a clip's inputs
as ``predict`` does (examples/onnx_predict.py).

Inputs (B items, T frames, F bands, L tokens, D encoder size):
    x (B, T, F) float32 log-mel, zero past each length; lengths (B,) int64
    text (B, L, D) float32 token embeddings ([CLS] first); text_lengths (B,) int64
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .atomic import replace_into
from .errors import EmofuseError
from .features import feature_config, kind_of

FORMATS = ("torchscript", "onnx")


class ProbabilityGraph(nn.Module):
    """EmotionModule -> probabilities, with positional inputs only (what exporters want)."""

    def __init__(self, module) -> None:
        super().__init__()
        # The plain parts only: the Lightning wrapper is not traceable.
        self.norm, self.model = module.norm.eval(), module.model.eval()
        self.names = input_names(module)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        inputs = dict(zip(self.names, args))
        if "x" in inputs:
            inputs["x"] = self.norm(inputs["x"], inputs["lengths"])
        return torch.softmax(self.model(**inputs), dim=-1)


class EnsembleGraph(nn.Module):
    """Several folds' ProbabilityGraphs on the same inputs -> the mean of their probabilities
    (what ``predict`` computes for a run)."""

    def __init__(self, modules: list) -> None:
        super().__init__()
        self.members = nn.ModuleList([ProbabilityGraph(m) for m in modules])

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        probs = self.members[0](*args)
        for g in self.members[1:]:
            probs = probs + g(*args)
        return probs / len(self.members)


def example_inputs(module, batch: int = 2, frames: int = 300, tokens: int = 12) -> tuple[torch.Tensor, ...]:
    """Inputs of the exported graph's shapes (the second item shorter, so masking is exercised)."""
    g = torch.Generator().manual_seed(0)
    out: list[torch.Tensor] = []
    if "audio" in module.modalities:
        n_mels = module.hparams["n_mels"]
        lengths = torch.tensor([frames] + [max(16, frames // 2)] * (batch - 1))
        x = torch.randn(batch, frames, n_mels, generator=g) * 10 - 40
        x = x * (torch.arange(frames)[None, :] < lengths[:, None])[:, :, None]
        out += [x, lengths]
    if "text" in module.modalities:
        dim = module.hparams["text_dim"]
        tl = torch.tensor([tokens] + [max(2, tokens // 2)] * (batch - 1))
        t = torch.randn(batch, tokens, dim, generator=g) * (torch.arange(tokens)[None, :] < tl[:, None])[:, :, None]
        out += [t, tl]
    return tuple(out)


def input_names(module) -> list[str]:
    """The graph's input names, in order. (Imported here: the training module imports Lightning,
    seconds that ``emofuse --help``, which lists ``FORMATS``, should not wait for.)"""
    from .training.module import input_fields

    return input_fields(module.modalities)


def export_model(model_path: str | Path, fmt: str, out: str | Path, fold: int | None = None,
                 window_seconds: float = 8.0) -> tuple[Path, Path]:
    """Write ``out/model.pt`` (TorchScript) or ``out/model.onnx`` and ``out/model.json``.

    ``model_path``: a run folder (its finished folds' ensemble, as ``predict`` runs it), a fold
    folder or a checkpoint; ``fold``: only that fold of a run. ``window_seconds``: the windows
    ``predict --window-seconds`` cuts, recorded in the sidecar (and the fixed input length of
    attention graphs in ONNX).

    Each file is written to a temporary file in ``out`` and renamed into place: a symbolic link
    already at an output name is replaced, never written through (outputs stay inside ``out``).

    ONNX graphs of attention models (``nn.MultiheadAttention`` inside) have a fixed number of
    frames (``window_seconds``) and tokens (``text.max_tokens``): the legacy exporter bakes the
    sequence length into the attention reshapes. Pad shorter inputs with zeros and give their
    real lengths; padding never changes an output (tested). All other graphs take any length.
    """
    from .inference import load

    if fmt not in FORMATS:
        raise EmofuseError(f"--format must be one of {list(FORMATS)}, not {fmt!r}")
    predictor = load(model_path, "cpu", window_seconds, fold=fold)
    module = predictor.modules[0]
    graph = (ProbabilityGraph(module) if len(predictor.modules) == 1 else EnsembleGraph(predictor.modules)).eval()
    names = input_names(module)
    fixed = fmt == "onnx" and any(isinstance(m, nn.MultiheadAttention) for m in graph.modules())
    fe = feature_config(module.hparams.get("frontend"))
    kind = kind_of(fe)  # the registered front end: what x is and how to compute it
    hop = fe.hop_length / fe.sample_rate
    frames = int(round(window_seconds / hop)) + 1
    tokens = int((module.hparams.get("text") or {}).get("max_tokens", 64))
    inputs = example_inputs(module, frames=frames if fixed else 300, tokens=tokens if fixed else 12)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        path = out / "model.pt"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks inside torch, fine for fixed ranks
            traced = torch.jit.trace(graph, inputs, check_trace=False)
        replace_into(path, lambda tmp: traced.save(str(tmp)))
    else:
        try:
            import onnx  # noqa: F401  (the exporter's serializer)
        except ImportError:
            raise EmofuseError("ONNX export needs the onnx package: pip install -e '.[export]' (or pip install onnx onnxruntime)") from None
        path = out / "model.onnx"
        dynamic = {n: ({0: "batch"} if fixed or n.endswith("lengths") else {0: "batch", 1: "frames" if n == "x" else "tokens"})
                   for n in names}
        dynamic["probs"] = {0: "batch"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                replace_into(path, lambda tmp: torch.onnx.export(
                    graph, inputs, str(tmp), input_names=names, output_names=["probs"], dynamic_axes=dynamic,
                    opset_version=17, dynamo=False))
        except Exception as exc:
            raise EmofuseError(f"ONNX export of {module.hparams['model_name']} failed ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200]}); try --format torchscript") from None
    hp = module.hparams
    feat_dim = hp["n_mels"]
    shapes = {"x": ["batch", frames if fixed else "frames", feat_dim], "lengths": ["batch"],
              "text": ["batch", tokens if fixed else "tokens", hp.get("text_dim")], "text_lengths": ["batch"]}
    meaning = {"x": f"{kind.frame}, one window of the clip, zero past each length",
               "lengths": "valid frames per item", "text": "token embeddings of the frozen text encoder ([CLS] first)",
               "text_lengths": "valid tokens per item"}
    sidecar = {
        "emofuse_version": __version__, "format": fmt, "file": path.name,
        "which": predictor.which, "folds": predictor.folds, "checkpoints": [str(c) for c in predictor.sources],
        "model": hp["model_name"], "classes": list(hp["classes"]), "modalities": list(module.modalities),
        "inputs": {n: {"shape": shapes[n], "dtype": "int64" if n.endswith("lengths") else "float32", "meaning": meaning[n]}
                   for n in names},
        "output": ("probs (batch, n_classes) float32: softmax over classes in the order of 'classes'"
                   + (f", the mean of {len(predictor.modules)} folds' probabilities" if len(predictor.modules) > 1 else "")
                   + "; a clip's probabilities are the mean of its windows' rows (as predict)"),
        "sample_rate": fe.sample_rate, "window_seconds": float(window_seconds),
        "windows": ("predict cuts a clip into windows of window_seconds (a shorter clip is one window; the tail of "
                    "a longer one gets a window ending at the clip's end); emofuse.inference.window_features does"),
        "fixed_frames": frames if fixed and "audio" in module.modalities else None,
        "fixed_tokens": tokens if fixed and "text" in module.modalities else None,
        "note": ("pad x to fixed_frames / text to fixed_tokens with zeros and pass the real lengths" if fixed else
                 "any number of frames and tokens; an ONNX graph may drop an input the model does not use "
                 "(e.g. text_lengths with [CLS] pooling): feed only the inputs the session lists"),
        "frontend": dict(hp.get("frontend") or {}),
        "frontend_kind": kind.name,
        "frontend_recipe": kind.recipe,
        "normalisation": "inside the graph (z-score with each fold's training statistics)",
        "text_encoder": hp.get("text"),
    }
    side = out / "model.json"
    replace_into(side, lambda tmp: tmp.write_text(json.dumps(sidecar, indent=2)))
    return path, side


def graph_inputs(audio, meta: dict, sample_rate: int | None = None) -> dict:
    """An exported audio graph's inputs for one clip, computed as ``predict`` does: decode,
    downmix, resample, cut into ``meta["window_seconds"]`` windows, front end
    (``emofuse.inference.window_features``), padded to ``fixed_frames`` when the graph has one.

    Args:
        audio: a file path, or an (N,) / (N, C) waveform with its ``sample_rate``.
        meta: the export's ``model.json``.

    Returns:
        {"x": (W, T, F) float32, "lengths": (W,) int64}; run the graph on it and average the
        rows of its output to get the clip's probabilities.
    """
    from .audio import read_audio
    from .inference import window_features

    if "text" in meta["modalities"]:
        raise EmofuseError(f"{meta['model']} reads text too: add 'text' and 'text_lengths' (the text encoder "
                           f"{(meta.get('text_encoder') or {}).get('encoder')}'s token embeddings) to the inputs yourself")
    if isinstance(audio, (str, Path)):
        audio, sample_rate = read_audio(audio, int(meta["sample_rate"])), int(meta["sample_rate"])
    if sample_rate is None:
        raise EmofuseError("a waveform needs its sample_rate (graph_inputs(wave, meta, sample_rate=44100))")
    x, lengths = window_features(audio, sample_rate, meta["frontend"], meta["window_seconds"],
                                 pad_frames=meta.get("fixed_frames"))
    return {"x": x, "lengths": lengths}



__all__ = ["FORMATS", "export_model", "graph_inputs", "ProbabilityGraph", "EnsembleGraph", "example_inputs"]
