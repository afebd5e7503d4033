"""Use a trained model: ``emofuse.load(path).predict(waveform_or_path, text=None)``.

``path`` is a fold checkpoint (``.ckpt``), a fold folder (its selected ``best.ckpt``), or a whole
CV run folder (the ensemble of its finished folds: class probabilities averaged). Audio is any
libsndfile format, rate and channel count; it is decoded, downmixed and resampled, and turned
into log-mel with the settings stored in the checkpoint. Long files are cut into windows whose
probabilities are averaged; a file is read block by block, window after window, so an hour of
audio needs no more memory than a minute. Text and fusion models take the transcript as ``text``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from . import __version__
from .audio import AUDIO_EXTENSIONS as AUDIO_EXTS, TARGET_SR, file_sha1, read_audio, stream_audio, to_mono_16k
from .errors import EmofuseError
from .features import Extractor
from .runfolder import RunFolder

SILENCE_PEAK = 1e-4
WINDOW_BATCH = 16  # windows of a long clip that go through the model at once


@dataclass
class Prediction:
    """One clip's result: the predicted class and every class's probability.

    ``speech``: whether the clip passed the speech check (``emofuse.speech``); when it did not,
    the label is still given but says nothing about an emotion, and ``speech_note`` says why.
    ``in_training_data``: the file's bytes are a clip of the run's own manifest (None: not
    checked, for a waveform or a checkpoint without its run)."""

    utt: str
    label: str
    probs: dict[str, float]
    windows: int
    seconds: float
    speech: bool = True
    speech_note: str = ""
    in_training_data: bool | None = None

    def as_row(self) -> dict:
        return {"utt": self.utt, "pred": self.label, **{f"p_{c}": round(p, 5) for c, p in self.probs.items()},
                "windows": self.windows, "seconds": round(self.seconds, 3), "speech": self.speech,
                "speech_note": self.speech_note,
                "in_training_data": "" if self.in_training_data is None else self.in_training_data}

    def warnings(self) -> list[str]:
        """One line per thing a reader of this prediction must know."""
        out = []
        if not self.speech:
            out.append(f"{self.utt}: no speech found ({self.speech_note}); its label '{self.label}' says nothing about an emotion")
        if self.in_training_data:
            out.append(f"{self.utt}: this audio is in the run's own data (inputs/manifest.csv, same bytes); "
                       "its prediction is not a test result")
        return out


def read_checkpoint(ckpt: Path) -> dict:
    """A checkpoint's contents, unpickled with ``weights_only=True``: tensors, dicts, lists, strings
    and numbers only. Anything else (a class, a function call) is refused before it is built, so a
    crafted ``.ckpt`` cannot run code. emofuse's own checkpoints hold nothing else (tested)."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "pickle protocol 4": the error below says all there is to say
            raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        glob = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if glob:
            raise EmofuseError(f"{ckpt}: holds Python objects, not only weights (the global {glob.group(1)}); refused, "
                               "since loading it could run code: give a .ckpt written by emofuse") from None
        op = re.search(r"Unsupported operand \d+", str(exc))
        raise EmofuseError(f"{ckpt}: not a readable checkpoint (the weights-only loader refused its pickle data"
                           f"{': ' + op.group(0) if op else ''}); give a .ckpt written by emofuse") from None
    except Exception as exc:
        raise EmofuseError(f"{ckpt}: not a readable checkpoint ({type(exc).__name__}); give a .ckpt written by emofuse") from None
    if not isinstance(raw, dict):
        raise EmofuseError(f"{ckpt}: not an emofuse checkpoint (a {type(raw).__name__}, not a dict); give a .ckpt written by emofuse")
    return raw


def load_module(ckpt: Path, device: torch.device):
    """The ``EmotionModule`` of one checkpoint, in eval mode on ``device`` (the one loader: inference,
    export, explain, report and training's own test evaluation all use it)."""
    from .training.module import EmotionModule

    raw = read_checkpoint(ckpt)
    version = raw.get("emofuse_version")
    hp = raw.get("hyper_parameters") or {}
    if not isinstance(version, str) or not isinstance(hp, dict) or "model_name" not in hp:
        raise EmofuseError(f"{ckpt}: not an emofuse checkpoint, or one from a version that did not record itself; "
                           f"retrain with this version ({__version__})")
    if version.split(".")[:2] != __version__.split(".")[:2]:
        raise EmofuseError(f"{ckpt}: written by emofuse {version}, this is {__version__}; load it with emofuse {version} "
                           "or retrain")
    try:
        module = EmotionModule(**hp)
        module.load_state_dict(raw["state_dict"])
    except Exception as exc:
        raise EmofuseError(f"{ckpt}: its weights do not fit model {hp.get('model_name')!r} of this version "
                           f"({str(exc).splitlines()[0][:160]}); retrain or use the version that wrote it") from None
    return module.to(device).eval()




