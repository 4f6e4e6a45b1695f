"""Greedy forward selection over out-of-fold (OOF) outputs, with weight optimisation.

Paper section 2.4 ("OOF-based ensemble"): every candidate model produces out-of-fold
softmax outputs from 5-fold training; members are added one at a time by greedy forward
selection maximising hF; after every step the member weights are re-optimised with SciPy
Nelder–Mead (softmax-parametrised); the final ensemble is the step with the best optimised
score. Caruana et al. (2004) add selection *with replacement*; auto-sklearn's
``EnsembleSelection`` is that variant without weight optimisation
(``optimize_weights=False, with_replacement=True`` here).

Two ways in:

* :meth:`GreedyOOFEnsemble.fit` takes candidate *estimators*, computes their OOF
  probabilities itself, selects, then refits the selected members on all data;
* :meth:`GreedyOOFEnsemble.fit_oof` takes OOF probabilities computed elsewhere (for
  example cached by a long training run) and :meth:`GreedyOOFEnsemble.predict_proba_from`
  combines the matching test-time outputs.

Alignment is never guessed. Probability columns must follow the taxonomy order (checked
against ``classes_`` or DataFrame columns), every candidate must have the same number of
rows, and when sample ids are available (a DataFrame index, or ``ids=``) they must match
in order. Any mismatch is an error that says what differs.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._compat import HasMethods, Interval, StrOptions, _fit_context, validate_data
from .metrics import _METRICS, HierarchicalScorer, _per_class, _sample_scores_idx
from .taxonomy import Taxonomy, check_taxonomy
from .utils.validation import check_classes_match, check_hierarchical_targets

__all__ = ["GreedyOOFEnsemble", "TaxonomyAligned", "oof_predict_proba"]


# --------------------------------------------------------------------------- scoring
class _IdxScorer:
    """Score an argmax prediction given as leaf indices, through ``metrics`` internals.

    The hierarchical metrics are computed from ``np.bincount`` over index arrays, so the
    selection loop never converts to label strings.
    """

    argmax_based = True

    def __init__(self, t_idx, taxonomy, metric="hf", lam=None, never_predicted="zero"):
        self.t_idx = t_idx
        self.taxonomy = taxonomy
        self.index = _METRICS[metric]
        default_lam = 0.5 if self.index is None else 0.75
        self.lam = default_lam if lam is None else float(lam)
        self.never_predicted = never_predicted

    def from_idx(self, p_idx):
        if self.index is None:
            return float(np.mean(_sample_scores_idx(self.t_idx, p_idx, self.taxonomy, self.lam)))
        values = _per_class(self.t_idx, p_idx, self.taxonomy, self.lam, self.never_predicted)
        used = values[5]
        if not used.any():
            return 0.0
        return float(np.mean(values[self.index][used]))

    def __call__(self, scores, total=1.0):
        # ``scores`` is a positive multiple of the probabilities: argmax is unaffected.
        return self.from_idx(np.argmax(scores, axis=1))


class _ProbaScorer:
    """A user callable ``score(y_true, proba) -> float`` (greater is better)."""

    argmax_based = False

    def __init__(self, func, y_true):
        self.func = func
        self.y_true = y_true

    def __call__(self, scores, total=1.0):
        return float(self.func(self.y_true, scores / total))


def _make_scorer(scoring, y, t_idx, taxonomy):
    if scoring is None:
        return _IdxScorer(t_idx, taxonomy)
    if isinstance(scoring, str):
        return _IdxScorer(t_idx, taxonomy, metric=scoring)
    if isinstance(scoring, HierarchicalScorer):
        if scoring.taxonomy is not None and check_taxonomy(scoring.taxonomy) != taxonomy:
            raise ValueError("The scorer's taxonomy differs from the ensemble's taxonomy.")
        return _IdxScorer(
            t_idx, taxonomy, scoring.metric, scoring.lam, scoring.never_predicted
        )
    return _ProbaScorer(scoring, np.asarray(y))


# ------------------------------------------------------------------------ alignment
def _check_prob_columns(columns, taxonomy, what):
    cols = np.asarray(list(columns))
    for expected in (np.asarray(taxonomy.leaves), np.arange(taxonomy.n_leaves)):
        if cols.shape == expected.shape and np.array_equal(cols.astype(str), expected.astype(str)):
            return
    check_classes_match(cols, taxonomy.leaves, what=what)


def _as_output(value, name, taxonomy):
    """One model's outputs -> (float array (n, K), ids or None)."""
    ids = None
    if isinstance(value, pd.DataFrame):
        _check_prob_columns(value.columns, taxonomy, f"the outputs of {name!r}")
        ids = np.asarray(value.index)
        arr = value.to_numpy()
    else:
        arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"The outputs of {name!r} are not numeric (dtype {arr.dtype}).")
    if arr.ndim != 2 or arr.shape[1] != taxonomy.n_leaves:
        raise ValueError(
            f"The outputs of {name!r} have shape {arr.shape}; expected (n_samples, "
            f"{taxonomy.n_leaves}): one column per class of {taxonomy!r}, in taxonomy order."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"The outputs of {name!r} contain NaN or infinite values.")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    return arr, ids


