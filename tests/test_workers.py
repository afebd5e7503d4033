"""Worker processes die with the process that started them, even when it is killed with SIGKILL.

A killed ``emofuse features`` (or ``cv``) runs no cleanup: without a guard its pool workers
would wait for jobs forever, each holding hundreds of MB. Every pool comes from
``shards.process_pool``, whose workers ask the kernel for SIGKILL when their parent dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emofuse import shards


REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended; only its entry waits to be reaped


def describe(pid: int) -> str:
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        return f"{pid} state={status['State'].strip()} ppid={status['PPid'].strip()} cmd={cmd}"
    except OSError:
        return f"{pid} (gone)"


def wait_for(cond, timeout: float, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()


def kill_and_check_workers_end(proc: subprocess.Popen, workers: list[int]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    try:
        wait_for(lambda: not any(alive(w) for w in workers), timeout=5)
        left = [w for w in workers if alive(w)]
        assert not left, f"workers outlived their killed parent: {[describe(w) for w in left]}"
    finally:
        for w in workers:  # never leave strays behind, whatever the outcome
            if alive(w):
                os.kill(w, signal.SIGKILL)


SLOW_FILL = textwrap.dedent("""
    import sys, time
    import numpy as np
    from emofuse.shards import ShardedArrays

    def slow(payload):
        time.sleep(0.3)
        return [np.full((3, 2), payload, np.float32)]

    if __name__ == "__main__":
        store = ShardedArrays(sys.argv[1], {})
        store.fill(slow, [([f"k{i}"], i) for i in range(200)], workers=2)
""")


def test_pool_workers_die_when_the_parent_is_killed_and_finished_shards_stay(tmp_path):
    script = tmp_path / "fill.py"
    script.write_text(SLOW_FILL)
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, str(script), str(cache)], cwd=REPO)
    try:
        workers = wait_for(lambda: len(children(proc.pid)) >= 2 and children(proc.pid), timeout=60)
        assert workers, "the pool's workers never started"
        assert wait_for(lambda: len(list(cache.glob("shard-*.csv"))) >= 2, timeout=30)
    except BaseException:
        proc.kill()
        raise
    kill_and_check_workers_end(proc, workers)
    store = shards.ShardedArrays(cache, {})  # every finished shard is there and readable
    assert 2 <= len(store) < 200
    for k in store.keys():
        assert store.get(k).shape == (3, 2) and store.get(k)[0, 0] == int(k[1:])


@pytest.mark.slow
def test_a_killed_features_command_leaves_no_worker_and_keeps_its_shards(tmp_path):
    from emofuse.features import FeatureStore
    from emofuse.manifest import read_manifest
    from emofuse.prepare import prepare
    from emofuse.synth import SynthSpec, make_synthetic_corpus

    root = tmp_path / "corpus"
    make_synthetic_corpus(root, SynthSpec(sessions=2, per_class=6, min_seconds=9, max_seconds=12, seed=3))
    prepare("iemocap", root, tmp_path / "m", workers=1)
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "emofuse", "features", str(tmp_path / "m"), "--cache", str(cache),
                             "--workers", "2"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers = wait_for(lambda: len(children(proc.pid)) >= 2 and children(proc.pid), timeout=120)
        assert workers, "the feature workers never started"
    except BaseException:
        proc.kill()
        raise
    kill_and_check_workers_end(proc, workers)
    m = read_manifest(tmp_path / "m")
    keys, paths = m.df["audio_sha1"].tolist(), [m.audio_path(p) for p in m.df["path"]]
    store = FeatureStore(cache)
    kept = len(set(keys)) - len(store.missing(keys))
    assert store.ensure(keys, paths, workers=1, progress=False) == len(set(keys)) - kept  # only the rest is computed
    assert not store.missing(keys)


def test_a_worker_orphaned_before_its_guard_took_effect_ends_itself(tmp_path):
    """The race: the parent dies between fork and prctl. The worker sees a parent that is not
    the one that made the pool and ends at once."""
    code = "import os; from emofuse.shards import _die_with_parent; _die_with_parent(os.getppid() + 1000000, 'fork'); print('alive')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == -signal.SIGKILL and "alive" not in r.stdout
    code = "import os; from emofuse.shards import _die_with_parent; _die_with_parent(os.getppid(), 'fork'); print('alive')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0 and "alive" in r.stdout


def test_every_pool_in_emofuse_comes_from_the_guarded_helper():
    """A ProcessPoolExecutor made anywhere else would bring back immortal workers."""
    src = REPO / "src" / "emofuse"
    makers = [p.relative_to(src).as_posix() for p in src.rglob("*.py")
              if "ProcessPoolExecutor(" in p.read_text() or "multiprocessing.Pool(" in p.read_text()]
    assert makers == ["shards.py"], makers