def _inside(path: Path, folder: Path, what: str, source: str) -> Path:
    """``path`` if it resolves (after '..' and symbolic links) inside ``folder``; else refused."""
    if not path.resolve().is_relative_to(folder.resolve()):
        raise EmofuseError(f"{source}: checkpoint {path} resolves to {path.resolve()}, outside the {what} {folder}; "
                           f"a {what} reads only its own checkpoints (copy the checkpoint in, or give the .ckpt file itself)")
    return path


def fold_checkpoints(path: str | Path, fold: int | None = None) -> list[tuple[int | None, Path]]:
    """The (fold number, checkpoint) pairs a path stands for: one file, a fold's selected
    checkpoint, or every finished fold's (``fold``: only that fold of a run). The fold number is
    None for a checkpoint that is not inside a run's fold folder.

    A file given by name is loaded as named; a fold or run folder only yields checkpoints inside
    itself: a ``metrics.json`` "checkpoint" entry or a symbolic link that leads out is refused.
    """
    p = Path(path)
    if p.is_file():
        q = p.resolve()  # RUN/fold_K/checkpoints/NAME.ckpt knows its fold
        found = [(RunFolder(q.parents[2]).fold_of(q.parents[1]) if len(q.parents) > 2 else None, p)]
    elif (p / "checkpoints").is_dir():  # a fold folder
        k = RunFolder(p.parent).fold_of(p)
        best = RunFolder(p.parent).best_checkpoint(k) if k is not None else p / "checkpoints" / "best.ckpt"
        if not best.is_file():
            best = p / "checkpoints" / "best.ckpt"
        found = [(k, _inside(best, p, "fold folder", str(best)))] if best.is_file() or best.is_symlink() else []
    else:
        run = RunFolder(p)
        found = []
        for k in run.folds():
            ck = run.best_checkpoint(k)
            if run.is_finished(k) and (ck.is_file() or ck.is_symlink()):
                found.append((k, _inside(ck, p, "run folder", str(run.metrics(k)))))
    if not found:
        raise EmofuseError(f"{p}: no checkpoint here; give a .ckpt file, a fold folder (fold_K) or a finished run folder "
                           "(written by 'emofuse cv')")
    if fold is not None:
        chosen = [(k, c) for k, c in found if k == fold]
        if not chosen:
            have = [k for k, _ in found if k is not None]
            raise EmofuseError(f"fold {fold}: {p} has no finished fold {fold} (it has "
                               f"{'folds ' + ', '.join(map(str, have)) if have else 'no fold number'}); pick one of them")
        found = chosen
    return found


def checkpoints_of(path: str | Path, fold: int | None = None) -> list[Path]:
    """The checkpoints of ``fold_checkpoints`` without their fold numbers."""
    return [c for _, c in fold_checkpoints(path, fold)]


def describe_folds(folds: list[int | None], sources: list[Path] | None = None) -> str:
    """'ensemble of folds 0-5', 'ensemble of folds 0, 2, 3', 'fold 2' or 'checkpoint PATH'."""
    if len(folds) == 1:
        return f"fold {folds[0]}" if folds[0] is not None else f"checkpoint {sources[0]}" if sources else "the given model"
    if None in folds:
        return f"ensemble of {len(folds)} checkpoints"
    span = list(range(folds[0], folds[-1] + 1))
    return f"ensemble of folds {folds[0]}-{folds[-1]}" if folds == span else f"ensemble of folds {', '.join(map(str, folds))}"


