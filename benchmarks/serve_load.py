"""Benchmark: `emofuse serve` under load on loopback: latency, throughput, server memory, failures.

The service runs in its own process (``emofuse serve RUN``); N client threads, each with its own
HTTP connection, post clips back to back until the requests are spent. Each clip is a 3 s
44.1 kHz stereo WAV (6 different clips, in turn). The server's memory is its proportional
resident set (PSS, /proc), sampled every 0.1 s. Every answer must be 200: a failed request is
counted and makes the script exit 1.

Without ``--run`` a small run is trained first (the demo model, its shipped size, on a small
synthetic corpus, one fold, 2 epochs: latency depends on the model's size, not on its accuracy).

    python benchmarks/serve_load.py                          # 200 requests, 8 concurrent; writes the record
    python benchmarks/serve_load.py --run runs/demo --requests 500 --clients 16 --concurrency 2
    python benchmarks/serve_load.py --screenshot docs/serve.png   # also a picture of the page after a prediction
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, _tree_rss, machine  # noqa: E402

RECORD = REPO / "benchmarks" / "results" / "serve_load.json"
RUN_ARGS = ["train.max_epochs=2", "train.warmup_epochs=0", "data.feature_workers=1"]


def small_run(work: Path) -> Path:
    """The demo model trained on fold 0 of a small synthetic corpus (once; kept in ``work``)."""
    run = work / "run"
    if (run / "fold_0" / "metrics.json").is_file():
        return run
    from emofuse.prepare import prepare
    from emofuse.synth import SynthSpec, make_synthetic_corpus

    make_synthetic_corpus(work / "corpus", SynthSpec(sessions=5, per_class=4, seed=0))
    prepare("iemocap", work / "corpus", work / "manifest", workers=1)
    r = subprocess.run([sys.executable, "-m", "emofuse", "cv", "demo", f"data.manifest={work / 'manifest'}", *RUN_ARGS,
                        "--folds", "0", "--out", str(run), "--no-progress"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"training the benchmark run failed: {r.stderr[-2000:]}")
    return run


def clip(path: Path, seed: int, seconds: float = 3.0, sr: int = 44100) -> Path:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 15 * seed
    x = sum(0.5 ** k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(5)) * 0.2 * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    x = (x + 0.01 * rng.normal(size=t.size)).astype(np.float32)
    sf.write(path, np.stack([x, 0.8 * x], axis=1), sr, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained run (default: train a small one under --work)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "emofuse-bench-serve"))
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8, help="requests in flight at once")
    ap.add_argument("--concurrency", type=int, default=1, help="the service's --concurrency")
    ap.add_argument("--queue", type=int, default=16, help="the service's --queue")
    ap.add_argument("--screenshot", help="also save a PNG of the page after a prediction (needs chromium)")
    ap.add_argument("--no-record", action="store_true", help="print only; do not write benchmarks/results/serve_load.json")
    args = ap.parse_args()
    import httpx

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run = Path(args.run) if args.run else small_run(work)
    clips = [clip(work / f"clip{k}.wav", k) for k in range(6)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "emofuse", "serve", str(run), "--port", str(port), "--device", "cpu",
                               "--concurrency", str(args.concurrency), "--queue", str(args.queue)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        model = httpx.get(f"{url}/model").json()
        for c in clips[:2]:  # warm-up: first calls allocate
            httpx.post(f"{url}/predict", files={"file": (c.name, c.read_bytes())}, timeout=60).raise_for_status()
        idle = _tree_rss(server.pid)
        peak, stop = [idle], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _tree_rss(server.pid))
                time.sleep(0.1)

        latencies: list[float] = []
        failures: list[str] = []
        counter = iter(range(args.requests))
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(timeout=120) as http:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    c = clips[i % len(clips)]
                    t0 = time.perf_counter()
                    try:
                        r = http.post(f"{url}/predict", files={"file": (c.name, c.read_bytes())})
                        ok = r.status_code == 200 and r.json()["label"] in model["classes"]
                        reason = f"{r.status_code} {r.text[:120]}"
                    except httpx.HTTPError as exc:
                        ok, reason = False, repr(exc)
                    with lock:
                        (latencies.append(time.perf_counter() - t0) if ok else failures.append(reason))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
        stop.set()
        sampler.join()
        shot = None
        if args.screenshot:
            shot = screenshot(url, work, Path(args.screenshot))
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.array(latencies) * 1000
    rec = {
        "experiment": "serve_load",
        "command": "python benchmarks/serve_load.py" + (f" --run {args.run}" if args.run else ""),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
        "machine": machine() + f", {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "model": f"{model['model']}, {model['folds']} fold(s)" + ("" if args.run else " (demo config, 2 epochs, synthetic corpus)"),
        "clip": "3 s, 44.1 kHz stereo 16-bit WAV (6 clips in turn)",
        "requests": args.requests, "clients": args.clients,
        "service": {"concurrency": args.concurrency, "queue": args.queue},
        "ok": len(latencies), "failed": len(failures),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if ms.size else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 1) if ms.size else None,
        "max_ms": round(float(ms.max()), 1) if ms.size else None,
        "throughput_rps": round(len(latencies) / wall, 2),
        "wall_s": round(wall, 1),
        "server_idle_mib": round(idle / 2**20), "server_peak_mib": round(peak[0] / 2**20),
        "load_avg": [round(load_before, 1), round(load_after, 1)],  # 1-minute load of the whole machine, before / after
    }
    print(json.dumps(rec, indent=2))
    if failures:
        print(f"{len(failures)} failed requests, e.g. {failures[0]}", file=sys.stderr)
    if shot:
        print(f"wrote {shot}", file=sys.stderr)
    if not args.no_record:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(rec, indent=2) + "\n")
        print(f"wrote {RECORD.relative_to(REPO)}; python benchmarks/render_tables.py updates the README tables",
              file=sys.stderr)
    return 1 if failures else 0


def screenshot(url: str, work: Path, out: Path) -> Path | None:
    """The page after predicting a 40 s recording (bars and timeline), through its own form."""
    sys.path.insert(0, str(REPO / "tests"))
    from cdp import Chromium, find_chromium

    if find_chromium() is None:
        print("no chromium: no screenshot", file=sys.stderr)
        return None
    import soundfile as sf

    sr, rng = 16000, np.random.default_rng(1)
    x = (rng.normal(size=40 * sr) * 3e-4).astype(np.float32)
    for k, start in enumerate([1.0, 6.5, 12.0, 19.0, 27.0, 33.5]):
        c = clip(work / "part.wav", k, seconds=4.0, sr=sr)
        part, _ = sf.read(c)
        x[int(start * sr): int(start * sr) + len(part)] += part[:, 0].astype(np.float32)
    long = work / "interview.wav"
    sf.write(long, x, sr)
    with Chromium(width=900, height=620) as b:
        b.goto(url + "/")
        b.wait_for("document.body.dataset.state === 'ready'")
        b.set_file("#file", long)
        b.eval("document.querySelector('#send').click()")
        b.wait_for("document.body.dataset.state === 'done'")
        out.parent.mkdir(parents=True, exist_ok=True)
        b.screenshot(str(out))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
