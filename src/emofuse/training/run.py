"""Cross-validation runs: one folder per run, one sub-folder per fold, resumable.

Run folder::

    config.yaml            the resolved config (what every fold trains with)
    audit.json             leakage audit of every fold, and what each step was allowed to see
    fold_K/split.csv       utt_id, speaker, part (train / val / test)
    fold_K/audit.json      this fold's speaker and utterance overlap checks
    fold_K/norm.json       z-score statistics (training items only)
    fold_K/checkpoints/    best.ckpt (selected on validation speakers), last.ckpt (for resuming)
    fold_K/tb/             TensorBoard logs
    fold_K/predictions.csv test predictions per utterance with class probabilities
    fold_K/metrics.json    test (and validation) metrics; its presence marks the fold finished
    fold_K/confusion.png
    summary.json, results.md, confusion.png   across folds (mean and std)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from ..atomic import write_csv_atomic, write_text_atomic
from ..augment import AugmentStore, FoldAugment, Policy, load_policy
from ..config import dump_config
from ..errors import EmofuseError
from ..features import FeatureStore, WhisperFeatureStore, feature_config, fit_stats, open_store
from ..inference import _load_module, read_checkpoint
from ..manifest import Manifest, read_manifest
from ..metrics import HEADLINE, compute_metrics, plot_confusion, summarize
from ..models import model_modalities
from ..provenance import reset_peaks, write_fold
from ..schema import check_config
from ..text import TextConfig, TextStore, text_key
from ..subsets import overlap_lines, script_disjoint, seen_in_training, select_subset, subset_masks, transcript_column
from ..runfolder import PARENT_LOCK_ENV, RunFolder, manifest_table
from ..splits import FoldSplit, LeakageError, audit_split, make_folds, read_split, require_passed, write_split
from .checkpointing import AtomicCheckpointIO, RngState, last_checkpoint_callback, usable_checkpoint
from .data import FeatureDataset, FoldDataModule, class_weights, collate, BucketBatchSampler

# Keys that change how a run executes, not what it computes: a resumed run may change them.
EXECUTION_KEYS = {("train", "devices"), ("train", "num_nodes"), ("train", "strategy"), ("train", "accelerator"),
                  ("data", "num_workers"), ("data", "feature_workers"), ("text", "batch_size")}


def is_primary_process() -> bool:
    """False in the extra processes a DDP launcher starts (they must not write shared files)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0


@dataclass
class RunContext:
    cfg: dict
    run_dir: Path
    manifest: Manifest
    store: FeatureStore | WhisperFeatureStore
    folds: list[FoldSplit]
    modalities: tuple[str, ...] = ("audio",)
    text_store: TextStore | None = None
    text_keys: dict[str, str] | None = None  # utt_id -> text cache key
    policy: Policy | None = None
    text_column: str | None = None  # whose transcripts the audit and the seen/unseen breakdown use

    @property
    def classes(self) -> list[str]:
        return self.manifest.classes


def transcripts(manifest: Manifest, cfg: TextConfig) -> list[str]:
    """The manifest's transcripts for the text branch, one per row, after the ``text.missing`` rule.

    Raises:
        EmofuseError: the column is absent, or (with ``text.missing=error``) some rows are empty.
    """
    df = manifest.df
    col = cfg.read_column
    if col not in df.columns:
        if cfg.source == "asr":
            raise EmofuseError(f"{manifest.path}: no ASR transcripts (column {col!r}) for text.source=asr; run "
                               f"'emofuse transcribe {manifest.path.parent}' first")
        raise EmofuseError(f"{manifest.path}: no column {col!r} for text.column; columns are {list(df.columns)} "
                           "(for ASR text run 'emofuse transcribe' and set text.source=asr)")
    texts = df[col].fillna("").astype(str).str.strip()
    empty = df["utt_id"][texts == ""].tolist()
    if empty and cfg.missing == "error":
        raise EmofuseError(f"{manifest.path}: {len(empty)} utterances have no transcript in column {col!r} (first: "
                           f"{empty[0]}); add the transcripts, or set text.missing=empty to encode them as empty text")
    return texts.tolist()


