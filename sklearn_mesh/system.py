"""The MESH recipe as one estimator: candidate grid, two-stage CV training, Systems 1–4.

:class:`MESHSystem` goes from features to a challenge submission in one fitted object:

1. **Candidate grid** (paper section 2.3, Table 4): feature sets × pre-training objective ×
   fine-tuning objective × filter strategy of the noisy pre-training set × conf1 rule ×
   early-stopping metric. Every grid axis is a parameter; the defaults are the paper's
   values (the ``small()`` constructor gives a grid for demos and tests).
2. **Two-stage training**: the noisy pre-training set (``X_pretrain``, e.g. BSD35k-CS) is
   filtered with :class:`~sklearn_mesh.filtering.GrandEL2NFilter` once per feature set
   (every strategy's keep mask comes from the same scores), a clone of the
   :class:`~sklearn_mesh.classifier.HProxyClassifier` template is pre-trained once per
   (feature set, objective, filter), and its immutable
   :class:`~sklearn_mesh.classifier.PretrainedState` is the ``pretrained`` parameter of
   every fine-tuning model of that branch. Each candidate is fine-tuned with K-fold CV
   (out-of-fold probabilities; the conf1 rule, through
   :class:`~sklearn_mesh.filtering.FilteredClassifier`, removes confidence-1 clips from
   the *training* folds only), then refit on all data for test-time outputs.
3. **Systems** (section 3, Table 5), all from the same candidate outputs:
   1 — every candidate, :class:`~sklearn_mesh.ensemble.GreedyOOFEnsemble`;
   2 — :class:`~sklearn_mesh.fusion.SelectiveKernelFusion` over members chosen by
   :func:`~sklearn_mesh.fusion.select_fusion_members`;
   3 — greedy ensemble of the HProxy pre-training candidates only;
   4 — greedy ensemble of the Proxy Anchor pre-training candidates only.
   ``system`` picks the one :meth:`MESHSystem.predict` uses (all are fitted; change it
   with ``set_params`` without refitting).

Pitfalls of the original code that this design rules out
--------------------------------------------------------
* Selection (members, weights, fusion members, fusion weights) uses only out-of-fold
  outputs of the training data. A ``holdout`` passed to ``fit`` is scored after everything
  is fixed and is never read before (:meth:`MESHSystem.evaluate`).
* Test-time outputs come from the refit candidates, through the same fitted feature
  transformers as the training data, inside the same object that wrote the OOF outputs.
* The meta-models (ensemble weights, SK fusion) are trained on single-model OOF outputs
  and applied to single-model outputs (each candidate refit on all data), never to an
  average of fold models' outputs.
"""

from __future__ import annotations

import itertools
import numbers
import os
import time
import warnings
from collections.abc import Mapping

import joblib
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._compat import HasMethods, Interval, _fit_context, validate_data
from ._version import __version__
from .classifier import HProxyClassifier
from .ensemble import GreedyOOFEnsemble
from .filtering import FilteredClassifier, GrandEL2NFilter
from .fusion import SelectiveKernelFusion, select_fusion_members
from .metrics import hierarchical_f1_score
from .nn.losses import LOSSES
from .taxonomy import Taxonomy
from .utils.validation import (
    check_classes_match,
    check_hierarchical_targets,
    check_sample_metadata,
)

__all__ = ["MESHSystem", "submission_frame", "SUBMISSION_COLUMNS", "SYSTEMS"]

#: Columns of the DCASE 2026 Task 1 submission file, in order.
SUBMISSION_COLUMNS = ("id", "predicted_bst_second_level_class", "prediction_score")

#: System id -> short description (paper Table 5).
SYSTEMS = {
    1: "all configs, greedy OOF ensemble",
    2: "Selective Kernel fusion",
    3: "HProxy pre-training only, greedy OOF ensemble",
    4: "Proxy Anchor pre-training only, greedy OOF ensemble",
}

_FILTERS = ("el2n", "grand", "union", "intersection")
_ES = ("hf", "accuracy", "loss")
_CACHE_FORMAT = "sklearn_mesh.MESHSystem.cache/1"


# ------------------------------------------------------------------ feature blocks
class _ColumnBlock(TransformerMixin, BaseEstimator):
    """Select columns (a slice, integer indices or a boolean mask) of a 2-D array."""

    def __init__(self, columns=None):
        self.columns = columns

    def fit(self, X, y=None):
        n = X.shape[1]
        cols = self.columns
        if cols is None:
            idx = np.arange(n)
        elif isinstance(cols, slice):
            idx = np.arange(n)[cols]
        else:
            arr = np.asarray(cols)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise ValueError(
                        f"A boolean feature-set mask must have one entry per column of X "
                        f"({n}); got shape {arr.shape}."
                    )
                idx = np.flatnonzero(arr)
            elif arr.dtype.kind in "iu" and arr.ndim == 1:
                if arr.size and (arr.min() < -n or arr.max() >= n):
                    raise ValueError(
                        f"Feature-set column indices must lie in [0, {n}); got "
                        f"[{arr.min()}, {arr.max()}]."
                    )
                idx = np.arange(n)[arr]
            else:
                raise ValueError(
                    "A feature set is None (all columns), a slice, a list of column indices "
                    f"or names, a boolean mask or a transformer; got {cols!r}."
                )
        if idx.size == 0:
            raise ValueError(f"The feature set {cols!r} selects no column of X ({n} columns).")
        self.indices_ = idx
        self.n_features_in_ = n
        return self

    def transform(self, X):
        check_is_fitted(self)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the feature set was built for "
                f"{self.n_features_in_}."
            )
        return np.asarray(X)[:, self.indices_]


