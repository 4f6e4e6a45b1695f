"""Torch modules of the MESH classifier (paper section 2.3).

The network is ``features -> encoder -> embedding z -> head``:

* ``encoder="linear"`` — the paper's simplified head: one ``Linear(n_features, d)``.
* ``encoder="mlp"`` — the official DCASE baseline's per-modality encoder (BatchNorm,
  Linear to ``h = max(n_features, 2 d)``, residual blocks, MLP down to ``d``, BatchNorm),
  kept as a comparison model.
* ``head="cosine"`` — logits are ``cos(z, P_second) / temperature``;
  ``head="linear"`` — a ``Linear(d, n_classes)`` classifier;
  ``head="mlp"`` — the baseline's residual classifier head (128→256→128→64, two residual
  blocks, 64→32→K).

**Where the proxies live.** The learnable proxies ``P_second`` (``n_classes × d``) and
``P_top`` (``n_tops × d``) are parameters *of the module*, not of the loss: the cosine head
needs ``P_second`` at prediction time, the optimizer sees every parameter of the module,
and saving / warm-starting the module saves / transfers the proxies. Every head has them
(proxy-based objectives can be combined with any head). The module returns a
:class:`ProxyOutput` named tuple ``(logits, embedding, proxies, top_proxies)``; the
losses of :mod:`sklearn_mesh.nn.losses` read what they need from it, and skorch uses the
first element (``logits``) for ``predict_proba``.

**Augmentation** (training mode only, as in the official baseline): Gaussian noise of
standard deviation ``noise_std`` is added to the input features, then each sample has a
random fraction ``f ~ U(0, max_mask_fraction)`` of its feature dimensions set to zero.
"""

from __future__ import annotations

from operator import itemgetter

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ProxyOutput",
    "FeatureAugmentation",
    "ResidualBlock",
    "BaselineMLPEncoder",
    "BaselineMLPHead",
    "ProxyNet",
    "proxy_logits",
]


class ProxyOutput(tuple):
    """What :class:`ProxyNet` returns: a 4-tuple with named fields.

    A plain ``tuple`` subclass (rather than a ``NamedTuple``) so that it can be rebuilt
    from an iterable, as skorch does when it moves outputs between devices.

    Attributes
    ----------
    logits : Tensor of shape (n_samples, n_classes)
        The scores used for prediction (softmax gives ``predict_proba``).
    embedding : Tensor of shape (n_samples, embedding_dim)
        The embedding ``z`` (not normalised).
    proxies : Tensor of shape (n_classes, embedding_dim)
        Second-level proxies ``P_second`` (not normalised).
    top_proxies : Tensor of shape (n_tops, embedding_dim)
        Top-level proxies ``P_top`` (not normalised).

    Examples
    --------
    >>> from sklearn_mesh.nn.modules import ProxyOutput
    >>> out = ProxyOutput(1, 2, 3, 4)
    >>> out.proxies, ProxyOutput(iter(out)) == out
    (3, True)
    """

    __slots__ = ()
    _fields = ("logits", "embedding", "proxies", "top_proxies")

    def __new__(cls, *args):
        if len(args) == 1:
            args = tuple(args[0])
        if len(args) != 4:
            raise TypeError(f"ProxyOutput needs 4 fields {cls._fields}, got {len(args)}.")
        return super().__new__(cls, args)

    def __getnewargs__(self):
        return tuple(self)

    logits = property(itemgetter(0))
    embedding = property(itemgetter(1))
    proxies = property(itemgetter(2))
    top_proxies = property(itemgetter(3))

    def __repr__(self):
        return "ProxyOutput(" + ", ".join(
            f"{k}={getattr(v, 'shape', v)}" for k, v in zip(self._fields, self)) + ")"


def proxy_logits(z: torch.Tensor, proxies: torch.Tensor, temperature: float) -> torch.Tensor:
    """``cos(z_i, p_k) / temperature`` for every sample ``i`` and proxy ``k``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.modules import proxy_logits
    >>> proxy_logits(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 3.0]]), 0.5)
    tensor([[2., 0.]])
    """
    return F.normalize(z, dim=-1) @ F.normalize(proxies, dim=-1).T / temperature


