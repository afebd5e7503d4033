"""One renderer for the run summary: the CLI table and results.md come from emofuse.summary."""

from __future__ import annotations

from emofuse.summary import render, speakers_cell, summary_tables

from conftest import assert_tables_whole


def _summary(groups_per_fold: list[list[str]]) -> dict:
    m = {"mean": 0.5, "std": 0.1}
    return {"name": "demo", "model": "cnn_bilstm", "modalities": ["audio"], "corpus": "ravdess", "n_folds": len(groups_per_fold),
            "scheme": "speaker", "complete": True, "macro_f1": m, "ua": m, "wa": m,
            "per_class_f1": {"angry": {"mean": 0.6, "std": 0.1}, "sad|x": {"mean": 0.4, "std": 0.2}},
            "per_fold": [{"fold": i, "test_groups": g, "macro_f1": 0.5, "ua": 0.5, "wa": 0.5, "best_epoch": 3}
                         for i, g in enumerate(groups_per_fold)],
            "protocol": "standard", "subset": "all", "transcript_overlap": {"available": False}, "subsets": {}}


def test_speakers_cell_never_cuts_without_an_ellipsis():
    six = ["01", "02", "03", "04", "05", "24"]
    assert speakers_cell(six, None) == "01, 02, 03, 04, 05, 24"
    cell = speakers_cell(six, 16)
    assert cell.startswith("01, ") and cell.endswith(", ..., 24 (6)") and len(cell) <= 16 + len("01")
    assert speakers_cell(["Ses01F", "Ses01M"], 5) == "Ses01F, Ses01M"  # two names: nothing to elide
    many = [f"{i:02d}" for i in range(1, 25)]
    assert speakers_cell(many, 28).endswith("..., 24 (24)") and len(speakers_cell(many, 28)) <= 28


def test_cli_table_shows_the_last_test_speaker_and_the_count():
    text = render(_summary([[f"{i:02d}" for i in range(1, 25)], ["a", "b"]]), "text", "runs/x")
    fold0 = next(ln for ln in text.splitlines() if ln.strip().startswith("0 "))
    assert "..., 24 (24)" in fold0
    assert "mean" in text and "Macro-F1" in text and "runs/x/summary.json" in text


def test_results_markdown_and_report_tables_share_the_cells():
    s = _summary([["01", "02"], ["03", "04"]])
    md = render(s, "markdown")
    assert_tables_whole(md)
    header, rows, has_mean = summary_tables(s)[0]
    assert header == ["fold", "test", "Macro-F1", "UA", "WA", "best epoch"] and has_mean
    assert "| 1 | 03, 04 | 0.500 | 0.500 | 0.500 | 3 |" in md
    assert "**0.500 ± 0.100**" in md and "sad\\|x" in md
