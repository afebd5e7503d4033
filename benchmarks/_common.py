"""Shared by the benchmark scripts: the machine line, RAVDESS + noise-bank preparation, and the
result records (``benchmarks/results/NAME.json``) that the README tables are rendered from."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RAVDESS = REPO.parent / "shared" / "data" / "ravdess"
RESULTS = REPO / "benchmarks" / "results"


def commit() -> str:
    """The checkout's short commit, with ``+dirty`` when tracked files other than the records
    (benchmarks/results/, which benchmarks rewrite) differ from it ("unknown" outside git)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"],
                               cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_flags() -> list[str]:
    """The CPU features that decide which speed switches can pay off (Linux /proc/cpuinfo)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def peak_rss_mib() -> int:
    """Peak resident memory of this process and of its finished children, in MiB (Linux: ru_maxrss in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024)


def fp32_peak_gflops() -> dict:
    """This CPU's fp32 multiply-add peak at its reported clock: cores x MHz x FLOP per cycle, where
    AVX-512 gives 64 and AVX2 + FMA 32 (two 256-bit FMA pipes, as on Zen 2-4 and Intel since
    Haswell; an assumption, stated in the result). Linux /proc/cpuinfo; empty if unknown."""
    try:
        mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("cpu MHz")]
    except OSError:
        return {}
    flags = cpu_flags()
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= set(flags) else 16
    if not mhz:
        return {}
    return {"gflops": round(len(mhz) * mhz[0] * per_cycle / 1000, 1), "cores": len(mhz), "mhz": round(mhz[0]),
            "flop_per_cycle": per_cycle}


def train_gflop_per_clip(model: str, frames: int, n_mels: int = 64, n_classes: int = 4, **kwargs) -> float:
    """Forward + backward GFLOP of one training clip of ``frames`` frames (convolutions and matrix
    products, counted by torch's FlopCounterMode on a batch of 8)."""
    from torch.utils.flop_counter import FlopCounterMode

    from emofuse.models import create_model

    m = create_model(model, n_classes=n_classes, n_mels=n_mels, **kwargs)
    x, lengths = torch.randn(8, frames, n_mels), torch.full((8,), frames)
    with FlopCounterMode(display=False) as counter:
        m(x, lengths).sum().backward()
    return counter.get_total_flops() / 8 / 1e9


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded: what else was running while a figure was made."""
    return [round(x, 2) for x in os.getloadavg()]


def hwm_mib() -> float:
    """This process's peak resident memory so far (VmHWM), in MiB (Linux)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def write_record(name: str, record: dict, quick: bool = False, merge_on: tuple[str, ...] | None = None) -> Path | None:
    """Write ``benchmarks/results/NAME.json`` (commit, date and machine added), unless a ``quick``
    smoke run: those print but never replace a record.

    With ``merge_on`` (fields of ``record["runs"]`` entries), runs of the existing record whose key
    is not in this call are kept, so re-running one row (``--models resnet18``) updates that row
    alone; every run carries its own commit, date, machine and command line, since the rows of one
    record may come from different calls (and machines)."""
    stamp = {"commit": commit(), "date": time.strftime("%Y-%m-%d"), "machine": machine(), "invoked": invocation()}
    record = {"experiment": name, **{k: stamp[k] for k in ("commit", "date", "machine")},
              **{k: v for k, v in record.items() if k != "experiment"}}
    record["runs"] = [{**stamp, **r} for r in record.get("runs", [])]
    if quick:
        print(json.dumps(record, indent=2)[:4000])
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    if merge_on and path.is_file():
        new_keys = {tuple(r.get(k) for k in merge_on) for r in record["runs"]}
        kept = [r for r in json.loads(path.read_text()).get("runs", []) if tuple(r.get(k) for k in merge_on) not in new_keys]
        record["runs"] = kept + record["runs"]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(portable(record), indent=2) + "\n")  # no path of this machine in a committed record
    os.replace(tmp, path)
    return path


