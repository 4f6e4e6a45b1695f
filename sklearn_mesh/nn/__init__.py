"""Torch building blocks of MESH: the proxy network and its training objectives.

Only torch is needed here (no scikit-learn estimators); :class:`sklearn_mesh.HProxyClassifier`
wraps them in a scikit-learn classifier.
"""

from .losses import (
    LOSSES,
    CrossEntropyLoss,
    FocalLoss,
    HProxyLoss,
    ProxyAnchorLoss,
    WeightedSumLoss,
    make_loss,
)
from .modules import (
    BaselineMLPEncoder,
    BaselineMLPHead,
    FeatureAugmentation,
    ProxyNet,
    ProxyOutput,
    ResidualBlock,
    proxy_logits,
)

__all__ = [
    "LOSSES",
    "CrossEntropyLoss",
    "FocalLoss",
    "HProxyLoss",
    "ProxyAnchorLoss",
    "WeightedSumLoss",
    "make_loss",
    "BaselineMLPEncoder",
    "BaselineMLPHead",
    "FeatureAugmentation",
    "ProxyNet",
    "ProxyOutput",
    "ResidualBlock",
    "proxy_logits",
]
