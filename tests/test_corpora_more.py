"""CREMA-D, TESS, SAVEE, EmoDB, ESD, MELD and MSP-Podcast parsers, each on a synthetic tree in the
exact release layout and file-name code, including one known quirk of each corpus."""

import json
import os

import pandas as pd
import pytest
import soundfile as sf

from emofuse.corpora import get_corpus
from emofuse.corpora.base import BAD_NAME, BAD_ROW, OUTSIDE_ROOT, TRANSCRIPT_NO_AUDIO, UNKNOWN_LABEL
from emofuse.errors import EmofuseError
from emofuse.labels import get_class_map
from emofuse.manifest import read_manifest

from conftest import run_cli, tone


def wav(path, seconds=0.4, f0=200.0, seed=0, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, sr, f0, seed=seed), sr)


def parse(name, root, class_map=None):
    res = get_corpus(name)(root, class_map)
    return {c.utt_id: c for c in res.candidates}, res.problems, res


def reasons(problems):
    return sorted(p.reason for p in problems)


# --- CREMA-D -------------------------------------------------------------------------------------------

def write_cremad(root, actors=("1001", "1002", "1003"), emotions=("ANG", "HAP", "SAD", "NEU", "DIS"), demographics=True):
    for i, a in enumerate(actors):
        for j, e in enumerate(emotions):
            wav(root / "AudioWAV" / f"{a}_DFA_{e}_XX.wav", f0=150 + 30 * j, seed=i)
        wav(root / "AudioWAV" / f"{a}_IEO_ANG_HI.wav", f0=400, seed=i)
    if demographics:
        pd.DataFrame({"ActorID": [int(a) for a in actors], "Age": [51] * len(actors),
                      "Sex": ["Male", "Female", "Male"][: len(actors)], "Race": ["Caucasian"] * len(actors),
                      "Ethnicity": ["Not Hispanic"] * len(actors)}).to_csv(root / "VideoDemographics.csv", index=False)
    return root


def test_cremad_name_code_sentences_and_demographics(tmp_path):
    root = write_cremad(tmp_path / "CREMA-D")
    wav(root / "AudioWAV" / "1001_XYZ_ANG_XX.wav")   # sentence code outside the 12
    wav(root / "AudioWAV" / "1001_DFA_BOR_XX.wav")   # emotion code outside the 6
    got, problems, res = parse("cremad", root)
    c = got["1002_IEO_ANG_HI"]
    assert (c.speaker, c.gender, c.raw_label, c.text) == ("cremad_1002", "female", "ANG", "It's eleven o'clock.")
    assert c.extra["intensity"] == "high" and got["1001_DFA_NEU_XX"].text == "Don't forget a jacket."
    assert got["1001_DFA_NEU_XX"].gender == "male" and got["1001_DFA_NEU_XX"].extra["intensity"] == "unspecified"
    assert reasons(problems) == [BAD_NAME, UNKNOWN_LABEL]
    assert res.class_map.name == "cremad6" and res.class_map.map("DIS") == "disgust"
    assert get_class_map("cremad4").map("DIS") is None and get_class_map("cremad4").map("ANG") == "angry"


def test_cremad_without_demographics_leaves_gender_empty(tmp_path):
    got, _, _ = parse("cremad", write_cremad(tmp_path / "c", demographics=False))
    assert {c.gender for c in got.values()} == {""} and len(got) == 18


# --- TESS ----------------------------------------------------------------------------------------------

def test_tess_folder_variants_ps_and_carrier_phrase(tmp_path):
    root = tmp_path / "TESS"
    # Folder spellings seen across copies of the release; files always say ``ps`` for pleasant surprise.
    for folder, word, emo in [("OAF_angry", "back", "angry"), ("OAF_Fear", "bar", "fear"),
                              ("OAF_Pleasant_surprise", "base", "ps"), ("YAF_pleasant_surprised", "bath", "ps"),
                              ("YAF_neutral", "bean", "neutral"), ("YAF_sad", "beg", "sad")]:
        wav(root / folder / f"{folder[:3]}_{word}_{emo}.wav")
    wav(root / "OAF_Fear" / "OAF_late_FEAR.wav")          # upper-case emotion in a file name
    wav(root / "YAF_sad" / "YAF_keg_happy.wav")            # folder and file disagree: reported
    wav(root / "YAF_sad" / "YAF_keg_bored.wav")            # not a TESS emotion
    got, problems, res = parse("tess", root)
    assert got["YAF_bath_ps"].raw_label == "ps" and res.class_map.map("ps") == "surprised"
    assert got["OAF_late_FEAR"].raw_label == "fear"
    c = got["OAF_back_angry"]
    assert (c.speaker, c.gender, c.text) == ("tess_OAF", "female", "Say the word back.")
    assert reasons(problems) == [BAD_NAME, UNKNOWN_LABEL]
    assert get_class_map("tess4").map("ps") is None


