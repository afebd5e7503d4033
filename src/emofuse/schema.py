"""Typed config groups and the one check every command runs before any work: ``check_config``.

Each group that the training code reads (``data``, ``train``, ``cv`` and the top-level keys)
is a dataclass here, and its defaults live here only (a test keeps configs/*/default.yaml
equal to them). The other groups are typed where they are owned: ``features`` by
``FrontendConfig`` / ``WhisperFeatureConfig``, ``text`` by ``TextConfig``, ``augment`` by
``load_policy``, ``model`` by each registered model's constructor signature (its annotations,
``Literal`` choices included). ``check_config`` runs all of them and refuses:

- unknown keys, with the closest known one (``train.max_epoch`` -> ``train.max_epochs``);
- values of the wrong type (``train.lr=abc``), booleans other than true/false/yes/no/on/off/1/0
  (``train.class_weights=flase`` is an error, not ``True``), values out of range
  (``data.batch_size=0``) and names outside a fixed set (``train.scheduler=cosin``);
- with ``data.manifest`` set: folds that the manifest cannot give (``cv.n_folds`` above the
  speaker count, a fold number past the last one) and augmentation settings for its classes.

Every refusal is one ``EmofuseError`` line naming the key, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .errors import EmofuseError

TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}
MONITORS = ("val/macro_f1", "val/ua", "val/wa", "val/loss")
PRECISIONS = ("auto", "64-true", "64", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true",
              "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")


def _n(default, **bounds):
    """A field with bounds (``ge``, ``gt``, ``le``, ``lt``) checked by ``coerce_group``."""
    return field(default=default, metadata=bounds)


@dataclass
class DataConfig:
    """``data:``: where the manifest and the feature cache are, and how items are batched."""

    manifest: str | None = None          # a folder (or its manifest.csv) written by 'emofuse prepare'; required to train
    cache_dir: str | None = None         # feature cache; default: <manifest folder>/cache
    crop_seconds: float | None = _n(8.0, gt=0, null="for whole items")        # training items longer than this are cut to a random window
    max_eval_seconds: float | None = _n(30.0, gt=0, null="for whole items")   # validation/test items keep their first seconds
    batch_size: int = _n(32, ge=1)
    num_workers: int = _n(0, ge=0)
    feature_workers: int | None = _n(None, ge=1)      # processes that compute features (default: cores, at most 8)
    subset: Literal["improvised", "scripted"] | None = None  # only that kind of dialogue (IEMOCAP's names say which)


@dataclass
class TrainConfig:
    """``train:``: optimisation, model selection and the Lightning trainer's settings."""

    max_epochs: int = _n(30, ge=1)
    lr: float = _n(1.0e-3, gt=0)
    weight_decay: float = _n(1.0e-2, ge=0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: int = _n(2, ge=0)
    class_weights: bool = True
    label_smoothing: float = _n(0.0, ge=0, lt=1)
    mixup_alpha: float = _n(0.0, ge=0)   # mixup on training batches, lambda ~ Beta(alpha, alpha); 0 turns it off
    layer_weights_lr: float | None = _n(None, gt=0, null="to train the layer weights at train.lr")  # their own rate, no decay
    monitor: Literal[MONITORS] = "val/macro_f1"  # type: ignore[valid-type]
    early_stopping_patience: int | None = _n(8, ge=0, null="to turn it off")   # null (or 0) turns early stopping off
    grad_clip: float | None = _n(1.0, ge=0, null="to turn it off")
    precision: Literal[PRECISIONS] = "auto"  # type: ignore[valid-type]
    channels_last: bool = False          # NHWC weights for models with 2-d convolutions (oneDNN's NHWC kernels)
    accelerator: Literal[ACCELERATORS] = "auto"  # type: ignore[valid-type]
    devices: int | str | list[int] = 1
    num_nodes: int = _n(1, ge=1)
    strategy: str = "auto"
    deterministic: bool = False
    limit_train_batches: int | float = _n(1.0, gt=0)
    limit_val_batches: int | float = _n(1.0, gt=0)
    max_steps: int = _n(-1, ge=-1)

    def check(self) -> None:
        for key in ("limit_train_batches", "limit_val_batches"):
            v = getattr(self, key)
            if isinstance(v, float) and v > 1:
                raise EmofuseError(f"train.{key}={v}: a fraction must lie in (0, 1]; give a whole number for a count of batches")
        if isinstance(self.devices, int) and not (self.devices == -1 or self.devices >= 1):
            raise EmofuseError(f"train.devices={self.devices}: give a count >= 1, -1 (all) or 'auto'")
        if self.max_steps == 0:
            raise EmofuseError("train.max_steps=0 would train nothing; use -1 (no step limit) or a positive count")


@dataclass
class CVConfig:
    """``cv:``: how the speaker-independent folds are made."""

    scheme: Literal["auto", "session", "speaker", "official", "leave_one_corpus_out"] = "auto"
    n_folds: int | None = _n(None, ge=2)       # speaker scheme: default 6 on RAVDESS, else up to 5
    val_speakers: int | None = _n(None, ge=1)  # training speakers held out for model selection
    seed: int = 0
    test_corpus: str | None = None            # leave_one_corpus_out: test on this corpus only (default: each in turn)
    protocol: Literal["standard", "script_disjoint"] = "standard"  # script_disjoint: no val/test transcript in training
    overlap_min_words: int = _n(3, ge=1)      # transcript overlap also reported over transcripts of this many words
    overlap_warn: float = _n(0.2, ge=0, le=1)  # a text model above this test overlap gets a loud warning


@dataclass
class TopConfig:
    """The top-level scalar keys."""

    name: str | None = None
    seed: int = 0


GROUPS = {"data": DataConfig, "train": TrainConfig, "cv": CVConfig}
REQUIRED_GROUPS = ("data", "features", "model", "train", "cv")
OPTIONAL_GROUPS = ("text", "augment")
TOP_KEYS = tuple(f.name for f in dataclasses.fields(TopConfig)) + REQUIRED_GROUPS + OPTIONAL_GROUPS


# -- values ----------------------------------------------------------------------------------------

def closest(name: str, known) -> str:
    """`` (did you mean X?)`` for the nearest known name, or an empty string."""
    match = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def refuse_unknown(group: str, given, known) -> None:
    """One line naming the first unknown key of ``given`` and the closest known one."""
    bad = [k for k in given if k not in known]
    if bad:
        key = f"{group}.{bad[0]}" if group else str(bad[0])
        near = difflib.get_close_matches(str(bad[0]), [str(k) for k in known], n=1, cutoff=0.5)
        hint = f"did you mean {(f'{group}.' if group else '') + near[0]}?" if near else "remove it"
        raise EmofuseError(f"{key}: unknown config key; {hint} (known keys{' of ' + group if group else ''}: "
                           f"{', '.join(sorted(map(str, known)))})")


def describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe(a) for a in args))
    if origin in (list, tuple):
        return f"a list of {describe(args[0]).removeprefix('a ')}s" if args else "a list"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a text value", dict: "a mapping",
            type(None): "null", Any: "anything"}.get(hint, getattr(hint, "__name__", str(hint)))


