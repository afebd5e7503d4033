"""Configs: YAML files grouped by concern, composed with ``defaults:``, overridden from the CLI.

A config file may list other config files under ``defaults:`` (names relative to the shipped
``configs/`` folder, or paths relative to the file itself when they start with ``./``); they
are merged in order, then the file's own keys on top. A group file (``model/cnn_bilstm``)
replaces its whole group, so choosing another model never inherits the last one's keys. So an experiment file holds only what
differs. Command-line overrides are ``dotted.key=value`` with YAML values
(``train.max_epochs=5``, ``model.name=cnn_bilstm``).
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import EmofuseError


def configs_root() -> Path:
    """The shipped ``configs/`` folder."""
    return Path(str(resources.files("emofuse.configs")))


def list_configs() -> list[str]:
    root = configs_root()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def find_config(name: str | Path) -> Path:
    """A config path, or a shipped config's name (``resnet18`` = ``experiment/resnet18``)."""
    p = Path(name)
    if p.is_file():
        return p
    root = configs_root()
    for cand in (root / f"{name}.yaml", root / "experiment" / f"{name}.yaml", root / str(name)):
        if cand.is_file():
            return cand
    experiments = sorted(q.stem for q in (root / "experiment").glob("*.yaml"))
    raise EmofuseError(f"config {str(name)!r} not found: give a YAML path or one of {experiments}")


def deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise EmofuseError(f"{path}: 'defaults' form a cycle through {[str(s) for s in seen]}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise EmofuseError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise EmofuseError(f"{path}: a config file must hold a mapping of keys")
    merged: dict = {}
    for ref in data.pop("defaults", []) or []:
        ref = str(ref)
        target = (path.parent / ref) if ref.startswith(".") else configs_root() / ref
        target = target if target.suffix == ".yaml" else target.with_suffix(".yaml")
        if not target.is_file():
            raise EmofuseError(f"{path}: defaults entry {ref!r} not found (looked for {target})")
        loaded = _load(target, seen + (path,))
        group = _group_of(target)
        if group and group in loaded:
            # Choosing another option of a group (model/cnn_bilstm after model/resnet18) replaces it whole.
            merged = {**merged, group: loaded[group], **{k: v for k, v in loaded.items() if k != group}}
        else:
            merged = deep_merge(merged, loaded)
    return deep_merge(merged, data)


def _group_of(path: Path) -> str | None:
    """``model`` for configs/model/x.yaml; None for files outside a group folder."""
    try:
        rel = path.resolve().relative_to(configs_root().resolve())
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) == 2 and rel.parts[0] != "experiment" else None


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise EmofuseError(f"override {item!r} must look like key.sub=value (e.g. train.max_epochs=5)")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        keys, value = parse_override(item)
        node = cfg
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return cfg


def load_config(name: str | Path, overrides: list[str] | None = None, check: bool = True) -> dict:
    """Resolve a config: its defaults, its own keys, then the overrides (``check``: require the main groups)."""
    cfg = _load(find_config(name))
    cfg = apply_overrides(cfg, overrides or [])
    for group in ("data", "features", "model", "train", "cv") if check else ():
        if not isinstance(cfg.get(group), dict):
            raise EmofuseError(f"config {name}: the group {group!r} is missing; start the file with 'defaults: [default]'")
    return cfg


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
