"""Corpus parsers, registered by name: ``get_corpus("iemocap")``."""

from . import csv_corpus, iemocap, ravdess  # noqa: F401  (registration)
from .base import Candidate, ParseResult, Problem, get_corpus, list_corpora

__all__ = ["Candidate", "ParseResult", "Problem", "get_corpus", "list_corpora"]
