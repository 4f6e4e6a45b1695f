"""Training objectives of MESH (paper section 2.3, eq. 1-4) as plain torch modules.

Every loss takes ``(output, y)`` where ``output`` is the :class:`~sklearn_mesh.nn.modules.ProxyOutput`
of :class:`~sklearn_mesh.nn.modules.ProxyNet` (losses that only need logits also accept a
plain logits tensor) and ``y`` holds second-level class indices in taxonomy order. Each
returns the scalar total and keeps its separate terms, detached, in ``last_terms_``
(a ``dict`` of 0-d tensors, ``"loss"`` being the total) so that training can log them.

Hyper-parameters are constructor arguments; the proxies are parameters of the network,
not of the loss (see :mod:`sklearn_mesh.nn.modules`), so a loss holds no weights.

Named objectives (:func:`make_loss`):

========================  =====================================================
``"ce"``                  cross-entropy with label smoothing 0.01
``"focal"``               focal loss, gamma 2
``"hproxy"``              hierarchical proxy loss (alpha..delta 0.4/0.3/0.15/0.05)
``"proxy_anchor"``        Proxy Anchor (margin 0.1, alpha 32)
``"focal+hproxy"``        0.9 focal + 0.1 hproxy (MESH fine-tuning)
``"proxy_anchor+focal"``  1.0 proxy_anchor + 1.0 focal (MESH pre-training)
========================  =====================================================
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..taxonomy import check_taxonomy
from .modules import ProxyOutput

__all__ = [
    "CrossEntropyLoss",
    "FocalLoss",
    "HProxyLoss",
    "ProxyAnchorLoss",
    "WeightedSumLoss",
    "LOSSES",
    "make_loss",
    "safe_normalize",
    "cosine_matrix",
]


def safe_normalize(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise the last axis without overflow or 0/0 for any input scale.

    Rows are first divided by their (detached) largest absolute entry — normalisation is
    scale invariant, so value and gradient are unchanged — then ``F.normalize`` applies.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.losses import safe_normalize
    >>> safe_normalize(torch.tensor([[3e30, 4e30], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    scale = x.detach().abs().amax(dim=-1, keepdim=True)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return F.normalize(x / scale, dim=-1)


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.losses import cosine_matrix
    >>> cosine_matrix(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 5.0]]))
    tensor([[1., 0.]])
    """
    return safe_normalize(a) @ safe_normalize(b).T


def _logits(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple):
        return output[0]
    raise TypeError(f"Expected a ProxyOutput or a logits tensor, got {type(output)!r}.")


def _proxy_output(output, who: str) -> ProxyOutput:
    if isinstance(output, tuple) and len(output) == 4:
        return ProxyOutput(*output)
    raise TypeError(
        f"{who} needs the embedding and the proxies: pass the ProxyOutput returned by "
        f"sklearn_mesh.nn.modules.ProxyNet, not {type(output).__name__}."
    )


class _TermsMixin:
    def _record(self, total: torch.Tensor, **terms: torch.Tensor) -> torch.Tensor:
        self.last_terms_ = {"loss": total.detach(), **{k: v.detach() for k, v in terms.items()}}
        return total


class CrossEntropyLoss(_TermsMixin, nn.Module):
    """Cross-entropy on the logits, with label smoothing.

    Parameters
    ----------
    label_smoothing : float, default=0.01

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.losses import CrossEntropyLoss
    >>> loss = CrossEntropyLoss(label_smoothing=0.0)
    >>> round(float(loss(torch.zeros(2, 4), torch.tensor([0, 3]))), 4)  # log(4)
    1.3863
    """

    def __init__(self, label_smoothing: float = 0.01):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, output, y):
        total = F.cross_entropy(_logits(output), y, label_smoothing=self.label_smoothing)
        return self._record(total)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}"