# --- SAVEE ---------------------------------------------------------------------------------------------

def test_savee_speaker_folders_and_flat_prefixed_names(tmp_path):
    release = tmp_path / "release"
    for spk in ("DC", "JE"):
        for code in ("a01", "h01", "sa01", "su01", "n30"):
            wav(release / "AudioData" / spk / f"{code}.wav", seed=len(spk))
    got, problems, _ = parse("savee", release)
    assert len(got) == 10 and not problems
    c = got["JE_sa01"]
    assert (c.speaker, c.raw_label, c.gender) == ("savee_JE", "sa", "male")
    assert got["DC_su01"].raw_label == "su" and get_class_map("savee7").map("su") == "surprised"

    flat = tmp_path / "kaggle"
    wav(flat / "ALL" / "KL_d05.wav")
    wav(flat / "ALL" / "xx01.wav")                      # no speaker anywhere
    wav(flat / "DC" / "JE_a02.wav")                     # prefix and folder disagree
    got, problems, _ = parse("savee", flat)
    assert list(got) == ["KL_d05"] and got["KL_d05"].speaker == "savee_KL"
    assert reasons(problems) == [BAD_NAME, BAD_NAME]


# --- EmoDB ---------------------------------------------------------------------------------------------

def test_emodb_name_code_gender_and_text(tmp_path):
    root = tmp_path / "emodb"
    for name in ("03a01Fa", "03a01Fb", "08b10Wa", "09a05Lc", "16b03Ta", "12a02Na"):
        wav(root / "wav" / f"{name}.wav")
    wav(root / "wav" / "03a01Xa.wav")   # no such emotion letter
    wav(root / "wav" / "99a01Fa.wav")   # no such speaker
    got, problems, res = parse("emodb", root)
    c = got["08b10Wa"]
    assert (c.speaker, c.gender, c.raw_label) == ("emodb_08", "female", "W")
    assert c.text == "Die wird auf dem Platz sein, wo wir sie immer hinlegen." and c.extra["version"] == "a"
    assert got["03a01Fb"].gender == "male" and got["03a01Fb"].text == "Der Lappen liegt auf dem Eisschrank."
    assert res.class_map.map("L") == "bored" and get_class_map("emodb4").map("L") is None
    assert get_class_map("emodb4").map("W") == "angry"
    assert reasons(problems) == [BAD_NAME, UNKNOWN_LABEL]


# --- ESD -----------------------------------------------------------------------------------------------

def write_esd(root, speakers=("0011", "0015", "0019"), chinese=True):
    base = root / "Emotion Speech Dataset"
    n = 0
    for spk in speakers + (("0001",) if chinese else ()):
        lines = []
        for emo, part in [("Neutral", "train"), ("Angry", "evaluation"), ("Happy", "test"), ("Sad", "train"), ("Surprise", "test")]:
            n += 1
            utt = f"{spk}_{n:06d}"
            wav(base / spk / emo / part / f"{utt}.wav", f0=120 + 10 * n)
            lines.append(f"{utt}\tSentence {n} for {emo.lower()}.\t{emo}")
        (base / spk / f"{spk}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_esd_english_only_official_parts_and_transcripts(tmp_path):
    root = write_esd(tmp_path / "ESD")
    wav(root / "Emotion Speech Dataset" / "0011" / "Angry" / "holdout" / "0011_000999.wav")  # not a release part
    got, problems, res = parse("esd", root)
    assert {c.speaker for c in got.values()} == {"esd_0011", "esd_0015", "esd_0019"}  # 0001 (Mandarin) left out
    assert not any(u.startswith("0001_") for u in got)
    c = got["0011_000002"]
    assert (c.raw_label, c.gender, c.text, c.extra["official_split"]) == ("Angry", "male", "Sentence 2 for angry.", "evaluation")
    assert got["0015_000010"].gender == "female" and got["0015_000010"].extra["official_split"] == "test"
    assert reasons(problems) == [BAD_NAME]
    assert res.class_map.map("Surprise") == "surprised" and get_class_map("esd4").map("Surprise") is None


def test_esd_without_english_speakers_is_one_line_error(tmp_path):
    wav(tmp_path / "ESD" / "0001" / "Angry" / "train" / "0001_000351.wav")
    with pytest.raises(EmofuseError, match="0011..0020"):
        get_corpus("esd")(tmp_path / "ESD", None)


# --- MELD ----------------------------------------------------------------------------------------------

MELD_COLUMNS = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
                "Episode", "StartTime", "EndTime"]