def frontend_config(cfg: dict):
    """The run's front-end settings (``features:``): log-mel or Whisper encoder features."""
    return feature_config(cfg["features"])


def _strip_execution(cfg: dict) -> dict:
    out = json.loads(json.dumps(cfg))
    for group, key in EXECUTION_KEYS:
        out.get(group, {}).pop(key, None)
    return out


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys


def open_run(cfg: dict, run_dir: Path, overwrite: bool = False, fold: int | None = None) -> RunContext:
    """Create or reopen a run folder, cache the features, write the folds and their audit.

    Everything is checked before anything is written: the config (an invalid one leaves no
    trace, so the corrected command runs), the manifest, and the model it builds. The process
    then holds the run's lock (exclusive; shared plus the fold's own lock when ``fold`` is given,
    so several ``train --fold K`` processes can share a run). An existing folder is reopened only
    for the same config (execution keys aside) and the same manifest (its fingerprint, recorded
    when the run began); ``overwrite`` deletes it first, and only if it holds an emofuse run.
    The folds' audits are re-made against the current manifest on every open: a run whose audit
    fails never trains, resumes or summarises.
    """
    cfg = check_config(cfg)  # every group typed and checked before anything is written
    if cfg["data"].get("manifest") in (None, ""):
        raise EmofuseError("data.manifest is not set: add data.manifest=DIR (a folder written by 'emofuse prepare') to the command")
    primary = is_primary_process()
    folder = RunFolder(run_dir)
    manifest = read_manifest(cfg["data"]["manifest"])
    manifest.df = select_subset(manifest.df, cfg["data"].get("subset"))  # e.g. IEMOCAP's improvised dialogues only
    modalities = model_modalities(cfg["model"]["name"])
    cache = cfg["data"].get("cache_dir") or (manifest.path.parent / "cache")
    store = open_store(cache, frontend_config(cfg))
    policy = load_policy(cfg.get("augment"), manifest.classes)  # a bad policy fails before any work
    if policy.active and "audio" not in modalities:
        raise EmofuseError(f"augment.policy={policy.name}: model {cfg['model']['name']!r} reads no audio; set augment.policy=none")
    if policy.active and not isinstance(store, FeatureStore):
        raise EmofuseError(f"augment.policy={policy.name} renders log-mel variants; with features.kind="
                           f"{store.cfg.kind} set augment.policy=none (augmenting Whisper features is not supported)")
    text_store, text_keys, texts, text_cfg = None, None, None, None
    if "text" in modalities:  # checked before any audio work, so a missing transcript fails fast
        text_cfg = TextConfig.from_dict(cfg.get("text"))
        texts = transcripts(manifest, text_cfg)
        text_store = TextStore(cache, text_cfg)
        text_keys = dict(zip(manifest.df["utt_id"], (text_key(t) for t in texts)))
    table = manifest_table(manifest.df, text_cfg.read_column if text_cfg else None)

    if primary:
        # `train --fold K` shares the run with other folds' processes; deleting anything needs it alone.
        folder.lock(shared=fold is not None and not overwrite)  # held until the process ends (or RunLock.release)
        if overwrite:
            folder.clear()
        if folder.config.is_file():
            old = yaml.safe_load(folder.config.read_text())
            try:  # an earlier version's config: its defaults filled in the same way, so only real changes differ
                old = check_config(old)
            except EmofuseError:
                pass
            diff = _diff_keys(_strip_execution(old), _strip_execution(cfg))
            if diff and (folder.has_trained_state() or fold is not None):
                raise EmofuseError(f"{run_dir} holds a run with another config (differs in {diff[:6]}); "
                                   "pass --overwrite to replace it, or --out for a new run folder")
            if diff:  # nothing trained yet (an earlier command failed early): the corrected command takes over
                print(f"{run_dir}: no fold had trained; its config is replaced (differs in {diff[:6]})", file=sys.stderr)
                folder.clear()
        if folder.config.is_file():
            note = folder.check_inputs(table, manifest.classes, manifest.path)
            if note:
                print(f"{run_dir}: {note}", file=sys.stderr)
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            folder.record_inputs(table, manifest.classes, manifest.path)
            write_text_atomic(folder.config, dump_config(cfg))
        if fold is not None:
            folder.lock_fold(fold)

    # Folds and their audit first: a leaking split stops before any feature is computed.
    cv = cfg["cv"]
    folds = make_folds(manifest.df, manifest.meta.get("corpus", ""), cv.get("scheme", "auto"), cv.get("n_folds"),
                       cv.get("val_speakers"), int(cv.get("seed", 0)))
    text_column = transcript_column(manifest.df, text_cfg.read_column if text_cfg else None)
    if cv.get("protocol") == "script_disjoint":
        folds = [_disjoint(f, manifest.df, text_column) for f in folds]
    # A fold that exists keeps the split it was made with (its results rest on it); all are re-audited.
    folds = [read_split(folder.fold_dir(f.fold)) if all((folder.fold_dir(f.fold) / n).is_file() for n in
                                                         ("split.csv", "audit.json")) else f for f in folds]
    min_words = int(cv.get("overlap_min_words", 3))
    near = manifest.near_duplicates()
    audits = [audit_split(f, manifest.df, text_column, min_words, near) for f in folds]
    if primary:
        for f, a in zip(folds, audits):
            write_split(f, manifest.df, folder.fold_dir(f.fold), a)
        write_run_audit(run_dir, cfg, audits, modalities, text_store, policy)
    require_passed(audits, run_dir / "audit.json")

    keys = manifest.df["audio_sha1"].tolist()
    if text_store is not None:
        if primary:
            text_store.ensure(texts)
        elif text_store.missing(list(text_keys.values())):
            raise EmofuseError(f"{text_store.dir}: text embeddings missing in a worker process; run once without DDP to cache them")
    if "audio" in modalities:
        if primary:
            store.ensure(keys, [manifest.audio_path(p) for p in manifest.df["path"]], workers=cfg["data"].get("feature_workers"))
        elif store.missing(keys):
            raise EmofuseError(f"{store.dir}: features missing in a worker process; run the command once without DDP to cache them")

    return RunContext(cfg, run_dir, manifest, store, folds, modalities, text_store, text_keys, policy, text_column)


