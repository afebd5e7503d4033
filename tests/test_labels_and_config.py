import pytest

from emofuse.config import apply_overrides, find_config, load_config
from emofuse.errors import EmofuseError
from emofuse.labels import get_class_map, list_class_maps


def test_iemocap4_merges_excited_into_happy_and_excludes_the_rest():
    cmap = get_class_map("iemocap4")
    assert cmap.classes == ("angry", "happy", "sad", "neutral")
    assert cmap.map("exc") == "happy" and cmap.map("hap") == "happy"
    assert cmap.map("fru") is None and cmap.is_known("fru")
    assert not cmap.is_known("bogus")
    assert get_class_map("iemocap4_noexc").map("exc") is None
    assert len(get_class_map("iemocap6").classes) == 6
    assert get_class_map("ravdess8").classes[0] == "neutral" and len(get_class_map("ravdess8").classes) == 8


def test_class_map_from_yaml(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("classes: [pos, neg]\nmapping: {hap: pos, exc: pos, sad: neg, ang: neg}\n")
    cmap = get_class_map(f)
    assert cmap.name == "mine" and cmap.map("exc") == "pos" and cmap.map("neu") is None


def test_bad_class_maps_fail_clearly(tmp_path):
    with pytest.raises(EmofuseError, match="unknown class map 'nope'.*iemocap4"):
        get_class_map("nope")
    f = tmp_path / "bad.yaml"
    f.write_text("classes: [a]\nmapping: {x: b}\n")
    with pytest.raises(EmofuseError, match="not in its class list"):
        get_class_map(f)
    assert "ravdess4" in list_class_maps()


def test_experiment_replaces_model_group_and_keeps_other_defaults():
    cfg = load_config("cnn_bilstm")
    assert cfg["model"]["name"] == "cnn_bilstm" and "base_channels" not in cfg["model"]
    assert cfg["features"]["n_mels"] == 64 and cfg["features"]["hop_length"] == 160
    demo = load_config("demo")
    assert demo["model"]["lstm_hidden"] == 64 and demo["model"]["pooling"] == "attention"


def test_overrides_parse_yaml_values(tmp_path):
    cfg = load_config("resnet18", ["train.max_epochs=3", "model.base_channels=16", "data.manifest=some/dir", "new.key=[1, 2]"])
    assert cfg["train"]["max_epochs"] == 3 and cfg["model"]["base_channels"] == 16
    assert cfg["data"]["manifest"] == "some/dir" and cfg["new"]["key"] == [1, 2]
    with pytest.raises(EmofuseError, match="key.sub=value"):
        apply_overrides(cfg, ["novalue"])


def test_user_experiment_file_holds_only_differences(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("defaults: [default, model/audio_transformer]\ntrain: {max_epochs: 2}\n")
    cfg = load_config(f)
    assert cfg["model"]["name"] == "audio_transformer" and cfg["train"]["max_epochs"] == 2
    assert cfg["train"]["lr"] == 1.0e-3


def test_unknown_config_lists_experiments():
    with pytest.raises(EmofuseError, match="resnet18"):
        find_config("no_such_experiment")