def write_meld(root, missing=("dev", 1, 1)):
    folders = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
    speakers = {"train": ["Ross", "Monica", "Joey"], "dev": ["Rachel", "Chandler"], "test": ["Phoebe", "Ross"]}
    emotions = ["neutral", "joy", "anger", "sadness", "surprise"]
    for split, folder in folders.items():
        rows = []
        for d in range(2):                       # dialogue ids restart at 0 in every split
            for u in range(3):
                spk = speakers[split][(d + u) % len(speakers[split])]
                emo = emotions[(d * 3 + u) % len(emotions)]
                rows.append([len(rows) + 1, f"Line {u} of dialogue {d} in {split}, said by {spk}.", spk, emo, "neutral",
                             d, u, 3, 7, "00:14:38,127", "00:14:40,215"])
                if (split, d, u) != missing:
                    wav(root / folder / f"dia{d}_utt{u}.wav", f0=100 + 20 * u + 5 * d)
        pd.DataFrame(rows, columns=MELD_COLUMNS).to_csv(root / f"{split}_sent_emo.csv", index=False)
    wav(root / "output_repeated_splits_test" / "final_videos_testdia0_utt0.wav")  # no CSV row: ignored
    return root


def test_meld_splits_speakers_and_missing_extraction(tmp_path):
    root = write_meld(tmp_path / "MELD.Raw")
    got, problems, res = parse("meld", root)
    assert "train_dia0_utt0" in got and "dev_dia0_utt0" in got and "test_dia0_utt0" in got  # ids distinct per split
    c = got["dev_dia0_utt1"]
    assert (c.speaker, c.raw_label, c.extra["official_split"]) == ("meld_Chandler", "joy", "dev")
    assert c.text == "Line 1 of dialogue 0 in dev, said by Chandler." and c.extra["dialogue"] == "dev_dia0"
    assert c.path == "dev_splits_complete/dia0_utt1.wav"
    assert [(p.reason, p.file) for p in problems] == [(TRANSCRIPT_NO_AUDIO, "dev_splits_complete/dia1_utt1.wav")]
    assert len(got) == 17 and res.class_map.map("joy") == "happy" and get_class_map("meld4").map("surprise") is None


def test_meld_text_mojibake_repaired(tmp_path):
    root = tmp_path / "m"
    wav(root / "train_splits" / "dia0_utt0.wav")
    pd.DataFrame([[1, "You\u00e2\u20ac\u2122re here", "Ross", "neutral", "neutral", 0, 0, 1, 1, "", ""]],
                 columns=MELD_COLUMNS).to_csv(root / "train_sent_emo.csv", index=False)
    got, _, _ = parse("meld", root)
    assert got["train_dia0_utt0"].text == "You\u2019re here"


# --- MSP-Podcast ---------------------------------------------------------------------------------------

def write_msp(root, label_name="labels_consensus.csv"):
    rows = []
    plan = [("0001_0001", "A", "12", "Male", "Train"), ("0001_0002", "H", "12", "Male", "Train"),
            ("0002_0001", "S", "Unknown", "Unknown", "Development"), ("0002_0002", "N", "Unknown", "Unknown", "Development"),
            ("0003_0001", "N", "40", "Female", "Test1"), ("0003_0002", "X", "40", "Female", "Test1"),
            ("0004_0001", "U", "Unknown", "Female", "Test2"), ("0005_0001", "", "Unknown", "Unknown", "Test3")]
    for i, (seg, emo, spk, gender, split) in enumerate(plan):
        name = f"MSP-PODCAST_{seg}.wav"
        wav(root / "Audios" / name, f0=110 + 15 * i)
        rows.append({"FileName": name, "EmoClass": emo, "EmoAct": 4.2, "EmoVal": 3.0, "EmoDom": 4.0,
                     "SpkrID": spk, "Gender": gender, "Split_Set": split})
    (root / "Labels").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "Labels" / label_name, index=False)
    (root / "Transcripts").mkdir()
    (root / "Transcripts" / "MSP-PODCAST_0001_0001.txt").write_text("I can't believe it\n")
    return root


