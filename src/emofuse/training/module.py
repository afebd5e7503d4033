"""The LightningModule: owns normalisation, loss, metrics and optimiser around a plain model."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassRecall

from ..augment import SpecAugment, mixup
from ..features import Normalize, model_args as feature_model_args
from ..models import accepted_args, create_model, model_modalities
from ..models.ssl_weighted import layer_mixers, require_layer_mixers

# The batch fields a model receives, per modality, in the order exported graphs take them
# (x: (B, T, F) raw features, lengths: (B,) frames; text: (B, L, D) token embeddings, text_lengths: (B,)).
FIELDS = {"audio": ("x", "lengths"), "text": ("text", "text_lengths")}


def input_fields(modalities) -> list[str]:
    """The names of the inputs a model of these modalities receives (the one place that says so)."""
    return [f for m in ("audio", "text") if m in modalities for f in FIELDS[m]]


def model_inputs(batch: dict, modalities) -> dict:
    """The fields of ``batch`` a model of these modalities receives (labels, indices, the other
    modality's fields left out)."""
    return {k: batch[k] for k in input_fields(modalities)}


def use_channels_last(model: nn.Module) -> bool:
    """Store a model's 4-d weights in NHWC order (``train.channels_last``) when it has 2-d
    convolutions; returns whether it did. The convolutions then run oneDNN's NHWC kernels: 1.19x
    per isolated ResNet-18 training step on the 2-core reference CPU (benchmarks/cpu_speed.py), but
    no faster over whole epochs there (benchmarks/ravdess_cv_shipped.py --probe). Outputs are the
    same up to float rounding, and the state dict loads into a model of either layout.

    A model with a convolution of 2-7 input channels stays NCHW (returns False): in torch 2.13 on
    CPU, the backward pass of a strided 1x1 convolution with NHWC weights, an NCHW input and 2-7
    input channels corrupts the heap (resnet18 at ``base_channels=4`` aborts with "double free or
    corruption"); 1 and 8+ input channels pass."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs or any(1 < m.in_channels < 8 for m in convs):
        return False
    model.to(memory_format=torch.channels_last)
    return True


def plain(value, where: str = "value"):
    """``value`` as dicts, lists, tuples, strings, numbers, booleans and None (what the weights-only
    unpickler accepts besides tensors): numpy scalars and arrays, paths and dict subclasses are
    converted; anything else is refused here, at save time, rather than at load time."""
    import numpy as np

    if value is None or isinstance(value, torch.Tensor):
        return value
    for t in (bool, int, float, str):  # also subclasses (an IntEnum, a str subclass) -> their plain base type
        if isinstance(value, t):
            return t(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f"{where}: a checkpoint may hold only plain values, not {type(value).__name__}")


class EmotionModule(L.LightningModule):
    """Trains a registered model on z-scored log-mel batches, text embeddings, or both.

    Args:
        model_name: a registered model name; its modalities decide which batch fields it gets.
        model_kwargs: its constructor arguments (``n_classes``, and ``n_mels`` / ``text_dim``
            for models that read audio / text, are filled in).
        classes: class names in index order.
        n_mels: feature bands.
        mean, std: (n_mels,) normalisation statistics from the fold's training items.
        lr, weight_decay: AdamW settings.
        scheduler: ``cosine``, ``plateau`` or ``none``.
        warmup_epochs: linear warm-up before the cosine decay.
        max_epochs: for the cosine schedule.
        class_weights: (n_classes,) loss weights, or None.
        label_smoothing: cross-entropy label smoothing.
        frontend: front-end settings, stored so a checkpoint alone can be used on new audio.
        text_dim: the text encoder's hidden size (text and fusion models).
        text: text settings (encoder, max_tokens), stored for the same reason.
        spec_table: (n_classes, 4) SpecAugment settings per class (freq masks, width, time
            masks, width), applied to training batches only, after z-scoring; None: off.
        mixup_alpha: mixup on training batches (after SpecAugment), lambda ~ Beta(alpha, alpha); 0: off.
        layer_weights_lr: learning rate of the softmax logits over an encoder's layers (``LayerWeights``),
            without weight decay; None: ``lr`` with the rest. A model with no layer weights refuses it.
    """

    def __init__(self, model_name: str, model_kwargs: dict, classes: list[str], n_mels: int,
                 mean: list[float] | None = None, std: list[float] | None = None, lr: float = 1e-3,
                 weight_decay: float = 1e-2, scheduler: str = "cosine", warmup_epochs: int = 0, max_epochs: int = 30,
                 class_weights: list[float] | None = None, label_smoothing: float = 0.0,
                 frontend: dict | None = None, text_dim: int | None = None, text: dict | None = None,
                 spec_table: list | None = None, mixup_alpha: float = 0.0,
                 layer_weights_lr: float | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["mean", "std"])
        n = len(classes)
        self.modalities = model_modalities(model_name)
        sizes: dict = {"n_mels": n_mels} if "audio" in self.modalities else {}
        if "audio" in self.modalities:  # e.g. n_layers of a multi-layer encoder's features, for models that take it
            sizes.update(accepted_args(model_name, feature_model_args(frontend)))
        if "text" in self.modalities:
            if text_dim is None:
                raise ValueError(f"model {model_name!r} reads text: text_dim is required")
            sizes["text_dim"] = int(text_dim)
        self.model = create_model(model_name, n_classes=n, **sizes, **model_kwargs)
        self.layer_weights_lr = None if layer_weights_lr is None else float(layer_weights_lr)
        if self.layer_weights_lr is not None:
            require_layer_mixers(self.model, model_name, layer_weights_lr)
        self.norm = Normalize(torch.zeros(n_mels) if mean is None else torch.tensor(mean),
                              torch.ones(n_mels) if std is None else torch.tensor(std))
        if hasattr(self.model, "bind_input_stats"):  # pretrained layers inside the model read the raw features
            self.model.bind_input_stats(self.norm)
        self.specaug = SpecAugment(spec_table) if spec_table and any(any(r) for r in spec_table) else None
        self.mixup_alpha = float(mixup_alpha)
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self.val_f1 = MulticlassF1Score(n, average="macro")
        self.val_ua = MulticlassRecall(n, average="macro")
        self.val_wa = MulticlassAccuracy(n, average="micro")

    def forward(self, x: torch.Tensor | None = None, lengths: torch.Tensor | None = None, text: torch.Tensor | None = None,
                text_lengths: torch.Tensor | None = None, **extra) -> torch.Tensor:
        """Raw log-mel x (B, T, F) with (B,) lengths, and/or token embeddings text (B, L, D) with
        (B,) text_lengths -> logits (B, n_classes). ``extra`` goes to the model (e.g. return_attention)."""
        inputs = model_inputs({"x": x, "lengths": lengths, "text": text, "text_lengths": text_lengths}, self.modalities)
        if "audio" in self.modalities and x is not None:
            inputs["x"] = self.norm(x, lengths)
        return self.model(**inputs, **extra)

    def inputs(self, batch: dict) -> dict:
        """The inputs this model receives from a collated batch (labels and indices left out)."""
        return model_inputs(batch, self.modalities)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        inputs, y = self.inputs(batch), batch["y"]
        if "audio" in self.modalities:
            x = self.norm(inputs["x"], inputs["lengths"])
            if self.specaug is not None:  # training batches only, each item masked by its own class's setting
                x = self.specaug(x, inputs["lengths"], y)
            inputs = {**inputs, "x": x}
        inputs, perm, lam = mixup(inputs, self.mixup_alpha)
        logits = self.model(**inputs)
        loss = self.loss_fn(logits, y)
        if lam < 1.0:
            loss = lam * loss + (1.0 - lam) * self.loss_fn(logits, y[perm])
        acc = (logits.argmax(1) == batch["y"]).float().mean()
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch["y"]), sync_dist=True)
        self.log("train/acc", acc, on_step=False, on_epoch=True, batch_size=len(batch["y"]), sync_dist=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(**self.inputs(batch))
        loss = nn.functional.cross_entropy(logits, batch["y"])
        pred = logits.argmax(1)
        self.val_f1.update(pred, batch["y"])
        self.val_ua.update(pred, batch["y"])
        self.val_wa.update(pred, batch["y"])
        self.log("val/loss", loss, on_epoch=True, batch_size=len(batch["y"]), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self.log("val/macro_f1", self.val_f1.compute(), prog_bar=True, sync_dist=False)
        self.log("val/ua", self.val_ua.compute())
        self.log("val/wa", self.val_wa.compute())
        for m in (self.val_f1, self.val_ua, self.val_wa):
            m.reset()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from .. import __version__
        checkpoint["emofuse_version"] = __version__  # emofuse.load refuses checkpoints of another version
        # Plain values only, so that torch.load(weights_only=True) reads our own checkpoints.
        checkpoint["hyper_parameters"] = plain(checkpoint.get("hyper_parameters") or {}, "hyper_parameters")
        if "optimizer_states" not in checkpoint:
            # A weights-only checkpoint (best.ckpt) is for inference: weights, hyper-parameters (classes,
            # front end, text settings), version and epoch; the loops' counters only serve a resume,
            # which reads last.ckpt.
            checkpoint.pop("loops", None)

    def optimizer_groups(self) -> list[dict]:
        """AdamW parameter groups: a model's own (fine-tuned pretrained layers at their rate), and,
        with ``layer_weights_lr``, the layer logits apart at that rate without weight decay."""
        lr = self.hparams.lr
        groups = self.model.param_groups(lr) if hasattr(self.model, "param_groups") else [{"params": list(self.parameters())}]
        if self.layer_weights_lr is None:
            return groups
        logits = [m.logits for m in layer_mixers(self.model)]
        ids = {id(p) for p in logits}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in ids]} for g in groups]
        groups = [g for g in groups if g["params"]]
        return [*groups, {"params": logits, "lr": self.layer_weights_lr, "weight_decay": 0.0}]

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(self.optimizer_groups(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "none":
            return opt
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=3)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/macro_f1"}}
        if hp.scheduler != "cosine":
            raise ValueError(f"train.scheduler must be cosine, plateau or none, not {hp.scheduler!r}")
        warm = max(0, int(hp.warmup_epochs))
        total = max(1, int(hp.max_epochs))

        def factor(epoch: int) -> float:
            import math
            if epoch < warm:
                return (epoch + 1) / (warm + 1)
            progress = (epoch - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor)}
