"""Several corpora in one manifest (emofuse prepare merge), leave-one-corpus-out folds and the
corpora's official partitions (issue #21), with the leakage audit over all of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import TINY, run_cli
from emofuse.errors import EmofuseError
from emofuse.manifest import read_manifest
from emofuse.prepare import merge_manifests, prepare
from emofuse.splits import LeakageError, audit_split, make_folds, require_passed
from test_corpora_more import write_meld, write_msp
from test_near_duplicates import speechlike

LABELS = ["angry", "happy", "sad", "neutral"]


def csv_corpus(root: Path, speakers: list[str], seed: int, labels=LABELS, copy_from: Path | None = None) -> Path:
    """A csv-layout corpus of speech-like takes (2 per speaker and label); ``copy_from``: its first
    file is added again, resampled to 44.1 kHz and 3 dB louder, as one more utterance."""
    rows = []
    for s_i, spk in enumerate(speakers):
        for i, lab in enumerate(labels * 2):
            p = root / spk / f"take{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, speechlike(1.5, seed=seed + 100 * s_i + i), 16000)
            rows.append({"path": p.relative_to(root).as_posix(), "label": lab, "speaker": spk,
                         "gender": ["female", "male"][s_i % 2]})
    if copy_from is not None:
        import soxr

        x, sr = sf.read(copy_from, dtype="float32")
        y = soxr.resample(x * 10 ** (3 / 20), sr, 44100)
        sf.write(root / speakers[0] / "copy.wav", y, 44100)
        rows.append({"path": f"{speakers[0]}/copy.wav", "label": labels[0], "speaker": speakers[0], "gender": "female"})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory) -> tuple[Path, Path]:
    """Manifests of corpora 'a' (4 speakers) and 'b' (3 speakers, no 'sad'); both name a speaker s1."""
    base = tmp_path_factory.mktemp("corpora")
    out = []
    for name, spk, seed, labels in (("a", ["s1", "s2", "s3", "s4"], 0, LABELS), ("b", ["s1", "t2", "t3"], 5000,
                                                                                  ["angry", "happy", "neutral"])):
        root = csv_corpus(base / name, spk, seed, labels)
        prepare("csv", root, base / f"{name}_manifest", workers=1)
        out.append(base / f"{name}_manifest")
    return out[0], out[1]


def test_merge_namespaces_speakers_and_reports_absent_classes(two_corpora, tmp_path):
    a, b = two_corpora
    summary = merge_manifests([f"a:{a}", f"b:{b}"], tmp_path / "ab", workers=1)
    m = read_manifest(tmp_path / "ab")
    assert sorted(m.df["corpus"].unique()) == ["a", "b"] and len(m.df) == 32 + 18
    assert {"a/s1", "b/s1"} <= set(m.df["speaker"])          # one id in two corpora: two people
    assert m.df["utt_id"].str.startswith(("a/", "b/")).all()
    assert m.classes == ["angry", "happy", "neutral", "sad"]  # the union, aligned by name
    assert m.meta["absent_classes"] == {"a": [], "b": ["sad"]}
    assert any("b has no ['sad'] utterances" in line for line in summary.lines())
    assert all(m.audio_path(p).is_file() for p in m.df["path"])
    assert pd.read_csv(tmp_path / "ab" / "near_duplicates.csv").empty


def test_merge_refuses_a_name_clash_and_a_single_manifest(two_corpora, tmp_path):
    a, b = two_corpora
    with pytest.raises(EmofuseError, match="both named"):
        merge_manifests([str(a), str(b)], tmp_path / "x")  # both prepared as corpus 'csv'
    r = run_cli("prepare", "merge", str(a), "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "two or more manifests" in r.stderr
    with pytest.raises(EmofuseError, match="is one of the manifests being merged"):
        merge_manifests([f"a:{a}", f"b:{b}"], a)  # would overwrite a source
    r = run_cli("prepare", "merge", f"a:{a}", f"b:{b}", "--out", str(tmp_path / "w"), "--class-map", "ravdess4")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--class-map would be ignored" in r.stderr
    r = run_cli("prepare", "merge", f"first:{a}", f"second:{b}", "--out", str(tmp_path / "z"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert sorted(read_manifest(tmp_path / "z").df["corpus"].unique()) == ["first", "second"]


def test_leave_one_corpus_out_folds_and_audit(two_corpora, tmp_path):
    a, b = two_corpora
    merge_manifests([f"a:{a}", f"b:{b}"], tmp_path / "ab", workers=1)
    m = read_manifest(tmp_path / "ab")
    folds = make_folds(m.df, "merge", "leave_one_corpus_out")
    assert [f.test_groups for f in folds] == [["a"], ["b"]]
    assert [f.scheme for f in make_folds(m.df, "merge")] == ["leave_one_corpus_out"] * 2  # the default on a merge
    for f in folds:
        test = f.test_groups[0]
        corpus_of = dict(zip(m.df["utt_id"], m.df["corpus"]))
        assert {corpus_of[u] for u in f.test} == {test} and {corpus_of[u] for u in f.train + f.val} == {"a", "b"} - {test}
        assert f.val and f.train
        assert audit_split(f, m.df, near_duplicates=m.near_duplicates())["passed"]
    (only,) = make_folds(m.df, "merge", "auto", test_corpus="b")
    assert only.scheme == "leave_one_corpus_out" and only.test_groups == ["b"] and only.fold == 0
    with pytest.raises(EmofuseError, match=r"cv.test_corpus=c: not a corpus of this manifest; use one of \['a', 'b'\]"):
        make_folds(m.df, "merge", "leave_one_corpus_out", test_corpus="c")
    with pytest.raises(EmofuseError, match="emofuse prepare merge"):
        make_folds(read_manifest(a).df, "csv", "leave_one_corpus_out")
    with pytest.raises(EmofuseError, match="belongs to cv.scheme=leave_one_corpus_out"):
        make_folds(m.df, "merge", "speaker", test_corpus="b")


def test_a_recording_shared_across_corpora_fails_the_audit(two_corpora, tmp_path):
    """Corpus c holds a resampled, louder copy of one of corpus a's files under its own speaker."""
    a, _ = two_corpora
    src = read_manifest(a)
    first = src.audio_path(src.df["path"][0])
    root = csv_corpus(tmp_path / "c", ["u1", "u2", "u3"], 9000, copy_from=first)
    prepare("csv", root, tmp_path / "c_manifest", workers=1)
    merge_manifests([f"a:{a}", f"c:{tmp_path / 'c_manifest'}"], tmp_path / "ac", workers=1)
    m = read_manifest(tmp_path / "ac")
    pairs = pd.read_csv(tmp_path / "ac" / "near_duplicates.csv")
    assert len(pairs) == 1 and {pairs["utt_a"][0][:2], pairs["utt_b"][0][:2]} == {"a/", "c/"}
    audits = [audit_split(f, m.df, near_duplicates=m.near_duplicates()) for f in make_folds(m.df, "merge", "leave_one_corpus_out")]
    assert not any(a["passed"] for a in audits)
    with pytest.raises(LeakageError, match="emofuse prepare merge"):
        require_passed(audits, tmp_path / "run")


