"""`emofuse compare` and the report's statistics, on run folders the tests write (no training),
and one real `cv` run end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import TINY, assert_tables_whole, run_cli
from emofuse.metrics import HEADLINE, compute_metrics, summarize
from emofuse.report import compare_runs, write_report

CLASSES = ["angry", "happy", "sad", "neutral"]
K = len(CLASSES)


def items(seed: int = 0, n_speakers: int = 12, per_speaker: int = 60, n_folds: int = 6, classes=CLASSES):
    rng = np.random.default_rng(seed)
    spk = np.repeat([f"spk{i:02d}" for i in range(n_speakers)], per_speaker)
    folds = np.repeat(np.arange(n_speakers) % n_folds, per_speaker)
    y = rng.integers(0, len(classes), len(spk))
    return y, spk, folds


def predictions(y, accuracy: float, rng) -> np.ndarray:
    right = rng.random(len(y)) < accuracy
    return np.where(right, y, (y + rng.integers(1, K, len(y))) % K)


def fake_run(path: Path, y, pred, spk, folds, classes=CLASSES, corpus="iemocap", model="cnn_bilstm",
             modalities=("audio",), done=None, split_salt: str = "", audit: bool = True) -> Path:
    """A run folder as `emofuse cv` leaves it, from given labels and predictions."""
    path.mkdir(parents=True)
    n_folds = int(folds.max()) + 1
    done = list(range(n_folds)) if done is None else done
    (path / "audit.json").write_text(json.dumps({"passed": audit, "guarantees": {"speakers": "disjoint"}}))
    fold_metrics = []
    utt = np.array([f"u{i:05d}" for i in range(len(y))])
    for k in range(n_folds):
        fd = path / f"fold_{k}"
        fd.mkdir()
        test = folds == k
        split = pd.DataFrame({"utt_id": utt, "speaker": spk, "part": np.where(test, "test", "train")})
        split.to_csv(fd / "split.csv", index=False)
        if split_salt:
            with open(fd / "split.csv", "a") as f:
                f.write(f"{split_salt},x,val\n")
        if k not in done:
            continue
        probs = np.eye(len(classes))[pred[test]] * 0.7 + 0.3 / len(classes)
        table = pd.DataFrame({"utt_id": utt[test], "speaker": spk[test], "label": [classes[i] for i in y[test]],
                              "pred": [classes[i] for i in pred[test]]})
        for i, c in enumerate(classes):
            table[f"p_{c}"] = probs[:, i]
        table.to_csv(fd / "predictions.csv", index=False)
        m = compute_metrics(y[test], pred[test], classes)
        fold_metrics.append({"fold": k, "test": m, "test_groups": sorted(set(spk[test]))})
    s = summarize([m["test"] for m in fold_metrics], classes)
    s.update({"complete": len(done) == n_folds, "folds_done": done, "n_folds": n_folds, "model": model,
              "modalities": list(modalities), "augmentation": "none", "classes": list(classes), "corpus": corpus,
              "manifest": str(path / "nowhere" / "manifest.csv"), "scheme": "speaker", "name": None,
              "per_fold": [{"fold": m["fold"], "test_groups": m["test_groups"], "best_epoch": 1,
                            **{k: m["test"][k] for k in HEADLINE}} for m in fold_metrics]})
    (path / ("summary.json" if s["complete"] else "summary.partial.json")).write_text(json.dumps(s))
    (path / "inputs").mkdir()
    gender = np.array(["female" if int(re.sub(r"\D", "", s_) or 0) % 2 == 0 else "male" for s_ in spk])
    pd.DataFrame({"utt_id": utt, "speaker": spk, "gender": gender, "label": [classes[i] for i in y]}).to_csv(
        path / "inputs" / "manifest.csv", index=False)
    return path


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of Markdown table rows whose first cell is ``first_cell``."""
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0] == first_cell:
            out.append(cells)
    return out


def test_truly_better_run_wins_with_a_plain_sentence(tmp_path):
    y, spk, folds = items(1)
    rng = np.random.default_rng(2)
    a = predictions(y, 0.45, rng)
    b = np.where(rng.random(len(y)) < 0.15, y, a)  # right on a random 15% more of the items
    ra = fake_run(tmp_path / "runs" / "baseline", y, a, spk, folds)
    rb = fake_run(tmp_path / "runs" / "better", y, b, spk, folds, model="resnet18")
    text = compare_runs([ra, rb], b=1000)
    rows = {r[1]: r for r in table_rows(text, "1") + table_rows(text, "2")}
    assert rows[str(rb)][0] == "1" and rows[str(ra)][0] == "2", "ranked by Macro-F1"
    assert rows[str(rb)][2:6] == ["iemocap", "angry/happy/sad/neutral", "resnet18", "audio"]
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", rows[str(rb)][8])
    sentence = re.search(rf"- {re.escape(str(rb))} beats {re.escape(str(ra))} by (0\.\d+) Macro-F1.*", text)
    assert sentence, text
    assert "6/6 folds" in sentence.group(0) and "95% CI [+0." in sentence.group(0)
    assert sentence.group(0).endswith(": a difference at the 5% level.")
    assert "smallest two-sided p this test can give is 0.03125" in text
    paired = table_rows(text, str(rb))
    mf1 = [r for r in paired if r[1] == "Macro-F1"][0]
    assert mf1[4] == "6/6" and float(mf1[8]) < 0.01 and mf1[7].startswith("[+0.")
    assert "chance (uniform guess)" in text and "majority (always" in text


