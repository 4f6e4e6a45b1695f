"""Shared fixtures: seeds, paths to the real BSD10k metadata, small data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
BSD10K_DIR = Path(os.environ.get("SKLEARN_MESH_BSD10K_DIR", REPO.parent / "shared" / "data" / "bsd10k-v1.0"))


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def bsd10k_dir():
    """Folder of the real BSD10k v1.0 metadata; skips when absent."""
    if not (BSD10K_DIR / "metadata_train.csv").is_file():
        pytest.skip(f"real BSD10k metadata not found at {BSD10K_DIR}")
    return BSD10K_DIR
