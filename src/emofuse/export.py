"""Export a trained model to TorchScript or ONNX, to run without emofuse.

The exported graph takes what the model takes after the front end: raw log-mel features
(z-scoring is inside the graph) and, for text and fusion models, the frozen encoder's token
embeddings. It returns class probabilities. A sidecar JSON names the classes, the exact
front-end settings (16 kHz mono, 64-band Slaney log-mel, 25 ms / 10 ms, dB with an 80 dB
floor: reproducible with librosa), the text encoder, and the inputs' shapes.

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
        self.audio = "audio" in module.modalities
        self.text = "text" in module.modalities

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        names = (["x", "lengths"] if self.audio else []) + (["text", "text_lengths"] if self.text else [])
        inputs = dict(zip(names, args))
        if self.audio:
            inputs["x"] = self.norm(inputs["x"], inputs["lengths"])
        return torch.softmax(self.model(**inputs), dim=-1)


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
    return (["x", "lengths"] if "audio" in module.modalities else []) + (
        ["text", "text_lengths"] if "text" in module.modalities else [])


def export_model(model_path: str | Path, fmt: str, out: str | Path, fold: int = 0, window_seconds: float = 8.0) -> tuple[Path, Path]:
    """Write ``out/model.pt`` (TorchScript) or ``out/model.onnx`` and ``out/model.json``.

    Each file is written to a temporary file in ``out`` and renamed into place: a symbolic link
    already at an output name is replaced, never written through (outputs stay inside ``out``).

    ONNX graphs of attention models (``nn.MultiheadAttention`` inside) have a fixed number of
    frames (``window_seconds``) and tokens (``text.max_tokens``): the legacy exporter bakes the
    sequence length into the attention reshapes. Pad shorter inputs with zeros and give their
    real lengths; padding never changes an output (tested). All other graphs take any length.
    """
    from .inference import checkpoints_of, _load_module

    if fmt not in FORMATS:
        raise EmofuseError(f"--format must be one of {list(FORMATS)}, not {fmt!r}")
    ckpts = checkpoints_of(model_path)
    if not 0 <= fold < len(ckpts):
        raise EmofuseError(f"fold {fold}: {model_path} has {len(ckpts)} checkpoint(s)")
    module = _load_module(ckpts[fold], torch.device("cpu"))
    graph = ProbabilityGraph(module).eval()
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
    sidecar = {
        "emofuse_version": __version__, "format": fmt, "file": path.name, "checkpoint": str(ckpts[fold]),
        "model": hp["model_name"], "classes": list(hp["classes"]), "modalities": list(module.modalities),
        "inputs": {n: {"x": kind.frame,
                       "lengths": "(batch,) int64 valid frames", "text": "(batch, tokens, dim) float32 token embeddings",
                       "text_lengths": "(batch,) int64 valid tokens"}[n] for n in names},
        "output": "probs (batch, n_classes) float32, softmax over classes in the order of 'classes'",
        "fixed_frames": frames if fixed and "audio" in module.modalities else None,
        "fixed_tokens": tokens if fixed and "text" in module.modalities else None,
        "note": ("pad x to fixed_frames / text to fixed_tokens with zeros and pass the real lengths" if fixed else
                 "any number of frames and tokens; an ONNX graph may drop an input the model does not use "
                 "(e.g. text_lengths with [CLS] pooling): feed only the inputs the session lists"),
        "frontend": {**(hp.get("frontend") or {}), "kind": kind.name, "recipe": kind.recipe},
        "normalisation": "inside the graph (z-score with the fold's training statistics)",
        "text_encoder": hp.get("text"),
    }
    side = out / "model.json"
    replace_into(side, lambda tmp: tmp.write_text(json.dumps(sidecar, indent=2)))
    return path, side



__all__ = ["FORMATS", "export_model", "ProbabilityGraph", "example_inputs"]
