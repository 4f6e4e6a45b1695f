"""Data filtering of noisy training sets: GraNd / EL2N pruning (MESH report, section 2.2).

* :func:`el2n_scores` — EL2N (Paul et al. 2021): ``||softmax(f(x)) - onehot(y)||_2`` of a
  small classifier after a few early epochs, averaged over independent runs. In
  ``[0, sqrt(2)]``; high = hard or likely mislabelled.
* :func:`grand_scores` — GraNd: ``||d loss(x, y) / d theta||_2``, the per-sample gradient
  norm over *all* parameters (vectorised with ``torch.func``), averaged over runs.
* :class:`GrandEL2NFilter` — prunes the highest-scoring fraction (``"el2n"``, ``"grand"``,
  ``"union"`` or ``"intersection"`` of both), with a per-class minimum and the optional
  annotator-confidence rule. It is an imbalanced-learn style sampler (``fit_resample``),
  so it drops rows inside ``imblearn.pipeline.Pipeline``.
* :class:`FilteredClassifier` — filters its training data, then fits a clone of an
  estimator; works in a plain scikit-learn ``Pipeline``, ``cross_val_predict`` and
  ``GridSearchCV`` (only training folds are filtered; ``predict`` never drops rows).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted

from ._compat import HasMethods, Interval, StrOptions, _fit_context, validate_data
from .utils.validation import check_sample_metadata

__all__ = ["el2n_scores", "grand_scores", "GrandEL2NFilter", "FilteredClassifier"]

METHODS = ("grand", "el2n", "union", "intersection")

# =========================================================================== scores
def _check_scoring_args(X, y, *, n_runs, n_epochs, batch_size, hidden_units, lr, cv, module):
    X = check_array(X, dtype=[np.float32, np.float64], ensure_2d=True)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per row of X ({X.shape[0]} rows); got shape {y.shape}."
        )
    check_classification_targets(y)
    classes, y_idx = np.unique(y, return_inverse=True)
    for name, value, low in (("n_runs", n_runs, 1), ("n_epochs", n_epochs, 0),
                             ("batch_size", batch_size, 1), ("hidden_units", hidden_units, 0)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if not (isinstance(lr, numbers.Real) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    if module is not None and not callable(module):
        raise TypeError(
            "module must be None (the built-in MLP) or a callable "
            f"(n_features, n_classes) -> torch.nn.Module; got {type(module).__name__}."
        )
    if cv is not None:
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv must be None (in-sample), an int >= 2 or a splitter; got {cv}.")
            if cv > X.shape[0]:
                raise ValueError(f"cv={cv} folds need at least {cv} samples; got {X.shape[0]}.")
            cv = int(cv)
        elif not hasattr(cv, "split"):
            raise ValueError(
                "cv must be None (in-sample scores), an int >= 2 (K-fold out-of-sample "
                f"scores) or a splitter with a split(X, y) method; got {cv!r}."
            )
    return X, y_idx.astype(np.intp), classes, cv


def _scores(X, y, methods, *, module, hidden_units, n_epochs, n_runs, batch_size, lr, cv,
            standardize, device, random_state):
    from . import _filter_scores

    X, y_idx, classes, cv = _check_scoring_args(
        X, y, n_runs=n_runs, n_epochs=n_epochs, batch_size=batch_size,
        hidden_units=hidden_units, lr=lr, cv=cv, module=module,
    )
    out = _filter_scores.compute_scores(
        X, y_idx, len(classes), methods=methods, module=module, hidden_units=hidden_units,
        n_epochs=n_epochs, n_runs=n_runs, batch_size=batch_size, lr=lr, cv=cv,
        standardize=standardize, device=device, random_state=check_random_state(random_state),
    )
    return out


def el2n_scores(
    X, y, *, module=None, hidden_units=128, n_epochs=5, n_runs=10, batch_size=128, lr=1e-3,
    cv=None, standardize=True, device="cpu", random_state=None, return_proba=False,
):
    r"""EL2N score of each sample: ``||softmax(f(x)) - onehot(y)||_2`` averaged over runs.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features (e.g. embeddings).
    y : array-like of shape (n_samples,)
        Class labels (any hashable labels; classes are ``np.unique(y)``).
    module : callable or None, default=None
        ``None`` uses the built-in scoring model: a softmax classifier with one hidden
        ReLU layer of ``hidden_units`` units (a linear softmax model when
        ``hidden_units=0``). Otherwise a callable ``(n_features, n_classes) ->
        torch.nn.Module`` that returns logits; called once per run (and fold), under a
        seeded torch RNG.
    hidden_units : int, default=128
        Width of the built-in model's hidden layer; ignored when ``module`` is given.
    n_epochs : int, default=5
        Training epochs before scoring ("early in training"; 0 scores at initialisation).
    n_runs : int, default=10
        Independent initialisations averaged (Paul et al. 2021 average over 10).
    batch_size : int, default=128
        Mini-batch size of the Adam training.
    lr : float, default=1e-3
        Adam learning rate.
    cv : None, int or splitter, default=None
        ``None``: in-sample scores (the model trains on all samples, as in Paul et al.).
        An int ``K``: out-of-sample scores from stratified K-fold (each sample is scored
        by the model that did not train on it; folds are redrawn for every run). A
        splitter whose test folds partition the samples is also accepted.
    standardize : bool, default=True
        Standardise features with the training part's mean and standard deviation.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batch order and folds; same seed -> same scores.
    return_proba : bool, default=False
        Also return the run-averaged (out-of-fold when ``cv`` is set) probabilities,
        shape ``(n_samples, n_classes)``, columns in ``np.unique(y)`` order.
    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, sqrt(2)]``; 0 only when the model puts probability 1 on the true class.
    proba : ndarray of shape (n_samples, n_classes)
        Only with ``return_proba=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.filtering import el2n_scores
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(-2, 1, (20, 3)), rng.normal(2, 1, (20, 3))]
    >>> y = np.r_[[0] * 20, [1] * 20]
    >>> y[0] = 1  # a flipped label
    >>> s = el2n_scores(X, y, n_runs=2, n_epochs=20, hidden_units=0, lr=0.05,
    ...                 random_state=0)
    >>> bool(s.argmax() == 0), bool(0 <= s.min() and s.max() <= np.sqrt(2))
    (True, True)
    """
    out = _scores(
        X, y, ("el2n",), module=module, hidden_units=hidden_units, n_epochs=n_epochs,
        n_runs=n_runs, batch_size=batch_size, lr=lr, cv=cv, standardize=standardize,
        device=device, random_state=random_state,
    )
    return (out["el2n"], out["proba"]) if return_proba else out["el2n"]


def grand_scores(
    X, y, *, module=None, hidden_units=128, n_epochs=5, n_runs=10, batch_size=128, lr=1e-3,
    cv=None, standardize=True, device="cpu", random_state=None, return_proba=False,
):
    r"""GraNd score of each sample: ``||d loss(x, y) / d theta||_2`` averaged over runs.

    The per-sample gradient of the cross-entropy loss with respect to *all* trainable
    parameters is computed with ``torch.func`` (``functional_call`` + ``vmap`` +
    ``grad``), in chunks sized to a 256 MiB budget for the per-sample gradients. When
    every trainable parameter belongs to an ``nn.Linear`` (the built-in model), the exact
    closed form ``||d_i|| * ||a_i||`` per layer is used instead (same values, far faster).

    It takes the same parameters as :func:`el2n_scores`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Non-negative gradient norms; high = the sample pulls the model hard.
    proba : ndarray of shape (n_samples, n_classes)
        Only with ``return_proba=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.filtering import grand_scores
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(-2, 1, (20, 3)), rng.normal(2, 1, (20, 3))]
    >>> y = np.r_[[0] * 20, [1] * 20]
    >>> y[0] = 1  # a flipped label
    >>> s = grand_scores(X, y, n_runs=2, n_epochs=20, hidden_units=8, lr=0.05,
    ...                  random_state=0)
    >>> bool(s.argmax() == 0), s.shape
    (True, (40,))
    """
    out = _scores(
        X, y, ("grand",), module=module, hidden_units=hidden_units, n_epochs=n_epochs,
        n_runs=n_runs, batch_size=batch_size, lr=lr, cv=cv, standardize=standardize,
        device=device, random_state=random_state,
    )
    return (out["grand"], out["proba"]) if return_proba else out["grand"]




# =========================================================================== selection
def _floor(fraction, m):
    # floor(f * m) robust to binary rounding (0.29 * 100 = 28.999999999999996)
    return int(np.floor(fraction * m + 1e-9))


def _sort_idx(idx, scores, keys, descending):
    """``idx`` sorted by score (then by content key, so ties break order-invariantly)."""
    s = scores[idx]
    return idx[np.lexsort((keys[idx], -s if descending else s))]


def _keep_mask(scores, y_idx, eligible, fraction, scope, min_per_class, keys, method):
    """Keep mask of one score-based pruning (``eligible`` rows only can be kept)."""
    keep = eligible.copy()
    if fraction == 0:
        return keep
    elig = np.flatnonzero(eligible)
    protected = np.zeros_like(eligible)
    for c in np.unique(y_idx[elig]):
        members = elig[y_idx[elig] == c]
        k = min(min_per_class, members.size)
        if k:
            protected[_sort_idx(members, scores, keys, descending=False)[:k]] = True
    if scope == "global":
        n_prune = _floor(fraction, elig.size)
        candidates = elig[~protected[elig]]
        if n_prune > candidates.size:
            raise ValueError(
                f"{method}: pruning {n_prune} of {elig.size} samples (prune_fraction="
                f"{fraction}) would push a class below min_per_class={min_per_class}: only "
                f"{candidates.size} samples are not protected. Lower prune_fraction or "
                "min_per_class, or use prune_scope='per_class'."
            )
        keep[_sort_idx(candidates, scores, keys, descending=True)[:n_prune]] = False
    else:
        for c in np.unique(y_idx[elig]):
            members = elig[y_idx[elig] == c]
            candidates = members[~protected[members]]
            n_prune = min(_floor(fraction, members.size), candidates.size)
            keep[_sort_idx(candidates, scores, keys, descending=True)[:n_prune]] = False
    return keep


def _check_confidence(confidence, n_samples):
    conf = check_sample_metadata(
        confidence,
        n_samples,
        name="confidence",
        hint="Pass it as sample metadata, e.g. filter.fit_resample(X, y, confidence=c), "
        "never as a feature column.",
    )
    if conf is None:
        return None
    try:
        return conf.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "confidence must hold numbers (NaN for missing); could not convert "
            f"{conf[:5].tolist()}... to float ({exc})."
        ) from exc


def _rows(data, idx):
    """Rows ``idx`` of an array, DataFrame or Series (type preserved)."""
    if hasattr(data, "iloc"):
        return data.iloc[idx]
    return np.asarray(data)[idx]


class GrandEL2NFilter(BaseEstimator):
    """Prune likely-noisy training samples by GraNd / EL2N scores (MESH section 2.2).

    Fitting scores every sample (see :func:`el2n_scores` and :func:`grand_scores`) and
    keeps a boolean ``support_``; :meth:`fit_resample` returns the kept rows, so the
    filter is an imbalanced-learn style sampler usable in ``imblearn.pipeline.Pipeline``
    (imbalanced-learn itself is optional). Use :class:`FilteredClassifier` for a plain
    scikit-learn pipeline.

    Steps, in order:

    1. **Confidence rule** (only when ``confidence`` is passed to ``fit``): samples whose
       confidence is in ``exclude_confidence`` are removed and take no part in scoring.
       NaN confidence (unknown, as in BSD35k-CS) is never excluded.
    2. **Score pruning** of the remaining ``m`` samples, per method: the highest-scoring
       ``floor(f * m)`` samples (``prune_scope="global"``) or ``floor(f * m_c)`` of each
       class ``c`` (``"per_class"``) are flagged, with ``f`` the method's prune fraction.
       The ``min_per_class`` lowest-scoring samples of each class are never flagged (in
       ``"global"`` scope the next-highest unprotected samples are flagged instead).
    3. **Combination**: ``"el2n"`` / ``"grand"`` keep what that method does not flag;
       ``"union"`` keeps a sample kept by at least one method; ``"intersection"`` keeps
       only samples kept by both. Hence union ⊇ each single method ⊇ intersection.

    Kept count: ``m - floor(f * m)`` for a single method in global scope;
    ``m_c - min(floor(f * m_c), m_c - min(min_per_class, m_c))`` per class in per-class
    scope.

    Parameters
    ----------
    method : {"el2n", "grand", "union", "intersection"}, default="el2n"
        Which score(s) decide.
    prune_fraction : float in [0, 1) or dict, default=0.4
        Fraction pruned by each score (MESH used a global 40%). A dict such as
        ``{"el2n": 0.3, "grand": 0.4}`` sets it per method. 0 skips scoring (only the
        confidence rule then applies).
    prune_scope : {"global", "per_class"}, default="global"
        Prune the fraction over all samples or within each class.
    min_per_class : int, default=1
        Samples of each class that are always kept (the lowest-scoring ones). A ValueError
        is raised when the confidence rule, a global prune or an intersection cannot keep
        ``min(min_per_class, n_c)`` samples of a class; 0 lets a class vanish.
    exclude_confidence : tuple of numbers, default=(1,)
        Confidence values removed when ``confidence`` is given to ``fit``. The MESH
        report's "conf1" / "no_conf1" names are ambiguous: here, passing ``confidence``
        removes the listed levels; not passing it (or ``()``) keeps every sample.
    cv : None or int, default=None
        ``None``: in-sample scores; ``K``: out-of-sample scores from K-fold.
    module, hidden_units, n_epochs, n_runs, batch_size, lr, device
        Scoring model and training, as in :func:`el2n_scores`.
    random_state : int, RandomState or None, default=None
        Same seed -> same scores and same kept set.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (``np.unique(y)``).
    scores_ : dict of str -> ndarray of shape (n_samples,)
        The scores computed (``"el2n"`` and/or ``"grand"``); NaN for confidence-excluded
        samples. Empty when no score was needed.
    scoring_proba_ : ndarray of shape (n_samples, n_classes) or None
        Run-averaged scoring-model probabilities (out-of-fold with ``cv``).
    excluded_ : ndarray of bool
        Samples removed by the confidence rule.
    masks_ : dict of str -> ndarray of bool
        Keep mask of each single method (confidence rule included).
    support_ : ndarray of bool
        Final keep mask.
    sample_indices_ : ndarray of int
        Indices of the kept samples, ascending.
    report_ : pandas.DataFrame
        Per class: ``n_samples``, ``excluded_confidence``, ``flagged_<method>`` (pruned by
        that score), ``removed``, ``kept``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.filtering import GrandEL2NFilter
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(-2, 1, (20, 3)), rng.normal(2, 1, (20, 3))]
    >>> y = np.r_[[0] * 20, [1] * 20]
    >>> y[0] = 1  # a flipped label
    >>> conf = np.r_[[4, 1], [4] * 38]  # annotator confidence, as metadata
    >>> filt = GrandEL2NFilter(method="el2n", prune_fraction=0.25, n_runs=2,
    ...                        n_epochs=10, hidden_units=0, lr=0.05, random_state=0)
    >>> X_kept, y_kept = filt.fit_resample(X, y, confidence=conf)
    >>> X_kept.shape, bool(filt.excluded_[1]), bool(filt.support_[0])
    ((30, 3), True, False)
    >>> filt.report_.columns.tolist()
    ['n_samples', 'excluded_confidence', 'flagged_el2n', 'removed', 'kept']
    """

    _parameter_constraints = {
        "method": [StrOptions(set(METHODS))],
        "prune_fraction": [Interval(numbers.Real, 0, 1, closed="left"), dict],
        "prune_scope": [StrOptions({"global", "per_class"})],
        "min_per_class": [Interval(numbers.Integral, 0, None, closed="left")],
        "exclude_confidence": [tuple, list, set, frozenset],
        "cv": [None, Interval(numbers.Integral, 2, None, closed="left")],
        "module": [None, callable],
        "hidden_units": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_runs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "device": [str],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        method="el2n",
        *,
        prune_fraction=0.4,
        prune_scope="global",
        min_per_class=1,
        exclude_confidence=(1,),
        cv=None,
        module=None,
        hidden_units=128,
        n_epochs=5,
        n_runs=10,
        batch_size=128,
        lr=1e-3,
        device="cpu",
        random_state=None,
    ):
        self.method = method
        self.prune_fraction = prune_fraction
        self.prune_scope = prune_scope
        self.min_per_class = min_per_class
        self.exclude_confidence = exclude_confidence
        self.cv = cv
        self.module = module
        self.hidden_units = hidden_units
        self.n_epochs = n_epochs
        self.n_runs = n_runs
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _methods(self):
        return ("el2n", "grand") if self.method in ("union", "intersection") else (self.method,)

    def _fractions(self):
        methods = self._methods()
        if not isinstance(self.prune_fraction, dict):
            return {m: float(self.prune_fraction) for m in methods}
        unknown = set(self.prune_fraction) - {"el2n", "grand"}
        missing = set(methods) - set(self.prune_fraction)
        if unknown or missing:
            raise ValueError(
                f"prune_fraction dict keys must be score names; method={self.method!r} "
                f"needs {sorted(methods)}; unknown {sorted(unknown)}, missing {sorted(missing)}."
            )
        out = {}
        for m in methods:
            f = self.prune_fraction[m]
            if not isinstance(f, numbers.Real) or isinstance(f, bool) or not 0 <= f < 1:
                raise ValueError(
                    f"prune_fraction[{m!r}] must be a number in [0, 1); got {f!r}. "
                    "1 would prune every sample."
                )
            out[m] = float(f)
        return out

    def _check_class_minimum(self, mask, y_idx, what):
        counts = np.bincount(y_idx, minlength=len(self.classes_))
        kept = np.bincount(y_idx[mask], minlength=len(self.classes_))
        need = np.minimum(self.min_per_class, counts)
        short = np.flatnonzero(kept < need)
        if short.size:
            detail = ", ".join(
                f"{self.classes_[c]!r}: {kept[c]} of {counts[c]}" for c in short[:10]
            )
            raise ValueError(
                f"{what} would push classes below min_per_class={self.min_per_class} "
                f"(kept of total: {detail}). Lower min_per_class (0 lets a class vanish), "
                "lower prune_fraction, or change exclude_confidence / method."
            )

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, confidence=None):
        """Score the samples and decide which to keep.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        confidence : array-like of shape (n_samples,), default=None
            Per-sample annotator confidence (metadata, not a feature). When given,
            samples whose value is in ``exclude_confidence`` are removed.

        Returns
        -------
        self : GrandEL2NFilter
        """
        self._fit(X, y, confidence)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_resample(self, X, y, confidence=None):
        """Fit, then return the kept rows ``(X[support_], y[support_])``.

        pandas inputs come back as pandas objects with their index.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        confidence : array-like of shape (n_samples,), default=None
            See :meth:`fit`.

        Returns
        -------
        X_resampled : array-like of shape (n_kept, n_features)
        y_resampled : array-like of shape (n_kept,)
        """
        X_valid, y_valid = self._fit(X, y, confidence)
        idx = self.sample_indices_
        X_out = X.iloc[idx] if hasattr(X, "iloc") else X_valid[idx]
        y_out = y.iloc[idx] if hasattr(y, "iloc") else y_valid[idx]
        return X_out, y_out

    def _fit(self, X, y, confidence):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        fractions = self._fractions()
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        y_idx = y_idx.astype(np.intp)
        n = X.shape[0]

        conf = _check_confidence(confidence, n)
        excluded = np.zeros(n, dtype=bool)
        if conf is not None and len(self.exclude_confidence):
            excluded = np.isin(conf, np.asarray(list(self.exclude_confidence), dtype=np.float64))
        eligible = ~excluded
        self._check_class_minimum(eligible, y_idx, "The confidence rule")
        self.excluded_ = excluded

        need = tuple(m for m in self._methods() if fractions[m] > 0)
        self.scores_, self.scoring_proba_ = {}, None
        from . import _filter_scores

        keys = _filter_scores.row_keys(X, y_idx)
        elig_idx = np.flatnonzero(eligible)
        if need and elig_idx.size:
            cv = self.cv
            if cv is not None and cv > elig_idx.size:
                raise ValueError(f"cv={cv} folds need at least {cv} samples; got {elig_idx.size}.")
            # labels re-indexed over all classes so probability columns match classes_
            out = _filter_scores.compute_scores(
                X[elig_idx], y_idx[elig_idx], len(self.classes_), methods=need,
                module=self.module, hidden_units=self.hidden_units, n_epochs=self.n_epochs,
                n_runs=self.n_runs, batch_size=self.batch_size, lr=self.lr, cv=cv,
                device=self.device, random_state=check_random_state(self.random_state),
                keys=keys[elig_idx],
            )
            for m in need:
                full = np.full(n, np.nan)
                full[elig_idx] = out[m]
                if not np.all(np.isfinite(out[m])):
                    raise ValueError(
                        f"Non-finite {m} scores (the scoring model diverged); lower lr or "
                        "check X for extreme values."
                    )
                self.scores_[m] = full
            self.scoring_proba_ = np.full((n, len(self.classes_)), np.nan)
            self.scoring_proba_[elig_idx] = out["proba"]

        self.masks_ = {}
        for m in self._methods():
            if m in self.scores_:
                self.masks_[m] = _keep_mask(
                    self.scores_[m], y_idx, eligible, fractions[m], self.prune_scope,
                    self.min_per_class, keys, m,
                )
            else:
                self.masks_[m] = eligible.copy()
        masks = list(self.masks_.values())
        if self.method == "union":
            support = np.logical_or.reduce(masks)
        else:
            support = np.logical_and.reduce(masks)
        if self.method == "intersection":
            self._check_class_minimum(support, y_idx, "The intersection of the filters")
        self.support_ = support
        self.sample_indices_ = np.flatnonzero(support)
        self.report_ = self._make_report(y_idx)
        return X, y

    def _make_report(self, y_idx):
        k = len(self.classes_)

        def count(mask):
            return np.bincount(y_idx[mask], minlength=k)

        data = {"n_samples": np.bincount(y_idx, minlength=k), "excluded_confidence": count(self.excluded_)}
        for m, mask in self.masks_.items():
            data[f"flagged_{m}"] = count(~mask & ~self.excluded_)
        data["removed"] = count(~self.support_)
        data["kept"] = count(self.support_)
        report = pd.DataFrame(data, index=pd.Index(self.classes_, name="class"))
        return report

    # ------------------------------------------------------------------ routing
    def get_metadata_routing(self):
        """Metadata request; ``fit`` and ``fit_resample`` share one request.

        ``filter.set_fit_request(confidence=True)`` therefore routes ``confidence`` both
        through :class:`FilteredClassifier` and through ``imblearn.pipeline.Pipeline``
        (which calls ``fit_resample``); ``set_fit_resample_request`` (present when
        imbalanced-learn was imported first) works as well.
        """
        request = self._get_metadata_request()
        if hasattr(request, "fit_resample"):  # imbalanced-learn registered the method
            # fit and fit_resample share one request: set_fit_request or (imbalanced-learn
            # style) set_fit_resample_request, whichever was set explicitly
            merged = dict(request.fit.requests)
            merged.update({k: v for k, v in request.fit_resample.requests.items() if v is not None})
            for method in ("fit", "fit_resample"):
                setattr(request, method, type(request.fit)(
                    owner=request.fit.owner, method=method, requests=dict(merged)
                ))
        return request

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


# =========================================================================== meta-estimator
def _estimator_has(attr):
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


def _subset_params(params, idx, n_samples):
    out = {}
    for key, value in params.items():
        if hasattr(value, "__len__") and not isinstance(value, (str, dict)) and len(value) == n_samples:
            value = _rows(value, idx)
        out[key] = value
    return out


class FilteredClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Filter the training data, then fit a clone of ``estimator`` on what is kept.

    Because the filter runs inside ``fit`` only, this works anywhere a classifier does —
    a plain scikit-learn ``Pipeline``, ``cross_val_predict``, ``GridSearchCV`` — and only
    training folds are ever filtered; ``predict`` and friends never drop rows.

    Parameters
    ----------
    filter : object with ``fit_resample``
        Usually a :class:`GrandEL2NFilter`; any imbalanced-learn sampler also works.
        Cloned in ``fit``.
    estimator : classifier
        Cloned and fitted on the kept rows.

    Attributes
    ----------
    filter_ : fitted clone of ``filter`` (``support_``, ``report_``, ...).
    estimator_ : fitted clone of ``estimator``.
    classes_ : ndarray
        ``estimator_.classes_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.

    Notes
    -----
    Metadata: without metadata routing, ``fit(X, y, confidence=c, **params)`` sends
    ``confidence`` to the filter and every other parameter to the estimator; sample-
    aligned parameters (length ``n_samples``, e.g. ``sample_weight``) are subset to the
    kept rows. With ``sklearn.set_config(enable_metadata_routing=True)``, request them
    instead: ``GrandEL2NFilter().set_fit_request(confidence=True)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_mesh.filtering import FilteredClassifier, GrandEL2NFilter
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(-2, 1, (20, 3)), rng.normal(2, 1, (20, 3))]
    >>> y = np.r_[[0] * 20, [1] * 20]
    >>> clf = FilteredClassifier(
    ...     GrandEL2NFilter(prune_fraction=0.1, n_runs=1, n_epochs=2, hidden_units=8,
    ...                     random_state=0),
    ...     LogisticRegression(),
    ... ).fit(X, y)
    >>> int(clf.filter_.support_.sum()), clf.predict(X[:3]).tolist()
    (36, [0, 0, 0])
    """

    _parameter_constraints = {
        "filter": [HasMethods(["fit_resample"])],
        "estimator": [HasMethods(["fit", "predict"])],
    }

    def __init__(self, filter, estimator):
        self.filter = filter
        self.estimator = estimator

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Filter ``(X, y)`` with a clone of ``filter``, then fit a clone of ``estimator``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **fit_params : dict
            ``confidence`` and estimator fit parameters (see the class Notes).

        Returns
        -------
        self : FilteredClassifier
        """
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        if get_config().get("enable_metadata_routing", False):
            routed = process_routing(self, "fit", **fit_params)
            filter_params, est_params = dict(routed.filter.fit), dict(routed.estimator.fit)
        else:
            filter_params = {k: v for k, v in fit_params.items() if k == "confidence"}
            est_params = {k: v for k, v in fit_params.items() if k != "confidence"}
        self.filter_ = clone(self.filter)
        X_kept, y_kept = self.filter_.fit_resample(X, y, **filter_params)
        if est_params:
            idx = getattr(self.filter_, "sample_indices_", None)
            if idx is None:
                raise ValueError(
                    f"{type(self.filter_).__name__} exposes no sample_indices_, so the "
                    f"estimator's fit parameters {sorted(est_params)} cannot be aligned "
                    "with the kept rows."
                )
            est_params = _subset_params(est_params, idx, X.shape[0])
        self.estimator_ = clone(self.estimator).fit(X_kept, y_kept, **est_params)
        self.classes_ = getattr(self.estimator_, "classes_", None)
        if self.classes_ is None:
            self.classes_ = np.unique(y_kept)
        return self

    def _pre(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False)

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with the fitted estimator (no row is dropped)."""
        X = self._pre(X)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the fitted estimator."""
        X = self._pre(X)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the fitted estimator."""
        X = self._pre(X)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the fitted estimator."""
        X = self._pre(X)
        return self.estimator_.decision_function(X)

    def get_metadata_routing(self):
        """Route ``fit`` metadata to the filter's ``fit`` and the estimator's ``fit``."""
        router = MetadataRouter(owner=self)
        router.add(filter=self.filter, method_mapping=MethodMapping().add(caller="fit", callee="fit"))
        mapping = MethodMapping().add(caller="fit", callee="fit")
        for method in ("predict", "predict_proba", "predict_log_proba", "decision_function", "score"):
            mapping.add(caller=method, callee=method)
        router.add(estimator=self.estimator, method_mapping=mapping)
        return router


def _check_instances():
    """Small, fast configurations for ``parametrize_with_checks`` (tests/test_common.py)."""
    from sklearn.linear_model import LogisticRegression

    small = dict(n_runs=1, n_epochs=2, hidden_units=4, random_state=0)
    return [
        (GrandEL2NFilter(method="union", prune_fraction=0.2, **small), {}),
        (FilteredClassifier(GrandEL2NFilter(prune_fraction=0.2, **small), LogisticRegression()), {}),
    ]
