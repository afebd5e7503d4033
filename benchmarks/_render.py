"""What every README table renderer shares: the mean ± std cell, the sentence that names a record's
commit, dates, machines and command lines, and the load-average cell."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def pm(m: dict) -> str:
    """'mean ± std' of a metric summary, three decimals."""
    return f"{m['mean']:.3f} ± {m['std']:.3f}"


def dates(rec: dict) -> list[str]:
    """The days a record's rows were measured, oldest first (a record without rows: its own date)."""
    return sorted({r.get("date", rec["date"]) for r in rec.get("runs", [])} or {rec["date"]})


def date(rec: dict) -> str:
    """The day the newest row of a record was measured."""
    return dates(rec)[-1]


def load_cell(r: dict, rec: dict) -> str:
    """'before / after' 1-minute load average of a row (else of its record, else '-')."""
    la = r.get("load_average") or rec.get("load_average") or {"before": ["-"], "after": ["-"]}
    return f"{la['before'][0]} / {la['after'][0]}"


def source(rec: dict, name: str) -> str:
    """The sentence naming record ``name``'s command lines, commits, days and machines."""
    commits = sorted({r.get("commit", rec["commit"]) for r in rec.get("runs", [])} or {rec["commit"]})
    days = dates(rec)
    trained = sorted({c for r in rec.get("runs", []) for c in r.get("trained_commits") or []} - set(commits))
    if trained:  # runs trained at other commits, then collected into the record
        commits = [*commits, f"folds trained at {', '.join(trained)}"]
    runs = rec.get("runs", [])
    # rows of one record may come from several calls and machines (older records stamp neither per row)
    commands = list(dict.fromkeys(r["invoked"] for r in runs if r.get("invoked"))) or [rec["command"]]
    machines = list(dict.fromkeys(r.get("machine", rec["machine"]) for r in runs)) or [rec["machine"]]
    return (f"Record `benchmarks/results/{name}.json` ({'; '.join(f'`{c}`' for c in commands)}; commit {', '.join(commits)}, "
            f"{' to '.join(dict.fromkeys([days[0], days[-1]]))}, {'; '.join(machines)}).")


def f1s(r: dict) -> str:
    """Per-class F1 (mean over folds), best class first."""
    return ", ".join(f"{c} {v['mean']:.2f}" for c, v in sorted(r["per_class_f1"].items(), key=lambda kv: -kv[1]["mean"]))


def budget(cfg: dict | None) -> str:
    """A run's training budget from the config its folder recorded: width, crop, epoch cap, patience."""
    if not cfg:
        return "config not recorded"
    model, data, train = cfg.get("model") or {}, cfg.get("data") or {}, cfg.get("train") or {}
    crop = data.get("crop_seconds")
    crop = f"{crop:g} s crops" if isinstance(crop, (int, float)) else "whole clips" if "crop_seconds" in data else "crop ?"
    return (f"width {model.get('base_channels', '?')}, {crop}, {train.get('max_epochs', '?')} epochs max, "
            f"patience {train.get('early_stopping_patience', '?')}")


def fold_values(r: dict, key: str) -> list:
    """Field ``key`` of a row's folds, in fold order, leaving out the folds that lack it."""
    return [f[key] for f in r.get("per_fold") or [] if f.get(key) is not None]


def paired(r: dict, base: dict, key: str) -> tuple[float, int, int] | None:
    """Against ``base`` on the folds both have run: the mean per-fold change of metric ``key``, the
    number of those folds where ``r`` scores higher, and their number (None: no fold in common)."""
    ours = {f["fold"]: f[key] for f in r.get("per_fold") or [] if key in f}
    theirs = {f["fold"]: f[key] for f in base.get("per_fold") or [] if key in f}
    shared = sorted(set(ours) & set(theirs))
    if not shared:
        return None
    return sum(ours[k] - theirs[k] for k in shared) / len(shared), sum(ours[k] > theirs[k] for k in shared), len(shared)
