"""HProxyClassifier: the MESH classifier (paper section 2.3) as a scikit-learn estimator.

A skorch ``NeuralNetClassifier`` is configured and built inside :meth:`HProxyClassifier.fit`
(never subclassed, never exposed as a parameter), so the estimator passes scikit-learn's
checks and works in ``Pipeline``, ``GridSearchCV`` and ``cross_val_predict``.

Two-stage training (pre-train, then fine-tune) goes through a *parameter*: the
``pretrained`` argument takes an immutable :class:`PretrainedState` (or the path of a file
written by :meth:`PretrainedState.save`). ``clone()`` keeps the very same state object, so
every fold of a cross-validation fine-tunes from the same pre-trained weights — never from
scratch and never from the previous fold.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping, EpochScoring
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from torch import nn

from ._compat import Interval, StrOptions, _fit_context, validate_data
from .metrics import hierarchical_f1_score
from .nn.losses import LOSSES, make_loss
from .nn.modules import ProxyNet
from .taxonomy import Taxonomy
from .utils.validation import check_hierarchical_targets

__all__ = ["HProxyClassifier", "PretrainedState"]

_FORMAT = "sklearn_mesh.PretrainedState/1"


# ----------------------------------------------------------------------------- state
class PretrainedState:
    """Immutable, picklable pre-trained network weights for ``pretrained``.

    Holds read-only copies of a :class:`~sklearn_mesh.nn.modules.ProxyNet` ``state_dict``
    plus the configuration it was trained with. Because it cannot change, ``copy`` and
    ``deepcopy`` return the object itself: ``sklearn.base.clone`` shares it between clones
    at no memory cost, and two states compare equal when their tensors are equal.

    Parameters
    ----------
    tensors : mapping of str to array-like
        Parameter / buffer name -> values (numpy arrays or torch tensors).
    config : mapping, optional
        Plain values describing the network (``n_features_in``, ``embedding_dim``,
        ``encoder``, ``head``, ``leaves``, ``tops``, ...).

    Examples
    --------
    >>> import numpy as np, copy
    >>> from sklearn_mesh.classifier import PretrainedState
    >>> state = PretrainedState({"encoder.weight": np.ones((2, 3))}, config={"encoder": "linear"})
    >>> copy.deepcopy(state) is state
    True
    >>> state["encoder.weight"].flags.writeable
    False
    """

    __slots__ = ("_tensors", "_config", "_hash")

    def __init__(self, tensors: Mapping, config: Mapping | None = None):
        frozen = {}
        for name, value in tensors.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            arr = np.array(value, copy=True)
            arr.setflags(write=False)
            frozen[str(name)] = arr
        object.__setattr__(self, "_tensors", MappingProxyType(frozen))
        object.__setattr__(self, "_config", MappingProxyType(dict(config or {})))
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name, value):
        raise AttributeError("PretrainedState is immutable.")

    # mapping-like access
    @property
    def config(self) -> Mapping:
        """Read-only configuration of the network the weights come from."""
        return self._config

    def keys(self):
        return self._tensors.keys()

    def items(self):
        return self._tensors.items()

    def __getitem__(self, name) -> np.ndarray:
        return self._tensors[name]

    def __contains__(self, name):
        return name in self._tensors

    def __len__(self):
        return len(self._tensors)

    @property
    def n_parameters(self) -> int:
        """Total number of values stored."""
        return int(sum(a.size for a in self._tensors.values()))

    # immutability: copies are the object itself
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __getstate__(self):
        return {"tensors": dict(self._tensors), "config": dict(self._config)}

    def __setstate__(self, state):
        PretrainedState.__init__(self, state["tensors"], state["config"])

    def __eq__(self, other):
        if self is other:
            return True
        if not isinstance(other, PretrainedState):
            return NotImplemented
        if set(self.keys()) != set(other.keys()) or dict(self._config) != dict(other._config):
            return False
        return all(
            a.shape == other[k].shape and np.array_equal(a, other[k])
            for k, a in self._tensors.items()
        )

    def __hash__(self):
        if self._hash is None:
            key = tuple(sorted((k, a.shape) for k, a in self._tensors.items()))
            object.__setattr__(self, "_hash", hash(key))
        return self._hash

    def __repr__(self):
        cfg = ", ".join(
            f"{k}={self._config[k]!r}"
            for k in ("n_features_in", "embedding_dim", "encoder", "head", "loss")
            if k in self._config
        )
        return f"PretrainedState({len(self)} tensors, {self.n_parameters} values{', ' + cfg if cfg else ''})"

    # files
    def save(self, path) -> None:
        """Write to ``path`` with ``torch.save`` (loadable with ``weights_only=True``)."""
        payload = {
            "format": _FORMAT,
            "tensors": {k: torch.from_numpy(np.array(a)) for k, a in self._tensors.items()},
            "config": _plain(dict(self._config)),
        }
        torch.save(payload, os.fspath(path))

    @classmethod
    def load(cls, path) -> PretrainedState:
        """Read a file written by :meth:`save` (``torch.load(..., weights_only=True)``)."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No pre-trained state at {path!r}. Create one with "
                "HProxyClassifier(...).fit(X, y).pretrained_state().save(path)."
            )
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise ValueError(
                f"{path!r} is not a pre-trained state readable with weights_only=True ({exc})."
            ) from exc
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(
                f"{path!r} was not written by PretrainedState.save (format tag missing)."
            )
        return cls(payload["tensors"], payload["config"])