def overlap_summary(audits: list[dict], modalities: tuple[str, ...], warn_above: float = 0.2) -> dict:
    """The folds' transcript overlap in one record, with what it means for this run's model."""
    per = [a.get("transcript_overlap", {}) for a in audits]
    if not per or not all(o.get("available") for o in per):
        return {"available": False, "level": "information",
                "message": "no transcripts in this manifest: transcript overlap was not measured"}
    mean = lambda key, part: round(float(np.mean([o[part][key] for o in per])), 4)  # noqa: E731
    out = {"available": True, "column": per[0]["column"], "min_words": per[0]["min_words"],
           "test_share": mean("share", "test"), "test_share_min_words": mean("share_min_words", "test"),
           "val_share": mean("share", "val"), "per_fold_test_share": [o["test"]["share"] for o in per],
           "removed_from_train": [a.get("protocol", {}).get("removed_from_train", 0) for a in audits]}
    share, n = out["test_share_min_words"], out["min_words"]
    what = (f"{share:.0%} of test utterances of {n}+ words (all lengths: {out['test_share']:.0%}) say a line that occurs "
            "word for word in their fold's training part")
    if "text" in modalities and share > warn_above:
        out.update(level="warning", message=(
            f"{what}: a model that reads text can recognise the line instead of the emotion, so this figure is "
            "optimistic; for an honest one run with cv.protocol=script_disjoint (training leaves those lines out) or, "
            "on IEMOCAP, data.subset=improvised"))
    else:
        out.update(level="information", message=what + ("" if "text" in modalities else " (this model reads no text)"))
    return out