def _collect_outputs(outputs, taxonomy, *, names=None, ids=None, n_rows=None):
    """Validate a mapping ``name -> outputs`` and return ``(names, arrays, ids)``.

    Values are arrays of shape ``(n, K)`` or DataFrames (columns = classes in taxonomy
    order, index = sample ids), or a list / tuple of those (outputs of several fold models
    on the same rows), returned as a list of arrays. Every array must have the same number
    of rows; every id sequence (DataFrame indexes and ``ids``) must be identical, in order.
    """
    if not isinstance(outputs, Mapping) or len(outputs) == 0:
        raise TypeError(
            "Expected a non-empty mapping {model name: outputs of shape (n_samples, "
            f"n_classes)}}, got {type(outputs).__name__}."
        )
    if names is None:
        names = list(outputs)
    else:
        missing = [n for n in names if n not in outputs]
        if missing:
            raise ValueError(
                f"Outputs for {missing} are missing; they were used in fit. Got outputs "
                f"for {sorted(map(str, outputs))}."
            )
    ref_ids = None if ids is None else np.asarray(ids)
    ref_from = "ids"
    arrays = []
    for name in names:
        value = outputs[name]
        parts = list(value) if isinstance(value, (list, tuple)) else [value]
        if not parts:
            raise ValueError(f"The outputs of {name!r} are an empty list.")
        converted = []
        for j, part in enumerate(parts):
            label = name if len(parts) == 1 else f"{name}[{j}]"
            arr, part_ids = _as_output(part, label, taxonomy)
            if n_rows is None:
                n_rows = arr.shape[0]
            if arr.shape[0] != n_rows:
                raise ValueError(
                    f"The outputs of {label!r} have {arr.shape[0]} rows, expected {n_rows} "
                    "(every model must predict the same samples, in the same order)."
                )
            if part_ids is not None:
                if ref_ids is None:
                    ref_ids, ref_from = part_ids, f"the index of {label!r}"
                elif ref_ids.shape != part_ids.shape or not np.array_equal(
                    ref_ids.astype(str), part_ids.astype(str)
                ):
                    diff = np.flatnonzero(ref_ids.astype(str) != part_ids.astype(str))
                    where = f" (first difference at row {diff[0]})" if diff.size else ""
                    raise ValueError(
                        f"The row ids of {label!r} differ from {ref_from}{where}: the outputs "
                        "are not aligned. Reindex them to the same sample order first."
                    )
            converted.append(arr)
        arrays.append(converted if isinstance(value, (list, tuple)) else converted[0])
    if ref_ids is not None and ref_ids.shape[0] != n_rows:
        raise ValueError(f"ids has {ref_ids.shape[0]} entries but the outputs have {n_rows} rows.")
    return list(names), arrays, ref_ids


def _take(X, idx):
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return X[idx]
    if hasattr(X, "__array__"):
        return np.asarray(X)[idx]
    return [X[i] for i in idx]


def _validate_X(estimator, X, reset):
    """Check numeric arrays (2-D, feature count); pass DataFrames and texts through.

    NaN is accepted when the estimator's tags allow it (all candidates allow it).
    """
    if hasattr(X, "iloc") or (
        isinstance(X, (list, tuple)) and len(X) and isinstance(X[0], (str, bytes))
    ):
        validate_data(estimator, X, skip_check_array=True, reset=reset)
        return X
    allow_nan = estimator.__sklearn_tags__().input_tags.allow_nan
    return validate_data(
        estimator,
        X,
        accept_sparse="csr",
        dtype=None,
        ensure_all_finite="allow-nan" if allow_nan else True,
        reset=reset,
    )