class _Mismatch(Exception):
    pass


def _coerce(value, hint):
    """``value`` as the type ``hint`` names, or ``_Mismatch``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if hint is type(None):
        if value is None:
            return None
        raise _Mismatch
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        # A value already of one of the types keeps it (1.0 stays a fraction, 1 stays a count).
        for a in args:
            if (a in (int, float, str, dict) and type(value) is a) or (a is bool and isinstance(value, bool)):
                return _coerce(value, a)
        for a in args:
            try:
                return _coerce(value, a)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is Literal:
        if isinstance(value, bool):
            raise _Mismatch
        if value in args:
            return value
        if isinstance(value, (int, float)) and str(value) in args:
            return str(value)
        raise _Mismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise _Mismatch
    if hint is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    raise _Mismatch from None
                if f.is_integer():
                    return int(f)
        raise _Mismatch
    if hint is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            f = float(value)
        elif isinstance(value, str):
            try:
                f = float(value.strip())  # YAML reads 1e-3 (no dot) as text
            except ValueError:
                raise _Mismatch from None
        else:
            raise _Mismatch
        if not math.isfinite(f):
            raise _Mismatch
        return f
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        item = args[0] if args else Any
        return [_coerce(v, item) for v in value]
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return value
    return value


def coerce_value(key: str, value, hint, example=None):
    """``value`` converted to ``hint``; a mismatch is one line naming ``key``, the value and the fix."""
    try:
        return _coerce(value, hint)
    except _Mismatch:
        pass
    hint_text = ""
    if typing.get_origin(hint) is Literal or (typing.get_origin(hint) in (Union, types.UnionType)):
        choices = [a for a in typing.get_args(hint) if isinstance(a, str)]
        if typing.get_origin(hint) in (Union, types.UnionType):
            for a in typing.get_args(hint):
                if typing.get_origin(a) is Literal:
                    choices += list(typing.get_args(a))
        hint_text = closest(value, choices) if isinstance(value, str) else ""
    fix = f" (e.g. {key}={_yaml(example)})" if example is not None and not hint_text else ""
    raise EmofuseError(f"{key}={_yaml(value)}: must be {describe(hint)}{hint_text}{fix}")


def _yaml(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return repr(v) if v == "" or v != v.strip() else v
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml(x) for x in v) + "]"
    return str(v)


def check_bounds(key: str, value, meta: dict, example=None, nullable: bool = False) -> None:
    """Range rules of a field's metadata (``ge``, ``gt``, ``le``, ``lt``; ``null`` says what null means)."""
    if value is None or isinstance(value, (bool, str, list, dict)) or not meta:
        return
    rules = {"ge": (lambda v, b: v >= b, "at least"), "gt": (lambda v, b: v > b, "greater than"),
             "le": (lambda v, b: v <= b, "at most"), "lt": (lambda v, b: v < b, "less than")}
    for name, bound in meta.items():
        if name in rules and not rules[name][0](value, bound):
            fixes = ([f"e.g. {key}={_yaml(example)}"] if example is not None else []) + \
                ([f"{key}=null {meta.get('null', 'for the default')}"] if nullable else [])
            fix = f" ({', or '.join(fixes)})" if fixes else ""
            raise EmofuseError(f"{key}={_yaml(value)}: must be {rules[name][1]} {bound}{fix}")


