"""Pre-rendered waveform variants for the training items of a fold, and the leakage guard.

Waveform effects (pitch shift, reverb, ...) cost tens of milliseconds per clip: far too slow to
run per step on a small CPU. So each training item gets ``variants`` seeded renderings once:
decode -> effect chain of its class -> log-mel, stored in the memory-mapped cache under a key
made of the audio hash, the class plan's signature and the variant number. Epochs then read a
variant like any cached feature, so augmentation costs no training throughput. A later fold
re-uses every variant already rendered; changing one class's effects re-renders that class only.

Leakage guard: ``FoldAugment`` knows the fold's training utterances and nothing else. Asking it
for a validation or test item (or any utterance outside the fold's training part) raises
``LeakageError``; rendering is only ever requested for training items, and the list of what
was augmented is written next to the fold's results.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..audio import read_audio
from ..features.logmel import FrontendConfig, LogMel
from ..shards import ShardedArrays, map_in_processes
from ..splits import LeakageError
from .policy import Policy
from .waveform import build_effect

SHARD_ITEMS = 512


def variant_rng(seed: int, audio_sha1: str, signature: str, v: int) -> np.random.Generator:
    """The generator of one variant: fixed by (seed, audio, class plan, variant number)."""
    return np.random.default_rng([seed, int(audio_sha1[:12], 16), int(signature, 16) & 0xFFFFFFFF, v])


def render_variants(wave: np.ndarray, sr: int, effects: list, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Apply an effect chain (each with its p) to one clip; returns the audio and what was applied."""
    out, applied = wave, []
    for e in effects:
        if rng.random() < e.p:
            out = e(out, sr, rng)
            applied.append(e.name)
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > 1.0:  # keep within full scale after noise / gain
        out = out / peak
    return out.astype(np.float32), applied


def _render_chunk(args) -> list[tuple[str, np.ndarray, str]]:
    jobs, frontend_cfg, specs, seed = args
    torch.set_num_threads(1)
    frontend = LogMel(frontend_cfg)
    chains = {sig: [build_effect(s) for s in spec_list] for sig, spec_list in specs.items()}
    out = []
    for path, sha1, sig, variants in jobs:
        wave = read_audio(path, frontend_cfg.sample_rate)
        for v in range(variants):
            aug, applied = render_variants(wave, frontend_cfg.sample_rate, chains[sig], variant_rng(seed, sha1, sig, v))
            with torch.no_grad():
                feats, frames = frontend(torch.from_numpy(aug)[None])
            out.append((f"{sha1}-{sig}-{v}", feats[0, : int(frames[0])].numpy().astype(np.float32), "+".join(applied) or "clean"))
    return out


class AugmentStore:
    """Rendered variants' log-mel features, next to the clean features in the cache root."""

    def __init__(self, cache_root: str | Path, frontend: FrontendConfig) -> None:
        self.frontend = frontend
        self.arrays = ShardedArrays(Path(cache_root) / f"augmented-logmel-{frontend.key()}", asdict(frontend),
                                    "augmented features")

    def ensure(self, jobs: list[tuple[str, str, str, int]], specs: dict[str, list[dict]], seed: int,
               workers: int | None = None, progress: bool = True) -> int:
        """Render missing variants. jobs: (audio path, audio sha1, plan signature, variants)."""
        todo = [j for j in jobs if any(f"{j[1]}-{j[2]}-{v}" not in self.arrays for v in range(j[3]))]
        if not todo:
            return 0
        workers = workers or min(8, os.cpu_count() or 1)
        chunk = 16
        chunks = [(todo[i:i + chunk], self.frontend, specs, seed) for i in range(0, len(todo), chunk)]
        with closing(map_in_processes(_render_chunk, chunks, workers)) as results:  # the pool stops with us, even on Ctrl-C
            pairs = ([(k, f) for k, f, _ in res] for res in results)
            with tqdm(total=sum(j[3] for j in todo), desc="rendering augmented variants", unit="variant", disable=not progress) as bar:
                self.arrays.store_stream(pairs, SHARD_ITEMS, bar.update)
        return len(todo)


class TrainItem(NamedTuple):
    """A training item as ``FoldAugment`` knows it."""

    path: str    # the audio file
    sha1: str    # its content hash (the feature and variant cache key)
    label: str   # its class name (which class plan applies)


class FoldAugment:
    """The augmentation a fold's training set may use; refuses anything else.

    Args:
        policy: the resolved policy.
        store: rendered variants.
        train: utt_id -> ``TrainItem`` (audio path, audio sha1, class name) for the fold's
            training items only.
    """

    def __init__(self, policy: Policy, store: AugmentStore, train: dict[str, tuple[str, str, str]]) -> None:
        self.policy, self.store = policy, store
        self.train = {u: TrainItem(*item) for u, item in train.items()}
        self.signatures = {c: p.signature(policy.variants, policy.seed) for c, p in policy.plans.items()}

    def check(self, utt_id: str) -> None:
        if utt_id not in self.train:
            raise LeakageError(f"refusing to augment {utt_id!r}: it is not a training item of this fold "
                               "(validation and test items are never augmented)")

    def waveform_variants(self, utt_id: str) -> int:
        """How many rendered variants this training item has (0: its class has no waveform effects)."""
        self.check(utt_id)
        plan = self.policy.plans[self.train[utt_id].label]
        return self.policy.variants if plan.effects else 0

    def copies(self, utt_id: str) -> int:
        """How many times this training item is drawn per epoch (its class's ``oversample``, 1 if none)."""
        self.check(utt_id)
        return int(self.policy.oversample.get(self.train[utt_id].label, 1))

    def prepare(self, workers: int | None = None, progress: bool = True) -> int:
        """Render the variants of every training item that needs them (cached across folds)."""
        jobs, specs = [], {}
        for item in self.train.values():
            plan = self.policy.plans[item.label]
            if plan.effects and self.policy.variants:
                sig = self.signatures[item.label]
                specs[sig] = plan.effect_specs
                jobs.append((item.path, item.sha1, sig, self.policy.variants))
        return self.store.ensure(jobs, specs, self.policy.seed, workers, progress)

    def variant(self, utt_id: str, v: int) -> np.ndarray:
        """(T, F) log-mel of rendered variant ``v`` of a training item."""
        self.check(utt_id)
        item = self.train[utt_id]
        return self.store.arrays.get(f"{item.sha1}-{self.signatures[item.label]}-{v}")

    def record(self) -> pd.DataFrame:
        """What was augmented, one row per training item (written to fold_K/augmented.csv)."""
        rows = []
        for utt, item in sorted(self.train.items()):
            cls = item.label
            plan = self.policy.plans[cls]
            rows.append({"utt_id": utt, "label": cls, "part": "train",
                         "waveform_variants": self.policy.variants if plan.effects else 0,
                         "waveform_effects": "+".join(e["name"] for e in plan.effect_specs),
                         "specaugment": "x".join(map(str, plan.spec)) if any(plan.spec) else "",
                         "oversample": self.policy.oversample.get(cls, 1)})
        return pd.DataFrame(rows)
