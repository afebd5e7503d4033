"""Content fingerprints: find the same recording under another name, encoding, rate, gain or trim.

The fold audit's ``audio_sha1`` catches byte-identical copies only. A take re-encoded (FLAC, MP3,
Ogg Vorbis, AAC from a video file), resampled, made louder or softer, or trimmed by a few tens of
milliseconds has other bytes but the same content; across train and test it leaks just the same.

The fingerprint follows Haitsma & Kalker (2002, "A highly robust audio fingerprinting system"),
tuned for speech:

- 64 ms Hann frames every 5 ms on the 16 kHz mono signal; the energy in 33 log-spaced bands from
  300 to 4000 Hz (where speech has its formants and every codec keeps its bits).
- One 32-bit sub-fingerprint per frame: bit m is the sign of
  ``(L[n, m] - L[n, m+1]) - (L[n-1, m] - L[n-1, m+1])`` on log band energies ``L``: how the spectral
  slope between two neighbouring bands changes from one frame to the next. A gain change adds
  the same constant to every ``L`` and cancels; resampling and lossy coding move energies a
  little and flip few signs. The long frame with a short hop keeps a trim that is not a whole
  number of hops (at most 2.5 ms off) from flipping many bits.
- A per-frame level (dB below the clip's loud frames): frames more than ``ACTIVE_DB`` below are
  pauses and noise floor, whose bits are coin flips under coding, so comparisons skip them.
- A fixed-length summary (gain-normalised mean and spread of each band's log energy over the
  active frames) through which ``find_near_duplicates`` proposes candidate pairs without
  comparing all of them.

Two fingerprints match by their bit error rate (BER): the fraction of differing bits over the
active frames both share, at the best time shift within ``MAX_SHIFT_SECONDS``. Copies sit far
below ``THRESHOLD`` and other recordings, even another take of the same sentence by the same
speaker, far above it (figures in ``THRESHOLD``'s comment).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import scipy.fft

from .atomic import replacing
from .errors import EmofuseError

SAMPLE_RATE = 16000
N_FFT = 1024                 # 64 ms frames
HOP = 80                     # 5 ms hop: a trim is matched to within 2.5 ms
N_BANDS = 33                 # 33 bands -> 32 bits per frame
F_LO, F_HI = 300.0, 4000.0   # Hz
ACTIVE_DB = 35.0             # frames this far below the clip's 95th-percentile level are inactive
SILENCE_DB = -70.0           # and frames whose band energy (full scale ~ +48 dB) is below this
HOP_SECONDS = HOP / SAMPLE_RATE
BITS = N_BANDS - 1
SUMMARY_DIM = 2 * N_BANDS

MAX_SHIFT_SECONDS = 0.25     # a copy may be trimmed (or padded) by up to this much at its start
MAX_SHIFT_FRAMES = int(round(MAX_SHIFT_SECONDS / HOP_SECONDS))
MIN_OVERLAP_FRAMES = 100     # 0.5 s of active audio in common, else no verdict (BER 1.0)
# Decision threshold on the BER, from measurements (worst case of each kind):
# - copies, RAVDESS (40 clips): FLAC / 44.1 kHz stereo WAV / +-3 dB / whole-hop trims <= 0.01,
#   MP3 (libsndfile's default, ~24-40 kb/s) 0.14, Ogg Vorbis 0.17, Ogg Vorbis after a 62.5 ms trim
#   (no whole number of hops: the worst alignment) 0.19; synthetic speech (tests): Ogg Vorbis 0.22.
# - other takes of the same sentence by the same actor, RAVDESS, every candidate pair the search
#   proposes: lowest 0.356 (Actor 23, a very consistent speaker), next 0.388, typical 0.46-0.48;
#   synthetic takes (tests) >= 0.389; unrelated speech ~0.5.
# 0.30 lies in the gap (Haitsma & Kalker used 0.35). Not caught: MP3 at ~13 kb/s, which cuts at
# 4 kHz and flips 30-40 % of the bits, as many as another take.
THRESHOLD = 0.30

_FORMAT = b"EFFP"            # to_bytes: magic, version, then the arrays
_VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    """A clip's fingerprint (the whole of it is what ``to_bytes`` stores).

    Attributes:
        words: (F,) uint32, one 32-bit sub-fingerprint per 5 ms frame.
        level: (F,) int8, each frame's level in dB relative to the clip's 95th-percentile frame
            level (clipped to -128..127); frames at or below ``-ACTIVE_DB`` are inactive.
        summary: (SUMMARY_DIM,) float32, gain-normalised mean and std of the band log energies
            over the active frames; for candidate search only.
    """

    words: np.ndarray
    level: np.ndarray
    summary: np.ndarray

    @property
    def active(self) -> np.ndarray:
        """(F,) bool: frames that take part in comparisons."""
        return self.level > -ACTIVE_DB

    @property
    def n_frames(self) -> int:
        return int(self.words.shape[0])

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Fingerprint) and np.array_equal(self.words, other.words)
                and np.array_equal(self.level, other.level) and np.array_equal(self.summary, other.summary))

    __hash__ = None  # type: ignore[assignment]


def _band_edges(sr: int) -> np.ndarray:
    """(N_BANDS + 1,) FFT bin indices of the band edges; each band at least one bin wide."""
    edges = np.round(np.geomspace(F_LO, F_HI, N_BANDS + 1) / sr * N_FFT).astype(np.int64)
    for i in range(1, edges.size):  # the low bands are narrower than a bin at 64 ms
        edges[i] = max(edges[i], edges[i - 1] + 1)
    return edges


_WINDOW = np.hanning(N_FFT).astype(np.float32)
_EDGES = _band_edges(SAMPLE_RATE)
_STARTS = _EDGES[:-1] - _EDGES[0]   # band starts within the bins _EDGES[0]:_EDGES[-1]


def band_energies(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Energies in the fingerprint's bands.

    Args:
        wave: (N,) float mono waveform at ``sample_rate`` (16 kHz; ``emofuse.audio.read_audio``).

    Returns:
        (T, N_BANDS) float32, T = 1 + (max(N, N_FFT) - N_FFT) // HOP.
    """
    if sample_rate != SAMPLE_RATE:
        raise EmofuseError(f"fingerprint: sample rate {sample_rate} Hz; decode with emofuse.audio.read_audio "
                           f"(which resamples to {SAMPLE_RATE} Hz) first")
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise EmofuseError(f"fingerprint: waveform of shape {x.shape}; pass a mono (N,) signal "
                           "(emofuse.audio.read_audio downmixes)")
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]            # (T, N_FFT)
    out = np.empty((frames.shape[0], N_BANDS), dtype=np.float32)
    for start in range(0, frames.shape[0], 2048):                                  # bounded memory
        spec = scipy.fft.rfft(frames[start:start + 2048] * _WINDOW, axis=1)[:, _EDGES[0]:_EDGES[-1]]
        power = spec.real ** 2 + spec.imag ** 2                                    # (t, bins) float32
        out[start:start + 2048] = np.add.reduceat(power, _STARTS, axis=1)  # (not BLAS: no thread pool)
    return out


