"""Text branch and fusion: offline encoder loading, the text cache, padding masks, shapes, attention maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emofuse.errors import EmofuseError
from emofuse.models import create_model, list_models, model_modalities
from emofuse.models.layers import lengths_to_mask
from emofuse.text import TextConfig, TextEncoder, TextStore, resolve_encoder_path, text_key

TEXTS = ["Kids are talking by the door.", "Dogs are sitting by the door.", "I can't believe you did that!", ""]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


def test_default_encoder_loads_offline_with_the_bert_wordpiece_tokenizer(encoder, monkeypatch):
    assert str(resolve_encoder_path("all-minilm-l6-v2")) == str(encoder.path)
    assert encoder.dim == 384 and not encoder.model.training
    assert all(not p.requires_grad for p in encoder.model.parameters())
    tok = encoder.tokenizer
    assert "Bert" in type(tok).__name__ and tok.vocab_size == 30522  # bert-base-uncased WordPiece vocabulary
    ids = encoder.tokenize(["Kids are TALKING"])["input_ids"][0].tolist()
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens(ids[1:-1]) == ["kids", "are", "talking"]  # uncased
    out = encoder.encode(TEXTS)
    assert [o.shape[1] for o in out] == [384] * 4 and out[3].shape[0] == 2  # empty text = [CLS] [SEP]
    # Padding in a batch does not change a text's token vectors.
    alone = encoder.encode(TEXTS[2:3])[0]
    assert np.abs(alone - out[2]).max() < 1e-4


def test_any_local_model_folder_works_by_path_and_nothing_is_downloaded(tmp_path, encoder):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    BertModel(cfg).save_pretrained(folder)
    encoder.tokenizer.save_pretrained(folder)
    enc = TextEncoder(str(folder), max_tokens=8)
    out = enc.encode(["a fairly long sentence that the tokenizer will have to truncate here"])
    assert out[0].shape == (8, 32)
    with pytest.raises(EmofuseError, match="never downloads"):
        resolve_encoder_path("bert-base-uncased")  # a hub name, not a folder here: refused, not fetched
    with pytest.raises(EmofuseError, match="no config.json"):
        resolve_encoder_path(str(tmp_path / "missing"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(EmofuseError, match="could not load"):
        TextEncoder(str(tmp_path / "broken"))


def test_text_config_rejects_bad_settings():
    with pytest.raises(EmofuseError, match="unknown keys"):
        TextConfig.from_dict({"encoderr": "x"})
    with pytest.raises(EmofuseError, match="text.missing"):
        TextConfig.from_dict({"missing": "skip"})
    with pytest.raises(EmofuseError, match="max_tokens"):
        TextConfig.from_dict({"max_tokens": 1})


def test_text_cache_encodes_each_distinct_text_once_and_is_keyed_by_settings(tmp_path, encoder):
    store = TextStore(tmp_path, TextConfig())
    texts = TEXTS * 5  # 20 utterances, 4 distinct transcripts
    assert store.ensure(texts, progress=False, encoder=encoder) == 4
    assert store.ensure(texts, progress=False, encoder=encoder) == 0
    direct = encoder.encode(TEXTS)
    for t, d in zip(TEXTS, direct):
        got = store.get(text_key(t))
        assert got.shape == d.shape and np.abs(got - d).max() < 1e-4
    # A new process sees the same cache; another max_tokens is another folder.
    again = TextStore(tmp_path, TextConfig())
    assert again.dir == store.dir and not again.missing([text_key(t) for t in TEXTS]) and again.dim == 384
    short = TextStore(tmp_path, TextConfig(max_tokens=4))
    assert short.dir != store.dir and short.missing([text_key(TEXTS[0])])
    short.ensure(TEXTS[:1], progress=False)
    assert short.get(text_key(TEXTS[0])).shape == (4, 384)
    settings = json.loads((store.dir / "settings.json").read_text())
    assert settings["max_tokens"] == 64


SMALL = {
    "text_mlp": {"hidden": 32},
    "early_fusion": {"audio": {"base_channels": 8}, "hidden": 32},
    "cross_attention": {"audio": {"dim": 32, "depth": 1, "heads": 2}, "dim": 32, "heads": 2, "depth": 2},
    "cross_attention/audio_to_text": {"audio_encoder": "cnn_bilstm", "audio": {"channels": [8, 8, 16], "lstm_hidden": 16},
                                      "dim": 32, "heads": 2, "direction": "audio_to_text"},
    "cross_attention/text_to_audio": {"audio_encoder": "resnet18", "audio": {"base_channels": 8}, "dim": 32, "heads": 2,
                                      "direction": "text_to_audio"},
    "early_fusion/mean": {"audio_encoder": "audio_transformer", "audio": {"dim": 32, "depth": 1, "heads": 2},
                          "text_pooling": "mean", "hidden": 32},
}


def test_every_text_or_fusion_model_is_covered_here():
    others = set(list_models()) - set(list_models("audio", only=True))
    assert others == {k.split("/")[0] for k in SMALL}
    assert model_modalities("text_mlp") == ("text",) and model_modalities("cross_attention") == ("audio", "text")


def _build(key: str, n_classes: int = 4, text_dim: int = 24):
    name = key.split("/")[0]
    kwargs = dict(SMALL[key], n_classes=n_classes, text_dim=text_dim)
    if "audio" in model_modalities(name):
        kwargs["n_mels"] = 64
    return name, create_model(name, **kwargs)


def _inputs(name: str, x, lengths, text, text_lengths) -> tuple:
    return (text, text_lengths) if model_modalities(name) == ("text",) else (x, lengths, text, text_lengths)


def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    lengths, text_lengths = torch.tensor([190, 150, 61, 37]), torch.tensor([11, 7, 2, 5])
    x = torch.randn(4, 190, 64, generator=g) * lengths_to_mask(lengths, 190)[:, :, None]
    text = torch.randn(4, 11, 24, generator=g) * lengths_to_mask(text_lengths, 11)[:, :, None]
    return x, lengths, text, text_lengths


@pytest.mark.parametrize("key", list(SMALL))
def test_shape_nan_and_backward(key):
    torch.manual_seed(0)
    name, model = _build(key, n_classes=5)
    args = _inputs(name, *_batch(0))
    out = model(*args)
    assert out.shape == (4, 5) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad), \
        [n for n, p in model.named_parameters() if p.grad is None]  # no unused parameters (DDP needs this)
    assert model.embed(*args).shape == (4, model.out_dim)


@pytest.mark.parametrize("key", list(SMALL))
def test_padding_tokens_and_padding_frames_never_change_the_output(key):
    torch.manual_seed(1)
    name, model = _build(key)
    model.eval()
    x, lengths, text, tl = _batch(1)
    with torch.no_grad():
        batched = model(*_inputs(name, x, lengths, text, tl))
        more = model(*_inputs(name, torch.cat([x, torch.zeros(4, 40, 64)], 1), lengths,
                              torch.cat([text, torch.zeros(4, 6, 24)], 1), tl))
        alone = torch.cat([model(*_inputs(name, x[i:i + 1, : lengths[i]], lengths[i:i + 1], text[i:i + 1, : tl[i]],
                                          tl[i:i + 1])) for i in range(4)])
        # Garbage (not zeros) in the padding must not leak either.
        noisy_x = x + 5 * (~lengths_to_mask(lengths, 190))[:, :, None] * torch.randn_like(x)
        noisy_t = text + 5 * (~lengths_to_mask(tl, 11))[:, :, None] * torch.randn_like(text)
        noisy = model(*_inputs(name, noisy_x, lengths, noisy_t, tl))
    assert torch.allclose(batched, alone, atol=1e-5), (batched - alone).abs().max()
    assert torch.allclose(more, alone, atol=1e-5)
    assert torch.allclose(noisy, alone, atol=1e-5), (noisy - alone).abs().max()


@pytest.mark.parametrize("key", ["cross_attention", "cross_attention/audio_to_text", "cross_attention/text_to_audio"])
def test_cross_attention_returns_its_token_level_attention(key):
    name, model = _build(key)
    model.eval()
    x, lengths, text, tl = _batch(2)
    with torch.no_grad():
        logits, maps = model(x, lengths, text, tl, return_attention=True)
        # Returning the weights takes nn.MultiheadAttention's explicit-softmax path instead of the fused
        # kernel: the same logits up to float32 rounding (~1e-7), which the default atol=1e-8 missed
        # whenever a logit was near zero (the model's initial weights are not seeded).
        assert torch.allclose(logits, model(x, lengths, text, tl), atol=1e-6)
    a_valid, t_valid = maps["audio_valid"], maps["text_valid"]
    assert t_valid.shape == (4, 11) and (t_valid.sum(1) == tl).all()
    direction = SMALL[key].get("direction", "both")
    depth = SMALL[key].get("depth", 1)
    assert len(maps["audio_to_text"]) == (0 if direction == "text_to_audio" else depth)
    assert len(maps["text_to_audio"]) == (0 if direction == "audio_to_text" else depth)
    for w in maps["audio_to_text"]:  # rows: audio patches/frames, columns: text tokens
        assert w.shape == (4, 2, a_valid.shape[1], 11)
        assert torch.allclose(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5)
        assert (w * (~t_valid)[:, None, None, :]).abs().max() == 0  # padding tokens get no attention
    for w in maps["text_to_audio"]:
        assert w.shape == (4, 2, 11, a_valid.shape[1])
        assert (w * (~a_valid)[:, None, None, :]).abs().max() == 0  # padding patches get no attention


def test_fusion_refuses_a_non_audio_encoder():
    with pytest.raises(EmofuseError, match="not a registered audio model"):
        create_model("early_fusion", n_mels=64, text_dim=24, audio_encoder="text_mlp")
    with pytest.raises(ValueError, match="direction"):
        create_model("cross_attention", n_mels=64, text_dim=24, direction="sideways")
