"""``emofuse demo``: synthetic corpus -> manifest -> short 5-fold CV of an audio model -> table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .config import load_config
from .prepare import prepare
from .summary import render
from .synth import SynthSpec, make_synthetic_corpus
from .training.lifecycle import open_run
from .training.scheduler import run_cv


def run_demo(out: Path, overwrite: bool = False, overrides: list[str] | None = None) -> int:
    t0 = time.time()
    corpus, manifest, run_dir = out / "corpus", out / "manifest", out / "runs" / "demo"
    if not (corpus / "SYNTHETIC.json").is_file():
        print(f"[1/3] writing the synthetic corpus to {corpus}", file=sys.stderr)
        make_synthetic_corpus(corpus, SynthSpec())
    else:
        print(f"[1/3] synthetic corpus already in {corpus}", file=sys.stderr)
    summary = prepare("iemocap", corpus, manifest)
    print("[2/3] " + "\n".join(summary.lines()), file=sys.stderr)
    cfg = load_config("demo", [f"data.manifest={manifest}", *(overrides or [])])
    print(f"[3/3] 5-fold leave-one-session-out CV of {cfg['model']['name']} -> {run_dir}", file=sys.stderr)
    ctx = open_run(cfg, run_dir, overwrite)
    result = run_cv(ctx)
    if result is not None:
        print(render(result, "text", run_dir), end="")
    print(f"demo finished in {time.time() - t0:.0f} s")
    return 0
