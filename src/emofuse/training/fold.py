"""One fold, top to bottom: datasets -> normalisation -> module -> trainer -> evaluation -> outputs.

``train_fold`` reads as that list; each step is a function below it, in the same order.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..atomic import write_csv_atomic, write_text_atomic
from ..augment import AugmentStore, FoldAugment
from ..errors import EmofuseError
from ..features import fit_stats
from ..inference import load_module, read_checkpoint
from ..metrics import compute_metrics, plot_confusion
from ..models.ssl_weighted import report_layer_weights
from ..provenance import reset_peaks, write_fold
from ..runfolder import RunFolder
from ..splits import FoldSplit, LeakageError
from ..subsets import seen_in_training, subset_masks
from .checkpointing import AtomicCheckpointIO, RngState, best_checkpoint_callback, last_checkpoint_callback, usable_checkpoint
from .data import BucketBatchSampler, FeatureDataset, FoldDataModule, class_weights, collate
from .lifecycle import RunContext, is_primary_process


class Interrupted(KeyboardInterrupt):
    """Ctrl-C inside a fold's training (Lightning turns it into ``sys.exit(1)``; this restores it)."""

    def __init__(self, fold: int) -> None:
        super().__init__(f"fold {fold}")
        self.fold = fold


def train_fold(ctx: RunContext, k: int, progress: bool = True, callbacks: list | None = None) -> dict | None:
    """Train, select on validation, evaluate on test. Returns the fold's metrics (None off rank 0).

    A fold with ``metrics.json`` is finished and is not touched; a fold with
    ``checkpoints/last.ckpt`` resumes from its last finished epoch and ends as an uninterrupted
    run would (same RNG state; exactly the same with ``train.deterministic=true``). A corrupt
    ``last.ckpt`` is set aside and the fold starts again.
    ``callbacks``: extra Lightning callbacks (e.g. to stop after an epoch, or to report progress).
    """
    import lightning as L

    if not 0 <= k < len(ctx.folds):
        raise EmofuseError(f"fold {k} does not exist: this run has folds 0..{len(ctx.folds) - 1}")
    folder = RunFolder(ctx.run_dir)
    if folder.is_finished(k):
        return json.loads(folder.metrics(k).read_text())
    fold_lock = folder.lock_fold(k) if is_primary_process() else None  # one process trains a fold at a time
    split, fold_dir = ctx.folds[k], folder.fold_dir(k)
    seed = int(ctx.cfg.get("seed", 0)) + k
    L.seed_everything(seed, workers=True, verbose=False)

    datasets = build_datasets(ctx, split, fold_augment(ctx, split, fold_dir))  # 1. datasets (train / val / test speakers)
    mean, std = fit_normalisation(ctx, datasets["train"], fold_dir)  # 2. z-score statistics, training items only
    module = build_module(ctx, datasets["train"], mean, std)  # 3. the model inside its LightningModule
    trainer, ckpt, throughput = build_trainer(ctx, k, progress, callbacks)  # 4. the trainer, resuming if it can
    reset_peaks()  # the fold's own peak memory (provenance.json)
    t0 = time.time()
    fit(trainer, module, FoldDataModule(datasets, int(ctx.cfg["data"]["batch_size"]),
                                        int(ctx.cfg["data"].get("num_workers", 0)), seed), resume_point(folder, k), k)
    if not trainer.is_global_zero:
        return None
    best = folder.checkpoints(k) / "best.ckpt"
    best = best if best.is_file() else folder.checkpoints(k) / "last.ckpt"
    result = {"fold": k, "test_groups": split.test_groups, "speakers": split.speakers,
              "checkpoint": best.resolve().relative_to(ctx.run_dir.resolve()).as_posix(),
              "best_epoch": _ckpt_epoch(best), "epochs_trained": trainer.current_epoch,
              "best_val_score": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
              "monitor": ckpt.monitor, "wall_seconds": round(time.time() - t0, 2), **throughput.report()}
    result.update(evaluate_fold(ctx, split, best, datasets, fold_dir))  # 5. the selected checkpoint on val and test
    write_outputs(ctx, split, result, fold_dir)  # 6. confusion.png and metrics.json (which marks the fold finished)
    if fold_lock is not None:
        fold_lock.release()
    return result


