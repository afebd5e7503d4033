"""Text cache: per-token embeddings of the frozen encoder, computed once per corpus.

Keyed by the sha1 of the text, inside a folder named by the encoder (its files' identity) and
the tokenizer settings, so a model or ``max_tokens`` change never reads stale vectors, and the
same sentence said by 24 actors is encoded once. The frozen encoder never runs inside the
training loop: training reads (tokens, dim) arrays from memory-mapped shards.

Layout under the cache root: ``text-<encoder>-<settings hash>/`` with ``settings.json`` and
shards of (tokens, dim) float32 (see ``emofuse.shards``). ``[CLS]`` is row 0 of each item.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..shards import ShardedArrays
from .encoder import TextConfig, TextEncoder, resolve_encoder_path, text_cache_key

SHARD_TEXTS = 2048


def text_key(text: str) -> str:
    """Content key of one transcript (exact string: the tokenizer decides what case means)."""
    return hashlib.sha1(str(text).encode("utf-8")).hexdigest()


class TextStore:
    """Memory-mapped token embeddings by text key.

    Args:
        cache_root: the cache folder (shared with the audio features).
        cfg: text settings; the encoder's identity and ``max_tokens`` name the sub-folder.
    """

    def __init__(self, cache_root: str | Path, cfg: TextConfig = TextConfig()) -> None:
        self.cfg = cfg
        path = resolve_encoder_path(cfg.encoder)
        self.arrays = ShardedArrays(Path(cache_root) / f"text-{text_cache_key(cfg)}",
                                    {"encoder": str(path), "max_tokens": int(cfg.max_tokens)}, "text embeddings for text")
        self.dir = self.arrays.dir
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Embedding size (read from a stored item; loads the encoder config if the cache is empty)."""
        if self._dim is None:
            if len(self.arrays):
                self._dim = int(self.arrays.get(self.arrays.keys()[0]).shape[1])
            else:
                self._dim = int(json.loads((resolve_encoder_path(self.cfg.encoder) / "config.json").read_text())["hidden_size"])
        return self._dim

    def tokens(self, key: str) -> int:
        return self.arrays.rows(key)

    def get(self, key: str) -> np.ndarray:
        """(tokens, dim) float32 view: [CLS] first, [SEP] last."""
        return self.arrays.get(key)

    def missing(self, keys: list[str]) -> list[str]:
        return self.arrays.missing(keys)

    def ensure(self, texts: list[str], progress: bool = True, encoder: TextEncoder | None = None) -> int:
        """Encode every distinct text not cached yet. Returns how many were computed."""
        todo = {text_key(t): t for t in texts}
        todo = {k: t for k, t in todo.items() if k not in self.arrays}
        if not todo:
            return 0
        encoder = encoder or TextEncoder(self.cfg.encoder, self.cfg.max_tokens)
        items = sorted(todo.items(), key=lambda kv: len(kv[1]))  # similar lengths per batch: little padding
        bs = max(1, int(self.cfg.batch_size))
        pairs = (list(zip((k for k, _ in items[s:s + bs]), encoder.encode([t for _, t in items[s:s + bs]])))
                 for s in range(0, len(items), bs))
        with tqdm(total=len(items), desc="text embeddings", unit="text", disable=not progress) as bar:
            self.arrays.store_stream(pairs, SHARD_TEXTS, bar.update)
        self._dim = encoder.dim
        return len(items)
