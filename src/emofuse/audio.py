"""Audio decoding: any libsndfile format, any rate, mono or stereo -> 16 kHz mono float32.

Two ways to read a file, with the same samples: ``read_audio`` decodes it whole (clips of a
corpus), ``stream_audio`` yields it in blocks of at most ``BLOCK_FRAMES`` input frames, so
that an hour-long file costs one block of memory instead of gigabytes (soxr's streaming
resampler gives the one-shot resampler's output bit for bit). ``check_audio`` scans a file in
blocks for ``prepare``.

FLAC files decode whole with dr_flac (through ``miniaudio``): the same samples as libsndfile, bit
for bit, in about half the time (measured on the 1,440 RAVDESS files; decoding was the largest
part of the front end's time). A FLAC file dr_flac cannot read in full (corrupt, truncated:
fewer frames than its header announces) goes to libsndfile, which names the problem.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import miniaudio
import numpy as np
import soundfile as sf
import soxr

from .errors import EmofuseError

TARGET_SR = 16000
# The audio files emofuse reads, everywhere (corpus parsers, predict on a folder, noise and
# impulse-response banks): what libsndfile decodes. In order of preference where one utterance
# exists in several forms.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
BLOCK_FRAMES = 1 << 16  # input frames per block when streaming (1.5 s at 44.1 kHz: 0.5 MB of stereo float32)


@dataclass(frozen=True)
class AudioCheck:
    """What ``check_audio`` found: the reason a clip is unusable, or None if it is fine."""

    problem: str | None
    duration: float = 0.0
    sample_rate: int = 0
    channels: int = 0


# Reasons a clip is skipped; prepare counts them under these names.
MISSING, UNREADABLE, EMPTY, SILENT, TOO_SHORT, NON_FINITE, TRUNCATED = (
    "missing audio", "unreadable audio", "empty audio", "silent audio", "too short", "non-finite samples",
    "truncated audio",
)


def read_audio(path: str | Path, target_sr: int = TARGET_SR) -> np.ndarray:
    """Decode a file whole, downmix to mono and resample (soxr, high quality).

    Returns:
        (N,) float32 waveform at ``target_sr``.

    Raises:
        EmofuseError: the file is missing, empty or cannot be decoded.
    """
    return read_audio_unless_longer(path, float("inf"), target_sr)


def read_audio_unless_longer(path: str | Path, longest: float, target_sr: int = TARGET_SR) -> np.ndarray | None:
    """``read_audio``, or None without decoding anything when the header says the file lasts
    longer than ``longest`` seconds, or does not say how long it is (stream those with
    ``stream_audio``). The header is read anyway to decode, so the question costs nothing."""
    path = _existing(path)
    if path.suffix.lower() == ".flac":
        decoded = _read_flac(path, longest)
        if decoded is _LONG:
            return None
        if decoded is not None:
            return to_mono_16k(*decoded, target_sr)
    with _open(path) as f:
        if not f.frames <= longest * f.samplerate:
            return None
        try:
            data = f.read(dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile raises several types for corrupt data
            raise _decode_error(path, exc) from None
        return to_mono_16k(data, f.samplerate, target_sr)


def stream_audio(path: str | Path, target_sr: int = TARGET_SR, block_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode a file in blocks: downmixed, resampled (soxr's streaming resampler) 1-D float32
    blocks whose concatenation is ``read_audio(path, target_sr)``; memory stays one block.

    Raises:
        EmofuseError: the file is missing, empty or cannot be decoded (also part-way through).
    """
    path = _existing(path)
    block_frames = block_frames or BLOCK_FRAMES
    with _open(path) as f:
        sr = f.samplerate
        stream = soxr.ResampleStream(sr, target_sr, 1, dtype="float32", quality="HQ") if sr != target_sr else None
        while True:
            try:
                data = f.read(block_frames, dtype="float32", always_2d=True)
            except Exception as exc:
                raise _decode_error(path, exc) from None
            last = len(data) < block_frames
            wav = _downmix(data)
            if stream is not None:
                wav = stream.resample_chunk(wav, last=last)
            if wav.size:
                yield wav
            if last:
                return


def audio_seconds(path: str | Path) -> float:
    """A file's duration from its header (inf when the header does not say), without decoding."""
    path = _existing(path)
    if path.suffix.lower() == ".flac":
        try:
            info = miniaudio.flac_get_file_info(str(path))
            if info.num_frames > 0:
                return info.num_frames / info.sample_rate
        except miniaudio.MiniaudioError:
            pass
    with _open(path) as f:
        return f.frames / f.samplerate if f.frames < 2**62 else float("inf")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise EmofuseError(f"{path}: audio file not found; check the path or re-run 'emofuse prepare'")
    return path