def fold_augment(ctx: RunContext, split: FoldSplit, fold_dir: Path) -> FoldAugment | None:
    """The fold's augmentation, built from its training items only; renders missing variants and
    writes fold_K/augmented.csv (what was augmented) and fold_K/augment_audit.json."""
    policy = ctx.policy
    if policy is None or not policy.active:
        return None
    df = ctx.manifest.df.set_index("utt_id")
    rows = df.loc[split.train]
    train = {u: (str(ctx.manifest.audio_path(p)), sha, lab)
             for u, p, sha, lab in zip(rows.index, rows["path"], rows["audio_sha1"], rows["label"])}
    augment = FoldAugment(policy, AugmentStore(ctx.store.dir.parent, ctx.store.cfg), train)
    if is_primary_process():
        augment.prepare(workers=ctx.cfg["data"].get("feature_workers"))
        record = augment.record()
        write_csv_atomic(record, fold_dir / "augmented.csv")
        touched = set(record["utt_id"][(record["waveform_variants"] > 0) | (record["specaugment"] != "")])
        outside = touched & (set(split.val) | set(split.test))
        audit = {"policy": policy.name, "train_items": len(record), "train_items_augmented": len(touched),
                 "val_items_augmented": len(touched & set(split.val)), "test_items_augmented": len(touched & set(split.test)),
                 "passed": not outside}
        write_text_atomic(fold_dir / "augment_audit.json", json.dumps(audit, indent=2))
        if outside:
            raise LeakageError(f"fold {split.fold}: augmentation would touch non-training items {sorted(outside)[:3]}")
    return augment


def build_datasets(ctx: RunContext, split: FoldSplit, augment: FoldAugment | None = None) -> dict[str, FeatureDataset]:
    df = ctx.manifest.df.set_index("utt_id")
    cls = {c: i for i, c in enumerate(ctx.classes)}
    hop = ctx.store.frame_seconds
    crop = ctx.cfg["data"].get("crop_seconds")
    max_eval = ctx.cfg["data"].get("max_eval_seconds")
    seed = int(ctx.cfg.get("seed", 0)) + split.fold
    out = {}
    for part, ids in split.parts().items():
        rows = df.loc[ids]
        out[part] = FeatureDataset(ctx.store if "audio" in ctx.modalities else None, rows["audio_sha1"].tolist(),
                                   [cls[x] for x in rows["label"]],
                                   crop_frames=int(crop / hop) if crop else None,
                                   max_frames=int(max_eval / hop) if max_eval else None,
                                   train=part == "train", seed=seed, text_store=ctx.text_store,
                                   text_keys=[ctx.text_keys[u] for u in ids] if ctx.text_keys else None,
                                   utt_ids=list(ids), augment=augment if part == "train" else None)
    return out


def _precision(train: dict) -> str:
    p = str(train.get("precision", "auto"))
    if p != "auto":
        return p
    if torch.cuda.is_available() and train.get("accelerator", "auto") in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def fit_normalisation(ctx: RunContext, train: FeatureDataset, fold_dir: Path) -> tuple[list | None, list | None]:
    """Per-feature mean and std over the fold's training items only (written to fold_K/norm.json);
    (None, None) for a model that reads no audio."""
    if "audio" not in ctx.modalities:
        return None, None
    mean, std = (a.tolist() for a in fit_stats(ctx.store, train.keys))
    if is_primary_process():
        write_text_atomic(fold_dir / "norm.json", json.dumps({"fitted_on": "train", "items": len(train),
                                                               "mean": mean, "std": std}))
    return mean, std


