"""Audio front end: log-mel module, content-keyed feature cache, z-score normalisation."""

from .logmel import FrontendConfig, LogMel, mel_filterbank
from .normalize import Normalize, fit_stats
from .store import FeatureStore

__all__ = ["FrontendConfig", "LogMel", "mel_filterbank", "Normalize", "fit_stats", "FeatureStore"]
