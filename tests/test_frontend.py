"""Log-mel module against librosa, batch-versus-item consistency, the feature cache, z-scoring."""

import librosa
import numpy as np
import pytest
import torch

from emofuse import audio
from emofuse.audio import read_audio, to_mono_16k
from emofuse.errors import EmofuseError
from emofuse.features.store import job_sizes
from emofuse.features import FeatureStore, FrontendConfig, LogMel, Normalize, fit_stats, mel_filterbank
from emofuse.manifest import read_manifest

from conftest import tone


def librosa_logmel(y: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length,
                                         hop_length=cfg.hop_length, n_mels=cfg.n_mels, center=True, pad_mode="constant")
    return librosa.power_to_db(mel, ref=1.0, amin=cfg.amin, top_db=cfg.top_db).T  # (T, n_mels)


def speechlike(seconds=1.7, seed=0):
    rng = np.random.default_rng(seed)
    x = tone(seconds, 16000, 180 + 40 * seed, seed=seed).astype(np.float64)
    env = np.clip(np.sin(np.linspace(0, 9, x.size)) + 0.2, 0, None)
    return x * env + 1e-3 * rng.normal(size=x.size)


def test_filterbank_equals_librosa():
    ours = mel_filterbank(16000, 512, 64)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64).T
    assert np.abs(ours - ref).max() < 1e-8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logmel_matches_librosa_within_a_ten_thousandth_db(seed):
    cfg = FrontendConfig(precise=True)
    y = speechlike(seed=seed)
    ref = librosa_logmel(y, cfg)  # float64 reference
    ours64, frames = LogMel(cfg)(torch.from_numpy(y)[None])
    assert ours64.shape[1] == ref.shape[0] == cfg.n_frames(y.size) == int(frames[0])
    assert np.abs(ours64[0].numpy() - ref).max() < 1e-4
    ours32, _ = LogMel(cfg)(torch.from_numpy(y.astype(np.float32))[None])  # float32 audio, float64 STFT
    assert ours32.dtype == torch.float32 and np.abs(ours32[0].numpy() - ref).max() < 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_default_float32_stft_stays_within_a_thousandth_db_of_librosa(seed):
    """The default (fast) path: float32 audio and STFT, as librosa's own float32 path computes."""
    cfg = FrontendConfig()
    assert not cfg.precise and cfg.key() != FrontendConfig(precise=True).key()  # its own cache
    y = speechlike(seed=seed)
    ref = librosa_logmel(y, cfg)
    ours, _ = LogMel(cfg)(torch.from_numpy(y.astype(np.float32))[None])
    assert np.abs(ours[0].numpy() - ref).max() < 1e-3


def test_logmel_on_the_real_corpus_if_present():
    from conftest import SHARED_RAVDESS

    f = SHARED_RAVDESS / "Actor_01" / "03-01-05-02-01-01-01.flac"
    if not f.is_file():
        pytest.skip("RAVDESS not present")
    y = read_audio(f)
    ref = librosa_logmel(y.astype(np.float64), FrontendConfig())
    assert np.abs(LogMel(FrontendConfig(precise=True))(torch.from_numpy(y)[None])[0][0].numpy() - ref).max() < 1e-4
    assert np.abs(LogMel()(torch.from_numpy(y)[None])[0][0].numpy() - ref).max() < 1e-3


def test_batch_equals_items_one_by_one():
    cfg = FrontendConfig()
    clips = [speechlike(s, seed=i).astype(np.float32) for i, s in enumerate((0.5, 1.3, 0.9))]
    n = max(c.size for c in clips)
    batch = torch.zeros(3, n)
    for i, c in enumerate(clips):
        batch[i, : c.size] = torch.from_numpy(c)
    lengths = torch.tensor([c.size for c in clips])
    module = LogMel(cfg)
    out, frames = module(batch, lengths)
    for i, c in enumerate(clips):
        single, _ = module(torch.from_numpy(c)[None])
        assert int(frames[i]) == single.shape[1]
        assert torch.allclose(out[i, : frames[i]], single[0], atol=1e-5)
        assert torch.all(out[i, frames[i]:] == out[i, : frames[i]].max() - cfg.top_db)  # floor past the end


