"""Audio front ends: log-mel module, Whisper encoder features, content-keyed caches, z-score normalisation."""

from .frontend import KINDS, Extractor, feature_config, open_store, pad_sequences
from .logmel import FrontendConfig, LogMel, mel_filterbank
from .normalize import Normalize, fit_stats
from .store import FeatureStore
from .whisper import WhisperFeatureConfig, WhisperFeatureStore

__all__ = ["FrontendConfig", "LogMel", "mel_filterbank", "Normalize", "fit_stats", "FeatureStore", "KINDS", "Extractor",
           "feature_config", "open_store", "pad_sequences", "WhisperFeatureConfig", "WhisperFeatureStore"]
