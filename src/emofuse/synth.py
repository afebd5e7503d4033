"""A built-in synthetic corpus in the IEMOCAP release layout, with learnable audio and text.

Audio: harmonic, voice-like signals. Each class shifts the pitch level, the pitch contour
(rising, falling, wide), loudness, syllable rate and brightness; each speaker has its own
pitch and timbre; every utterance draws its parameters around those means, so the classes
overlap and a model must generalise across speakers. Text: with probability ``text_signal``
a sentence from the class's phrase list, else a sentence shared by all classes, so text
alone is informative but not sufficient, and audio plus text beats either alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

CLASS_STYLE = {  # pitch factor, contour slope (octaves over the clip), loudness, syllables/s, brightness
    "ang": (1.30, 0.00, 1.00, 5.5, 0.78),
    "hap": (1.22, 0.35, 0.80, 5.0, 0.68),
    "exc": (1.28, 0.30, 0.90, 5.5, 0.70),
    "sad": (0.86, -0.30, 0.35, 3.0, 0.45),
    "neu": (1.00, 0.00, 0.60, 4.0, 0.58),
    "fru": (1.10, -0.10, 0.85, 4.5, 0.65),
    "xxx": (1.05, 0.05, 0.70, 4.3, 0.60),
}
PHRASES = {
    "ang": ["I can't believe you did that.", "This is completely unacceptable!", "Stop it right now.",
            "Get out of here.", "You never listen to me!", "Don't you dare touch that."],
    "hap": ["That's wonderful news!", "I love it, thank you.", "We did it!", "This is so great.",
            "What a lovely surprise.", "I'm so glad you came."],
    "exc": ["Oh wow, that's amazing!", "I can't wait to go!", "This is the best day ever!", "Yes, we won!"],
    "sad": ["I miss her so much.", "Nothing matters anymore.", "I feel so alone.", "It's over, isn't it.",
            "He's not coming back.", "I'm sorry it ended like this."],
    "neu": ["The meeting is at three.", "Please pass me the file.", "I went to the store.", "It's on the table.",
            "The train leaves at noon.", "I'll call you tomorrow."],
}
# The script every session's scripted dialogue reads (one line per emotion), with scripts="shared".
SCRIPT = {lab: lines[0] for lab, lines in PHRASES.items()}
GENERIC = ["Okay.", "Well, I see.", "Let me think about it.", "What did you say?", "Yes.", "I don't know.",
           "Really?", "Can you say that again?", "Right.", "Hmm, maybe."]


@dataclass(frozen=True)
class SynthSpec:
    sessions: int = 5
    per_class: int = 10          # utterances per speaker per class (happy is split into hap / exc)
    extra_fraction: float = 0.1  # extra utterances labelled fru / xxx, which the 4-class map leaves out
    min_seconds: float = 1.0
    max_seconds: float = 2.5
    # "uniform" in [min, max], or "iemocap": log-normal (median 3.8 s, mean ~4.5 s) clipped to
    # [min, max], IEMOCAP's skewed shape (5,531 utterances in about 7 h with min 1, max 20).
    durations: str = "uniform"
    sample_rate: int = 16000
    text_signal: float = 0.55
    # "random": every utterance draws its sentence from a pool (lines repeat by chance);
    # "shared": like IEMOCAP's scripted dialogues, every session's script dialogue reads the same
    # script (one line per emotion), and improvised utterances say sentences found nowhere else,
    # so the transcript overlap between sessions is known in advance (the scripted items, all of them).
    scripts: str = "random"
    seed: int = 0


def _voice(rng: np.random.Generator, sr: int, seconds: float, f0: float, slope: float, loud: float, rate: float,
           bright: float, breath: float) -> np.ndarray:
    n = int(seconds * sr)
    t = np.arange(n) / sr
    # pitch: base * contour * slow vibrato-like wander
    wander = np.cumsum(rng.normal(0, 1, n // 400 + 2))
    wander = np.interp(np.arange(n), np.linspace(0, n, len(wander)), wander / (np.abs(wander).max() + 1e-9))
    f = f0 * 2 ** (slope * (t / seconds - 0.5) + 0.06 * wander)
    phase = 2 * np.pi * np.cumsum(f) / sr
    wav = np.zeros(n)
    for k in range(1, 16):
        if f0 * k * 1.3 > sr / 2:
            break
        wav += (bright ** (k - 1)) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    # syllable envelope: Hann bumps at the speaking rate, with pauses
    env = np.zeros(n)
    pos = rng.uniform(0.02, 0.15) * sr
    while pos < n:
        dur = int(sr / rate * rng.uniform(0.55, 0.9))
        a = int(pos)
        b = min(n, a + dur)
        if b > a:
            env[a:b] += np.hanning(dur)[: b - a] * rng.uniform(0.6, 1.0)
        pos += sr / rate * rng.uniform(0.9, 1.4) + (rng.uniform(0.1, 0.3) * sr if rng.random() < 0.12 else 0)
    noise = rng.normal(0, 1, n)
    noise = np.convolve(noise, np.ones(8) / 8, mode="same")
    sig = env * (wav / 4.0 + breath * noise) + 0.002 * rng.normal(0, 1, n)
    return (0.3 * loud * sig / (np.abs(sig).max() + 1e-9)).astype(np.float32)


def make_synthetic_corpus(out: str | Path, spec: SynthSpec = SynthSpec()) -> dict:
    """Write the corpus under ``out`` (Session1..SessionN) and return its counts."""
    out = Path(out)
    if spec.durations not in ("uniform", "iemocap"):
        raise ValueError(f"durations must be 'uniform' or 'iemocap', not {spec.durations!r}")
    if spec.scripts not in ("random", "shared"):
        raise ValueError(f"scripts must be 'random' or 'shared', not {spec.scripts!r}")
    rng = np.random.default_rng(spec.seed)
    counts: dict[str, int] = {}
    n_utts = 0
    total_seconds = 0.0
    for s in range(1, spec.sessions + 1):
        sdir = out / f"Session{s}"
        speakers = {g: {"f0": (205 if g == "F" else 118) * 2 ** rng.normal(0, 0.12), "bright": rng.normal(0, 0.05),
                        "rate": rng.normal(0, 0.4), "breath": rng.uniform(0.02, 0.08)} for g in "FM"}
        labels = []
        for g in "FM":
            for lab in ("ang", "sad", "neu"):
                labels += [(g, lab)] * spec.per_class
            labels += [(g, "hap")] * (spec.per_class - spec.per_class // 2) + [(g, "exc")] * (spec.per_class // 2)
            labels += [(g, rng.choice(["fru", "xxx"])) for _ in range(int(round(spec.extra_fraction * 4 * spec.per_class)))]
        order = rng.permutation(len(labels))
        dialogs = {f"Ses{s:02d}F_impro01": [], f"Ses{s:02d}M_script01_1": []}
        names = list(dialogs)
        for j, i in enumerate(order):
            dialogs[names[j % 2]].append(labels[i])
        for dialog, items in dialogs.items():
            wav_dir = sdir / "sentences" / "wav" / dialog
            wav_dir.mkdir(parents=True, exist_ok=True)
            eval_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            text_lines = []
            clock = 2.0
            turn = {"F": 0, "M": 0}
            for g, lab in items:
                utt = f"{dialog}_{g}{turn[g]:03d}"
                turn[g] += 1
                p0, slope, loud, rate, bright = CLASS_STYLE[lab]
                spk = speakers[g]
                if spec.durations == "iemocap":
                    seconds = float(np.clip(rng.lognormal(np.log(3.8), 0.6), spec.min_seconds, spec.max_seconds))
                else:
                    seconds = rng.uniform(spec.min_seconds, spec.max_seconds)
                wav = _voice(rng, spec.sample_rate, seconds,
                             f0=spk["f0"] * p0 * 2 ** rng.normal(0, 0.12), slope=slope + rng.normal(0, 0.2),
                             loud=loud * float(np.exp(rng.normal(0, 0.3))), rate=max(1.5, rate + spk["rate"] + rng.normal(0, 0.8)),
                             bright=float(np.clip(bright + spk["bright"] + rng.normal(0, 0.07), 0.2, 0.95)),
                             breath=spk["breath"])
                sf.write(wav_dir / f"{utt}.wav", wav, spec.sample_rate, subtype="PCM_16")
                start, end = clock, clock + seconds
                clock = end + rng.uniform(0.3, 2.0)
                eval_lines += [f"[{start:.4f} - {end:.4f}]\t{utt}\t{lab}\t[2.5000, 2.5000, 2.5000]",
                               f"C-E1:\t{lab};\t()", ""]
                pool = PHRASES.get(lab) if lab in PHRASES and rng.random() < spec.text_signal else GENERIC
                line = rng.choice(pool)
                if spec.scripts == "shared":
                    line = (SCRIPT.get(lab, GENERIC[0]) if "_script" in dialog else
                            f"{line.rstrip('.!?')}, said on day {n_utts + 1}.")  # a sentence of its own
                text_lines.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {line}")
                counts[lab] = counts.get(lab, 0) + 1
                n_utts += 1
                total_seconds += seconds
            (sdir / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
            (sdir / "dialog" / "transcriptions").mkdir(parents=True, exist_ok=True)
            (sdir / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(eval_lines) + "\n")
            (sdir / "dialog" / "transcriptions" / f"{dialog}.txt").write_text("\n".join(text_lines) + "\n")
    info = {"utterances": n_utts, "hours": round(total_seconds / 3600, 3), "labels": counts, "spec": spec.__dict__}
    (out / "SYNTHETIC.json").write_text(json.dumps(info, indent=2))
    return info


def make_noise_folder(out: str | Path, per_kind: int = 4, seconds: float = 6.0, sample_rate: int = 16000, seed: int = 0) -> dict:
    """A small synthetic noise bank in the MUSAN layout (``noise/``, ``music/``, ``speech/``).

    For demos and tests where MUSAN is not at hand: coloured noise with hum (noise), chord
    sequences (music), and babble of three synthetic talkers (speech). Real experiments
    should point ``augment.noise_dir`` at MUSAN or recorded noise.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    counts = {}
    for kind in ("noise", "music", "speech"):
        (out / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_kind):
            if kind == "noise":
                spec = np.fft.rfft(rng.standard_normal(n))
                f = np.maximum(np.arange(len(spec)), 1.0)
                x = np.fft.irfft(spec / f ** rng.uniform(0.0, 1.0), n) + 0.3 * np.sin(2 * np.pi * rng.choice([50, 60]) * t)
            elif kind == "music":
                x = np.zeros(n)
                step = int(sample_rate * rng.uniform(0.4, 0.8))
                for s in range(0, n, step):
                    root = 110 * 2 ** (rng.integers(0, 12) / 12)
                    seg = t[: min(step, n - s)]
                    x[s:s + len(seg)] = sum(np.sin(2 * np.pi * root * r * seg) for r in (1, 1.26, 1.5, 2)) * np.exp(-seg * 2)
            else:
                x = sum(_voice(rng, sample_rate, seconds, f0=rng.uniform(100, 240), slope=rng.normal(0, 0.2), loud=1.0,
                               rate=rng.uniform(3, 6), bright=0.6, breath=0.04) for _ in range(3))
            x = 0.3 * x / (np.abs(x).max() + 1e-9)
            sf.write(out / kind / f"{kind}-{i:04d}.wav", x.astype(np.float32), sample_rate, subtype="PCM_16")
        counts[kind] = per_kind
    (out / "SYNTHETIC_NOISE.json").write_text(json.dumps({"files": counts, "seconds": seconds, "seed": seed}, indent=2))
    return counts