@pytest.mark.parametrize("n_fft,win_length,hop", [(512, 400, 160), (400, 400, 160), (1024, 400, 100), (512, 401, 128)])
def test_spectrum_has_the_magnitudes_of_torch_stft(n_fft, win_length, hop):
    """The windowed-samples-only STFT changes the phase, never the power, for any sizes and lengths."""
    module = LogMel(FrontendConfig(n_fft=n_fft, win_length=win_length, hop_length=hop))
    for n in (1, hop - 1, win_length, 16037):
        x = torch.from_numpy(np.stack([speechlike(1.1, seed=s)[:n] for s in (0, 1)]))  # (2, n) float64
        ref = torch.stft(x, n_fft, hop, win_length, module.window, center=True, pad_mode="constant",
                         return_complex=True).transpose(1, 2)  # (2, T, n_freq)
        ours = module._spectrum(x)
        assert ours.shape == ref.shape
        assert (ours.abs().square() - ref.abs().square()).abs().max() <= 1e-12 * ref.abs().square().max()


@pytest.mark.parametrize("subtype,channels,sr", [("PCM_16", 1, 16000), ("PCM_24", 2, 44100), ("PCM_S8", 2, 22050)])
def test_flac_decodes_to_the_samples_libsndfile_gives(tmp_path, subtype, channels, sr):
    import soundfile as sf

    path = tmp_path / "a.flac"
    sf.write(path, tone(0.7, sr, 190.0, channels), sr, subtype=subtype)
    assert audio._read_flac(path) is not None  # dr_flac read it, not the libsndfile fallback
    data, file_sr = sf.read(path, dtype="float32", always_2d=True)
    assert np.array_equal(read_audio(path), to_mono_16k(data, file_sr))


