"""Benchmark: real-time factor on CPU for every registered model (seconds of compute per second of audio).

Untrained models of the shipped sizes (speed does not depend on the weights), through the
whole path a user runs: decode is left out, log-mel front end + model + softmax are timed,
on 8 s windows of synthetic speech-like audio, batch 1, after a warm-up. Text and fusion
models get a cached 12-token transcript embedding (the frozen encoder runs once per text and
is timed separately).

    python benchmarks/realtime_factor.py
    python benchmarks/realtime_factor.py --seconds 4 --repeats 20 --threads 1

Writes ``benchmarks/results/realtime_factor.json``, the record the READMEs' table is rendered from
(``--no-record``: print only).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import load_average, show_record, write_record
from emofuse.config import load_config
from emofuse.features import FrontendConfig, LogMel
from emofuse.models import list_models, model_modalities
from emofuse.synth import _voice
from emofuse.training.module import EmotionModule


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-record", action="store_true", help="print only; leave the record alone")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sr = 16000
    wave = torch.from_numpy(_voice(np.random.default_rng(0), sr, args.seconds, 180.0, 0.1, 0.8, 4.0, 0.6, 0.04))[None]
    frontend = LogMel(FrontendConfig())
    text = torch.randn(1, 12, 384)
    before, rows = load_average(), []
    for name in list_models():
        full = load_config(name)
        cfg = full["model"]
        cfg.pop("name")
        # heads over a frozen encoder's features: only the head is timed here (the encoder is timed apart)
        encoder = (full.get("features") or {}).get("kind")
        mods = model_modalities(name)
        module = EmotionModule(name, cfg, ["a", "b", "c", "d"], 64, text_dim=384 if "text" in mods else None,
                               text={"encoder": "all-minilm-l6-v2", "max_tokens": 64} if "text" in mods else None).eval()
        params = sum(p.numel() for p in module.model.parameters())

        def once():
            with torch.no_grad():
                inputs = {}
                if "audio" in mods:
                    x, frames = frontend(wave, torch.tensor([wave.shape[1]]))
                    inputs.update(x=x, lengths=frames)
                if "text" in mods:
                    inputs.update(text=text, text_lengths=torch.tensor([12]))
                return torch.softmax(module(**inputs), 1)

        once()
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            once()
        dt = (time.perf_counter() - t0) / args.repeats
        rows.append({"model": name, "parameters": params, "seconds_per_clip": round(dt, 5),
                     **({"head_only_over": encoder} if encoder else {})})
    from emofuse.text import TextEncoder

    enc = TextEncoder()
    enc.encode(["warm up"])
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        enc.encode(["I can't believe you did that, it is completely unacceptable."])
    record = {"command": "python benchmarks/realtime_factor.py --threads 1", "clip_seconds": args.seconds, "repeats": args.repeats,
              "threads": torch.get_num_threads(), "text_encoder": "all-MiniLM-L6-v2",
              "text_encoder_ms": round((time.perf_counter() - t0) / args.repeats * 1000, 2),
              "load_average": {"before": before, "after": load_average()}, "runs": rows}
    show_record("realtime_factor", write_record("realtime_factor", record, quick=args.no_record), record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
