"""Augmentation: each effect, SpecAugment, the policy loader, rendering, and the leakage guard."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY, run_cli, tone
from emofuse.augment import AugmentStore, FoldAugment, SpecAugment, build_effect, load_policy
from emofuse.config import load_config
from emofuse.errors import EmofuseError
from emofuse.features import FrontendConfig
from emofuse.splits import LeakageError
from emofuse.synth import make_noise_folder

SR = 16000
CLASSES = ["angry", "happy", "sad", "neutral"]


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("noise")
    make_noise_folder(out, per_kind=1, seconds=1.5)
    return out


def _effects(noise_dir):
    return {
        "pitch_shift": {"semitones": [-3, 3]}, "time_stretch": {"rate": [0.8, 0.9]}, "gaussian_noise": {"snr_db": [10, 20]},
        "pink_noise": {"snr_db": [10, 20]}, "gain": {"db": [-6, -3]}, "reverb": {"rt60": [0.3, 0.6], "bank": 2},
        "env_noise": {"folder": str(noise_dir), "snr_db": [5, 10]},
    }


def test_every_registered_effect_is_tested(noise_dir):
    from emofuse.augment import EFFECTS
    assert set(EFFECTS) == set(_effects(noise_dir))


@pytest.mark.parametrize("name", ["pitch_shift", "time_stretch", "gaussian_noise", "pink_noise", "gain", "reverb", "env_noise"])
def test_effect_shape_determinism_change_and_length(name, noise_dir):
    effect = build_effect({"name": name, **_effects(noise_dir)[name]})
    x = tone(1.2, SR, 180.0)
    y1 = effect(x, SR, np.random.default_rng(7))
    y2 = effect(x, SR, np.random.default_rng(7))
    assert y1.dtype == np.float32 and y1.ndim == 1 and np.isfinite(y1).all()
    assert np.array_equal(y1, y2), "same seed, same output"
    assert any(not np.array_equal(y1, effect(x, SR, np.random.default_rng(s))) for s in range(8, 14)), "other seeds, other draws"
    if name == "time_stretch":  # rate 0.8-0.9: slower, longer by 1 / rate
        assert len(x) / 0.9 * 0.97 <= len(y1) <= len(x) / 0.8 * 1.03
    else:
        assert len(y1) == len(x)
        assert np.abs(y1 - x).max() > 1e-3, "the effect changes the signal"


def test_reverb_simulates_the_requested_rt60():
    from emofuse.augment.waveform import simulated_rir

    for rt60 in (0.3, 0.8):
        ir = simulated_rir(SR, rt60, (6.0, 5.0, 3.0), np.random.default_rng(0)).astype(np.float64)
        edc = np.cumsum(ir[::-1] ** 2)[::-1]
        edc_db = 10 * np.log10(edc / edc[0])
        t20 = np.argmax(edc_db < -25) - np.argmax(edc_db < -5)  # frames for 20 dB of decay
        assert 0.6 * rt60 < 3 * t20 / SR < 1.4 * rt60


def test_specaugment_is_batched_seeded_and_stays_inside_each_item():
    sa = SpecAugment([(0, 0, 0, 0), (2, 10, 3, 30)])
    lengths = torch.tensor([120, 60, 25])
    x = torch.randn(3, 120, 64) + 5.0
    rows = torch.tensor([0, 1, 1])
    y1 = sa(x, lengths, rows, torch.Generator().manual_seed(0))
    y2 = sa(x, lengths, rows, torch.Generator().manual_seed(0))
    y3 = sa(x, lengths, rows, torch.Generator().manual_seed(1))
    assert y1.shape == x.shape and torch.equal(y1, y2) and not torch.equal(y1, y3)
    assert torch.equal(y1[0], x[0]), "a zero row masks nothing"
    assert (y1[1] == 0).any() and (y1[2] == 0).any()
    assert torch.equal(y1[1, 60:], x[1, 60:]) and torch.equal(y1[2, 25:], x[2, 25:]), "padding frames untouched"
    heavy = SpecAugment([(4, 20, 6, 40)])(x, lengths, torch.zeros(3, dtype=torch.long), torch.Generator().manual_seed(0))
    assert (heavy == 0).float().mean() > (y1 == 0).float().mean()


def _study(**over) -> dict:
    cfg = load_config("resnet18_augment")["augment"]
    cfg.update(over)
    return cfg


def test_the_shipped_study_policy_loads(noise_dir):
    policy = load_policy(_study(noise_dir=str(noise_dir)), CLASSES)
    plans = policy.plans
    assert [e.name for e in plans["angry"].effects] == ["pitch_shift"] and plans["angry"].effects[0].semitones == (-3, 3)
    assert plans["angry"].spec == (2, 12, 3, 40) and plans["neutral"].spec == (1, 6, 1, 15)
    assert [e.name for e in plans["happy"].effects] == ["env_noise", "pitch_shift", "time_stretch"]
    assert [e.name for e in plans["sad"].effects] == ["reverb", "pink_noise"]
    assert [e.name for e in plans["neutral"].effects] == ["gaussian_noise"]
    # RAVDESS 8-class: classes the policy does not name get nothing.
    eight = load_policy(_study(noise_dir=str(noise_dir)), CLASSES + ["calm", "fearful"])
    assert not eight.plans["calm"].effects and eight.plans["calm"].spec == (0, 0, 0, 0)
    # Ablation switches.
    assert not load_policy(_study(noise_dir=str(noise_dir), specaugment=False), CLASSES).spec_active
    assert not load_policy(_study(noise_dir=str(noise_dir), waveform=False), CLASSES).waveform_active
    assert load_policy(_study(waveform=False), CLASSES).spec_active  # no noise folder needed with waveform effects off
    flat = load_policy(_study(noise_dir=str(noise_dir), class_policy=False), CLASSES)
    assert len({tuple(e.name for e in p.effects) for p in flat.plans.values()}) == 1
    assert load_policy(_study(policy="uniform"), CLASSES).plans["sad"].spec == (2, 8, 2, 25)
    assert not load_policy(_study(policy="none"), CLASSES).active and not load_policy(None, CLASSES).active


@pytest.mark.parametrize("change, message", [
    ({"classes": {"angy": [{"name": "gain"}]}}, r"\['angy'\] are not classes of this run"),
    ({"classes": {"angry": [{"name": "wobble"}]}}, "unknown waveform effect 'wobble'"),
    ({"classes": {"angry": [{"name": "pitch_shift", "semitones": [3, -3]}]}}, "low > high"),
    ({"classes": {"angry": [{"name": "pitch_shift", "semitones": [-30, 3]}]}}, "within"),
    ({"classes": {"angry": [{"name": "gain", "p": 1.5}]}}, r"p=1.5"),
    ({"classes": {"angry": [{"name": "gaussian_noise", "snr_db": "loud"}]}}, r"\[low, high\] pair"),
    ({"classes": {"angry": [{"name": "specaugment", "freq_masks": -1}]}}, "freq_masks"),
    ({"classes": {"angry": [{"name": "gain", "volume": 2}]}}, "bad parameters"),
    ({"policy": "random"}, "augment.policy must be one of"),
    ({"colour": 1}, "unknown keys"),
    ({"oversample": {"bored": 2}}, "not a class of this run"),
    ({"oversample": {"sad": 0}}, ">= 1"),
    ({"noise_dir": None}, "augment.noise_dir"),
    ({"variants": -1}, "augment.variants"),
])
def test_policy_loader_gives_clear_errors(change, message, noise_dir):
    cfg = _study(noise_dir=str(noise_dir))
    cfg.update(change)
    with pytest.raises(EmofuseError, match=message):
        load_policy(cfg, CLASSES)


def _fold_augment(tmp_path, noise_dir, train_ids: list[str], seed: int = 0) -> FoldAugment:
    import soundfile as sf

    files = {}
    tmp_path.mkdir(parents=True, exist_ok=True)
    for i, u in enumerate(train_ids):
        p = tmp_path / f"{u}.wav"
        sf.write(p, tone(0.8, SR, 150 + 30 * i, seed=i), SR)
        files[u] = (str(p), f"{i:040x}", CLASSES[i % 4])
    policy = load_policy(_study(noise_dir=str(noise_dir), variants=2, seed=seed), CLASSES)
    return FoldAugment(policy, AugmentStore(tmp_path / "cache", FrontendConfig()), files)


def test_rendering_is_cached_and_repeatable(tmp_path, noise_dir):
    aug = _fold_augment(tmp_path, noise_dir, ["a", "b", "c", "d"])
    assert aug.prepare(workers=1, progress=False) == 4
    assert aug.prepare(workers=1, progress=False) == 0, "a second fold re-uses rendered variants"
    v0 = np.array(aug.variant("a", 0))
    assert v0.ndim == 2 and v0.shape[1] == 64 and not np.array_equal(v0, np.array(aug.variant("a", 1)))
    again = _fold_augment(tmp_path / "again", noise_dir, ["a", "b", "c", "d"])
    again.prepare(workers=1, progress=False)
    assert np.array_equal(np.array(again.variant("a", 0)), v0), "same seed, same variant"
    other = _fold_augment(tmp_path / "other", noise_dir, ["a", "b", "c", "d"], seed=1)
    other.prepare(workers=1, progress=False)
    assert not np.array_equal(np.array(other.variant("a", 0)), v0)


def test_fold_augment_items_have_named_fields_and_the_dataset_asks_for_copies(tmp_path, noise_dir):
    from types import SimpleNamespace

    from emofuse.training.data import FeatureDataset

    aug = _fold_augment(tmp_path, noise_dir, ["a", "b", "c", "d"])
    item = aug.train["c"]
    assert (item.label, item.sha1) == (CLASSES[2], f"{2:040x}") and item.path.endswith("c.wav")
    aug.policy.oversample = {CLASSES[2]: 3}
    assert [aug.copies(u) for u in "abcd"] == [1, 1, 3, 1]
    with pytest.raises(LeakageError):
        aug.copies("test_1")
    ds = FeatureDataset(SimpleNamespace(frames=lambda key: 10), ["0" * 40] * 4, [0, 1, 2, 3], train=True,
                        utt_ids=list("abcd"), augment=aug)
    assert ds.source == [0, 1, 2, 3, 2, 2] and ds.is_copy == [False] * 4 + [True] * 2


def test_the_guard_refuses_to_augment_validation_or_test_items(tmp_path, noise_dir):
    from emofuse.features import FeatureStore
    from emofuse.training.data import FeatureDataset

    aug = _fold_augment(tmp_path, noise_dir, ["train_1", "train_2"])
    aug.prepare(workers=1, progress=False)
    for outsider in ("val_1", "test_1"):
        with pytest.raises(LeakageError, match="not a training item"):
            aug.variant(outsider, 0)
        with pytest.raises(LeakageError):
            aug.waveform_variants(outsider)
    store = FeatureStore(tmp_path / "cache")
    with pytest.raises(ValueError, match="training sets only"):
        FeatureDataset(store, ["0" * 40], [0], train=False, utt_ids=["train_1"], augment=aug)
    with pytest.raises(LeakageError):  # a training dataset holding a non-training item fails too
        FeatureDataset(store, ["0" * 40], [0], train=True, utt_ids=["test_1"], augment=aug)


def test_cv_with_each_policy_augments_training_items_only(synth_manifest, tmp_path, noise_dir):
    cfg = tmp_path / "aug.yaml"
    cfg.write_text("defaults: [default, model/cnn_bilstm, augment/study]\nname: aug\n")
    common = [f"data.manifest={synth_manifest}", *TINY, f"augment.noise_dir={noise_dir}", "augment.variants=2"]
    for policy, extra in (("none", []), ("uniform", []), ("class_differentiated", ["augment.oversample={sad: 2}"])):
        run = tmp_path / policy
        r = run_cli("cv", str(cfg), *common, f"augment.policy={policy}", *extra, "--out", str(run))
        assert r.returncode == 0, r.stderr[-3000:]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["complete"] and summary["augmentation"] == policy
        audit = json.loads((run / "audit.json").read_text())
        assert audit["augmentation"]["policy"] == policy
        for k in range(5):
            fold = run / f"fold_{k}"
            if policy == "none":
                assert not (fold / "augmented.csv").exists()
                continue
            split = pd.read_csv(fold / "split.csv")
            record = pd.read_csv(fold / "augmented.csv", keep_default_na=False)
            assert set(record["utt_id"]) == set(split.loc[split["part"] == "train", "utt_id"])
            fold_audit = json.loads((fold / "augment_audit.json").read_text())
            assert fold_audit["passed"] and fold_audit["val_items_augmented"] == fold_audit["test_items_augmented"] == 0
            assert fold_audit["train_items_augmented"] > 0
            if policy == "class_differentiated":
                sad = record[record["label"] == "sad"]
                assert (sad["oversample"] == 2).all() and (sad["waveform_effects"] == "reverb+pink_noise").all()
    # Augmentation with a model that reads no audio is refused in one line.
    r = run_cli("cv", "text_mlp", f"data.manifest={synth_manifest}", "augment.policy=uniform", "--out", str(tmp_path / "t"))
    assert r.returncode == 2 and "reads no audio" in r.stderr


def test_env_noise_reads_segments_of_long_files_and_names_a_corrupt_one(tmp_path):
    import soundfile as sf

    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "long.wav", np.random.default_rng(0).normal(0, 0.1, 44100 * 5).astype(np.float32), 44100)
    effect = build_effect({"name": "env_noise", "folder": str(tmp_path), "snr_db": [5, 5]})
    x = tone(1.0, SR, 200.0)
    y = effect(x, SR, np.random.default_rng(0))
    noise = y - x
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert len(y) == len(x) and abs(snr - 5.0) < 0.2
    (tmp_path / "noise" / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    effect = build_effect({"name": "env_noise", "folder": str(tmp_path)})
    with pytest.raises(EmofuseError, match="broken.wav"):
        for seed in range(20):  # some draw picks the broken file
            effect(x, SR, np.random.default_rng(seed))


def test_mixup_mixes_pairs_and_their_lengths_and_is_off_at_alpha_zero():
    from emofuse.augment import mixup

    torch.manual_seed(0)
    x, lengths = torch.randn(6, 50, 8), torch.tensor([50, 40, 30, 20, 10, 5])
    text, text_lengths = torch.randn(6, 7, 4), torch.tensor([7, 6, 5, 4, 3, 2])
    inputs = {"x": x, "lengths": lengths, "text": text, "text_lengths": text_lengths}
    mixed, perm, lam = mixup(inputs, alpha=0.4)
    assert 0.5 <= lam <= 1.0  # the first item of each pair dominates, so its label is the batch's accuracy label
    assert sorted(perm.tolist()) == list(range(6))
    assert torch.allclose(mixed["x"], lam * x + (1 - lam) * x[perm])
    assert torch.allclose(mixed["text"], lam * text + (1 - lam) * text[perm])
    assert torch.equal(mixed["lengths"], torch.maximum(lengths, lengths[perm]))
    assert torch.equal(mixed["text_lengths"], torch.maximum(text_lengths, text_lengths[perm]))
    assert inputs["x"] is x and torch.equal(inputs["lengths"], torch.tensor([50, 40, 30, 20, 10, 5]))  # inputs untouched
    same, perm0, lam0 = mixup(inputs, alpha=0.0)
    assert lam0 == 1.0 and same is inputs and torch.equal(perm0, torch.arange(6))


def test_mixup_loss_is_the_mixture_of_both_labels_losses():
    from emofuse.training.module import EmotionModule

    module = EmotionModule("cnn_bilstm", {"channels": [8, 8, 8], "lstm_hidden": 8, "lstm_layers": 1},
                           ["a", "b", "c", "d"], 16, mixup_alpha=0.4)
    assert module.hparams.mixup_alpha == 0.4
    batch = {"x": torch.randn(4, 30, 16), "lengths": torch.tensor([30, 30, 20, 10]), "y": torch.tensor([0, 1, 2, 3]),
             "index": torch.arange(4)}
    torch.manual_seed(1)
    loss = module.training_step(batch, 0)
    torch.manual_seed(1)
    from emofuse.augment import mixup

    mixed, perm, lam = mixup({"x": module.norm(batch["x"], batch["lengths"]), "lengths": batch["lengths"]}, 0.4)
    logits = module.model(**mixed)
    expected = lam * module.loss_fn(logits, batch["y"]) + (1 - lam) * module.loss_fn(logits, batch["y"][perm])
    assert torch.allclose(loss, expected, atol=1e-6)
