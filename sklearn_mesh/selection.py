"""Embedding-set selection by validation hF and diversity (MESH report, section 2.1).

MESH extracts many candidate embedding sets (backbone x checkpoint x pooling, the report's
Table 1) and keeps a final set "using validation hF and embedding diversity" (its Table 2).
:class:`EmbeddingSetSelector` makes that step a reusable, cross-validated transformer:

1. every **named feature block** (one backbone / pooling output: a transformer in a
   ``FeatureUnion`` / ``ColumnTransformer``, or a precomputed array) gets the
   cross-validated hF (mean and std over folds) of a reference classifier;
2. the pairwise **diversity** between blocks is measured both on the representations
   (linear CKA, Kornblith et al. 2019) and on the out-of-fold (OOF) predictions
   (disagreement rate and correlation of OOF probabilities);
3. a **greedy rule** starts from the best block and adds the block with the best
   ``hF + diversity_weight * diversity_gain`` until ``n_blocks`` blocks are chosen or no
   remaining block adds anything; ``diversity_weight=0`` is plain top-k by hF.

The selector then ``transform``\\ s X to the chosen blocks' columns, so it sits inside a
Pipeline right after the ``FeatureUnion`` that builds the candidate blocks.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, clone
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._compat import HasMethods, Interval, StrOptions, _fit_context, validate_data
from ._optional import require
from .metrics import HierarchicalScorer
from .utils.validation import check_hierarchical_targets

__all__ = [
    "EmbeddingSetSelector",
    "linear_cka",
    "plot_selection",
    "stack_blocks",
    "blocks_from_feature_names",
]

_MEASURES = ("cka", "disagreement", "correlation")


# --------------------------------------------------------------------------------------
# linear CKA
# --------------------------------------------------------------------------------------
def _cka_prepare(X):
    """Centre, scale to unit Frobenius norm and (when wide) compress a block for CKA.

    Returns ``None`` for a block without variance (CKA is undefined there), else
    ``(Z, ||Z^T Z||_F)`` with ``Z Z^T`` equal to the centred, scaled Gram matrix.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    X = X - X.mean(axis=0)
    scale = np.linalg.norm(X)
    if not np.isfinite(scale) or scale == 0.0:
        return None
    X = X / scale
    if X.shape[1] > X.shape[0]:
        # Only the Gram matrix matters: X X^T = (U S)(U S)^T, with at most n columns.
        U, s, _ = np.linalg.svd(X, full_matrices=False)
        X = U * s
    return X, float(np.linalg.norm(X.T @ X))


def _cka_prepared(a, b) -> float:
    if a is None or b is None:
        return float("nan")
    (Xa, na), (Xb, nb) = a, b
    if na == 0.0 or nb == 0.0:
        return float("nan")
    value = float(np.linalg.norm(Xb.T @ Xa) ** 2 / (na * nb))
    return min(max(value, 0.0), 1.0)