class FocalLoss(_TermsMixin, nn.Module):
    """Focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al. 2017), averaged over samples.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter; ``gamma=0`` is plain cross-entropy.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.losses import FocalLoss
    >>> logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> bool(FocalLoss(gamma=2)(logits, y) < FocalLoss(gamma=0)(logits, y))
    True
    """

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = float(gamma)

    def forward(self, output, y):
        logp = F.log_softmax(_logits(output), dim=-1)
        logp_t = logp.gather(1, y.view(-1, 1)).squeeze(1)
        p_t = logp_t.exp()
        weight = (1.0 - p_t).clamp_min(0.0) ** self.gamma if self.gamma else 1.0
        total = -(weight * logp_t).mean()
        return self._record(total)

    def extra_repr(self):
        return f"gamma={self.gamma}"


def _upper_pairs(mask: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.triu(mask, k=1), dtype=torch.bool)


class HProxyLoss(_TermsMixin, nn.Module):
    r"""Hierarchical proxy loss (MESH eq. 1-4).

    .. math::
        L = L_{second} + \alpha L_{top} + \beta L_{align} + \gamma L_{sib} + \delta L_{top\text{-}sep}

    * ``second`` = CE(cos(z, P_second) / tau, y), ``top`` = CE(cos(z, P_top) / tau, parent(y));
    * ``align`` = mean over second-level classes k of ``1 - cos(P_second[k], P_top[parent(k)])``;
    * ``sib`` = mean over pairs of sibling proxies (same parent) of
      ``max(0, cos - sibling_margin)``;
    * ``top_sep`` = mean over pairs of top-level proxies of ``max(0, cos - top_margin)``.

    The parent of every second-level class comes from ``taxonomy.parent_index``.

    Parameters
    ----------
    taxonomy : Taxonomy or None, default=None
        The hierarchy (None: BST). Its leaf count must match the network's proxies.
    temperature : float, default=0.07
    alpha, beta, gamma, delta : float, default=0.4, 0.3, 0.15, 0.05
    sibling_margin : float, default=0.4
    top_margin : float, default=0.0

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.losses import HProxyLoss
    >>> from sklearn_mesh.nn.modules import ProxyNet
    >>> from sklearn_mesh.taxonomy import BST
    >>> net = ProxyNet(8, n_classes=BST.n_leaves, n_tops=BST.n_tops, embedding_dim=16)
    >>> loss = HProxyLoss(BST)
    >>> value = loss(net(torch.randn(4, 8)), torch.tensor([0, 5, 11, 22]))
    >>> sorted(loss.last_terms_)
    ['align', 'loss', 'second', 'sib', 'top', 'top_sep']
    """

    def __init__(
        self,
        taxonomy=None,
        *,
        temperature: float = 0.07,
        alpha: float = 0.4,
        beta: float = 0.3,
        gamma: float = 0.15,
        delta: float = 0.05,
        sibling_margin: float = 0.4,
        top_margin: float = 0.0,
    ):
        super().__init__()
        tax = check_taxonomy(taxonomy)
        parent = np.asarray(tax.parent_index, dtype=np.int64)
        self.n_classes, self.n_tops = tax.n_leaves, tax.n_tops
        self.temperature = float(temperature)
        self.alpha, self.beta, self.gamma, self.delta = map(float, (alpha, beta, gamma, delta))
        self.sibling_margin = float(sibling_margin)
        self.top_margin = float(top_margin)
        self.register_buffer("parent_index", torch.tensor(parent), persistent=False)
        self.register_buffer(
            "sibling_pairs", _upper_pairs(parent[:, None] == parent[None, :]), persistent=False
        )
        self.register_buffer(
            "top_pairs", _upper_pairs(np.ones((self.n_tops, self.n_tops), bool)), persistent=False
        )

    def forward(self, output, y):
        out = _proxy_output(output, "HProxyLoss")
        if out.proxies.shape[0] != self.n_classes or out.top_proxies.shape[0] != self.n_tops:
            raise ValueError(
                f"HProxyLoss was built for {self.n_classes} second-level and {self.n_tops} "
                f"top-level classes, but the network has {out.proxies.shape[0]} and "
                f"{out.top_proxies.shape[0]} proxies. Use the same taxonomy for both."
            )
        z = safe_normalize(out.embedding)
        p2 = safe_normalize(out.proxies)
        p1 = safe_normalize(out.top_proxies)
        second = F.cross_entropy(z @ p2.T / self.temperature, y)
        top = F.cross_entropy(z @ p1.T / self.temperature, self.parent_index[y])
        align = (1.0 - (p2 * p1[self.parent_index]).sum(-1)).mean()
        sib = _mean_hinge(p2 @ p2.T, self.sibling_pairs, self.sibling_margin)
        top_sep = _mean_hinge(p1 @ p1.T, self.top_pairs, self.top_margin)
        total = (
            second + self.alpha * top + self.beta * align + self.gamma * sib
            + self.delta * top_sep
        )
        return self._record(total, second=second, top=top, align=align, sib=sib,
                            top_sep=top_sep)

    def extra_repr(self):
        return (
            f"temperature={self.temperature}, alpha={self.alpha}, beta={self.beta}, "
            f"gamma={self.gamma}, delta={self.delta}, sibling_margin={self.sibling_margin}, "
            f"top_margin={self.top_margin}"
        )


