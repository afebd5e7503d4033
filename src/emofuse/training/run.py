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
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from ..atomic import write_text_atomic
from ..augment import AugmentStore, FoldAugment, Policy, load_policy
from ..config import dump_config
from ..errors import EmofuseError
from ..features import FeatureStore, WhisperFeatureStore, feature_config, fit_stats, open_store
from ..inference import _load_module, read_checkpoint
from ..manifest import Manifest, read_manifest
from ..metrics import HEADLINE, compute_metrics, plot_confusion, summarize
from ..models import model_modalities
from ..text import TextConfig, TextStore, text_key
from ..splits import FoldSplit, LeakageError, make_folds, read_split, write_split
from .data import FeatureDataset, FoldDataModule, class_weights, collate, BucketBatchSampler

# Keys that change how a run executes, not what it computes: a resumed run may change them.
EXECUTION_KEYS = {("train", "devices"), ("train", "num_nodes"), ("train", "strategy"), ("train", "accelerator"),
                  ("data", "num_workers"), ("data", "feature_workers"), ("train", "progress_bar"), ("text", "batch_size")}


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


def open_run(cfg: dict, run_dir: Path, overwrite: bool = False) -> RunContext:
    """Create or reopen a run folder, cache the features, write the folds and their audit.

    An existing folder is reopened only for the same config (execution keys aside);
    ``overwrite`` deletes it first.
    """
    if cfg["data"].get("manifest") in (None, ""):
        raise EmofuseError("data.manifest is not set: add data.manifest=DIR (a folder written by 'emofuse prepare') to the command")
    primary = is_primary_process()
    cfg_path = run_dir / "config.yaml"
    if overwrite and run_dir.exists() and primary:
        shutil.rmtree(run_dir)
    if cfg_path.is_file():
        old = yaml.safe_load(cfg_path.read_text())
        diff = _diff_keys(_strip_execution(old), _strip_execution(cfg))
        if diff:
            raise EmofuseError(f"{run_dir} holds a run with another config (differs in {diff[:6]}); "
                               "pass --overwrite to replace it, or --out for a new run folder")
    elif primary:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cfg_path, dump_config(cfg))

    manifest = read_manifest(cfg["data"]["manifest"])
    modalities = model_modalities(cfg["model"]["name"])
    cache = cfg["data"].get("cache_dir") or (manifest.path.parent / "cache")
    store = open_store(cache, frontend_config(cfg))
    keys = manifest.df["audio_sha1"].tolist()
    policy = load_policy(cfg.get("augment"), manifest.classes)  # a bad policy fails before any work
    if policy.active and "audio" not in modalities:
        raise EmofuseError(f"augment.policy={policy.name}: model {cfg['model']['name']!r} reads no audio; set augment.policy=none")
    if policy.active and not isinstance(store, FeatureStore):
        raise EmofuseError(f"augment.policy={policy.name} renders log-mel variants; with features.kind="
                           f"{store.cfg.kind} set augment.policy=none (augmenting Whisper features is not supported)")
    text_store, text_keys = None, None
    if "text" in modalities:  # checked before any audio work, so a missing transcript fails fast
        text_cfg = TextConfig.from_dict(cfg.get("text"))
        texts = transcripts(manifest, text_cfg)
        text_store = TextStore(cache, text_cfg)
        text_keys = dict(zip(manifest.df["utt_id"], (text_key(t) for t in texts)))
        if primary:
            text_store.ensure(texts)
        elif text_store.missing(list(text_keys.values())):
            raise EmofuseError(f"{text_store.dir}: text embeddings missing in a worker process; run once without DDP to cache them")
    if "audio" in modalities:
        if primary:
            store.ensure(keys, [manifest.audio_path(p) for p in manifest.df["path"]], workers=cfg["data"].get("feature_workers"))
        elif store.missing(keys):
            raise EmofuseError(f"{store.dir}: features missing in a worker process; run the command once without DDP to cache them")

    cv = cfg["cv"]
    fold_dirs = sorted(run_dir.glob("fold_*/split.csv"))
    if fold_dirs and all((d.parent / "audit.json").is_file() for d in fold_dirs):
        folds = [read_split(d.parent) for d in sorted(fold_dirs, key=lambda p: int(p.parent.name.split("_")[1]))]
    else:
        folds = make_folds(manifest.df, manifest.meta.get("corpus", ""), cv.get("scheme", "auto"), cv.get("n_folds"),
                           cv.get("val_speakers"), int(cv.get("seed", 0)))
        if primary:
            audits = [write_split(f, manifest.df, run_dir / f"fold_{f.fold}") for f in folds]
            write_run_audit(run_dir, cfg, audits, modalities, text_store, policy)
    return RunContext(cfg, run_dir, manifest, store, folds, modalities, text_store, text_keys, policy)


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


