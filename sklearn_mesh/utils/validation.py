"""Target validation shared by every classifier of the package."""

from __future__ import annotations

import numpy as np

from ..taxonomy import Taxonomy, check_taxonomy


def check_hierarchical_targets(y, taxonomy=None):
    """Validate second-level labels against a taxonomy.

    Returns ``(y_idx, classes, taxonomy)``: leaf indices, the ``classes_`` array every
    estimator exposes, and the resolved taxonomy. ``classes`` always lists *all* leaves in
    taxonomy order — so a CV fold that lacks a class still yields every probability
    column — as leaf keys when ``y`` holds strings and as ``0 .. K-1`` when ``y`` holds
    taxonomy indices.

    Examples
    --------
    >>> from sklearn_mesh.utils.validation import check_hierarchical_targets
    >>> y_idx, classes, tax = check_hierarchical_targets(["fx-o", "m-sp"])
    >>> y_idx.tolist(), classes[:3].tolist(), len(classes)
    ([11, 0], ['m-sp', 'm-si', 'm-m'], 23)
    """
    taxonomy: Taxonomy = check_taxonomy(taxonomy)
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1:
        raise ValueError(
            f"y must be a 1-D array of second-level labels, got shape {y_arr.shape}. "
            "The hierarchy comes from the `taxonomy` parameter, not from a 2-D y."
        )
    y_idx = taxonomy.encode(y_arr)
    if y_arr.dtype.kind in "iuf":
        classes = np.arange(taxonomy.n_leaves)
    else:
        classes = np.asarray(taxonomy.leaves, dtype=object)
    return y_idx, classes, taxonomy


def check_classes_match(classes_a, classes_b, *, what="model") -> None:
    """Raise a clear error when two class orders differ (never silently realign)."""
    a, b = np.asarray(classes_a), np.asarray(classes_b)
    if a.shape != b.shape or not np.array_equal(a.astype(str), b.astype(str)):
        raise ValueError(
            f"The class order of {what} ({list(a)[:6]}...) differs from the expected "
            f"taxonomy order ({list(b)[:6]}...). Every model must use the same taxonomy; "
            "reorder its probability columns to the taxonomy order first."
        )


def check_sample_metadata(values, n_samples, *, name, hint=""):
    """Validate per-sample metadata (confidence, ids, groups): one value per row, 1-D.

    ``None`` passes through. A pandas Series or a single-column 2-D array is flattened.

    Examples
    --------
    >>> from sklearn_mesh.utils.validation import check_sample_metadata
    >>> check_sample_metadata([[5], [1]], 2, name="confidence").tolist()
    [5, 1]
    """
    if values is None:
        return None
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} must be a 1-D array with one value per sample ({n_samples}); got shape "
            f"{arr.shape}.{' ' + hint if hint else ''}"
        )
    return arr