def _open(path: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except Exception as exc:
        raise _decode_error(path, exc) from None


def _decode_error(path: Path, exc: Exception) -> EmofuseError:
    if _holds_no_audio(path):
        return EmofuseError(f"{path}: empty file, no audio in it; re-export it or remove it")
    return EmofuseError(f"{path}: cannot decode audio ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
                        "re-export it as WAV/FLAC or remove it")


_LONG = object()  # what _read_flac says for a file longer than asked for


def _read_flac(path: Path, longest: float = float("inf")) -> tuple[np.ndarray, int] | None | object:
    """(N, C) float32 samples and the rate from dr_flac; ``_LONG`` for a file longer than
    ``longest`` seconds (not decoded); None when dr_flac cannot read the whole file (corrupt;
    truncated, i.e. fewer frames than STREAMINFO announces; a header that does not say how many
    frames there are), in which case libsndfile decides."""
    try:
        info = miniaudio.flac_get_file_info(str(path))
        expected = info.num_frames
        if expected <= 0:
            return None
        if expected > longest * info.sample_rate:
            return _LONG
        clip = miniaudio.flac_read_file_f32(str(path))
    except miniaudio.MiniaudioError:
        return None
    if clip.num_frames != expected:
        return None
    return np.frombuffer(clip.samples, dtype=np.float32).reshape(-1, clip.nchannels), clip.sample_rate


def _downmix(data: np.ndarray) -> np.ndarray:
    """(N, C) or (N,) samples -> (N,) contiguous float32 mono (the channels' mean)."""
    if data.ndim == 2:
        wav = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    else:
        wav = data
    return np.ascontiguousarray(wav, dtype=np.float32)


def to_mono_16k(data: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """(N, C) or (N,) samples at ``sr`` -> (M,) float32 mono at ``target_sr``."""
    wav = _downmix(data)
    if sr != target_sr and wav.size:
        wav = soxr.resample(wav, sr, target_sr, quality="HQ").astype(np.float32, copy=False)
    return wav


HASH_CHUNK = 1 << 20  # bytes read at a time to hash a file


def file_sha1(path: str | Path) -> str:
    """The SHA-1 of a file's bytes, read in chunks: the manifest's ``audio_sha1``."""
    h = hashlib.sha1()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_audio(path: str | Path, silence_peak: float = 1e-4) -> AudioCheck:
    """Scan a file in blocks and say whether it is usable (duration limits are the caller's).

    A clip is unusable when it does not decode to its end, holds no samples (a zero-byte or
    header-only file too), holds fewer frames than its header announces (truncated: an
    interrupted copy), holds NaN/inf, or peaks below ``silence_peak`` (digital silence).
    Memory stays one block (``BLOCK_FRAMES``) whatever the length.
    """
    path = Path(path)
    try:
        f = sf.SoundFile(str(path))
    except Exception:
        return AudioCheck(EMPTY if _holds_no_audio(path) else UNREADABLE)
    with f:
        sr, channels = f.samplerate, f.channels
        frames, peak, finite = 0, 0.0, True
        while True:
            try:
                data = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            except Exception:
                return AudioCheck(EMPTY, 0.0, sr, channels) if _holds_no_audio(path) else AudioCheck(UNREADABLE)
            frames += len(data)
            if len(data):
                finite = finite and bool(np.isfinite(data).all())
                if finite:
                    peak = max(peak, float(np.abs(data).max()))
            if len(data) < BLOCK_FRAMES:
                break
        announced = max(f.frames if f.frames < 2**62 else 0, _wav_frames_announced(path, f))
    if frames == 0:
        return AudioCheck(EMPTY, 0.0, sr, channels)
    duration = frames / sr
    if frames < announced:
        return AudioCheck(TRUNCATED, duration, sr, channels)
    if not finite:
        return AudioCheck(NON_FINITE, duration, sr, channels)
    if peak < silence_peak:
        return AudioCheck(SILENT, duration, sr, channels)
    return AudioCheck(None, duration, sr, channels)


def _holds_no_audio(path: Path) -> bool:
    """A zero-byte file, or a FLAC file that ends with its metadata (no audio frame)."""
    try:
        size = path.stat().st_size
        if size == 0:
            return True
        with path.open("rb") as fh:
            if fh.read(4) != b"fLaC":
                return False
            while True:
                head = fh.read(4)
                if len(head) < 4:
                    return False  # cut inside the metadata: unreadable rather than empty
                fh.seek(int.from_bytes(head[1:], "big"), os.SEEK_CUR)
                if head[0] & 0x80:  # the last metadata block
                    return fh.tell() >= size
    except OSError:
        return False


def _wav_frames_announced(path: Path, f: sf.SoundFile) -> int:
    """Frames the ``data`` chunk of a RIFF/WAVE file announces (0 when not a plain WAV file or
    when the writer left the length open: 0 or 0xFFFFFFFF). libsndfile reads what is there and
    reports that many frames, so only the header shows that a WAV file was cut short."""
    if f.format not in ("WAV", "WAVEX"):
        return 0
    block_align = f.channels * {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
                                "FLOAT": 4, "DOUBLE": 8}.get(f.subtype, 0)
    if not block_align:
        return 0
    try:
        with path.open("rb") as fh:
            if fh.read(12)[8:12] != b"WAVE":
                return 0
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    return 0
                size = int.from_bytes(head[4:], "little")
                if head[:4] == b"data":
                    return 0 if size in (0, 0xFFFFFFFF) else size // block_align
                fh.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    except OSError:
        return 0
