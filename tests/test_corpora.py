"""Corpus parsers on fixtures in the real layouts, and every bad input prepare must survive."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from emofuse.errors import EmofuseError
from emofuse.manifest import COLUMNS, read_manifest
from emofuse.prepare import prepare

from conftest import tone, write_iemocap_release, write_ravdess


def test_iemocap_release_layout_48k_stereo(tmp_path):
    root = write_iemocap_release(tmp_path / "IEMOCAP")
    s = prepare("iemocap", root, tmp_path / "m", workers=1)
    m = read_manifest(tmp_path / "m")
    df = m.df
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    assert len(df) == 10 and s.excluded == 2  # fru left out by the 4-class map, in both sessions
    row = df.set_index("utt_id").loc["Ses01F_impro01_M001"]
    assert row["speaker"] == "Ses01_M" and row["session"] == "Session1" and row["gender"] == "male"
    assert row["label"] == "angry" and row["text"] == "Sentence number 1, with a comma."
    assert row["sample_rate"] == 48000 and row["channels"] == 2 and abs(row["duration"] - 0.7) < 1e-3
    assert (df.set_index("utt_id").loc["Ses01F_impro01_F002", "label"]) == "happy"  # excited merged
    assert sorted(df["speaker"].unique()) == ["Ses01_F", "Ses01_M", "Ses02_F", "Ses02_M"]
    assert m.classes == ["angry", "happy", "sad", "neutral"]
    assert (m.root / row["path"]).is_file()


def test_iemocap_class_map_is_configurable(tmp_path):
    root = write_iemocap_release(tmp_path / "IEMOCAP")
    prepare("iemocap", root, tmp_path / "noexc", class_map="iemocap4_noexc", workers=1)
    prepare("iemocap", root, tmp_path / "six", class_map="iemocap6", workers=1)
    assert "Ses01F_impro01_F002" not in set(read_manifest(tmp_path / "noexc").df["utt_id"])
    assert set(read_manifest(tmp_path / "six").df["label"]) == {"angry", "happy", "excited", "sad", "neutral", "frustrated"}


def test_iemocap_simple_layout(tmp_path):
    root = tmp_path / "simple"
    for s, utt, lab in [(1, "Ses01F_impro01_F000", "neu"), (1, "Ses01F_impro01_M000", "ang"), (2, "Ses02M_script01_1_F003", "sad")]:
        (root / "wavs" / f"Session{s}").mkdir(parents=True, exist_ok=True)
        sf.write(root / "wavs" / f"Session{s}" / f"{utt}.wav", tone(0.5, 22050), 22050)
    pd.DataFrame({"file_name": ["Ses01F_impro01_F000.wav", "Ses01F_impro01_M000.wav", "Ses02M_script01_1_F003.wav"],
                  "emotion_label": ["neu", "ang", "sad"]}).to_csv(root / "labels.csv", index=False)
    prepare("iemocap", root, tmp_path / "m", workers=1)
    df = read_manifest(tmp_path / "m").df.set_index("utt_id")
    assert df.loc["Ses02M_script01_1_F003", "speaker"] == "Ses02_F"
    assert df.loc["Ses01F_impro01_M000", "label"] == "angry" and df.loc["Ses01F_impro01_M000", "sample_rate"] == 22050


def test_ravdess_file_name_code(tmp_path):
    root = write_ravdess(tmp_path / "rav", actors=(1, 2), emotions=("01", "02", "05"), ext="flac")
    prepare("ravdess", root, tmp_path / "m8", workers=1)
    prepare("ravdess", root, tmp_path / "m4", class_map="ravdess4", workers=1)
    df8, df4 = read_manifest(tmp_path / "m8").df, read_manifest(tmp_path / "m4").df
    assert len(df8) == 12 and len(df4) == 8  # calm is outside the 4-class map
    row = df8.set_index("utt_id").loc["03-01-05-02-02-01-02"]
    assert row["label"] == "angry" and row["speaker"] == "Actor_02" and row["gender"] == "female"
    assert row["text"] == "Dogs are sitting by the door." and row["intensity"] == "strong"
    assert row["channels"] == 2 and row["sample_rate"] == 48000
    assert df8.set_index("utt_id").loc["03-01-02-02-01-01-01", "gender"] == "male"


def test_csv_corpus_any_folder(tmp_path):
    root = tmp_path / "mine"
    (root / "clips").mkdir(parents=True)
    for i in range(4):
        sf.write(root / "clips" / f"c{i}.ogg", tone(0.6, 44100, seed=i), 44100, format="OGG")
    pd.DataFrame({"path": [f"clips/c{i}.ogg" for i in range(4)], "label": ["pos", "neg", "pos", "neg"],
                  "speaker": ["a", "a", "b", "b"], "text": ["hi", "", "yo", "no"]}).to_csv(root / "metadata.csv", index=False)
    prepare("csv", root, tmp_path / "m", workers=1)
    m = read_manifest(tmp_path / "m")
    assert m.classes == ["neg", "pos"] and len(m.df) == 4 and m.df["session"].tolist() == ["a", "a", "b", "b"]


def _bad_corpus(tmp_path):
    """A RAVDESS folder with one of every bad input."""
    root = write_ravdess(tmp_path / "rav", actors=(1, 2), emotions=("01", "05"), sr=16000, channels=1)
    a1 = root / "Actor_01"
    (a1 / "03-01-05-02-01-01-01.wav").write_bytes(b"RIFF....not audio at all")                 # unreadable
    sf.write(a1 / "03-01-01-01-01-01-01.wav", np.zeros(16000, dtype=np.float32), 16000)        # silent
    sf.write(a1 / "03-01-01-01-02-01-01.wav", tone(0.1), 16000)                                # too short
    sf.write(a1 / "03-01-09-01-01-01-01.wav", tone(0.6), 16000)                                # unknown label 09
    sf.write(a1 / "hello.wav", tone(0.6), 16000)                                               # not the file-name code
    sf.write(a1 / "03-01-05-02-02-01-01.wav", np.zeros((0,), dtype=np.float32), 16000)         # empty
    return root


def test_bad_inputs_are_skipped_and_counted(tmp_path):
    root = _bad_corpus(tmp_path)
    s = prepare("ravdess", root, tmp_path / "m", workers=1)
    assert s.skipped == {"unreadable audio": 1, "silent audio": 1, "too short": 1, "unknown label": 1,
                         "file name outside the corpus code": 1, "empty audio": 1}
    assert s.rows == 4  # actor 2's four clips; all four of actor 1's originals were overwritten with bad files
    skipped = pd.read_csv(tmp_path / "m" / "skipped.csv")
    assert "Actor_01/03-01-05-02-01-01-01.wav" in set(skipped["file"])
    text = "\n".join(s.lines())
    assert "skipped 1: silent audio" in text and "Actor_01/" in text


def test_strict_fails_on_first_bad_item_naming_the_file(tmp_path):
    root = _bad_corpus(tmp_path)
    with pytest.raises(EmofuseError, match=r"Actor_01/.*(unknown label|file name).*--strict"):
        prepare("ravdess", root, tmp_path / "m", strict=True, workers=1)
    assert not (tmp_path / "m" / "manifest.csv").exists()


def test_missing_audio_and_transcript_without_audio(tmp_path):
    root = write_iemocap_release(tmp_path / "IEMOCAP", sr=16000, channels=1)
    (root / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav").unlink()
    with open(root / "Session2/dialog/transcriptions/Ses02F_impro01.txt", "a") as fh:
        fh.write("Ses02F_impro01_F099 [020.0000-021.0000]: A line with no audio.\n")
    s = prepare("iemocap", root, tmp_path / "m", workers=1)
    assert s.skipped["missing audio"] == 1 and s.skipped["transcript without audio"] == 1
    skipped = pd.read_csv(tmp_path / "m" / "skipped.csv")
    assert any("Ses02F_impro01_F099" in f for f in skipped["file"])


def test_duplicate_utt_ids(tmp_path):
    root = tmp_path / "dup"
    root.mkdir()
    for i in range(3):
        sf.write(root / f"c{i}.wav", tone(0.5, seed=i), 16000)
    pd.DataFrame({"path": ["c0.wav", "c1.wav", "c2.wav"], "label": ["a", "b", "a"], "speaker": ["s", "s", "t"],
                  "utt_id": ["u1", "u1", "u2"]}).to_csv(root / "metadata.csv", index=False)
    s = prepare("csv", root, tmp_path / "m", workers=1)
    assert s.skipped["duplicate utt_id"] == 1 and s.rows == 2
    with pytest.raises(EmofuseError, match="duplicate utt_id|appears twice"):
        prepare("csv", root, tmp_path / "m2", strict=True, workers=1)


def test_wrong_paths_give_one_line_errors(tmp_path):
    with pytest.raises(EmofuseError, match="corpus folder not found"):
        prepare("ravdess", tmp_path / "nowhere", tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmofuseError, match="Actor_XX"):
        prepare("ravdess", tmp_path / "empty", tmp_path / "m")
    with pytest.raises(EmofuseError, match="Session1..Session5"):
        prepare("iemocap", tmp_path / "empty", tmp_path / "m")
    with pytest.raises(EmofuseError, match="manifest not found"):
        read_manifest(tmp_path / "empty")


def test_prepare_is_idempotent_and_notices_changes(tmp_path):
    root = write_ravdess(tmp_path / "rav", actors=(1, 2), emotions=("01", "05"))
    first = prepare("ravdess", root, tmp_path / "m", workers=1)
    stamp = os.stat(tmp_path / "m" / "manifest.csv").st_mtime_ns
    second = prepare("ravdess", root, tmp_path / "m", workers=1)
    assert not first.up_to_date and second.up_to_date and "nothing to do" in second.lines()[0]
    assert os.stat(tmp_path / "m" / "manifest.csv").st_mtime_ns == stamp
    target = root / "Actor_01" / "03-01-05-02-01-01-01.wav"
    sf.write(target, tone(0.9, 48000, 300, 2), 48000)
    third = prepare("ravdess", root, tmp_path / "m", workers=1)
    assert not third.up_to_date
    assert prepare("ravdess", root, tmp_path / "m", class_map="ravdess4", workers=1).up_to_date is False
    meta = json.loads((tmp_path / "m" / "prepare.json").read_text())
    assert meta["class_map"] == "ravdess4"


def test_synthetic_corpus_can_have_iemocap_like_skewed_durations(tmp_path):
    """The scale benchmark's corpus: log-normal lengths clipped to [min, max], most clips short."""
    from emofuse.synth import SynthSpec, make_synthetic_corpus

    info = make_synthetic_corpus(tmp_path / "c", SynthSpec(sessions=1, per_class=12, durations="iemocap", max_seconds=20.0, seed=4))
    secs = np.array([sf.info(str(p)).duration for p in (tmp_path / "c").rglob("*.wav")])
    assert len(secs) == info["utterances"] and secs.min() >= 1.0 - 1e-3 and secs.max() <= 20.0 + 1e-3
    assert np.mean(secs) > np.median(secs) and 2.5 < np.median(secs) < 5.5  # right-skewed, IEMOCAP-like
    assert abs(info["hours"] - secs.sum() / 3600) < 1e-3
    assert json.loads((tmp_path / "c" / "SYNTHETIC.json").read_text())["spec"]["durations"] == "iemocap"
    with pytest.raises(ValueError, match="durations must be"):
        make_synthetic_corpus(tmp_path / "d", SynthSpec(durations="gamma"))


def test_one_list_of_audio_extensions_for_prepare_predict_and_banks(tmp_path):
    """prepare accepted .wav/.flac/.ogg while predict also took .mp3/.aiff (issue #18): one list now."""
    import emofuse.augment.waveform as waveform
    import emofuse.corpora._files as files
    import emofuse.corpora.iemocap as iemocap
    import emofuse.corpora.meld as meld
    import emofuse.corpora.ravdess as ravdess
    import emofuse.inference as inference
    from emofuse.audio import AUDIO_EXTENSIONS

    assert ".aiff" in AUDIO_EXTENSIONS and ".mp3" in AUDIO_EXTENSIONS
    for module in (waveform, files, iemocap, meld, ravdess):
        assert module.AUDIO_EXTENSIONS is AUDIO_EXTENSIONS, module.__name__
    assert inference.AUDIO_EXTS is AUDIO_EXTENSIONS
    root = write_ravdess(tmp_path / "rav", actors=(1, 2), emotions=("01", "05"), ext="aiff")
    summary = prepare("ravdess", root, tmp_path / "m", workers=1)
    assert summary.rows == 8 and read_manifest(tmp_path / "m").df["path"].str.endswith(".aiff").all()