# ------------------------------------------------------------------------ helpers
def _family(objective):
    """Pre-training family of an objective name: "hproxy", "proxy_anchor" or None."""
    if objective is None:
        return None
    if "proxy_anchor" in objective:
        return "proxy_anchor"
    if "hproxy" in objective:
        return "hproxy"
    return "other"


def _seed(base, *tag):
    """A seed derived from the fit's base seed and a config tag (stable across grids)."""
    return int(joblib.hash((int(base), tag))[:8], 16) % (2**31 - 1)


def _fmt(value, none="none"):
    return none if value is None else str(value)


def _cache_path(cache_dir, kind, key):
    return None if cache_dir is None else os.path.join(os.fspath(cache_dir), f"{kind}-{key}.joblib")


def _cache_load(path):
    if path is None or not os.path.isfile(path):
        return None
    try:
        payload = joblib.load(path)
    except Exception:  # noqa: BLE001 - an unreadable entry is recomputed
        return None
    if not isinstance(payload, dict) or payload.get("format") != _CACHE_FORMAT:
        return None
    return payload["value"]


def _cache_save(path, value):
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    joblib.dump({"format": _CACHE_FORMAT, "value": value}, tmp)
    os.replace(tmp, path)


def _params_key(estimator):
    params = estimator.get_params(deep=False)
    try:
        return joblib.hash((type(estimator).__name__, params))
    except Exception:  # noqa: BLE001 - e.g. a lambda parameter: fall back to its repr
        return joblib.hash((type(estimator).__name__, repr(sorted(params.items()))))


# ------------------------------------------------------------------ worker functions
def _run_filter(template, methods, X, y, confidence, seed, path):
    """Keep masks of the pre-training set for each filter strategy in ``methods``."""
    if set(methods) <= {"el2n"}:
        method = "el2n"
    elif set(methods) <= {"grand"}:
        method = "grand"
    else:
        method = "union"  # both scores: every strategy's mask follows from them
    filt = clone(template).set_params(method=method, random_state=seed)
    kwargs = {} if confidence is None else {"confidence": confidence}
    filt.fit(X, y, **kwargs)
    masks = {}
    for m in methods:
        if m == "union":
            masks[m] = np.logical_or(filt.masks_["el2n"], filt.masks_["grand"])
        elif m == "intersection":
            masks[m] = np.logical_and(filt.masks_["el2n"], filt.masks_["grand"])
        else:
            masks[m] = filt.masks_[m].copy()
    _cache_save(path, masks)
    return masks


def _run_pretrain(template, overrides, objective, X, y, seed, path):
    clf = clone(template).set_params(**{**overrides, "loss": objective, "pretrained": None,
                                        "random_state": seed})
    clf.fit(X, y)
    state = clf.pretrained_state()
    _cache_save(path, state)
    return state


def _make_model(template, finetune, early_stopping, state, exclude_conf1, seed):
    model = clone(template).set_params(
        loss=finetune, early_stopping=early_stopping, pretrained=state, random_state=seed
    )
    if exclude_conf1:
        rule = GrandEL2NFilter(prune_fraction=0.0, exclude_confidence=(1,), min_per_class=0)
        model = FilteredClassifier(rule, model)
    return model


def _fit_model(model, X, y, confidence, exclude_conf1):
    if exclude_conf1:
        return model.fit(X, y, confidence=confidence)
    return model.fit(X, y)


def _run_candidate(template, config, state, X, y, confidence, folds, classes, seed, path):
    """K-fold OOF probabilities, then the refit on all data."""
    start = time.perf_counter()
    conf1 = config["exclude_conf1"]
    oof = np.zeros((X.shape[0], len(classes)))
    for k in range(int(folds.max()) + 1):
        test = folds == k
        model = _make_model(template, config["finetune"], config["early_stopping"], state,
                            conf1, seed)
        conf = None if confidence is None else confidence[~test]
        _fit_model(model, X[~test], y[~test], conf, conf1)
        check_classes_match(model.classes_, classes, what=f"candidate {config['name']!r}")
        oof[test] = model.predict_proba(X[test])
    final = _make_model(template, config["finetune"], config["early_stopping"], state, conf1, seed)
    _fit_model(final, X, y, confidence, conf1)
    result = {"oof": oof, "estimator": final, "fit_time": time.perf_counter() - start}
    _cache_save(path, result)
    return result


_EMPTY = {
    3: "no HProxy pre-training objective (e.g. 'hproxy') is in pretrain_objectives",
    4: "no Proxy Anchor pre-training objective (e.g. 'proxy_anchor+focal') is in "
       "pretrain_objectives",
}


def _configs(fsets, grid):
    """Candidate configurations of the grid (no filter without pre-training)."""
    configs = []
    branches = [
        (obj, m)
        for obj in grid["pretrain"]
        # no pre-training: there is nothing to filter, one branch whatever ``filters`` is
        for m in ((None,) if obj is None else grid["filter"])
    ]
    for f, (obj, m), ft, c1, es in itertools.product(
        fsets, branches, grid["finetune"], grid["exclude_conf1"], grid["early_stopping"],
    ):
        name = "|".join([f, f"pre={_fmt(obj)}", f"filter={_fmt(m)}", f"ft={ft}",
                         "conf1=drop" if c1 else "conf1=keep", f"es={es}"])
        configs.append(dict(name=name, feature_set=f, pretrain=obj, filter=m, finetune=ft,
                            exclude_conf1=c1, early_stopping=es))
    return configs