def _check_targets(y, taxonomy):
    """Labels -> ``(y, y_idx, classes, taxonomy)`` with scikit-learn's error messages."""
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None.")
    y = column_or_1d(y, warn=True)
    if y.dtype.kind == "c":
        raise ValueError("Complex data not supported for labels.")
    if y.dtype == object and all(isinstance(v, numbers.Integral) for v in y):
        y = y.astype(np.int64)
    check_classification_targets(y)
    y_idx, classes, taxonomy = check_hierarchical_targets(y, taxonomy)
    return y, y_idx, classes, taxonomy


# ----------------------------------------------------------------------- OOF outputs
def _fold_proba(estimator, X, y, train, test, classes, name):
    est = clone(estimator)
    est.fit(_take(X, train), y[train])
    _check_estimator_classes(est, classes, name)
    return test, np.asarray(est.predict_proba(_take(X, test)), dtype=np.float64)


def _check_estimator_classes(est, classes, name):
    if not hasattr(est, "classes_"):
        raise ValueError(f"Candidate {name!r} has no classes_ after fit.")
    check_classes_match(est.classes_, classes, what=f"candidate {name!r}")


def _check_partition(splits, n):
    seen = np.zeros(n, dtype=np.intp)
    for _, test in splits:
        np.add.at(seen, np.asarray(test), 1)
    if not np.all(seen == 1):
        raise ValueError(
            "The cv splitter must put every sample in exactly one test fold to give "
            f"out-of-fold outputs; {int(np.sum(seen == 0))} samples are in no test fold and "
            f"{int(np.sum(seen > 1))} in several."
        )


def _resolve_cv(cv, y, random_state):
    if cv is None:
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        return StratifiedKFold(5, shuffle=True, random_state=seed)
    return check_cv(cv, y, classifier=True)


def oof_predict_proba(
    estimators, X, y, *, cv=None, groups=None, taxonomy=None, n_jobs=None, random_state=None
):
    """Out-of-fold probabilities of one or several estimators, in taxonomy order.

    Unlike :func:`sklearn.model_selection.cross_val_predict`, the estimators are fitted on
    the labels as given (``cross_val_predict`` re-encodes them as ``0 .. n_seen - 1``,
    which a taxonomy-aware model would read as the wrong leaves), and each fold model's
    ``classes_`` is checked against the taxonomy order. All (estimator, fold) fits run in
    one joblib ``Parallel`` call, so a Dask or Ray joblib backend distributes them.

    Parameters
    ----------
    estimators : estimator or list of (name, estimator)
    X : array-like or DataFrame of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
        Second-level labels.
    cv : int, splitter or iterable, default=None
        ``None`` is ``StratifiedKFold(5, shuffle=True)`` seeded from ``random_state``.
        The test folds must partition the samples.
    groups : array-like, default=None
        Passed to ``cv.split`` (e.g. uploaders, to keep one uploader's clips together).
    taxonomy : Taxonomy, default=None (BST)
    n_jobs : int, default=None
    random_state : int, RandomState or None

    Returns
    -------
    dict of name -> ndarray (n_samples, n_classes), or one array for a single estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from sklearn_mesh.ensemble import TaxonomyAligned, oof_predict_proba
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat(["m-sp", "fx-o", "ss-n"], 10)
    >>> X = rng.normal(size=(30, 2)) + (y == "fx-o")[:, None] * 3
    >>> P = oof_predict_proba(TaxonomyAligned(GaussianNB()), X, y, cv=3, random_state=0)
    >>> P.shape, bool(np.allclose(P.sum(axis=1), 1))
    ((30, 23), True)
    """
    single = not isinstance(estimators, (list, tuple))
    pairs = [("estimator", estimators)] if single else list(estimators)
    y_arr, y_idx, classes, taxonomy = _check_targets(y, taxonomy)
    n = y_idx.shape[0]
    cv = _resolve_cv(cv, y_idx, random_state)
    splits = list(cv.split(np.zeros((n, 1)), y_idx, groups))
    _check_partition(splits, n)
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fold_proba)(est, X, y_arr, train, test, classes, name)
        for name, est in pairs
        for train, test in splits
    )
    out = {}
    it = iter(results)
    for name, _ in pairs:
        oof = np.zeros((n, taxonomy.n_leaves))
        for _ in splits:
            test, proba = next(it)
            oof[test] = proba
        out[name] = oof
    return out["estimator"] if single else out


