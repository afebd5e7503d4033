"""Untrusted inputs: speaker ids that differ by case, metadata CSV encodings, colliding file names,
predict on folders with bad files, read-only outputs, damaged cache shards, a full disk."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from conftest import tone
from emofuse.errors import EmofuseError
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


# -- C: metadata CSV encodings and colliding file names ---------------------------------------------

def test_bom_prefixed_utf8_csv_reads_its_first_column(tmp_path):
    rows = [{"path": f"c{i}.wav", "label": lab, "speaker": spk, "text": "café"}
            for i, (lab, spk) in enumerate([("ang", "a"), ("sad", "a"), ("ang", "b")])]
    root = _csv_corpus(tmp_path / "c", rows, encoding="utf-8-sig")  # what Excel's "CSV UTF-8" writes
    assert (root / "metadata.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    prepare("csv", root, tmp_path / "m", workers=1)
    df = read_manifest(tmp_path / "m").df
    assert len(df) == 3 and df["text"].tolist() == ["café"] * 3


def test_non_utf8_csv_is_one_line_naming_the_file_and_the_fix(tmp_path):
    rows = [{"path": f"c{i}.wav", "label": "ang", "speaker": "Jérôme"} for i in range(2)]
    root = _csv_corpus(tmp_path / "c", rows, encoding="latin-1")
    with pytest.raises(EmofuseError) as info:
        prepare("csv", root, tmp_path / "m", workers=1)
    msg = str(info.value)
    assert "\n" not in msg and "metadata.csv" in msg and "save it as UTF-8" in msg


def test_same_name_different_extension_get_distinct_ids(tmp_path):
    rows = [{"path": "x.wav", "label": "ang", "speaker": "a"}, {"path": "x.flac", "label": "sad", "speaker": "a"},
            {"path": "sub/y.wav", "label": "ang", "speaker": "b"}, {"path": "z.wav", "label": "sad", "speaker": "b",
                                                                     "utt_id": "given"}]
    s = prepare("csv", _csv_corpus(tmp_path / "c", rows), tmp_path / "m", workers=1)
    assert not s.problems
    df = read_manifest(tmp_path / "m").df.set_index("path")
    # Only the colliding ids keep their extension; the others stay as before.
    assert df.loc["x.wav", "utt_id"] == "x.wav" and df.loc["x.flac", "utt_id"] == "x.flac"
    assert df.loc["sub/y.wav", "utt_id"] == "sub_y" and df.loc["z.wav", "utt_id"] == "given"
    # The same file listed twice is still a duplicate.
    rows.append({"path": "sub/y.wav", "label": "ang", "speaker": "b"})
    s = prepare("csv", _csv_corpus(tmp_path / "c2", rows), tmp_path / "m2", workers=1)
    assert [p.reason for p in s.problems] == ["duplicate utt_id"]


def test_ravdess_same_stem_two_extensions_get_distinct_ids(tmp_path):
    from conftest import write_ravdess

    root = write_ravdess(tmp_path / "r", actors=(1, 2), emotions=("01", "05"), sr=16000, channels=1)
    wav = next((root / "Actor_01").glob("*.wav"))
    sf.write(wav.with_suffix(".flac"), tone(0.6, 16000, 300), 16000, format="FLAC")
    s = prepare("ravdess", root, tmp_path / "m", workers=1)
    assert not s.problems
    ids = set(read_manifest(tmp_path / "m").df["utt_id"])
    assert {wav.name, wav.with_suffix(".flac").name} <= ids and wav.stem not in ids and len(ids) == 9


def test_transcripts_csv_with_bom_and_non_utf8(tmp_path):
    from emofuse.cli import _read_transcripts

    f = tmp_path / "t.csv"
    f.write_bytes("utt,text\nclip,héllo\n".encode("utf-8-sig"))
    assert _read_transcripts(str(f)) == {"clip": "héllo"}
    f.write_bytes("utt,text\nclip,héllo\n".encode("latin-1"))
    with pytest.raises(EmofuseError, match=r"t\.csv.*save it as UTF-8"):
        _read_transcripts(str(f))


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody can create files in (chmod; for root, the immutable attribute)."""
    import os
    import subprocess

    d = tmp_path / "ro"
    d.mkdir()
    os.chmod(d, 0o555)
    immutable = False
    if os.access(d, os.W_OK):  # root ignores permission bits
        immutable = subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("cannot make a read-only folder here")
    yield d
    if immutable:
        subprocess.run(["chattr", "-i", str(d)], capture_output=True)
    os.chmod(d, 0o755)


