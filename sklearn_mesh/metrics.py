"""The hierarchical precision / recall / F-score of DCASE 2026 Task 1, and scorers.

Per clip, the true label ``t`` and the prediction ``p`` are expanded to
``T = {top(t), t}`` and ``P = {top(p), p}``; the clip scores ``w * |P ∩ T| / |P|`` with
``w = 1`` for an exact match and ``w = λ`` (0.75) when only the top level matches. A clip
therefore scores 1, ``λ / 2`` (0.375) or 0.

For each class ``c``: ``hP_c`` is the mean clip score over clips *predicted* ``c``,
``hR_c`` the mean over clips whose *true* class is ``c``, and
``hF_c = 2 hP_c hR_c / (hP_c + hR_c)``. ``hP``, ``hR`` and ``hF`` are unweighted means over
the classes present in the ground truth (hF is the mean of per-class F).

A class present in the ground truth but never predicted has no precision. Two policies:

``never_predicted="zero"`` (default)
    its precision counts as 0 (so its F is 0) — what the MESH and winning teams' code do.
``never_predicted="drop"``
    the class is left out of all three averages — what the official baseline script
    does (its division fails and the class is skipped); this inflates the score.

Everything is vectorised: one ``np.bincount`` builds the ``K x K`` confusion matrix, the
per-class sums follow from it; there is no per-sample Python loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .taxonomy import Taxonomy, check_taxonomy

__all__ = [
    "hierarchical_sample_scores",
    "hierarchical_precision_recall_fscore",
    "hierarchical_f1_score",
    "hierarchical_accuracy_score",
    "hierarchical_classification_report",
    "HierarchicalScorer",
    "make_hierarchical_scorer",
    "hf_scorer",
    "hf_proba_scorer",
]

_POLICIES = ("zero", "drop")


def _encode_pair(y_true, y_pred, taxonomy: Taxonomy):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D label arrays, got shapes {y_true.shape} and "
            f"{y_pred.shape}. For probabilities use hf_proba_scorer or take the argmax."
        )
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"y_true has {y_true.shape[0]} labels but y_pred has {y_pred.shape[0]}."
        )
    if y_true.shape[0] == 0:
        raise ValueError("Cannot score an empty set of predictions.")
    return taxonomy.encode(y_true), taxonomy.encode(y_pred)


def _check_lam(lam):
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}.")
    return lam


def _score_table(taxonomy: Taxonomy, lam: float) -> np.ndarray:
    """``K x K`` clip score for (true leaf, predicted leaf): 1, ``lam / 2`` or 0."""
    parent = taxonomy.parent_index
    # |P ∩ T| / |P| is 1 for an exact match and 1/2 when only the parent matches.
    table = np.where(parent[:, None] == parent[None, :], lam * 0.5, 0.0)
    np.fill_diagonal(table, 1.0)
    return table


def _sample_scores_idx(t_idx, p_idx, taxonomy: Taxonomy, lam: float) -> np.ndarray:
    k = taxonomy.n_leaves
    return _score_table(taxonomy, lam).ravel()[t_idx * k + p_idx]


def hierarchical_sample_scores(y_true, y_pred, *, taxonomy=None, lam=0.75) -> np.ndarray:
    """Per-clip hierarchical score (1, ``lam / 2`` or 0).

    Examples
    --------
    >>> from sklearn_mesh.metrics import hierarchical_sample_scores
    >>> hierarchical_sample_scores(["m-sp", "m-sp", "m-sp"], ["m-sp", "m-m", "fx-o"]).tolist()
    [1.0, 0.375, 0.0]
    """
    taxonomy = check_taxonomy(taxonomy)
    t_idx, p_idx = _encode_pair(y_true, y_pred, taxonomy)
    return _sample_scores_idx(t_idx, p_idx, taxonomy, _check_lam(lam))


def _per_class(t_idx, p_idx, taxonomy, lam, never_predicted):
    if never_predicted not in _POLICIES:
        raise ValueError(f"never_predicted must be one of {_POLICIES}, got {never_predicted!r}.")
    k = taxonomy.n_leaves
    # everything follows from the K x K confusion matrix (one bincount over the clips)
    confusion = np.bincount(t_idx * k + p_idx, minlength=k * k).reshape(k, k)
    scored = confusion * _score_table(taxonomy, lam)
    support = confusion.sum(axis=1)
    n_pred = confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = scored.sum(axis=1) / support
        precision = scored.sum(axis=0) / n_pred
    present = support > 0
    never = present & (n_pred == 0)
    if never_predicted == "zero":
        precision = np.where(never, 0.0, precision)
        used = present
    else:
        used = present & ~never
    denom = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    nan = np.full(k, np.nan)
    precision = np.where(used, precision, nan)
    recall = np.where(used, recall, nan)
    f = np.where(used, f, nan)
    return precision, recall, f, support, n_pred, used


def _macro(precision, recall, f, used):
    """Unweighted means over the classes used in the average."""
    if not used.any():
        # Only possible with never_predicted="drop": every true class went unpredicted.
        return 0.0, 0.0, 0.0
    return (
        float(np.mean(precision[used])),
        float(np.mean(recall[used])),
        float(np.mean(f[used])),
    )


def hierarchical_precision_recall_fscore(
    y_true,
    y_pred,
    *,
    taxonomy=None,
    lam=0.75,
    never_predicted="zero",
    average="macro",
):
    """Hierarchical precision, recall and F-score as the challenge defines them.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Second-level labels (keys such as ``"fx-o"``) or taxonomy leaf indices.
    taxonomy : Taxonomy, default=None
        The hierarchy; ``None`` means :data:`sklearn_mesh.taxonomy.BST`.
    lam : float, default=0.75
        Weight of a prediction whose top level only is right.
    never_predicted : {"zero", "drop"}, default="zero"
        Treatment of a ground-truth class that is never predicted (module docstring).
    average : {"macro", None}, default="macro"
        ``"macro"`` returns three floats; ``None`` returns three arrays over the
        taxonomy's leaves, NaN for classes not used in the average.

    Examples
    --------
    >>> from sklearn_mesh.metrics import hierarchical_precision_recall_fscore
    >>> hp, hr, hf = hierarchical_precision_recall_fscore(["m-sp", "fx-o"], ["m-sp", "fx-v"])
    >>> round(hp, 4), round(hr, 4), round(hf, 4)
    (0.5, 0.6875, 0.5)
    """
    taxonomy = check_taxonomy(taxonomy)
    t_idx, p_idx = _encode_pair(y_true, y_pred, taxonomy)
    precision, recall, f, _, _, used = _per_class(
        t_idx, p_idx, taxonomy, _check_lam(lam), never_predicted
    )
    if average is None:
        return precision, recall, f
    if average != "macro":
        raise ValueError(f"average must be 'macro' or None, got {average!r}.")
    return _macro(precision, recall, f, used)


def hierarchical_f1_score(y_true, y_pred, *, taxonomy=None, lam=0.75, never_predicted="zero"):
    """Hierarchical F-score (hF), the challenge's ranking metric.

    Examples
    --------
    >>> from sklearn_mesh.metrics import hierarchical_f1_score
    >>> hierarchical_f1_score(["m-sp", "is-p"], ["m-sp", "is-p"])
    1.0
    """
    return hierarchical_precision_recall_fscore(
        y_true, y_pred, taxonomy=taxonomy, lam=lam, never_predicted=never_predicted
    )[2]


def hierarchical_accuracy_score(y_true, y_pred, *, taxonomy=None, lam=0.5):
    """Hierarchical accuracy: the mean per-clip score with ``λ = 0.5``.

    An exact match scores 1, a right-parent mistake ``λ / 2`` (0.25), anything else 0.

    Examples
    --------
    >>> from sklearn_mesh.metrics import hierarchical_accuracy_score
    >>> hierarchical_accuracy_score(["m-sp", "m-sp"], ["m-sp", "m-m"])
    0.625
    """
    return float(np.mean(hierarchical_sample_scores(y_true, y_pred, taxonomy=taxonomy, lam=lam)))


def hierarchical_classification_report(
    y_true, y_pred, *, taxonomy=None, lam=0.75, never_predicted="zero"
) -> pd.DataFrame:
    """Per-class table: name, top, hP, hR, hF, support, number predicted.

    Rows are the taxonomy's leaves present in ``y_true`` or ``y_pred``, plus a final
    ``"macro"`` row equal to :func:`hierarchical_precision_recall_fscore`.
    """
    taxonomy = check_taxonomy(taxonomy)
    t_idx, p_idx = _encode_pair(y_true, y_pred, taxonomy)
    lam = _check_lam(lam)
    precision, recall, f, support, n_pred, used = _per_class(
        t_idx, p_idx, taxonomy, lam, never_predicted
    )
    rows = (support > 0) | (n_pred > 0)
    leaves = np.asarray(taxonomy.leaves, dtype=object)
    table = pd.DataFrame(
        {
            "class": leaves[rows],
            "name": [taxonomy.name_of(k) for k in leaves[rows]],
            "top": [taxonomy.parent_of[k] for k in leaves[rows]],
            "hP": precision[rows],
            "hR": recall[rows],
            "hF": f[rows],
            "support": support[rows],
            "n_predicted": n_pred[rows],
            "in_average": used[rows],
        }
    )
    hp, hr, hf = _macro(precision, recall, f, used)
    macro = pd.DataFrame(
        [
            {
                "class": "macro",
                "name": "",
                "top": "",
                "hP": hp,
                "hR": hr,
                "hF": hf,
                "support": int(support.sum()),
                "n_predicted": int(n_pred.sum()),
                "in_average": True,
            }
        ]
    )
    return pd.concat([table, macro], ignore_index=True)


_METRICS = {"f": 2, "hf": 2, "p": 0, "hp": 0, "r": 1, "hr": 1, "accuracy": None}


class HierarchicalScorer:
    """A scorer ``(estimator, X, y) -> float`` for ``scoring=`` arguments.

    Parameters
    ----------
    metric : {"hf", "hp", "hr", "accuracy"}, default="hf"
    response_method : {"predict", "predict_proba"}, default="predict"
        With ``"predict_proba"`` the prediction is ``estimator.classes_[argmax]``.
    taxonomy, lam, never_predicted :
        As in :func:`hierarchical_precision_recall_fscore`; ``lam=None`` picks 0.75 for
        hP/hR/hF and 0.5 for accuracy.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn_mesh.metrics import HierarchicalScorer
    >>> y = ["m-sp", "m-sp", "m-m", "fx-o"]
    >>> clf = DummyClassifier(strategy="most_frequent").fit([[0]] * 4, y)
    >>> round(HierarchicalScorer("hr")(clf, [[0]] * 4, y), 4)
    0.4583
    """

    def __init__(
        self,
        metric="hf",
        *,
        response_method="predict",
        taxonomy=None,
        lam=None,
        never_predicted="zero",
    ):
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}.")
        if response_method not in ("predict", "predict_proba"):
            raise ValueError(
                f"response_method must be 'predict' or 'predict_proba', got {response_method!r}."
            )
        if never_predicted not in _POLICIES:
            raise ValueError(f"never_predicted must be one of {_POLICIES}.")
        self.metric = metric
        self.response_method = response_method
        self.taxonomy = taxonomy
        self.lam = lam
        self.never_predicted = never_predicted

    def _predict(self, estimator, X):
        if self.response_method == "predict":
            return estimator.predict(X)
        proba = np.asarray(estimator.predict_proba(X))
        return np.asarray(estimator.classes_)[np.argmax(proba, axis=1)]

    def score_predictions(self, y_true, y_pred) -> float:
        """Score already-computed label predictions with this scorer's settings."""
        index = _METRICS[self.metric]
        if index is None:
            lam = 0.5 if self.lam is None else self.lam
            return hierarchical_accuracy_score(y_true, y_pred, taxonomy=self.taxonomy, lam=lam)
        lam = 0.75 if self.lam is None else self.lam
        return hierarchical_precision_recall_fscore(
            y_true,
            y_pred,
            taxonomy=self.taxonomy,
            lam=lam,
            never_predicted=self.never_predicted,
        )[index]

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("Hierarchical scores take no sample weights.")
        return self.score_predictions(y, self._predict(estimator, X))

    def __repr__(self):
        return (
            f"HierarchicalScorer(metric={self.metric!r}, response_method="
            f"{self.response_method!r}, never_predicted={self.never_predicted!r})"
        )


def make_hierarchical_scorer(metric="hf", *, response_method="predict", **kwargs):
    """Build a :class:`HierarchicalScorer` (same arguments)."""
    return HierarchicalScorer(metric, response_method=response_method, **kwargs)


#: hF from ``predict``, for ``scoring=`` in ``cross_val_score`` / ``GridSearchCV``.
hf_scorer = HierarchicalScorer("hf")
#: hF from the argmax of ``predict_proba``.
hf_proba_scorer = HierarchicalScorer("hf", response_method="predict_proba")
