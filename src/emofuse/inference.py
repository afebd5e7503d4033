"""Use a trained model: ``emofuse.load(path).predict(waveform_or_path, text=None)``.

``path`` is a fold checkpoint (``.ckpt``), a fold folder (its selected ``best.ckpt``), or a whole
CV run folder (the ensemble of its finished folds: class probabilities averaged). Audio is any
libsndfile format, rate and channel count; it is decoded, downmixed and resampled, and turned
into log-mel with the settings stored in the checkpoint. Long files are cut into windows whose
probabilities are averaged. Text and fusion models take the transcript as ``text``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .audio import TARGET_SR, read_audio, to_mono_16k
from .errors import EmofuseError
from .features import Extractor

SILENCE_PEAK = 1e-4
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


@dataclass
class Prediction:
    """One clip's result: the predicted class and every class's probability."""

    utt: str
    label: str
    probs: dict[str, float]
    windows: int
    seconds: float

    def as_row(self) -> dict:
        return {"utt": self.utt, "pred": self.label, **{f"p_{c}": round(p, 5) for c, p in self.probs.items()},
                "windows": self.windows, "seconds": round(self.seconds, 3)}


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


def _load_module(ckpt: Path, device: torch.device):
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


def checkpoints_of(path: str | Path) -> list[Path]:
    """The checkpoints a path stands for: one file, a fold's best, or every finished fold's best.

    A file given by name is loaded as named; a fold or run folder only yields checkpoints inside
    itself: a ``metrics.json`` "checkpoint" entry or a symbolic link that leads out is refused.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if (p / "checkpoints" / "best.ckpt").is_file():
        best = p / "checkpoints" / "best.ckpt"
        return [_inside(best, p, "fold folder", str(best))]
    found = []
    for m in sorted(p.glob("fold_*/metrics.json"), key=lambda q: int(q.parent.name.split("_")[1])):
        try:
            rel = json.loads(m.read_text()).get("checkpoint")
        except (ValueError, AttributeError):
            raise EmofuseError(f"{m}: not a metrics file (invalid JSON); remove the fold or train it again") from None
        if rel is not None and not isinstance(rel, str):
            raise EmofuseError(f"{m}: 'checkpoint' must be a path inside the run, not {type(rel).__name__}")
        ck = (p / rel) if rel else m.parent / "checkpoints" / "best.ckpt"
        if ck.is_file() or ck.is_symlink():
            found.append(_inside(ck, p, "run folder", str(m)))
    if not found:
        raise EmofuseError(f"{p}: no checkpoint here; give a .ckpt file, a fold folder (fold_K) or a finished run folder "
                           "(written by 'emofuse cv')")
    return found


