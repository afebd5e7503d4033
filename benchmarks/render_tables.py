"""Rewrite the README tables that come from committed result records (never typed by hand).

A table block in README.md or benchmarks/README.md looks like::

    <!-- table: transcript_overlap -->
    ...generated...
    <!-- /table -->

and is regenerated from ``benchmarks/results/<name>.json`` by the renderer of that name below.
``python benchmarks/render_tables.py`` rewrites every block; ``--check`` only says which differ
(the test suite runs the check, so a table and its record cannot disagree).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DOCS = [REPO / "README.md", REPO / "benchmarks" / "README.md"]
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _pm(m: dict) -> str:
    return f"{m['mean']:.3f} ± {m['std']:.3f}"


def transcript_overlap(rec: dict) -> str:
    lines = ["| model | protocol | test lines seen in training (all / 3+ words) | training items left out per fold "
             "| Macro-F1 | UA | test: scripted | test: improvised | test: line seen | test: line unseen |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        ov, sub = r["overlap"], r["subsets"]
        cell = lambda name: f"{sub[name]['macro_f1']:.3f} (n={sub[name]['n']})" if name in sub else "-"  # noqa: E731
        lines.append(f"| `{r['model']}` | {r['protocol']} | {ov['test_share']:.0%} / {ov['test_share_min_words']:.0%} | "
                     f"{', '.join(map(str, ov['removed_from_train']))} | {_pm(r['macro_f1'])} | {_pm(r['ua'])} | "
                     f"{cell('scripted')} | {cell('improvised')} | {cell('transcript_seen')} | {cell('transcript_unseen')} |")
    lines.append("")
    lines.append(f"Record `benchmarks/results/transcript_overlap.json` ({rec['command']}; commit {rec['commit']}, "
                 f"{rec['date']}, {rec['machine']}). Subset columns: Macro-F1 over the test items of that kind, folds pooled.")
    return "\n".join(lines) + "\n"


def cross_corpus(rec: dict) -> str:
    ins, cross, train = rec["in_corpus_test"], rec["cross_corpus"], rec["train"]
    counts = cross["counts"]
    lines = ["| trained on | evaluated on | utterances | Macro-F1 | UA | WA |", "|---|---|---|---|---|---|",
             f"| {train['corpus']} {train['class_map']}, fold {train['fold']} train part | {train['corpus']} fold "
             f"{train['fold']} test part (unseen actors) | {ins.get('n', '-')} | {ins['macro_f1']:.3f} | {ins['ua']:.3f} | "
             f"{ins['wa']:.3f} |",
             f"| {train['corpus']} {train['class_map']}, fold {train['fold']} train part | {cross['corpus']} | "
             f"{counts['evaluated']} of {counts['manifest']} | {cross['macro_f1']:.3f} | {cross['ua']:.3f} | {cross['wa']:.3f} |",
             ""]
    left = ", ".join(f"{k} {v}" for k, v in counts["not_predictable_by_class"].items()) or "none"
    lines.append(f"Chance UA {rec['chance_ua']:.2f}. Left out of the cross-corpus metrics: classes the run cannot "
                 f"predict ({left}), audio it trained on ({counts['audio_the_run_trained_on']}). Record "
                 f"`benchmarks/results/cross_corpus.json` ({rec['command']}; commit {rec['commit']}, {rec['date']}, "
                 f"{rec['machine']}; {rec['model']}, {' '.join(rec['recipe'])}; train {rec['wall_seconds']['train']:.0f} s, "
                 f"evaluate {rec['wall_seconds']['evaluate']:.0f} s).")
    return "\n".join(lines) + "\n"


RENDERERS = {"transcript_overlap": transcript_overlap, "cross_corpus": cross_corpus}


def render(text: str) -> str:
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"README table {name!r} has no renderer in benchmarks/render_tables.py")
        record = RESULTS / f"{name}.json"
        if not record.is_file():
            raise SystemExit(f"README table {name!r}: record {record} is missing; run its benchmark")
        return m.group(1) + RENDERERS[name](json.loads(record.read_text())) + m.group(4)

    return BLOCK.sub(sub, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a table differs from its record")
    args = ap.parse_args()
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        new = render(text)
        if new != text:
            stale.append(doc)
            if not args.check:
                doc.write_text(new)
    verb = "differ from their records" if args.check else "rewritten"
    print(f"{len(stale)} file(s) {verb}: {', '.join(str(d.relative_to(REPO)) for d in stale) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