def build_module(ctx: RunContext, train: FeatureDataset, mean: list | None, std: list | None):
    """The configured model inside the training module (loss, metrics, optimiser, normalisation)."""
    from .module import EmotionModule, use_channels_last

    cfg, tr = ctx.cfg, ctx.cfg["train"]
    weights = class_weights(train.labels, len(ctx.classes)).tolist() if tr.get("class_weights", True) else None
    model_cfg = dict(cfg["model"])
    model_name = model_cfg.pop("name")
    module = EmotionModule(model_name, model_cfg, ctx.classes, ctx.store.dim, mean, std,
                           lr=float(tr["lr"]), weight_decay=float(tr["weight_decay"]), scheduler=tr["scheduler"],
                           warmup_epochs=int(tr.get("warmup_epochs", 0)), max_epochs=int(tr["max_epochs"]),
                           class_weights=weights, label_smoothing=float(tr.get("label_smoothing", 0.0)),
                           frontend=ctx.store.describe(), text_dim=ctx.text_store.dim if ctx.text_store else None,
                           text=asdict(ctx.text_store.cfg) if ctx.text_store else None,
                           spec_table=ctx.policy.spec_table() if ctx.policy is not None and ctx.policy.spec_active else None,
                           mixup_alpha=float(tr.get("mixup_alpha", 0.0)),
                           layer_weights_lr=tr.get("layer_weights_lr"))
    if tr.get("channels_last") and not use_channels_last(module.model):  # checkpoints load in either layout
        print(f"train.channels_last: {model_name} stays NCHW (no 2-d convolution, or one with 2-7 input channels, "
              "which torch 2.13's CPU backward mishandles in NHWC)", file=sys.stderr)
    return module