def refuse_bad_audio(n: int, finite: bool, peak: float, utt: str, frontend: Extractor) -> None:
    """Refuse a clip of ``n`` samples (at the front end's rate) that is empty, holds NaN/inf,
    is silent or is shorter than one analysis window."""
    if n == 0:
        raise EmofuseError(f"{utt}: no samples; give a clip with audio")
    if not finite:
        raise EmofuseError(f"{utt}: holds NaN or infinite samples; re-export the file")
    if peak < SILENCE_PEAK:
        raise EmofuseError(f"{utt}: silent (peak below {SILENCE_PEAK}); there is nothing to classify")
    sr = frontend.sample_rate
    if n < frontend.min_samples:
        raise EmofuseError(f"{utt}: {n / sr * 1000:.1f} ms is shorter than one analysis window "
                           f"({frontend.min_samples / sr * 1000:.0f} ms); give a longer clip")


def clip_windows(blocks: Iterable[np.ndarray], frontend: Extractor, window_seconds: float = 8.0,
                 hop_seconds: float | None = None, utt: str = "audio", seen: dict | None = None) -> Iterator[np.ndarray]:
    """The windows ``predict`` cuts from a clip that arrives in blocks (samples at the front
    end's rate), in order: (win,) slices starting at 0, hop, 2 hop, ... while they fit, then the
    tail [N - win, N) when the last one stops short of the end; a clip of at most ``win`` samples
    is one window. Only the samples the next windows need are kept. Bad audio is refused when the
    stream ends, before its last window; ``seen["samples"]`` then holds the clip's length."""
    sr = frontend.sample_rate
    win, hop = int(window_seconds * sr), max(1, int((hop_seconds or window_seconds) * sr))
    buf, base, n, start, last_end = np.zeros(0, np.float32), 0, 0, 0, 0
    finite, peak = True, 0.0
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        if block.size:
            finite = finite and bool(np.isfinite(block).all())
            if finite:
                peak = max(peak, float(np.abs(block).max()))
        n += block.size
        buf = np.concatenate([buf, block])
        while start + win <= n:
            yield buf[start - base: start - base + win]
            last_end, start = start + win, start + hop
        keep = max(base, min(start, n - win))  # the next window, or the tail window
        buf, base = buf[keep - base:], keep
    if seen is not None:
        seen["samples"] = n
    refuse_bad_audio(n, finite, peak, utt, frontend)
    if last_end == 0:
        yield buf[: n - base]  # the whole clip, shorter than one window
    elif last_end < n:
        yield buf[n - win - base: n - base]  # the tail gets a window of its own