def coerce_group(group: str, cls, given: dict | None, fill: bool = True) -> dict:
    """A config group checked against the dataclass ``cls``: unknown keys refused, values coerced
    to the annotated types and bounds; ``fill`` adds the defaults of keys not given."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise EmofuseError(f"{group}: must be a mapping of keys (got {_yaml(given)}); write it as '{group}: {{key: value}}'")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    refuse_unknown(group, given, fields)
    out = {}
    for name, f in fields.items():
        default = f.default if f.default is not dataclasses.MISSING else None
        key = f"{group}.{name}" if group else name
        if name in given:
            value = coerce_value(key, given[name], hints[name], default)
            nullable = type(None) in typing.get_args(hints[name])
            check_bounds(key, value, dict(f.metadata), default, nullable)
            out[name] = value
        elif fill:
            out[name] = default
    obj_check = getattr(cls, "check", None)
    if obj_check is not None:
        obj_check(cls(**{**{n: (f.default if f.default is not dataclasses.MISSING else None) for n, f in fields.items()}, **out}))
    return out


# -- the groups owned elsewhere --------------------------------------------------------------------

def check_features(given: dict | None) -> dict:
    """``features:``: keys and types from the front end's settings dataclass, then its own parser."""
    from .features import feature_config, feature_kind
    from .features.frontend import LOGMEL
    from .features.logmel import FrontendConfig

    if not isinstance(given, dict):
        raise EmofuseError(f"features: must be a mapping of keys (got {_yaml(given)}); start the file with 'defaults: [default]'")
    kind = given.get("kind", LOGMEL)
    cls = feature_kind(kind).config  # an unknown kind fails with the registered ones
    fields = {f.name: f for f in dataclasses.fields(cls)}
    known = set(fields) | {"kind"}
    refuse_unknown("features", given, known)
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in given.items():
        out[name] = value if name == "kind" else coerce_value(f"features.{name}", value, hints[name], fields[name].default)
    positive = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "batch_size") if cls is FrontendConfig else ("batch_size",)
    for name in positive:
        if name in out:
            check_bounds(f"features.{name}", out[name], {"ge": 1}, fields[name].default)
    cfg = feature_config(out)
    if isinstance(cfg, FrontendConfig):
        if cfg.win_length > cfg.n_fft:
            raise EmofuseError(f"features.win_length={cfg.win_length} is longer than features.n_fft={cfg.n_fft}; "
                               "raise n_fft or shorten the window")
        nyquist = cfg.sample_rate / 2
        f_max = nyquist if cfg.f_max is None else cfg.f_max
        if not 0 <= cfg.f_min < f_max <= nyquist:
            raise EmofuseError(f"features.f_min={cfg.f_min} / f_max={cfg.f_max}: need 0 <= f_min < f_max <= "
                               f"{nyquist:g} (half the sample rate); f_max=null means {nyquist:g}")
        if cfg.top_db is not None and cfg.top_db <= 0:
            raise EmofuseError(f"features.top_db={cfg.top_db}: must be positive, or null for no floor")
        if cfg.amin <= 0:
            raise EmofuseError(f"features.amin={cfg.amin}: must be positive (e.g. features.amin=1e-10)")
    else:
        feature_kind(kind).check(cfg)
    return out


