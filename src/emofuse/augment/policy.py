"""Augmentation policies: none, uniform, or class-differentiated (a mapping class -> effects).

The config's ``augment:`` group (see configs/augment/*.yaml)::

    policy: class_differentiated   # none | uniform | class_differentiated
    waveform: true                 # ablation switch: waveform effects on/off
    specaugment: true              # ablation switch: SpecAugment on/off
    class_policy: true             # ablation switch: false = the uniform list for every class
    variants: 4                    # waveform variants rendered per training item
    clean_prob: 0.5                # chance that an epoch reads the clean item instead of a variant
    oversample: {sad: 2}           # class -> factor: augmented copies of minority classes
    noise_dir: null                # env_noise folder (MUSAN layout or any audio folder)
    ir_dir: null                   # measured impulse responses for reverb (else simulated rooms)
    seed: 0
    uniform: [ {name: gaussian_noise, p: 0.5, snr_db: [15, 30]}, {name: specaugment, ...} ]
    classes: {angry: [...], happy: [...], sad: [...], neutral: [...]}

A config that names a policy but no effect lists (``augment.policy=uniform`` on a plain
experiment) gets the shipped study lists (configs/augment/study.yaml) underneath its own keys.
Classes a class-differentiated policy does not name get no augmentation. A name that is not
one of the run's classes, an unknown effect, or a bad range stops with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..errors import EmofuseError
from .spec import spec_params
from .waveform import Effect, build_effect

POLICIES = ("none", "uniform", "class_differentiated")
KEYS = {"policy", "waveform", "specaugment", "class_policy", "variants", "clean_prob", "oversample", "noise_dir", "ir_dir",
        "seed", "uniform", "classes"}


@dataclass
class ClassPlan:
    """What one class gets: waveform effects (applied in order, each with its p) and SpecAugment."""

    effects: list[Effect] = field(default_factory=list)
    effect_specs: list[dict] = field(default_factory=list)
    spec: tuple[int, int, int, int] = (0, 0, 0, 0)

    def signature(self, variants: int, seed: int) -> str:
        """Hash of what a rendered variant depends on (for the cache key)."""
        raw = json.dumps({"effects": self.effect_specs, "variants": variants, "seed": seed}, sort_keys=True)
        return hashlib.sha1(raw.encode()).hexdigest()[:12]


@dataclass
class Policy:
    """A resolved policy for one run's class list."""

    name: str
    classes: list[str]
    plans: dict[str, ClassPlan]
    variants: int
    clean_prob: float
    oversample: dict[str, int]
    seed: int
    config: dict

    @property
    def active(self) -> bool:
        return self.name != "none" and (self.waveform_active or self.spec_active or any(f > 1 for f in self.oversample.values()))

    @property
    def waveform_active(self) -> bool:
        return self.variants > 0 and any(p.effects for p in self.plans.values())

    @property
    def spec_active(self) -> bool:
        return any(any(p.spec) for p in self.plans.values())

    def spec_table(self) -> list[tuple[int, int, int, int]]:
        """(n_classes, 4) SpecAugment settings in class-index order."""
        return [self.plans[c].spec for c in self.classes]

    def describe(self) -> dict:
        return {"policy": self.name, "variants": self.variants, "clean_prob": self.clean_prob, "oversample": self.oversample,
                "seed": self.seed, "per_class": {c: {"waveform": [e.get("name") for e in p.effect_specs],
                                                     "specaugment": dict(zip(("freq_masks", "freq_width", "time_masks", "time_width"), p.spec))}
                                                 for c, p in self.plans.items()}}


