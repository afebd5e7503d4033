"""Audio front ends (a registry of feature kinds): log-mel, frozen Whisper (CTranslate2) and Hugging
Face encoder features, content-keyed caches, z-score normalisation."""

from .frontend import KINDS, Extractor, feature_config, open_store, pad_sequences
from .hf import HFEncoderConfig, HFFeatureStore
from .logmel import FrontendConfig, LogMel, mel_filterbank
from .normalize import Normalize, fit_stats
from .registry import FeatureKind, feature_kind, kind_of, list_features, model_args, register_feature
from .store import FeatureStore
from .whisper import WhisperFeatureConfig, WhisperFeatureStore

__all__ = ["FrontendConfig", "LogMel", "mel_filterbank", "Normalize", "fit_stats", "FeatureStore", "KINDS", "Extractor",
           "feature_config", "open_store", "pad_sequences", "WhisperFeatureConfig", "WhisperFeatureStore",
           "HFEncoderConfig", "HFFeatureStore", "FeatureKind", "feature_kind", "kind_of", "list_features", "model_args",
           "register_feature"]