# ------------------------------------------------------------------- the selection
def _softmax(theta):
    z = np.exp(theta - np.max(theta))
    return z / z.sum()


def _argmax_blocks(Pm, sizes=(2, 4, 8)):
    """Precompute what ``argmax(sum_m w_m Pm[m])`` can depend on, for any weights w > 0.

    Returns ``(p_idx, blocks)``: ``p_idx`` holds the argmax of rows that no weighting can
    change, and each block ``(rows, cols, Q)`` lists rows whose argmax can only be one
    of a few *viable* classes ``cols`` (ascending, padded by repeating the last one) with
    ``Q`` the members' probabilities of those classes, shape ``(m, len(rows) * V)``.

    A class ``j`` is viable in a row when ``max_m Pm[m, j] >= max_i min_m Pm[m, i]``:
    otherwise every weighting gives it less than the best class's guaranteed value. Rows
    with one viable class are fixed. Ties keep NumPy's first-index rule because the
    viable classes stay in ascending order.
    """
    m, n, k = Pm.shape
    floor = Pm.min(axis=0).max(axis=1)  # (n,)
    viable = Pm.max(axis=0) >= floor[:, None]  # (n, k)
    count = viable.sum(axis=1)
    p_idx = np.argmax(viable, axis=1)  # the only viable class where count == 1
    blocks = []
    lower = 1
    for upper in (*[v for v in sizes if v < k], k):
        rows = np.flatnonzero((count > lower) & (count <= upper))
        lower = upper
        if rows.size == 0:
            continue
        v = viable[rows]
        order = np.argsort(~v, axis=1, kind="stable")[:, :upper]
        pos = np.minimum(np.arange(upper), count[rows, None] - 1)
        cols = np.take_along_axis(order, pos, axis=1)  # (r, upper)
        Q = Pm[:, rows[:, None], cols].reshape(m, -1)
        blocks.append((rows, cols, Q))
    return p_idx, blocks


