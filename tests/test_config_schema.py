"""check_config: every config group typed, unknown keys and bad values refused before any work."""

from __future__ import annotations

import re
import pytest
import yaml

from conftest import REPO, run_cli
from emofuse.config import configs_root, load_config
from emofuse.errors import EmofuseError
from emofuse.schema import GROUPS, check_config, coerce_group

EXPERIMENTS = sorted(p.stem for p in (configs_root() / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_shipped_experiment_passes_and_is_unchanged(name):
    cfg = load_config(name)
    out = check_config(cfg)
    # Shipped configs already spell every key: normalising them changes nothing (so resumed runs
    # compare equal to the config.yaml they wrote before).
    assert out == cfg


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_shipped_group_defaults_equal_the_schema_defaults(group):
    """Each default lives in the schema; the commented YAML file must not drift from it."""
    shipped = yaml.safe_load((configs_root() / group / "default.yaml").read_text())[group]
    assert shipped == coerce_group(group, GROUPS[group], {})


def _err(name: str, *overrides: str) -> str:
    with pytest.raises(EmofuseError) as info:
        check_config(load_config(name, list(overrides)))
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("override, expect", [
    ("train.class_weights=flase", r"train\.class_weights=flase: must be true or false"),
    ("train.deterministic=maybe", r"train\.deterministic=maybe: must be true or false"),
    ("augment.waveform=flase", r"augment\.waveform=flase: must be true or false"),
    ("train.max_epoch=2", r"train\.max_epoch: unknown config key; did you mean train\.max_epochs\?"),
    ("data.bach_size=8", r"data\.bach_size: unknown config key; did you mean data\.batch_size\?"),
    ("cv.nfolds=3", r"cv\.nfolds: unknown config key; did you mean cv\.n_folds\?"),
    ("features.nmels=80", r"features\.nmels: unknown config key; did you mean features\.n_mels\?"),
    ("text.max_token=8", r"text\.max_token: unknown config key; did you mean text\.max_tokens\?"),
    ("augment.polcy=none", r"augment\.polcy: unknown config key; did you mean augment\.policy\?"),
    ("sed=1", r"sed: unknown config key; did you mean seed\?"),
    ("train.lr=abc", r"train\.lr=abc: must be a number \(e\.g\. train\.lr=0\.001\)"),
    ("features.n_mels=abc", r"features\.n_mels=abc: must be a whole number \(e\.g\. features\.n_mels=64\)"),
    ("data.batch_size=0", r"data\.batch_size=0: must be at least 1"),
    ("train.max_epochs=-3", r"train\.max_epochs=-3: must be at least 1"),
    ("train.max_epochs=2.5", r"train\.max_epochs=2\.5: must be a whole number"),
    ("train.lr=0", r"train\.lr=0\.0: must be greater than 0"),
    ("train.label_smoothing=1", r"train\.label_smoothing=1\.0: must be less than 1"),
    ("train.scheduler=cosin", r"train\.scheduler=cosin: must be one of \['cosine', 'plateau', 'none'\]; did you mean 'cosine'\?"),
    ("train.monitor=val/macro_f", r"train\.monitor=val/macro_f: must be one of .*did you mean 'val/macro_f1'\?"),
    ("train.precision=17", r"train\.precision=17: must be one of"),
    ("train.limit_train_batches=1.5", r"train\.limit_train_batches=1\.5: a fraction must lie in \(0, 1\]"),
    ("cv.val_speakers=0", r"cv\.val_speakers=0: must be at least 1 \(cv\.val_speakers=null for the default\)"),
    ("cv.n_folds=1", r"cv\.n_folds=1: must be at least 2"),
    ("cv.n_folds=abc", r"cv\.n_folds=abc: must be a whole number or null"),
    ("cv.scheme=speakers", r"cv\.scheme=speakers: must be one of .*did you mean 'speaker'\?"),
    ("seed=x", r"seed=x: must be a whole number"),
    ("features.win_length=1024", r"features\.win_length=1024 is longer than features\.n_fft=512"),
    ("features.kind=whisper", r"features\.kind=whisper: must be one of .*did you mean 'whisper_encoder'\?"),
    ("text.max_tokens=abc", r"text\.max_tokens=abc: must be a whole number"),
    ("augment.policy=uniformm", r"augment\.policy=uniformm: must be one of .*did you mean 'uniform'\?"),
])
def test_bad_values_and_keys_are_one_line_naming_key_value_and_fix(override, expect):
    assert re.search(expect, _err("text_mlp" if override.startswith("text.") else "resnet18", override))


@pytest.mark.parametrize("name, override, expect", [
    ("cnn_bilstm", "model.pooling=maen", r"model\.pooling=maen: must be one of \['attention', 'mean'\]; did you mean 'mean'\?"),
    ("audio_transformer", "model.pooling=maen", r"model\.pooling=maen: must be one of \['cls', 'mean'\]"),
    ("text_mlp", "model.pooling=max", r"model\.pooling=max: must be one of \['cls', 'mean'\]"),
    ("cross_attention", "model.direction=both_ways", r"model\.direction=both_ways: must be one of"),
    ("early_fusion", "model.text_pooling=avg", r"model\.text_pooling=avg: must be one of"),
    ("resnet18", "model.base_channel=16", r"model\.base_channel: unknown config key; did you mean model\.base_channels\?"),
    ("resnet18", "model.base_channels=abc", r"model\.base_channels=abc: must be a whole number"),
    ("resnet18", "model.base_channels=0", r"model\.base_channels=0: must be at least 1"),
    ("resnet18", "model.dropout=1.5", r"model\.dropout=1\.5: must be less than 1"),
    ("resnet18", "model.n_mels=80", r"model\.n_mels: set by the run"),
    ("resnet18", "model.name=resnet19", r"model\.name=resnet19: not a registered model; did you mean 'resnet18'\?"),
    ("cnn_bilstm", "model.channels=[8,x]", r"model\.channels=\[8, x\]: must be a list of whole numbers"),
    ("early_fusion", "model.audio.base_channel=8", r"model\.audio\.base_channel: unknown config key; did you mean model\.audio\.base_channels\?"),
    ("early_fusion", "model.audio_encoder=text_mlp", r"model\.audio_encoder=text_mlp: not a registered audio model"),
    # A combination only the constructor knows, caught by building the model on the meta device.
    ("audio_transformer", "features.n_mels=72", r"model 'audio_transformer'.*n_mels=72 must be a multiple of patch_f=16"),
])
def test_model_kwargs_are_checked_against_the_constructor(name, override, expect):
    assert re.search(expect, _err(name, override))


def test_values_are_coerced_and_defaults_filled():
    cfg = load_config("resnet18", ["train.class_weights=no", "train.lr=1e-3", "train.precision=32", "cv.n_folds='4'",
                                   "train.devices=auto", "train.limit_train_batches=2", "model.dropout=0"])
    del cfg["data"]["crop_seconds"], cfg["seed"]
    out = check_config(cfg)
    t = out["train"]
    assert t["class_weights"] is False and t["lr"] == 1e-3 and isinstance(t["lr"], float)  # YAML reads 1e-3 as text
    assert t["precision"] == "32" and t["devices"] == "auto" and t["limit_train_batches"] == 2
    assert out["cv"]["n_folds"] == 4 and out["model"]["dropout"] == 0.0
    assert out["data"]["crop_seconds"] == 8.0 and out["seed"] == 0  # defaults filled in
    for word, value in (("yes", True), ("off", False), ("1", True), ("0", False), ("True", True)):
        assert check_config(load_config("resnet18", [f"train.class_weights={word}"]))["train"]["class_weights"] is value
    assert check_config(load_config("resnet18", ["train.class_weights='FALSE'"]))["train"]["class_weights"] is False


def test_every_key_the_training_code_reads_is_declared():
    """A key read with .get(key, default) in the run code but missing from the schema would dodge the check."""
    pkg = REPO / "src" / "emofuse"
    src = "".join(f.read_text() for f in [*sorted((pkg / "training").glob("*.py")), pkg / "cli.py", pkg / "summary.py"])
    aliases = {"tr": "train", "train": "train", "cv": "cv"}
    used = set()
    for group, key in re.findall(r'\["(data|train|cv)"\](?:\.get\(|\[)"(\w+)"', src):
        used.add((group, key))
    for var, key in re.findall(r'\b(tr|train|cv)(?:\.get\(|\[)"(\w+)"', src):
        used.add((aliases[var], key))
    assert len(used) > 20
    declared = {(g, f) for g, cls in GROUPS.items() for f in cls.__dataclass_fields__}
    assert used - declared - {("train", "progress_bar")} == set()


# -- manifest-dependent checks and the command line -------------------------------------------------

def test_folds_the_manifest_cannot_give_stop_before_any_work(synth_manifest):
    base = [f"data.manifest={synth_manifest}"]
    with pytest.raises(EmofuseError, match=r"cannot make 11 speaker folds from 10 speakers; set cv.n_folds between 2 and 10"):
        check_config(load_config("resnet18", base + ["cv.scheme=speaker", "cv.n_folds=11"]))
    with pytest.raises(EmofuseError, match=r"fold 7 does not exist: this config gives 5 folds .*0\.\.4"):
        check_config(load_config("resnet18", base), folds=[7])
    with pytest.raises(EmofuseError, match="augment.oversample: 'calm' is not a class"):
        check_config(load_config("resnet18_augment", base + ["augment.oversample={calm: 2}"]))
    assert check_config(load_config("resnet18", base), folds=[0, 4])["data"]["manifest"] == str(synth_manifest)


def _one_line_error(r) -> str:
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("emofuse: error: "), r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("args, expect", [
    (["cv", "resnet18", "train.max_epoch=2"], "did you mean train.max_epochs?"),
    (["cv", "resnet18", "train.class_weights=flase"], "train.class_weights=flase: must be true or false"),
    (["cv", "cnn_bilstm", "model.pooling=maen"], "did you mean 'mean'?"),
    (["train", "resnet18", "--fold", "7"], "fold 7 does not exist"),
    (["cv", "resnet18", "--folds", "0,7"], "fold 7 does not exist"),
    (["cv", "resnet18", "--folds", "0,x"], "--folds 0,x: give fold numbers separated by commas"),
])
def test_cli_config_errors_are_one_line_and_nothing_is_written(synth_manifest, tmp_path, args, expect):
    run = tmp_path / "run"
    r = run_cli(*args, f"data.manifest={synth_manifest}", "--out", str(run), timeout=120)
    assert expect in _one_line_error(r)
    assert not run.exists()


def test_features_command_checks_its_config(synth_manifest, tmp_path):
    r = run_cli("features", str(synth_manifest), "--cache", str(tmp_path / "cache"), "features.n_mels=abc", timeout=120)
    assert "features.n_mels=abc: must be a whole number" in _one_line_error(r)
    assert not (tmp_path / "cache").exists()
