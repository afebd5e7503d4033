"""Emotion over time: cut a long recording into speech segments and classify each one.

``timeline(predictor, path)`` reads the file twice, block by block (``audio.stream_audio``), so an
hour of audio costs a few MB however long it is:

1. voice activity: the RMS energy of 25 ms frames every 10 ms (``librosa.feature.rms``, the
   measure ``librosa.effects.split`` uses) is kept for the whole file (one float per frame:
   1.4 MB for an hour). Frames within ``top_db`` dB of the file's loudest frame, and above an
   absolute floor (digital silence), are speech. Speech runs separated by less than ``min_gap``
   seconds are merged, runs shorter than ``min_seconds`` dropped, runs longer than
   ``max_seconds`` cut into equal pieces no longer than that (each piece one model window);
2. classification: the file is streamed again and each segment, once its samples have passed,
   goes through the model (``Predictor.predict``). Silence is never classified.

The whole recording's label is the mean of its segments' probabilities weighted by their
length. ``write_csv`` and ``plot_timeline`` write the segments as a table and a figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .audio import TARGET_SR, stream_audio
from .errors import EmofuseError

FRAME, HOP = 400, 160  # 25 ms frames every 10 ms at 16 kHz
FLOOR_DB = -60.0  # frames quieter than this (dB relative to full scale, RMS) are never speech


@dataclass(frozen=True)
class VadConfig:
    """Voice-activity settings (seconds and dB).

    Args:
        top_db: a frame is speech when within this many dB of the file's loudest frame.
        min_gap: pauses shorter than this inside speech are bridged.
        min_seconds: speech runs shorter than this are dropped (clicks, breaths).
        max_seconds: longer runs are cut into equal pieces at most this long.
    """

    top_db: float = 35.0
    min_gap: float = 0.3
    min_seconds: float = 0.5
    max_seconds: float = 8.0

    def __post_init__(self) -> None:
        if not (self.top_db > 0 and self.min_gap >= 0 and 0 < self.min_seconds <= self.max_seconds):
            raise EmofuseError(f"voice-activity settings {self}: need top_db > 0, min_gap >= 0 and "
                               "0 < min_seconds <= max_seconds")


@dataclass
class Segment:
    """One classified stretch of speech: [start, end) in seconds, its label and class probabilities."""

    start: float
    end: float
    label: str
    probs: dict[str, float]

    def as_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label,
                "probs": {c: round(p, 5) for c, p in self.probs.items()}}


@dataclass
class Timeline:
    """A recording's segments, in order, and the speech-weighted summary of them."""

    classes: list[str]
    seconds: float
    segments: list[Segment] = field(default_factory=list)

    @property
    def speech_seconds(self) -> float:
        return sum(s.end - s.start for s in self.segments)

    @property
    def probs(self) -> dict[str, float]:
        """The segments' probabilities averaged, each weighted by its length."""
        total = self.speech_seconds
        return {c: sum(s.probs[c] * (s.end - s.start) for s in self.segments) / total for c in self.classes}

    @property
    def label(self) -> str:
        probs = self.probs
        return max(self.classes, key=probs.__getitem__)

    def as_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "speech_seconds": round(self.speech_seconds, 3),
                "segments": [s.as_dict() for s in self.segments]}


