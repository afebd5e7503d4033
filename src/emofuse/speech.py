"""Is there speech in a clip? A simple check, so ``predict`` flags a tone, hum or noise instead
of naming its emotion; and the content hash that says a file is one of a run's own clips.

The check works on 32 ms frames (10 ms hop) of the 16 kHz clip, in the speech band 60-4000 Hz:

1. active frames: band level within 35 dB of the clip's loudest frame;
2. a frame is *voiced* when its band spectrum is tonal (spectral flatness below 0.3: white
   noise has ~0.56, voiced speech ~0.01-0.2) and *not one partial*: the strongest peak
   (+-2 bins) holds less than 80 % of the band's power (a pure tone holds ~100 %, a voice's
   harmonics share it);
3. the level moves: the standard deviation of the frames' band level is at least 3 dB
   (syllables, pauses; a steady tone, hum or buzz stays within a fraction of a dB).

A clip is speech when at least 15 % of its active frames are voiced and its level moves.

Limits: this is a sanity check against input that is plainly not speech (pure tones, hum,
steady buzzes, white or pink noise), not a voice activity detector. Music, singing and a
harmonic sound with a moving level pass as speech; whispered speech (no voicing) and speech
buried in loud noise (flat spectra) are flagged as not speech. Silence never reaches it:
``predict`` refuses a silent clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME, HOP = 512, 160  # samples at 16 kHz: 32 ms frames, 10 ms hop
BAND = (60.0, 4000.0)  # Hz
ACTIVE_DB = 35.0
FLATNESS_MAX = 0.3
ONE_PARTIAL = 0.8
VOICED_MIN = 0.15
LEVEL_STD_MIN = 3.0
@dataclass(frozen=True)
class SpeechCheck:
    """The verdict, the reason when there is no speech, and the two measures it rests on."""

    speech: bool
    reason: str
    voiced_fraction: float
    level_std_db: float


class SpeechMeter:
    """Accumulates per-frame measures over a clip that arrives window by window (``add``), then
    gives the verdict (``result``). Shapes: each window is (n,) float32 at ``sample_rate``."""

    def __init__(self, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        freqs = np.fft.rfftfreq(FRAME, 1 / sample_rate)
        self.band = (freqs >= BAND[0]) & (freqs <= BAND[1])
        self.window = np.hanning(FRAME).astype(np.float32)
        self.levels: list[np.ndarray] = []
        self.voiced: list[np.ndarray] = []

    def add(self, wave: np.ndarray) -> None:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.size < FRAME:
            wave = np.pad(wave, (0, FRAME - wave.size))
        frames = np.lib.stride_tricks.sliding_window_view(wave, FRAME)[::HOP]  # (T, FRAME)
        power = np.abs(np.fft.rfft(frames * self.window, axis=1)[:, self.band]) ** 2 + 1e-12  # (T, bins)
        total = power.sum(1)
        flatness = np.exp(np.log(power).mean(1)) / power.mean(1)
        peak = power.argmax(1)
        idx = np.arange(power.shape[1])
        near = np.abs(idx[None, :] - peak[:, None]) <= 2
        one_partial = (power * near).sum(1) / total >= ONE_PARTIAL
        self.levels.append(10 * np.log10(total))
        self.voiced.append((flatness < FLATNESS_MAX) & ~one_partial)

    def result(self) -> SpeechCheck:
        if not self.levels:
            return SpeechCheck(False, "no audio", 0.0, 0.0)
        level, voiced = np.concatenate(self.levels), np.concatenate(self.voiced)
        active = level >= level.max() - ACTIVE_DB
        fraction = float(voiced[active].mean())
        spread = float(level[active].std())
        if fraction < VOICED_MIN:
            why = f"{fraction:.0%} of frames voiced: noise or a single tone"
        elif spread < LEVEL_STD_MIN:
            why = f"steady level (std {spread:.1f} dB): a tone, hum or buzz"
        else:
            why = ""
        return SpeechCheck(not why, why, round(fraction, 3), round(spread, 2))


def speech_check(wave: np.ndarray, sample_rate: int = 16000) -> SpeechCheck:
    """The check on a whole (N,) clip at ``sample_rate`` (16 kHz: the rate its bands assume)."""
    meter = SpeechMeter(sample_rate)
    meter.add(wave)
    return meter.result()
