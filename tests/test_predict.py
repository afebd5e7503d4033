"""Using a trained model: emofuse.load(...).predict(...) and `emofuse predict`, with bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import emofuse
from conftest import run_cli, tone
from emofuse.errors import EmofuseError


@pytest.fixture(scope="module")
def text_run(synth_manifest, tmp_path_factory):
    run = tmp_path_factory.mktemp("predict_text") / "run"
    r = run_cli("train", "text_mlp", "--fold", "0", f"data.manifest={synth_manifest}", "train.max_epochs=1",
                "model.hidden=16", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    return run


def test_a_run_loads_as_an_ensemble_and_predicts_files_and_waveforms(trained_run, tmp_path):
    model = emofuse.load(trained_run, device="cpu")
    assert len(model.modules) == 2 and model.classes == ["angry", "happy", "sad", "neutral"]
    path = tmp_path / "clip.wav"
    stereo = tone(1.5, 44100, 200.0, channels=2)
    sf.write(path, stereo, 44100)
    pred = model.predict(path)
    assert pred.label in model.classes and abs(sum(pred.probs.values()) - 1) < 1e-5 and pred.windows == 1
    same = model.predict(stereo, sample_rate=44100)
    assert all(abs(pred.probs[c] - same.probs[c]) < 1e-5 for c in model.classes)
    # The ensemble averages its folds' probabilities.
    folds = [emofuse.load(trained_run / f"fold_{k}", device="cpu").predict(path) for k in (0, 1)]
    for c in model.classes:
        assert abs(pred.probs[c] - (folds[0].probs[c] + folds[1].probs[c]) / 2) < 1e-5
    # A checkpoint file loads too; long audio is cut into windows.
    single = emofuse.load(trained_run / "fold_0" / "checkpoints" / "best.ckpt", window_seconds=2.0)
    long = single.predict(np.tile(tone(1.0, 16000, 180.0), 5), sample_rate=16000)
    assert long.windows == 3 and abs(sum(long.probs.values()) - 1) < 1e-5


def test_bad_inputs_give_clear_errors(trained_run, tmp_path):
    model = emofuse.load(trained_run, device="cpu")
    with pytest.raises(EmofuseError, match="no checkpoint here"):
        emofuse.load(tmp_path)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(EmofuseError, match="not a readable checkpoint"):
        emofuse.load(junk)
    ckpt = torch.load(trained_run / "fold_0" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    ckpt["emofuse_version"] = "0.0.1"
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with pytest.raises(EmofuseError, match="written by emofuse 0.0.1"):
        emofuse.load(old)
    with pytest.raises(EmofuseError, match="shorter than one analysis window"):
        model.predict(tone(0.01, 16000), sample_rate=16000)
    with pytest.raises(EmofuseError, match="silent"):
        model.predict(np.zeros(16000, dtype=np.float32), sample_rate=16000)
    nan = tone(1.0, 16000)
    nan[100] = np.nan
    with pytest.raises(EmofuseError, match="NaN"):
        model.predict(nan, sample_rate=16000)
    with pytest.raises(EmofuseError, match="not found"):
        model.predict(tmp_path / "missing.wav")
    with pytest.raises(EmofuseError, match="sample_rate"):
        model.predict(tone(1.0, 16000))


def test_text_models_need_the_transcript(text_run):
    model = emofuse.load(text_run / "fold_0", device="cpu")
    with pytest.raises(EmofuseError, match="reads text too"):
        model.predict(tone(1.0, 16000), sample_rate=16000)
    pred = model.predict(tone(1.0, 16000), sample_rate=16000, text="I miss her so much.")
    assert abs(sum(pred.probs.values()) - 1) < 1e-5


def test_predict_command_writes_csv_and_json(trained_run, text_run, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"c{i}.flac", tone(1.0 + i, 22050, 150.0 + 40 * i), 22050)
    r = run_cli("predict", str(trained_run), str(folder), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(tmp_path / "p.csv")
    assert list(df["utt"]) == ["c0", "c1", "c2"] and {"pred", "p_angry", "p_happy", "p_sad", "p_neutral"} <= set(df.columns)
    assert (df.filter(like="p_").sum(1) - 1).abs().max() < 1e-3
    r = run_cli("predict", str(trained_run), str(folder / "c0.flac"), "--out", str(tmp_path / "p.json"))
    assert r.returncode == 0 and json.loads((tmp_path / "p.json").read_text())[0]["utt"] == "c0"
    (tmp_path / "t.csv").write_text("utt,text\nc0,I miss her so much.\nc1,We did it!\nc2,Okay.\n")
    r = run_cli("predict", str(text_run / "fold_0"), str(folder), "--transcripts", str(tmp_path / "t.csv"))
    assert r.returncode == 0 and len(pd.read_csv(__import__("io").StringIO(r.stdout))) == 3
    r = run_cli("predict", str(trained_run), str(tmp_path / "nowhere.wav"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "nowhere.wav" in r.stderr


def test_explain_command_writes_one_png_per_clip(trained_run, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"c{i}.wav", tone(1.2, 16000, 160.0 + 50 * i), 16000)
    r = run_cli("explain", str(trained_run), str(folder), "--out", str(tmp_path / "maps"), "--class", "sad")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "maps").glob("*.png")) == ["c0.png", "c1.png"]
    assert "grad-cam of fold 0" in r.stdout and "explained sad" in r.stdout, r.stdout
    r = run_cli("explain", str(trained_run), str(folder / "c0.wav"), "--out", str(tmp_path / "maps1"), "--fold", "1")
    assert r.returncode == 0 and "grad-cam of fold 1" in r.stdout, r.stderr[-2000:]
    r = run_cli("explain", str(trained_run), str(folder), "--fold", "5")
    assert r.returncode == 2 and "fold 5" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("explain", str(trained_run), str(folder), "--class", "bored")
    assert r.returncode == 2 and "bored" in r.stderr


def test_report_and_compare(trained_run, text_run, tmp_path):
    import re
    import shutil
    import subprocess

    r = run_cli("report", str(trained_run), "--cams", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    page = (trained_run / "report.html").read_text()
    md = (trained_run / "report.md").read_text()
    assert "Leakage audit" in md and "mean ± std" in md and "| angry |" in md
    assert page.count("data:image/png;base64,") >= 5, "pooled + per-fold confusions, curves, maps, all inline"
    assert "http://" not in page and "https://" not in page and "src='/" not in page, "self-contained"
    assert "Training curves" in page and "predicted" in page
    r = run_cli("compare", str(trained_run), str(text_run), "--out", str(tmp_path / "t.md"))
    assert r.returncode == 0, r.stderr[-2000:]
    table = (tmp_path / "t.md").read_text()
    assert re.search(r"\| cnn_bilstm \| audio \| none \| 2/5 \| [0-9.]+ ± [0-9.]+", table)
    assert "| text_mlp | text |" in table
    r = run_cli("report", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "no such run folder" in r.stderr


@pytest.mark.browser
def test_report_renders_in_headless_chromium(trained_run, tmp_path):
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    if not (trained_run / "report.html").is_file():
        assert run_cli("report", str(trained_run), "--cams", "1").returncode == 0
    shot = tmp_path / "report.png"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1200,2400", (trained_run / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[0] >= 2000 and img.std() > 10, "the page drew text and images, not a blank screen"
    shutil.copy(shot, trained_run / "report_screenshot.png")


def test_export_command(trained_run, tmp_path):
    r = run_cli("export", str(trained_run), "--format", "onnx", "--out", str(tmp_path / "onnx"), "--fold", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert (tmp_path / "onnx" / "model.onnx").is_file() and meta["classes"] == ["angry", "happy", "sad", "neutral"]
    assert meta["checkpoints"][0].endswith("fold_1/checkpoints/best.ckpt") and "fold 1" in r.stdout
    r = run_cli("export", str(trained_run), "--format", "torchscript", "--out", str(tmp_path / "ts"), "--fold", "7")
    assert r.returncode == 2 and "fold 7" in r.stderr


def test_best_checkpoint_holds_what_inference_needs_and_last_what_a_resume_needs(trained_run):
    ckdir = trained_run / "fold_0" / "checkpoints"
    best = torch.load(ckdir / "best.ckpt", map_location="cpu", weights_only=True)
    last = torch.load(ckdir / "last.ckpt", map_location="cpu", weights_only=True)
    assert {"state_dict", "hyper_parameters", "emofuse_version", "epoch"} <= set(best)
    assert not {"optimizer_states", "lr_schedulers", "loops", "callbacks"} & set(best), sorted(best)
    hp = best["hyper_parameters"]
    assert hp["classes"] == ["angry", "happy", "sad", "neutral"] and hp["frontend"]["sample_rate"] == 16000
    assert last["optimizer_states"] and last["loops"] and last["callbacks"]
    assert (ckdir / "best.ckpt").stat().st_size < 0.5 * (ckdir / "last.ckpt").stat().st_size


def _voice(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    from emofuse.synth import _voice as voice

    return voice(np.random.default_rng(seed), sr, seconds, 180.0, 0.3, 0.8, 4.5, 0.6, 0.05)


def test_speech_check_flags_tones_and_noise_not_a_voice():
    from emofuse.speech import speech_check

    t = np.arange(32000) / 16000
    pure = speech_check((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    noise = speech_check((0.1 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32))
    buzz = speech_check(tone(2.0, 16000, 150.0))  # harmonics, but a steady level
    assert not pure.speech and not noise.speech and not buzz.speech, (pure, noise, buzz)
    assert "steady level" in buzz.reason and "voiced" in noise.reason
    for seed in range(3):
        check = speech_check(_voice(2.0, seed=seed))
        assert check.speech and check.voiced_fraction > 0.5, check


def test_predict_flags_clips_without_speech_and_audio_of_the_run(trained_run, synth_corpus, tmp_path):
    import shutil

    folder = tmp_path / "clips"
    folder.mkdir()
    t = np.arange(32000) / 16000
    sf.write(folder / "a440.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    sf.write(folder / "noise.wav", (0.1 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32), 16000)
    sf.write(folder / "voice.wav", _voice(2.0), 16000)
    shutil.copy(sorted(synth_corpus.rglob("*.wav"))[0], folder / "seen.wav")  # a clip the run trained on
    r = run_cli("predict", str(trained_run), str(folder), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(tmp_path / "p.csv").set_index("utt")
    assert df["speech"].to_dict() == {"a440": False, "noise": False, "seen": True, "voice": True}
    assert df["in_training_data"].to_dict() == {"a440": False, "noise": False, "seen": True, "voice": False}
    assert set(df["pred"]) <= {"angry", "happy", "sad", "neutral"}  # the label is still given, and marked
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 3 and sum("no speech" in w for w in warnings) == 2 and "seen: this audio is in the run" in r.stderr
    # A waveform has no file to hash: not checked, said as None.
    pred = emofuse.load(trained_run, device="cpu").predict(_voice(1.0), sample_rate=16000)
    assert pred.speech and pred.in_training_data is None
