"""Untrusted inputs: speaker ids that differ by case, metadata CSV encodings, colliding file names,
predict on folders with bad files, read-only outputs, damaged cache shards, a full disk."""

from __future__ import annotations

import json

import pandas as pd
import soundfile as sf

from conftest import tone
from emofuse.manifest import read_manifest
from emofuse.prepare import prepare


def _csv_corpus(root, rows, name="metadata.csv", encoding="utf-8", seconds=0.6):
    """Audio files for each row's path (tones), and the metadata CSV in ``encoding``."""
    root.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(rows):
        p = root / r["path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            sf.write(p, tone(seconds, 16000, 150 + 10 * i, seed=i), 16000, format=p.suffix[1:].upper())
    (root / name).write_bytes(pd.DataFrame(rows).to_csv(index=False).encode(encoding))
    return root


# -- B: speaker ids that differ only by case -----------------------------------------------------

def test_speakers_differing_only_by_case_are_one_person_with_a_warning(tmp_path):
    rows = [{"path": f"c{i}.wav", "label": lab, "speaker": spk}
            for i, (lab, spk) in enumerate([("ang", "SPK2"), ("sad", "spk2"), ("ang", "Spk2"), ("sad", "SPK2"),
                                            ("ang", "a"), ("sad", "b")])]
    root = _csv_corpus(tmp_path / "c", rows)
    s = prepare("csv", root, tmp_path / "m", workers=1)
    text = "\n".join(s.lines())
    assert "differ only by case" in text and "'SPK2'" in text and "'spk2'" in text and "'Spk2'" in text
    m = read_manifest(tmp_path / "m")
    # One person to the fold builder: the most frequent spelling names all of them (session too).
    assert sorted(m.df["speaker"].unique()) == ["SPK2", "a", "b"]
    assert set(m.df.loc[m.df["speaker"] == "SPK2", "session"]) == {"SPK2"}
    meta = json.loads((tmp_path / "m" / "prepare.json").read_text())
    assert meta["speaker_case_merged"] == [{"speaker": "SPK2", "spellings": ["SPK2", "Spk2", "spk2"]}]
    # Distinct ids give no warning.
    rows2 = [{**r, "speaker": r["speaker"].replace("spk2", "x").replace("Spk2", "y")} for r in rows]
    s2 = prepare("csv", _csv_corpus(tmp_path / "c2", rows2), tmp_path / "m2", workers=1)
    assert "case" not in "\n".join(s2.lines())
    assert "speaker_case_merged" not in json.loads((tmp_path / "m2" / "prepare.json").read_text())