def _plain(value):
    """Config values as types torch's weights-only unpickler accepts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --------------------------------------------------------------------- skorch glue
class _BatchIterator:
    """Mini-batches by slicing in-memory tensors (much cheaper than a DataLoader here).

    Used as skorch's ``iterator_train`` / ``iterator_valid``. In training, a trailing
    batch of one sample is merged into the previous one (BatchNorm cannot train on it).
    """

    def __init__(self, dataset, batch_size=64, shuffle=False):
        X, y = dataset.X, dataset.y
        self.X = X if isinstance(X, torch.Tensor) else torch.as_tensor(
            np.asarray(X, dtype=np.float32))
        self.y = None if y is None or isinstance(y, torch.Tensor) else torch.as_tensor(
            np.asarray(y))
        if isinstance(y, torch.Tensor):
            self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)

    def _bounds(self):
        n, bs = len(self.X), self.batch_size
        starts = list(range(0, n, bs))
        if self.shuffle and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]

    def __len__(self):
        return len(self._bounds())

    def __iter__(self):
        order = torch.randperm(len(self.X)) if self.shuffle else None
        for a, b in self._bounds():
            if order is None:
                xb = self.X[a:b]
                yb = None if self.y is None else self.y[a:b]
            else:
                idx = order[a:b]
                xb = self.X[idx]
                yb = None if self.y is None else self.y[idx]
            yield xb, yb


def _softmax(logits):
    return torch.softmax(logits, dim=-1)


class _HFScore:
    """Validation hF for skorch's ``EpochScoring`` (picklable)."""

    def __init__(self, taxonomy):
        self.taxonomy = taxonomy

    def __call__(self, net, X, y):
        y_pred = net.predict(X)
        return hierarchical_f1_score(
            np.asarray(y, dtype=np.intp), np.asarray(y_pred, dtype=np.intp),
            taxonomy=self.taxonomy,
        )