def _disjoint(fold: FoldSplit, df: pd.DataFrame, column: str | None) -> FoldSplit:
    out, removed = script_disjoint(fold, df, column)
    out.protocol = {"name": "script_disjoint", "removed_from_train": removed,
                    "rule": "training items whose normalised transcript occurs in this fold's validation or test part "
                            "are left out of training"}
    return out


def write_run_audit(run_dir: Path, cfg: dict, audits: list[dict], modalities: tuple[str, ...] = ("audio",),
                    text_store: TextStore | None = None, policy: Policy | None = None) -> None:
    text = None
    if text_store is not None:
        tc = text_store.cfg
        source = (f"manual (column {tc.read_column!r})" if tc.source == "manual" else
                  f"ASR (column {tc.read_column!r} from 'emofuse transcribe', which never reads labels)")
        text = (f"frozen encoder {Path(str(text_store.dir)).name} (never trained); token embeddings computed once per "
                f"distinct transcript, the same for every fold, and no label reaches the encoder; transcripts: {source}")
    record = {
        "passed": all(a["passed"] for a in audits),
        "folds": [{"fold": a["fold"], "passed": a["passed"], "test_groups": a["test_groups"], "counts": a["counts"],
                   "speakers": a["speakers"]} for a in audits],
        "guarantees": {
            "split_unit": f"speaker (scheme: {audits[0]['scheme']}); a random utterance split is not offered",
            "normalisation": "z-score statistics fitted on each fold's training items only (fold_K/norm.json)",
            "model_selection": f"early stopping and checkpoint choice on the validation speakers ({cfg['train'].get('monitor', 'val/macro_f1')})",
            "test_fold": "read once, after training, with the selected checkpoint",
            "augmentation": ("none in this run" if policy is None or not policy.active else
                             f"policy {policy.name}: waveform variants rendered and read for each fold's training items only "
                             "(a guard refuses any other item; list in fold_K/augmented.csv), SpecAugment in training steps "
                             "only; validation and test items are always read clean"),
            "text": text or "not used",
        },
        "modalities": list(modalities),
        "protocol": audits[0].get("protocol", {"name": "standard"})["name"],
        "subset": cfg["data"].get("subset") or "all",
        "transcript_overlap": overlap_summary(audits, modalities, float(cfg["cv"].get("overlap_warn", 0.2))),
        "augmentation": policy.describe() if policy is not None and policy.active else {"policy": "none"},
    }
    write_text_atomic(run_dir / "audit.json", json.dumps(record, indent=2))


def _datasets(ctx: RunContext, split: FoldSplit, augment: FoldAugment | None = None) -> dict[str, FeatureDataset]:
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