def test_equal_runs_are_not_called_different(tmp_path):
    y, spk, folds = items(3)
    verdicts = []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        ra = fake_run(tmp_path / f"s{seed}" / "a", y, predictions(y, 0.5, rng), spk, folds)
        rb = fake_run(tmp_path / f"s{seed}" / "b", y, predictions(y, 0.5, rng), spk, folds)
        text = compare_runs([ra, rb], b=500, seed=seed)
        verdicts.append("no evidence of a difference at the 5% level" in text)
    assert sum(verdicts) >= 4, verdicts


def test_different_corpora_or_folds_are_never_ranked_together(tmp_path):
    y, spk, folds = items(4)
    rng = np.random.default_rng(0)
    a = fake_run(tmp_path / "a", y, predictions(y, 0.5, rng), spk, folds)
    same = fake_run(tmp_path / "same", y, predictions(y, 0.6, rng), spk, folds)
    other_folds = fake_run(tmp_path / "other_folds", y, predictions(y, 0.9, rng), spk, folds, split_salt="u99999")
    other_corpus = fake_run(tmp_path / "ravdess_run", y, predictions(y, 0.9, rng), spk, folds, corpus="ravdess")
    text = compare_runs([a, same, other_folds, other_corpus], b=200)
    assert "never ranked together" in text
    groups = re.split(r"^## Group \d+", text, flags=re.M)[1:]
    assert len(groups) == 3
    assert str(a) in groups[0] and str(same) in groups[0] and str(other_folds) not in groups[0]
    assert str(other_folds) in groups[1] and str(other_corpus) in groups[2] and "ravdess" in groups[2]
    assert f"Paired with {a}" in groups[0] and "Paired" not in groups[1] + groups[2]


def test_unfinished_partial_and_failed_runs_are_listed_not_ranked(tmp_path):
    y, spk, folds = items(5)
    rng = np.random.default_rng(0)
    a = fake_run(tmp_path / "a", y, predictions(y, 0.5, rng), spk, folds)
    partial = fake_run(tmp_path / "partial", y, predictions(y, 0.6, rng), spk, folds, done=[0, 2])
    failed = fake_run(tmp_path / "failed", y, predictions(y, 0.9, rng), spk, folds, audit=False)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "audit.json").write_text(json.dumps({"passed": True}))
    text = compare_runs([a, partial, failed, fresh, tmp_path / "nothing"], b=200)
    assert table_rows(text, "partial")[0][1] == str(partial) and table_rows(text, "partial")[0][7] == "2/6"
    assert "folds compared: 0, 2" in text
    not_ranked = {r[0]: r[1] for r in table_rows(text, str(failed)) + table_rows(text, str(fresh))
                  + table_rows(text, str(tmp_path / "nothing"))}
    assert not_ranked == {str(failed): "audit failed", str(fresh): "unfinished: no fold finished yet (no summary.json)",
                          str(tmp_path / "nothing"): "not a run folder"}
    assert "0.9" not in "".join(text.split("## Not ranked")[1])


def test_compare_escapes_values_and_keeps_tables_whole(tmp_path):
    hostile = ["<b>bold</b>", "a|b", "[x](javascript:alert(1))", "neutral"]
    y, spk, folds = items(6, classes=hostile)
    spk = np.array([s.replace("spk0", "<i>s</i>|") for s in spk])
    rng = np.random.default_rng(0)
    a = fake_run(tmp_path / "a|<b>x</b>", y, predictions(y, 0.5, rng), spk, folds, classes=hostile, corpus="<script>")
    b = fake_run(tmp_path / "b", y, predictions(y, 0.6, rng), spk, folds, classes=hostile, corpus="<script>")
    text = compare_runs([a, b], b=200)
    assert "<b>" not in text and "<script>" not in text and not re.search(r"(?<!\\)\]\(javascript:", text)
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert_tables_whole(text)


