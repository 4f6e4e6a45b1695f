"""Private torch side of GraNd / EL2N scoring (used by :mod:`sklearn_mesh.filtering`).

Everything here works on validated arrays: ``X`` a 2-D float array, ``y_idx`` integer
class indices in ``[0, n_classes)``. The public, validated entry points are
:func:`sklearn_mesh.filtering.el2n_scores` and :func:`sklearn_mesh.filtering.grand_scores`.

Determinism and row-order invariance
------------------------------------
Mini-batch order and K-fold assignment are derived from a hash of each row's *content*
(features and label) mixed with a seed drawn from ``random_state``, not from row
positions. Permuting the rows of ``(X, y)`` therefore gives exactly the same mini-batches,
the same trained models and a permuted copy of the same scores.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SCORE_METHODS = ("el2n", "grand")
# memory budget for the per-sample gradients materialised by one vmap call
_GRAD_BUDGET_BYTES = 256 * 2**20

_U64 = np.uint64


# --------------------------------------------------------------------------- row keys
def row_keys(X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """64-bit hash of each row's bytes and label (identical rows get identical keys)."""
    X = np.ascontiguousarray(X)
    keys = np.empty(X.shape[0], dtype=_U64)
    for i in range(X.shape[0]):
        h = hashlib.blake2b(X[i].tobytes(), digest_size=8)
        h.update(int(y_idx[i]).to_bytes(8, "little", signed=True))
        keys[i] = int.from_bytes(h.digest(), "little")
    return keys


def mix(keys: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of ``keys XOR seed``: a seed-dependent pseudo-random order key."""
    with np.errstate(over="ignore"):
        z = keys ^ _U64(seed & 0xFFFFFFFFFFFFFFFF)
        z = z + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def content_order(keys: np.ndarray, seed: int) -> np.ndarray:
    """A pseudo-random permutation of the rows that depends only on their content."""
    return np.argsort(mix(keys, seed), kind="stable")


def content_folds(keys: np.ndarray, y_idx: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Stratified fold id of every row, derived from row content (order-invariant)."""
    folds = np.empty(keys.shape[0], dtype=np.intp)
    order = content_order(keys, seed)
    offset = 0
    for c in np.unique(y_idx):
        members = order[y_idx[order] == c]
        folds[members] = (np.arange(members.size) + offset) % n_splits
        offset += members.size
    return folds


# --------------------------------------------------------------------------- model
class _SoftmaxMLP(nn.Module):
    """Default scoring model: linear softmax (``hidden_units=0``) or a 1-hidden-layer MLP."""

    def __init__(self, n_features: int, n_classes: int, hidden_units: int):
        super().__init__()
        if hidden_units:
            self.net = nn.Sequential(
                nn.Linear(n_features, hidden_units), nn.ReLU(), nn.Linear(hidden_units, n_classes)
            )
        else:
            self.net = nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.net(x)


def build_model(module, n_features: int, n_classes: int, hidden_units: int) -> nn.Module:
    if module is None:
        return _SoftmaxMLP(n_features, n_classes, hidden_units)
    model = module(n_features, n_classes)
    if not isinstance(model, nn.Module):
        raise TypeError(
            "`module` must be a callable (n_features, n_classes) -> torch.nn.Module returning "
            f"logits of shape (batch, n_classes); it returned {type(model).__name__}."
        )
    return model


@contextmanager
def _seeded(seed: int):
    """Run a block with the global torch RNG seeded, restoring its state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train_model(model, Xt, yt, keys, *, n_epochs, batch_size, lr, seed):
    """Adam on mean cross-entropy; batches in a content-derived order per epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    n = Xt.shape[0]
    for epoch in range(n_epochs):
        order = torch.from_numpy(content_order(keys, seed + 7919 * (epoch + 1)))
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size].to(Xt.device)
            loss = F.cross_entropy(model(Xt[idx]), yt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def _check_logits(out, n_rows, n_classes):
    if out.ndim != 2 or out.shape != (n_rows, n_classes):
        raise ValueError(
            f"The scoring module returned logits of shape {tuple(out.shape)}; expected "
            f"({n_rows}, {n_classes}) = (batch, n_classes)."
        )


@torch.no_grad()
def predict_proba(model, Xt, n_classes, batch_size=4096) -> np.ndarray:
    out = []
    for start in range(0, Xt.shape[0], batch_size):
        logits = model(Xt[start : start + batch_size])
        _check_logits(logits, min(batch_size, Xt.shape[0] - start), n_classes)
        out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, n_classes))


