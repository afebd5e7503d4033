"""One owner for a run's cached inputs: where the cache lives, the transcripts the text branch
reads, and computing what is missing (audio features, text embeddings). Training (open_run) and
``emofuse features`` both call these, so the paths and rules are spelled once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import EmofuseError
from ..features import FeatureStore, WhisperFeatureStore, feature_config, open_store
from ..manifest import Manifest
from ..text import TextConfig, TextStore, text_key


def cache_root(manifest: Manifest, cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``data.cache_dir`` when set, else ``<manifest folder>/cache``."""
    return Path(cache_dir) if cache_dir else manifest.path.parent / "cache"


def frontend_config(cfg: dict):
    """The run's front-end settings (``features:``): log-mel or Whisper encoder features."""
    return feature_config(cfg["features"])


def audio_store(cfg: dict, manifest: Manifest, cache_dir: str | Path | None = None) -> FeatureStore | WhisperFeatureStore:
    """The feature cache for this config's front end."""
    return open_store(cache_root(manifest, cache_dir), frontend_config(cfg))


def transcripts(manifest: Manifest, cfg: TextConfig) -> list[str]:
    """The manifest's transcripts for the text branch, one per row, after the ``text.missing`` rule.

    Raises:
        EmofuseError: the column is absent, or (with ``text.missing=error``) some rows are empty.
    """
    df = manifest.df
    col = cfg.read_column
    if col not in df.columns:
        if cfg.source == "asr":
            raise EmofuseError(f"{manifest.path}: no ASR transcripts (column {col!r}) for text.source=asr; run "
                               f"'emofuse transcribe {manifest.path.parent}' first")
        raise EmofuseError(f"{manifest.path}: no column {col!r} for text.column; columns are {list(df.columns)} "
                           "(for ASR text run 'emofuse transcribe' and set text.source=asr)")
    texts = df[col].fillna("").astype(str).str.strip()
    empty = df["utt_id"][texts == ""].tolist()
    if empty and cfg.missing == "error":
        raise EmofuseError(f"{manifest.path}: {len(empty)} utterances have no transcript in column {col!r} (first: "
                           f"{empty[0]}); add the transcripts, or set text.missing=empty to encode them as empty text")
    return texts.tolist()


@dataclass
class TextInputs:
    """What the text branch reads: its settings, one transcript per manifest row, their cache."""
    cfg: TextConfig
    texts: list[str]
    store: TextStore

    @property
    def keys(self) -> list[str]:
        return [text_key(t) for t in self.texts]


def text_inputs(cfg: dict, manifest: Manifest, cache_dir: str | Path | None = None) -> TextInputs:
    """The text branch's inputs (checks the transcripts; computes nothing)."""
    text_cfg = TextConfig.from_dict(cfg.get("text"))
    return TextInputs(text_cfg, transcripts(manifest, text_cfg), TextStore(cache_root(manifest, cache_dir), text_cfg))


def cache_audio(store, manifest: Manifest, workers: int | None = None) -> int:
    """Compute the features of every manifest clip not cached yet; returns how many were computed."""
    return store.ensure(manifest.df["audio_sha1"].tolist(), [manifest.audio_path(p) for p in manifest.df["path"]],
                        workers=workers)


def cache_features(manifest: Manifest, cfg: dict, cache_dir: str | Path | None = None, workers: int | None = None,
                   text: bool = False) -> list[str]:
    """``emofuse features``: cache a manifest's audio features (and text embeddings). Returns
    one line per cache saying what was computed."""
    store = audio_store(cfg, manifest, cache_dir)
    n = cache_audio(store, manifest, workers)
    lines = [f"{store.dir}: {n} utterances computed, {len(manifest.df) - n} already cached"]
    if text:
        ti = text_inputs(cfg, manifest, cache_dir)
        n = ti.store.ensure(ti.texts)
        lines.append(f"{ti.store.dir}: {n} distinct texts encoded, {len(set(ti.texts)) - n} already cached")
    return lines
