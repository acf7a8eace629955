"""Shared fixtures: tiny random encoder configs (nothing is downloaded) and generated audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Tests never touch the network: any accidental Hub call fails fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.tiny import tiny_encoder_config, tiny_masp_config  # noqa: E402


@pytest.fixture
def encoder_config():
    return tiny_encoder_config("wavlm")


@pytest.fixture
def masp_config():
    return tiny_masp_config()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files worth looking at (screenshots, plots)."""
    path = Path(__file__).parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