def check_text(given: dict | None) -> dict | None:
    """``text:``: keys and types from ``TextConfig``, then its own parser."""
    from .text import TextConfig

    if given is None:
        return None
    if not isinstance(given, dict):
        raise EmofuseError(f"text: must be a mapping of keys (got {_yaml(given)})")
    fields = {f.name: f for f in dataclasses.fields(TextConfig)}
    refuse_unknown("text", given, fields)
    hints = typing.get_type_hints(TextConfig)
    out = {k: coerce_value(f"text.{k}", v, hints[k], fields[k].default) for k, v in given.items()}
    if "batch_size" in out:
        check_bounds("text.batch_size", out["batch_size"], {"ge": 1}, 64)
    TextConfig.from_dict(out)
    return out


AUGMENT_TYPES = {"policy": str, "waveform": bool, "specaugment": bool, "class_policy": bool, "variants": int,
                 "clean_prob": float, "oversample": dict | None, "noise_dir": str | None, "ir_dir": str | None,
                 "seed": int, "uniform": list | None, "classes": dict | None}


def check_augment(given: dict | None) -> dict | None:
    """``augment:``: keys and scalar types here; effects and classes by ``load_policy`` (which
    needs the run's classes, so ``check_config`` calls it when the manifest is known)."""
    from .augment import POLICIES

    if given is None:
        return None
    if not isinstance(given, dict):
        raise EmofuseError(f"augment: must be a mapping of keys (got {_yaml(given)})")
    refuse_unknown("augment", given, AUGMENT_TYPES)
    out = {k: coerce_value(f"augment.{k}", v, AUGMENT_TYPES[k]) for k, v in given.items()}
    if out.get("policy", "none") not in POLICIES:
        raise EmofuseError(f"augment.policy={_yaml(out['policy'])}: must be one of {list(POLICIES)}{closest(out['policy'], POLICIES)}")
    return out