def _mean_hinge(cos: torch.Tensor, pairs: torch.Tensor, margin: float) -> torch.Tensor:
    if not bool(pairs.any()):
        return cos.new_zeros(())
    return F.relu(cos[pairs] - margin).mean()


class ProxyAnchorLoss(_TermsMixin, nn.Module):
    r"""Proxy Anchor loss (Kim et al., CVPR 2020), one proxy per second-level class.

    .. math::
        L = \frac{1}{|P^+|}\sum_{p\in P^+}\log\Big(1+\sum_{x\in X_p^+}e^{-\alpha(s(x,p)-\delta)}\Big)
          + \frac{1}{|P|}\sum_{p\in P}\log\Big(1+\sum_{x\in X_p^-}e^{\alpha(s(x,p)+\delta)}\Big)

    ``P^+`` are the proxies with a positive sample in the batch; ``s`` is the cosine
    similarity between the embedding and the second-level proxies (``output.proxies``).

    Parameters
    ----------
    margin : float, default=0.1
    alpha : float, default=32.0

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.losses import ProxyAnchorLoss
    >>> from sklearn_mesh.nn.modules import ProxyNet
    >>> net = ProxyNet(5, n_classes=3, n_tops=2, embedding_dim=4)
    >>> loss = ProxyAnchorLoss()
    >>> bool(loss(net(torch.randn(6, 5)), torch.tensor([0, 1, 2, 0, 1, 2])) > 0)
    True
    """

    def __init__(self, margin: float = 0.1, alpha: float = 32.0):
        super().__init__()
        self.margin = float(margin)
        self.alpha = float(alpha)

    def forward(self, output, y):
        out = _proxy_output(output, "ProxyAnchorLoss")
        cos = cosine_matrix(out.embedding, out.proxies)  # (N, K)
        pos = F.one_hot(y, cos.shape[1]).bool()
        neg_inf = torch.finfo(cos.dtype).min
        pos_logit = torch.where(pos, -self.alpha * (cos - self.margin), neg_inf)
        neg_logit = torch.where(~pos, self.alpha * (cos + self.margin), neg_inf)
        # log(1 + sum exp(a)) == softplus(logsumexp(a)), stable for any a
        pos_term = F.softplus(torch.logsumexp(pos_logit, dim=0))  # (K,)
        neg_term = F.softplus(torch.logsumexp(neg_logit, dim=0))
        with_pos = pos.any(dim=0)
        positive = pos_term[with_pos].sum() / with_pos.sum().clamp_min(1)
        negative = neg_term.mean()
        total = positive + negative
        return self._record(total, positive=positive, negative=negative)

    def extra_repr(self):
        return f"margin={self.margin}, alpha={self.alpha}"