class FeatureAugmentation(nn.Module):
    """The baseline's embedding augmentation; the identity in eval mode.

    Parameters
    ----------
    noise_std : float, default=1e-4
        Standard deviation of the additive Gaussian noise.
    max_mask_fraction : float, default=0.7
        Each sample zeroes a random fraction ``U(0, max_mask_fraction)`` of its dimensions.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.modules import FeatureAugmentation
    >>> aug = FeatureAugmentation().eval()
    >>> x = torch.ones(2, 3)
    >>> bool(torch.equal(aug(x), x))
    True
    """

    def __init__(self, noise_std: float = 1e-4, max_mask_fraction: float = 0.7):
        super().__init__()
        self.noise_std = float(noise_std)
        self.max_mask_fraction = float(max_mask_fraction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        if self.max_mask_fraction > 0:
            frac = torch.rand(x.shape[0], 1, device=x.device, dtype=x.dtype)
            frac = frac * self.max_mask_fraction
            keep = torch.rand_like(x) >= frac
            x = x * keep
        return x

    def extra_repr(self) -> str:
        return f"noise_std={self.noise_std}, max_mask_fraction={self.max_mask_fraction}"


class ResidualBlock(nn.Module):
    """``x + BN(Linear(Dropout(LeakyReLU(BN(Linear(x))))))`` with a 2x wide middle.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.modules import ResidualBlock
    >>> ResidualBlock(4).eval()(torch.zeros(2, 4)).shape
    torch.Size([2, 4])
    """

    def __init__(self, width: int, dropout: float = 0.1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, 2 * width),
            nn.BatchNorm1d(2 * width),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(2 * width, width),
            nn.BatchNorm1d(width),
        )

    def forward(self, x):
        return x + self.body(x)


class BaselineMLPEncoder(nn.Module):
    """The official baseline's per-modality encoder, ending in a ``d``-dim embedding.

    ``BatchNorm -> Linear(n_features, h) -> n_blocks x ResidualBlock(h) -> Linear(h, 2d)
    -> LeakyReLU -> Dropout -> Linear(2d, d) -> BatchNorm`` with ``h = max(n_features, 2d)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.modules import BaselineMLPEncoder
    >>> BaselineMLPEncoder(10, 8).eval()(torch.zeros(3, 10)).shape
    torch.Size([3, 8])
    """

    def __init__(self, n_features: int, embedding_dim: int = 128, *, n_blocks: int = 3,
                 dropout: float = 0.1):
        super().__init__()
        hidden = max(n_features, 2 * embedding_dim)
        self.net = nn.Sequential(
            nn.BatchNorm1d(n_features),
            nn.Linear(n_features, hidden),
            *[ResidualBlock(hidden, dropout) for _ in range(n_blocks)],
            nn.Linear(hidden, 2 * embedding_dim),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(2 * embedding_dim, embedding_dim),
            nn.BatchNorm1d(embedding_dim),
        )

    def forward(self, x):
        return self.net(x)


class BaselineMLPHead(nn.Module):
    """The official baseline's classifier head: d→256→128→64, 2 residual blocks, 64→32→K.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.modules import BaselineMLPHead
    >>> BaselineMLPHead(8, 23).eval()(torch.zeros(2, 8)).shape
    torch.Size([2, 23])
    """

    def __init__(self, embedding_dim: int, n_classes: int, *, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embedding_dim, 256),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(256, 128),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 64),
            ResidualBlock(64, dropout),
            ResidualBlock(64, dropout),
            nn.Linear(64, 32),
            nn.LeakyReLU(),
            nn.Linear(32, n_classes),
        )

    def forward(self, z):
        return self.net(z)