def run_entry(summary: dict, run_dir: Path, **extra) -> dict:
    """What a record keeps of one finished CV run: its config, headline metrics (mean, std and per
    fold), per-class F1 (mean and per fold), the pooled confusion matrix, the validation scores of
    the selected epochs (mean and per fold), wall time, throughput, the commits the folds were
    trained at and the peak memory of their training (this process's where the folds did not
    record it)."""
    import yaml

    run_dir = Path(run_dir)
    per_class_fold, epochs_run, val, trained, peaks = {}, {}, {}, set(), []
    for f in summary.get("per_fold", []):
        prov = run_dir / f"fold_{f['fold']}" / "provenance.json"
        if prov.is_file():  # the code a fold was trained with and its peak memory (a record may be re-collected later)
            p = json.loads(prov.read_text())
            trained.add(str(p.get("git_commit") or "unknown")[:7])
            if isinstance(p.get("peak_rss_mib"), (int, float)):
                peaks.append(p["peak_rss_mib"])
        m = run_dir / f"fold_{f['fold']}" / "metrics.json"
        if m.is_file():
            metrics = json.loads(m.read_text())
            per_class_fold[f["fold"]] = metrics["test"].get("per_class_f1")
            epochs_run[f["fold"]] = metrics.get("epochs_trained")
            if metrics.get("val"):
                val[f["fold"]] = metrics["val"]
    cfg_path = run_dir / "config.yaml"
    try:
        run = str(run_dir.resolve().relative_to(REPO))
    except ValueError:
        run = run_dir.name
    return {"run": run, "model": summary.get("model"), "modalities": summary.get("modalities"),
            "classes": summary.get("classes"), "folds": f"{len(summary.get('folds_done', []))}/{summary.get('n_folds')}",
            **{k: summary[k] for k in ("macro_f1", "ua", "wa", "per_class_f1")},
            "confusion": summary.get("confusion"),  # pooled over folds; rows: true class, in "classes" order
            "per_fold": [{**f, "per_class_f1": per_class_fold.get(f["fold"]), "epochs_run": epochs_run.get(f["fold"]),
                          **{f"val_{k}": val[f["fold"]][k] for k in ("macro_f1", "ua") if k in val.get(f["fold"], {})}}
                         for f in summary.get("per_fold", [])],
            # the validation speakers' scores of the selected epochs: what a recipe may be chosen on
            "val": {k: {"mean": float(np.mean([v[k] for v in val.values()])), "per_fold": [round(v[k], 4) for v in val.values()]}
                    for k in ("macro_f1", "ua")} if val else None,
            "wall_seconds": summary.get("wall_seconds"), "train_utt_per_s": summary.get("train_utt_per_s"),
            # the training processes' peak (fold provenance), else this process's
            "peak_rss_mib": round(max(peaks)) if peaks else peak_rss_mib(), "trained_commits": sorted(trained),
            "config": yaml.safe_load(cfg_path.read_text()) if cfg_path.is_file() else None, **extra}


def read_summary(run_dir: Path) -> dict:
    """A run folder's ``summary.json``, or ``summary.partial.json`` while some folds are still to train."""
    full = Path(run_dir) / "summary.json"
    return json.loads((full if full.is_file() else full.with_name("summary.partial.json")).read_text())


def show_record(name: str, path: Path | None, record: dict) -> None:
    """Print the README table of record ``name``: the written record, or (a smoke run, ``path`` None)
    the unwritten one."""
    from render_tables import RENDERERS

    rec = json.loads(path.read_text()) if path is not None else {"commit": "smoke run", "date": "-", "machine": machine(), **record}
    print(RENDERERS[name](rec))