def test_truncated_or_corrupt_flac_fails_in_one_line_naming_the_file(tmp_path):
    """dr_flac would return the first part of a truncated file; it goes to libsndfile instead."""
    import soundfile as sf

    sf.write(tmp_path / "whole.flac", tone(2.0), 16000)
    blob = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "junk.flac").write_bytes(b"fLaC" + bytes(200))
    for name in ("cut.flac", "junk.flac"):
        assert audio._read_flac(tmp_path / name) is None
        with pytest.raises(EmofuseError) as err:
            read_audio(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("top_db", [80.0, 30.0, None])
@pytest.mark.parametrize("per_clip", [True, False])  # the CPU path and the batched (GPU) one
def test_db_floors_equal_clamp_log_then_floor_bit_for_bit(top_db, per_clip):
    cfg = FrontendConfig(top_db=top_db)
    module = LogMel(cfg)
    power = torch.rand(4, 50, 64) ** 8 * torch.tensor([1.0, 1e-9, 0.0, 1e3])[:, None, None]  # loud, quiet, silent, very loud
    power[0, :, 3] = 0.0  # exact zeros inside a clip
    frames = torch.tensor([50, 31, 50, 7])
    ref = power.clamp(min=cfg.amin).log().mul(10.0 / np.log(10.0))  # librosa's order: amin, dB, top_db floor
    if top_db is not None:
        for b, n in enumerate(frames.tolist()):
            floor = ref[b, :n].max() - top_db
            ref[b, :n] = torch.maximum(ref[b, :n], floor)
            ref[b, n:] = floor
    out = module._to_db(power.clone(), frames, per_clip=per_clip)
    assert torch.equal(out, ref)
    if top_db is not None:
        assert torch.all(out[2] == out[2, 0, 0])  # the silent clip: one value, its floor


def test_jobs_shrink_so_workers_finish_together():
    sizes = job_sizes(1440, 2)
    assert sum(sizes) == 1440 and sizes == sorted(sizes, reverse=True)
    assert max(sizes) <= 256 and sizes[-2] == 16 and len(sizes) < 20
    assert job_sizes(300, 1) == [256, 44] and job_sizes(5, 4) == [5]


def test_worker_heap_setting_applies_once_in_its_own_process():
    import platform
    import subprocess
    import sys

    code = "from emofuse.heap import hold_freed_memory as h; print(h(), h())"  # not in this test process
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert out == [str(glibc)] * 2


def test_filterbank_and_window_are_buffers():
    names = {n for n, _ in LogMel().named_buffers()}
    assert {"fb", "window"} <= names


def test_resampling_and_downmix(tmp_path):
    import soundfile as sf

    x = tone(1.0, 48000, 300, channels=2)
    sf.write(tmp_path / "a.wav", x, 48000)
    y = read_audio(tmp_path / "a.wav")
    assert y.dtype == np.float32 and y.ndim == 1 and abs(y.size - 16000) <= 1


def test_cache_reuses_features_and_recomputes_on_new_settings(synth_manifest, tmp_path):
    m = read_manifest(synth_manifest)
    keys = m.df["audio_sha1"].tolist()
    paths = [m.audio_path(p) for p in m.df["path"]]
    store = FeatureStore(tmp_path / "cache")
    assert store.ensure(keys, paths, workers=1, progress=False) == len(set(keys))
    direct = LogMel()(torch.from_numpy(read_audio(paths[0]))[None])[0][0].numpy()
    assert np.allclose(store.get(keys[0]), direct, atol=1e-5)
    again = FeatureStore(tmp_path / "cache")  # a new process would do the same: read the index
    assert again.ensure(keys, paths, workers=1, progress=False) == 0
    assert isinstance(again.get(keys[0]).base, np.memmap) or isinstance(again.get(keys[0]), np.memmap)
    other = FeatureStore(tmp_path / "cache", FrontendConfig(n_mels=40))
    assert other.dir != store.dir and other.ensure(keys, paths, workers=1, progress=False) == len(set(keys))
    assert other.get(keys[0]).shape[1] == 40


def test_worker_processes_write_their_own_shards_with_the_same_features(synth_manifest, tmp_path):
    m = read_manifest(synth_manifest)
    keys, paths = m.df["audio_sha1"].tolist(), [m.audio_path(p) for p in m.df["path"]]
    one = FeatureStore(tmp_path / "one")
    one.ensure(keys, paths, workers=1, progress=False)
    two = FeatureStore(tmp_path / "two")
    assert two.ensure(keys, paths, workers=2, progress=False) == len(set(keys))
    assert len(list(two.dir.glob("shard-*.npy"))) == len(job_sizes(len(set(keys)), 2))  # a shard per job
    reread = FeatureStore(tmp_path / "two")  # the index on disk matches what the parent registered
    for k in set(keys):
        assert np.array_equal(two.get(k), one.get(k)) and np.array_equal(reread.get(k), one.get(k))
    assert not list(two.dir.glob("*.tmp*"))


def test_interrupted_cache_keeps_finished_shards(synth_manifest, tmp_path, monkeypatch):
    import emofuse.features.store as store_mod

    m = read_manifest(synth_manifest)
    keys, paths = m.df["audio_sha1"].tolist(), [m.audio_path(p) for p in m.df["path"]]
    monkeypatch.setattr(store_mod, "SHARD_UTTERANCES", 32)
    calls = {"n": 0}
    real = store_mod._extract_files

    def flaky(args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(store_mod, "_extract_files", flaky)
    with pytest.raises(KeyboardInterrupt):
        FeatureStore(tmp_path / "c").ensure(keys, paths, workers=1, progress=False)
    monkeypatch.setattr(store_mod, "_extract_files", real)
    resumed = FeatureStore(tmp_path / "c")
    assert len(set(keys)) - len(resumed.missing(keys)) == 64  # the two finished shards survived
    assert resumed.ensure(keys, paths, workers=1, progress=False) == len(set(keys)) - 64


def test_zscore_uses_only_the_given_training_items(synth_manifest, tmp_path):
    m = read_manifest(synth_manifest)
    keys, paths = m.df["audio_sha1"].tolist(), [m.audio_path(p) for p in m.df["path"]]
    store = FeatureStore(tmp_path / "cache")
    store.ensure(keys, paths, workers=1, progress=False)
    train = keys[:20]
    mean, std = fit_stats(store, train)
    frames = np.concatenate([store.get(k) for k in train])
    assert np.allclose(mean, frames.mean(0), atol=1e-3) and np.allclose(std, frames.std(0), atol=1e-3)
    assert not np.allclose(mean, fit_stats(store, keys[20:])[0], atol=1e-3)
    x = torch.from_numpy(np.stack([store.get(train[0])[:50], store.get(train[1])[:50]]))
    z = Normalize(mean, std)(x, torch.tensor([50, 30]))
    assert torch.all(z[1, 30:] == 0) and abs(float(z[0].mean())) < 3


def _write_items(folder: str, writer: int) -> None:
    from emofuse.shards import ShardedArrays

    store = ShardedArrays(folder, {"what": "test"})
    store.store_stream(([(f"{writer}-{j}", np.full((2 + j % 3, 4), writer, np.float32))] for j in range(40)), shard_items=5)


def test_several_processes_can_fill_one_cache_at_once(tmp_path):
    """Folds trained in parallel render into one cache: no writer may overwrite another's shard."""
    from concurrent.futures import ProcessPoolExecutor

    from emofuse.shards import ShardedArrays

    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_write_items, [str(tmp_path)] * 4, range(4)))
    store = ShardedArrays(tmp_path, {})
    assert len(store) == 160
    for w in range(4):
        for j in range(40):
            assert store.get(f"{w}-{j}").shape == (2 + j % 3, 4) and (store.get(f"{w}-{j}") == w).all()
    assert not list(tmp_path.glob("*.tmp*"))
