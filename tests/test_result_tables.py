"""README tables are generated from committed result records: a table and its record never disagree."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_tables_match_their_records():
    r = subprocess.run([sys.executable, "benchmarks/render_tables.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_table_block_has_a_record():
    import re

    for doc in (REPO / "README.md", REPO / "benchmarks" / "README.md"):
        for name in re.findall(r"<!-- table: ([\w-]+) -->", doc.read_text()):
            assert (REPO / "benchmarks" / "results" / f"{name}.json").is_file(), (doc.name, name)
