"""Emotion over time: voice activity on a streamed file, segments classified, CSV and PNG written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import emofuse
from conftest import run_cli, tone
from emofuse.errors import EmofuseError
from emofuse.timeline import VadConfig, frame_energies, speech_spans, timeline

SR = 16000
# (start, end) of speech in seconds; the rest is near-silence (room noise at -70 dBFS).
BURSTS = [(2.0, 5.0), (5.2, 6.0), (9.0, 9.1), (10.0, 30.0)]


def recording(path, sr: int = 44100, seconds: float = 32.0, channels: int = 2):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=int(seconds * sr)) * 3e-4).astype(np.float32)
    for k, (a, b) in enumerate(BURSTS):
        burst = tone(b - a, sr, 160.0 + 30 * k, seed=k)
        x[int(a * sr): int(a * sr) + burst.size] += burst
    sf.write(path, np.stack([x, x], axis=1) if channels == 2 else x, sr)
    return path


def test_frame_energies_of_a_stream_are_librosas_of_the_whole_clip():
    import librosa

    x = tone(3.3, SR, 200.0)
    whole = librosa.feature.rms(y=x, frame_length=400, hop_length=160, center=False)[0]
    for size in (1000, 4096, 7919, x.size):
        rms, n = frame_energies(x[i: i + size] for i in range(0, x.size, size))
        assert n == x.size and rms.shape == whole.shape and np.allclose(rms, whole, atol=1e-6)


def test_voice_activity_merges_short_gaps_drops_blips_and_splits_long_speech(tmp_path):
    path = recording(tmp_path / "talk.wav")
    from emofuse.audio import stream_audio

    spans_of = {}
    for block in (4096, 1 << 16):  # the blocks the file is read in do not change the segments
        rms, n = frame_energies(stream_audio(path, SR, block))
        spans_of[block] = speech_spans(rms, n, VadConfig(max_seconds=8.0))
    assert spans_of[4096] == spans_of[1 << 16]
    secs = [(s / SR, e / SR) for s, e in spans_of[4096]]
    assert len(secs) == 4, secs  # 2-6 s (the 0.2 s pause bridged), 10-30 s in three pieces; the 0.1 s blip dropped
    assert abs(secs[0][0] - 2.0) < 0.05 and abs(secs[0][1] - 6.0) < 0.05
    assert abs(secs[1][0] - 10.0) < 0.05 and abs(secs[-1][1] - 30.0) < 0.05
    assert all(e - s <= 8.0 + 1e-9 for s, e in secs[1:]) and secs[1][1] == secs[2][0]
    with pytest.raises(EmofuseError, match="min_seconds"):
        VadConfig(min_seconds=5, max_seconds=2)


def test_timeline_classifies_speech_only_and_the_command_writes_csv_and_png(trained_run, tmp_path):
    path = recording(tmp_path / "interview.wav")
    model = emofuse.load(trained_run, device="cpu")
    tl = timeline(model, path, VadConfig(max_seconds=8.0), block_frames=5000)
    assert len(tl.segments) == 4 and abs(tl.seconds - 32.0) < 1e-3
    assert all(s.label in model.classes and abs(sum(s.probs.values()) - 1) < 1e-5 for s in tl.segments)
    assert not any(s.start < 1.9 or 6.1 < s.start < 9.9 for s in tl.segments), "silence is not classified"
    assert abs(sum(tl.probs.values()) - 1) < 1e-5 and tl.label in model.classes
    # Each segment gets what the model says about those samples alone.
    from emofuse.audio import read_audio

    wave = read_audio(path)
    s = tl.segments[1]
    alone = model.predict(wave[round(s.start * SR): round(s.end * SR)], sample_rate=SR)
    assert all(abs(alone.probs[c] - s.probs[c]) < 1e-4 for c in model.classes)

    r = run_cli("predict", str(trained_run), str(path), "--timeline", "--out", str(tmp_path / "tl"))
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(tmp_path / "tl" / "interview.csv")
    assert list(df.columns) == ["start", "end", "label", "p_angry", "p_happy", "p_sad", "p_neutral"] and len(df) == 4
    assert (df.filter(like="p_").sum(1) - 1).abs().max() < 1e-3 and (df["end"] > df["start"]).all()
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "tl" / "interview.png").convert("L"))
    assert img.shape[1] > 600 and img.std() > 10
    assert "interview" in r.stdout and "4 speech segments" in r.stdout


def test_timeline_refuses_silence_and_transcript_models(trained_run, tmp_path):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(SR * 3, np.float32), SR)
    model = emofuse.load(trained_run, device="cpu")
    with pytest.raises(EmofuseError, match="no speech found"):
        timeline(model, quiet)
    model.modalities = ["audio", "text"]  # as a fusion model trained on manual transcripts
    model.text_cfg = {"source": "manual"}
    with pytest.raises(EmofuseError, match="segments of a timeline have none"):
        timeline(model, quiet)
    r = run_cli("predict", str(trained_run), str(quiet), "--timeline", "--out", str(tmp_path / "tl"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 2 and "no speech found" in r.stderr