def _plan(entries, cls: str, cfg: dict, waveform: bool, specaugment: bool) -> ClassPlan:
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise EmofuseError(f"augment: the entry for {cls!r} must be a list of effects, not {type(entries).__name__}")
    plan = ClassPlan()
    defaults = {"folder": cfg.get("noise_dir"), "ir_dir": cfg.get("ir_dir")}
    for e in entries:
        if isinstance(e, str):
            e = {"name": e}
        if not isinstance(e, dict) or "name" not in e:
            raise EmofuseError(f"augment ({cls}): each effect must be a name or a mapping with 'name', not {e!r}")
        if e["name"] == "specaugment":
            params = spec_params(e)
            if specaugment:
                plan.spec = params
        elif waveform:  # (switched off: not built, so an ablation without a noise folder still runs)
            plan.effects.append(build_effect(e, defaults))
            plan.effect_specs.append({**e, **({"folder": defaults["folder"]} if e["name"] == "env_noise" else {}),
                                      **({"ir_dir": defaults["ir_dir"]} if e["name"] == "reverb" else {})})
    return plan


def load_policy(cfg: dict | None, classes: list[str]) -> Policy:
    """Resolve the ``augment:`` config for a run's classes (a missing group means no augmentation)."""
    cfg = dict(cfg or {"policy": "none"})
    if cfg.get("policy", "none") != "none" and "uniform" not in cfg and "classes" not in cfg:
        from ..config import load_config
        cfg = {**load_config("augment/study", check=False)["augment"], **cfg}
    bad = sorted(set(cfg) - KEYS)
    if bad:
        raise EmofuseError(f"augment: unknown keys {bad}; known keys are {sorted(KEYS)}")
    name = cfg.get("policy", "none")
    if name not in POLICIES:
        raise EmofuseError(f"augment.policy must be one of {list(POLICIES)}, not {name!r}")
    variants = cfg.get("variants", 4)
    if not isinstance(variants, int) or not 0 <= variants <= 64:
        raise EmofuseError(f"augment.variants={variants!r} must be a whole number in [0, 64]")
    clean = cfg.get("clean_prob", 0.5)
    if not isinstance(clean, (int, float)) or not 0 <= clean <= 1:
        raise EmofuseError(f"augment.clean_prob={clean!r} must lie within [0, 1]")
    over = cfg.get("oversample") or {}
    if not isinstance(over, dict):
        raise EmofuseError(f"augment.oversample must map class names to factors, not {over!r}")
    for c, f in over.items():
        if c not in classes:
            raise EmofuseError(f"augment.oversample: {c!r} is not a class of this run ({classes})")
        if not isinstance(f, int) or f < 1:
            raise EmofuseError(f"augment.oversample.{c}={f!r} must be a whole number >= 1")
    waveform, spec = bool(cfg.get("waveform", True)), bool(cfg.get("specaugment", True))
    plans = {c: ClassPlan() for c in classes}
    if name == "uniform" or (name == "class_differentiated" and not cfg.get("class_policy", True)):
        for c in classes:
            plans[c] = _plan(cfg.get("uniform"), c, cfg, waveform, spec)
        name = "uniform" if name == "uniform" else "class_differentiated (class policy off: uniform list)"
    elif name == "class_differentiated":
        mapping = cfg.get("classes") or {}
        if not isinstance(mapping, dict) or not mapping:
            raise EmofuseError("augment.classes must map class names to lists of effects for a class_differentiated policy")
        unknown = sorted(set(mapping) - set(classes))
        if unknown:
            raise EmofuseError(f"augment.classes: {unknown} are not classes of this run; its classes are {classes}")
        for c in classes:
            plans[c] = _plan(mapping.get(c), c, cfg, waveform, spec)
    if name != "none" and not any(p.effects or any(p.spec) for p in plans.values()):
        raise EmofuseError(f"augment.policy={name} lists no effects (augment.uniform / augment.classes are empty)")
    if over and not (variants > 0 and any(plans[c].effects for c in over)):
        raise EmofuseError("augment.oversample needs waveform effects (and variants > 0) for the oversampled classes: "
                           "a copy must differ from the original")
    return Policy(name, list(classes), plans, variants, float(clean), {c: int(f) for c, f in over.items()},
                  int(cfg.get("seed", 0)), cfg)
