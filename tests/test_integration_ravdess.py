"""On the real RAVDESS copy in ../shared/data (skipped where it is absent)."""

import pytest

from emofuse.manifest import read_manifest
from emofuse.prepare import prepare
from emofuse.splits import audit_split, make_folds

from conftest import SHARED_RAVDESS

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not SHARED_RAVDESS.is_dir(), reason="RAVDESS not present at ../shared/data/ravdess")]


def test_prepare_ravdess_writes_1440_rows_and_six_clean_folds(tmp_path):
    s = prepare("ravdess", SHARED_RAVDESS, tmp_path / "m8")
    m = read_manifest(tmp_path / "m8")
    assert s.rows == 1440 and not s.skipped and m.df["speaker"].nunique() == 24
    assert m.df["label"].value_counts().to_dict() == {c: (96 if c == "neutral" else 192) for c in m.classes}
    folds = make_folds(m.df, "ravdess")
    assert len(folds) == 6 and all(audit_split(f, m.df)["passed"] for f in folds)
    assert prepare("ravdess", SHARED_RAVDESS, tmp_path / "m8").up_to_date
    s4 = prepare("ravdess", SHARED_RAVDESS, tmp_path / "m4", class_map="ravdess4")
    assert s4.rows == 672
