"""Long files are streamed in blocks: the same results as decoding them whole, in bounded memory.

prepare's check, the log-mel features and prediction each read a long file block by block;
here each is compared with the whole-file computation on normal and minutes-long synthetic
files (odd lengths, stereo 44.1 kHz, FLAC and WAV), and a subprocess measures peak memory on a
20-minute file. Also: truncated and empty files are named as such.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emofuse import audio
from emofuse.audio import EMPTY, NON_FINITE, SILENT, TRUNCATED, UNREADABLE, AudioCheck, read_audio, stream_audio
from emofuse.errors import EmofuseError
from emofuse.features import FeatureStore, FrontendConfig, LogMel
from emofuse.prepare import _check_file, prepare

from conftest import tone

REPO = Path(__file__).resolve().parents[1]


def write_long(path: Path, seconds: float, sr: int = 44100, channels: int = 2, seed: int = 0,
               subtype: str | None = None) -> Path:
    """A speech-like test signal of any length, written block by block (never whole in memory)."""
    rng = np.random.default_rng(seed)
    n, block = int(seconds * sr), sr * 10
    with sf.SoundFile(path, "w", sr, channels, subtype=subtype) as f:
        for start in range(0, n, block):
            t = (np.arange(start, min(n, start + block)) / sr)[:, None]
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)  # syllable-rate loudness
            x = 0.2 * env * np.sin(2 * np.pi * (150 + 40 * np.sin(t)) * t) + 0.01 * rng.normal(size=(t.size, 1))
            f.write(np.repeat(x, channels, axis=1) * np.linspace(1, 0.8, channels)[None])
    return path


def whole_file_check(path: Path, silence_peak: float = 1e-4) -> tuple[AudioCheck, str]:
    """What prepare computed before streaming: the file's bytes in memory, decoded whole."""
    blob = path.read_bytes()
    sha1 = hashlib.sha1(blob).hexdigest()
    try:
        data, sr = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    except Exception:
        return AudioCheck(UNREADABLE), sha1
    if data.shape[0] == 0:
        return AudioCheck(EMPTY, 0.0, sr, data.shape[1]), sha1
    duration = data.shape[0] / sr
    if not np.isfinite(data).all():
        return AudioCheck(NON_FINITE, duration, sr, data.shape[1]), sha1
    if float(np.abs(data).max()) < silence_peak:
        return AudioCheck(SILENT, duration, sr, data.shape[1]), sha1
    return AudioCheck(None, duration, sr, data.shape[1]), sha1


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    out = {
        "short.wav": write_long(d / "short.wav", 1.37, 16000, 1, seed=1),
        "stereo44.flac": write_long(d / "stereo44.flac", 3.0001, 44100, 2, seed=2),
        "long44.wav": write_long(d / "long44.wav", 151.3, 44100, 2, seed=3),  # odd length, 2.5 minutes
        "long44.flac": write_long(d / "long44.flac", 127.77, 44100, 2, seed=4),
        "long48_24bit.flac": write_long(d / "long48_24bit.flac", 65.5, 48000, 1, seed=5, subtype="PCM_24"),
    }
    sf.write(d / "silent.wav", np.zeros((20000, 2), np.float32), 22050)
    nan = tone(1.0, 16000)
    nan[500] = np.nan
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(d / "noframes.wav", np.zeros((0, 2), np.float32), 16000)
    (d / "junk.wav").write_bytes(b"RIFF....not audio at all")
    out.update({n: d / n for n in ("silent.wav", "nan.wav", "noframes.wav", "junk.wav")})
    return out


# --- prepare's check -------------------------------------------------------------------------

def test_check_file_streams_to_the_same_result_and_hash_as_a_whole_read(clips, monkeypatch):
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 4099)  # many blocks, none aligned with anything
    for name, path in clips.items():
        assert _check_file(str(path)) == whole_file_check(path), name


