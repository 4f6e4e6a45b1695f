"""Selective Kernel output fusion (paper section 2.4 and System 2).

The outputs of ``M`` already-trained classifiers are the *branches* of a Selective Kernel
block (Li et al. 2019), fused per sample:

1. **fuse** — the branch outputs are summed, ``s = sum_m U_m`` (shape ``K``), and a
   small MLP with a reduction ratio ``r`` gives a compact descriptor
   ``z = ReLU(W s + b)`` of size ``max(K // r, min_hidden)``;
2. **select** — one linear map per branch turns ``z`` into branch logits; a softmax
   *across branches*, separately for every class channel, gives attention weights
   ``a[m, c]`` (``sum_m a[m, c] = 1``);
3. the output is ``V = sum_m a_m * U_m``: with probability inputs, ``V / sum_c V_c``
   (rows sum to 1); with score inputs, ``softmax(V)``.

The select layers start at zero, so an untrained fusion is the plain average of the
models; training learns when to trust which model for which class.

Input layout
------------
``X`` has shape ``(n_samples, M * K)``: columns ``m * K`` to ``(m + 1) * K - 1`` are model
``m``'s outputs over the ``K`` taxonomy classes, in taxonomy order (model-major).
:func:`stack_outputs` builds it from a mapping ``{name: (n, K)}`` and checks alignment;
:meth:`SelectiveKernelFusion.fit_oof` / :meth:`~SelectiveKernelFusion.predict_proba_from`
take the mapping directly.

Train on out-of-fold outputs only
---------------------------------
The fusion must learn from outputs of models that did not see the sample (OOF outputs),
otherwise it learns to trust over-confident training-set outputs. At test time, when each
candidate is a set of fold models, give the fold models' outputs as a *list* to
:meth:`~SelectiveKernelFusion.predict_proba_from`: the fusion is applied to each fold's
outputs (the kind of input it was trained on) and the fused probabilities are averaged.
Averaging the fold outputs *before* the fusion feeds it smoother inputs than it was
trained on — one of the pitfalls of the original MESH code.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._compat import Interval, StrOptions, _fit_context, validate_data
from .ensemble import (
    _check_targets,
    _collect_outputs,
    _make_scorer,
    _taxonomy_failures,
    oof_predict_proba,
)
from .taxonomy import Taxonomy, check_taxonomy

__all__ = ["SelectiveKernelFusion", "select_fusion_members", "stack_outputs"]


def stack_outputs(outputs, names=None, *, taxonomy=None, ids=None):
    """Stack ``{name: (n, K)}`` model outputs into the ``(n, M * K)`` fusion layout.

    Columns, row counts and row ids (DataFrame indexes, ``ids``) are checked exactly as
    in :meth:`~sklearn_mesh.ensemble.GreedyOOFEnsemble.fit_oof`.

    Parameters
    ----------
    outputs : mapping of str to array-like or DataFrame of shape (n_samples, n_classes)
    names : list of str, default=None
        Which models, in which order (default: all, in mapping order).
    taxonomy : Taxonomy, default=None (BST)
    ids : array-like of shape (n_samples,), default=None

    Returns
    -------
    X : ndarray of shape (n_samples, M * n_classes)
    names : list of str

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.fusion import stack_outputs
    >>> a, b = np.full((2, 23), 1 / 23), np.eye(23)[:2]
    >>> X, names = stack_outputs({"a": a, "b": b})
    >>> X.shape, names
    ((2, 46), ['a', 'b'])
    """
    taxonomy = check_taxonomy(taxonomy)
    names, arrays, _ = _collect_outputs(outputs, taxonomy, names=names, ids=ids)
    for name, arr in zip(names, arrays):
        if isinstance(arr, list):
            raise ValueError(
                f"The outputs of {name!r} are a list (fold models); stack_outputs takes one "
                "array per model. Use SelectiveKernelFusion.predict_proba_from for fold lists."
            )
    return np.hstack([np.asarray(a, dtype=np.float64) for a in arrays]), names


class _SKFusion(nn.Module):
    """Fuse (sum of branches -> reduced MLP) then select (softmax across branches)."""

    def __init__(self, n_models, width, n_classes, hidden, inputs, head):
        super().__init__()
        self.n_models, self.width, self.inputs = n_models, width, inputs
        self.fuse = nn.Sequential(nn.Linear(width, hidden), nn.ReLU())
        self.select = nn.Linear(hidden, n_models * width)
        # Zero select layer: uniform attention, so training starts from the plain average.
        nn.init.zeros_(self.select.weight)
        nn.init.zeros_(self.select.bias)
        self.head = nn.Linear(width, n_classes) if head == "linear" else None

    def attention(self, x):  # x: (B, M, D) -> (B, M, D), sums to 1 over M
        z = self.fuse(x.sum(dim=1))
        logits = self.select(z).view(-1, self.n_models, self.width)
        return torch.softmax(logits, dim=1)

    def forward(self, x):
        """Log-probabilities of shape (B, n_classes)."""
        v = (self.attention(x) * x).sum(dim=1)
        if self.head is not None:
            return torch.log_softmax(self.head(v), dim=1)
        if self.inputs == "proba":
            v = v.clamp_min(1e-12)
            return torch.log(v / v.sum(dim=1, keepdim=True))
        return torch.log_softmax(v, dim=1)


class SelectiveKernelFusion(ClassifierMixin, BaseEstimator):
    """Per-sample attention over M models' outputs (Selective Kernel fusion).

    See the module docstring for the architecture, the input layout and why it must be
    trained on out-of-fold outputs.

    Parameters
    ----------
    n_models : int, default=None
        Number of branches ``M``; ``None`` infers ``n_features / n_classes``.
    taxonomy : Taxonomy, default=None
        ``None`` means :data:`~sklearn_mesh.taxonomy.BST`; ``K`` is its number of leaves.
    inputs : {"proba", "scores"}, default="proba"
        ``"proba"``: each branch holds probabilities (checked: in [0, 1], rows sum to 1);
        the output is the renormalised attention-weighted sum. ``"scores"``: any real
        values (e.g. logits), the output is the softmax of the weighted sum.
    head : {"identity", "linear"}, default="identity"
        ``"identity"``: branches are class outputs (width ``K``, the MESH setting).
        ``"linear"``: branches of any width, followed by a linear classifier.
    reduction : int, default=4
        Reduction ratio of the fuse MLP.
    min_hidden : int, default=8
        Smallest width of the fuse MLP.
    max_epochs : int, default=60
    batch_size : int, default=256
    lr : float, default=5e-3
        Adam learning rate.
    weight_decay : float, default=1e-4
    validation_fraction : float or None, default=0.1
        Held-out share for early stopping on the validation loss (best weights kept);
        ``None`` trains all epochs on all data.
    n_iter_no_change : int, default=8
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_models_ : int
    model_names_ : list of str or None
        Branch names when fitted by :meth:`fit_oof`.
    module_ : torch.nn.Module
    n_epochs_ : int
    loss_curve_ : list of float
        Training loss per epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.fusion import SelectiveKernelFusion
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 23, size=300)
    >>> good = 0.6 * np.eye(23)[y] + 0.4 * rng.dirichlet(np.ones(23), size=300)
    >>> noise = rng.dirichlet(np.ones(23), size=300)
    >>> skf = SelectiveKernelFusion(max_epochs=5, random_state=0)
    >>> proba = skf.fit_oof({"good": good, "noise": noise}, y).predict_proba_from(
    ...     {"good": good, "noise": noise})
    >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1))
    ((300, 23), True)
    """

    _parameter_constraints: dict = {
        "n_models": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "taxonomy": [Taxonomy, None],
        "inputs": [StrOptions({"proba", "scores"})],
        "head": [StrOptions({"identity", "linear"})],
        "reduction": [Interval(numbers.Integral, 1, None, closed="left")],
        "min_hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        n_models=None,
        taxonomy=None,
        inputs="proba",
        head="identity",
        reduction=4,
        min_hidden=8,
        max_epochs=60,
        batch_size=256,
        lr=5e-3,
        weight_decay=1e-4,
        validation_fraction=0.1,
        n_iter_no_change=8,
        random_state=None,
    ):
        self.n_models = n_models
        self.taxonomy = taxonomy
        self.inputs = inputs
        self.head = head
        self.reduction = reduction
        self.min_hidden = min_hidden
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _layout(self, n_features, taxonomy):
        k = taxonomy.n_leaves
        if self.n_models is None:
            if self.head == "linear":
                raise ValueError("head='linear' needs n_models (branch width is not K).")
            if n_features % k:
                raise ValueError(
                    f"X has {n_features} columns, not a multiple of the {k} classes of "
                    f"{taxonomy!r}. Expected M * {k} columns: model m's outputs in columns "
                    f"m*{k} .. (m+1)*{k}-1 (see stack_outputs)."
                )
            return n_features // k, k
        if n_features % self.n_models:
            raise ValueError(
                f"X has {n_features} columns, which does not split into n_models="
                f"{self.n_models} equal branches."
            )
        width = n_features // self.n_models
        if self.head == "identity" and width != k:
            raise ValueError(
                f"Each of the {self.n_models} branches has {width} columns but {taxonomy!r} "
                f"has {k} classes; with head='identity' every branch must hold one output "
                "per class (or use head='linear')."
            )
        return self.n_models, width

    def _branches(self, X, reset):
        X = validate_data(self, X, dtype=np.float64, reset=reset)
        m, width = (self.n_models_, self.width_) if not reset else (None, None)
        if reset:
            m, width = self._layout(X.shape[1], check_taxonomy(self.taxonomy))
        B = X.reshape(X.shape[0], m, width)
        if self.inputs == "proba":
            if B.min(initial=0.0) < -1e-6 or B.max(initial=0.0) > 1 + 1e-6:
                raise ValueError(
                    "inputs='proba' expects probabilities in [0, 1]; got values in "
                    f"[{B.min():.3g}, {B.max():.3g}]. Use inputs='scores' for logits."
                )
            sums = B.sum(axis=2)
            if B.shape[0] and not np.allclose(sums, 1.0, atol=1e-3):
                bad = int(np.argmax(np.abs(sums - 1).max(axis=0)))
                raise ValueError(
                    f"inputs='proba' expects each branch's row to sum to 1; branch {bad} "
                    "does not. Check the column layout (model-major, M blocks of K "
                    "classes) or use inputs='scores'."
                )
            B = np.clip(B, 0.0, 1.0)
        return B

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the fusion on stacked out-of-fold outputs ``X`` of shape (n, M * K)."""
        y_arr, y_idx, classes, taxonomy = _check_targets(y, self.taxonomy)
        B = self._branches(X, reset=True)
        if B.shape[0] != y_idx.shape[0]:
            raise ValueError(f"X has {B.shape[0]} rows but y has {y_idx.shape[0]} labels.")
        self.classes_ = classes
        self.taxonomy_ = taxonomy
        self.n_models_, self.width_ = B.shape[1], B.shape[2]
        self.model_names_ = None
        present = np.unique(y_idx)
        # Only one class seen: the fitted model predicts it (nothing to fuse).
        self.constant_class_ = int(present[0]) if present.size == 1 else None
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        n = B.shape[0]
        order = rng.permutation(n)
        n_val = 0
        if self.validation_fraction is not None and n >= 20:
            n_val = max(1, int(round(self.validation_fraction * n)))
        val, train = order[:n_val], order[n_val:]
        hidden = max(self.width_ // self.reduction, self.min_hidden)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = _SKFusion(
                self.n_models_, self.width_, taxonomy.n_leaves, hidden, self.inputs, self.head
            ).double()
        gen = torch.Generator().manual_seed(seed)
        Xt = torch.from_numpy(np.ascontiguousarray(B))
        yt = torch.from_numpy(y_idx.astype(np.int64))
        opt = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.NLLLoss()
        train_t = torch.from_numpy(train)
        val_t = torch.from_numpy(val)
        best_val, best_state, since, self.loss_curve_ = np.inf, None, 0, []
        for epoch in range(self.max_epochs):
            module.train()
            perm = train_t[torch.randperm(train_t.numel(), generator=gen)]
            total = 0.0
            for start in range(0, perm.numel(), self.batch_size):
                idx = perm[start : start + self.batch_size]
                opt.zero_grad()
                loss = loss_fn(module(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            self.loss_curve_.append(total / max(train_t.numel(), 1))
            self.n_epochs_ = epoch + 1
            if n_val:
                module.eval()
                with torch.no_grad():
                    v = float(loss_fn(module(Xt[val_t]), yt[val_t]))
                if v < best_val - 1e-6:
                    best_val, since = v, 0
                    best_state = {k: t.clone() for k, t in module.state_dict().items()}
                else:
                    since += 1
                    if since >= self.n_iter_no_change:
                        break
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        return self

    def fit_oof(self, oof_probas, y, *, ids=None):
        """Train on a mapping ``{name: OOF outputs (n, K)}`` (stacked in mapping order)."""
        taxonomy = check_taxonomy(self.taxonomy)
        X, names = stack_outputs(oof_probas, taxonomy=taxonomy, ids=ids)
        self.fit(X, y)
        self.model_names_ = [str(n) for n in names]
        return self

    # --------------------------------------------------------------- predicting
    def _log_proba(self, B):
        with torch.no_grad():
            return self.module_(torch.from_numpy(np.ascontiguousarray(B))).numpy()

    def predict_proba(self, X):
        """Fused class probabilities; rows sum to 1."""
        check_is_fitted(self)
        B = self._branches(X, reset=False)
        if self.constant_class_ is not None:
            proba = np.zeros((B.shape[0], len(self.classes_)))
            proba[:, self.constant_class_] = 1.0
            return proba
        proba = np.exp(self._log_proba(B))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Class of highest fused probability."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def attention(self, X):
        """Attention weights ``a[n, m, c]`` (sum over models is 1 for every class)."""
        check_is_fitted(self)
        B = self._branches(X, reset=False)
        with torch.no_grad():
            return self.module_.attention(torch.from_numpy(np.ascontiguousarray(B))).numpy()

    def predict_proba_from(self, probas, *, ids=None):
        """Fuse test-time outputs given as ``{name: (n, K)}`` (names as in :meth:`fit_oof`).

        A value may be a list of arrays, one per fold model of that candidate: the fusion
        is applied fold by fold (fold ``j`` of every model together; a single array is
        used for every fold) and the fused probabilities are averaged.
        """
        check_is_fitted(self)
        if self.model_names_ is None:
            raise AttributeError(
                "predict_proba_from needs the model names; fit with fit_oof({name: "
                "outputs}, y), or call predict_proba on the stacked array."
            )
        _, arrays, _ = _collect_outputs(probas, self.taxonomy_, names=self.model_names_, ids=ids)
        n_folds = {len(a) for a in arrays if isinstance(a, list)}
        if len(n_folds) > 1:
            raise ValueError(f"Models give different numbers of fold outputs: {sorted(n_folds)}.")
        folds = n_folds.pop() if n_folds else 1
        out = 0.0
        for j in range(folds):
            X = np.hstack([a[j] if isinstance(a, list) else a for a in arrays])
            out = out + self.predict_proba(X)
        return out / folds

    def predict_from(self, probas, *, ids=None):
        """Labels from :meth:`predict_proba_from`."""
        proba = self.predict_proba_from(probas, ids=ids)
        return self.classes_[np.argmax(proba, axis=1)]


# --------------------------------------------------------------- member selection
def _fusion_cv_score(estimator, X, y, cv, scorer, seed, taxonomy):
    oof = oof_predict_proba(clone(estimator), X, y, cv=cv, taxonomy=taxonomy, random_state=seed)
    return scorer(oof)


def select_fusion_members(
    oof_probas,
    y,
    *,
    n_members=4,
    estimator=None,
    cv=3,
    scoring=None,
    taxonomy=None,
    ids=None,
    max_candidates=None,
    n_jobs=None,
    random_state=None,
):
    """Greedy forward selection of the models to fuse (the paper's System 2: 4 of 64).

    Step 1 takes the candidate with the best own OOF score (a one-branch fusion is that
    model). Each later step tries every remaining candidate: a fresh fusion on the
    current members plus the candidate is scored by an *inner* cross-validation on the
    OOF outputs, and the best is added.

    Parameters
    ----------
    oof_probas : mapping of str to array-like of shape (n_samples, n_classes)
        OOF outputs of every candidate (checked as in ``GreedyOOFEnsemble.fit_oof``).
    y : array-like of shape (n_samples,)
    n_members : int, default=4
    estimator : SelectiveKernelFusion, default=None
        The fusion to train (cloned); ``None`` uses ``SelectiveKernelFusion()`` with
        ``taxonomy`` and ``random_state``.
    cv : int or splitter, default=3
        Inner cross-validation over the OOF outputs (``int``: shuffled StratifiedKFold).
    scoring : as in :class:`~sklearn_mesh.ensemble.GreedyOOFEnsemble`, default=None (hF)
    taxonomy : Taxonomy, default=None
    ids : array-like, default=None
    max_candidates : int, default=None
        Only the ``max_candidates`` best candidates by own OOF score are tried (each try
        costs ``cv`` trainings).
    n_jobs : int, default=None
        Candidates tried in parallel (joblib).
    random_state : int, RandomState instance or None

    Returns
    -------
    selected : list of str
    trace : pandas.DataFrame
        ``step``, ``added``, ``score`` (inner-CV score of the fusion of the members).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.fusion import SelectiveKernelFusion, select_fusion_members
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 23, size=200)
    >>> pool = {f"m{i}": 0.3 * np.eye(23)[y] + 0.7 * rng.dirichlet(np.ones(23), size=200)
    ...         for i in range(3)}
    >>> names, trace = select_fusion_members(
    ...     pool, y, n_members=2, estimator=SelectiveKernelFusion(max_epochs=2), random_state=0)
    >>> len(names), list(trace.columns)
    (2, ['step', 'added', 'score'])
    """
    taxonomy = check_taxonomy(taxonomy)
    y_arr, y_idx, _, taxonomy = _check_targets(y, taxonomy)
    names, arrays, _ = _collect_outputs(oof_probas, taxonomy, ids=ids, n_rows=y_idx.shape[0])
    if any(isinstance(a, list) for a in arrays):
        raise ValueError("OOF outputs must be one array per candidate, not a list.")
    if not isinstance(n_members, numbers.Integral) or n_members < 1:
        raise ValueError(f"n_members must be a positive integer, got {n_members!r}.")
    rng = check_random_state(random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    if estimator is None:
        estimator = SelectiveKernelFusion(taxonomy=taxonomy, random_state=seed)
    estimator = clone(estimator).set_params(taxonomy=taxonomy, n_models=None, head="identity")
    scorer = _make_scorer(scoring, y_arr, y_idx, taxonomy)
    if isinstance(cv, numbers.Integral):
        cv = StratifiedKFold(cv, shuffle=True, random_state=seed)
    arrays = dict(zip(names, [np.asarray(a, dtype=np.float64) for a in arrays]))
    solo = pd.Series({n: scorer(arrays[n]) for n in names})
    solo = solo.sort_values(ascending=False, kind="stable")
    pool = list(solo.index[: max_candidates or len(solo)])
    selected = [pool[0]]
    rows = [{"step": 0, "added": pool[0], "score": float(solo.iloc[0])}]
    for step in range(1, min(n_members, len(pool))):
        remaining = [c for c in pool if c not in selected]
        scores = Parallel(n_jobs=n_jobs)(
            delayed(_fusion_cv_score)(
                estimator,
                np.hstack([arrays[m] for m in [*selected, c]]),
                y_arr,
                cv,
                scorer,
                seed,
                taxonomy,
            )
            for c in remaining
        )
        best = int(np.argmax(scores))
        selected.append(remaining[best])
        rows.append({"step": step, "added": remaining[best], "score": float(scores[best])})
    return selected, pd.DataFrame(rows)


def _check_instances():
    return [
        (
            SelectiveKernelFusion(
                n_models=1, inputs="scores", head="linear", max_epochs=10, random_state=0
            ),
            _taxonomy_failures(),
        ),
    ]
