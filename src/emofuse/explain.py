"""What a model looks at: Grad-CAM for the CNNs, attention maps for the Transformer and the
cross-attention fusion model, drawn over the clip's log-mel spectrogram.

- ``resnet18``, ``cnn_bilstm`` (and fusion models built on them): Grad-CAM on the last
  convolutional block, with forward/backward hooks (no extra package): the block's activations
  weighted by the spatially averaged gradients of the explained class, ReLU, upsampled to the
  spectrogram's (F, T) grid.
- ``audio_transformer``: the last layer's [CLS] -> patch attention (heads averaged), laid out on
  the patch grid and upsampled to (F, T).
- ``cross_attention``: the audio x text-token attention (layers and heads averaged), with the
  WordPiece tokens on one axis and time on the other; plus the audio side's own map.
- models on frozen Whisper encoder frames (``whisper_mlp``): gradient x input of the explained
  class, summed over the feature axis: which 20 ms frames drove the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .atomic import replace_into
from .errors import EmofuseError


@dataclass
class Explanation:
    """Maps for one clip. ``logmel`` and ``saliency`` are (F, T); ``token_map`` is (tokens, T_audio)."""

    utt: str
    kind: str
    label: str
    explained: str
    which: str  # the model explained: "fold 2", or "checkpoint PATH"
    logmel: np.ndarray
    saliency: np.ndarray | None
    token_map: np.ndarray | None = None
    tokens: list[str] | None = None
    features: str = "log-mel"
    frame_seconds: float = 0.01


def _audio_encoder(model: nn.Module) -> nn.Module:
    return model.audio if hasattr(model, "audio") and isinstance(model.audio, nn.Module) else model


def _upsample(m: torch.Tensor, f: int, t: int) -> np.ndarray:
    """(F', T') -> (F, T) in [0, 1]."""
    up = nn.functional.interpolate(m[None, None].float(), size=(f, t), mode="bilinear", align_corners=False)[0, 0]
    up = up - up.min()
    return (up / up.max().clamp(min=1e-12)).cpu().numpy()


def grad_cam(module, inputs: dict, target: int) -> np.ndarray:
    """Grad-CAM (F, T) for one item (batch of 1) of a CNN-based model inside ``EmotionModule``."""
    enc = _audio_encoder(module.model)
    if not hasattr(enc, "blocks"):
        raise EmofuseError(f"Grad-CAM needs a convolutional audio model; {type(enc).__name__} has none")
    layer = enc.blocks[-1]
    store: dict = {}

    def fwd(_, __, out):
        act = out[0] if isinstance(out, tuple) else out  # (1, C, F', T')
        act.retain_grad()
        store["act"] = act

    handle = layer.register_forward_hook(fwd)
    try:
        with torch.enable_grad():
            module.zero_grad(set_to_none=True)
            logits = module(**inputs)
            logits[0, target].backward()
    finally:
        handle.remove()
    act, grad = store["act"].detach(), store["act"].grad
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
    cam = torch.relu((weights * act).sum(1))[0]  # (F', T')
    x = inputs["x"]
    return _upsample(cam, x.shape[2], int(inputs["lengths"][0]))


def frame_saliency(module, inputs: dict, target: int) -> np.ndarray:
    """Gradient x input of class ``target``, summed over features per frame, as (F, T) (constant in F)."""
    x = inputs["x"].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        module.zero_grad(set_to_none=True)
        logits = module(**{**inputs, "x": x})
        logits[0, target].backward()
    n = int(inputs["lengths"][0])
    per_frame = torch.relu((x.grad * x.detach()).sum(-1))[0, :n]  # (T,)
    return _upsample(per_frame[None].expand(x.shape[2], n), x.shape[2], n)


def transformer_attention(module, inputs: dict) -> np.ndarray:
    """[CLS] -> patch attention of the last encoder layer, (F, T)."""
    enc = _audio_encoder(module.model)
    if not hasattr(enc, "patchify"):
        raise EmofuseError(f"attention maps need the audio_transformer; {type(enc).__name__} is not one")
    last = enc.encoder.layers[-1]
    store: dict = {}

    def pre(_, args, kwargs):
        store["src"] = args[0] if args else kwargs["src"]
        store["mask"] = kwargs.get("src_key_padding_mask")

    handle = last.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        with torch.no_grad():
            module(**inputs)
            h = last.norm1(store["src"]) if last.norm_first else store["src"]
            _, w = last.self_attn(h, h, h, key_padding_mask=store["mask"], need_weights=True, average_attn_weights=True)
    finally:
        handle.remove()
    cls_to_patches = w[0, 0, 1:]  # (P,), frequency-major patch order
    n_tp = cls_to_patches.numel() // enc.n_fp
    grid = cls_to_patches.reshape(enc.n_fp, n_tp)
    x = inputs["x"]
    n_valid = -(-int(inputs["lengths"][0]) // enc.patch_t)
    return _upsample(grid[:, :n_valid], x.shape[2], int(inputs["lengths"][0]))


def cross_attention_map(module, inputs: dict) -> np.ndarray:
    """(tokens, T_audio) audio -> text attention of the cross-attention model (layers, heads averaged)."""
    with torch.no_grad():
        normed = {**inputs, "x": module.norm(inputs["x"], inputs["lengths"])}
        _, maps = module.model(**normed, return_attention=True)
    ws = maps["audio_to_text"] or [w.transpose(-1, -2) for w in maps["text_to_audio"]]
    w = torch.stack([x[0].mean(0) for x in ws]).mean(0)  # (S_audio, L)
    valid = maps["audio_valid"][0]
    w = w[valid]
    enc = _audio_encoder(module.model)
    if hasattr(enc, "n_fp"):  # patches are frequency-major: average over frequency -> time
        w = w.reshape(enc.n_fp, -1, w.shape[-1]).mean(0)
    return w.T.cpu().numpy()  # (L, T_audio)


def explain(predictor, audio, text: str | None = None, sample_rate: int | None = None, target: str | None = None,
            fold: int | None = None, utt: str | None = None) -> Explanation:
    """Maps for the first window of one clip, for class ``target`` (default: the predicted one).

    A map explains one model: fold ``fold`` of an ensemble (default: its first fold); the
    Explanation's ``which`` names it, and its ``label`` is that fold's prediction."""
    from .audio import TARGET_SR, read_audio, to_mono_16k
    from .inference import describe_folds

    module, k = predictor.module(fold)
    i = predictor.modules.index(module)
    which = describe_folds([k], predictor.sources[i:i + 1] or None)
    if "audio" not in module.modalities:
        raise EmofuseError("a text-only model has no audio map to draw")
    if isinstance(audio, (str, Path)):
        utt, wave = utt or Path(audio).stem, read_audio(audio, TARGET_SR)
    else:
        wave, utt = to_mono_16k(np.asarray(audio, dtype=np.float32), int(sample_rate or TARGET_SR)), utt or "waveform"
    x, lengths = predictor.features(wave, utt)
    inputs = module.inputs({"x": x[:1], "lengths": lengths[:1], **predictor.text_inputs(text, utt, wave)})
    with torch.no_grad():
        probs = torch.softmax(module(**inputs).float(), 1)[0]
    pred = int(probs.argmax())
    if target is not None and target not in predictor.classes:
        raise EmofuseError(f"--class {target!r} is not one of {predictor.classes}")
    t = predictor.classes.index(target) if target else pred
    logmel = x[0, : int(lengths[0])].T.cpu().numpy()  # (F, T)
    name = module.hparams["model_name"]
    enc = _audio_encoder(module.model)
    token_map = tokens = None
    if name == "cross_attention":
        token_map = cross_attention_map(module, inputs)
        tokens = predictor.text_tokens(text)
    if hasattr(enc, "patchify"):
        kind, sal = "attention", transformer_attention(module, inputs)
    elif hasattr(enc, "blocks"):
        kind, sal = "grad-cam", grad_cam(module, inputs, t)
    else:
        kind, sal = "gradient x input", frame_saliency(module, inputs, t)
    fe = predictor.frontend
    return Explanation(utt, kind, predictor.classes[pred], predictor.classes[t], which, logmel, sal, token_map, tokens,
                       fe.what, fe.cfg.hop_length / fe.cfg.sample_rate)


def plot_explanation(e: Explanation, path: str | Path, hop_seconds: float | None = None) -> Path:
    """A PNG: the log-mel with the map over it (and the token x time attention when present).

    The file is written through a temporary file in its folder and a rename, so an existing
    symbolic link at ``path`` is replaced, never followed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hop_seconds = hop_seconds or e.frame_seconds
    band = "mel band" if e.features == "log-mel" else "feature"
    rows = 2 + (e.token_map is not None)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows + (0.15 * len(e.tokens or []))), squeeze=False)
    T = e.logmel.shape[1]
    extent = [0, T * hop_seconds, 0, e.logmel.shape[0]]
    axes[0, 0].imshow(e.logmel, origin="lower", aspect="auto", extent=extent, cmap="magma")
    axes[0, 0].set(title=f"{e.utt}: {e.features} ({e.which} predicts {e.label})", ylabel=band)
    axes[1, 0].imshow(e.logmel, origin="lower", aspect="auto", extent=extent, cmap="gray")
    axes[1, 0].imshow(e.saliency, origin="lower", aspect="auto", extent=extent, cmap="jet", alpha=0.5)
    what = {"grad-cam": f"Grad-CAM for class {e.explained}", "gradient x input": f"gradient x input per frame for class {e.explained}",
            }.get(e.kind, "last-layer [CLS] -> patch attention (class-agnostic)")
    axes[1, 0].set(title=what, ylabel=band, xlabel="seconds")
    if e.token_map is not None:
        ax = axes[2, 0]
        ax.imshow(e.token_map, aspect="auto", cmap="viridis", extent=[0, T * hop_seconds, len(e.tokens) - 0.5, -0.5])
        ax.set_yticks(range(len(e.tokens)))
        ax.set_yticklabels(e.tokens, fontsize=8)
        ax.set(title="audio -> text-token cross-attention", xlabel="seconds (audio patches)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # a temporary file and a rename: a symbolic link at ``path`` is replaced, not written through
        replace_into(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
    return path