def fingerprint(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Fingerprint:
    """The fingerprint of a decoded clip.

    Args:
        wave: (N,) float32 mono waveform at 16 kHz (``emofuse.audio.read_audio``'s output).
        sample_rate: must be 16000; anything else is an ``EmofuseError`` (resample first).

    Returns:
        A ``Fingerprint`` with F = T - 1 frames (T: ``band_energies``' frames); about 200
        frames (800 bytes of words) per second of audio.
    """
    energy = band_energies(wave, sample_rate)                                        # (T, B)
    logE = np.log(energy.astype(np.float64) + 1e-10)
    slope = logE[:, :-1] - logE[:, 1:]                                               # (T, B-1)
    bits = (slope[1:] - slope[:-1]) > 0                                              # (F, 32)
    words = (bits.astype(np.uint32) << np.arange(BITS, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    frame_db = 10.0 * np.log10(energy.sum(axis=1) + 1e-10)                           # (T,)
    rel = frame_db - np.percentile(frame_db, 95)
    rel[frame_db < SILENCE_DB] = -128.0                  # below 16-bit quantisation noise: never active
    rel = np.minimum(rel[1:], rel[:-1])                  # a word is as reliable as its quieter frame
    level = np.clip(np.round(rel), -128, 127).astype(np.int8)                       # (F,)
    active = level > -ACTIVE_DB
    act_frames = logE[1:][active]
    if act_frames.shape[0]:
        mean = act_frames.mean(axis=0)
        summary = np.concatenate([mean - mean.mean(), act_frames.std(axis=0)])
    else:
        summary = np.zeros(SUMMARY_DIM)
    return Fingerprint(words.astype(np.uint32), level, summary.astype(np.float32))


# Population count of uint32 words: numpy >= 2 has a ufunc; else a 16-bit lookup table.
if hasattr(np, "bitwise_count"):
    def _popcount(x: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x)
else:  # pragma: no cover - numpy 1.26
    _POP16 = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.uint8)

    def _popcount(x: np.ndarray) -> np.ndarray:
        return _POP16[x & 0xFFFF] + _POP16[x >> 16]


def bit_error_rate(a: Fingerprint, b: Fingerprint, max_shift_frames: int = MAX_SHIFT_FRAMES,
                   min_overlap_frames: int = MIN_OVERLAP_FRAMES) -> tuple[float, int]:
    """The lowest bit error rate of ``b`` against ``a`` over time shifts, on shared active frames.

    Every shift ``s`` in ``[-max_shift_frames, max_shift_frames]`` is tried: ``b``'s frame ``j``
    against ``a``'s frame ``j + s`` (s > 0: ``b`` starts ``s`` hops into ``a``, e.g. ``b`` is ``a``
    with ``s * 5`` ms cut from its start). Only frames active in both count, and a shift counts
    only where at least ``min_overlap_frames`` of them overlap.

    Returns:
        (ber, shift): ber in [0, 1] (0: the same bits; ~0.5: unrelated), and the shift in frames
        (``HOP_SECONDS`` each). (1.0, 0) when no shift has enough overlap: no verdict.
    """
    if max_shift_frames < 0:
        raise ValueError(f"max_shift_frames must be >= 0, got {max_shift_frames}")
    S = int(max_shift_frames)
    fa, fb = a.n_frames, b.n_frames
    if fa == 0 or fb == 0:
        return 1.0, 0
    length = max(fa, fb) + 2 * S
    wa = np.zeros(length, dtype=np.uint32)           # a, with S inactive frames on the left
    ma = np.zeros(length, dtype=bool)
    wa[S:S + fa] = a.words
    ma[S:S + fa] = a.active
    # row r, column j: a's frame j + s for the shift s = r - S, against b's frame j
    win_w = np.lib.stride_tricks.sliding_window_view(wa, fb)[: 2 * S + 1]              # (2S+1, fb)
    win_m = np.lib.stride_tricks.sliding_window_view(ma, fb)[: 2 * S + 1]
    both = win_m & b.active                                                             # (2S+1, fb)
    overlap = both.sum(axis=1)                                                          # (2S+1,)
    errors = (_popcount(win_w ^ b.words) * both).sum(axis=1, dtype=np.int64)            # (2S+1,)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(overlap >= max(1, int(min_overlap_frames)), errors / (BITS * overlap), np.inf)
    r = int(np.argmin(rate))
    if not np.isfinite(rate[r]):
        return 1.0, 0
    return float(rate[r]), r - S


Item = tuple[str, Fingerprint, float]


def _coarse_rates(a: Fingerprint, others: list[tuple[np.ndarray, np.ndarray]], max_shift: int,
                  need: int) -> np.ndarray:
    """A cheap, lower-resolution ``bit_error_rate`` of several clips against ``a``, in one batch.

    Args:
        others: per clip, (positions, words): a sample of its active frames (every 8th, say)
            and their words; all shifts are kept (a copy's minimum is a frame or two wide).
        need: how many sampled frames must overlap active frames of ``a`` at a shift.

    Returns:
        (len(others),) float64: the lowest rate over shifts, inf where no shift had enough overlap.
    """
    S = max_shift
    wa = np.zeros(a.n_frames + 3 * S, dtype=np.uint32)     # a, S inactive frames before, 2S after
    ma = np.zeros(a.n_frames + 3 * S, dtype=bool)
    wa[S:S + a.n_frames] = a.words
    ma[S:S + a.n_frames] = a.active
    rates = np.full(len(others), np.inf)
    pos, words, sizes = [], [], []
    for j, w in others:
        keep = j < a.n_frames + S                            # frames that can meet a at some shift
        pos.append(j[keep])
        words.append(w[keep])
        sizes.append(int(keep.sum()))
    sizes_arr = np.array(sizes)
    present = np.flatnonzero(sizes_arr)
    if present.size == 0:
        return rates
    pos_all, words_all = np.concatenate(pos), np.concatenate(words)
    # row j of the window views: a's frames j - S .. j + S (the padded j .. j + 2S)
    rows = wa.size - 2 * S
    win_w = np.lib.stride_tricks.as_strided(wa, (rows, 2 * S + 1), (4, 4), writeable=False)[pos_all]   # (m, 2S+1)
    both = np.lib.stride_tricks.as_strided(ma, (rows, 2 * S + 1), (1, 1), writeable=False)[pos_all]
    # errors in the low 32 bits, overlap in the high ones: one segmented sum for both
    packed = (_popcount(win_w ^ words_all[:, None]) * both).astype(np.int64) | (both.astype(np.int64) << 32)
    starts = np.r_[0, np.cumsum(sizes_arr[present])[:-1]]
    sums = np.add.reduceat(packed, starts, axis=0)                                      # (present, 2S+1)
    errors, overlap = sums & 0xFFFFFFFF, sums >> 32
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(overlap >= need, errors / (BITS * overlap), np.inf)
    rates[present] = r.min(axis=1)
    return rates


def _candidate_pairs(summaries: np.ndarray, durations: np.ndarray, window: float, neighbours: int,
                     block: int = 256) -> np.ndarray:
    """Pairs (i, j), i < j, where j is among i's ``neighbours`` nearest by summary (or i among j's)
    of the items whose duration is within ``window`` seconds.

    Args:
        summaries: (n, D) float32; durations: (n,) seconds.

    Returns:
        (P, 2) int64, unique rows. Cost: n times the number of items in a duration window,
        times D, in blocks of ``block`` items (a dense distance matrix per block).
    """
    n = summaries.shape[0]
    if n < 2 or neighbours < 1:
        return np.zeros((0, 2), dtype=np.int64)
    mu, sd = summaries.mean(axis=0), summaries.std(axis=0)
    z = (summaries - mu) / np.where(sd > 1e-6, sd, 1.0)          # each dimension on one scale
    order = np.argsort(durations, kind="stable")
    zs, ds = z[order].astype(np.float64), durations[order]
    sq = (zs ** 2).sum(axis=1)
    found = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        lo = int(np.searchsorted(ds, ds[start] - window, side="left"))
        hi = int(np.searchsorted(ds, ds[stop - 1] + window, side="right"))
        d2 = sq[start:stop, None] + sq[None, lo:hi] - 2.0 * np.einsum("id,jd->ij", zs[start:stop], zs[lo:hi])
        far = np.abs(ds[start:stop, None] - ds[None, lo:hi]) > window
        far[np.arange(stop - start), np.arange(start, stop) - lo] = True      # not itself
        d2[far] = np.inf
        k = min(neighbours, hi - lo - 1)
        if k < 1:
            continue
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]                     # (rows, k)
        rows = np.repeat(np.arange(start, stop), k)
        cols = nearest.ravel() + lo
        keep = np.isfinite(d2[rows - start, cols - lo])
        found.append(np.stack([order[rows[keep]], order[cols[keep]]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


def find_near_duplicates(items: list[Item], threshold: float = THRESHOLD,
                         max_shift_seconds: float = MAX_SHIFT_SECONDS, neighbours: int = 8,
                         min_overlap_frames: int = MIN_OVERLAP_FRAMES) -> list[tuple[str, str, float]]:
    """Pairs of clips that hold the same recording (copies re-encoded, resampled, gain-changed,
    trimmed by up to ``max_shift_seconds`` at the start).

    1. Candidates: for each clip, the ``neighbours`` nearest by summary vector (standardised
       over the corpus) among the clips whose duration differs by at most
       ``2 * max_shift_seconds + 0.1`` s. A copy's summary is nearly its original's: on RAVDESS
       the copy was the nearest of all 1,440 clips for every codec tried, so 8 leaves room.
    2. Verification: the bit error rate over every shift, first on every 8th active frame, all
       candidates of a clip in one batch (a pair clearly above ``threshold`` stops there), then
       on every frame (``bit_error_rate``).

    Args:
        items: (id, fingerprint, duration in seconds) per clip; ids unique.
        threshold: report pairs with BER <= threshold (see ``THRESHOLD`` for the measurements).

    Returns:
        (id_a, id_b, ber) per pair found, id_a before id_b in ``items``; sorted by ber, then
        by position. A group of more than ``neighbours`` + 1 copies of one recording is
        connected by the pairs found but may miss some pairs; ``duplicate_groups`` joins them.
    """
    ids = [str(i) for i, _, _ in items]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise ValueError(f"find_near_duplicates: ids must be unique, repeated: {dup}")
    if not items:
        return []
    fps = [fp for _, fp, _ in items]
    durations = np.array([float(d) for _, _, d in items])
    summaries = np.stack([fp.summary for fp in fps]).astype(np.float32)
    max_shift = int(round(max_shift_seconds / HOP_SECONDS))
    pairs = _candidate_pairs(summaries, durations, 2 * max_shift_seconds + 0.1, neighbours)
    found = []
    coarse_limit = threshold + 0.1   # margin for the estimate from 1/8 of the frames; copies sit far below
    stride = 8
    sample: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for j in np.unique(pairs[:, 1]).tolist():
        pos = np.flatnonzero(fps[j].active)[::stride]
        sample[j] = (pos, fps[j].words[pos])
    need = max(1, -(-min_overlap_frames // stride))
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]) if len(pairs) else []
    for lo, hi in zip(starts, list(starts[1:]) + [len(pairs)]):
        i, js = int(pairs[lo, 0]), pairs[lo:hi, 1].tolist()
        coarse = _coarse_rates(fps[i], [sample[j] for j in js], max_shift, need)
        for j, c in zip(js, coarse):
            if c <= coarse_limit:
                ber, _ = bit_error_rate(fps[i], fps[j], max_shift, min_overlap_frames)
                if ber <= threshold:
                    found.append((ber, i, j))
    found.sort()
    return [(ids[i], ids[j], ber) for ber, i, j in found]


def duplicate_groups(pairs: Iterable[tuple[str, str, float]]) -> list[list[str]]:
    """Join pairs into groups of one recording (connected components).

    Returns:
        Sorted lists of ids, one per group of two or more, sorted by their first id.
    """
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, *_ in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(root(x), []).append(x)
    return sorted(sorted(g) for g in groups.values())


# Serialisation. Everything a comparison depends on is in _PARAMS: a cache written with other
# settings is refused rather than compared bit for bit with fingerprints it does not match.
_PARAMS = f"sr={SAMPLE_RATE} n_fft={N_FFT} hop={HOP} bands={N_BANDS} {F_LO:g}-{F_HI:g}Hz silence={SILENCE_DB:g}"
_HEADER = struct.Struct("<4sHII")   # magic, version, frames, summary dimension


def to_bytes(fp: Fingerprint) -> bytes:
    """One fingerprint as bytes (little-endian): header, words, levels, summary.

    About 5 bytes per 5 ms frame (1 KB per second of audio)."""
    return (_HEADER.pack(_FORMAT, _VERSION, fp.n_frames, fp.summary.size)
            + fp.words.astype("<u4").tobytes() + fp.level.astype(np.int8).tobytes()
            + fp.summary.astype("<f4").tobytes())


def from_bytes(blob: bytes) -> Fingerprint:
    """The inverse of ``to_bytes``.

    Raises:
        EmofuseError: not a fingerprint of this version, or truncated.
    """
    fix = "delete the fingerprint cache and re-run 'emofuse prepare'"
    if len(blob) < _HEADER.size:
        raise EmofuseError(f"fingerprint: {len(blob)} bytes is too short for a fingerprint; {fix}")
    magic, version, frames, dim = _HEADER.unpack_from(blob)
    if magic != _FORMAT or version != _VERSION or dim != SUMMARY_DIM:
        raise EmofuseError(f"fingerprint: not a version-{_VERSION} emofuse fingerprint "
                           f"(magic {magic!r}, version {version}, summary {dim}); {fix}")
    size = _HEADER.size + 5 * frames + 4 * dim
    if len(blob) != size:
        raise EmofuseError(f"fingerprint: {len(blob)} bytes, expected {size}; {fix}")
    o = _HEADER.size
    words = np.frombuffer(blob, "<u4", frames, o).astype(np.uint32)
    level = np.frombuffer(blob, np.int8, frames, o + 4 * frames).copy()
    summary = np.frombuffer(blob, "<f4", dim, o + 5 * frames).astype(np.float32)
    return Fingerprint(words, level, summary)


def save_fingerprints(path: str | Path, fingerprints: Mapping[str, Fingerprint]) -> Path:
    """Write fingerprints keyed by a string (e.g. the clip's ``audio_sha1``) to one ``.npz`` file,
    atomically: the arrays concatenated, with offsets, and the settings they were made with.

    Returns:
        ``path``.
    """
    path = Path(path)
    keys = list(fingerprints)
    fps = [fingerprints[k] for k in keys]
    offsets = np.zeros(len(fps) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([fp.n_frames for fp in fps])
    empty = np.zeros(0)
    arrays = {
        "version": np.array(_VERSION), "params": np.array(_PARAMS),
        "keys": np.array(keys, dtype=str), "offsets": offsets,
        "words": np.concatenate([fp.words for fp in fps]).astype(np.uint32) if fps else empty.astype(np.uint32),
        "level": np.concatenate([fp.level for fp in fps]).astype(np.int8) if fps else empty.astype(np.int8),
        "summary": (np.stack([fp.summary for fp in fps]) if fps else np.zeros((0, SUMMARY_DIM))).astype(np.float32),
    }
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_fingerprints(path: str | Path) -> dict[str, Fingerprint]:
    """Read a file that ``save_fingerprints`` wrote.

    Raises:
        EmofuseError: missing, unreadable, or written with other fingerprint settings.
    """
    path = Path(path)
    fix = "delete it and re-run 'emofuse prepare' to rebuild it"
    if not path.is_file():
        raise EmofuseError(f"{path}: fingerprint file not found; re-run 'emofuse prepare'")
    try:
        with np.load(path, allow_pickle=False) as z:
            version, params = int(z["version"]), str(z["params"])
            if version != _VERSION or params != _PARAMS:
                raise EmofuseError(f"{path}: fingerprints made with other settings "
                                   f"(version {version}, {params}); {fix}")
            keys, offsets = z["keys"].tolist(), z["offsets"]
            words, level, summary = z["words"], z["level"], z["summary"]
    except EmofuseError:
        raise
    except Exception as exc:  # zipfile, KeyError, ValueError: a damaged or foreign file
        raise EmofuseError(f"{path}: cannot read fingerprints ({type(exc).__name__}: {exc}); {fix}") from None
    n = len(keys)
    if (offsets.shape != (n + 1,) or summary.shape != (n, SUMMARY_DIM) or offsets[-1] != words.size
            or words.size != level.size or np.any(np.diff(offsets) < 0)):
        raise EmofuseError(f"{path}: inconsistent fingerprint arrays; {fix}")
    return {k: Fingerprint(words[offsets[i]:offsets[i + 1]].astype(np.uint32), level[offsets[i]:offsets[i + 1]],
                           summary[i]) for i, k in enumerate(keys)}
