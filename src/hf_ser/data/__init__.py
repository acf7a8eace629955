"""Corpora: the MSP-Podcast builder (`load_msp_podcast`) and tiny synthetic corpora in its layout."""

from __future__ import annotations

from .msp_podcast import (
    EMOTION_CODES,
    SPLITS,
    MSPPodcast,
    MSPPodcastConfig,
    MSPPodcastError,
    PreparationReport,
    load_msp_podcast,
    normalise_primary,
    strip_transcript_prefix,
)
from .synthetic import make_tiny_corpus

__all__ = [
    "EMOTION_CODES",
    "SPLITS",
    "MSPPodcast",
    "MSPPodcastConfig",
    "MSPPodcastError",
    "PreparationReport",
    "load_msp_podcast",
    "make_tiny_corpus",
    "normalise_primary",
    "strip_transcript_prefix",
]
