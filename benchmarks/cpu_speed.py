"""Benchmark (issue #23): CPU training-step speed of the audio models under each speed switch,
side by side in one process, so the ratios compare like with like.

For each model (the shipped model configs: ``configs/model/*.yaml``) it times a full training
step (forward, cross-entropy, backward, AdamW step) on a batch of log-mel crops shaped like
training batches (``--batch`` clips of ``--seconds`` s: 100 frames per second x 64 mels), for:

- ``fp32``:           today's default;
- ``bf16-autocast``:  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (what Lightning's
                      ``train.precision=bf16-mixed`` does on CPU);
- ``channels_last``:  conv models only, input and weights in NHWC memory order;
- ``compile``:        ``torch.compile(model)`` (the first steps, compilation, are not timed);
- ``threads=1``:      one intra-op thread instead of all cores.

Variants are interleaved over ``--rounds`` rounds (each round times every variant once) and the
median step time is kept, so a neighbour's load shifts all variants alike. The CPU's flags are
recorded: bf16 is only fast where the CPU has native bf16 (AVX-512 BF16 or AMX).

    python benchmarks/cpu_speed.py                       # writes benchmarks/results/cpu_speed.json
    python benchmarks/cpu_speed.py --quick               # a smoke run; writes no record
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from torch import nn

from _common import cpu_flags, load_average, machine as describe_machine, write_record
from emofuse.models import create_model

REPO = Path(__file__).resolve().parents[1]
MODELS = ("resnet18", "cnn_bilstm", "audio_transformer")
VARIANTS = ("fp32", "bf16-autocast", "channels_last", "compile", "threads=1")


def model_kwargs(name: str) -> dict:
    """The shipped model config's settings (``configs/model/NAME.yaml``), minus the name."""
    cfg = yaml.safe_load((REPO / "configs" / "model" / f"{name}.yaml").read_text()) or {}
    cfg = cfg.get("model", cfg)
    return {k: v for k, v in cfg.items() if k != "name"}


class Step:
    """One timed training step of ``model`` under a variant; ``__call__`` returns seconds."""

    def __init__(self, name: str, variant: str, batch: int, frames: int, n_classes: int = 8) -> None:
        torch.manual_seed(0)
        self.variant = variant
        self.model: nn.Module = create_model(name, n_mels=64, n_classes=n_classes, **model_kwargs(name))
        self.x = torch.randn(batch, frames, 64)
        self.lengths = torch.full((batch,), frames)
        self.y = torch.randint(0, n_classes, (batch,))
        if variant == "channels_last":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.forward = torch.compile(self.model) if variant == "compile" else self.model

    def __call__(self) -> float:
        threads = torch.get_num_threads()
        if self.variant == "threads=1":
            torch.set_num_threads(1)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.variant == "bf16-autocast" else contextlib.nullcontext()
        try:
            t0 = time.perf_counter()
            with ctx:
                logits = self.forward(self.x, self.lengths)
                loss = nn.functional.cross_entropy(logits.float(), self.y)
            loss.backward()
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            return time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)


def applicable(model: nn.Module, variant: str) -> bool:
    """channels_last only means something for a model with 2-d convolutions."""
    return variant != "channels_last" or any(isinstance(m, nn.Conv2d) for m in model.modules())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=3.0, help="crop length (the benchmarks' data.crop_seconds)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (compilation included)")
    ap.add_argument("--quick", action="store_true", help="tiny batch, 2 rounds; writes no record")
    args = ap.parse_args()
    if args.quick:
        args.batch, args.rounds, args.warmup, args.seconds = 4, 2, 1, 1.0
    frames = int(round(args.seconds * 100)) + 1
    load_before = load_average()
    rows = []
    for name in args.models.split(","):
        steps = {}
        for v in args.variants.split(","):
            s = Step(name, v, args.batch, frames)
            if not applicable(s.model, v):
                continue
            try:
                for _ in range(args.warmup):
                    s()
            except Exception as exc:  # a variant the platform cannot run is reported, not fatal
                rows.append({"model": name, "variant": v, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"})
                print(f"{name} {v}: failed ({rows[-1]['error']})", file=sys.stderr)
                continue
            steps[v] = s
        times: dict[str, list[float]] = {v: [] for v in steps}
        for _ in range(args.rounds):
            for v, s in steps.items():
                times[v].append(s())
        base = statistics.median(times["fp32"]) if "fp32" in times else None
        for v, ts in times.items():
            med = statistics.median(ts)
            rows.append({"model": name, "variant": v, "median_step_s": round(med, 4), "utt_per_s": round(args.batch / med, 1),
                         "speedup_vs_fp32": round(base / med, 3) if base else None, "steps": ts})
            print(f"{name:18s} {v:14s} {med * 1000:8.1f} ms/step  {args.batch / med:7.1f} utt/s"
                  + (f"  x{base / med:.2f}" if base else ""), file=sys.stderr)
    record = {"experiment": "cpu_speed", "command": "python benchmarks/cpu_speed.py", "machine": describe_machine(),
              "cpu_flags": cpu_flags(), "batch": args.batch, "seconds": args.seconds, "rounds": args.rounds,
              "threads": torch.get_num_threads(), "cores": os.cpu_count(),
              "load_average": {"before": load_before, "after": load_average()},
              "runs": rows}
    path = write_record("cpu_speed", record, quick=args.quick)
    print(f"wrote {path}" if path else "quick run: no record written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
