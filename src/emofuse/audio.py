"""Audio decoding: any libsndfile format, any rate, mono or stereo -> 16 kHz mono float32.

FLAC files decode with dr_flac (through ``miniaudio``): the same samples as libsndfile, bit for
bit, in about half the time (measured on the 1,440 RAVDESS files; decoding was the largest
part of the front end's time). A FLAC file dr_flac cannot read in full (corrupt, truncated:
fewer frames than its header announces) goes to libsndfile, which names the problem.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import miniaudio
import numpy as np
import soundfile as sf
import soxr

from .errors import EmofuseError

TARGET_SR = 16000


@dataclass(frozen=True)
class AudioCheck:
    """What ``inspect_audio`` found: the reason a clip is unusable, or None if it is fine."""

    problem: str | None
    duration: float = 0.0
    sample_rate: int = 0
    channels: int = 0


# Reasons a clip is skipped; prepare counts them under these names.
MISSING, UNREADABLE, EMPTY, SILENT, TOO_SHORT, NON_FINITE = (
    "missing audio", "unreadable audio", "empty audio", "silent audio", "too short", "non-finite samples",
)


def read_audio(path: str | Path, target_sr: int = TARGET_SR) -> np.ndarray:
    """Decode a file, downmix to mono and resample (soxr, high quality).

    Returns:
        (N,) float32 waveform at ``target_sr``.

    Raises:
        EmofuseError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise EmofuseError(f"{path}: audio file not found; check the path or re-run 'emofuse prepare'")
    decoded = _read_flac(path) if path.suffix.lower() == ".flac" else None
    if decoded is not None:
        data, sr = decoded
    else:
        try:
            with sf.SoundFile(str(path)) as f:
                sr = f.samplerate
                data = f.read(dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile raises several types for corrupt data
            raise EmofuseError(f"{path}: cannot decode audio ({exc}); re-export it as WAV/FLAC or remove it") from None
    return to_mono_16k(data, sr, target_sr)


def _read_flac(path: Path) -> tuple[np.ndarray, int] | None:
    """(N, C) float32 samples and the rate from dr_flac, or None when it cannot read the whole
    file (corrupt; truncated, i.e. fewer frames than STREAMINFO announces; a header that does not
    say how many frames there are), in which case libsndfile decides."""
    try:
        expected = miniaudio.flac_get_file_info(str(path)).num_frames
        if expected <= 0:
            return None
        clip = miniaudio.flac_read_file_f32(str(path))
    except miniaudio.MiniaudioError:
        return None
    if clip.num_frames != expected:
        return None
    return np.frombuffer(clip.samples, dtype=np.float32).reshape(-1, clip.nchannels), clip.sample_rate


def to_mono_16k(data: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """(N, C) or (N,) samples at ``sr`` -> (M,) float32 mono at ``target_sr``."""
    if data.ndim == 2:
        wav = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    else:
        wav = data
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    if sr != target_sr and wav.size:
        wav = soxr.resample(wav, sr, target_sr, quality="HQ").astype(np.float32, copy=False)
    return wav


def inspect_audio_bytes(blob: bytes, silence_peak: float = 1e-4) -> AudioCheck:
    """Decode an encoded clip and say whether it is usable (duration limits are the caller's).

    A clip is unusable when it does not decode, has no samples, holds NaN/inf, or peaks below
    ``silence_peak`` (digital silence).
    """
    try:
        data, sr = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    except Exception:
        return AudioCheck(UNREADABLE)
    channels = data.shape[1]
    if data.shape[0] == 0:
        return AudioCheck(EMPTY, 0.0, sr, channels)
    duration = data.shape[0] / sr
    if not np.isfinite(data).all():
        return AudioCheck(NON_FINITE, duration, sr, channels)
    if float(np.abs(data).max()) < silence_peak:
        return AudioCheck(SILENT, duration, sr, channels)
    return AudioCheck(None, duration, sr, channels)