def _pools(configs):
    """System id -> candidate names of its pool."""
    names = [c["name"] for c in configs]
    fam = {c["name"]: _family(c["pretrain"]) for c in configs}
    return {
        1: names,
        2: names,
        3: [n for n in names if fam[n] == "hproxy"],
        4: [n for n in names if fam[n] == "proxy_anchor"],
    }


def submission_frame(proba, ids, classes):
    """The challenge submission table from class probabilities.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities, columns in the order of ``classes``.
    ids : array-like of shape (n_samples,)
        Evaluation-set ids (kept verbatim, e.g. leading zeros of strings).
    classes : sequence of str
        Second-level class keys (e.g. ``Taxonomy.leaves``).

    Returns
    -------
    pandas.DataFrame
        Columns ``id, predicted_bst_second_level_class, prediction_score``, where the
        score is the probability of the predicted (winning) class.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.system import submission_frame
    >>> submission_frame(np.array([[0.2, 0.8], [0.6, 0.4]]), ["007", "008"], ["a-1", "b-1"])
        id predicted_bst_second_level_class  prediction_score
    0  007                              b-1               0.8
    1  008                              a-1               0.6
    """
    proba = np.asarray(proba, dtype=np.float64)
    ids = np.asarray(ids)
    classes = np.asarray(classes)
    if proba.ndim != 2 or proba.shape[1] != classes.shape[0]:
        raise ValueError(
            f"proba must have shape (n_samples, {classes.shape[0]}), got {proba.shape}."
        )
    if ids.ndim != 1 or ids.shape[0] != proba.shape[0]:
        raise ValueError(
            f"ids must be 1-D with one id per row ({proba.shape[0]}); got shape {ids.shape}."
        )
    best = np.argmax(proba, axis=1)
    return pd.DataFrame({
        SUBMISSION_COLUMNS[0]: ids,
        SUBMISSION_COLUMNS[1]: classes[best].astype(str),
        SUBMISSION_COLUMNS[2]: proba[np.arange(proba.shape[0]), best],
    })