def portable(value):
    """``value`` (a record, or any part of one) with absolute paths made machine-independent: a path
    inside a ``bench_out`` folder from that folder on, one inside this checkout relative to it, one
    beside it (``../shared/data``) relative to its parent; other absolute paths as their name."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str) and " /" in value:  # a command line: each path in it (a lone "/" is no path)
        return " ".join(portable(word) if len(word) > 1 else word for word in value.split(" "))
    if isinstance(value, str) and value.startswith("-") and "=/" in value:
        flag, path = value.split("=", 1)
        return f"{flag}={portable(path)}"
    if not (isinstance(value, str) and value.startswith("/")):
        return value
    if "/bench_out/" in value:
        return "bench_out/" + value.split("/bench_out/", 1)[1]
    for root, prefix in ((REPO, ""), (REPO.parent, "../")):
        try:
            return prefix + Path(value).relative_to(root).as_posix()
        except ValueError:
            continue
    return Path(value).name


def invocation() -> str:
    """This benchmark's command line as a user types it: ``python benchmarks/NAME.py ARGS`` (paths
    made portable)."""
    import shlex

    return shlex.join(["python", portable(str(Path(sys.argv[0]).resolve())), *map(portable, sys.argv[1:])])


def machine() -> str:
    """What a figure was measured on: CPU architecture, torch threads and version, GPU if any."""
    return f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, " + (
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only")


def ravdess_manifest(ravdess: str | Path, out: Path, task: int = 8) -> Path | None:
    """Prepare RAVDESS ``task``-class under ``out/manifest<task>`` (idempotent); None (with a message) if absent."""
    from emofuse.prepare import prepare

    if not Path(ravdess).is_dir():
        print(f"RAVDESS not found at {ravdess}; pass --ravdess DIR", file=sys.stderr)
        return None
    manifest = out / f"manifest{task}"
    prepare("ravdess", Path(ravdess), manifest, class_map=f"ravdess{task}")
    return manifest


def chosen(arg: str, known, what: str) -> list[str] | None:
    """The comma-separated names of ``arg``, or None (with a one-line message) if one is not in ``known``."""
    names = arg.split(",")
    bad = [n for n in names if n not in known]
    if bad:
        print(f"unknown {what} {bad[0]!r}; known: {', '.join(known)}", file=sys.stderr)
        return None
    return names


def noise_bank(folder: Path, per_kind: int = 4) -> Path:
    """A synthetic MUSAN-layout noise bank (written once), for when MUSAN is not at hand."""
    from emofuse.synth import make_noise_folder

    if not (folder / "SYNTHETIC_NOISE.json").is_file():
        make_noise_folder(folder, per_kind=per_kind)
    return folder


def _tree_rss(root: int) -> int:
    """Proportional resident bytes (PSS: shared pages split between their users, so the
    libraries every worker maps count once) of ``root`` and all its descendants (Linux /proc)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_step(name: str, args: list[str], interval: float = 0.2, cwd: Path | None = None) -> dict:
    """Run ``emofuse ARGS`` (in folder ``cwd``, default this one); wall time and peak tree memory,
    sampled every ``interval`` seconds.

    Reading PSS (``smaps_rollup``) walks every page of every process in the tree: with two 2 GiB
    trainers it took about half a core at 0.2 s, so long CPU-bound runs sample every few seconds
    (their memory is steady) and the sampler's own CPU time is returned (``sampler_cpu_s``)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "emofuse", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env=env, cwd=cwd)
    peak, cpu = [0], [0.0]

    def sample():
        while p.poll() is None:
            peak[0] = max(peak[0], _tree_rss(p.pid))
            cpu[0] = time.thread_time()
            time.sleep(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = p.communicate()[0]
    th.join()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        print(out[-3000:], file=sys.stderr)
        raise SystemExit(f"step {name} failed (exit {p.returncode})")
    last = [line for line in out.splitlines() if line.strip()][-1:]
    print(f"{name}: {wall:.0f} s, peak {peak[0] / 2**20:.0f} MiB | {last[0][:160] if last else ''}", file=sys.stderr)
    return {"step": name, "wall_s": round(wall, 1), "peak_mib": round(peak[0] / 2**20), "sampler_cpu_s": round(cpu[0], 1),
            "output": out[-4000:]}
