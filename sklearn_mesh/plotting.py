"""Plots of hierarchical results: grouped confusion matrix, per-class hF, ensemble trace.

Every function draws with matplotlib (``pip install "sklearn-mesh[plot]"``), takes an
optional ``ax`` and returns the matplotlib Figure. The embedding-set selection plot lives
beside its estimator (:func:`sklearn_mesh.selection.plot_selection`).
"""

from __future__ import annotations

import numpy as np

from ._optional import require
from .metrics import _encode_pair, hierarchical_classification_report
from .taxonomy import check_taxonomy

__all__ = ["plot_confusion_matrix", "plot_per_class_hf", "plot_ensemble_trace"]


def _pyplot(purpose):
    plt = require("matplotlib.pyplot", "plot", purpose=purpose)
    return plt


def _new_axes(plt, ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def _group_bounds(taxonomy, leaves_idx):
    """(start, stop, top name) of runs of consecutive leaves with the same parent."""
    parents = np.asarray(taxonomy.parent_index)[leaves_idx]
    bounds, start = [], 0
    for i in range(1, len(parents) + 1):
        if i == len(parents) or parents[i] != parents[start]:
            bounds.append((start, i, taxonomy.tops[parents[start]]))
            start = i
    return bounds


def plot_confusion_matrix(y_true, y_pred, *, taxonomy=None, normalize="true", ax=None,
                          title=None):
    """Confusion matrix of second-level classes, grouped by top-level class.

    Leaves are ordered by their top-level class (taxonomy order); lines separate the
    groups, so within-group cells (right top level, wrong leaf: partial credit in hF)
    sit in the diagonal blocks.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Second-level labels or taxonomy indices.
    taxonomy : Taxonomy, default=None (BST)
    normalize : {"true", None}, default="true"
        ``"true"``: each row sums to 1 (recall view); ``None``: counts.
    ax : matplotlib Axes, default=None
    title : str, default=None

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_mesh.plotting import plot_confusion_matrix
    >>> fig = plot_confusion_matrix(["m-sp", "fx-o", "fx-v"], ["m-sp", "fx-v", "fx-v"])
    >>> fig.axes[0].get_title()
    'Confusion matrix (rows: true, normalised)'
    """
    if normalize not in ("true", None):
        raise ValueError(f"normalize must be 'true' or None, got {normalize!r}.")
    plt = _pyplot("plot_confusion_matrix")
    taxonomy = check_taxonomy(taxonomy)
    t_idx, p_idx = _encode_pair(y_true, y_pred, taxonomy)
    k = taxonomy.n_leaves
    cm = np.bincount(t_idx * k + p_idx, minlength=k * k).reshape(k, k).astype(np.float64)
    order = np.argsort(np.asarray(taxonomy.parent_index), kind="stable")
    cm = cm[np.ix_(order, order)]
    if normalize == "true":
        rows = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    labels = [taxonomy.leaves[i] for i in order]
    fig, ax = _new_axes(plt, ax, (0.32 * k + 2.5, 0.32 * k + 1.8))
    image = ax.imshow(cm, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    ax.set_xticks(range(k), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    for start, stop, top in _group_bounds(taxonomy, order):
        if start > 0:
            ax.axhline(start - 0.5, color="k", lw=0.8)
            ax.axvline(start - 0.5, color="k", lw=0.8)
        ax.add_patch(plt.Rectangle((start - 0.5, start - 0.5), stop - start, stop - start,
                                   fill=False, ec="tab:orange", lw=1.2))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("Confusion matrix (rows: true, normalised)" if normalize
                           else "Confusion matrix (counts)"))
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_per_class_hf(y_true, y_pred, *, taxonomy=None, ax=None, title=None):
    """Bars of the per-class hF (colour = top-level class), with the macro hF as a line.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    taxonomy : Taxonomy, default=None (BST)
    ax : matplotlib Axes, default=None
    title : str, default=None

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_mesh.plotting import plot_per_class_hf
    >>> fig = plot_per_class_hf(["m-sp", "fx-o"], ["m-sp", "fx-v"])
    >>> len(fig.axes[0].patches)
    3
    """
    plt = _pyplot("plot_per_class_hf")
    taxonomy = check_taxonomy(taxonomy)
    report = hierarchical_classification_report(y_true, y_pred, taxonomy=taxonomy)
    macro = float(report["hF"].iloc[-1])
    table = report.iloc[:-1]
    tops = list(dict.fromkeys(taxonomy.tops))
    cmap = plt.get_cmap("tab10")
    colors = [cmap(tops.index(t) % 10) for t in table["top"]]
    fig, ax = _new_axes(plt, ax, (0.35 * len(table) + 2.5, 3.2))
    ax.bar(range(len(table)), table["hF"].fillna(0.0), color=colors)
    ax.axhline(macro, color="k", ls="--", lw=1, label=f"macro hF = {macro:.3f}")
    ax.set_xticks(range(len(table)), table["class"], rotation=90, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("hF")
    ax.set_title(title or "Per-class hF (colour: top-level class)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def _short_names(names):
    """Drop the ``|``-separated name parts shared by every name (grid values held fixed)."""
    parts = [str(n).split("|") for n in names]
    if len({len(p) for p in parts}) != 1 or len(parts) < 2:
        return [str(n) for n in names]
    varying = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    return ["|".join(p[i] for i in varying) or "|".join(p) for p in parts]


def plot_ensemble_trace(ensemble, *, ax=None, title=None):
    """Greedy OOF ensemble trace: score after each added member and the best so far.

    Parameters
    ----------
    ensemble : fitted GreedyOOFEnsemble (or its ``trace_`` DataFrame)
    ax : matplotlib Axes, default=None
    title : str, default=None

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklearn_mesh.plotting import plot_ensemble_trace
    >>> trace = pd.DataFrame({"step": [0, 1], "added": ["a", "b"], "n_members": [1, 2],
    ...                       "score": [0.5, 0.6], "score_optimized": [0.5, 0.62],
    ...                       "best_score": [0.5, 0.62]})
    >>> len(plot_ensemble_trace(trace).axes[0].lines)
    3
    """
    plt = _pyplot("plot_ensemble_trace")
    trace = getattr(ensemble, "trace_", ensemble)
    needed = {"step", "added", "score", "best_score"}
    if not hasattr(trace, "columns") or not needed <= set(trace.columns):
        raise ValueError(
            "plot_ensemble_trace needs a fitted GreedyOOFEnsemble (or its trace_ table with "
            f"columns {sorted(needed)})."
        )
    labels = _short_names(list(trace["added"]))
    longest = max((len(lab) for lab in labels), default=0)
    fig, ax = _new_axes(plt, ax, (max(5.0, 0.6 * len(trace) + 3.0), 3.0 + 0.055 * longest))
    steps = np.arange(len(trace))
    ax.plot(steps, trace["score"], "o-", label="after adding")
    if "score_optimized" in trace:
        ax.plot(steps, trace["score_optimized"], "s--", label="weights optimised")
    ax.plot(steps, trace["best_score"], "k-", lw=2, label="best so far")
    ax.set_xticks(steps, labels, rotation=60, ha="right",
                  fontsize=7)
    ax.set_xlabel("candidate added at each step (grid values that differ)")
    ax.set_ylabel("OOF hF")
    ax.set_title(title or "Greedy OOF ensemble trace")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