class Predictor:
    """A loaded model (or fold ensemble) that predicts emotions for new audio.

    Args:
        modules: one ``EmotionModule`` per fold (same classes and front end).
        window_seconds, hop_seconds: long clips are cut into windows of this length.
    """

    def __init__(self, modules: list, window_seconds: float = 8.0, hop_seconds: float | None = None,
                 sources: list[Path] | None = None) -> None:
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
        self.window = float(window_seconds)
        self.hop = float(hop_seconds or window_seconds)
        self.sources = sources or []
        self.device = next(modules[0].parameters()).device

    @property
    def needs_text(self) -> bool:
        return "text" in self.modalities

    def _text_inputs(self, text: str | None, utt: str, wave: np.ndarray | None = None) -> dict:
        """Token embeddings of the transcript; a model trained on ASR text (``text.source=asr``)
        transcribes the clip itself with its Whisper model when no transcript is given."""
        if not self.needs_text:
            return {}
        if text is None and wave is not None and (self.text_cfg or {}).get("source") == "asr":
            if self._asr is None:
                from .pretrained import WhisperModel

                self._asr = WhisperModel(self.text_cfg.get("asr_model") or "tiny.en")
            text = self._asr.transcribe([wave])[0]
        if text is None:
            raise EmofuseError(f"{utt}: this model reads text too; pass the transcript (--text or --transcripts FILE)")
        if self._encoder is None:
            from .text import TextEncoder
            self._encoder = TextEncoder(self.text_cfg["encoder"], self.text_cfg["max_tokens"])
        tokens = torch.from_numpy(self._encoder.encode([str(text).strip()])[0])[None].to(self.device)
        return {"text": tokens, "text_lengths": torch.tensor([tokens.shape[1]], device=self.device)}

    def features(self, wave: np.ndarray, utt: str = "audio") -> tuple[torch.Tensor, torch.Tensor]:
        """Windows of one clip -> log-mel (W, T, F) and (W,) frame counts; bad audio is refused."""
        if wave.size == 0:
            raise EmofuseError(f"{utt}: no samples; give a clip with audio")
        if not np.isfinite(wave).all():
            raise EmofuseError(f"{utt}: holds NaN or infinite samples; re-export the file")
        if float(np.abs(wave).max()) < SILENCE_PEAK:
            raise EmofuseError(f"{utt}: silent (peak below {SILENCE_PEAK}); there is nothing to classify")
        sr = self.frontend.sample_rate
        if len(wave) < self.frontend.min_samples:
            raise EmofuseError(f"{utt}: {len(wave) / sr * 1000:.1f} ms is shorter than one analysis window "
                               f"({self.frontend.min_samples / sr * 1000:.0f} ms); give a longer clip")
        win, hop = int(self.window * sr), int(self.hop * sr)
        starts = [0] if len(wave) <= win else list(range(0, len(wave) - win + 1, hop))
        if len(wave) > win and starts[-1] + win < len(wave):
            starts.append(len(wave) - win)  # the tail gets a window of its own
        feats, frames = self.frontend([wave[s:s + win] for s in starts])
        return feats.to(self.device), frames.to(self.device)

    @torch.no_grad()
    def predict(self, audio, text: str | None = None, sample_rate: int | None = None, utt: str | None = None) -> Prediction:
        """``audio``: a path, or a waveform ((N,) or (N, C) array / tensor) with its ``sample_rate``."""
        if isinstance(audio, (str, Path)):
            utt = utt or Path(audio).stem
            wave = read_audio(audio, TARGET_SR)
        else:
            if sample_rate is None:
                raise EmofuseError("a waveform needs its sample_rate (predict(wave, sample_rate=44100))")
            arr = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
            if arr.ndim == 2 and arr.shape[0] < arr.shape[1] and arr.shape[0] <= 8:
                arr = arr.T  # (C, N) -> (N, C)
            wave = to_mono_16k(arr.astype(np.float32), int(sample_rate), TARGET_SR)
            utt = utt or "waveform"
        x, lengths = self.features(wave, utt)
        extra = self._text_inputs(text, utt, wave)
        if extra:
            extra = {k: v.expand(x.shape[0], *v.shape[1:]) for k, v in extra.items()}
        probs = torch.zeros(len(self.classes), device=self.device)
        for m in self.modules:
            inputs = {"x": x, "lengths": lengths, **extra} if "audio" in m.modalities else extra
            probs += torch.softmax(m(**inputs).float(), dim=1).mean(0)
        probs = (probs / len(self.modules)).cpu().numpy()
        return Prediction(utt, self.classes[int(probs.argmax())], {c: float(p) for c, p in zip(self.classes, probs)},
                          int(x.shape[0]), len(wave) / TARGET_SR)


def load(path: str | Path, device: str | torch.device | None = None, window_seconds: float = 8.0,
         hop_seconds: float | None = None) -> Predictor:
    """Load a checkpoint, a fold folder or a whole CV run (fold ensemble) for prediction."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ckpts = checkpoints_of(path)
    return Predictor([_load_module(c, device) for c in ckpts], window_seconds, hop_seconds, ckpts)


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
