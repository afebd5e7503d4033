"""Waveform augmentations: each a small seeded callable ``(wave, sr, rng) -> wave``.

Every effect validates its parameter ranges when built (a bad range fails at config load, not
mid-training), draws its parameters from the ``numpy.random.Generator`` it is given (so a seed
repeats a run exactly), and returns float32 mono audio. All keep the input length except
``time_stretch``, which changes it by design.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..audio import AUDIO_EXTENSIONS
from ..errors import EmofuseError

EFFECTS: dict[str, Callable[..., "Effect"]] = {}


def register_effect(cls):
    EFFECTS[cls.name] = cls
    return cls


def _range(name: str, key: str, value, lo: float | None = None, hi: float | None = None) -> tuple[float, float]:
    """A [low, high] pair (a single number means [v, v]) inside [lo, hi]."""
    if isinstance(value, (int, float)):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, (int, float)) for v in value):
        raise EmofuseError(f"augment {name}: {key} must be a [low, high] pair of numbers, not {value!r}")
    a, b = float(value[0]), float(value[1])
    if a > b:
        raise EmofuseError(f"augment {name}: {key}={value} has low > high")
    if (lo is not None and a < lo) or (hi is not None and b > hi):
        raise EmofuseError(f"augment {name}: {key}={value} must lie within [{lo}, {hi}]")
    return a, b


def _mix_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """wave + noise scaled so that 10 log10(P_wave / P_noise) = snr_db."""
    p_sig = float(np.mean(wave.astype(np.float64) ** 2)) + 1e-12
    p_noise = float(np.mean(noise.astype(np.float64) ** 2)) + 1e-12
    return (wave + noise * np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))).astype(np.float32)


class Effect:
    """Base: ``p`` is the chance the effect is applied to one rendered variant."""

    name = "effect"

    def __init__(self, p: float = 1.0) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise EmofuseError(f"augment {self.name}: p={p} must lie within [0, 1]")
        self.p = float(p)

    def __call__(self, wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


@register_effect
class PitchShift(Effect):
    """Shift pitch by a uniform number of semitones, keeping duration (Rubber Band via pedalboard)."""

    name = "pitch_shift"

    def __init__(self, semitones=(-3.0, 3.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.semitones = _range(self.name, "semitones", semitones, -12, 12)

    def __call__(self, wave, sr, rng):
        import pedalboard

        st = float(rng.uniform(*self.semitones))
        out = pedalboard.PitchShift(semitones=st)(wave.astype(np.float32), sr)
        return np.asarray(out, dtype=np.float32).reshape(-1)[: len(wave)]


@register_effect
class TimeStretch(Effect):
    """Speed up (rate > 1) or slow down without changing pitch; the length becomes len / rate."""

    name = "time_stretch"

    def __init__(self, rate=(0.9, 1.1), p: float = 1.0) -> None:
        super().__init__(p)
        self.rate = _range(self.name, "rate", rate, 0.5, 2.0)

    def __call__(self, wave, sr, rng):
        import pedalboard

        rate = float(rng.uniform(*self.rate))
        out = pedalboard.time_stretch(wave.astype(np.float32), sr, stretch_factor=rate)
        return np.asarray(out, dtype=np.float32).reshape(-1)


@register_effect
class GaussianNoise(Effect):
    """White Gaussian noise at a uniform SNR (dB)."""

    name = "gaussian_noise"

    def __init__(self, snr_db=(15.0, 30.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.snr_db = _range(self.name, "snr_db", snr_db, -10, 80)

    def __call__(self, wave, sr, rng):
        return _mix_at_snr(wave, rng.standard_normal(len(wave)), float(rng.uniform(*self.snr_db)))


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) pink (1/f power) noise by spectral shaping of white noise."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n)


@register_effect
class PinkNoise(Effect):
    """Pink (1/f) noise at a uniform SNR (dB)."""

    name = "pink_noise"

    def __init__(self, snr_db=(10.0, 25.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.snr_db = _range(self.name, "snr_db", snr_db, -10, 80)

    def __call__(self, wave, sr, rng):
        return _mix_at_snr(wave, pink(len(wave), rng), float(rng.uniform(*self.snr_db)))


@register_effect
class Gain(Effect):
    """Scale by a uniform gain (dB)."""

    name = "gain"

    def __init__(self, db=(-6.0, 6.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.db = _range(self.name, "db", db, -40, 40)

    def __call__(self, wave, sr, rng):
        return (wave * 10 ** (float(rng.uniform(*self.db)) / 20)).astype(np.float32)


def list_audio(folder: Path, subsets: list[str] | None = None) -> list[Path]:
    """Audio files under ``folder`` (or under its ``subsets`` sub-folders, MUSAN style), sorted."""
    roots = [folder / s for s in subsets] if subsets else [folder]
    return sorted(p for r in roots if r.is_dir() for p in r.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)


@register_effect
class EnvNoise(Effect):
    """Environmental noise from a folder, mixed at a uniform SNR (dB).

    ``folder`` in the MUSAN layout (``noise/``, ``music/``, ``speech/``; ``subsets`` picks
    among them) or any folder of audio files. A random segment of a random file is used,
    looped when shorter than the utterance; files are never read whole.
    """

    name = "env_noise"

    def __init__(self, folder: str | None = None, snr_db=(5.0, 20.0), subsets: list[str] | None = None, p: float = 1.0) -> None:
        super().__init__(p)
        self.snr_db = _range(self.name, "snr_db", snr_db, -10, 80)
        if not folder:
            raise EmofuseError("augment env_noise: no noise folder; set augment.noise_dir=DIR (MUSAN layout: noise/, music/, "
                               "speech/, or any folder of audio files); 'emofuse synth-noise DIR' writes a synthetic one")
        self.folder = str(folder)
        present = [s for s in (subsets or ["noise", "music", "speech"]) if (Path(folder) / s).is_dir()]
        self.subsets = present or None
        self._files = list_audio(Path(folder), self.subsets)
        if not self._files:
            raise EmofuseError(f"augment env_noise: no audio files in {folder}; point augment.noise_dir at a MUSAN-layout "
                               "folder or any folder of .wav/.flac files")

    def _segment(self, path: Path, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
        """A random (n,) mono segment at ``sr``, read without loading the whole file (MUSAN files run to minutes)."""
        import soundfile as sf
        import soxr

        info = sf.info(str(path))
        need = int(np.ceil(n * info.samplerate / sr)) + 16
        start = int(rng.integers(0, max(1, info.frames - need + 1)))
        seg, file_sr = sf.read(str(path), start=start, frames=need, dtype="float32", always_2d=True)
        seg = seg.mean(axis=1)
        if file_sr != sr and len(seg):
            seg = soxr.resample(seg, file_sr, sr)
        if len(seg) == 0:
            return np.zeros(n, dtype=np.float32)
        if len(seg) < n:  # a short file: loop it
            seg = np.tile(seg, n // len(seg) + 1)
        return seg[:n]

    def __call__(self, wave, sr, rng):
        path = self._files[int(rng.integers(len(self._files)))]
        try:
            noise = self._segment(path, len(wave), sr, rng)
        except Exception as exc:
            raise EmofuseError(f"augment env_noise: cannot read noise file {path} ({type(exc).__name__}); "
                               "remove or replace it in augment.noise_dir") from None
        return _mix_at_snr(wave, noise, float(rng.uniform(*self.snr_db)))


def simulated_rir(sr: int, rt60: float, room: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: image-source early reflections (pyroomacoustics, low order) plus an
    exponentially decaying noise tail with the given RT60, energy-matched at the junction."""
    import pyroomacoustics as pra

    dims = np.asarray(room, dtype=float)
    e_abs, _ = pra.inverse_sabine(rt60, dims)
    shoebox = pra.ShoeBox(dims, fs=sr, materials=pra.Material(float(np.clip(e_abs, 0.01, 0.99))), max_order=6)
    margin = 0.5
    src = rng.uniform(margin, dims - margin)
    mic = rng.uniform(margin, dims - margin)
    shoebox.add_source(src)
    shoebox.add_microphone(mic)
    shoebox.compute_rir()
    early = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    n = int(rt60 * 1.2 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # -60 dB at t = rt60
    t0 = int(np.argmax(np.abs(early)))
    mix = t0 + int(0.05 * sr)  # early part: 50 ms after the direct sound
    out = np.zeros(max(n, len(early)))
    out[: len(early)] = early
    w = int(0.01 * sr)
    if mix + w < n:  # add the diffuse tail after the mixing time, at the early part's level there
        ref = np.sqrt(np.mean(early[max(0, mix - w): mix] ** 2) + 1e-12) if mix <= len(early) else 1e-3
        out[mix:n] += tail[mix:n] * ref / (np.sqrt(np.mean(tail[mix: mix + w] ** 2)) + 1e-12)
    return (out / (np.abs(out).max() + 1e-12)).astype(np.float32)


@register_effect
class Reverb(Effect):
    """Room reverberation: convolution with a simulated room (random size and RT60) or with a
    measured impulse response from ``ir_dir``. Output keeps the input length and loudness."""

    name = "reverb"

    def __init__(self, rt60=(0.2, 0.8), room=((3.0, 2.5, 2.4), (10.0, 8.0, 4.0)), ir_dir: str | None = None,
                 bank: int = 32, p: float = 1.0) -> None:
        super().__init__(p)
        self.rt60 = _range(self.name, "rt60", rt60, 0.05, 3.0)
        lo, hi = (np.asarray(r, dtype=float) for r in room)
        if lo.shape != (3,) or hi.shape != (3,) or (lo > hi).any() or (lo < 1.5).any():
            raise EmofuseError(f"augment reverb: room must be [[min x, y, z], [max x, y, z]] in metres (each >= 1.5), not {room!r}")
        self.room = (tuple(lo.tolist()), tuple(hi.tolist()))
        self.ir_dir, self.bank = ir_dir, int(bank)
        self._irs: list[np.ndarray] | None = None
        if ir_dir and not list_audio(Path(ir_dir)):
            raise EmofuseError(f"augment reverb: no impulse responses (.wav/.flac) in ir_dir={ir_dir}")

    def _bank(self, sr: int) -> list[np.ndarray]:
        if self._irs is None:
            if self.ir_dir:
                from ..audio import read_audio
                self._irs = [read_audio(p, sr) for p in list_audio(Path(self.ir_dir))]
            else:  # a fixed, seeded bank of simulated rooms: the same for every run with these settings
                rng = np.random.default_rng(12345)
                lo, hi = np.asarray(self.room[0]), np.asarray(self.room[1])
                self._irs = [simulated_rir(sr, float(rng.uniform(*self.rt60)), tuple(rng.uniform(lo, hi)), rng)
                             for _ in range(self.bank)]
        return self._irs

    def __call__(self, wave, sr, rng):
        from scipy.signal import fftconvolve

        irs = self._bank(sr)
        ir = irs[int(rng.integers(len(irs)))]
        wet = fftconvolve(wave.astype(np.float64), ir)[: len(wave)]
        rms_in, rms_out = np.sqrt(np.mean(wave ** 2) + 1e-12), np.sqrt(np.mean(wet ** 2) + 1e-12)
        return (wet * rms_in / rms_out).astype(np.float32)


def build_effect(spec: dict, defaults: dict | None = None) -> Effect:
    """``{"name": "pitch_shift", "p": 0.8, "semitones": [-3, 3]}`` -> an Effect (clear error otherwise)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise EmofuseError(f"augment: each entry must be a mapping with a 'name', not {spec!r}")
    name = spec["name"]
    if name not in EFFECTS:
        raise EmofuseError(f"augment: unknown waveform effect {name!r}; known: {sorted(EFFECTS)} and specaugment")
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    for k, v in (defaults or {}).items():
        if k in EFFECTS[name].__init__.__code__.co_varnames:
            kwargs.setdefault(k, v)
    try:
        return EFFECTS[name](**kwargs)
    except TypeError as exc:
        raise EmofuseError(f"augment {name}: bad parameters {sorted(kwargs)} ({exc})") from None
