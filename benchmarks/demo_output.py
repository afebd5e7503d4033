"""The README's demo outputs as a record: what ``emofuse demo`` prints and how long it takes, and
the ``report`` and ``compare`` outputs the README shows on it.

Runs ``emofuse demo`` exactly as a new user does (a fresh folder: synthetic corpus, manifest,
5-fold CV, table) in a temporary directory; then the README's variant with mean pooling
(``emofuse cv demo data.manifest=... model.pooling=mean name=demo_meanpool``), ``emofuse report``
on the demo run and ``emofuse compare`` of the two. Writes ``benchmarks/results/demo_output.json``:
the lines the demo printed, the run's own wall time (``summary.json``), the command's wall time
with start-up, its peak memory, the headline metrics, the load average around it, and the
report's and comparison's markdown (temporary paths replaced by ``emofuse_demo``). The README's
demo, report and compare blocks are rendered from it, so the output a user is told to expect is
the output the code last printed, never a typed copy.

    python benchmarks/demo_output.py              # ~6 min on 2 cores
    python benchmarks/demo_output.py --no-record  # print only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import load_average, run_step, show_record, write_record


def _here(text: str, out: Path) -> str:
    """``text`` with the temporary folder named as the README's default one (no machine path in a record)."""
    return text.replace(str(out), "emofuse_demo")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-record", action="store_true", help="print only; leave the record alone")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="emofuse_demo_") as tmp:
        out = Path(tmp) / "emofuse_demo"
        before = load_average()
        step = run_step("emofuse demo", ["demo", "--out", str(out)], interval=1.0)
        after = load_average()
        runs = out / "runs"
        summary = json.loads((runs / "demo" / "summary.json").read_text())
        run_step("variant", ["cv", "demo", f"data.manifest={out / 'manifest'}", "model.pooling=mean", "name=demo_meanpool",
                             "--no-progress", "--out", str(runs / "demo_meanpool")], interval=1.0)
        run_step("report", ["report", str(runs / "demo")], interval=1.0)
        # from the demo folder, as the README types it: the runs are labelled runs/demo and runs/demo_meanpool
        run_step("compare", ["compare", "runs/demo", "runs/demo_meanpool", "--out", "compare.md"], interval=1.0, cwd=out)
        report_md = _here((runs / "demo" / "report.md").read_text(), out)
        compare_md = _here((out / "compare.md").read_text(), out)
    lines = [_here(line.rstrip(), out) for line in step["output"].splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith("demo (")), None)
    if start is None:
        print("emofuse demo printed no 'demo (...)' table line; its output was:\n" + step["output"][-2000:], file=sys.stderr)
        return 1
    record = {"command": "emofuse demo", "printed": lines[start:], "run_wall_s": summary.get("wall_seconds"),
              "command_wall_s": step["wall_s"], "peak_mib": step["peak_mib"],
              "macro_f1": summary["macro_f1"], "ua": summary["ua"], "wa": summary["wa"],
              "folds": len(summary.get("folds_done", [])), "model": summary.get("model"),
              "load_average": {"before": before, "after": after}, "report_md": report_md, "compare_md": compare_md}
    path = write_record("demo_output", record, quick=args.no_record)
    show_record("demo_output", path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