class ProxyNet(nn.Module):
    """Encoder to an embedding ``z``, learnable level-specific proxies, and a head.

    Parameters
    ----------
    n_features : int
        Input width.
    n_classes : int
        Number of second-level classes (rows of ``proxies``).
    n_tops : int
        Number of top-level classes (rows of ``top_proxies``).
    embedding_dim : int, default=128
        Width of ``z`` and of the proxies.
    encoder : {"linear", "mlp"}, default="linear"
        ``"linear"``: one ``Linear`` projection (MESH); ``"mlp"``: the official baseline's
        residual MLP encoder.
    head : {"cosine", "linear", "mlp"}, default="cosine"
        ``"cosine"``: logits ``cos(z, P_second) / temperature``; ``"linear"``: a linear
        classifier on ``z``; ``"mlp"``: the baseline's residual classifier head.
    temperature : float, default=0.07
        Temperature of the cosine head.
    noise_std, max_mask_fraction : float
        Training-time augmentation, see :class:`FeatureAugmentation`.
    dropout : float, default=0.1
        Dropout of the MLP encoder / head (unused by the linear ones).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.nn.modules import ProxyNet
    >>> net = ProxyNet(6, n_classes=4, n_tops=2, embedding_dim=8).eval()
    >>> out = net(torch.randn(3, 6))
    >>> out.logits.shape, out.embedding.shape, out.proxies.shape, out.top_proxies.shape
    (torch.Size([3, 4]), torch.Size([3, 8]), torch.Size([4, 8]), torch.Size([2, 8]))
    """

    #: Names of the parameters that belong to the output side (see ``warm_start_heads``).
    HEAD_PREFIXES = ("proxies", "top_proxies", "classifier.")

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        n_tops: int,
        *,
        embedding_dim: int = 128,
        encoder: str = "linear",
        head: str = "cosine",
        temperature: float = 0.07,
        noise_std: float = 0.0,
        max_mask_fraction: float = 0.0,
        dropout: float = 0.1,
    ):
        super().__init__()
        if encoder not in ("linear", "mlp"):
            raise ValueError(f"encoder must be 'linear' or 'mlp', got {encoder!r}.")
        if head not in ("cosine", "linear", "mlp"):
            raise ValueError(f"head must be 'cosine', 'linear' or 'mlp', got {head!r}.")
        self.head = head
        self.temperature = float(temperature)
        self.augment = FeatureAugmentation(noise_std, max_mask_fraction)
        if encoder == "linear":
            self.encoder = nn.Linear(n_features, embedding_dim)
        else:
            self.encoder = BaselineMLPEncoder(n_features, embedding_dim, dropout=dropout)
        self.proxies = nn.Parameter(torch.empty(n_classes, embedding_dim))
        self.top_proxies = nn.Parameter(torch.empty(n_tops, embedding_dim))
        if head == "linear":
            self.classifier = nn.Linear(embedding_dim, n_classes)
        elif head == "mlp":
            self.classifier = BaselineMLPHead(embedding_dim, n_classes, dropout=dropout)
        else:
            self.classifier = None
        self.reset_proxies()

    def reset_proxies(self) -> None:
        """Re-draw the proxies (Kaiming-normal, as in Proxy Anchor)."""
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")
        nn.init.kaiming_normal_(self.top_proxies, mode="fan_out")

    def reset_heads(self) -> None:
        """Re-initialise everything on the output side: proxies and classifier."""
        self.reset_proxies()
        if self.classifier is not None:
            for m in self.classifier.modules():
                if hasattr(m, "reset_parameters") and m is not self.classifier:
                    m.reset_parameters()
            if hasattr(self.classifier, "reset_parameters"):
                self.classifier.reset_parameters()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding ``z`` (augmented in training mode)."""
        return self.encoder(self.augment(x))

    def forward(self, x: torch.Tensor) -> ProxyOutput:
        z = self.embed(x)
        if self.classifier is None:
            logits = proxy_logits(z, self.proxies, self.temperature)
        else:
            logits = self.classifier(z)
        return ProxyOutput(logits, z, self.proxies, self.top_proxies)
