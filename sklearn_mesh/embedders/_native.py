"""What the native backbone embedders (BEATs, PaSST, fPaSST, M2D, ATST-Frame,
EfficientAT) share: the network is built from ``checkpoint`` (``module`` stays ``None``),
read with a "get it from ..." hint, checked against a dict of allowed ``model_config``
keys, and called as ``module(waves, lengths) -> (frames, mask)``.

Each subclass still lists every parameter in its own ``__init__`` (scikit-learn reads
the signature) and sets ``_label`` (the checkpoint's name in messages) and ``_source``
(where the released file comes from).
"""

from __future__ import annotations

import os

from .base import TorchEmbedder

__all__ = []


class _NativeEmbedder(TorchEmbedder):
    _label = None
    _source = None

    _parameter_constraints = {
        **TorchEmbedder._parameter_constraints,
        "module": [None],
    }

    # fixed by the architecture, not a parameter here (the base reads it for user modules)
    frame_rate = None

    def _checkpoint_name(self):
        return f"{self._label} checkpoint {os.fspath(self.checkpoint)!r}"

    def _read_checkpoint(self):
        """The checkpoint's content (``weights_only=True``; clear errors, source hint)."""
        from ._checkpoint import load_checkpoint

        return load_checkpoint(self.checkpoint, source=self._source)

    def _checked_model_config(self, allowed, *, random_weights_only=True):
        """``model_config`` as a dict, refusing unknown keys (and, with
        ``random_weights_only``, any override together with a checkpoint)."""
        config = dict(self.model_config or {})
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise ValueError(f"model_config has unknown keys {unknown}; allowed: {sorted(allowed)}.")
        if random_weights_only and config and self.checkpoint is not None:
            raise ValueError(
                "model_config is only for random-weight models; leave it None with a "
                "checkpoint (the architecture comes from the checkpoint)."
            )
        return config

    def _embed_batch(self, module, waves, lengths):
        return module(waves, lengths)

    def _cache_config(self):
        return {"model_config": self.model_config}