def train_fold(ctx: RunContext, k: int, progress: bool = True, callbacks: list | None = None) -> dict | None:
    """Train, select on validation, evaluate on test. Returns the fold's metrics (None off rank 0).

    A fold with ``metrics.json`` is finished and is not touched; a fold with
    ``checkpoints/last.ckpt`` resumes from its last finished epoch and ends as an uninterrupted
    run would (same RNG state; exactly the same with ``train.deterministic=true``). A corrupt
    checkpoint is set aside and the fold resumes from the previous good one (or starts again).
    ``callbacks``: extra Lightning callbacks (e.g. to stop after an epoch).
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from .callbacks import EpochLog, Throughput
    from .module import EmotionModule

    if not 0 <= k < len(ctx.folds):
        raise EmofuseError(f"fold {k} does not exist: this run has folds 0..{len(ctx.folds) - 1}")
    folder = RunFolder(ctx.run_dir)
    fold_dir = folder.fold_dir(k)
    if folder.is_finished(k):
        return json.loads(folder.metrics(k).read_text())
    fold_lock = folder.lock_fold(k) if is_primary_process() else None  # one process trains a fold at a time
    split = ctx.folds[k]
    cfg, tr = ctx.cfg, ctx.cfg["train"]
    seed = int(cfg.get("seed", 0)) + k
    L.seed_everything(seed, workers=True, verbose=False)
    augment = fold_augment(ctx, split, fold_dir)
    datasets = _datasets(ctx, split, augment)
    mean = std = None
    if "audio" in ctx.modalities:
        mean, std = (a.tolist() for a in fit_stats(ctx.store, datasets["train"].keys))
        if is_primary_process():
            write_text_atomic(fold_dir / "norm.json", json.dumps({"fitted_on": "train", "items": len(datasets["train"]),
                                                                   "mean": mean, "std": std}))
    n_classes = len(ctx.classes)
    weights = class_weights(datasets["train"].labels, n_classes).tolist() if tr.get("class_weights", True) else None
    model_cfg = dict(cfg["model"])
    model_name = model_cfg.pop("name")
    module = EmotionModule(model_name, model_cfg, ctx.classes, ctx.store.dim, mean, std,
                           lr=float(tr["lr"]), weight_decay=float(tr["weight_decay"]), scheduler=tr["scheduler"],
                           warmup_epochs=int(tr.get("warmup_epochs", 0)), max_epochs=int(tr["max_epochs"]),
                           class_weights=weights, label_smoothing=float(tr.get("label_smoothing", 0.0)),
                           frontend=ctx.store.describe(), text_dim=ctx.text_store.dim if ctx.text_store else None,
                           text=asdict(ctx.text_store.cfg) if ctx.text_store else None,
                           spec_table=ctx.policy.spec_table() if ctx.policy is not None and ctx.policy.spec_active else None)
    dm = FoldDataModule(datasets, int(cfg["data"]["batch_size"]), int(cfg["data"].get("num_workers", 0)), seed)
    monitor = tr.get("monitor", "val/macro_f1")
    mode = "min" if monitor.endswith("loss") else "max"
    ckdir = folder.checkpoints(k)
    ckpt = ModelCheckpoint(dirpath=ckdir, filename="best", monitor=monitor, mode=mode, save_top_k=1,
                           enable_version_counter=False, auto_insert_metric_name=False)
    throughput = Throughput()
    # Progress bars on a terminal; one line per epoch in logs and pipes.
    progress = progress and sys.stderr.isatty()
    callbacks = [ckpt, last_checkpoint_callback(ckdir), RngState(), throughput, LearningRateMonitor("epoch"),
                 *(callbacks or [])]
    if not progress:
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
    resume = usable_checkpoint(ckdir, k) if is_primary_process() else ckdir / "last.ckpt"
    if resume is not None and resume.is_file():
        print(f"fold {k}: resuming from {resume}", file=sys.stderr)
    else:
        resume = None
    reset_peaks()
    t0 = time.time()
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None, weights_only=True)
    if not trainer.is_global_zero:
        return None
    best = ckdir / "best.ckpt" if (ckdir / "best.ckpt").is_file() else ckdir / "last.ckpt"
    device = torch.device("cuda" if torch.cuda.is_available() and tr.get("accelerator", "auto") != "cpu" else "cpu")
    best_module = _load_module(best, device)  # weights only, as emofuse.load: a checkpoint never runs code
    result = {"fold": k, "test_groups": split.test_groups, "speakers": split.speakers,
              "checkpoint": best.resolve().relative_to(ctx.run_dir.resolve()).as_posix(),
              "best_epoch": _ckpt_epoch(best), "epochs_trained": trainer.current_epoch,
              "best_val_score": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
              "monitor": monitor, "wall_seconds": round(time.time() - t0, 2), **throughput.report()}
    for part in ("val", "test"):
        probs = predict_probs(best_module, datasets[part], int(cfg["data"]["batch_size"]), device)
        y = np.array(datasets[part].labels)
        result[part] = compute_metrics(y, probs.argmax(1), ctx.classes)
        if part == "test":
            seen = seen_in_training(split.parts(), ctx.manifest.df, ctx.text_column)
            masks = subset_masks(split.test, ctx.manifest.df, seen)
            result["subsets"] = {name: compute_metrics(y[m], probs.argmax(1)[m], ctx.classes) for name, m in masks.items()
                                 if m.any()}
            write_predictions(fold_dir / "predictions.csv", split.test, ctx, y, probs, masks)
    plot_confusion(result["test"]["confusion"], ctx.classes, fold_dir / "confusion.png",
                   f"fold {k} test ({', '.join(split.test_groups)})")
    write_fold(fold_dir, result)  # fold_K/provenance.json: versions, commit, device, peak memory
    write_text_atomic(fold_dir / "metrics.json", json.dumps(result, indent=2))
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


def run_cv(ctx: RunContext, folds: list[int] | None = None, jobs: int = 1, progress: bool = True,
           config_arg: str | None = None) -> dict | None:
    """Train every (selected) fold, then summarise. Finished folds are skipped."""
    todo = folds if folds is not None else list(range(len(ctx.folds)))
    pending = [k for k in todo if not (ctx.run_dir / f"fold_{k}" / "metrics.json").is_file()]
    for k in sorted(set(todo) - set(pending)):
        print(f"fold {k}: finished earlier, kept", file=sys.stderr)
    if jobs > 1 and len(pending) > 1:
        _run_parallel(ctx, pending, jobs)
    else:
        for k in pending:
            print(f"fold {k}/{len(ctx.folds) - 1}: test = {', '.join(ctx.folds[k].test_groups)}", file=sys.stderr)
            train_fold(ctx, k, progress)
    if not is_primary_process():
        return None
    return summarize_run(ctx)


def _run_parallel(ctx: RunContext, pending: list[int], jobs: int) -> None:
    """Folds as separate `emofuse train` processes, ``jobs`` at a time (threads split between them)."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # The children train inside this process's run lock (they check that it is their parent's).
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **{PARENT_LOCK_ENV: str(os.getpid())})
    running: list[tuple[int, subprocess.Popen]] = []
    queue = list(pending)
    failed = []
    while queue or running:
        while queue and len(running) < jobs:
            k = queue.pop(0)
            cmd = [sys.executable, "-m", "emofuse", "train", str(ctx.run_dir / "config.yaml"), "--fold", str(k),
                   "--out", str(ctx.run_dir), "--no-progress"]
            log = open(ctx.run_dir / f"fold_{k}" / "train.log", "a")
            print(f"fold {k}: started in a separate process (log: {log.name})", file=sys.stderr)
            running.append((k, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(1.0)
        for k, proc in list(running):
            if proc.poll() is not None:
                running.remove((k, proc))
                if proc.returncode != 0:
                    failed.append(k)
                print(f"fold {k}: {'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'}", file=sys.stderr)
    if failed:
        raise EmofuseError(f"folds {failed} failed; see {ctx.run_dir}/fold_K/train.log, then re-run the same command to resume")


def summarize_run(ctx: RunContext) -> dict | None:
    """Aggregate finished folds into summary.json, results.md and confusion.png (only for a run
    whose leakage audit passed)."""
    audit = ctx.run_dir / "audit.json"
    if not audit.is_file() or json.loads(audit.read_text()).get("passed") is not True:
        raise LeakageError(f"{audit}: missing or failed; a run whose leakage audit fails gets no summary")
    fold_metrics = []
    for k in range(len(ctx.folds)):
        p = ctx.run_dir / f"fold_{k}" / "metrics.json"
        if p.is_file():
            fold_metrics.append(json.loads(p.read_text()))
    if not fold_metrics:
        return None
    complete = len(fold_metrics) == len(ctx.folds)
    summary = summarize([m["test"] for m in fold_metrics], ctx.classes)
    summary.update({
        "complete": complete, "folds_done": [m["fold"] for m in fold_metrics], "n_folds": len(ctx.folds),
        "model": ctx.cfg["model"]["name"], "modalities": list(ctx.modalities),
        "text_encoder": ctx.text_store.cfg.encoder if ctx.text_store else None,
        "augmentation": ctx.policy.name if ctx.policy is not None and ctx.policy.active else "none", "classes": ctx.classes,
        "corpus": ctx.manifest.meta.get("corpus"), "manifest": str(ctx.manifest.path),
        "scheme": ctx.folds[0].scheme, "name": ctx.cfg.get("name"),
        "train_utt_per_s": float(np.mean([m["train_utt_per_s"] or 0 for m in fold_metrics])),
        "wall_seconds": float(sum(m["wall_seconds"] for m in fold_metrics)),
        "per_fold": [{"fold": m["fold"], "test_groups": m["test_groups"], "best_epoch": m["best_epoch"],
                      **{k: m["test"][k] for k in HEADLINE}} for m in fold_metrics],
        "protocol": ctx.folds[0].protocol["name"], "subset": ctx.cfg["data"].get("subset") or "all",
        "transcript_overlap": json.loads(audit.read_text()).get("transcript_overlap", {"available": False}),
        "subsets": pooled_subsets(ctx, [m["fold"] for m in fold_metrics]),
    })
    write_text_atomic(ctx.run_dir / ("summary.json" if complete else "summary.partial.json"), json.dumps(summary, indent=2))
    write_text_atomic(ctx.run_dir / "results.md", results_markdown(summary))
    plot_confusion(summary["confusion"], ctx.classes, ctx.run_dir / "confusion.png",
                   f"{summary['model']}: all folds pooled")
    return summary


def pooled_subsets(ctx: RunContext, folds: list[int]) -> dict:
    """Metrics on the test subsets (scripted / improvised, transcript seen / unseen in training),
    over the finished folds' test predictions pooled (a subset is small in any one fold)."""
    tables = [pd.read_csv(ctx.run_dir / f"fold_{k}" / "predictions.csv") for k in folds]
    table = pd.concat(tables, ignore_index=True)
    cls = {c: i for i, c in enumerate(ctx.classes)}
    out = {}
    for col in [c for c in table.columns if c.startswith("in_")]:
        rows = table[table[col] == 1]
        if len(rows):
            m = compute_metrics(rows["label"].map(cls).to_numpy(), rows["pred"].map(cls).to_numpy(), ctx.classes)
            out[col[3:]] = {"n": int(len(rows)), **{k: m[k] for k in HEADLINE}, "per_class_f1": m["per_class_f1"]}
    return out


def results_markdown(summary: dict) -> str:
    from ..report import md_text as t  # labels, speakers and names are data: no live HTML, no broken tables

    lines = [f"# {t(summary.get('name') or summary['model'])}: {t(summary['corpus'])}, {summary['n_folds']} speaker-independent folds"
             f" ({t(summary['scheme'])}){'' if summary['complete'] else ' (PARTIAL)'}", "",
             f"Model {t(summary['model'])}, modalities: {t(' + '.join(summary.get('modalities', ['audio'])))}"
             + (f" (text encoder: {t(summary['text_encoder'])})" if summary.get("text_encoder") else "")
             + f"; augmentation: {t(summary.get('augmentation', 'none'))}", "",
             "| fold | test | Macro-F1 | UA | WA | best epoch |", "|---|---|---|---|---|---|"]
    for f in summary["per_fold"]:
        lines.append(f"| {f['fold']} | {t(', '.join(f['test_groups'])[:40])} | {f['macro_f1']:.3f} | {f['ua']:.3f} | {f['wa']:.3f} | {f['best_epoch']} |")
    lines.append("| **mean ± std** | | " + " | ".join(f"**{summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}**" for k in HEADLINE) + " | |")
    lines += ["", "| class | F1 (mean ± std) |", "|---|---|"]
    lines += [f"| {t(c)} | {v['mean']:.3f} ± {v['std']:.3f} |" for c, v in summary["per_class_f1"].items()]
    lines += ["", "## Protocol, transcript overlap and test subsets", ""] + [f"- {t(ln)}" for ln in overlap_lines(summary)]
    return "\n".join(lines) + "\n"