class _LossTerms(Callback):
    """Logs the per-epoch mean of each term of ``criterion_.last_terms_``."""

    def on_epoch_begin(self, net, **kwargs):
        self._seen = {True: [], False: []}

    def on_batch_end(self, net, batch, training, **kwargs):
        terms = getattr(net.criterion_, "last_terms_", None)
        if terms:
            self._seen[training].append((len(batch[0]), terms))

    def on_epoch_end(self, net, **kwargs):
        for training, seen in self._seen.items():
            if not seen:
                continue
            prefix = "train" if training else "valid"
            sizes = torch.tensor([s for s, _ in seen], dtype=torch.float64)
            for key in seen[0][1]:
                if key == "loss":
                    continue
                vals = torch.stack([t[key].detach().double().cpu() for _, t in seen])
                net.history.record(f"{prefix}_{key}", float((vals * sizes).sum() / sizes.sum()))
        self._seen = {True: [], False: []}


# ------------------------------------------------------------------------ estimator
class HProxyClassifier(ClassifierMixin, BaseEstimator):
    """Hierarchical proxy classifier on fixed embeddings (MESH, section 2.3).

    ``features -> encoder -> z (embedding_dim) -> logits``, trained with a named objective
    or any loss module. ``classes_`` always lists every leaf of the taxonomy in taxonomy
    order, so every fit (and every CV fold) yields the same probability columns.

    Parameters
    ----------
    taxonomy : Taxonomy or None, default=None
        Label hierarchy (None: the 23-class BST).
    loss : str or torch.nn.Module, default="focal+hproxy"
        ``"ce"`` (label smoothing 0.01), ``"focal"`` (gamma 2), ``"hproxy"``,
        ``"proxy_anchor"``, ``"focal+hproxy"`` (0.9 / 0.1), ``"proxy_anchor+focal"``
        (1 / 1), or a loss module called as ``loss(ProxyOutput, y_idx)`` (see
        :mod:`sklearn_mesh.nn.losses`); a module is deep-copied at each fit.
    loss_weights : dict or None, default=None
        Component weights of a named objective, e.g. ``{"focal": 0.8, "hproxy": 0.2}``.
    loss_params : dict or None, default=None
        Constructor arguments per component, e.g. ``{"hproxy": {"alpha": 0.3}}``.
    embedding_dim : int, default=128
        Width of the embedding ``z`` and of the proxies.
    encoder : {"linear", "mlp"}, default="linear"
        ``"linear"``: MESH's single projection; ``"mlp"``: the official baseline's
        residual MLP encoder (a comparison model).
    head : {"cosine", "linear", "mlp"}, default="cosine"
        ``"cosine"``: scaled cosine similarity to the second-level proxies;
        ``"linear"``: a linear classifier; ``"mlp"``: the baseline's residual head.
        Proxy losses always train the proxies, whatever the head.
    temperature : float, default=0.07
        Temperature of the cosine head.
    dropout : float, default=0.1
        Dropout of the MLP encoder / head.
    lr : float, default=5e-4
        Adam learning rate.
    weight_decay : float, default=1e-5
        Adam weight decay.
    batch_size : int, default=64
    max_epochs : int, default=50
        ``0`` keeps the initial (or warm-started) weights.
    validation_fraction : float or None, default=0.2
        Share of the training data held out (stratified when every class has two
        samples) for early stopping; None trains on everything for ``max_epochs``.
    early_stopping : {"hf", "accuracy", "loss"} or None, default="hf"
        Validation metric to monitor; the best epoch's weights are restored. Ignored
        without a validation split.
    patience : int, default=10
        Epochs without improvement before stopping.
    noise_std : float, default=1e-4
        Training augmentation: Gaussian noise added to the features.
    max_mask_fraction : float, default=0.7
        Training augmentation: each sample zeroes a random fraction ``U(0, max)`` of
        its feature dimensions.
    pretrained : PretrainedState, str, path or None, default=None
        Pre-trained weights every fit starts from (see :meth:`pretrained_state`).
        The encoder is always transferred; its tensors must match by name and shape.
        (Not called ``warm_start``: in scikit-learn that name means a boolean
        "continue from the previous fit", the opposite of what two-stage CV needs.)
    pretrained_heads : {"reinit", "keep"}, default="reinit"
        Whether the output side (proxies, classifier head) is re-initialised (as MESH
        did) or transferred too. ``"keep"`` also requires the same taxonomy.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Torch device; ``"auto"`` picks CUDA when available.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, split, shuffling and augmentation (same seed, same model).
    verbose : int, default=0
        ``>0`` prints skorch's per-epoch table.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        All taxonomy leaves in taxonomy order (keys, or ``0..K-1`` for integer ``y``).
    taxonomy_ : Taxonomy
    net_ : skorch.NeuralNetClassifier
        The trained net (``net_.module_`` is a :class:`~sklearn_mesh.nn.modules.ProxyNet`,
        ``net_.criterion_`` the loss).
    history_ : skorch.History
        Per-epoch log: losses, each loss term, validation hF / accuracy.
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (``n_epochs_`` without early stopping).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.classifier import HProxyClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat(["fx-o", "m-sp", "sp-s"], 20)
    >>> X = np.hstack([3.0 * (y[:, None] == np.unique(y)), rng.normal(size=(60, 5))])
    >>> clf = HProxyClassifier(embedding_dim=16, max_epochs=20, lr=1e-2,
    ...                        validation_fraction=None, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 23)
    >>> float(clf.score(X, y)) > 0.9
    True
    """

    _parameter_constraints: dict = {
        "taxonomy": [Taxonomy, None],
        "loss": [StrOptions(set(LOSSES)), nn.Module],
        "loss_weights": [dict, None],
        "loss_params": [dict, None],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "encoder": [StrOptions({"linear", "mlp"})],
        "head": [StrOptions({"cosine", "linear", "mlp"})],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "early_stopping": [StrOptions({"hf", "accuracy", "loss"}), None],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "noise_std": [Interval(Real, 0, None, closed="left")],
        "max_mask_fraction": [Interval(Real, 0, 1, closed="left")],
        "pretrained": [PretrainedState, str, os.PathLike, None],
        "pretrained_heads": [StrOptions({"reinit", "keep"})],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        taxonomy=None,
        loss="focal+hproxy",
        loss_weights=None,
        loss_params=None,
        embedding_dim=128,
        encoder="linear",
        head="cosine",
        temperature=0.07,
        dropout=0.1,
        lr=5e-4,
        weight_decay=1e-5,
        batch_size=64,
        max_epochs=50,
        validation_fraction=0.2,
        early_stopping="hf",
        patience=10,
        noise_std=1e-4,
        max_mask_fraction=0.7,
        pretrained=None,
        pretrained_heads="reinit",
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.taxonomy = taxonomy
        self.loss = loss
        self.loss_weights = loss_weights
        self.loss_params = loss_params
        self.embedding_dim = embedding_dim
        self.encoder = encoder
        self.head = head
        self.temperature = temperature
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.noise_std = noise_std
        self.max_mask_fraction = max_mask_fraction
        self.pretrained = pretrained
        self.pretrained_heads = pretrained_heads
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers
    def _resolve_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(self.device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"device={self.device!r} is not a torch device; use 'cpu', 'cuda' or 'auto'."
            ) from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r} but CUDA is not available; use device='cpu' or 'auto'."
            )
        return self.device

    def _build_loss(self, taxonomy):
        if isinstance(self.loss, nn.Module):
            if self.loss_weights is not None or self.loss_params is not None:
                raise ValueError(
                    "loss_weights / loss_params apply to named losses only; configure a loss "
                    "module through its own constructor."
                )
            return copy.deepcopy(self.loss)
        return make_loss(self.loss, taxonomy, weights=self.loss_weights, params=self.loss_params)

    def _split(self, X, y_idx, seed):
        frac = self.validation_fraction
        n = X.shape[0]
        if frac is None:
            return X, y_idx, None
        n_valid = int(np.ceil(frac * n))
        if n < 2 or n_valid < 1 or n - n_valid < 1:
            raise ValueError(
                f"validation_fraction={frac} cannot split n_samples={n}; pass "
                "validation_fraction=None to train on every sample."
            )
        counts = np.bincount(y_idx)
        counts = counts[counts > 0]
        stratify = y_idx if counts.min() >= 2 and n_valid >= counts.size else None
        if stratify is not None and n - n_valid < counts.size:
            stratify = None
        if stratify is not None:
            sss = StratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
            tr, va = next(sss.split(X, y_idx))
        else:
            tr, va = train_test_split(np.arange(n), test_size=n_valid, random_state=seed)
        return X[tr], y_idx[tr], (X[va], y_idx[va])

    def _module_kwargs(self, n_features, taxonomy):
        return dict(
            n_features=n_features,
            n_classes=taxonomy.n_leaves,
            n_tops=taxonomy.n_tops,
            embedding_dim=self.embedding_dim,
            encoder=self.encoder,
            head=self.head,
            temperature=self.temperature,
            noise_std=self.noise_std,
            max_mask_fraction=self.max_mask_fraction,
            dropout=self.dropout,
        )

    def _resolve_pretrained(self):
        ws = self.pretrained
        if ws is None or isinstance(ws, PretrainedState):
            return ws
        return PretrainedState.load(ws)

    def _apply_pretrained(self, module: ProxyNet, state: PretrainedState, taxonomy):
        own = module.state_dict()
        is_head = lambda k: k.startswith(ProxyNet.HEAD_PREFIXES)  # noqa: E731
        keep_heads = self.pretrained_heads == "keep"
        wanted = [k for k in own if keep_heads or not is_head(k)]
        have = [k for k in state.keys() if keep_heads or not is_head(k)]
        missing = sorted(set(wanted) - set(have))
        unexpected = sorted(set(have) - set(wanted))
        if missing or unexpected:
            raise ValueError(
                "pretrained does not fit this network: missing tensors "
                f"{missing}, unexpected tensors {unexpected}. The pre-trained state was "
                f"made with {dict(state.config)}; this estimator has encoder="
                f"{self.encoder!r}, head={self.head!r}."
            )
        for k in wanted:
            if tuple(own[k].shape) != tuple(state[k].shape):
                raise ValueError(
                    f"pretrained tensor {k!r} has shape {tuple(state[k].shape)} but this "
                    f"network needs {tuple(own[k].shape)} (n_features_in="
                    f"{_module_n_features(module)}, embedding_dim={self.embedding_dim}, "
                    f"{taxonomy.n_leaves} classes)."
                )
        if keep_heads and "leaves" in state.config:
            if list(state.config["leaves"]) != list(taxonomy.leaves):
                raise ValueError(
                    "pretrained_heads='keep' needs the taxonomy the state was trained with "
                    "(same leaves in the same order); use pretrained_heads='reinit'."
                )
        with torch.no_grad():
            for k in wanted:
                own[k].copy_(torch.from_numpy(np.array(state[k])))

    # --------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and second-level labels ``y``.

        Returns
        -------
        self : HProxyClassifier
        """
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=False)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        y_idx, classes, taxonomy = check_hierarchical_targets(y, self.taxonomy)
        present = np.unique(y_idx)
        if present.size < 2:
            raise ValueError(
                "HProxyClassifier needs samples of at least 2 classes; y holds only one class "
                f"({taxonomy.leaves[present[0]] if present.size else None!r})."
            )
        X = np.require(X, dtype=np.float32, requirements=["C", "W"])
        y_idx = y_idx.astype(np.int64)
        state = self._resolve_pretrained()
        device = self._resolve_device()
        criterion = self._build_loss(taxonomy)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        X_tr, y_tr, valid = self._split(X, y_idx, seed)

        callbacks = [("loss_terms", _LossTerms())]
        if valid is not None:
            callbacks.append(
                ("valid_hf", EpochScoring(_HFScore(taxonomy), name="valid_hf",
                                          lower_is_better=False, use_caching=True))
            )
            if self.early_stopping is not None:
                monitor = {"hf": "valid_hf", "accuracy": "valid_acc", "loss": "valid_loss"}
                callbacks.append(
                    ("early_stopping", EarlyStopping(
                        monitor=monitor[self.early_stopping],
                        lower_is_better=self.early_stopping == "loss",
                        patience=self.patience, load_best=True,
                    ))
                )
        net = NeuralNetClassifier(
            module=ProxyNet,
            criterion=criterion,
            optimizer=torch.optim.Adam,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            train_split=None if valid is None else predefined_split(Dataset(*valid)),
            iterator_train=_BatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=_BatchIterator,
            callbacks=callbacks,
            classes=np.arange(taxonomy.n_leaves),
            predict_nonlinearity=_softmax,
            device=device,
            verbose=int(self.verbose),
            **{f"module__{k}": v for k, v in self._module_kwargs(X.shape[1], taxonomy).items()},
        )
        devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            net.initialize()
            if state is not None:
                self._apply_pretrained(net.module_, state, taxonomy)
            if self.max_epochs > 0:
                net.partial_fit(X_tr, y_tr)

        self.net_ = net
        self.history_ = net.history
        self.n_epochs_ = len(net.history)
        es = dict(net.callbacks_).get("early_stopping")
        best = getattr(es, "best_epoch_", None) if es is not None else None
        self.best_epoch_ = int(best) if best is not None else self.n_epochs_
        self.classes_ = classes
        self.taxonomy_ = taxonomy
        return self

    # ----------------------------------------------------------------- predict
    def _check_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return np.require(X, dtype=np.float32, requirements=["C", "W"])

    def _forward64(self, X, what):
        """Run the module in float64 (eval mode) so results do not depend on batching."""
        module = copy.deepcopy(self.net_.module_).double().eval()
        device = self.net_.device
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], 4096):
                xb = torch.as_tensor(X[start:start + 4096], dtype=torch.float64, device=device)
                if what == "embed":
                    out.append(module.embed(xb).cpu().numpy())
                else:
                    out.append(torch.softmax(module(xb).logits, dim=-1).cpu().numpy())
        width = self.embedding_dim if what == "embed" else len(self.classes_)
        return np.concatenate(out) if out else np.zeros((0, width))

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` (taxonomy) order; rows sum to 1.

        Inference runs in float64 so that a sample's output does not depend on the other
        samples of its batch.
        """
        X = self._check_X(X)
        return self._forward64(X, "proba")

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable second-level class of each sample."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def embed(self, X):
        """The learned embedding ``z`` of each sample, shape (n_samples, embedding_dim)."""
        X = self._check_X(X)
        return self._forward64(X, "embed")

    def pretrained_state(self) -> PretrainedState:
        """The fitted weights as an immutable :class:`PretrainedState` for ``pretrained``."""
        check_is_fitted(self)
        config = {
            "n_features_in": int(self.n_features_in_),
            "embedding_dim": int(self.embedding_dim),
            "encoder": self.encoder,
            "head": self.head,
            "leaves": list(self.taxonomy_.leaves),
            "tops": list(self.taxonomy_.tops),
            "loss": self.loss if isinstance(self.loss, str) else type(self.loss).__name__,
        }
        return PretrainedState(self.net_.module_.state_dict(), config)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _module_n_features(module: ProxyNet) -> int:
    enc = module.encoder
    if isinstance(enc, nn.Linear):
        return enc.in_features
    return enc.net[0].num_features


def _check_instances():
    fast = dict(embedding_dim=8, max_epochs=5, lr=2e-2, batch_size=32, random_state=0)
    return [
        (
            # default validation split + early stopping on hF, so the checks cover them
            HProxyClassifier(loss="focal+hproxy", patience=2, **fast),
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