class GreedyOOFEnsemble(ClassifierMixin, BaseEstimator):
    """Greedy forward selection of ensemble members on out-of-fold probabilities.

    At every step, each remaining candidate is tried as an addition to the current
    ensemble (weight ``1 / (step + 1)``, the rest scaled down); the one with the best
    score is added; then the member weights are re-optimised by Nelder–Mead over
    softmax-parametrised weights. The fitted ensemble is the step with the best optimised
    score. The search keeps a running weighted sum, so trying a candidate costs one
    addition and one argmax; an hF of an argmax is computed from bincounts.

    Parameters
    ----------
    estimators : list of (str, estimator), default=None
        Candidates for :meth:`fit`; each must expose ``classes_`` in taxonomy order after
        fit (wrap plain scikit-learn classifiers in :class:`TaxonomyAligned`). Not used
        by :meth:`fit_oof`.
    cv : int, cross-validation splitter or iterable, default=None
        For :meth:`fit`. ``None``: ``StratifiedKFold(5, shuffle=True)`` seeded from
        ``random_state``.
    scoring : None, str, HierarchicalScorer or callable, default=None
        ``None`` is hF from the argmax of the ensemble probabilities. A string picks a
        hierarchical metric (``"hf"``, ``"hp"``, ``"hr"``, ``"accuracy"``); a
        :class:`~sklearn_mesh.metrics.HierarchicalScorer` gives its metric, ``lam`` and
        ``never_predicted``. A callable is ``score(y_true, proba) -> float`` (greater is
        better), with ``proba`` columns in taxonomy order; it is slower.
    taxonomy : Taxonomy, default=None
        ``None`` means :data:`~sklearn_mesh.taxonomy.BST`.
    with_replacement : bool, default=False
        Allow a candidate to be added again (Caruana et al. 2004); its weight grows.
    max_members : int, default=None
        Maximum number of selection steps (the ensemble size counting repeats).
        ``None``: the number of candidates.
    patience : int or None, default=5
        Stop after this many steps without an improvement of the best optimised score
        (``None``: run all steps).
    optimize_weights : bool, default=True
        Re-optimise the member weights after every step. ``False`` with
        ``with_replacement=True`` is auto-sklearn's ensemble selection.
    n_restarts : int, default=0
        Extra Nelder–Mead runs from random logits (seeded by ``random_state``), besides
        the run started from the current weights. Each multiplies the optimisation
        cost; in ``benchmarks/bench_ensemble.py`` they did not raise the score.
    max_fev : int, default=100
        Function evaluations per Nelder–Mead run.
    n_jobs : int, default=None
        Parallel (candidate, fold) fits in :meth:`fit` and refits (joblib).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        All taxonomy leaves, in taxonomy order.
    candidates_ : list of str
        Candidate names, in input order.
    selected_ : list of str
        Members of the kept ensemble, in order of first selection.
    weights_ : ndarray of shape (n_members,)
        Non-negative member weights summing to 1, aligned with ``selected_``.
    trace_ : pandas.DataFrame
        One row per step: ``step``, ``added``, ``n_members``, ``score`` (after adding,
        before weight optimisation), ``score_optimized`` and ``best_score`` (the best
        optimised score so far, never decreasing).
    best_step_ : int
        The step whose ensemble was kept.
    oof_score_ : float
        Score of the kept ensemble on the OOF outputs (``trace_.best_score.iloc[-1]``).
    oof_proba_ : ndarray of shape (n_samples, n_classes)
        OOF probabilities of the kept ensemble.
    candidate_scores_ : pandas.Series
        Each candidate's own OOF score.
    ids_ : ndarray or None
        Sample ids seen by :meth:`fit_oof` (DataFrame index or ``ids=``).
    estimators_ : list of estimators
        The selected members refitted on all data (by :meth:`fit` only), aligned with
        ``selected_``.

    Notes
    -----
    The OOF score of the selected ensemble is optimistic: it was used for selection.
    Report a holdout never used for selection (the MESH report selected and reported on
    the same holdout).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.ensemble import GreedyOOFEnsemble
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 23, size=200)
    >>> good = np.eye(23)[y] * 0.5 + rng.dirichlet(np.ones(23), size=200) * 0.5
    >>> noise = rng.dirichlet(np.ones(23), size=200)
    >>> ens = GreedyOOFEnsemble(random_state=0).fit_oof({"noise": noise, "good": good}, y)
    >>> ens.selected_[0], round(ens.oof_score_, 3)
    ('good', 1.0)
    >>> ens.predict_from({"noise": noise[:3], "good": good[:3]}).tolist() == y[:3].tolist()
    True
    """

    _parameter_constraints: dict = {
        "estimators": [list, None],
        "cv": ["cv_object", None],
        "scoring": [None, StrOptions(set(_METRICS)), HierarchicalScorer, callable],
        "taxonomy": [Taxonomy, None],
        "with_replacement": ["boolean"],
        "max_members": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "optimize_weights": ["boolean"],
        "n_restarts": [Interval(numbers.Integral, 0, None, closed="left")],
        "max_fev": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimators=None,
        *,
        cv=None,
        scoring=None,
        taxonomy=None,
        with_replacement=False,
        max_members=None,
        patience=5,
        optimize_weights=True,
        n_restarts=0,
        max_fev=100,
        n_jobs=None,
        random_state=None,
    ):
        self.estimators = estimators
        self.cv = cv
        self.scoring = scoring
        self.taxonomy = taxonomy
        self.with_replacement = with_replacement
        self.max_members = max_members
        self.patience = patience
        self.optimize_weights = optimize_weights
        self.n_restarts = n_restarts
        self.max_fev = max_fev
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _validate_estimators(self):
        if not self.estimators:
            raise ValueError(
                "GreedyOOFEnsemble.fit needs candidates: estimators=[(name, estimator), ...]. "
                "To select from precomputed outputs use fit_oof(oof_probas, y)."
            )
        names = []
        for item in self.estimators:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ValueError(f"estimators must be (name, estimator) pairs; got {item!r}.")
            if not hasattr(item[1], "fit") or not hasattr(item[1], "predict_proba"):
                raise ValueError(f"Candidate {item[0]!r} needs fit and predict_proba methods.")
            names.append(item[0])
        if len(set(names)) != len(names):
            raise ValueError(f"Candidate names must be unique, got {names}.")
        return names

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None):
        """Compute every candidate's OOF probabilities, select, refit the members.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
            Second-level labels.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv``.
        """
        names = self._validate_estimators()
        X = _validate_X(self, X, reset=True)
        y_arr, _, classes, taxonomy = _check_targets(y, self.taxonomy)
        oof = oof_predict_proba(
            self.estimators,
            X,
            y_arr,
            cv=self.cv,
            groups=groups,
            taxonomy=taxonomy,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        self._select(names, [oof[n] for n in names], y_arr, None)
        lookup = dict(self.estimators)
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(clone(lookup[name]).fit)(X, y_arr) for name in self.selected_
        )
        for name, est in zip(self.selected_, fitted):
            _check_estimator_classes(est, classes, name)
        self.estimators_ = fitted
        return self

    def fit_oof(self, oof_probas, y, *, ids=None):
        """Select from out-of-fold probabilities computed elsewhere.

        Parameters
        ----------
        oof_probas : mapping of str to array-like of shape (n_samples, n_classes)
            Each candidate's OOF probabilities, columns in taxonomy order. A DataFrame
            value has its columns checked against the taxonomy and its index used as
            sample ids (all indexes must be identical, in order).
        y : array-like of shape (n_samples,)
            Second-level labels, in the same row order.
        ids : array-like of shape (n_samples,), default=None
            Sample ids of the rows of ``y``; checked against every DataFrame index.

        Returns
        -------
        self
        """
        self._validate_params()
        y_arr, y_idx, _, taxonomy = _check_targets(y, self.taxonomy)
        names, arrays, ref_ids = _collect_outputs(
            oof_probas, taxonomy, ids=ids, n_rows=y_idx.shape[0]
        )
        for name, arr in zip(names, arrays):
            if isinstance(arr, list):
                raise ValueError(
                    f"OOF outputs of {name!r} must be one array (every sample predicted by "
                    "the fold model that did not train on it), not a list."
                )
        self._select([str(n) for n in names], arrays, y_arr, ref_ids)
        for attr in ("estimators_", "n_features_in_", "feature_names_in_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self

    def _select(self, names, arrays, y, ids):
        y_idx, classes, taxonomy = check_hierarchical_targets(y, self.taxonomy)
        self.classes_ = classes
        self.taxonomy_ = taxonomy
        self.candidates_ = list(names)
        self.ids_ = ids
        dtype = np.result_type(np.float32, *[a.dtype for a in arrays])
        P = np.stack([np.asarray(a, dtype=dtype) for a in arrays])  # (C, n, K)
        scorer = _make_scorer(self.scoring, y, y_idx, taxonomy)
        rng = check_random_state(self.random_state)
        n_cand = P.shape[0]
        max_steps = n_cand if self.max_members is None else self.max_members
        if not self.with_replacement:
            max_steps = min(max_steps, n_cand)

        self.candidate_scores_ = pd.Series(
            [scorer(P[c]) for c in range(n_cand)], index=self.candidates_, name="oof_score"
        )
        weights = {}  # candidate index -> weight (insertion order = selection order)
        S = np.zeros(P.shape[1:], dtype=np.float64)
        kS = np.empty_like(S)
        buf = np.empty_like(S)
        # Each candidate's own argmax, once. Where it agrees with the current ensemble's
        # argmax, adding the candidate (positive weight) cannot change it: only the
        # disagreeing rows are recomputed when a candidate is tried.
        cand_pred = P.argmax(axis=2) if scorer.argmax_based else None
        rows, best, since_best = [], None, 0
        for step in range(max_steps):
            pool = [c for c in range(n_cand) if self.with_replacement or c not in weights]
            np.multiply(S, step, out=kS)
            ens_pred = kS.argmax(axis=1) if scorer.argmax_based else None
            best_c, best_s = -1, -np.inf
            for c in pool:
                if not scorer.argmax_based:
                    np.add(kS, P[c], out=buf)
                    s = scorer(buf, step + 1)
                elif step == 0:
                    s = scorer.from_idx(cand_pred[c])
                else:
                    rows_c = np.flatnonzero(cand_pred[c] != ens_pred)
                    p_idx = ens_pred.copy()
                    p_idx[rows_c] = (kS[rows_c] + P[c, rows_c]).argmax(axis=1)
                    s = scorer.from_idx(p_idx)
                if s > best_s:
                    best_c, best_s = c, s
            for c in weights:
                weights[c] *= step / (step + 1)
            weights[best_c] = weights.get(best_c, 0.0) + 1.0 / (step + 1)
            members = list(weights)
            w = np.array([weights[c] for c in members])
            s_opt = best_s
            if self.optimize_weights and len(members) > 1:
                w_new, s_new = self._optimize(P[members], w, scorer, rng)
                if s_new > best_s:
                    w, s_opt = w_new, s_new
                    weights = dict(zip(members, w))
            S = np.tensordot(w, P[members], axes=1).astype(np.float64, copy=False)
            if best is None or s_opt > best["score"]:
                best = {"score": s_opt, "step": step, "members": members, "w": w.copy()}
                since_best = 0
            else:
                since_best += 1
            rows.append(
                {
                    "step": step,
                    "added": self.candidates_[best_c],
                    "n_members": len(members),
                    "score": best_s,
                    "score_optimized": s_opt,
                    "best_score": best["score"],
                }
            )
            if self.patience is not None and since_best >= self.patience:
                break
        self.trace_ = pd.DataFrame(rows)
        self.best_step_ = best["step"]
        self.selected_ = [self.candidates_[c] for c in best["members"]]
        w = np.clip(best["w"], 0.0, None)
        self.weights_ = w / w.sum()
        self.oof_score_ = float(best["score"])
        proba = np.tensordot(self.weights_, P[best["members"]], axes=1)
        self.oof_proba_ = proba / proba.sum(axis=1, keepdims=True)
        return self

    def _optimize(self, Pm, w0, scorer, rng):
        """Nelder–Mead over softmax logits; returns (weights, score)."""
        m, n, k = Pm.shape
        if scorer.argmax_based:
            p_idx, blocks = _argmax_blocks(Pm)

            def objective(theta):
                w = _softmax(theta).astype(Pm.dtype)
                for rows, cols, Q in blocks:
                    best = (w @ Q).reshape(cols.shape).argmax(axis=1)
                    p_idx[rows] = cols[np.arange(cols.shape[0]), best]
                return -scorer.from_idx(p_idx)

        else:
            Q = Pm.reshape(m, -1)

            def objective(theta):
                return -scorer((_softmax(theta).astype(Q.dtype) @ Q).reshape(n, k))

        starts = [np.log(w0)] + [rng.normal(size=m) for _ in range(self.n_restarts)]
        best_theta, best_f = None, np.inf
        for x0 in starts:
            simplex = np.vstack([x0, x0 + 0.5 * np.eye(m)])
            res = minimize(
                objective,
                x0,
                method="Nelder-Mead",
                options={
                    "maxfev": self.max_fev,
                    "initial_simplex": simplex,
                    "xatol": 1e-2,
                    "fatol": 1e-9,
                },
            )
            if res.fun < best_f:
                best_theta, best_f = res.x, res.fun
        return _softmax(best_theta), -float(best_f)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        candidates = [
            item[1]
            for item in (self.estimators or [])
            if isinstance(item, tuple) and len(item) == 2 and hasattr(item[1], "fit")
        ]
        if candidates:
            inner = [est.__sklearn_tags__().input_tags for est in candidates]
            tags.input_tags.allow_nan = all(t.allow_nan for t in inner)
            tags.input_tags.sparse = all(t.sparse for t in inner)
        return tags

    # --------------------------------------------------------------- predicting
    def predict_proba(self, X):
        """Weighted sum of the refitted members' probabilities (only after :meth:`fit`)."""
        check_is_fitted(self)
        if not hasattr(self, "estimators_"):
            raise AttributeError(
                "This ensemble was fitted from precomputed outputs (fit_oof); it holds no "
                "fitted members. Use predict_proba_from({name: test outputs})."
            )
        X = _validate_X(self, X, reset=False)
        out = None
        for name, w, est in zip(self.selected_, self.weights_, self.estimators_):
            proba = np.asarray(est.predict_proba(X), dtype=np.float64)
            if proba.ndim != 2 or proba.shape[1] != len(self.classes_):
                raise ValueError(f"Member {name!r} returned probabilities of shape {proba.shape}.")
            out = w * proba if out is None else out + w * proba
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Class of highest ensemble probability."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba_from(self, probas, *, ids=None):
        """Combine test-time outputs of the selected members with ``weights_``.

        Parameters
        ----------
        probas : mapping of str to array-like of shape (n_samples, n_classes)
            Outputs of (at least) the members in ``selected_``; other names are ignored.
            DataFrames have their columns and index checked as in :meth:`fit_oof`. A
            list of arrays (one per fold model of that candidate) is averaged first —
            exact for this linear combination.
        ids : array-like of shape (n_samples,), default=None
            Expected sample ids, checked against every DataFrame index.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        _, arrays, _ = _collect_outputs(probas, self.taxonomy_, names=self.selected_, ids=ids)
        out = 0.0
        for w, arr in zip(self.weights_, arrays):
            if isinstance(arr, list):
                arr = np.mean(arr, axis=0)
            out = out + w * arr
        total = out.sum(axis=1, keepdims=True)
        return out / np.where(total > 0, total, 1.0)

    def predict_from(self, probas, *, ids=None):
        """Labels from :meth:`predict_proba_from`."""
        proba = self.predict_proba_from(probas, ids=ids)
        return self.classes_[np.argmax(proba, axis=1)]


# ------------------------------------------------------------------------ adapter
class TaxonomyAligned(ClassifierMixin, BaseEstimator):
    """Make any classifier output one probability column per taxonomy leaf.

    The wrapped estimator is fitted on taxonomy leaf indices; its ``predict_proba``
    columns are placed at those indices and classes it never saw get probability 0. So a
    CV fold that lacks a class, or string labels that the estimator would sort
    alphabetically, can never shift columns.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``
    taxonomy : Taxonomy, default=None (BST)

    Attributes
    ----------
    estimator_ : the fitted clone
    classes_ : ndarray, all leaves in taxonomy order (strings or indices, as ``y``)

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_mesh.ensemble import TaxonomyAligned
    >>> clf = TaxonomyAligned(LogisticRegression()).fit([[0.0], [1.0]], ["ss-n", "m-sp"])
    >>> clf.predict_proba([[0.0]]).shape, clf.classes_[0]
    ((1, 23), 'm-sp')
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "taxonomy": [Taxonomy, None],
    }

    def __init__(self, estimator, *, taxonomy=None):
        self.estimator = estimator
        self.taxonomy = taxonomy

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit the wrapped estimator on leaf indices."""
        _, y_idx, classes, taxonomy = _check_targets(y, self.taxonomy)
        self.estimator_ = clone(self.estimator).fit(X, y_idx, **fit_params)
        self.classes_ = classes
        self.taxonomy_ = taxonomy
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def predict_proba(self, X):
        """Probabilities over all taxonomy leaves."""
        check_is_fitted(self)
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        out = np.zeros((proba.shape[0], len(self.classes_)))
        out[:, np.asarray(self.estimator_.classes_, dtype=np.intp)] = proba
        return out

    def predict(self, X):
        """Leaf of highest probability."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.input_tags = inner.input_tags
        return tags