def train_fold(ctx: RunContext, k: int, progress: bool = True) -> dict | None:
    """Train, select on validation, evaluate on test. Returns the fold's metrics (None off rank 0).

    A fold with ``metrics.json`` is finished and is not touched; a fold with
    ``checkpoints/last.ckpt`` resumes from it.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from .callbacks import EpochLog, Throughput
    from .module import EmotionModule

    if not 0 <= k < len(ctx.folds):
        raise EmofuseError(f"fold {k} does not exist: this run has folds 0..{len(ctx.folds) - 1}")
    fold_dir = ctx.run_dir / f"fold_{k}"
    if (fold_dir / "metrics.json").is_file():
        return json.loads((fold_dir / "metrics.json").read_text())
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
            (fold_dir / "norm.json").write_text(json.dumps({"fitted_on": "train", "items": len(datasets["train"]),
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
    ckpt = ModelCheckpoint(dirpath=fold_dir / "checkpoints", filename="best", monitor=monitor, mode=mode,
                           save_last=True, auto_insert_metric_name=False)
    throughput = Throughput()
    # Progress bars on a terminal; one line per epoch in logs and pipes.
    progress = progress and sys.stderr.isatty()
    callbacks = [ckpt, throughput, LearningRateMonitor("epoch")]
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
        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=10,
    )
    last = fold_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        print(f"fold {k}: resuming from {last}", file=sys.stderr)
    t0 = time.time()
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.is_file() else None, weights_only=True)
    if not trainer.is_global_zero:
        return None
    best = Path(ckpt.best_model_path) if ckpt.best_model_path else last
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
            write_predictions(fold_dir / "predictions.csv", split.test, ctx, y, probs)
    plot_confusion(result["test"]["confusion"], ctx.classes, fold_dir / "confusion.png",
                   f"fold {k} test ({', '.join(split.test_groups)})")
    write_text_atomic(fold_dir / "metrics.json", json.dumps(result, indent=2))
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
        record.to_csv(fold_dir / "augmented.csv", index=False)
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


def write_predictions(path: Path, utt_ids: list[str], ctx: RunContext, y: np.ndarray, probs: np.ndarray) -> None:
    df = ctx.manifest.df.set_index("utt_id").loc[utt_ids]
    table = pd.DataFrame({"utt_id": utt_ids, "speaker": df["speaker"].values, "label": [ctx.classes[i] for i in y],
                          "pred": [ctx.classes[i] for i in probs.argmax(1)]})
    for i, c in enumerate(ctx.classes):
        table[f"p_{c}"] = probs[:, i].round(5)
    table.to_csv(path, index=False)


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
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
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
    """Aggregate finished folds into summary.json, results.md and confusion.png."""
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
    })
    write_text_atomic(ctx.run_dir / ("summary.json" if complete else "summary.partial.json"), json.dumps(summary, indent=2))
    (ctx.run_dir / "results.md").write_text(results_markdown(summary))
    plot_confusion(summary["confusion"], ctx.classes, ctx.run_dir / "confusion.png",
                   f"{summary['model']}: all folds pooled")
    return summary


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
    return "\n".join(lines) + "\n"