def test_cv_trains_on_one_corpus_and_tests_on_another(two_corpora, tmp_path):
    a, b = two_corpora
    merge_manifests([f"a:{a}", f"b:{b}"], tmp_path / "ab", workers=1)
    r = run_cli("cv", "demo", f"data.manifest={tmp_path / 'ab'}", *TINY, "cv.test_corpus=b", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr[-3000:]
    audit = json.loads((tmp_path / "run" / "fold_0" / "audit.json").read_text())
    assert audit["scheme"] == "leave_one_corpus_out" and audit["test_groups"] == ["b"] and audit["passed"]
    assert all(s.startswith("b/") for s in audit["speakers"]["test"])
    assert all(s.startswith("a/") for s in audit["speakers"]["train"] + audit["speakers"]["val"])
    assert not (tmp_path / "run" / "fold_1").exists()
    bad = run_cli("cv", "demo", f"data.manifest={tmp_path / 'ab'}", *TINY, "cv.test_corpus=zz", "--out", str(tmp_path / "r2"))
    assert bad.returncode == 2 and "cv.test_corpus=zz" in bad.stderr and "Traceback" not in bad.stderr


# --- official partitions ------------------------------------------------------------------------------

def test_official_partitions_are_the_default_for_msppodcast(tmp_path):
    prepare("msppodcast", write_msp(tmp_path / "msp"), tmp_path / "m", workers=1)
    m = read_manifest(tmp_path / "m")
    folds = make_folds(m.df, "msppodcast")
    assert [f.scheme for f in folds] == ["official", "official"] and [f.test_groups for f in folds] == [["Test1"], ["Test2"]]
    part = dict(zip(m.df["utt_id"], m.df["official_split"]))
    for f in folds:
        assert {part[u] for u in f.train} == {"Train"} and {part[u] for u in f.val} == {"Development"}
        assert {part[u] for u in f.test} == set(f.test_groups)
    audits = [audit_split(f, m.df, near_duplicates=m.near_duplicates()) for f in folds]
    require_passed(audits, tmp_path)  # speaker independent: passes
    with pytest.raises(EmofuseError, match="drop cv.n_folds"):
        make_folds(m.df, "msppodcast", "official", n_folds=3)


def test_meld_official_partitions_are_refused_in_one_line(tmp_path):
    r = run_cli("prepare", "meld", str(write_meld(tmp_path / "MELD.Raw")), "--out", str(tmp_path / "m"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    m = read_manifest(tmp_path / "m")
    assert make_folds(m.df, "meld")[0].scheme == "speaker"  # auto skips partitions that share speakers
    r = run_cli("folds", str(tmp_path / "m"), "--scheme", "official", "--out", str(tmp_path / "folds"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "official partitions fail the leakage audit" in line and "share speakers or recordings" in line
    assert "use cv.scheme=speaker" in line and "meld_Ross" in line


def test_official_needs_a_partition_on_every_row(tmp_path):
    df = pd.DataFrame({"utt_id": ["a", "b", "c"], "speaker": ["1", "2", "3"], "session": ["1", "2", "3"],
                       "gender": ["", "", ""], "official_split": ["train", "", "test"]})
    assert make_folds(df, "x", "auto", n_folds=3)[0].scheme == "speaker"
    with pytest.raises(EmofuseError, match="1 utterances have no official partition .first: b.; use cv.scheme=speaker"):
        make_folds(df, "x", "official")
    with pytest.raises(EmofuseError, match="no official_split column"):
        make_folds(df.drop(columns="official_split"), "x", "official")
    with pytest.raises(EmofuseError, match="no development/validation part for model selection; use cv.scheme=speaker"):
        make_folds(df.assign(official_split=["train", "train", "test"]), "x", "official")
    assert make_folds(df.assign(official_split=["train", "train", "test"]), "x", "auto", n_folds=3)[0].scheme == "speaker"
    df["official_split"] = ["train", "holdout", "test"]
    with pytest.raises(EmofuseError, match=r"unknown partition names \['holdout'\]"):
        make_folds(df, "x", "official")