def test_truncated_wav_is_reported_and_skipped_with_its_fix(tmp_path):
    whole = write_long(tmp_path / "whole.wav", 2.0, 16000, 1)
    blob = whole.read_bytes()
    (tmp_path / "cut.wav").write_bytes(blob[: len(blob) // 2 + 1])  # odd cut: half a frame at the end
    check, _ = _check_file(str(tmp_path / "cut.wav"))
    assert check.problem == TRUNCATED and check.sample_rate == 16000 and 0.9 < check.duration < 1.1
    assert _check_file(str(whole))[0].problem is None
    sf.write(tmp_path / "ext.wav", tone(1.0, 16000, channels=2), 16000, format="WAVEX")  # WAVE_FORMAT_EXTENSIBLE
    blob = (tmp_path / "ext.wav").read_bytes()
    (tmp_path / "ext_cut.wav").write_bytes(blob[:-1000])
    assert _check_file(str(tmp_path / "ext.wav"))[0].problem is None
    assert _check_file(str(tmp_path / "ext_cut.wav"))[0].problem == TRUNCATED


def test_a_wav_written_without_its_length_is_not_called_truncated(tmp_path):
    """Streaming writers leave the data size 0 or 0xFFFFFFFF; libsndfile reads such files to the end."""
    path = write_long(tmp_path / "a.wav", 1.0, 16000, 1)
    blob = bytearray(path.read_bytes())
    at = blob.index(b"data") + 4
    blob[at:at + 4] = (0xFFFFFFFF).to_bytes(4, "little")
    (tmp_path / "open.wav").write_bytes(bytes(blob))
    check, _ = _check_file(str(tmp_path / "open.wav"))
    assert check.problem is None and abs(check.duration - 1.0) < 1e-3


def _flac_header_only(flac: bytes) -> bytes:
    """The metadata blocks of a FLAC file without any audio frame."""
    i = 4
    while True:
        last, length = flac[i] & 0x80, int.from_bytes(flac[i + 1:i + 4], "big")
        i += 4 + length
        if last:
            return flac[:i]


def test_zero_byte_and_header_only_files_are_empty_not_unreadable(tmp_path):
    write_long(tmp_path / "a.flac", 1.0, 16000, 1)
    (tmp_path / "zero.flac").write_bytes(b"")
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "header.flac").write_bytes(_flac_header_only((tmp_path / "a.flac").read_bytes()))
    for name in ("zero.flac", "zero.wav", "header.flac"):
        assert _check_file(str(tmp_path / name))[0].problem == EMPTY, name
        with pytest.raises(EmofuseError, match="no audio") as err:
            read_audio(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_prepare_counts_truncated_and_empty_files_with_their_fixes(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    rows = []
    for i in range(4):
        write_long(root / f"u{i}.wav", 1.0, 16000, 1, seed=i)
        rows.append(f"u{i},u{i}.wav,spk{i % 2},angry")
    blob = (root / "u0.wav").read_bytes()
    (root / "u0.wav").write_bytes(blob[: len(blob) * 2 // 3])
    (root / "u1.wav").write_bytes(b"")
    (root / "meta.csv").write_text("utt_id,path,speaker,label\n" + "\n".join(rows) + "\n")
    s = prepare("csv", root, tmp_path / "m", workers=1, csv=str(root / "meta.csv"))
    assert s.rows == 2 and s.skipped == {TRUNCATED: 1, EMPTY: 1}
    text = "\n".join(s.lines())
    assert "skipped 1: truncated audio" in text and "re-copy" in text


# --- decoding in blocks ----------------------------------------------------------------------

@pytest.mark.parametrize("block", [1000, 4096, 1 << 16])
def test_streamed_decode_equals_the_whole_decode(clips, block):
    for name in ("short.wav", "stereo44.flac", "long44.wav", "long44.flac", "long48_24bit.flac"):
        whole = read_audio(clips[name])
        streamed = np.concatenate(list(stream_audio(clips[name], block_frames=block)))
        assert streamed.dtype == np.float32 and streamed.shape == whole.shape, name
        assert np.abs(streamed - whole).max() <= 1e-6, name


def test_a_file_that_fails_mid_stream_fails_in_one_line(tmp_path):
    write_long(tmp_path / "a.flac", 20.0, 44100, 2)
    blob = (tmp_path / "a.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(EmofuseError) as err:
        for _ in stream_audio(tmp_path / "cut.flac", block_frames=4096):
            pass
    assert "cut.flac" in str(err.value) and "\n" not in str(err.value)


# --- log-mel in blocks -----------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [FrontendConfig(), FrontendConfig(top_db=None), FrontendConfig(precise=True),
                                 FrontendConfig(n_fft=400, hop_length=100, top_db=30.0)])
def test_logmel_of_blocks_equals_the_whole_clip(cfg):
    module = LogMel(cfg)
    rng = np.random.default_rng(0)
    for n in (0, 1, 159, 399, 512, 16037, 170_001):
        wave = (tone(n / 16000 + 1e-9, 16000, 170.0)[:n] * rng.uniform(0.1, 1)).astype(np.float32)
        whole, frames = module(torch.from_numpy(wave)[None]) if n else (torch.zeros(1, 1, cfg.n_mels), None)
        for block, step in ((1, 1), (97, 1), (160, 7), (4000, 1), (4000, 300), (50_000, 2000)):
            if block * 1000 < n:
                continue  # sample by sample only on short clips (slow in Python)
            blocks = (wave[i:i + block] for i in range(0, n, block))
            streamed = module.stream(blocks, step_frames=step)
            assert streamed.shape == (cfg.n_frames(n), cfg.n_mels)
            if n:
                assert np.abs(streamed - whole[0].numpy()).max() < 1e-4, (n, block, step)


def test_features_of_a_long_file_are_streamed_and_equal_the_whole_clip(clips, tmp_path, monkeypatch):
    import emofuse.features.store as store_mod

    paths = [clips["short.wav"], clips["long44.flac"], clips["stereo44.flac"], clips["long44.wav"]]
    keys = [p.name for p in paths]
    whole = FeatureStore(tmp_path / "whole")
    monkeypatch.setattr(store_mod, "LONG_CLIP_SECONDS", 1e9)  # everything decoded whole
    whole.ensure(keys, paths, workers=1, progress=False)
    monkeypatch.setattr(store_mod, "LONG_CLIP_SECONDS", 2.0)  # everything but the short clip streamed
    streamed_paths = []
    real = store_mod.LogMel.stream
    monkeypatch.setattr(store_mod.LogMel, "stream", lambda self, blocks, **kw: streamed_paths.append(1) or real(self, blocks, **kw))
    streamed = FeatureStore(tmp_path / "streamed")
    streamed.ensure(keys, paths, workers=1, progress=False)
    assert len(streamed_paths) == 3
    for k in keys:
        assert streamed.get(k).shape == whole.get(k).shape
        assert np.abs(streamed.get(k) - whole.get(k)).max() < 2e-4, k


# --- prediction in windows -------------------------------------------------------------------

def tiny_predictor(window_seconds: float = 8.0, hop_seconds: float | None = None):
    from emofuse.inference import Predictor
    from emofuse.training.module import EmotionModule

    torch.manual_seed(0)
    module = EmotionModule("cnn_bilstm", {"channels": [8, 8, 16], "lstm_hidden": 16}, ["a", "b", "c"], 64,
                           frontend=asdict(FrontendConfig()))
    return Predictor([module.eval()], window_seconds, hop_seconds)


def whole_file_prediction(predictor, wave: np.ndarray) -> np.ndarray:
    """Today's algorithm: every window of the decoded clip in one batch, probabilities averaged."""
    x, lengths = predictor.features(wave)
    with torch.no_grad():
        return torch.softmax(predictor.modules[0](x=x, lengths=lengths), dim=1).mean(0).numpy()


@pytest.mark.parametrize("window,hop,names", [(8.0, None, ("short.wav", "stereo44.flac", "long44.flac")),
                                              (1.0, 0.3, ("short.wav", "stereo44.flac")),
                                              (0.5, 0.7, ("stereo44.flac",)),  # hops over samples
                                              (100.0, None, ("long44.flac",))])
def test_streamed_prediction_equals_the_whole_file_prediction(clips, window, hop, names):
    predictor = tiny_predictor(window, hop)
    for name in names:
        wave = read_audio(clips[name])
        ref = whole_file_prediction(predictor, wave)
        pred = predictor.predict(clips[name])
        n_windows = predictor.features(wave)[0].shape[0]
        assert pred.windows == n_windows and abs(pred.seconds - len(wave) / 16000) < 1e-9, name
        assert np.abs(np.array(list(pred.probs.values())) - ref).max() < 1e-5, name
        same = predictor.predict(wave, sample_rate=16000)  # an in-memory waveform takes the same windows
        assert same.windows == n_windows and np.abs(np.array(list(same.probs.values())) - ref).max() < 1e-5


def test_streamed_prediction_refuses_bad_audio_as_before(clips, tmp_path):
    predictor = tiny_predictor(2.0)
    for name, match in (("silent.wav", "silent"), ("nan.wav", "NaN"), ("noframes.wav", "no samples")):
        with pytest.raises(EmofuseError, match=match):
            predictor.predict(clips[name])
    sf.write(tmp_path / "blip.wav", tone(0.01, 16000), 16000)
    with pytest.raises(EmofuseError, match="shorter than one analysis window"):
        predictor.predict(tmp_path / "blip.wav")


# --- peak memory on a 20-minute file ----------------------------------------------------------

MEMORY_SCRIPT = textwrap.dedent("""
    import sys
    from dataclasses import asdict
    from pathlib import Path

    def hwm_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    stage, path, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    import torch
    from emofuse.features import FeatureStore, FrontendConfig
    from emofuse.prepare import _check_file
    from emofuse.inference import Predictor
    from emofuse.training.module import EmotionModule
    predictor = None
    if stage == "predict":
        module = EmotionModule("cnn_bilstm", {"channels": [8, 8, 16], "lstm_hidden": 16}, ["a", "b"], 64,
                               frontend=asdict(FrontendConfig()))
        predictor = Predictor([module.eval()])
        predictor.predict(torch.randn(16000 * 130).numpy() * 0.1, sample_rate=16000)  # a full batch of windows
    else:
        FeatureStore(work / "warm").ensure(["w"], [str(path.with_name("warm.wav"))], workers=1, progress=False)
    before = hwm_mb()
    if stage == "prepare":
        check, sha1 = _check_file(str(path))
        assert check.problem is None, check
    elif stage == "features":
        FeatureStore(work / "cache").ensure(["k"], [str(path)], workers=1, progress=False)
    else:
        predictor.predict(path)
    print(f"{before:.0f} {hwm_mb():.0f}")
""")


def peak_growth_mb(stage: str, path: Path, work: Path) -> float:
    r = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, stage, str(path), str(work)], capture_output=True,
                       text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    before, after = map(float, r.stdout.split()[-2:])
    return after - before


@pytest.mark.slow
def test_peak_memory_stays_bounded_on_a_20_minute_file(tmp_path):
    """A whole decode of 20 minutes of 44.1 kHz stereo is ~420 MB of float32 (plus its mono and
    16 kHz copies; before streaming, 10 minutes already cost prepare +502 MB, features +344 MB,
    predict +462 MB: benchmarks/long_audio_memory.py); streamed, each step stays far below that. The log-mel output itself, (120,000 frames, 64) float32, is
    31 MB and is held (measured: prepare +2 MB, features +59 MB, predict +40 MB)."""
    path = write_long(tmp_path / "talk.wav", 20 * 60, 44100, 2)
    write_long(tmp_path / "warm.wav", 2.0, 44100, 2)
    growth = {stage: peak_growth_mb(stage, path, tmp_path) for stage in ("prepare", "features", "predict")}
    print(growth)
    assert growth["prepare"] < 50 and growth["features"] < 90 and growth["predict"] < 80, growth


def test_a_shard_is_written_array_by_array_as_the_same_npy_file(tmp_path, monkeypatch):
    """A long clip's features are the largest array a worker holds; writing its shard must not
    concatenate a second copy in memory. The file is byte for byte what np.save writes."""
    from emofuse.shards import ShardedArrays

    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, 64)).astype(np.float32) for n in (5, 1, 300)]
    arrays.append(rng.normal(size=(7, 64)))  # float64 in: stored as float32
    real = np.concatenate

    def no_2d_concatenate(parts, *args, **kwargs):
        if any(np.ndim(p) == 2 for p in parts):
            pytest.fail("the shard was concatenated in memory")
        return real(parts, *args, **kwargs)

    monkeypatch.setattr(np, "concatenate", no_2d_concatenate)
    store = ShardedArrays(tmp_path / "s", {})
    store.write_shard(store.next_shard(), ["a", "b", "c", "d"], arrays)
    monkeypatch.undo()
    np.save(tmp_path / "ref.npy", np.concatenate(arrays).astype(np.float32))
    assert (tmp_path / "s" / "shard-00000.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    again = ShardedArrays(tmp_path / "s", {})
    for k, a in zip("abcd", arrays):
        assert np.array_equal(again.get(k), a.astype(np.float32))
    with pytest.raises(ValueError, match="dim"):
        store.write_shard(store.next_shard(), ["e", "f"], [np.zeros((2, 64), np.float32), np.zeros((2, 40), np.float32)])
