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
