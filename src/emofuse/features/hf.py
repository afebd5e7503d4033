"""Hidden states of every layer of a local Hugging Face audio encoder, in the feature cache.

``features.kind=hf_encoder features.model=PATH`` reads any folder that ``transformers`` loads
with ``AutoModel`` (wav2vec2, HuBERT, WavLM, data2vec-audio, or a Whisper model, whose encoder
is used; ``emofuse convert-whisper`` turns the packaged CTranslate2 tiny.en into one). Nothing
is ever downloaded: a name that is not a local folder is refused.

Per clip the cache holds the hidden states of the configured layers (``layers``: indices into
``hidden_states``, 0 = the input of the first transformer layer; default all), trimmed to the
clip's real length (one frame per 20 ms), as one (T, n_layers * hidden) array: layer-major,
so ``x.view(T, n_layers, hidden)`` gives them back. Models with a layer axis
(``ssl_weighted``) learn a softmax-weighted sum of them; z-scoring is per layer and dimension.

Cost: 50 frames/s x hidden x bytes per value per layer: with ``dtype: float16`` (the default)
768-wide base models take 76.8 kB per second of audio per layer (13 layers: 1 MB/s, 3.6 GB per
hour); float32 doubles it. Extraction memory is bounded by ``batch_size`` x ``chunk_seconds``
(long clips are cut into chunks that are encoded separately and joined), plus one clip's output.

The cache key is the weights' content (config and every weight file, hashed in full), the
resolved layer list, the storage dtype and the chunk length, not the folder's location.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import EmofuseError
from ..shards import ShardedArrays
from .registry import FeatureKind, pad_sequences, register_feature
from .store import CachedFeatures

KIND = "hf_encoder"
SAMPLE_RATE = 16000
HOP = 320  # samples per output frame (20 ms) for every supported encoder
SHARD_UTTERANCES = 256
DTYPES = ("float16", "float32")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class HFEncoderConfig:
    """The ``features:`` group for Hugging Face encoder features.

    Attributes:
        model: a local model folder (``config.json`` + weights).
        layers: indices into the encoder's hidden states to keep (0: the input of the first
            transformer layer, n: the last layer's output; negative counts from the end);
            null keeps all of them.
        dtype: storage dtype, ``float16`` (half the disk) or ``float32``.
        device: ``auto`` (cuda when there is one), ``cpu`` or ``cuda``.
        batch_size: chunks per encoder call.
        chunk_seconds: clips longer than this are encoded in chunks of it (bounded memory);
            Whisper encoders always use 30 s windows.
    """

    kind: str = KIND
    model: str = ""
    layers: list[int] | None = None
    dtype: str = "float16"
    device: str = "auto"
    batch_size: int = 8
    chunk_seconds: float = 30.0

    sample_rate = SAMPLE_RATE
    hop_length = HOP

    def path(self) -> Path:
        return resolve_model_path(self.model)

    def spec(self) -> dict:
        """The encoder's width, hidden-state count and type, read from ``config.json`` alone."""
        return encoder_spec(self.path())

    def layer_ids(self) -> list[int]:
        """The kept hidden states as non-negative indices, checked against the model."""
        n = self.spec()["n_states"]
        if self.layers is None:
            return list(range(n))
        out = []
        for i in self.layers:
            j = int(i) + n if int(i) < 0 else int(i)
            if not 0 <= j < n:
                raise EmofuseError(f"features.layers={list(self.layers)}: {i} is out of range for {self.model} "
                                   f"({n} hidden states: 0..{n - 1}, or negative from the end)")
            out.append(j)
        return out

    def key(self) -> str:
        ident = {"kind": KIND, "weights": weights_fingerprint(self.path()), "layers": self.layer_ids(),
                 "dtype": self.dtype, "chunk": self.chunk_samples()}
        return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]

    def chunk_samples(self) -> int:
        if self.spec()["whisper"]:
            return 30 * SAMPLE_RATE
        return max(HOP, int(round(self.chunk_seconds * SAMPLE_RATE / HOP)) * HOP)

    def n_frames(self, n_samples: int) -> int:
        return max(1, n_samples // HOP)


def resolve_model_path(model: str | Path) -> Path:
    """The local model folder; a hub name (or anything that is not a folder with config.json) is refused."""
    if not str(model or ""):
        raise EmofuseError("features.model is not set: add features.model=PATH, a local Hugging Face audio encoder folder "
                           "(or 'emofuse convert-whisper tiny.en PATH' for the packaged Whisper)")
    path = Path(os.path.expanduser(str(model)))
    if not (path / "config.json").is_file():
        raise EmofuseError(f"features.model={model}: not a local Hugging Face model folder (no config.json there); "
                           "emofuse never downloads models, so give the folder's path (one saved with save_pretrained, "
                           "or 'emofuse convert-whisper' for the packaged Whisper tiny.en)")
    return path


def encoder_spec(path: Path) -> dict:
    """{"hidden": width, "n_states": hidden states (layers + 1), "whisper": bool, "model_type": str}."""
    cfg = json.loads((path / "config.json").read_text())
    whisper = cfg.get("model_type") == "whisper"
    hidden = int(cfg.get("d_model") if whisper else cfg.get("hidden_size", 0))
    layers = int(cfg.get("encoder_layers") if whisper else cfg.get("num_hidden_layers", 0))
    if hidden <= 0 or layers <= 0:
        raise EmofuseError(f"{path / 'config.json'}: no hidden size / layer count; is this an audio encoder "
                           "(wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper)?")
    return {"hidden": hidden, "n_states": layers + 1, "whisper": whisper, "model_type": cfg.get("model_type", "")}


_FINGERPRINTS: dict[tuple, str] = {}


def weights_fingerprint(path: Path) -> str:
    """sha1 over config.json and every weight file's bytes (memoised per size and mtime)."""
    files = [path / "config.json"] + sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if (path / "preprocessor_config.json").is_file():
        files.append(path / "preprocessor_config.json")
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if (path, stamp) not in _FINGERPRINTS:
        h = hashlib.sha1()
        for p in files:
            h.update(p.name.encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
        _FINGERPRINTS[(path, stamp)] = h.hexdigest()[:16]
    return _FINGERPRINTS[(path, stamp)]


def load_hf_encoder(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, object]:
    """(encoder module in eval mode, its config) from a local folder, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise EmofuseError("features.kind=hf_encoder needs the package transformers: pip install transformers") from None
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise EmofuseError(f"{path}: transformers could not load an audio encoder from this folder ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200]})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    enc = model.get_encoder() if getattr(model.config, "model_type", "") == "whisper" else model
    return enc.eval().to(device), model.config


def _do_normalize(path: Path) -> bool:
    """Whether the model expects zero-mean unit-variance waveforms (its feature extractor's setting)."""
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        return bool(json.loads(pre.read_text()).get("do_normalize", True))
    return True  # Wav2Vec2FeatureExtractor's default


class HFEncoder(nn.Module):
    """Waveform chunks -> hidden states of the kept layers, trimmed to each chunk's real frames.

    Args:
        path: local model folder.
        layer_ids: hidden-state indices to keep.
        device: where it runs.

    Shapes:
        chunks: list of (n_i,) float32 16 kHz waveforms, each at most one chunk long.
        returns: list of (T_i, n_layers, hidden) float32 tensors, T_i the chunk's real frames.
    """

    def __init__(self, path: Path, layer_ids: list[int], device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.path = path
        self.layer_ids = list(layer_ids)
        self.model, self.config = load_hf_encoder(path, device)
        self.whisper = getattr(self.config, "model_type", "") == "whisper"
        self.device_ = torch.device(device)
        if self.whisper:
            from ..pretrained.whisper import WhisperLogMel

            self.logmel = WhisperLogMel(int(self.config.num_mel_bins)).to(device)
        else:
            self.normalize = _do_normalize(path)
            # Models with group-norm convolutions (wav2vec2-base, HuBERT-base) take no attention mask, so
            # padding would change a clip's features: they get one clip per call.
            self.masked = getattr(self.config, "feat_extract_norm", "layer") == "layer"

    def forward(self, chunks: list[np.ndarray]) -> list[torch.Tensor]:
        if self.whisper:
            return self._whisper(chunks)
        if not self.masked and len(chunks) > 1:
            return [t for c in chunks for t in self._w2v([c])]
        return self._w2v(chunks)

    def _whisper(self, chunks: list[np.ndarray]) -> list[torch.Tensor]:
        from ..pretrained.whisper import CHUNK_SAMPLES, encoder_frames

        batch = torch.zeros(len(chunks), CHUNK_SAMPLES)
        for i, c in enumerate(chunks):
            batch[i, : len(c)] = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
        mel = self.logmel(batch.to(self.device_))  # (B, n_mels, 3000)
        states = self.model(mel, output_hidden_states=True).hidden_states  # n_states x (B, 1500, D)
        kept = torch.stack([states[i] for i in self.layer_ids], dim=2)  # (B, 1500, L, D)
        return [kept[b, : encoder_frames(len(c))].float() for b, c in enumerate(chunks)]

    def _w2v(self, chunks: list[np.ndarray]) -> list[torch.Tensor]:
        n = torch.tensor([max(len(c), 400) for c in chunks])  # one receptive field at least
        batch = torch.zeros(len(chunks), int(n.max()))
        for i, c in enumerate(chunks):
            w = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
            if self.normalize and len(w) > 1:
                w = (w - w.mean()) / torch.sqrt(w.var(unbiased=False) + 1e-7)
            batch[i, : len(w)] = w
        mask = (torch.arange(batch.shape[1])[None, :] < n[:, None]).long()
        out = self.model(batch.to(self.device_), attention_mask=mask.to(self.device_) if self.masked else None,
                         output_hidden_states=True)
        kept = torch.stack([out.hidden_states[i] for i in self.layer_ids], dim=2)  # (B, T, L, D)
        frames = self.model._get_feat_extract_output_lengths(n).tolist()
        return [kept[b, : max(1, int(f))].float() for b, f in enumerate(frames)]

    @torch.no_grad()
    def encode(self, waves: list[np.ndarray], chunk_samples: int, batch_size: int) -> list[np.ndarray]:
        """Whole clips -> (T_i, n_layers * hidden) float32 arrays (long clips chunk by chunk)."""
        pieces, owner = [], []
        for i, w in enumerate(waves):
            for s in range(0, max(len(w), 1), chunk_samples):
                pieces.append(w[s:s + chunk_samples])
                owner.append(i)
        outs: list[list[np.ndarray]] = [[] for _ in waves]
        for s in range(0, len(pieces), batch_size):
            for i, t in zip(owner[s:s + batch_size], self(pieces[s:s + batch_size])):
                outs[i].append(t.reshape(t.shape[0], -1).cpu().numpy())
        return [np.ascontiguousarray(np.concatenate(o, axis=0)) for o in outs]


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class HFFeatureStore(CachedFeatures):
    """Content-keyed hidden states of a Hugging Face encoder; the interface of ``FeatureStore``.

    Args:
        cache_root: the cache folder (shared with the other caches).
        cfg: model and extraction settings; the weights' fingerprint names the sub-folder.
    """

    def __init__(self, cache_root: str | Path, cfg: HFEncoderConfig) -> None:
        if cfg.dtype not in DTYPES:
            raise EmofuseError(f"features.dtype={cfg.dtype}: must be one of {list(DTYPES)}")
        self.cfg = cfg
        self.spec = cfg.spec()
        self.layer_ids = cfg.layer_ids()
        self.arrays = ShardedArrays(Path(cache_root) / f"hf-{cfg.key()}", self.describe(), "encoder features for audio")
        self.dir = self.arrays.dir
        self._model = None

    def describe(self) -> dict:
        """The settings with the layer list and the model folder resolved (so a checkpoint knows its
        layer count, and predict, serve and export find the encoder from any working directory)."""
        return {**asdict(self.cfg), "model": str(self.cfg.path().resolve()), "layers": self.layer_ids}

    @property
    def n_layers(self) -> int:
        return len(self.layer_ids)

    @property
    def dim(self) -> int:
        """Feature size per frame: n_layers * hidden (layer-major)."""
        return self.n_layers * self.spec["hidden"]

    def bytes_per_second(self) -> float:
        """Cache bytes per second of audio and per layer."""
        return SAMPLE_RATE / HOP * self.spec["hidden"] * np.dtype(self.cfg.dtype).itemsize

    def cost(self) -> str:
        per = self.bytes_per_second()
        return (f"{self.n_layers} layers x {self.spec['hidden']} dims in {self.cfg.dtype}: {per / 1e3:.1f} kB per second of "
                f"audio per layer, {per * self.n_layers / 1e6:.2f} MB/s in all "
                f"({per * self.n_layers * 3600 / 1e9:.2f} GB per hour)")

    def model(self) -> HFEncoder:
        if self._model is None:
            self._model = HFEncoder(self.cfg.path(), self.layer_ids, _device(self.cfg.device))
        return self._model

    def ensure(self, keys: list[str], paths: list[str | Path], workers: int | None = None, progress: bool = True) -> int:
        """Encode and store every clip not yet cached; returns how many were computed.

        Clips are decoded a batch at a time (sorted by size so similar lengths share a batch);
        ``workers`` is accepted for symmetry with ``FeatureStore`` (torch threads itself).
        """
        from ..audio import read_audio

        todo = {k: p for k, p in zip(keys, paths) if k not in self.arrays}
        if not todo:
            return 0
        items = sorted(todo.items(), key=lambda kv: Path(kv[1]).stat().st_size)
        bs = max(1, int(self.cfg.batch_size))
        print(f"emofuse: {self.cfg.model}: caching {self.cost()} in {self.dir}", file=sys.stderr)
        bar = tqdm(total=len(items), desc="encoder features", unit="utt", disable=not progress)
        t0, seconds = time.time(), 0.0
        enc, chunk = self.model(), self.cfg.chunk_samples()

        def chunks():
            nonlocal seconds
            for s in range(0, len(items), bs):
                part = items[s:s + bs]
                waves = [read_audio(p, SAMPLE_RATE) for _, p in part]
                seconds += sum(len(w) for w in waves) / SAMPLE_RATE
                feats = [f.astype(self.cfg.dtype) for f in enc.encode(waves, chunk, bs)]
                yield [(k, f) for (k, _), f in zip(part, feats)]

        try:
            n = self.arrays.store_stream(chunks(), SHARD_UTTERANCES, on_chunk=bar.update)
        finally:
            bar.close()
        took = time.time() - t0
        print(f"emofuse: {n} clips ({seconds:.0f} s of audio) encoded in {took:.1f} s "
              f"({seconds / max(took, 1e-9):.0f}x real time), {seconds * self.bytes_per_second() * self.n_layers / 1e6:.1f} MB",
              file=sys.stderr)
        return n


def _hf_encoder(cfg: HFEncoderConfig):
    enc = HFEncoder(cfg.path(), cfg.layer_ids(), _device(cfg.device))
    chunk, bs = cfg.chunk_samples(), max(1, int(cfg.batch_size))

    def encode(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        # the cache's storage dtype too, so new audio sees the values training saw
        feats = [torch.from_numpy(f.astype(cfg.dtype).astype(np.float32)) for f in enc.encode(waves, chunk, bs)]
        return pad_sequences(feats)

    return encode


def _check(cfg: HFEncoderConfig) -> None:
    if cfg.dtype not in DTYPES:
        raise EmofuseError(f"features.dtype={cfg.dtype}: must be one of {list(DTYPES)}")
    if cfg.device not in ("auto", "cpu", "cuda") and not str(cfg.device).startswith("cuda:"):
        raise EmofuseError(f"features.device={cfg.device}: must be auto, cpu or cuda")
    if cfg.chunk_seconds <= 0:
        raise EmofuseError(f"features.chunk_seconds={cfg.chunk_seconds}: must be positive")
    if cfg.model:  # unset in the shipped experiment; the run refuses it before any work
        cfg.layer_ids()  # the folder exists and the layers are in range


def _n_layers(cfg: HFEncoderConfig) -> dict:
    """The layer count, from the stored list (no folder needed) or the model's config."""
    return {"n_layers": len(cfg.layers) if cfg.layers is not None else cfg.spec()["n_states"],
            "encoder_path": cfg.model, "encoder_layers": cfg.layers if cfg.layers is not None else cfg.layer_ids()}


register_feature(FeatureKind(
    name=KIND, config=HFEncoderConfig, store=HFFeatureStore, encoder=_hf_encoder, what="encoder frames (all layers)",
    frame=("(batch, frames, n_layers * hidden) float32 hidden states of the kept encoder layers (layer-major: "
           "view as (batch, frames, n_layers, hidden)), 20 ms frames, zero past each length"),
    recipe=("mono 16 kHz through the Hugging Face encoder folder named by 'model' (emofuse.features.hf.HFEncoder): "
            "wav2vec2-style models take the waveform (zero-mean unit-variance per clip when the folder's feature "
            "extractor says do_normalize) in chunks of chunk_seconds; Whisper takes 30 s log-mel windows; the "
            "hidden states listed in 'layers' are trimmed to the clip's frames, joined over chunks and rounded to 'dtype'"),
    min_samples=lambda cfg: 400,
    dry_dim=lambda d: 384, model_args=_n_layers, check=_check))