def linear_cka(X, Y) -> float:
    """Linear centred kernel alignment between two representations of the same samples.

    ``CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred
    ``Xc``, ``Yc`` (Kornblith et al., 2019): the similarity of the two sample-by-sample
    similarity structures. It is 1 for a block with itself, lies in [0, 1], and is
    invariant to orthogonal transforms and isotropic scaling of either block (not to
    arbitrary invertible linear maps).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
        The same samples (rows) in the same order.

    Returns
    -------
    cka : float
        NaN when a block is constant (no variance: CKA is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.selection import linear_cka
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> round(linear_cka(X, X), 6), round(linear_cka(X, 3 * X[:, ::-1]), 6)
    (1.0, 1.0)
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    Y = Y[:, None] if Y.ndim == 1 else Y
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must be 2-D with the same number of rows (samples); got shapes "
            f"{X.shape} and {Y.shape}."
        )
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must not contain NaN or infinity.")
    return _cka_prepared(_cka_prepare(X), _cka_prepare(Y))


# --------------------------------------------------------------------------------------
# block layout
# --------------------------------------------------------------------------------------
def stack_blocks(blocks):
    """Concatenate precomputed blocks into one 2-D array and record the layout.

    Parameters
    ----------
    blocks : mapping of str to array-like of shape (n_samples, n_features_block)
        Block name -> features; a 1-D array counts as one column.

    Returns
    -------
    X : ndarray of shape (n_samples, sum of n_features_block)
    layout : list of (name, slice)
        Pass it as ``EmbeddingSetSelector(blocks=layout)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.selection import stack_blocks
    >>> X, layout = stack_blocks({"clap": np.zeros((3, 2)), "minilm": np.ones((3, 4))})
    >>> X.shape, layout
    ((3, 6), [('clap', slice(0, 2, None)), ('minilm', slice(2, 6, None))])
    """
    if not isinstance(blocks, Mapping) or len(blocks) == 0:
        raise ValueError("blocks must be a non-empty mapping of block name -> 2-D array.")
    arrays, layout, start, n = [], [], 0, None
    for name, value in blocks.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"Block names must be non-empty strings, got {name!r}.")
        arr = np.asarray(value)
        arr = arr[:, None] if arr.ndim == 1 else arr
        if arr.ndim != 2:
            raise ValueError(f"Block {name!r} must be 2-D, got shape {arr.shape}.")
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            raise ValueError(
                f"Block {name!r} has {arr.shape[0]} rows but the first block has {n}; "
                "every block must describe the same samples in the same order."
            )
        arrays.append(arr)
        layout.append((name, slice(start, start + arr.shape[1])))
        start += arr.shape[1]
    return np.hstack(arrays), layout


def blocks_from_feature_names(feature_names, sep="__"):
    """Group feature names ``"<block>__<feature>"`` (FeatureUnion / ColumnTransformer style).

    Returns a list of ``(block name, column indices)`` in order of first appearance.

    Examples
    --------
    >>> from sklearn_mesh.selection import blocks_from_feature_names
    >>> blocks_from_feature_names(["a__x0", "a__x1", "b__pca0"])
    [('a', [0, 1]), ('b', [2])]
    """
    names = [str(f) for f in feature_names]
    bad = [f for f in names if sep not in f or f.startswith(sep)]
    if bad:
        raise ValueError(
            f"Cannot infer the blocks: {len(bad)} feature name(s) have no '<block>{sep}' "
            f"prefix (e.g. {bad[:3]}). FeatureUnion / ColumnTransformer write such names "
            "with verbose_feature_names_out=True (the default) when their output is a "
            "DataFrame (set_output(transform='pandas')); otherwise pass `blocks` explicitly."
        )
    groups: dict[str, list[int]] = {}
    for j, f in enumerate(names):
        groups.setdefault(f.split(sep, 1)[0], []).append(j)
    return list(groups.items())


def _resolve_blocks(spec, n_features, feature_names):
    """Normalise a block specification to ``[(name, int column indices), ...]``."""
    if spec is None or (isinstance(spec, str) and spec == "infer"):
        if feature_names is None:
            raise ValueError(
                "blocks=None infers the blocks from feature-name prefixes such as "
                "'clap__x0', but X has no feature names (a NumPy array). Give X as a "
                "DataFrame (set_output(transform='pandas') on the upstream FeatureUnion / "
                "ColumnTransformer), pass a mapping of name -> array, or pass `blocks` "
                "explicitly, e.g. blocks={'clap': slice(0, 512), 'minilm': slice(512, None)}."
            )
        items = blocks_from_feature_names(feature_names)
    elif isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = list(spec)
        for item in items:
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise ValueError(
                    "blocks must be None/'infer', a mapping name -> columns, or a list of "
                    f"(name, columns) pairs; got the element {item!r}."
                )
    if not items:
        raise ValueError("blocks is empty: give at least one named block of columns.")
    all_columns = np.arange(n_features)
    name_to_index = (
        {str(f): j for j, f in enumerate(feature_names)} if feature_names is not None else {}
    )
    resolved, seen = [], set()
    for name, columns in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Block names must be non-empty strings, got {name!r}.")
        if name in seen:
            raise ValueError(f"Block name {name!r} is used twice; block names must be unique.")
        seen.add(name)
        if isinstance(columns, str):
            columns = [columns]
        if isinstance(columns, slice) or isinstance(columns, numbers.Integral):
            idx = np.atleast_1d(all_columns[columns])
        else:
            cols = np.asarray(columns)
            if cols.dtype.kind in "OUS":
                missing = [c for c in cols.tolist() if str(c) not in name_to_index]
                if missing:
                    raise ValueError(
                        f"Block {name!r} names columns that are not in X (e.g. {missing[:3]}); "
                        "column names only work when X is a DataFrame with those columns."
                    )
                idx = np.array([name_to_index[str(c)] for c in cols.tolist()], dtype=np.intp)
            elif cols.dtype.kind == "b":
                if cols.shape != (n_features,):
                    raise ValueError(
                        f"The boolean mask of block {name!r} has shape {cols.shape}, but X "
                        f"has {n_features} feature(s)."
                    )
                idx = np.flatnonzero(cols)
            elif cols.dtype.kind in "iu":
                if cols.size and (cols.max() >= n_features or cols.min() < -n_features):
                    raise ValueError(
                        f"Block {name!r} refers to column {int(cols.max())}, but X has "
                        f"{n_features} feature(s)."
                    )
                idx = all_columns[cols.ravel()]
            else:
                raise ValueError(
                    f"The columns of block {name!r} must be a slice, integer indices, a "
                    f"boolean mask or column names; got {columns!r}."
                )
        if idx.size == 0:
            raise ValueError(
                f"Block {name!r} selects no column: X has {n_features} feature(s). Check "
                "the block layout against the number of columns of X."
            )
        resolved.append((name, np.asarray(idx, dtype=np.intp)))
    return resolved


# --------------------------------------------------------------------------------------
# cross-validation of one block on one fold
# --------------------------------------------------------------------------------------
def _fit_fold(estimator, X_block, y_idx, train, test, n_classes):
    """Fit on ``train`` and return (predicted leaf indices, probabilities) on ``test``."""
    y_train = y_idx[train]
    proba = np.zeros((len(test), n_classes))
    seen = np.unique(y_train)
    if seen.size == 1:
        # A fold with a single class: a constant prediction (most classifiers refuse).
        pred = np.full(len(test), seen[0])
        proba[:, seen[0]] = 1.0
        return pred, proba
    est = clone(estimator).fit(X_block[train], y_train)
    pred = np.asarray(est.predict(X_block[test])).astype(np.intp)
    classes = np.asarray(getattr(est, "classes_", seen)).astype(np.intp)
    if hasattr(est, "predict_proba"):
        proba[:, classes] = np.asarray(est.predict_proba(X_block[test]))
    else:
        proba[np.arange(len(test)), pred] = 1.0
    return pred, proba


def _column_centred_correlation(P, Q) -> float:
    P = P - P.mean(axis=0)
    Q = Q - Q.mean(axis=0)
    denom = np.linalg.norm(P) * np.linalg.norm(Q)
    if denom == 0.0:
        return float("nan")
    return float(np.clip(np.sum(P * Q) / denom, -1.0, 1.0))


def _diversity_matrix(diversity_, measure):
    """Pairwise *diversity* (0 = redundant) used by the selection rule; NaN -> 0."""
    parts = {
        "cka": 1.0 - diversity_["cka"].to_numpy(),
        "disagreement": diversity_["disagreement"].to_numpy(),
        "correlation": np.clip(1.0 - diversity_["correlation"].to_numpy(), 0.0, None),
    }
    D = np.mean([parts[m] for m in _MEASURES], axis=0) if measure == "mean" else parts[measure]
    # Undefined similarity (a constant block / constant predictions) counts as "adds nothing".
    return np.where(np.isfinite(D), np.clip(D, 0.0, None), 0.0)


def _greedy_select(hf, D, n_blocks, weight, min_diversity):
    """Greedy forward selection; returns (order, path rows).

    Step 1 takes the best block by hF. Each later step takes the remaining block with
    the largest ``hf + weight * gain`` where ``gain`` is its diversity to the *closest*
    already selected block. Under ``weight > 0`` a block with ``gain <= min_diversity``
    adds nothing (a duplicate has gain 0) and is never taken; selection stops when no
    block is left or ``n_blocks`` are chosen. With ``weight == 0`` this is top-k by hF
    (ties broken by block order).
    """
    n = len(hf)
    limit = n if n_blocks is None else min(int(n_blocks), n)
    order, path = [], []
    remaining = list(range(n))
    while remaining and len(order) < limit:
        if not order:
            gains = np.zeros(len(remaining))
        else:
            gains = D[np.ix_(remaining, order)].min(axis=1)
        scores = hf[remaining] + weight * gains
        eligible = np.ones(len(remaining), dtype=bool)
        if order and weight > 0:
            eligible = gains > min_diversity
        if not eligible.any():
            break
        masked = np.where(eligible, scores, -np.inf)
        pos = int(np.argmax(masked))  # first maximum: deterministic tie-breaking
        j = remaining.pop(pos)
        order.append(j)
        path.append((j, float(hf[j]), float(gains[pos]), float(scores[pos])))
    return order, path


# --------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------
class EmbeddingSetSelector(SelectorMixin, BaseEstimator):
    """Select a set of named feature blocks by cross-validated hF and diversity.

    Each block (one embedding set: backbone / checkpoint / pooling) is scored by the
    cross-validated hierarchical F-score of a reference classifier trained on that block
    alone; the blocks' pairwise diversity is measured on the representations (linear CKA)
    and on the out-of-fold predictions (disagreement, correlation). A greedy rule then
    picks the set (see ``diversity_weight``). ``transform`` keeps the chosen blocks'
    columns (in their original column order).

    Parameters
    ----------
    blocks : None, "infer", mapping or list of (name, columns), default=None
        The named column groups of X. ``None`` / ``"infer"`` reads them from feature-name
        prefixes ``"<block>__<feature>"`` as written by ``FeatureUnion`` /
        ``ColumnTransformer`` (X must then be a DataFrame, e.g. after
        ``set_output(transform="pandas")``). Columns of a block may be a slice, integer
        indices, a boolean mask or column names (DataFrame X). ``fit`` / ``transform``
        also accept X as a mapping name -> array (then leave ``blocks=None``); see
        :func:`stack_blocks`.
    estimator : estimator, default=None
        Reference classifier fitted on each block in each fold; ``None`` means
        ``make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))``
        (a fast, fairly strongly regularised linear probe: with ``C=1`` it overfits
        384-d sentence embeddings of BSD10k by about 5 hF points). It is fitted
        on taxonomy leaf indices; its ``predict_proba`` (if any) feeds the probability
        correlation. Give it a fixed ``random_state`` if it is stochastic.
    n_blocks : int, default=None
        Maximum number of blocks to select; ``None`` continues until no block adds
        diversity (under ``diversity_weight=0``: every block, ranked by hF).
    diversity_weight : float, default=0.1
        Weight ``w`` of the diversity gain against hF (hF and the diversities lie in
        [0, 1]; ``1 - correlation`` in [0, 2]). ``0`` gives plain top-``n_blocks`` by hF.
    diversity : {"cka", "disagreement", "correlation", "mean"}, default="cka"
        Pairwise diversity used by the rule: ``1 - CKA`` of the representations, the
        OOF prediction disagreement rate, ``1 - correlation`` of the (column-centred) OOF
        probabilities, or the mean of the three.
    min_diversity : float, default=1e-6
        Under ``diversity_weight > 0`` a block whose diversity to the closest selected
        block is at most this adds nothing and is never selected (a duplicated or merely
        rotated/rescaled block has diversity 0).
    cv : int, cross-validation generator or iterable, default=5
        Folds for the OOF predictions; an int means ``StratifiedKFold(cv, shuffle=True,
        random_state=random_state)``. The same folds serve every block.
    scoring : HierarchicalScorer, default=None
        Scorer whose ``score_predictions`` turns fold predictions into a score; ``None``
        is the hF of :mod:`sklearn_mesh.metrics` with this ``taxonomy``.
    taxonomy : Taxonomy, default=None
        The label hierarchy; ``None`` means BST.
    cka_max_samples : int, default=3000
        CKA uses a random subsample of this many rows (the same rows for every block,
        drawn with ``random_state``) when X has more rows; ``None`` uses every row.
    n_jobs : int, default=None
        Parallel jobs over (block, fold) fits (joblib).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds (int ``cv``) and the CKA subsample.

    Attributes
    ----------
    blocks_ : list of (str, ndarray)
        Block names and their column indices.
    scores_ : DataFrame
        One row per block (index = block name): ``hf_mean``, ``hf_std`` (over folds),
        ``hf_oof`` (on all OOF predictions pooled), ``n_features``, ``rank``.
    cv_scores_ : DataFrame
        Per-fold scores, blocks x folds.
    diversity_ : dict of str to DataFrame
        Block x block matrices: ``"cka"`` (linear CKA similarity), ``"disagreement"``
        (OOF prediction disagreement rate) and ``"correlation"`` (correlation of the
        column-centred OOF probabilities).
    diversity_matrix_ : DataFrame
        The pairwise diversity the selection rule used (see ``diversity``).
    selection_path_ : DataFrame
        One row per step: ``block``, ``hf_mean``, ``diversity_gain``, ``score``.
    selected_ : list of str
        Selected block names in selection order.
    support_ : ndarray of bool of shape (n_features_in_,)
        Columns kept by ``transform``.
    oof_predictions_ : dict of str to ndarray of shape (n_samples,)
        OOF label predictions per block (labels as in ``classes_``).
    oof_proba_ : dict of str to ndarray of shape (n_samples, n_classes)
        OOF probabilities per block, columns in ``classes_`` order.
    classes_ : ndarray
        All taxonomy leaves (strings or indices, like y).
    cka_sample_indices_ : ndarray
        Rows used for CKA.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.selection import EmbeddingSetSelector
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["m-sp", "fx-o", "sp-s"], 20)
    >>> good = np.eye(3)[np.searchsorted(["fx-o", "m-sp", "sp-s"], y)] + rng.normal(0, .3, (60, 3))
    >>> noise = rng.normal(size=(60, 3))
    >>> X = np.hstack([good, noise, good])  # the third block duplicates the first
    >>> sel = EmbeddingSetSelector(
    ...     blocks={"good": slice(0, 3), "noise": slice(3, 6), "copy": slice(6, 9)},
    ...     n_blocks=2, diversity_weight=0.1, cv=3, random_state=0).fit(X, y)
    >>> sel.selected_
    ['good', 'noise']
    >>> sel.transform(X).shape
    (60, 6)
    """

    _parameter_constraints: dict = {
        "blocks": [None, StrOptions({"infer"}), dict, list, tuple],
        "estimator": [None, HasMethods(["fit", "predict"])],
        "n_blocks": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "diversity_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "diversity": [StrOptions({"cka", "disagreement", "correlation", "mean"})],
        "min_diversity": [Interval(numbers.Real, 0, None, closed="left")],
        "cv": ["cv_object"],
        "scoring": [None, HasMethods(["score_predictions"])],
        "taxonomy": "no_validation",
        "cka_max_samples": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        blocks=None,
        *,
        estimator=None,
        n_blocks=None,
        diversity_weight=0.1,
        diversity="cka",
        min_diversity=1e-6,
        cv=5,
        scoring=None,
        taxonomy=None,
        cka_max_samples=3000,
        n_jobs=None,
        random_state=None,
    ):
        self.blocks = blocks
        self.estimator = estimator
        self.n_blocks = n_blocks
        self.diversity_weight = diversity_weight
        self.diversity = diversity
        self.min_diversity = min_diversity
        self.cv = cv
        self.scoring = scoring
        self.taxonomy = taxonomy
        self.cka_max_samples = cka_max_samples
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ---- helpers ------------------------------------------------------------------
    def _stack_mapping(self, X, *, fitting):
        """Turn a mapping name -> array into (array, layout); pass anything else through."""
        if not isinstance(X, Mapping) or issparse(X):  # a scipy DOK matrix is a dict
            return X, None
        if fitting and self.blocks is not None:
            raise ValueError(
                "X is a mapping of blocks, which defines the layout itself: leave "
                "blocks=None (or pass one concatenated array together with `blocks`)."
            )
        if not fitting:
            expected = [name for name, _ in self.blocks_]
            if list(X) != expected:
                raise ValueError(
                    f"X has the blocks {list(X)} but the selector was fitted on {expected} "
                    "(same names in the same order are required)."
                )
        return stack_blocks(X)

    def _default_estimator(self):
        if self.estimator is not None:
            return self.estimator
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))

    def _make_cv(self, y_idx):
        if isinstance(self.cv, numbers.Integral):
            return StratifiedKFold(
                n_splits=int(self.cv), shuffle=True, random_state=self.random_state
            )
        return check_cv(self.cv, y_idx, classifier=True)

    # ---- fit ----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None):
        """Score every block by CV, measure diversity, and select the block set.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), or mapping of str
            to array-like
            All candidate blocks side by side, or a mapping block name -> array.
        y : array-like of shape (n_samples,)
            Second-level labels (keys or taxonomy indices).
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` (e.g. ``GroupKFold`` by uploader).

        Returns
        -------
        self : EmbeddingSetSelector
        """
        X, layout = self._stack_mapping(X, fitting=True)
        X, y = validate_data(self, X, y, dtype="numeric", accept_sparse=False)
        type_of_target(y, input_name="y", raise_unknown=True)
        y_idx, classes, taxonomy = check_hierarchical_targets(y, self.taxonomy)
        n_samples = X.shape[0]
        names_in = getattr(self, "feature_names_in_", None)
        self.blocks_ = _resolve_blocks(
            layout if layout is not None else self.blocks, X.shape[1], names_in
        )
        self.classes_ = classes
        names = [name for name, _ in self.blocks_]
        n_classes = taxonomy.n_leaves

        cv = self._make_cv(y_idx)
        n_splits = cv.get_n_splits(X, y_idx, groups)
        if n_samples < 2 or n_samples < n_splits:
            raise ValueError(
                f"EmbeddingSetSelector needs at least as many samples as CV folds "
                f"({n_splits}); got n_samples={n_samples}."
            )
        splits = list(cv.split(X, y_idx, groups))
        estimator = self._default_estimator()
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_fold)(estimator, X[:, cols], y_idx, train, test, n_classes)
            for _, cols in self.blocks_
            for train, test in splits
        )
        scorer = self.scoring
        if scorer is None:
            scorer = HierarchicalScorer("hf", taxonomy=taxonomy)

        fold_scores = np.zeros((len(names), len(splits)))
        oof_pred = np.full((len(names), n_samples), -1, dtype=np.intp)
        oof_proba = np.zeros((len(names), n_samples, n_classes))
        covered = np.zeros(n_samples, dtype=bool)
        it = iter(results)
        for b in range(len(names)):
            for f, (_, test) in enumerate(splits):
                pred, proba = next(it)
                oof_pred[b, test] = pred
                oof_proba[b, test] = proba
                covered[test] = True
                fold_scores[b, f] = scorer.score_predictions(y_idx[test], pred)
        if not covered.all():
            warnings.warn(
                f"The CV splits leave {int((~covered).sum())} sample(s) out of every test "
                "fold; OOF diversity uses the covered samples only.",
                UserWarning,
            )
        hf_oof = [
            scorer.score_predictions(y_idx[covered], oof_pred[b, covered])
            for b in range(len(names))
        ]
        hf_mean = fold_scores.mean(axis=1)
        self.cv_scores_ = pd.DataFrame(
            fold_scores, index=pd.Index(names, name="block"),
            columns=[f"fold{f}" for f in range(len(splits))],
        )
        scores = pd.DataFrame(
            {
                "hf_mean": hf_mean,
                "hf_std": fold_scores.std(axis=1),
                "hf_oof": hf_oof,
                "n_features": [len(cols) for _, cols in self.blocks_],
            },
            index=pd.Index(names, name="block"),
        )
        scores["rank"] = np.argsort(np.argsort(-hf_mean, kind="stable"), kind="stable") + 1
        self.scores_ = scores

        # ---- diversity ----
        rng = check_random_state(self.random_state)
        if self.cka_max_samples is not None and n_samples > self.cka_max_samples:
            rows = np.sort(rng.choice(n_samples, size=self.cka_max_samples, replace=False))
        else:
            rows = np.arange(n_samples)
        self.cka_sample_indices_ = rows
        prepared = [_cka_prepare(X[np.ix_(rows, cols)]) for _, cols in self.blocks_]
        nb = len(names)
        cka = np.eye(nb)
        disagreement = np.zeros((nb, nb))
        correlation = np.eye(nb)
        for a in range(nb):
            if prepared[a] is None:
                cka[a, a] = np.nan
            for b in range(a + 1, nb):
                cka[a, b] = cka[b, a] = _cka_prepared(prepared[a], prepared[b])
                disagreement[a, b] = disagreement[b, a] = float(
                    np.mean(oof_pred[a, covered] != oof_pred[b, covered])
                )
                correlation[a, b] = correlation[b, a] = _column_centred_correlation(
                    oof_proba[a, covered], oof_proba[b, covered]
                )
        frame = lambda M: pd.DataFrame(M, index=names, columns=names)  # noqa: E731
        self.diversity_ = {
            "cka": frame(cka),
            "disagreement": frame(disagreement),
            "correlation": frame(correlation),
        }
        self.diversity_matrix_ = frame(_diversity_matrix(self.diversity_, self.diversity))

        # ---- selection ----
        self.selection_path_ = self._select_path()
        self.selected_ = list(self.selection_path_["block"])
        order = [names.index(n) for n in self.selected_]
        support = np.zeros(X.shape[1], dtype=bool)
        for j in order:
            support[self.blocks_[j][1]] = True
        self.support_ = support
        self.oof_predictions_ = {n: classes[oof_pred[b]] for b, n in enumerate(names)}
        self.oof_proba_ = {n: oof_proba[b] for b, n in enumerate(names)}
        return self

    def _select_path(self, n_blocks="fitted", diversity_weight=None, diversity=None,
                     min_diversity=None):
        names = list(self.scores_.index)
        if diversity is None or diversity == self.diversity:
            D = self.diversity_matrix_.to_numpy()
        else:
            if diversity not in ("cka", "disagreement", "correlation", "mean"):
                raise ValueError(
                    "diversity must be 'cka', 'disagreement', 'correlation' or 'mean', got "
                    f"{diversity!r}."
                )
            D = _diversity_matrix(self.diversity_, diversity)
        n_blocks = self.n_blocks if n_blocks == "fitted" else n_blocks
        if n_blocks is not None and (not isinstance(n_blocks, numbers.Integral) or n_blocks < 1):
            raise ValueError(f"n_blocks must be None or an int >= 1, got {n_blocks!r}.")
        weight = self.diversity_weight if diversity_weight is None else diversity_weight
        if not (isinstance(weight, numbers.Real) and weight >= 0):
            raise ValueError(f"diversity_weight must be a float >= 0, got {weight!r}.")
        tol = self.min_diversity if min_diversity is None else min_diversity
        order, path = _greedy_select(
            self.scores_["hf_mean"].to_numpy(), D, n_blocks, float(weight), float(tol)
        )
        return pd.DataFrame(
            [(names[j], h, g, s) for j, h, g, s in path],
            columns=["block", "hf_mean", "diversity_gain", "score"],
        )

    def select(self, *, n_blocks="fitted", diversity_weight=None, diversity=None,
               min_diversity=None):
        """Re-run the selection rule on the fitted scores with other settings.

        Nothing is refitted and the fitted selection is left unchanged: use it to see
        what another weight or set size would pick. Arguments left out take the
        estimator's own values.

        Returns
        -------
        selected : list of str
            Block names in selection order.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_mesh.selection import EmbeddingSetSelector
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(40, 3)), np.repeat(["m-sp", "fx-o"], 20)
        >>> sel = EmbeddingSetSelector(blocks={"a": [0], "b": [1], "c": [2]}, cv=2,
        ...                            random_state=0).fit(X, y)
        >>> len(sel.select(n_blocks=2, diversity_weight=0.0))
        2
        """
        check_is_fitted(self)
        return list(
            self._select_path(n_blocks, diversity_weight, diversity, min_diversity)["block"]
        )

    # ---- transform ----------------------------------------------------------------
    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_

    def transform(self, X):
        """Keep only the columns of the selected blocks (original column order).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features_in_), or mapping
            The same layout as in ``fit``.

        Returns
        -------
        X_selected : ndarray or DataFrame of shape (n_samples, n_selected_features)
        """
        check_is_fitted(self)
        X, _ = self._stack_mapping(X, fitting=False)
        return super().transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the kept columns, each prefixed by its block name.

        A name that already starts with ``"<block>__"`` (FeatureUnion style) is kept as
        is; otherwise ``"<block>__<input name>"`` (input names default to ``x0, x1, ...``).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input feature names; must match ``feature_names_in_`` when that exists.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        n = self.n_features_in_
        if input_features is None:
            names_in = getattr(self, "feature_names_in_", None)
            if names_in is None:
                names_in = np.array([f"x{i}" for i in range(n)], dtype=object)
        else:
            names_in = np.asarray(input_features, dtype=object)
            if names_in.shape != (n,):
                raise ValueError(
                    f"input_features should have length equal to number of features "
                    f"({n}), got {len(names_in)}"
                )
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and not np.array_equal(fitted, names_in):
                raise ValueError("input_features is not equal to feature_names_in_")
        owner = np.full(n, None, dtype=object)
        for name, cols in self.blocks_:
            if name in self.selected_:
                for c in cols:
                    if owner[c] is None:
                        owner[c] = name
        out = []
        for j in np.flatnonzero(self.support_):
            block, feat = owner[j], str(names_in[j])
            out.append(feat if feat.startswith(f"{block}__") else f"{block}__{feat}")
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# --------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------
def plot_selection(selector, *, measure="cka", axes=None):
    """Per-block hF bars (± std, selected blocks highlighted) and a diversity heat map.

    Parameters
    ----------
    selector : fitted EmbeddingSetSelector
    measure : {"cka", "disagreement", "correlation", "used"}, default="cka"
        Which matrix of ``diversity_`` to draw; ``"used"`` draws ``diversity_matrix_``.
    axes : pair of matplotlib Axes, default=None
        Where to draw; a new figure with two panels when None.

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.selection import EmbeddingSetSelector, plot_selection
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(40, 4)), np.repeat(["m-sp", "fx-o"], 20)
    >>> sel = EmbeddingSetSelector(blocks={"a": [0, 1], "b": [2, 3]}, cv=2,
    ...                            random_state=0).fit(X, y)
    >>> fig = plot_selection(sel)
    >>> len(fig.axes) >= 2
    True
    """
    plt = require("matplotlib.pyplot", "plot", purpose="plot_selection")
    check_is_fitted(selector, "scores_")
    if measure == "used":
        M = selector.diversity_matrix_
    elif measure in selector.diversity_:
        M = selector.diversity_[measure]
    else:
        raise ValueError(
            f"measure must be one of {[*selector.diversity_, 'used']}, got {measure!r}."
        )
    if axes is None:
        n = len(selector.scores_)
        fig, axes = plt.subplots(1, 2, figsize=(4 + 0.9 * n, 3 + 0.35 * n))
    else:
        fig = axes[0].figure
    ax_bar, ax_map = axes
    scores = selector.scores_
    names = list(scores.index)
    chosen = set(selector.selected_)
    colors = ["tab:orange" if n in chosen else "tab:gray" for n in names]
    ax_bar.bar(range(len(names)), scores["hf_mean"], yerr=scores["hf_std"], color=colors,
               capsize=3)
    ax_bar.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax_bar.set_ylabel("CV hF (mean ± std)")
    ax_bar.set_title("per-block hF (orange: selected)")
    low = float(np.nanmin(scores["hf_mean"] - scores["hf_std"]))
    ax_bar.set_ylim(max(0.0, low - 0.05), min(1.0, float(np.nanmax(scores["hf_mean"])) + 0.05))
    image = ax_map.imshow(M.to_numpy(dtype=float), cmap="viridis", vmin=0.0,
                          vmax=max(1.0, float(np.nanmax(M.to_numpy(dtype=float)))))
    ax_map.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax_map.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            v = M.iloc[i, j]
            if np.isfinite(v):
                shade = "k" if v > 0.6 * max(1.0, float(np.nanmax(M.to_numpy(dtype=float)))) else "w"
                ax_map.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color=shade)
    ax_map.set_title("linear CKA" if measure == "cka" else measure)
    fig.colorbar(image, ax=ax_map, fraction=0.046)
    fig.tight_layout()
    return fig


def _check_instances():
    """Small configurations for ``parametrize_with_checks`` (see tests/test_common.py)."""
    return [
        (
            EmbeddingSetSelector(
                blocks=[("first", slice(0, 1)), ("rest", slice(1, None))],
                n_blocks=1,
                cv=2,
                random_state=0,
            ),
            {},
        ),
    ]
