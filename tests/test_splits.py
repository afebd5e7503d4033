"""Speaker-independent folds and the leakage audit."""

import json

import pandas as pd
import pytest

from emofuse.errors import EmofuseError
from emofuse.manifest import read_manifest
from emofuse.splits import LeakageError, audit_split, make_folds, require_passed, write_split


def ravdess_like(n_actors: int = 24, per_actor: int = 6) -> pd.DataFrame:
    rows = []
    for a in range(1, n_actors + 1):
        for i in range(per_actor):
            rows.append({"utt_id": f"a{a}_{i}", "speaker": f"Actor_{a:02d}", "session": f"Actor_{a:02d}",
                         "gender": "male" if a % 2 else "female", "label": ["angry", "sad"][i % 2]})
    return pd.DataFrame(rows)


def test_leave_one_session_out_on_iemocap_layout(synth_manifest):
    m = read_manifest(synth_manifest)
    folds = make_folds(m.df, "iemocap")
    assert len(folds) == 5 and all(f.scheme == "session" for f in folds)
    for f in folds:
        test_sessions = set(m.df.set_index("utt_id").loc[f.test, "session"])
        assert test_sessions == {f"Session{f.fold + 1}"}
        assert len(f.speakers["val"]) == 2  # one training session's worth of speakers
        assert {"male", "female"} == set(m.df.set_index("speaker").loc[f.speakers["val"], "gender"])
        assert audit_split(f, m.df)["passed"]
        assert set(f.train) | set(f.val) | set(f.test) == set(m.df["utt_id"])


def test_ravdess_six_gender_balanced_folds_of_four_actors():
    df = ravdess_like()
    folds = make_folds(df, "ravdess")
    assert len(folds) == 6
    tested = []
    for f in folds:
        genders = df.groupby("speaker")["gender"].first()
        assert len(f.speakers["test"]) == 4
        assert sorted(genders[f.speakers["test"]]) == ["female", "female", "male", "male"]
        assert len(f.speakers["val"]) == 4 and sorted(genders[f.speakers["val"]]) == ["female", "female", "male", "male"]
        assert not set(f.speakers["val"]) & set(f.speakers["test"])
        tested += f.speakers["test"]
    assert sorted(tested) == sorted(df["speaker"].unique())  # every actor is tested exactly once


def test_folds_are_reproducible_and_seeded():
    df = ravdess_like()
    a, b, c = make_folds(df, "ravdess", seed=0), make_folds(df, "ravdess", seed=0), make_folds(df, "ravdess", seed=1)
    assert [f.test for f in a] == [f.test for f in b]
    assert [f.test for f in a] != [f.test for f in c]


def test_audit_catches_speaker_and_utterance_leaks(tmp_path):
    df = ravdess_like(8, 4)
    fold = make_folds(df, "other", scheme="speaker", n_folds=4)[0]
    fold.val = fold.val + [fold.test[0]]  # an utterance (and its speaker) in validation and test
    audit = audit_split(fold, df)
    assert not audit["passed"]
    assert audit["checks"]["utt_ids_in_val_and_test"] == [fold.test[0]]
    assert audit["checks"]["speakers_in_val_and_test"]
    written = write_split(fold, df, tmp_path / "f")  # written whole, then refused by whoever would use it
    with pytest.raises(LeakageError, match="audit fails"):
        require_passed([written], tmp_path / "f")
    assert json.loads((tmp_path / "f" / "audit.json").read_text())["passed"] is False


def test_audit_catches_the_same_recording_under_two_speakers(tmp_path):
    """A file copied under another speaker's name would put one recording in train and test."""
    df = ravdess_like(24, 2)
    df["audio_sha1"] = [f"{i:040x}" for i in range(len(df))]
    fold = make_folds(df, scheme="speaker")[0]
    assert audit_split(fold, df)["passed"]
    df.loc[df["utt_id"] == fold.test[0], "audio_sha1"] = df.loc[df["utt_id"] == fold.train[0], "audio_sha1"].item()
    audit = audit_split(fold, df)
    assert not audit["passed"]
    assert audit["checks"]["same_audio_in_train_and_test"] == sorted([fold.train[0], fold.test[0]])
    with pytest.raises(LeakageError, match="same_audio_in_train_and_test"):
        require_passed([write_split(fold, df, tmp_path / "f")], tmp_path / "f")
    # The same recording twice inside one part (RAVDESS has such a pair) is not a leak.
    df2 = ravdess_like(24, 2)
    df2["audio_sha1"] = [f"{i:040x}" for i in range(len(df2))]
    df2.loc[1, "audio_sha1"] = df2.loc[0, "audio_sha1"]
    assert all(audit_split(f, df2)["passed"] for f in make_folds(df2, scheme="speaker"))


def test_no_random_utterance_split_and_clear_errors():
    df = ravdess_like(4, 2)
    with pytest.raises(EmofuseError, match="unknown fold scheme 'random'"):
        make_folds(df, scheme="random")
    with pytest.raises(EmofuseError, match="cannot make 9 speaker folds from 4 speakers"):
        make_folds(df, scheme="speaker", n_folds=9)
    with pytest.raises(EmofuseError, match="no training speaker"):
        make_folds(df, scheme="speaker", n_folds=2, val_speakers=2)


def test_default_validation_share_leaves_training_speakers_with_few_folds():
    """cv.n_folds=2 (a smoke run, a quick ablation) with the default cv.val_speakers: "one fold's
    worth" of validation speakers would be every training speaker, so the default is capped at half
    of them; an explicit cv.val_speakers is taken as given."""
    df = ravdess_like()
    for k in (2, 3):
        for f in make_folds(df, "ravdess", n_folds=k):
            n_train = len(f.speakers["train"]) + len(f.speakers["val"])
            assert 1 <= len(f.speakers["val"]) <= n_train // 2 and len(f.speakers["train"]) >= n_train // 2
            assert audit_split(f, df)["passed"]
    assert [len(f.speakers["val"]) for f in make_folds(df, "ravdess", n_folds=2)] == [6, 6]
    assert [len(f.speakers["val"]) for f in make_folds(df, "ravdess", n_folds=2, val_speakers=10)] == [10, 10]
    assert [len(f.speakers["val"]) for f in make_folds(ravdess_like(4, 2), scheme="speaker", n_folds=2)] == [1, 1]


def test_folds_cli_writes_split_and_audit(synth_manifest, tmp_path):
    from emofuse.cli import main

    assert main(["folds", str(synth_manifest), "--out", str(tmp_path / "folds")]) == 0
    for k in range(5):
        split = pd.read_csv(tmp_path / "folds" / f"fold_{k}" / "split.csv")
        assert set(split["part"]) == {"train", "val", "test"}
        assert split.groupby("speaker")["part"].nunique().max() == 1  # each speaker in one part only
        assert json.loads((tmp_path / "folds" / f"fold_{k}" / "audit.json").read_text())["passed"]
