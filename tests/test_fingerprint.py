"""Content fingerprints: copies under another encoding, rate, gain or trim are found; other takes are not."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from emofuse.audio import read_audio
from emofuse.errors import EmofuseError
from emofuse.fingerprint import (HOP_SECONDS, THRESHOLD, bit_error_rate, duplicate_groups,
                                 find_near_duplicates, fingerprint, from_bytes, load_fingerprints,
                                 save_fingerprints, to_bytes)

from conftest import SHARED_RAVDESS

SR = 16000
VOWELS = [(300, 2300), (400, 2000), (550, 1800), (700, 1200), (750, 1100), (500, 900), (350, 800), (450, 1500)]


def speech(sentence: int, speaker: int, take: int, seconds: float = 2.0) -> np.ndarray:
    """A speech-like take: syllables with vowel formants, a pitch contour, consonant noise, pauses.

    ``sentence`` and ``speaker`` fix the phrase structure (syllable timing, vowels, intonation)
    and the voice (pitch range, vocal tract size); ``take`` varies what varies between two
    readings of one sentence: timing (+-8 %), intonation, loudness of each syllable, phases, noise.

    Returns:
        (N,) float32 at 16 kHz.
    """
    plan = np.random.default_rng([sentence, speaker])
    voice = np.random.default_rng([1000 + speaker])
    rng = np.random.default_rng([sentence, speaker, take, 7])
    f0_base = voice.uniform(95, 230)
    tract = voice.uniform(0.9, 1.15)                     # formant scale of this speaker
    n = int(seconds * SR)
    t = np.arange(n) / SR
    syllables = plan.integers(5, 9)
    onsets = np.sort(plan.uniform(0.05, seconds - 0.3, syllables))
    onsets = onsets * rng.uniform(0.92, 1.08) + rng.normal(0, 0.015, syllables)
    lengths = plan.uniform(0.09, 0.22, syllables) * rng.uniform(0.9, 1.1, syllables)
    vowels = plan.integers(0, len(VOWELS), syllables)
    # intonation: the sentence's contour plus this take's own wander (octaves)
    knots = np.linspace(0, seconds, 6)
    contour = np.interp(t, knots, plan.normal(0, 0.15, 6) + rng.normal(0, 0.06, 6)) - 0.2 * t / seconds
    f0 = f0_base * 2 ** (contour + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    # formant tracks: each syllable's vowel, interpolated between syllable centres
    centres = onsets + lengths / 2
    order = np.argsort(centres)
    f1 = np.interp(t, centres[order], [VOWELS[v][0] * tract for v in vowels[order]])
    f2 = np.interp(t, centres[order], [VOWELS[v][1] * tract for v in vowels[order]])
    f3 = 2600 * tract
    voiced = np.zeros(n)
    for h in range(1, 40):
        fh = h * f0
        gain = (np.exp(-((fh - f1) / 90) ** 2) + 0.6 * np.exp(-((fh - f2) / 120) ** 2)
                + 0.3 * np.exp(-((fh - f3) / 200) ** 2) + 0.02) / h ** 0.5
        gain[fh > 7600] = 0.0
        voiced += gain * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    env = np.zeros(n)
    fric = np.zeros(n)
    for on, ln in zip(onsets, lengths):
        a, b = int(on * SR), int((on + ln) * SR)
        if b <= a or a >= n:
            continue
        b = min(b, n)
        env[a:b] += np.hanning(int((on + ln) * SR) - a)[: b - a] * rng.uniform(0.5, 1.0)
        c = max(0, a - int(0.04 * SR))                   # a consonant before the vowel
        if plan.random() < 0.6:
            fric[c:a] += np.hanning(a - c) * rng.uniform(0.1, 0.3) if a > c else 0.0
    hiss = np.diff(rng.normal(0, 1, n + 1))              # high-passed noise for the consonants
    x = env * voiced + fric * hiss + 0.003 * rng.normal(0, 1, n)
    return (0.25 * x / np.abs(x).max()).astype(np.float32)


def roundtrip(tmp_path: Path, name: str, x: np.ndarray, sr: int = SR, **kwargs) -> np.ndarray:
    """Write with libsndfile, decode back with emofuse.audio.read_audio (16 kHz mono float32)."""
    path = tmp_path / name
    sf.write(path, x, sr, **kwargs)
    return read_audio(path)


def copies(x: np.ndarray, tmp_path: Path) -> dict[str, np.ndarray]:
    """The same take as a user might meet it again: other encodings, rate, gain, trim."""
    x44 = soxr.resample(x, SR, 44100).astype(np.float32)
    return {
        "flac": roundtrip(tmp_path, "c.flac", x),
        "wav 44.1 kHz stereo": roundtrip(tmp_path, "c.wav", np.stack([x44, 0.9 * x44], axis=1), 44100, subtype="PCM_16"),
        "+3 dB": x * np.float32(10 ** (3 / 20)),
        "20 ms cut": x[int(0.020 * SR):],
        "ogg vorbis": roundtrip(tmp_path, "c.ogg", x, format="OGG", subtype="VORBIS"),
        "mp3": roundtrip(tmp_path, "c.mp3", x, format="MP3"),
        "mp3 44.1 kHz, 57 ms cut": roundtrip(tmp_path, "d.mp3", x44[int(0.057 * 44100):], 44100, format="MP3"),
    }


def test_speech_generator_takes_differ_but_share_structure():
    a, b = speech(1, 1, 0), speech(1, 1, 1)
    assert a.shape == b.shape and a.dtype == np.float32
    assert not np.allclose(a, b)
    # same phrase structure: loudness envelopes (50 ms) correlate; the waveforms do not
    env = lambda x: np.sqrt((x[: x.size // 800 * 800].reshape(-1, 800) ** 2).mean(axis=1))
    assert np.corrcoef(env(a), env(b))[0, 1] > 0.5
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_copies_under_other_encodings_rates_gains_and_trims_match(tmp_path, seed):
    x = speech(seed, seed + 3, 0)
    ref = fingerprint(x)
    for name, y in copies(x, tmp_path).items():
        ber, shift = bit_error_rate(ref, fingerprint(y))
        assert ber <= THRESHOLD, f"{name}: BER {ber:.3f} above {THRESHOLD}"
        if name == "20 ms cut":
            assert shift == round(0.020 / HOP_SECONDS)
        if name in ("flac", "+3 dB"):
            assert ber < 0.02, name


def test_find_near_duplicates_reports_every_copy_of_a_take(tmp_path):
    x = speech(5, 2, 0)
    items = [("orig", fingerprint(x), x.size / SR)]
    items += [(name, fingerprint(y), y.size / SR) for name, y in copies(x, tmp_path).items()]
    pairs = find_near_duplicates(items)
    with_orig = {b for a, b, _ in pairs if a == "orig"}
    assert with_orig == {name for name, _, _ in items[1:]}
    assert duplicate_groups(pairs) == [sorted(name for name, _, _ in items)]


def test_other_takes_of_the_same_sentence_by_the_same_speaker_do_not_match():
    for sentence in range(3):
        takes = [fingerprint(speech(sentence, 4, take)) for take in range(3)]
        for i in range(3):
            for j in range(i + 1, 3):
                ber, _ = bit_error_rate(takes[i], takes[j])
                assert ber > THRESHOLD + 0.05, f"sentence {sentence}, takes {i} and {j}: BER {ber:.3f}"


def test_unrelated_clips_do_not_match():
    fps = [fingerprint(speech(s, s + 10, 0)) for s in range(6)]
    for i in range(6):
        for j in range(i + 1, 6):
            assert bit_error_rate(fps[i], fps[j])[0] > 0.4
    items = [(f"u{i}", fp, 2.0) for i, fp in enumerate(fps)]
    assert find_near_duplicates(items) == []


def test_corpus_of_200_with_5_planted_copies_gives_exactly_those_pairs(tmp_path):
    # 20 speakers x 5 sentences x 2 takes: every clip has another take of its sentence by its speaker
    items, waves = [], {}
    for spk in range(20):
        for sent in range(5):
            for take in range(2):
                x = speech(sent, spk, take, seconds=1.6)
                uid = f"s{spk:02d}_{sent}_{take}"
                waves[uid] = x
                items.append((uid, fingerprint(x), x.size / SR))
    assert len(items) == 200
    plant = {"s03_1_0": lambda x: roundtrip(tmp_path, "p.ogg", x, format="OGG", subtype="VORBIS"),
             "s07_4_1": lambda x: x[int(0.030 * SR):] * np.float32(0.7),
             "s11_2_0": lambda x: roundtrip(tmp_path, "p.mp3", x, format="MP3"),
             "s15_0_1": lambda x: roundtrip(tmp_path, "p.wav", soxr.resample(x, SR, 44100), 44100),
             "s19_3_0": lambda x: roundtrip(tmp_path, "p.flac", x[: -int(0.05 * SR)])}
    for uid, make in plant.items():
        y = make(waves[uid])
        items.append((f"copy_of_{uid}", fingerprint(y), y.size / SR))
    pairs = find_near_duplicates(items)
    assert {(a, b) for a, b, _ in pairs} == {(uid, f"copy_of_{uid}") for uid in plant}
    assert all(ber <= THRESHOLD for _, _, ber in pairs)


def test_gain_and_resampling_leave_the_words_nearly_unchanged():
    x = speech(2, 2, 0)
    a = fingerprint(x)
    b = fingerprint(x * np.float32(0.25))
    assert np.mean(a.words == b.words) > 0.95 and np.array_equal(a.active, b.active)
    assert np.allclose(a.summary, b.summary, atol=1e-3)


def test_silence_and_tiny_clips_give_no_verdict():
    silent = fingerprint(np.zeros(SR, dtype=np.float32))
    assert not silent.active.any()
    assert bit_error_rate(silent, silent) == (1.0, 0)
    tiny = fingerprint(speech(1, 1, 0)[:400])               # 25 ms: shorter than one frame
    assert tiny.n_frames == 0 and bit_error_rate(tiny, tiny) == (1.0, 0)
    items = [("a", silent, 1.0), ("b", fingerprint(np.zeros(SR, dtype=np.float32)), 1.0), ("c", tiny, 0.025)]
    assert find_near_duplicates(items) == []


def test_bit_error_rate_needs_the_minimum_overlap():
    fp = fingerprint(speech(3, 3, 0))
    n = int(fp.active.sum())
    assert bit_error_rate(fp, fp, min_overlap_frames=n)[0] == 0.0
    assert bit_error_rate(fp, fp, min_overlap_frames=n + 1) == (1.0, 0)
    with pytest.raises(ValueError):
        bit_error_rate(fp, fp, max_shift_frames=-1)


def test_shift_beyond_the_search_range_is_not_matched():
    x = speech(6, 6, 0, seconds=3.0)
    a, b = fingerprint(x), fingerprint(x[int(0.5 * SR):])    # 500 ms cut: twice the default range
    assert bit_error_rate(a, b)[0] > THRESHOLD
    ber, shift = bit_error_rate(a, b, max_shift_frames=110)
    assert ber < 0.05 and shift == 100


def test_wrong_rate_or_channels_is_a_one_line_error():
    with pytest.raises(EmofuseError, match="44100 Hz.*read_audio"):
        fingerprint(np.zeros(44100, dtype=np.float32), 44100)
    with pytest.raises(EmofuseError, match="mono"):
        fingerprint(np.zeros((SR, 2), dtype=np.float32))


def test_ids_must_be_unique():
    fp = fingerprint(speech(1, 1, 0))
    with pytest.raises(ValueError, match="unique"):
        find_near_duplicates([("a", fp, 2.0), ("a", fp, 2.0)])
    assert find_near_duplicates([]) == [] and find_near_duplicates([("a", fp, 2.0)]) == []


def test_duplicate_groups_joins_chains():
    pairs = [("b", "c", 0.1), ("a", "b", 0.2), ("x", "y", 0.0)]
    assert duplicate_groups(pairs) == [["a", "b", "c"], ["x", "y"]]
    assert duplicate_groups([]) == []


def test_bytes_round_trip_and_damage():
    fp = fingerprint(speech(1, 2, 0))
    blob = to_bytes(fp)
    assert from_bytes(blob) == fp and len(blob) < 6 * fp.n_frames + 300
    with pytest.raises(EmofuseError, match="expected"):
        from_bytes(blob[:-1])
    with pytest.raises(EmofuseError, match="not a version"):
        from_bytes(b"XXXX" + blob[4:])
    with pytest.raises(EmofuseError, match="too short"):
        from_bytes(b"EF")


def test_save_and_load_a_cache_keyed_by_sha1(tmp_path):
    fps = {f"{i:040x}": fingerprint(speech(i, 1, 0, seconds=1.0 + 0.3 * i)) for i in range(4)}
    fps["0" * 40] = fingerprint(np.zeros(100, dtype=np.float32))       # a clip with no frames
    path = save_fingerprints(tmp_path / "fingerprints.npz", fps)
    assert path == tmp_path / "fingerprints.npz" and not list(tmp_path.glob(".*.tmp"))
    back = load_fingerprints(path)
    assert list(back) == list(fps) and all(back[k] == fps[k] for k in fps)
    assert load_fingerprints(save_fingerprints(tmp_path / "empty.npz", {})) == {}


def test_load_refuses_missing_damaged_and_foreign_caches(tmp_path):
    with pytest.raises(EmofuseError, match="not found"):
        load_fingerprints(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(EmofuseError, match="cannot read fingerprints.*re-run"):
        load_fingerprints(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", version=np.array(1), params=np.array("sr=8000 something else"),
             keys=np.array([], dtype=str), offsets=np.zeros(1, dtype=np.int64), words=np.zeros(0, np.uint32),
             level=np.zeros(0, np.int8), summary=np.zeros((0, 66), np.float32))
    with pytest.raises(EmofuseError, match="other settings"):
        load_fingerprints(tmp_path / "other.npz")


@pytest.mark.slow
def test_search_scales_to_an_iemocap_sized_corpus():
    """10,000 clips of 1-30 s (synthetic fingerprints, benchmarks/fingerprint_speed.py): well under a minute."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fingerprint_speed import synthetic_corpus

    items, planted = synthetic_corpus(10_000, 10)
    t = time.perf_counter()
    pairs = find_near_duplicates(items)
    took = time.perf_counter() - t
    assert {(a, b) for a, b, _ in pairs} == planted
    assert took < 60, f"{took:.1f} s"


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_RAVDESS.is_dir(), reason="RAVDESS not present at ../shared/data/ravdess")
def test_ravdess_reports_only_its_byte_identical_pair():
    """1,440 real clips, 24 actors, each sentence read twice per emotion and intensity: the repeated
    takes are not flagged; the one byte-identical pair (Actor 07) is."""
    files = sorted(SHARED_RAVDESS.glob("Actor_*/*.flac"))
    assert len(files) == 1440
    t0 = time.perf_counter()
    items = []
    for f in files:
        x = read_audio(f)
        items.append((f"{f.parent.name}/{f.name}", fingerprint(x), x.size / SR))
    t1 = time.perf_counter()
    pairs = find_near_duplicates(items)
    t2 = time.perf_counter()
    print(f"RAVDESS: decode + fingerprint {t1 - t0:.1f} s, search {t2 - t1:.2f} s, pairs {pairs}")
    assert [(a, b) for a, b, _ in pairs] == [("Actor_07/03-01-03-01-02-01-07.flac", "Actor_07/03-01-03-01-02-02-07.flac")]
    assert pairs[0][2] == 0.0