def build_trainer(ctx: RunContext, k: int, progress: bool = True, extra: list | None = None):
    """The fold's Lightning trainer, with its best-on-validation and last checkpoints. Returns
    (trainer, best-checkpoint callback, throughput callback)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
    from lightning.pytorch.loggers import TensorBoardLogger

    from .callbacks import EpochLog, Throughput

    tr = ctx.cfg["train"]
    fold_dir, ckdir = RunFolder(ctx.run_dir).fold_dir(k), RunFolder(ctx.run_dir).checkpoints(k)
    monitor = tr.get("monitor", "val/macro_f1")
    mode = "min" if monitor.endswith("loss") else "max"
    ckpt = best_checkpoint_callback(ckdir, monitor, mode)
    throughput = Throughput()
    # Progress bars on a terminal; one line per epoch in logs and pipes (or a caller's own progress callback).
    progress = progress and sys.stderr.isatty()
    callbacks = [ckpt, last_checkpoint_callback(ckdir), RngState(), throughput, LearningRateMonitor("epoch"), *(extra or [])]
    if not progress and not any(isinstance(c, EpochLog) for c in callbacks):
        callbacks.append(EpochLog(f"fold {k} "))
    if tr.get("early_stopping_patience"):
        callbacks.append(EarlyStopping(monitor, patience=int(tr["early_stopping_patience"]), mode=mode))
    trainer = L.Trainer(
        default_root_dir=fold_dir, max_epochs=int(tr["max_epochs"]), accelerator=tr.get("accelerator", "auto"),
        devices=tr.get("devices", 1), num_nodes=int(tr.get("num_nodes", 1)), strategy=tr.get("strategy", "auto"),
        precision=_precision(tr), gradient_clip_val=tr.get("grad_clip"), deterministic=bool(tr.get("deterministic", False)),
        logger=TensorBoardLogger(fold_dir, name="tb", version=""), callbacks=callbacks,
        limit_train_batches=tr.get("limit_train_batches", 1.0), limit_val_batches=tr.get("limit_val_batches", 1.0),
        max_steps=int(tr.get("max_steps", -1)), use_distributed_sampler=False, enable_progress_bar=progress,
        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=10, plugins=[AtomicCheckpointIO()],
    )
    return trainer, ckpt, throughput


def resume_point(folder: RunFolder, k: int) -> Path | None:
    """The checkpoint this fold resumes from (a usable last.ckpt), or None to start afresh."""
    ckdir = folder.checkpoints(k)
    resume = usable_checkpoint(ckdir, k) if is_primary_process() else ckdir / "last.ckpt"
    if resume is not None and resume.is_file():
        print(f"fold {k}: resuming from {resume}", file=sys.stderr)
        return resume
    return None


def fit(trainer, module, datamodule, resume: Path | None, k: int) -> None:
    """``trainer.fit``; Ctrl-C raises ``Interrupted`` (Lightning would exit the process with 1)."""
    from lightning.pytorch.trainer.states import TrainerStatus

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None, weights_only=True)
    except SystemExit:
        if trainer.state.status == TrainerStatus.INTERRUPTED:
            raise Interrupted(k) from None
        raise
    if trainer.state.status == TrainerStatus.INTERRUPTED:
        raise Interrupted(k)


def evaluate_fold(ctx: RunContext, split: FoldSplit, best: Path, datasets: dict[str, FeatureDataset],
                  fold_dir: Path) -> dict:
    """The selected checkpoint on the validation and test speakers: metrics, the test subsets'
    metrics, and fold_K/predictions.csv."""
    device = torch.device("cuda" if torch.cuda.is_available() and ctx.cfg["train"].get("accelerator", "auto") != "cpu" else "cpu")
    best_module = load_module(best, device)  # weights only, as emofuse.load: a checkpoint never runs code
    report_layer_weights(best_module.model, fold_dir, (ctx.store.describe() or {}).get("layers"), f"fold {split.fold} ")
    result = {}
    for part in ("val", "test"):
        probs = predict_probs(best_module, datasets[part], int(ctx.cfg["data"]["batch_size"]), device)
        y = np.array(datasets[part].labels)
        result[part] = compute_metrics(y, probs.argmax(1), ctx.classes)
        if part == "test":
            seen = seen_in_training(split.parts(), ctx.manifest.df, ctx.text_column)
            masks = subset_masks(split.test, ctx.manifest.df, seen)
            result["subsets"] = {name: compute_metrics(y[m], probs.argmax(1)[m], ctx.classes) for name, m in masks.items()
                                 if m.any()}
            write_predictions(fold_dir / "predictions.csv", split.test, ctx, y, probs, masks)
    return result


def write_outputs(ctx: RunContext, split: FoldSplit, result: dict, fold_dir: Path) -> None:
    """fold_K/confusion.png and provenance.json, then fold_K/metrics.json (written last: its presence marks the fold finished)."""
    write_fold(fold_dir, result)
    plot_confusion(result["test"]["confusion"], ctx.classes, fold_dir / "confusion.png",
                   f"fold {split.fold} test ({', '.join(split.test_groups)})")
    write_text_atomic(fold_dir / "metrics.json", json.dumps(result, indent=2))


def _ckpt_epoch(path: Path) -> int | None:
    try:
        return int(read_checkpoint(path)["epoch"])
    except Exception:
        return None


@torch.no_grad()
def predict_probs(module, dataset: FeatureDataset, batch_size: int, device: torch.device) -> np.ndarray:
    """(N, n_classes) class probabilities in dataset order (full-length items, no augmentation)."""
    module = module.to(device).eval()
    out = np.zeros((len(dataset), len(module.hparams.classes)), dtype=np.float32)
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=False)
    for idx in sampler:
        batch = collate([dataset[i] for i in idx])
        logits = module(**{k: v.to(device) for k, v in module.inputs(batch).items()}).float()
        out[batch["index"].numpy()] = torch.softmax(logits, 1).cpu().numpy()
    return out


def write_predictions(path: Path, utt_ids: list[str], ctx: RunContext, y: np.ndarray, probs: np.ndarray,
                      subsets: dict[str, np.ndarray] | None = None) -> None:
    """Test predictions per utterance, every class probability, and the subsets each item is in."""
    df = ctx.manifest.df.set_index("utt_id").loc[utt_ids]
    table = pd.DataFrame({"utt_id": utt_ids, "speaker": df["speaker"].values, "label": [ctx.classes[i] for i in y],
                          "pred": [ctx.classes[i] for i in probs.argmax(1)]})
    for name, mask in (subsets or {}).items():
        table[f"in_{name}"] = mask.astype(int)
    for i, c in enumerate(ctx.classes):
        table[f"p_{c}"] = probs[:, i].round(5)
    write_csv_atomic(table, path)