_TAXONOMY_COLUMNS = (
    "predict_proba has one column per taxonomy leaf (23 for BST), not one per class "
    "seen in y, so that every model shares the same columns"
)
_TAXONOMY_LABELS = (
    "labels must be leaves of the taxonomy; the check's labels ('one', 'two', ...) "
    "are unknown to BST and rejected with a clear error"
)


def _taxonomy_failures():
    return {
        "check_classifiers_train": _TAXONOMY_COLUMNS,
        "check_classifiers_train(readonly_memmap=True)": _TAXONOMY_COLUMNS,
        "check_classifiers_train(readonly_memmap=True,X_dtype=float32)": _TAXONOMY_COLUMNS,
        "check_classifiers_classes": _TAXONOMY_LABELS,
    }


def _check_instances():
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    return [
        (
            TaxonomyAligned(LogisticRegression()),
            {
                **_taxonomy_failures(),
                "check_estimator_sparse_array": _TAXONOMY_COLUMNS,
                "check_estimator_sparse_matrix": _TAXONOMY_COLUMNS,
            },
        ),
        (
            GreedyOOFEnsemble(
                [
                    ("lr", TaxonomyAligned(LogisticRegression())),
                    ("nb", TaxonomyAligned(GaussianNB())),
                ],
                cv=2,
                random_state=0,
            ),
            _taxonomy_failures(),
        ),
    ]
