"""A run's lifecycle: create or reopen its folder, check the config and inputs, plan and audit
the folds, and cache what the folds read. ``open_run`` returns the ``RunContext`` every fold
step receives. (The run folder's layout is owned by ``emofuse.runfolder``.)"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..atomic import write_text_atomic
from ..augment import Policy, load_policy
from ..config import dump_config
from ..errors import EmofuseError
from ..features import FeatureStore, WhisperFeatureStore
from ..manifest import Manifest, read_manifest
from ..models import model_modalities
from ..runfolder import RunFolder, manifest_table
from ..schema import check_config
from ..splits import FoldSplit, audit_split, make_folds, read_split, require_passed, write_split
from ..subsets import script_disjoint, select_subset, transcript_column
from ..text import TextStore
from .inputs import audio_store, cache_audio, text_inputs

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
    read_column: str | None = None  # the manifest column the text branch reads (None without text)

    @property
    def classes(self) -> list[str]:
        return self.manifest.classes


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
    ctx, texts = checked_inputs(cfg, run_dir)
    primary = is_primary_process()
    if primary:
        _claim_folder(ctx, overwrite, fold)
    # Folds and their audit first: a leaking split stops before any feature is computed.
    folder = RunFolder(run_dir)
    ctx.folds, audits = plan_folds(ctx, folder)
    if primary:
        for f, a in zip(ctx.folds, audits):
            write_split(f, ctx.manifest.df, folder.fold_dir(f.fold), a)
        write_run_audit(run_dir, ctx.cfg, audits, ctx.modalities, ctx.text_store, ctx.policy)
    require_passed(audits, run_dir / "audit.json")
    _cache_inputs(ctx, texts, primary)
    return ctx


def checked_inputs(cfg: dict, run_dir: Path) -> tuple[RunContext, list[str] | None]:
    """The config checked, the manifest read, the stores and policy opened; nothing written.
    Returns the context (no folds yet) and the text branch's transcripts (None without text)."""
    cfg = check_config(cfg)  # every group typed and checked before anything is written
    if cfg["data"].get("manifest") in (None, ""):
        raise EmofuseError("data.manifest is not set: add data.manifest=DIR (a folder written by 'emofuse prepare') to the command")
    manifest = read_manifest(cfg["data"]["manifest"])
    manifest.df = select_subset(manifest.df, cfg["data"].get("subset"))  # e.g. IEMOCAP's improvised dialogues only
    modalities = model_modalities(cfg["model"]["name"])
    store = audio_store(cfg, manifest, cfg["data"].get("cache_dir"))
    policy = load_policy(cfg.get("augment"), manifest.classes)  # a bad policy fails before any work
    if policy.active and "audio" not in modalities:
        raise EmofuseError(f"augment.policy={policy.name}: model {cfg['model']['name']!r} reads no audio; set augment.policy=none")
    if policy.active and not isinstance(store, FeatureStore):
        raise EmofuseError(f"augment.policy={policy.name} renders log-mel variants; with features.kind="
                           f"{store.cfg.kind} set augment.policy=none (augmenting Whisper features is not supported)")
    text = None
    if "text" in modalities:  # checked before any audio work, so a missing transcript fails fast
        text = text_inputs(cfg, manifest, cfg["data"].get("cache_dir"))
    text_column = transcript_column(manifest.df, text.cfg.read_column if text else None)
    ctx = RunContext(cfg, run_dir, manifest, store, [], modalities, text.store if text else None,
                     dict(zip(manifest.df["utt_id"], text.keys)) if text else None, policy, text_column,
                     text.cfg.read_column if text else None)
    return ctx, (text.texts if text else None)


def _claim_folder(ctx: RunContext, overwrite: bool, fold: int | None) -> None:
    """Lock the run folder; clear it (``overwrite``, or an untrained run with another config);
    refuse another config or manifest; record the config and inputs of a new run."""
    cfg, run_dir, manifest = ctx.cfg, ctx.run_dir, ctx.manifest
    folder = RunFolder(run_dir)
    table = manifest_table(manifest.df, ctx.read_column)
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


def plan_folds(ctx: RunContext, folder: RunFolder | None = None) -> tuple[list[FoldSplit], list[dict]]:
    """The run's folds and their leakage audits (nothing written). A fold already in ``folder``
    keeps the split it was made with (its results rest on it); every fold is re-audited."""
    manifest, cv = ctx.manifest, ctx.cfg["cv"]
    folds = make_folds(manifest.df, manifest.meta.get("corpus", ""), cv.get("scheme", "auto"), cv.get("n_folds"),
                       cv.get("val_speakers"), int(cv.get("seed", 0)), cv.get("test_corpus"))
    if cv.get("protocol") == "script_disjoint":
        folds = [_disjoint(f, manifest.df, ctx.text_column) for f in folds]
    if folder is not None:
        folds = [read_split(folder.fold_dir(f.fold)) if all((folder.fold_dir(f.fold) / n).is_file() for n in
                                                             ("split.csv", "audit.json")) else f for f in folds]
    min_words = int(cv.get("overlap_min_words", 3))
    near = manifest.near_duplicates()
    return folds, [audit_split(f, manifest.df, ctx.text_column, min_words, near) for f in folds]


def _cache_inputs(ctx: RunContext, texts: list[str] | None, primary: bool) -> None:
    """Compute the missing text embeddings and audio features (in the primary process only)."""
    if ctx.text_store is not None:
        if primary:
            ctx.text_store.ensure(texts)
        elif ctx.text_store.missing(list(ctx.text_keys.values())):
            raise EmofuseError(f"{ctx.text_store.dir}: text embeddings missing in a worker process; run once without DDP to cache them")
    if "audio" in ctx.modalities:
        if primary:
            cache_audio(ctx.store, ctx.manifest, ctx.cfg["data"].get("feature_workers"))
        elif ctx.store.missing(ctx.manifest.df["audio_sha1"].tolist()):
            raise EmofuseError(f"{ctx.store.dir}: features missing in a worker process; run the command once without DDP to cache them")


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