def frame_energies(blocks: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """RMS of every FRAME-sample frame, HOP apart, of a clip that arrives in blocks.

    Returns:
        (F,) float32 RMS values (the same as ``librosa.feature.rms(y=whole, center=False)``) and
        the clip's length in samples.
    """
    import librosa

    out, carry, n = [], np.zeros(0, np.float32), 0
    for block in blocks:
        n += block.size
        buf = np.concatenate([carry, np.asarray(block, np.float32)])
        if buf.size >= FRAME:
            frames = 1 + (buf.size - FRAME) // HOP
            out.append(librosa.feature.rms(y=buf[: (frames - 1) * HOP + FRAME], frame_length=FRAME, hop_length=HOP,
                                           center=False)[0].astype(np.float32))
            buf = buf[frames * HOP:]
        carry = buf
    return (np.concatenate(out) if out else np.zeros(0, np.float32)), n


def speech_spans(rms: np.ndarray, n_samples: int, vad: VadConfig = VadConfig(), sr: int = TARGET_SR) -> list[tuple[int, int]]:
    """Frame energies -> speech segments as (start, end) sample indices, sorted and disjoint."""
    if rms.size == 0:
        return []
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    speech = (db >= db.max() - vad.top_db) & (db >= FLOOR_DB)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], speech.astype(np.int8), [0]])))
    runs = [[s * HOP, min(n_samples, (e - 1) * HOP + FRAME)] for s, e in zip(edges[::2], edges[1::2])]
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < vad.min_gap * sr:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    spans = []
    for s, e in merged:
        if e - s < vad.min_seconds * sr:
            continue
        pieces = int(np.ceil((e - s) / (vad.max_seconds * sr)))
        cuts = np.linspace(s, e, pieces + 1).round().astype(int)
        spans += [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
    return spans


def cut(blocks: Iterable[np.ndarray], spans: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The samples of each span, in order, from a clip that arrives in blocks; memory: one span
    plus one block."""
    if not spans:
        return
    buf, base, i = np.zeros(0, np.float32), 0, 0
    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, np.float32)])
        while i < len(spans) and spans[i][1] <= base + buf.size:
            s, e = spans[i]
            yield buf[s - base: e - base].copy()
            i += 1
        if i == len(spans):
            return
        keep = min(spans[i][0], base + buf.size)
        buf, base = buf[keep - base:], keep
    if i < len(spans):  # the stream ended early (the file changed between passes): what is there
        s, e = spans[i]
        if s < base + buf.size:
            yield buf[s - base:]


def timeline(predictor, path: str | Path, vad: VadConfig = VadConfig(), block_frames: int | None = None) -> Timeline:
    """Segment ``path`` into speech and classify each segment with ``predictor`` (``emofuse.load``).

    Raises:
        EmofuseError: the file cannot be read, holds no speech, or the model needs a transcript
            (a segment has none; models trained on ASR text transcribe each segment themselves).
    """
    path = Path(path)
    if predictor.needs_text and (predictor.text_cfg or {}).get("source") != "asr":
        raise EmofuseError(f"{path}: this model reads a transcript, and the segments of a timeline have none; use an "
                           "audio model or one trained on ASR text (text.source=asr), which transcribes each segment")
    rms, n = frame_energies(stream_audio(path, TARGET_SR, block_frames))
    spans = speech_spans(rms, n, vad)
    if not spans:
        raise EmofuseError(f"{path}: no speech found ({n / TARGET_SR:.1f} s, nothing louder than {FLOOR_DB:.0f} dBFS "
                           f"for {vad.min_seconds} s); there is nothing to classify")
    out = Timeline(list(predictor.classes), n / TARGET_SR)
    for (s, e), wave in zip(spans, cut(stream_audio(path, TARGET_SR, block_frames), spans)):
        p = predictor.predict(wave, sample_rate=TARGET_SR, utt=f"{path.name} at {s / TARGET_SR:.2f} s")
        out.segments.append(Segment(s / TARGET_SR, (s + wave.size) / TARGET_SR, p.label, p.probs))
    return out


def write_csv(tl: Timeline, path: str | Path) -> Path:
    """One row per segment: start, end (seconds), label, p_<class>."""
    import pandas as pd

    from .atomic import write_csv_atomic

    rows = [{"start": round(s.start, 3), "end": round(s.end, 3), "label": s.label,
             **{f"p_{c}": round(s.probs[c], 5) for c in tl.classes}} for s in tl.segments]
    return write_csv_atomic(pd.DataFrame(rows, columns=["start", "end", "label", *[f"p_{c}" for c in tl.classes]]), path)


def plot_timeline(tl: Timeline, path: str | Path, title: str = "") -> Path:
    """Each class's probability over time (a step per segment; gaps are silence) and the labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import replace_into

    fig, (ax, strip) = plt.subplots(2, 1, figsize=(11, 3.6), sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    colors = plt.get_cmap("tab10")
    for k, c in enumerate(tl.classes):
        xs, ys = [], []
        for s in tl.segments:
            xs += [s.start, s.end, np.nan]
            ys += [s.probs[c], s.probs[c], np.nan]
        ax.plot(xs, ys, color=colors(k % 10), lw=1.6, label=c)
    for s in tl.segments:
        strip.axvspan(s.start, s.end, color=colors(tl.classes.index(s.label) % 10), lw=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(loc="upper right", ncol=len(tl.classes), fontsize=8, frameon=False)
    ax.set_title(title or f"{len(tl.segments)} speech segments, {tl.speech_seconds:.0f} s of {tl.seconds:.0f} s "
                 f"(blank: silence, not classified)", fontsize=9)
    strip.set_yticks([])
    strip.set_ylabel("label", rotation=0, ha="right", va="center")
    strip.set_xlabel("time (s)")
    strip.set_xlim(0, max(tl.seconds, 1e-3))
    fig.tight_layout()
    out = replace_into(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return out