def feature_dim(features: dict) -> int:
    """Feature size per frame the model will see (mel bands, or the Whisper encoder's width)."""
    from .features import feature_kind

    return feature_kind(features.get("kind")).dry_dim(features)  # only used for the dry build of the model


# -- the entry point -------------------------------------------------------------------------------

def check_config(cfg: dict, folds: list[int] | None = None) -> dict:
    """Validate every group of a resolved config; return it normalised (types coerced, the
    defaults of ``data``, ``train``, ``cv`` and the top-level keys filled in).

    Args:
        cfg: a config from ``load_config`` (with overrides applied).
        folds: fold numbers a command was asked for (``train --fold``, ``cv --folds``); checked
            against the folds the manifest gives when ``data.manifest`` is set.

    Raises:
        EmofuseError: one line naming the key, the value and the fix.
    """
    from .models.registry import check_model_config

    if not isinstance(cfg, dict):
        raise EmofuseError("a config must be a mapping of groups (data, features, model, train, cv)")
    refuse_unknown("", [k for k in cfg if k != "defaults"], TOP_KEYS)
    for group in REQUIRED_GROUPS:
        if not isinstance(cfg.get(group), dict):
            raise EmofuseError(f"the config has no {group!r} group; start the file with 'defaults: [default]'")
    out = {k: v for k, v in cfg.items() if k not in ("defaults",)}
    out.update(coerce_group("", TopConfig, {k: cfg[k] for k in ("name", "seed") if k in cfg}))
    for group, cls in GROUPS.items():
        out[group] = coerce_group(group, cls, cfg.get(group))
    out["features"] = check_features(cfg["features"])
    if "text" in cfg:
        out["text"] = check_text(cfg["text"])
    if "augment" in cfg:
        out["augment"] = check_augment(cfg["augment"])
    out["model"] = check_model_config(cfg["model"], feature_dim(out["features"]))
    if out["train"]["layer_weights_lr"] is not None:
        check_layer_weights_lr(out)
    if out["data"]["manifest"] not in (None, ""):
        check_against_manifest(out, folds)
    elif folds:
        for k in folds:
            if k < 0:
                raise EmofuseError(f"fold {k} does not exist: folds are numbered from 0")
    return out


def check_layer_weights_lr(cfg: dict) -> None:
    """``train.layer_weights_lr`` needs a model with a softmax over an encoder's layers (built on the
    meta device to look: no memory, no weights)."""
    import torch

    from .models import create_model
    from .models.registry import accepted_args
    from .models.ssl_weighted import require_layer_mixers

    name = cfg["model"]["name"]
    kwargs = {k: v for k, v in cfg["model"].items() if k != "name"}
    with torch.device("meta"):
        model = create_model(name, **accepted_args(name, {"n_mels": feature_dim(cfg["features"])}), **kwargs)
    require_layer_mixers(model, name, cfg["train"]["layer_weights_lr"])


def check_against_manifest(cfg: dict, folds: list[int] | None = None) -> None:
    """What only the manifest can tell: that the folds can be made (and the asked-for ones exist),
    and that the augmentation policy fits its classes. Cheap: no audio is read."""
    from .augment import load_policy
    from .manifest import read_manifest
    from .splits import make_folds

    m = read_manifest(cfg["data"]["manifest"])
    cv = cfg["cv"]
    made = make_folds(m.df, m.meta.get("corpus", ""), cv["scheme"], cv["n_folds"], cv["val_speakers"], cv["seed"],
                      cv["test_corpus"])
    for k in folds or []:
        if not 0 <= k < len(made):
            raise EmofuseError(f"fold {k} does not exist: this config gives {len(made)} folds on {m.path.parent} "
                               f"(numbered 0..{len(made) - 1}); pick one of those")
    if cfg.get("augment") is not None:
        load_policy(cfg["augment"], m.classes)
