"""``--dry-run``: what a cv / train command would do, without training or touching the run folder:
the resolved config, the folds (test and validation speakers, item counts, audit) and an
estimated time, from a measured training step on this machine."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..config import dump_config
from ..features import FeatureStore
from ..runfolder import RunFolder
from ..summary import speakers_cell
from .lifecycle import RunContext, checked_inputs, plan_folds

EVAL_COST = 1 / 3  # a forward pass costs about a third of a training step (forward + backward + update)


def dry_run(cfg: dict, run_dir: Path, folds: list[int] | None = None) -> str:
    """The dry run's report as text (nothing trained; the run folder is neither created nor changed)."""
    ctx, _ = checked_inputs(cfg, run_dir)
    folder = RunFolder(run_dir)
    ctx.folds, audits = plan_folds(ctx, folder if folder.config.is_file() else None)
    todo = folds if folds is not None else list(range(len(ctx.folds)))
    lines = [f"# resolved config ({'existing run' if folder.config.is_file() else 'new run'}: {run_dir})",
             dump_config(ctx.cfg).rstrip(), "",
             f"# folds: {len(ctx.folds)} ({ctx.folds[0].scheme}), audit "
             f"{'passed' if all(a['passed'] for a in audits) else 'FAILED (the run would stop here)'}",
             f"{'fold':>4}  {'test speakers':<24} {'val speakers':<20} {'train':>6} {'val':>5} {'test':>5}  state"]
    for f, a in zip(ctx.folds, audits):
        if f.fold not in todo:
            continue
        c = a["counts"]
        state = "finished" if folder.is_finished(f.fold) else "resumes" if (folder.checkpoints(f.fold) / "last.ckpt").is_file() else "to train"
        lines.append(f"{f.fold:>4}  {speakers_cell(f.test_groups, 24):<24} {speakers_cell(f.speakers.get('val', []), 20):<20} "
                     f"{c['train']:>6} {c['val']:>5} {c['test']:>5}  {state}")
    pending = [f for f in ctx.folds if f.fold in todo and not folder.is_finished(f.fold)]
    lines += ["", "# estimate", estimate(ctx, pending), "",
              "dry run: nothing trained, no run folder written; drop --dry-run to train"]
    return "\n".join(lines) + "\n"


def estimate(ctx: RunContext, folds: list) -> str:
    """Training time of ``folds`` from one measured training step of the configured model on a
    batch of typical length (this machine, CPU or the first GPU): every fold trains ``max_epochs``
    epochs over its training items and reads its validation items each epoch. Feature caching and
    early stopping are not counted (the first adds once per corpus, the second can only shorten)."""
    if not folds:
        return "nothing left to train"
    epochs = int(ctx.cfg["train"]["max_epochs"])
    items = sum(len(f.train) + EVAL_COST * len(f.val) for f in folds) * epochs + EVAL_COST * sum(len(f.test) for f in folds)
    if "text" in ctx.modalities or not isinstance(ctx.store, FeatureStore):
        return (f"{len(folds)} fold(s) x {epochs} epochs, {int(items)} item passes; no measured step for this model "
                "(a dry run loads no pretrained encoder): time one epoch with train.max_epochs=1")
    per_item, batch, frames = measure_step(ctx)
    seconds = per_item * items
    return (f"~{_minutes(seconds)} for {len(folds)} fold(s) x {epochs} epochs ({int(items)} item passes at "
            f"{per_item * 1000:.1f} ms per item: one measured training step, batch {batch} x {frames} frames); "
            "feature caching not included, early stopping can only shorten it")


def measure_step(ctx: RunContext, repeats: int = 3) -> tuple[float, int, int]:
    """Seconds per item of a training step (forward, backward, update) on random log-mel input of
    the corpus's median clip length (cropped as training crops it). Returns (s/item, batch, frames)."""
    import torch

    from .fold import build_module

    data = ctx.cfg["data"]
    batch = int(data["batch_size"])
    seconds = float(np.median(ctx.manifest.df["duration"])) if "duration" in ctx.manifest.df else 3.0
    if data.get("crop_seconds"):
        seconds = min(seconds, float(data["crop_seconds"]))
    frames = max(8, int(seconds / ctx.store.frame_seconds))

    class _Labels:  # build_module reads the training labels for the class weights only
        labels = list(range(len(ctx.classes)))

    module = build_module(ctx, _Labels(), None, None)
    device = torch.device("cuda" if torch.cuda.is_available() and ctx.cfg["train"].get("accelerator", "auto") != "cpu" else "cpu")
    module = module.to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    x = torch.randn(batch, frames, ctx.store.dim, device=device)
    lengths = torch.full((batch,), frames, device=device)
    y = torch.randint(0, len(ctx.classes), (batch,), device=device)
    times = []
    for _ in range(repeats + 1):  # the first step warms up (allocations, kernels) and is not counted
        t0 = time.perf_counter()
        opt.zero_grad()
        module.loss_fn(module(x=x, lengths=lengths), y).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) / batch, batch, frames


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(1, round(seconds / 60))} min" if seconds >= 60 else f"{seconds:.0f} s"
