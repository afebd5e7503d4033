"""`emofuse transcribe` keeps ASR text in a side cache keyed by audio content and model; prepare
stays the only writer of manifest.csv, and read_manifest joins the column (issue #18)."""

from __future__ import annotations

import json

import pytest

import emofuse.pretrained as pretrained
from emofuse.asr import transcribe_manifest
from emofuse.errors import EmofuseError
from emofuse.manifest import read_manifest, write_manifest


class FakeWhisper:
    """Says each clip's length in samples; counts the clips it was given."""
    calls = 0

    def __init__(self, *args):
        pass

    def transcribe(self, waves, *args):
        FakeWhisper.calls += len(waves)
        return [f"clip of {len(w)} samples" for w in waves]


@pytest.fixture
def fake_whisper(monkeypatch, tmp_path):
    model = tmp_path / "fake-whisper"
    model.mkdir()
    monkeypatch.setattr(pretrained, "WhisperModel", FakeWhisper)
    monkeypatch.setattr(pretrained, "resolve_whisper_path", lambda m: model)
    monkeypatch.setattr(pretrained, "model_identity", lambda m: "123|abcdef0123456789")
    FakeWhisper.calls = 0
    return str(model)


def test_transcribe_leaves_the_manifest_alone_and_the_reader_joins_the_text(synth_manifest, fake_whisper, tmp_path):
    m = read_manifest(synth_manifest)
    sub = tmp_path / "sub"
    write_manifest(m.df.copy(), {**m.meta, "root": str(m.root)}, sub)
    before = (sub / "manifest.csv").read_bytes(), (sub / "prepare.json").read_bytes()
    r = transcribe_manifest(sub, model=fake_whisper, progress=False)
    assert ((sub / "manifest.csv").read_bytes(), (sub / "prepare.json").read_bytes()) == before  # prepare's files
    assert r.side_file.parent == sub / "asr" and r.side_file.name == "fake-whisper-abcdef0123-beam1.csv"
    got = read_manifest(sub)
    assert got.df["text_asr"].str.startswith("clip of ").all() and got.meta["asr"]["text_asr"]["beam_size"] == 1
    n_distinct = m.df["audio_sha1"].nunique()
    assert FakeWhisper.calls == n_distinct
    # prepare rewrites the manifest (rows reordered, one dropped): the transcripts follow the audio.
    kept = m.df.iloc[::-1].iloc[1:].copy()
    write_manifest(kept, {**m.meta, "root": str(m.root)}, sub)
    again = read_manifest(sub).df.set_index("utt_id")["text_asr"]
    assert again.to_dict() == got.df.set_index("utt_id")["text_asr"].loc[kept["utt_id"]].to_dict()
    r2 = transcribe_manifest(sub, model=fake_whisper, progress=False)
    assert r2.transcribed == 0 and FakeWhisper.calls == n_distinct  # nothing transcribed twice
    with pytest.raises(EmofuseError, match="--column label"):
        transcribe_manifest(sub, model=fake_whisper, column="label", progress=False)


def test_a_missing_side_file_is_one_line(synth_manifest, fake_whisper, tmp_path):
    m = read_manifest(synth_manifest)
    sub = tmp_path / "sub"
    write_manifest(m.df.copy(), {**m.meta, "root": str(m.root)}, sub)
    r = transcribe_manifest(sub, model=fake_whisper, progress=False)
    r.side_file.unlink()
    with pytest.raises(EmofuseError, match="ASR side file listed in .*columns.json is missing; re-run 'emofuse transcribe'"):
        read_manifest(sub)
    assert json.loads((sub / "asr" / "columns.json").read_text())["text_asr"]["side_file"] == r.side_file.name
