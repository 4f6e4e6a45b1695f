"""Shared data for the benchmark scripts: real BSD10k metadata features, cached on disk."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BSD10K_DIR = Path(
    os.environ.get("SKLEARN_MESH_BSD10K_DIR", REPO.parent / "shared" / "data" / "bsd10k-v1.0")
)
CACHE_DIR = Path(os.environ.get("SKLEARN_MESH_BENCH_CACHE", Path.home() / ".cache" / "sklearn_mesh"))


_RECIPE = "load_bsd_metadata(text_fields=(title, tags)) -> SentenceTextEmbedder() v1"


def bsd10k_metadata_path() -> Path:
    path = BSD10K_DIR / "metadata_train.csv"
    if not path.is_file():
        raise SystemExit(
            f"BSD10k metadata not found at {path}; set SKLEARN_MESH_BSD10K_DIR to the folder "
            "holding metadata_train.csv."
        )
    return path


def bsd10k_texts():
    """``(texts, y, ids)`` of the BSD10k v1.0 training metadata (title + tags)."""
    from sklearn_mesh.datasets import load_bsd_metadata

    meta = load_bsd_metadata(bsd10k_metadata_path(), text_fields=("title", "tags"))
    return list(meta.text), np.asarray(meta.target, dtype=object), np.asarray(meta.ids)


def bsd10k_text_features():
    """MiniLM (offline, 384-d) embeddings of title + tags, labels and ids.

    Returns ``(X float32 (n, 384), y object array, ids)``; cached under ``CACHE_DIR``
    keyed by the metadata file's content and the recipe above.
    """
    path = bsd10k_metadata_path()
    # the key covers the data and the recipe (text fields, embedder), so a cache written
    # by another recipe is never served as this one
    digest = hashlib.sha256(path.read_bytes() + _RECIPE.encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"bsd10k_minilm_{digest}.npz"
    if cache.is_file():
        data = np.load(cache, allow_pickle=True)
        return data["X"], data["y"], data["ids"]
    from sklearn_mesh.embedders import SentenceTextEmbedder

    texts, y, ids = bsd10k_texts()
    t0 = time.perf_counter()
    X = SentenceTextEmbedder().fit_transform(texts).astype(np.float32)
    print(f"[bench] embedded {len(texts)} texts in {time.perf_counter() - t0:.1f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, X=X, y=y, ids=ids)
    return X, y, ids
