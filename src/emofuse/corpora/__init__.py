"""Corpus parsers, registered by name: ``get_corpus("iemocap")``."""

from . import cremad, csv_corpus, emodb, esd, iemocap, meld, msppodcast, ravdess, savee, tess  # noqa: F401  (registration)
from .base import Candidate, ParseResult, Problem, get_corpus, list_corpora

__all__ = ["Candidate", "ParseResult", "Problem", "get_corpus", "list_corpora"]