def window_features(wave: np.ndarray, sample_rate: int, frontend: dict | None = None, window_seconds: float = 8.0,
                    hop_seconds: float | None = None, pad_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The front end ``predict`` runs, for use outside emofuse's models (an exported graph).

    Args:
        wave: (N,) mono or (N, C) samples at ``sample_rate``; downmixed and resampled to the
            front end's rate (16 kHz) as ``predict`` does.
        frontend: the front-end settings a checkpoint or an export's ``model.json`` stores
            (its ``frontend``); None: the default 64-band log-mel.
        window_seconds, hop_seconds: the windows ``predict`` cuts (``--window-seconds``).
        pad_frames: zero-pad the frame axis to this many frames (ONNX graphs with a fixed
            length, ``model.json``'s ``fixed_frames``); None: the longest window's frames.

    Returns:
        x (W, T, F) float32 features of the W windows, zero past each window's frames, and
        lengths (W,) int64 valid frames: the graph's ``x`` and ``lengths``. A clip's
        probabilities are the mean of its windows' rows, as ``predict`` averages them.
    """
    ex = Extractor(frontend)
    arr = np.asarray(wave, dtype=np.float32)
    mono = to_mono_16k(arr, int(sample_rate), ex.sample_rate) if int(sample_rate) != ex.sample_rate or arr.ndim == 2 else arr
    x, lengths = ex(list(clip_windows([mono], ex, window_seconds, hop_seconds)))
    x = x.numpy().astype(np.float32)
    if pad_frames and x.shape[1] < pad_frames:
        x = np.pad(x, ((0, 0), (0, pad_frames - x.shape[1]), (0, 0)))
    return x, lengths.numpy().astype(np.int64)


class Predictor:
    """A loaded model (or fold ensemble) that predicts emotions for new audio.

    Args:
        modules: one ``EmotionModule`` per fold (same classes and front end).
        window_seconds, hop_seconds: long clips are cut into windows of this length.
        sources: the checkpoint each module came from; folds: its fold number (None: unknown).
    """

    def __init__(self, modules: list, window_seconds: float = 8.0, hop_seconds: float | None = None,
                 sources: list[Path] | None = None, folds: list[int | None] | None = None) -> None:
        self.modules = modules
        first = modules[0].hparams
        self.classes: list[str] = list(first["classes"])
        for m in modules[1:]:
            if list(m.hparams["classes"]) != self.classes:
                raise EmofuseError("the checkpoints disagree on the class list; load one run at a time")
        self.frontend = Extractor(first.get("frontend"))  # log-mel, or the frozen Whisper encoder
        self.modalities = modules[0].modalities
        self.text_cfg = first.get("text")
        self._encoder = None
        self._asr = None
        self._trained_audio: set[str] | None = None  # the run's audio_sha1 values, read on first use
        self._has_record = False
        # One predictor may serve several threads (emofuse serve): lazy set-ups and the tokenizer
        # (a fast tokenizer refuses concurrent calls) run under this lock.
        self._lock = threading.RLock()
        self.window = float(window_seconds)
        self.hop = float(hop_seconds or window_seconds)
        self.sources = sources or []
        self.folds: list[int | None] = list(folds) if folds is not None else [None] * len(modules)
        self.device = next(modules[0].parameters()).device

    @property
    def needs_text(self) -> bool:
        return "text" in self.modalities

    @property
    def which(self) -> str:
        """What this predictor runs: 'ensemble of folds 0-5', 'fold 2' or 'checkpoint PATH'."""
        return describe_folds(self.folds, self.sources)

    def module(self, fold: int | None = None):
        """The module of fold ``fold`` (None: the first one) and its fold number."""
        if fold is None:
            return self.modules[0], self.folds[0]
        if fold not in self.folds:
            known = [k for k in self.folds if k is not None]
            raise EmofuseError(f"fold {fold}: this model is {self.which}"
                               f"{'; pick one of folds ' + ', '.join(map(str, known)) if known else ''}")
        return self.modules[self.folds.index(fold)], fold

    def text_inputs(self, text: str | None, utt: str, wave: np.ndarray | None = None) -> dict:
        """Token embeddings of the transcript ({"text": (1, L, D), "text_lengths": (1,)}; {} for
        an audio model); a model trained on ASR text (``text.source=asr``) transcribes the clip
        itself with its Whisper model when no transcript is given."""
        if not self.needs_text:
            return {}
        if text is None and wave is not None and (self.text_cfg or {}).get("source") == "asr":
            with self._lock:
                if self._asr is None:
                    from .pretrained import WhisperModel

                    self._asr = WhisperModel(self.text_cfg.get("asr_model") or "tiny.en")
                text = self._asr.transcribe([wave])[0]
        if text is None:
            raise EmofuseError(f"{utt}: this model reads text too; pass the transcript (--text or --transcripts FILE)")
        with self._lock:
            encoded = self._text_encoder().encode([str(text).strip()])[0]
        tokens = torch.from_numpy(encoded)[None].to(self.device)
        return {"text": tokens, "text_lengths": torch.tensor([tokens.shape[1]], device=self.device)}

    def text_tokens(self, text: str) -> list[str]:
        """The word pieces the text encoder reads for ``text`` ([CLS] first)."""
        with self._lock:
            enc = self._text_encoder()
            return enc.tokenizer.convert_ids_to_tokens(enc.tokenize([str(text)])["input_ids"][0])

    def _text_encoder(self):
        if self._encoder is None:  # under self._lock
            from .text import TextEncoder
            self._encoder = TextEncoder(self.text_cfg["encoder"], self.text_cfg["max_tokens"])
        return self._encoder

    def _windows(self, blocks: Iterable[np.ndarray], utt: str, seen: dict | None = None) -> Iterator[np.ndarray]:
        return clip_windows(blocks, self.frontend, self.window, self.hop, utt, seen)

    def features(self, wave: np.ndarray, utt: str = "audio") -> tuple[torch.Tensor, torch.Tensor]:
        """Windows of one clip -> log-mel (W, T, F) and (W,) frame counts; bad audio is refused."""
        feats, frames = self.frontend(list(self._windows([wave], utt)))
        return feats.to(self.device), frames.to(self.device)

    def in_training_data(self, path: str | Path) -> bool | None:
        """Whether the file's bytes are those of a clip in the run's manifest (its
        ``inputs/manifest.csv``, ``audio_sha1``: the data a CV run's folds trained, validated and
        tested on). None when no such record sits above the checkpoints."""
        with self._lock:
            if self._trained_audio is None:
                from .evaluate import training_table

                table = training_table(self.sources)
                self._has_record = table is not None
                self._trained_audio = set(table["audio_sha1"]) if table is not None and "audio_sha1" in table.columns else set()
        if not self._has_record:
            return None
        return file_sha1(path) in self._trained_audio

    @torch.no_grad()
    def predict(self, audio, text: str | None = None, sample_rate: int | None = None, utt: str | None = None) -> Prediction:
        """``audio``: a path, or a waveform ((N,) or (N, C) array / tensor) with its ``sample_rate``.

        A file is decoded block by block and its windows go through the model ``WINDOW_BATCH``
        at a time, so memory does not grow with its length (except when the model transcribes
        the clip itself: Whisper reads the whole clip). Each window also feeds the speech check
        (``Prediction.speech``); a file is checked against the run's own data
        (``Prediction.in_training_data``).
        """
        from .speech import SpeechMeter

        wave, in_training = None, None
        if isinstance(audio, (str, Path)):
            utt = utt or Path(audio).stem
            if self._transcribes(text):
                wave = read_audio(audio, TARGET_SR)
            else:
                blocks = stream_audio(audio, TARGET_SR)
        else:
            if sample_rate is None:
                raise EmofuseError("a waveform needs its sample_rate (predict(wave, sample_rate=44100))")
            arr = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
            if arr.ndim == 2 and arr.shape[0] < arr.shape[1] and arr.shape[0] <= 8:
                arr = arr.T  # (C, N) -> (N, C)
            wave = to_mono_16k(arr.astype(np.float32), int(sample_rate), TARGET_SR)
            utt = utt or "waveform"
        if wave is not None:  # bad audio is refused before the text is looked at
            finite = bool(np.isfinite(wave).all()) if wave.size else True
            refuse_bad_audio(wave.size, finite, float(np.abs(wave).max()) if wave.size and finite else 0.0, utt,
                             self.frontend)
            blocks = [wave]
        extra = self.text_inputs(text, utt, wave)
        sums = [torch.zeros(len(self.classes), device=self.device) for _ in self.modules]
        n_windows, seen, meter = 0, {}, SpeechMeter(TARGET_SR)
        for group in _groups(self._windows(blocks, utt, seen), WINDOW_BATCH):
            for w in group:
                meter.add(w)
            x, lengths = self.frontend(group)
            fields = {"x": x.to(self.device), "lengths": lengths.to(self.device),
                      **{k: v.expand(len(group), *v.shape[1:]) for k, v in extra.items()}}
            for m, total in zip(self.modules, sums):
                total += torch.softmax(m(**m.inputs(fields)).float(), dim=1).sum(0)
            n_windows += len(group)
        if isinstance(audio, (str, Path)):
            in_training = self.in_training_data(audio)
        probs = (sum(total / n_windows for total in sums) / len(self.modules)).cpu().numpy()
        check = meter.result()
        return Prediction(utt, self.classes[int(probs.argmax())], {c: float(p) for c, p in zip(self.classes, probs)},
                          n_windows, seen["samples"] / TARGET_SR, check.speech, check.reason, in_training)

    def _transcribes(self, text: str | None) -> bool:
        """Whether this prediction needs the whole clip: a model trained on ASR text without a transcript."""
        return self.needs_text and text is None and (self.text_cfg or {}).get("source") == "asr"


def _groups(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last one shorter), taken lazily."""
    group: list = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def load(path: str | Path, device: str | torch.device | None = None, window_seconds: float = 8.0,
         hop_seconds: float | None = None, fold: int | None = None) -> Predictor:
    """Load a checkpoint, a fold folder or a whole CV run (fold ensemble; ``fold``: that fold only)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    pairs = fold_checkpoints(path, fold)
    return Predictor([load_module(c, device) for _, c in pairs], window_seconds, hop_seconds,
                     [c for _, c in pairs], [k for k, _ in pairs])


def audio_files(paths: list[str]) -> list[Path]:
    """Files and folders (searched recursively for audio) -> audio files, in order; a wrong path fails."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXTS)
            if not found:
                raise EmofuseError(f"{p}: no audio files ({', '.join(AUDIO_EXTS)}) in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise EmofuseError(f"{p}: no such file or folder")
    return out