def test_compare_command_writes_its_table(tmp_path):
    y, spk, folds = items(7)
    rng = np.random.default_rng(0)
    a = fake_run(tmp_path / "a", y, predictions(y, 0.5, rng), spk, folds)
    b = fake_run(tmp_path / "b", y, predictions(y, 0.7, rng), spk, folds)
    r = run_cli("compare", str(a), str(b), str(tmp_path / "missing"), "--out", str(tmp_path / "t.md"), "--seed", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "t.md").read_text() == r.stdout and f"{b} beats {a}" in r.stdout and "not a run folder" in r.stdout


def test_report_has_intervals_breakdowns_and_baselines(tmp_path):
    y, spk, folds = items(8)
    run = fake_run(tmp_path / "run", y, predictions(y, 0.6, np.random.default_rng(0)), spk, folds)
    write_report(run, cams=0)
    md = (run / "report.md").read_text()
    page = (run / "report.html").read_text()
    ci = {r[0]: r for r in table_rows(md, "Macro-F1") + table_rows(md, "UA") + table_rows(md, "WA")}
    assert set(ci) == {"Macro-F1", "UA", "WA"} and all(len(r) == 7 for r in ci.values())
    assert ci["WA"][3] == f"{(predictions(y, 0.6, np.random.default_rng(0)) == y).mean():.3f}"
    assert ci["UA"][5] == "0.250", "chance UA is 1/K"
    for needle in ("t interval over 6 folds", "speaker bootstrap: 12 test speakers", "B=1000",
                   "majority (always", "| precision | recall | F1 | support |", "Per speaker"):
        assert needle in md, needle
        assert needle.replace("|", "").strip().split(" ")[0] in page
    assert sum(int(r[4]) for r in table_rows(md, "angry") + table_rows(md, "happy") + table_rows(md, "sad")
               + table_rows(md, "neutral") if len(r) == 5) == len(y), "supports add up to the test items"
    assert len([ln for ln in md.splitlines() if re.match(r"\| spk\d\d \|", ln)]) == 12
    genders = {r[0]: r for r in table_rows(md, "female") + table_rows(md, "male")}
    assert set(genders) == {"female", "male"} and sum(int(r[2]) for r in genders.values()) == len(y)
    assert genders["female"][1] == "6", "speakers per gender"
    assert "Per gender" in page


def test_report_says_why_pooled_statistics_are_missing(tmp_path):
    y, spk, folds = items(9)
    run = fake_run(tmp_path / "run", y, predictions(y, 0.6, np.random.default_rng(0)), spk, folds)
    (run / "fold_3" / "predictions.csv").unlink()
    write_report(run, cams=0)
    md = (run / "report.md").read_text()
    assert "pooled statistics skipped:" in md and "fold_3/predictions.csv is missing" in md
    assert "t interval over 6 folds" in md


def test_report_says_why_there_is_no_gender_table(tmp_path):
    y, spk, folds = items(11)
    run = fake_run(tmp_path / "run", y, predictions(y, 0.6, np.random.default_rng(0)), spk, folds)
    m = pd.read_csv(run / "inputs" / "manifest.csv")
    m.drop(columns="gender").to_csv(run / "inputs" / "manifest.csv", index=False)
    write_report(run, cams=0)
    md = (run / "report.md").read_text()
    assert "per-gender results skipped:" in md and "no gender column" in md and "Per speaker" in md


def test_real_cv_runs_compare_and_report(synth_manifest, tmp_path):
    """The real `cv` twice (two models, the same folds): compare pairs them, the report has the sections."""
    runs = []
    for model in ("demo", "demo"):
        run = tmp_path / f"run{len(runs)}"
        r = run_cli("cv", model, f"data.manifest={synth_manifest}", *TINY, "--folds", "0,1", "--out", str(run),
                    *(["seed=1"] if runs else []))
        assert r.returncode == 0, r.stderr[-3000:]
        runs.append(run)
    r = run_cli("compare", *map(str, runs))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"Paired with {runs[0]}" in r.stdout and "folds compared: 0, 1" in r.stdout
    assert "partial" in r.stdout and "iemocap" in r.stdout and "permutation p" in r.stdout
    r = run_cli("report", str(runs[0]), "--cams", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    md = (runs[0] / "report.md").read_text()
    assert "speaker bootstrap" in md and "| class | precision | recall | F1 | support |" in md


def test_too_few_resamples_is_one_line_error(tmp_path):
    y, spk, folds = items(10)
    a = fake_run(tmp_path / "a", y, predictions(y, 0.5, np.random.default_rng(0)), spk, folds)
    r = run_cli("compare", str(a), "--bootstrap", "5")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "emofuse: error: --bootstrap 5: too few resamples for a 95% interval; use at least 100 (default 1000)"]