def el2n_from_proba(proba: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """``||proba - onehot(y)||_2`` per row, clipped to ``[0, sqrt(2)]`` (rounding only)."""
    diff = np.array(proba, dtype=np.float64, copy=True)
    diff[np.arange(diff.shape[0]), y_idx] -= 1.0
    return np.clip(np.sqrt(np.einsum("ij,ij->i", diff, diff)), 0.0, np.sqrt(2.0))


def grad_norms(model, Xt, yt, *, chunk_size=None, method="auto") -> np.ndarray:
    """Per-sample ``||d loss_i / d theta||_2`` over all trainable parameters.

    ``method="vmap"``: ``torch.func`` (``functional_call`` + ``vmap`` + ``grad``), any
    module. ``method="auto"`` first tries the exact closed form of :func:`_linear_grad_norms`
    (valid when every trainable parameter belongs to an ``nn.Linear`` called once on 2-D
    input, as in the built-in model) and falls back to ``vmap`` otherwise.
    """
    if method == "auto":
        out = _linear_grad_norms(model, Xt, yt)
        if out is not None:
            return out
    return _vmap_grad_norms(model, Xt, yt, chunk_size=chunk_size)


def _vmap_grad_norms(model, Xt, yt, *, chunk_size=None) -> np.ndarray:
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    frozen = {k: v.detach() for k, v in model.named_parameters() if not v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    n_params = sum(p.numel() for p in params.values())
    if chunk_size is None:
        chunk_size = int(max(1, min(4096, _GRAD_BUDGET_BYTES // max(1, 4 * n_params))))

    def loss_one(p, x, t):
        out = functional_call(model, ({**p, **frozen}, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(out, t.unsqueeze(0))

    def sq_norm_one(p, x, t):
        g = grad(loss_one)(p, x, t)
        return sum(v.pow(2).sum() for v in g.values())

    batched = vmap(sq_norm_one, in_dims=(None, 0, 0))
    out = np.empty(Xt.shape[0], dtype=np.float64)
    for start in range(0, Xt.shape[0], chunk_size):
        sl = slice(start, start + chunk_size)
        out[sl] = batched(params, Xt[sl], yt[sl]).double().sqrt().cpu().numpy()
    return out


def _linear_grad_norms(model, Xt, yt, batch_size=1024):
    """Exact per-sample gradient norms for models whose trainable parameters are all
    ``nn.Linear`` weights / biases, each layer called once on 2-D input.

    For one sample, a linear layer with input ``a`` and output gradient ``d`` has weight
    gradient ``d a^T`` (Frobenius norm ``||d|| ||a||``) and bias gradient ``d``; the
    output gradients ``d`` of every sample come from one backward pass of the *summed*
    loss (samples do not interact in eval mode). Returns None when the model does not
    qualify, so the caller falls back to ``torch.func``.
    """
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    linears = []
    covered = set()
    for mod in model.modules():
        own = [p for p in mod.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if not isinstance(mod, nn.Linear):
            return None
        linears.append(mod)
        covered.update(id(p) for p in own)
    if not linears or covered != trainable:
        return None
    out = np.empty(Xt.shape[0], dtype=np.float64)
    for start in range(0, Xt.shape[0], batch_size):
        seen = {}

        def hook(mod, inputs, output, seen=seen):
            seen.setdefault(mod, []).append((inputs[0].detach(), output))

        handles = [m.register_forward_hook(hook) for m in linears]
        try:
            xb, yb = Xt[start : start + batch_size], yt[start : start + batch_size]
            with torch.enable_grad():
                logits = model(xb)
                if any(len(seen.get(m, ())) != 1 or seen[m][0][0].ndim != 2 for m in linears):
                    return None
                outs = [seen[m][0][1] for m in linears]
                if not all(o.requires_grad for o in outs):
                    return None
                loss = F.cross_entropy(logits, yb, reduction="sum")
                deltas = torch.autograd.grad(loss, outs)
        finally:
            for h in handles:
                h.remove()
        sq = torch.zeros(xb.shape[0], dtype=torch.float64, device=xb.device)
        for m, d in zip(linears, deltas):
            a = seen[m][0][0]
            d2 = d.double().pow(2).sum(1)
            if m.weight.requires_grad:
                sq += d2 * a.double().pow(2).sum(1)
            if m.bias is not None and m.bias.requires_grad:
                sq += d2
        out[start : start + xb.shape[0]] = sq.sqrt().cpu().numpy()
    return out


# --------------------------------------------------------------------------- driver
def _standardize(X, train, train_keys, chunk=4096):
    """Standardise all rows of ``X`` with the mean / std of the rows ``train``.

    The statistics are accumulated in float64 over chunks taken in content order, so they
    do not depend on the row order of ``X`` (bitwise).
    """
    order = train[content_order(train_keys, 0)]
    total = np.zeros(X.shape[1])
    for start in range(0, order.size, chunk):
        total += X[order[start : start + chunk]].sum(axis=0, dtype=np.float64)
    mean = total / max(order.size, 1)
    sq = np.zeros(X.shape[1])
    for start in range(0, order.size, chunk):
        d = X[order[start : start + chunk]] - mean
        sq += np.einsum("ij,ij->j", d, d)
    std = np.sqrt(sq / max(order.size, 1))
    std[~(std > 1e-12)] = 1.0
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, X.shape[0], chunk):
        out[start : start + chunk] = (X[start : start + chunk] - mean) / std
    return out


def compute_scores(
    X,
    y_idx,
    n_classes,
    *,
    methods=SCORE_METHODS,
    module=None,
    hidden_units=128,
    n_epochs=5,
    n_runs=10,
    batch_size=128,
    lr=1e-3,
    cv=None,
    standardize=True,
    device="cpu",
    random_state=None,
    keys=None,
    chunk_size=None,
):
    """Scores averaged over ``n_runs`` runs, plus the mean (out-of-fold) probabilities.

    Returns a dict with one float64 array per requested method and ``"proba"``
    (``(n, n_classes)``). ``random_state`` must be a ``numpy.random.RandomState``.
    """
    n = X.shape[0]
    keys = row_keys(X, y_idx) if keys is None else keys
    seeds = random_state.randint(0, 2**31 - 1, size=(n_runs, 2))
    totals = {m: np.zeros(n) for m in methods}
    proba_total = np.zeros((n, n_classes))
    dev = torch.device(device)
    yt_all = torch.as_tensor(np.asarray(y_idx, dtype=np.int64), device=dev)
    X_plain = None if standardize else torch.as_tensor(np.asarray(X, dtype=np.float32), device=dev)
    for run_seed, fold_seed in seeds:
        run_seed, fold_seed = int(run_seed), int(fold_seed)
        if cv is None:
            splits = [(np.arange(n), np.arange(n))]
        elif isinstance(cv, int):
            folds = content_folds(keys, y_idx, cv, fold_seed)
            splits = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(cv)]
        else:
            splits = list(cv.split(X, y_idx))
            counts = np.bincount(np.concatenate([t for _, t in splits]), minlength=n)
            if not np.all(counts == 1):
                raise ValueError(
                    "The `cv` splitter must put every sample in exactly one test fold (a "
                    "K-fold-style partition), so each sample gets one out-of-sample score."
                )
        for k, (train, test) in enumerate(splits):
            if test.size == 0:
                continue
            if train.size == 0:
                raise ValueError("A cross-validation split has no training samples.")
            # score in content order: results do not depend on the row order of X
            test = test[content_order(keys[test], 0)]
            if X_plain is None:
                Xt = torch.from_numpy(_standardize(X, train, keys[train])).to(dev)
            else:
                Xt = X_plain
            seed = run_seed + 104729 * k
            with _seeded(seed):
                model = build_model(module, X.shape[1], n_classes, hidden_units).to(dev)
                tr = torch.as_tensor(train, device=dev)
                train_model(
                    model, Xt[tr], yt_all[tr], keys[train],
                    n_epochs=n_epochs, batch_size=batch_size, lr=lr, seed=seed,
                )
            te = torch.as_tensor(test, device=dev)
            proba = predict_proba(model, Xt[te], n_classes)
            proba_total[test] += proba
            if "el2n" in methods:
                totals["el2n"][test] += el2n_from_proba(proba, y_idx[test])
            if "grand" in methods:
                totals["grand"][test] += grad_norms(model, Xt[te], yt_all[te], chunk_size=chunk_size)
            del Xt, model
    out = {m: totals[m] / n_runs for m in methods}
    out["proba"] = proba_total / n_runs
    return out