# ------------------------------------------------------------------------ estimator
class MESHSystem(ClassifierMixin, BaseEstimator):
    """The MESH recipe (paper sections 2.2–3): candidate grid, two-stage CV, Systems 1–4.

    One fitted object goes from features to a submission: evaluation inputs pass through
    exactly the feature sets, models and aggregation fitted on the training inputs.
    See the module docstring for the procedure and the pitfalls it rules out.

    Parameters
    ----------
    feature_sets : mapping of str to column spec or transformer, or None, default=None
        Named blocks of ``X`` (e.g. ``{"clap": slice(0, 512), "both": None}``). A value is
        ``None`` (all columns), a slice, a list of column indices (or of column names for
        a DataFrame ``X``), a boolean mask, or a transformer (``fit``/``transform``),
        which is cloned and fitted once, without labels, on the fine-tuning ``X`` and
        then applied to ``X_pretrain`` and every later input. ``None``: one set "all".
    pretrain_objectives : tuple, default=("hproxy", "proxy_anchor+focal")
        Pre-training objectives (HProxyClassifier ``loss`` names); ``None`` in the tuple
        means "no pre-training" (fine-tuning from scratch; no filter applies).
    finetune_objectives : tuple, default=("ce", "focal", "focal+hproxy")
        Fine-tuning objectives.
    filters : tuple, default=("grand", "el2n", "union", "intersection")
        Filter strategies of the pre-training set (see
        :class:`~sklearn_mesh.filtering.GrandEL2NFilter`); ``None`` = unfiltered.
    exclude_conf1 : tuple of bool, default=(False, True)
        ``True``: clips with annotator confidence 1 (``confidence`` passed to ``fit``) are
        removed from the fine-tuning *training* folds (never from evaluation).
    early_stopping : tuple, default=("hf", "accuracy")
        Early-stopping metrics of the fine-tuning.
    estimator : HProxyClassifier or None, default=None
        Template of every model (cloned; ``loss``, ``early_stopping``, ``pretrained`` and
        ``random_state`` are set per candidate). ``None``: ``HProxyClassifier()``.
    pretrain_params : dict or None, default=None
        Parameters of ``estimator`` changed for pre-training; ``None``:
        ``{"patience": 5}`` (the paper's pre-training patience).
    filter : GrandEL2NFilter or None, default=None
        Template of the pre-training filter (its ``method`` is set per strategy);
        ``None``: ``GrandEL2NFilter()`` (global 40% pruning).
    ensemble : GreedyOOFEnsemble or None, default=None
        Template of Systems 1, 3 and 4 (``taxonomy`` and ``random_state`` are set).
    fusion : SelectiveKernelFusion or None, default=None
        Template of System 2.
    fusion_members : int, default=4
        Members of System 2 chosen by greedy selection (the best-scoring prefix is kept).
    fusion_cv : int, default=3
        Inner CV folds of the System 2 member selection (on OOF outputs).
    fusion_max_candidates : int or None, default=64
        Only the best candidates by own OOF hF are tried for System 2.
    systems : tuple of int or None, default=None
        Systems to assemble at fit (``None``: all four; those without candidates are
        reported as unavailable).
    system : {1, 2, 3, 4}, default=1
        System used by ``predict`` / ``predict_proba``.
    cv : int or cross-validation splitter, default=5
        Fine-tuning folds (``int``: shuffled ``StratifiedKFold``). Every candidate uses the
        same folds.
    taxonomy : Taxonomy or None, default=None (BST)
    cache_dir : str, path or None, default=None
        Folder for filter masks, pre-trained states and candidate results (OOF outputs +
        refit model), keyed by a hash of the configuration, the data and the seed: a
        second ``fit`` with the same inputs and integer ``random_state`` loads them
        instead of training (``cache_info_``).
    n_jobs : int or None, default=None
        Filters, pre-trainings and candidates run in parallel (joblib).
    random_state : int, RandomState or None, default=None
        Base seed; every filter, pre-training and candidate gets a seed derived from it
        and its own configuration (so adding a grid value does not change the others).
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray
        All taxonomy leaves in taxonomy order.
    taxonomy_ : Taxonomy
    candidates_ : pandas.DataFrame
        One row per candidate: ``name``, the grid values, ``n_pretrain`` (pre-training
        samples kept), ``oof_hf``, ``cached``, ``fit_time`` (and ``holdout_hf``).
    systems_ : pandas.DataFrame
        One row per system: ``system``, ``pool``, ``n_candidates``, ``members``,
        ``n_members``, ``oof_hf`` (and ``holdout_hf``); ``available`` is False for a
        system with no candidate.
    ensembles_ : dict of int -> fitted GreedyOOFEnsemble or SelectiveKernelFusion
    members_ : dict of int -> list of str
        Candidate names each system uses.
    oof_probas_ : dict of str -> ndarray of shape (n_samples, n_classes)
    oof_score_ : float
        OOF hF of ``system`` (optimistic: it was used for selection).
    estimators_ : dict of str -> fitted estimator
        Each candidate refit on all data.
    feature_transformers_ : dict of str -> fitted transformer
    pretrain_masks_ : dict of (feature set, filter) -> ndarray of bool
    pretrained_states_ : dict of (feature set, objective, filter) -> PretrainedState
    folds_ : ndarray of int of shape (n_samples,)
        Test fold of each sample (shared by every candidate).
    ids_ : ndarray or None
        The ``ids`` given to ``fit``.
    cache_info_ : dict
        ``{"hits": n, "misses": n}`` per stage (``filter``, ``pretrain``, ``candidate``).
    holdout_scores_ : pandas.DataFrame
        Only with ``holdout``: hF of every system on it.
    holdout_score_ : float
        Only with ``holdout``: hF of ``system`` on it.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.system import MESHSystem
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat(["fx-o", "m-sp", "sp-s"], 20)
    >>> X = np.hstack([2.0 * (y[:, None] == np.unique(y)), rng.normal(size=(60, 3))])
    >>> from sklearn_mesh.classifier import HProxyClassifier
    >>> mesh = MESHSystem.small(
    ...     pretrain_objectives=(None,), finetune_objectives=("ce",), systems=(1,),
    ...     estimator=HProxyClassifier(embedding_dim=8, max_epochs=3, lr=1e-2,
    ...                                validation_fraction=None),
    ...     cv=2, random_state=0).fit(X, y)
    >>> mesh.systems_[["system", "n_candidates"]].to_dict("records")
    [{'system': 1, 'n_candidates': 1}]
    >>> mesh.predict_proba(X[:2]).shape
    (2, 23)
    """

    _parameter_constraints: dict = {
        "feature_sets": [Mapping, None],
        "pretrain_objectives": [tuple, list],
        "finetune_objectives": [tuple, list],
        "filters": [tuple, list],
        "exclude_conf1": [tuple, list],
        "early_stopping": [tuple, list],
        "estimator": [HProxyClassifier, None],
        "pretrain_params": [dict, None],
        "filter": [HasMethods(["fit", "fit_resample"]), None],
        "ensemble": [GreedyOOFEnsemble, None],
        "fusion": [SelectiveKernelFusion, None],
        "fusion_members": [Interval(numbers.Integral, 1, None, closed="left")],
        "fusion_cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "fusion_max_candidates": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "systems": [tuple, list, None],
        "system": [Interval(numbers.Integral, 1, 4, closed="both")],
        "cv": ["cv_object"],
        "taxonomy": [Taxonomy, None],
        "cache_dir": [str, os.PathLike, None],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        feature_sets=None,
        pretrain_objectives=("hproxy", "proxy_anchor+focal"),
        finetune_objectives=("ce", "focal", "focal+hproxy"),
        filters=("grand", "el2n", "union", "intersection"),
        exclude_conf1=(False, True),
        early_stopping=("hf", "accuracy"),
        estimator=None,
        pretrain_params=None,
        filter=None,
        ensemble=None,
        fusion=None,
        fusion_members=4,
        fusion_cv=3,
        fusion_max_candidates=64,
        systems=None,
        system=1,
        cv=5,
        taxonomy=None,
        cache_dir=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.feature_sets = feature_sets
        self.pretrain_objectives = pretrain_objectives
        self.finetune_objectives = finetune_objectives
        self.filters = filters
        self.exclude_conf1 = exclude_conf1
        self.early_stopping = early_stopping
        self.estimator = estimator
        self.pretrain_params = pretrain_params
        self.filter = filter
        self.ensemble = ensemble
        self.fusion = fusion
        self.fusion_members = fusion_members
        self.fusion_cv = fusion_cv
        self.fusion_max_candidates = fusion_max_candidates
        self.systems = systems
        self.system = system
        self.cv = cv
        self.taxonomy = taxonomy
        self.cache_dir = cache_dir
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # -------------------------------------------------------------- constructors
    @classmethod
    def small(cls, **params):
        """A small, fast configuration for demos, the CLI ``demo`` and tests.

        Grid: all columns × pre-training {HProxy, Proxy Anchor + Focal} × fine-tuning
        {CE, Focal + HProxy} × filter {none, EL2N} × no conf1 rule × hF early stopping
        (8 candidates), a 32-d :class:`HProxyClassifier` trained for 8 epochs, a 1-run
        filter, 3 folds, 2 fusion members. Any parameter can be overridden.

        Returns
        -------
        MESHSystem
        """
        defaults = dict(
            pretrain_objectives=("hproxy", "proxy_anchor+focal"),
            finetune_objectives=("ce", "focal+hproxy"),
            filters=(None, "el2n"),
            exclude_conf1=(False,),
            early_stopping=("hf",),
            estimator=HProxyClassifier(embedding_dim=32, max_epochs=8, lr=1e-2, patience=4,
                                       batch_size=64),
            pretrain_params={"patience": 3},
            filter=GrandEL2NFilter(prune_fraction=0.2, n_runs=1, n_epochs=3, hidden_units=32,
                                   lr=1e-2),
            ensemble=GreedyOOFEnsemble(patience=3, n_restarts=0, max_fev=40),
            fusion=SelectiveKernelFusion(max_epochs=15, validation_fraction=None),
            fusion_members=2,
            fusion_cv=2,
            fusion_max_candidates=4,
            cv=3,
        )
        defaults.update(params)
        return cls(**defaults)

    # -------------------------------------------------------------- validation
    def _grid_values(self):
        def values(name, allowed, allow_none):
            vals = tuple(getattr(self, name))
            if not vals:
                raise ValueError(f"{name} must list at least one value; got an empty {name}.")
            bad = [v for v in vals if not ((v is None and allow_none) or v in allowed)]
            if bad:
                raise ValueError(
                    f"{name} has unknown values {bad}; allowed: {sorted(map(str, allowed))}"
                    f"{' or None' if allow_none else ''}."
                )
            if len(set(vals)) != len(vals):
                raise ValueError(f"{name} lists a value twice: {list(vals)}.")
            return vals

        losses = set(LOSSES)
        return dict(
            pretrain=values("pretrain_objectives", losses, True),
            finetune=values("finetune_objectives", losses, False),
            filter=values("filters", set(_FILTERS), True),
            exclude_conf1=values("exclude_conf1", {False, True}, False),
            early_stopping=values("early_stopping", set(_ES), False),
        )

    def _systems_to_build(self):
        wanted = (1, 2, 3, 4) if self.systems is None else tuple(self.systems)
        bad = [s for s in wanted if s not in SYSTEMS]
        if bad or not wanted:
            raise ValueError(f"systems must list ids among 1, 2, 3, 4; got {self.systems!r}.")
        if self.system not in wanted:
            raise ValueError(
                f"system={self.system} is used by predict but systems={tuple(wanted)} does "
                f"not build it; add {self.system} to systems."
            )
        return tuple(sorted(set(wanted)))

    def _feature_specs(self, X):
        if self.feature_sets is None:
            return {"all": None}
        if not self.feature_sets:
            raise ValueError("feature_sets is empty; pass None to use all columns.")
        specs = {}
        names = getattr(self, "feature_names_in_", None)
        for name, spec in self.feature_sets.items():
            if not isinstance(name, str) or "|" in name:
                raise ValueError(f"Feature-set names must be strings without '|'; got {name!r}.")
            if hasattr(spec, "fit") and hasattr(spec, "transform"):
                specs[name] = spec
                continue
            if isinstance(spec, (list, tuple, np.ndarray)) and len(spec) and all(
                isinstance(v, str) for v in spec
            ):
                if names is None:
                    raise ValueError(
                        f"Feature set {name!r} lists column names, but X has no column names "
                        "(pass a DataFrame, or use column indices or a slice)."
                    )
                lookup = {n: i for i, n in enumerate(names)}
                missing = [v for v in spec if v not in lookup]
                if missing:
                    raise ValueError(f"Feature set {name!r}: unknown columns {missing[:5]}.")
                spec = [lookup[v] for v in spec]
            specs[name] = spec
        return specs

    def _build_transformers(self, X):
        out = {}
        for name, spec in self._feature_specs(X).items():
            if hasattr(spec, "fit") and hasattr(spec, "transform"):
                tr = clone(spec).fit(X)
            else:
                try:
                    tr = _ColumnBlock(spec).fit(X)
                except ValueError as exc:
                    raise ValueError(f"Feature set {name!r}: {exc}") from exc
            out[name] = tr
        return out

    def _transform(self, name, X):
        Xf = np.asarray(self.feature_transformers_[name].transform(X))
        if Xf.ndim != 2:
            raise ValueError(f"Feature set {name!r} produced an array of shape {Xf.shape}.")
        return np.ascontiguousarray(Xf, dtype=np.float32)

    def _folds(self, y_idx, seed, groups=None):
        cv = self.cv
        if isinstance(cv, numbers.Integral):
            cv = StratifiedKFold(int(cv), shuffle=True, random_state=seed)
        else:
            cv = check_cv(cv, y_idx, classifier=True)
        folds = np.full(y_idx.shape[0], -1, dtype=np.intp)
        splits = cv.split(np.zeros((y_idx.shape[0], 1)), y_idx, groups)
        for k, (_, test) in enumerate(splits):
            if np.any(folds[test] >= 0):
                raise ValueError("The cv splitter puts a sample in several test folds.")
            folds[test] = k
        if np.any(folds < 0):
            raise ValueError(
                f"The cv splitter leaves {int(np.sum(folds < 0))} samples in no test fold; "
                "out-of-fold outputs need every sample in exactly one test fold."
            )
        return folds

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, *, X_pretrain=None, y_pretrain=None, pretrain_confidence=None,
            confidence=None, ids=None, groups=None, holdout=None):
        """Train every candidate, assemble the systems, optionally score a holdout.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Fine-tuning features (e.g. BSD10k embeddings).
        y : array-like of shape (n_samples,)
            Second-level labels.
        X_pretrain, y_pretrain : array-like, default=None
            The noisy pre-training set (e.g. BSD35k-CS), same feature columns as ``X``.
            Required when ``pretrain_objectives`` holds an objective.
        pretrain_confidence : array-like of shape (n_pretrain,), default=None
            Annotator confidence of the pre-training set, given to the filter (NaN =
            unknown, never excluded).
        confidence : array-like of shape (n_samples,), default=None
            Annotator confidence of ``X``; required when ``exclude_conf1`` holds True.
        ids : array-like of shape (n_samples,), default=None
            Sample ids of ``X``, checked by the ensembles and stored as ``ids_``.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` (e.g. ``StratifiedGroupKFold`` with
            uploaders, so one uploader's clips never straddle train and test).
        holdout : tuple (X_holdout, y_holdout), default=None
            Scored with :meth:`evaluate` after every selection is fixed.

        Returns
        -------
        self : MESHSystem
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=False)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        y_idx, classes, taxonomy = check_hierarchical_targets(y, self.taxonomy)
        n, n_feat = X.shape
        if holdout is not None and not (isinstance(holdout, (tuple, list)) and len(holdout) == 2):
            raise ValueError("holdout must be a pair (X_holdout, y_holdout).")
        grid = self._grid_values()
        build = self._systems_to_build()
        confidence = check_sample_metadata(confidence, n, name="confidence")
        if confidence is not None:
            confidence = confidence.astype(np.float64)
        ids = check_sample_metadata(ids, n, name="ids")
        if True in grid["exclude_conf1"] and confidence is None:
            raise ValueError(
                "exclude_conf1 contains True (remove confidence-1 clips from the training "
                "folds) but fit got no confidence; pass confidence=..., or set "
                "exclude_conf1=(False,)."
            )
        pre_objs = [o for o in grid["pretrain"] if o is not None]
        if pre_objs:
            if X_pretrain is None or y_pretrain is None:
                raise ValueError(
                    f"pretrain_objectives={tuple(grid['pretrain'])} needs a pre-training set: "
                    "pass X_pretrain and y_pretrain to fit, or set pretrain_objectives=(None,) "
                    "to fine-tune from scratch."
                )
            try:
                Xp = validate_data(self, X_pretrain, reset=False, dtype=[np.float64, np.float32])
            except ValueError as exc:
                raise ValueError(
                    f"X_pretrain must have the same feature columns as X ({n_feat} "
                    f"features): {exc}"
                ) from exc
            yp = check_sample_metadata(y_pretrain, Xp.shape[0], name="y_pretrain")
            try:
                check_hierarchical_targets(yp, taxonomy)
            except ValueError as exc:
                raise ValueError(f"y_pretrain: {exc}") from exc
            pconf = check_sample_metadata(
                pretrain_confidence, Xp.shape[0], name="pretrain_confidence"
            )
            if pconf is not None:
                pconf = pconf.astype(np.float64)
        else:
            if X_pretrain is not None:
                warnings.warn(
                    "X_pretrain is ignored: pretrain_objectives has no objective (only None).",
                    UserWarning,
                )
            Xp = yp = pconf = None

        rs = self.random_state
        base = int(check_random_state(rs).randint(0, 2**31 - 1))
        groups = check_sample_metadata(groups, n, name="groups")
        folds = self._folds(y_idx, _seed(base, "cv"), groups)
        estimator = HProxyClassifier() if self.estimator is None else self.estimator
        estimator = clone(estimator).set_params(taxonomy=taxonomy)
        filt_template = GrandEL2NFilter() if self.filter is None else self.filter
        pre_over = {"patience": 5} if self.pretrain_params is None else dict(self.pretrain_params)
        cache_dir = self.cache_dir
        if cache_dir is not None:
            os.makedirs(os.fspath(cache_dir), exist_ok=True)
        est_key = _params_key(estimator)
        info = {s: {"hits": 0, "misses": 0} for s in ("filter", "pretrain", "candidate")}

        self.feature_transformers_ = self._build_transformers(X)
        fsets = list(self.feature_transformers_)
        configs = _configs(fsets, grid)
        pools = _pools(configs)
        if not pools[self.system]:
            raise ValueError(
                f"System {self.system} ({SYSTEMS[self.system]}) has no candidate: "
                f"{_EMPTY[self.system]}. Add one (with X_pretrain), or choose another system."
            )
        Xf = {f: self._transform(f, X) for f in fsets}
        Xpf = {f: self._transform(f, Xp) for f in fsets} if pre_objs else {}
        # raw labels (not indices): string and integer labels give different classes_
        data_fp = {f: joblib.hash((Xf[f], y, __version__)) for f in fsets}
        conf_fp = None if confidence is None else joblib.hash(confidence)
        pre_fp = {f: joblib.hash((Xpf[f], yp, pconf)) for f in Xpf}

        # 1. filter the pre-training set: once per feature set (all strategies share scores)
        filters_needed = [m for m in grid["filter"] if m is not None]
        self.pretrain_masks_ = {}
        jobs = {}
        for f in Xpf:
            self.pretrain_masks_[(f, None)] = np.ones(Xpf[f].shape[0], dtype=bool)
            if not filters_needed:
                continue
            key = joblib.hash(("filter", _params_key(filt_template), sorted(filters_needed),
                               pre_fp[f], _seed(base, "filter", f)))
            path = _cache_path(cache_dir, "filter", key)
            cached = _cache_load(path)
            if cached is not None:
                info["filter"]["hits"] += 1
                for m in filters_needed:
                    self.pretrain_masks_[(f, m)] = cached[m]
            else:
                info["filter"]["misses"] += 1
                jobs[f] = delayed(_run_filter)(filt_template, filters_needed, Xpf[f], yp, pconf,
                                               _seed(base, "filter", f), path)
        self._log(f"filtering: {len(jobs)} to run")
        for f, masks in zip(jobs, Parallel(n_jobs=self.n_jobs)(jobs.values())):
            for m in filters_needed:
                self.pretrain_masks_[(f, m)] = masks[m]

        # 2. pre-train once per (feature set, objective, filter)
        self.pretrained_states_ = {}
        state_keys = {}
        jobs = {}
        pre_key = joblib.hash((est_key, sorted(pre_over.items())))
        for f, obj, m in itertools.product(Xpf, pre_objs, grid["filter"]):
            mask = self.pretrain_masks_[(f, m)]
            seed = _seed(base, "pretrain", f, obj, m)
            key = joblib.hash(("pretrain", pre_key, obj, pre_fp[f], joblib.hash(mask), seed))
            state_keys[(f, obj, m)] = key
            path = _cache_path(cache_dir, "pretrain", key)
            cached = _cache_load(path)
            if cached is not None:
                info["pretrain"]["hits"] += 1
                self.pretrained_states_[(f, obj, m)] = cached
            else:
                info["pretrain"]["misses"] += 1
                jobs[(f, obj, m)] = delayed(_run_pretrain)(
                    estimator, pre_over, obj, Xpf[f][mask], yp[mask], seed, path
                )
        self._log(f"pre-training: {len(jobs)} to run")
        for k, state in zip(jobs, Parallel(n_jobs=self.n_jobs)(jobs.values())):
            self.pretrained_states_[k] = state

        # 3. candidates: K-fold OOF + refit
        results, jobs = {}, {}
        cached_flags = {}
        for cfg in configs:
            f, obj, m = cfg["feature_set"], cfg["pretrain"], cfg["filter"]
            seed = _seed(base, "candidate", cfg["name"])
            state = None if obj is None else self.pretrained_states_[(f, obj, m)]
            key = joblib.hash((
                "candidate", est_key, cfg["finetune"], cfg["early_stopping"],
                cfg["exclude_conf1"], conf_fp if cfg["exclude_conf1"] else None,
                None if obj is None else state_keys[(f, obj, m)],
                data_fp[f], folds, seed,
            ))
            path = _cache_path(cache_dir, "candidate", key)
            cached = _cache_load(path)
            cached_flags[cfg["name"]] = cached is not None
            if cached is not None:
                info["candidate"]["hits"] += 1
                results[cfg["name"]] = cached
            else:
                info["candidate"]["misses"] += 1
                jobs[cfg["name"]] = delayed(_run_candidate)(
                    estimator, cfg, state, Xf[f], y, confidence, folds, classes, seed, path
                )
        self._log(f"candidates: {len(jobs)} to train, {len(results)} from the cache")
        for name, res in zip(jobs, Parallel(n_jobs=self.n_jobs)(jobs.values())):
            results[name] = res

        rows = []
        self.oof_probas_, self.estimators_ = {}, {}
        for cfg in configs:
            res = results[cfg["name"]]
            self.oof_probas_[cfg["name"]] = res["oof"]
            self.estimators_[cfg["name"]] = res["estimator"]
            pred = classes[np.argmax(res["oof"], axis=1)]
            n_pre = (int(self.pretrain_masks_[(cfg["feature_set"], cfg["filter"])].sum())
                     if cfg["pretrain"] is not None else 0)
            rows.append({**cfg, "n_pretrain": n_pre,
                         "oof_hf": hierarchical_f1_score(y, pred, taxonomy=taxonomy),
                         "cached": cached_flags[cfg["name"]],
                         "fit_time": float(res["fit_time"])})
        self.candidates_ = pd.DataFrame(rows)
        self.cache_info_ = info
        self.classes_ = classes
        self.taxonomy_ = taxonomy
        self.ids_ = ids
        self.folds_ = folds

        # 4. systems, from OOF outputs only
        self._assemble(build, configs, y, ids, base)
        self.oof_score_ = float(self.systems_.set_index("system").loc[self.system, "oof_hf"])
        if holdout is not None:
            self._score_holdout(*holdout)
        return self

    def _log(self, msg):
        if self.verbose:
            print(f"[MESHSystem] {msg}")

    def _assemble(self, build, configs, y, ids, base):
        pools = _pools(configs)
        ens_t = GreedyOOFEnsemble() if self.ensemble is None else self.ensemble
        fus_t = SelectiveKernelFusion() if self.fusion is None else self.fusion
        self.ensembles_, self.members_, rows = {}, {}, []
        for s in build:
            pool = pools[s]
            row = {"system": s, "pool": SYSTEMS[s], "n_candidates": len(pool),
                   "available": bool(pool), "members": [], "n_members": 0, "oof_hf": np.nan}
            if pool:
                seed = _seed(base, "system", s)
                oof = {n: self.oof_probas_[n] for n in pool}
                if s == 2:
                    fusion = clone(fus_t).set_params(taxonomy=self.taxonomy_, random_state=seed)
                    selected, trace = select_fusion_members(
                        oof, y, n_members=self.fusion_members, estimator=fusion,
                        cv=self.fusion_cv, taxonomy=self.taxonomy_, ids=ids,
                        max_candidates=self.fusion_max_candidates, n_jobs=self.n_jobs,
                        random_state=seed,
                    )
                    best = int(trace["score"].to_numpy().argmax())
                    selected = selected[: best + 1]
                    model = fusion.fit_oof({n: oof[n] for n in selected}, y, ids=ids)
                    model.selection_trace_ = trace
                    score = float(trace["score"].iloc[best])
                else:
                    model = clone(ens_t).set_params(taxonomy=self.taxonomy_, random_state=seed)
                    model.fit_oof(oof, y, ids=ids)
                    selected = list(model.selected_)
                    score = float(model.oof_score_)
                self.ensembles_[s] = model
                self.members_[s] = selected
                row.update(members=selected, n_members=len(selected), oof_hf=score)
            rows.append(row)
        self.systems_ = pd.DataFrame(rows)

    # ------------------------------------------------------------------ predicting
    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _candidate_probas(self, X, names):
        by_set = {}
        for n in names:
            by_set.setdefault(n.split("|", 1)[0], []).append(n)
        out = {}
        for f, members in by_set.items():
            Xf = self._transform(f, X)
            for n in members:
                proba = np.asarray(self.estimators_[n].predict_proba(Xf), dtype=np.float64)
                out[n] = proba
        return out

    def _system_proba(self, s, outputs):
        return self.ensembles_[s].predict_proba_from({n: outputs[n] for n in self.members_[s]})

    def _check_system(self, system):
        s = self.system if system is None else system
        if s not in self.ensembles_:
            raise ValueError(
                f"System {s} was not assembled at fit (available: {sorted(self.ensembles_)}); "
                "fit with systems=None (all) or a tuple that includes it."
            )
        return s

    def predict_proba(self, X):
        """Probabilities of ``system`` (columns in ``classes_`` order; rows sum to 1)."""
        X = self._check_X(X)
        s = self._check_system(None)
        return self._system_proba(s, self._candidate_probas(X, self.members_[s]))

    def predict(self, X):
        """Most probable second-level class under ``system``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba_systems(self, X):
        """Probabilities of every assembled system, ``{system id: (n_samples, n_classes)}``.

        Each candidate's outputs are computed once and shared by the systems.
        """
        X = self._check_X(X)
        names = sorted({n for s in self.ensembles_ for n in self.members_[s]})
        outputs = self._candidate_probas(X, names)
        return {s: self._system_proba(s, outputs) for s in self.ensembles_}

    def evaluate(self, X, y):
        """hF of every assembled system and every candidate on labelled data ``(X, y)``.

        Nothing is refitted or re-selected: use it on a holdout never seen by ``fit``.

        Returns
        -------
        systems : pandas.DataFrame
            ``system``, ``holdout_hf``.
        candidates : pandas.Series
            Holdout hF of every candidate (index: candidate names).
        """
        X = self._check_X(X)
        y = column_or_1d(np.asarray(y))
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} labels for {X.shape[0]} rows of X.")
        outputs = self._candidate_probas(X, list(self.estimators_))
        rows = []
        for s in self.ensembles_:
            pred = self.classes_[np.argmax(self._system_proba(s, outputs), axis=1)]
            rows.append({"system": s,
                         "holdout_hf": hierarchical_f1_score(y, pred, taxonomy=self.taxonomy_)})
        cand = pd.Series(
            {n: hierarchical_f1_score(y, self.classes_[np.argmax(p, axis=1)],
                                      taxonomy=self.taxonomy_) for n, p in outputs.items()},
            name="holdout_hf",
        )
        return pd.DataFrame(rows), cand

    def _score_holdout(self, X_h, y_h):
        systems, cand = self.evaluate(X_h, y_h)
        self.holdout_scores_ = systems
        self.systems_ = self.systems_.merge(systems, on="system", how="left")
        self.candidates_["holdout_hf"] = self.candidates_["name"].map(cand)
        self.holdout_score_ = float(systems.set_index("system").loc[self.system, "holdout_hf"])

    def submission(self, X, ids):
        """The challenge submission table for ``X`` (see :func:`submission_frame`)."""
        proba = self.predict_proba(X)
        ids = check_sample_metadata(ids, proba.shape[0], name="ids")
        return submission_frame(proba, ids, self.taxonomy_.leaves)

    def write_submission(self, X, ids, path):
        """Write the submission CSV (``id, predicted_bst_second_level_class,
        prediction_score``) to ``path`` and return the table."""
        table = self.submission(X, ids)
        table.to_csv(os.fspath(path), index=False)
        return table

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _check_instances():
    fast = HProxyClassifier(embedding_dim=8, max_epochs=3, lr=2e-2, batch_size=32,
                            validation_fraction=None)
    return [
        (
            MESHSystem(
                pretrain_objectives=(None,), finetune_objectives=("ce",), filters=(None,),
                exclude_conf1=(False,), early_stopping=("hf",), estimator=fast, cv=2,
                systems=(1,), ensemble=GreedyOOFEnsemble(n_restarts=0, max_fev=10),
                random_state=0,
            ),
            {
                "check_classifiers_train": (
                    "classes_ and predict_proba always cover every taxonomy leaf (23 for "
                    "BST), not only the labels seen in y; by design, so CV folds agree."
                ),
                "check_classifiers_classes": (
                    "labels must be taxonomy leaves ('one'/'two' are not BST classes), and "
                    "classes_ lists every leaf of the taxonomy by design."
                ),
            },
        ),
    ]