def test_check_writable(tmp_path, readonly_dir):
    from emofuse.writable import check_writable

    assert check_writable(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # asking creates nothing
    with pytest.raises(EmofuseError, match=r"ro/sub: cannot write the cache there \(its nearest existing folder .*ro\).*; fix it"):
        check_writable(readonly_dir / "sub", "cache", "fix it")
    (tmp_path / "f").write_text("x")
    with pytest.raises(EmofuseError, match="is a file, not a folder"):
        check_writable(tmp_path / "f" / "out")


# -- D: predict on a folder with bad files ------------------------------------------------------------

@pytest.fixture(scope="module")
def fold_run(synth_manifest, tmp_path_factory):
    from conftest import TINY, run_cli

    run = tmp_path_factory.mktemp("robust_predict") / "run"
    r = run_cli("train", "demo", "--fold", "0", f"data.manifest={synth_manifest}", *TINY, "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    return run / "fold_0"


def _clips(folder):
    folder.mkdir()
    sf.write(folder / "good.wav", tone(1.0, 16000, 200.0), 16000)
    sf.write(folder / "also_good.flac", tone(1.2, 16000, 180.0), 16000, format="FLAC")
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(folder / "silent.wav", tone(1.0, 16000) * 0, 16000)
    return folder


def test_predict_skips_bad_files_names_them_and_writes_the_rest(fold_run, tmp_path):
    from conftest import run_cli

    clips = _clips(tmp_path / "clips")
    for out in (tmp_path / "p.csv", tmp_path / "p.json"):
        r = run_cli("predict", str(fold_run), str(clips), "--out", str(out), "--device", "cpu", timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        skipped = [ln for ln in r.stderr.splitlines() if ln.startswith("emofuse: skipped")]
        assert len(skipped) == 2 and any("broken.wav" in ln and "cannot decode" in ln for ln in skipped)
        assert any("silent.wav" in ln and "silent" in ln.split("silent.wav")[1] for ln in skipped)
        assert "Traceback" not in r.stderr and "2 files skipped" in r.stderr
        rows = (pd.read_csv(out, keep_default_na=False).to_dict("records") if out.suffix == ".csv"
                else json.loads(out.read_text()))
        by = {row["utt"]: row for row in rows}
        assert set(by) == {"good", "also_good", "broken", "silent"}
        assert by["good"]["skipped"] == "" and by["good"]["pred"] in ("angry", "happy", "sad", "neutral")
        assert by["broken"]["pred"] == "" and "cannot decode" in by["broken"]["skipped"]


def test_predict_with_nothing_predictable_fails_and_writes_nothing(fold_run, tmp_path):
    from conftest import run_cli

    clips = tmp_path / "bad"
    clips.mkdir()
    (clips / "a.wav").write_bytes(b"junk")
    (clips / "b.wav").write_bytes(b"junk too")
    r = run_cli("predict", str(fold_run), str(clips), "--out", str(tmp_path / "p.csv"), "--device", "cpu", timeout=300)
    assert r.returncode == 2 and "none of the 2 files could be predicted" in r.stderr.splitlines()[-1]
    assert not (tmp_path / "p.csv").exists()


def test_predict_to_a_read_only_place_stops_before_any_work(fold_run, tmp_path, readonly_dir):
    from conftest import run_cli

    clips = _clips(tmp_path / "clips")
    r = run_cli("predict", str(fold_run), str(clips), "--out", str(readonly_dir / "p.csv"), "--device", "cpu", timeout=300)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "ro: cannot write the predictions there" in lines[0] and "--out" in lines[0]


# -- E: read-only outputs, damaged shards, a full disk -------------------------------------------------

def test_prepare_into_a_read_only_place_stops_before_any_work(tmp_path, readonly_dir, monkeypatch):
    import emofuse.prepare as prep

    rows = [{"path": f"c{i}.wav", "label": "ang", "speaker": "a"} for i in range(2)]
    root = _csv_corpus(tmp_path / "c", rows)
    monkeypatch.setattr(prep, "get_corpus", lambda name: pytest.fail("parsed the corpus before checking --out"))
    with pytest.raises(EmofuseError, match=r"ro/m: cannot write the manifest there.*--out"):
        prepare("csv", root, readonly_dir / "m", workers=1)


def test_read_only_run_folder_and_cache_are_one_line(synth_manifest, tmp_path, readonly_dir):
    from conftest import run_cli

    r = run_cli("cv", "demo", f"data.manifest={synth_manifest}", "--out", str(readonly_dir / "run"), timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "ro/run: cannot write the run folder there" in lines[0] and "--out" in lines[0]
    r = run_cli("features", str(synth_manifest), "--cache", str(readonly_dir), timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "cannot write the feature cache there" in lines[0] and "data.cache_dir" in lines[0]


def _fill(arrays, n_jobs=3, per_job=4, dim=3):
    import numpy as np

    jobs = [([f"k{j}_{i}" for i in range(per_job)], (j, per_job, dim)) for j in range(n_jobs)]
    return arrays.fill(_make_arrays, jobs, workers=1), jobs


def _make_arrays(payload):
    import numpy as np

    j, n, dim = payload
    return [np.full((5 + i, dim), j * 10 + i, dtype=np.float32) for i in range(n)]


@pytest.mark.parametrize("damage", ["truncated_npy", "short_index", "garbled_csv", "empty_npy"])
def test_a_damaged_shard_is_set_aside_and_its_items_recomputed(tmp_path, capsys, damage):
    import numpy as np

    from emofuse.shards import ShardedArrays

    arrays = ShardedArrays(tmp_path / "c", {"x": 1})
    n, jobs = _fill(arrays)
    assert n == 12
    npy, csv = tmp_path / "c" / "shard-00001.npy", tmp_path / "c" / "shard-00001.csv"
    if damage == "truncated_npy":
        npy.write_bytes(npy.read_bytes()[:-40])  # a copy or a write cut short
    elif damage == "short_index":
        csv.write_text(csv.read_text().replace(",8\n", ",80\n"))  # the index names rows the array lacks
    elif damage == "garbled_csv":
        csv.write_bytes(b"\x00\x01garbage")
    else:
        npy.write_bytes(b"")
    capsys.readouterr()
    again = ShardedArrays(tmp_path / "c", {"x": 1})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shard-00001" in err[0] and "set aside" in err[0] and "recomputed" in err[0]
    assert (tmp_path / "c" / "shard-00001.npy.bad").exists() and not npy.exists() and not csv.exists()
    keys = [k for ks, _ in jobs for k in ks]
    assert again.missing(keys) == jobs[1][0]  # only the damaged shard's items
    assert np.array_equal(again.get("k2_1"), np.full((6, 3), 21, dtype=np.float32))
    assert again.fill(_make_arrays, [jobs[1]], workers=1) == 4
    assert ShardedArrays(tmp_path / "c", {"x": 1}).missing(keys) == []
    assert float(ShardedArrays(tmp_path / "c", {"x": 1}).get("k1_3")[0, 0]) == 13.0


def test_a_full_disk_while_caching_is_one_line_and_keeps_finished_shards(tmp_path, monkeypatch):
    import errno

    import emofuse.shards as shards

    real, calls = shards._save_rows, []

    def writer(path, arrays, rows):  # the second shard's write hits a full disk half way
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, arrays, rows)

    monkeypatch.setattr(shards, "_save_rows", writer)
    arrays = shards.ShardedArrays(tmp_path / "c", {"x": 1})
    with pytest.raises(EmofuseError) as info:
        _fill(arrays)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "c") in msg and "No space left" in msg and "cache_dir" in msg
    assert "4 items finished before are kept" in msg
    monkeypatch.setattr(shards, "_save_rows", real)
    again = shards.ShardedArrays(tmp_path / "c", {"x": 1})
    assert len(again) == 4 and not list((tmp_path / "c").glob(".*.tmp.npy"))


def test_features_command_on_a_full_disk_is_one_line(synth_manifest, tmp_path, monkeypatch, capsys):
    import errno

    import emofuse.shards as shards
    from emofuse.cli import main

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards, "_write_shard", full)
    rc = main(["features", str(synth_manifest), "--cache", str(tmp_path / "cache"), "--workers", "1"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("emofuse")]
    assert rc == 2 and len(err) == 1 and "No space left on device" in err[0] and "--cache" in err[0]
