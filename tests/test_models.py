"""Every registered audio model: output shape, no NaN, gradients, and padding that never changes a prediction.

(Text and fusion models have the same checks in test_text_and_fusion.py.)"""

import pytest
import torch

from emofuse.errors import EmofuseError
from emofuse.models import create_model, list_models
from emofuse.models.layers import lengths_to_mask


def test_registry_lists_the_study_models():
    assert {"resnet18", "cnn_bilstm", "audio_transformer"} <= set(list_models())
    with pytest.raises(EmofuseError, match=r"unknown model 'vgg'.*resnet18"):
        create_model("vgg")
    with pytest.raises(EmofuseError, match="bad arguments"):
        create_model("resnet18", no_such_arg=1)


SMALL = {"resnet18": {"base_channels": 8}, "cnn_bilstm": {"channels": (8, 8, 16), "lstm_hidden": 16},
         "audio_transformer": {"dim": 32, "depth": 2, "heads": 2}}


@pytest.mark.parametrize("name", list_models("audio", only=True))
def test_shape_nan_and_backward(name):
    torch.manual_seed(0)
    model = create_model(name, n_mels=64, n_classes=5, **SMALL.get(name, {}))
    x, lengths = torch.randn(3, 123, 64), torch.tensor([123, 80, 33])
    x = x * lengths_to_mask(lengths, 123)[:, :, None]
    out = model(x, lengths)
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    emb = model.embed(x, lengths)
    assert emb.shape == (3, model.out_dim)


@pytest.mark.parametrize("name", list_models("audio", only=True))
def test_padding_never_changes_a_prediction(name):
    torch.manual_seed(1)
    model = create_model(name, n_mels=64, n_classes=4, **SMALL.get(name, {})).eval()
    lengths = torch.tensor([200, 150, 61, 37])
    x = torch.randn(4, 200, 64) * lengths_to_mask(lengths, 200)[:, :, None]
    with torch.no_grad():
        batched = model(x, lengths)
        padded_more = model(torch.cat([x, torch.zeros(4, 57, 64)], 1), lengths)
        alone = torch.cat([model(x[i:i + 1, : lengths[i]], lengths[i:i + 1]) for i in range(4)])
    assert torch.allclose(batched, alone, atol=1e-5), (batched - alone).abs().max()
    assert torch.allclose(padded_more, alone, atol=1e-5)


def test_channels_last_switch_converts_conv_models_only_and_keeps_their_outputs():
    from emofuse.training.module import use_channels_last

    torch.manual_seed(0)
    x, lengths = torch.randn(3, 120, 64), torch.tensor([120, 90, 60])
    conv = create_model("resnet18", n_classes=4, n_mels=64, base_channels=8).eval()
    with torch.no_grad():
        before = conv(x, lengths)
    assert use_channels_last(conv) is True
    weights = [m.weight for m in conv.modules() if isinstance(m, torch.nn.Conv2d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    with torch.no_grad():
        assert torch.allclose(conv(x, lengths), before, atol=1e-5)
    # a checkpoint of a channels_last model loads into a plain one, and back
    plain = create_model("resnet18", n_classes=4, n_mels=64, base_channels=8).eval()
    plain.load_state_dict(conv.state_dict())
    with torch.no_grad():
        assert torch.allclose(plain(x, lengths), before, atol=1e-5)
    assert use_channels_last(create_model("text_mlp", n_classes=4, text_dim=32)) is False  # no 2-d convolutions
    # width 4 has 1x1 strided convolutions with 4 input channels, whose NHWC backward corrupts the heap in torch 2.13
    narrow = create_model("resnet18", n_classes=4, n_mels=64, base_channels=4)
    assert use_channels_last(narrow) is False
    assert not any(m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
                   for m in narrow.modules() if isinstance(m, torch.nn.Conv2d))