def test_msppodcast_partitions_unknown_speakers_and_withheld_labels(tmp_path):
    got, problems, res = parse("msppodcast", write_msp(tmp_path / "msp"))
    c = got["MSP-PODCAST_0001_0001"]
    assert (c.speaker, c.gender, c.raw_label, c.text) == ("msp_12", "male", "A", "I can't believe it")
    assert c.extra["official_split"] == "Train" and c.extra["emoact"] == "4.2"
    assert got["MSP-PODCAST_0002_0001"].speaker == "msp_podcast0002" and got["MSP-PODCAST_0002_0001"].gender == ""
    assert got["MSP-PODCAST_0004_0001"].extra["official_split"] == "Test2"
    assert "MSP-PODCAST_0003_0002" in got and res.class_map.map("X") is None   # known, excluded by the map
    assert [p.reason for p in problems] == [BAD_ROW]                            # Test3: label withheld
    assert get_class_map("msppodcast4").map("U") is None and res.class_map.map("C") == "contempt"


def test_msppodcast_misspelt_label_file_and_outside_path(tmp_path):
    root = write_msp(tmp_path / "msp", label_name="labels_concensus.csv")
    outside = tmp_path / "elsewhere.wav"
    wav(outside)
    os.symlink(outside, root / "Audios" / "MSP-PODCAST_0009_0001.wav")
    table = root / "Labels" / "labels_concensus.csv"
    df = pd.read_csv(table)
    df.loc[len(df)] = ["MSP-PODCAST_0009_0001.wav", "A", 1, 1, 1, "77", "Male", "Train"]
    df.to_csv(table, index=False)
    got, problems, _ = parse("msppodcast", root)
    assert "MSP-PODCAST_0001_0001" in got and "MSP-PODCAST_0009_0001" not in got
    assert OUTSIDE_ROOT in reasons(problems)


# --- end to end ----------------------------------------------------------------------------------------

def test_prepare_cremad_and_meld_end_to_end(tmp_path):
    cremad = write_cremad(tmp_path / "CREMA-D")
    r = run_cli("prepare", "cremad", str(cremad), "--out", str(tmp_path / "c4"), "--class-map", "cremad4", "--workers", "1")
    assert r.returncode == 0, r.stderr
    m = read_manifest(tmp_path / "c4")
    assert m.classes == ["angry", "happy", "sad", "neutral"] and set(m.df["label"]) == set(m.classes)
    assert len(m.df) == 15 and json.loads((tmp_path / "c4" / "prepare.json").read_text())["excluded_by_class_map"] == 3
    assert set(m.df["gender"]) == {"male", "female"}

    meld = write_meld(tmp_path / "MELD.Raw")
    r = run_cli("prepare", "meld", str(meld), "--out", str(tmp_path / "m7"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    df = read_manifest(tmp_path / "m7").df
    assert set(df["official_split"]) == {"train", "dev", "test"} and len(df) == 17
    skipped = pd.read_csv(tmp_path / "m7" / "skipped.csv")
    assert list(skipped["reason"]) == [TRANSCRIPT_NO_AUDIO]


def test_prepare_esd_and_tess_end_to_end(tmp_path):
    esd = write_esd(tmp_path / "ESD")
    r = run_cli("prepare", "esd", str(esd), "--out", str(tmp_path / "e4"), "--class-map", "esd4", "--workers", "1")
    assert r.returncode == 0, r.stderr
    df = read_manifest(tmp_path / "e4").df
    assert len(df) == 12 and set(df["official_split"]) == {"train", "evaluation", "test"}
    assert set(df["speaker"]) == {"esd_0011", "esd_0015", "esd_0019"}

    (tmp_path / "empty").mkdir()
    r = run_cli("prepare", "tess", str(tmp_path / "empty"), "--out", str(tmp_path / "t"))
    assert r.returncode == 2 and r.stderr.startswith("emofuse: error:") and "Traceback" not in r.stderr
    assert "OAF_angry/OAF_back_angry.wav" in r.stderr and len(r.stderr.strip().splitlines()) == 1