class WeightedSumLoss(_TermsMixin, nn.Module):
    """``sum_k weights[k] * losses[k](output, y)``.

    ``last_terms_`` holds the total, each component's value under its name and each
    component's own terms as ``"<name>.<term>"``.

    Parameters
    ----------
    losses : mapping of str to nn.Module
    weights : mapping of str to float
        Same keys as ``losses``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.losses import CrossEntropyLoss, FocalLoss, WeightedSumLoss
    >>> loss = WeightedSumLoss({"ce": CrossEntropyLoss(), "focal": FocalLoss()},
    ...                        {"ce": 0.5, "focal": 0.5})
    >>> _ = loss(torch.zeros(2, 3), torch.tensor([0, 1]))
    >>> sorted(loss.last_terms_)
    ['ce', 'focal', 'loss']
    """

    def __init__(self, losses: Mapping[str, nn.Module], weights: Mapping[str, float]):
        super().__init__()
        if set(losses) != set(weights):
            raise ValueError(
                f"weights must have the same keys as losses: {sorted(losses)} vs "
                f"{sorted(weights)}."
            )
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = {k: float(weights[k]) for k in losses}

    def forward(self, output, y):
        total = 0.0
        terms = {}
        for name, loss in self.losses.items():
            value = loss(output, y)
            total = total + self.weights[name] * value
            terms[name] = value
            for key, sub in (getattr(loss, "last_terms_", None) or {}).items():
                if key != "loss":
                    terms[f"{name}.{key}"] = sub
        return self._record(total, **terms)

    def extra_repr(self):
        return f"weights={self.weights}"


_COMPONENTS = {
    "ce": lambda tax, kw: CrossEntropyLoss(**kw),
    "focal": lambda tax, kw: FocalLoss(**kw),
    "hproxy": lambda tax, kw: HProxyLoss(tax, **kw),
    "proxy_anchor": lambda tax, kw: ProxyAnchorLoss(**kw),
}

#: Named objectives -> default component weights.
LOSSES = {
    "ce": {"ce": 1.0},
    "focal": {"focal": 1.0},
    "hproxy": {"hproxy": 1.0},
    "proxy_anchor": {"proxy_anchor": 1.0},
    "focal+hproxy": {"focal": 0.9, "hproxy": 0.1},
    "proxy_anchor+focal": {"proxy_anchor": 1.0, "focal": 1.0},
}


def make_loss(name: str, taxonomy=None, *, weights=None, params=None) -> nn.Module:
    """Build a named objective.

    Parameters
    ----------
    name : str
        A key of :data:`LOSSES` (``"ce"``, ``"focal"``, ``"hproxy"``, ``"proxy_anchor"``,
        ``"focal+hproxy"``, ``"proxy_anchor+focal"``).
    taxonomy : Taxonomy or None
        Hierarchy for the proxy losses (None: BST).
    weights : dict, optional
        Component weights overriding the defaults, e.g. ``{"focal": 0.8, "hproxy": 0.2}``.
    params : dict, optional
        Constructor arguments per component, e.g. ``{"hproxy": {"alpha": 0.3}}``.

    Returns
    -------
    loss : nn.Module
        A single loss for one-component objectives without explicit weights, otherwise
        a :class:`WeightedSumLoss`.

    Examples
    --------
    >>> from sklearn_mesh.nn.losses import make_loss
    >>> make_loss("focal+hproxy").weights
    {'focal': 0.9, 'hproxy': 0.1}
    >>> make_loss("focal", params={"focal": {"gamma": 1.0}})
    FocalLoss(gamma=1.0)
    """
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)} or pass a module.")
    default = LOSSES[name]
    params = dict(params or {})
    unknown = sorted(set(params) - set(default))
    if unknown:
        raise ValueError(
            f"loss_params for {name!r} may only name its components {sorted(default)}; got "
            f"{unknown}."
        )
    w = dict(default)
    if weights is not None:
        extra = sorted(set(weights) - set(default))
        if extra:
            raise ValueError(
                f"loss_weights for {name!r} may only name its components {sorted(default)}; "
                f"got {extra}."
            )
        w.update({k: float(v) for k, v in weights.items()})
    tax = check_taxonomy(taxonomy)
    parts = {k: _COMPONENTS[k](tax, dict(params.get(k, {}))) for k in default}
    if len(parts) == 1 and weights is None:
        return next(iter(parts.values()))
    return WeightedSumLoss(parts, w)
