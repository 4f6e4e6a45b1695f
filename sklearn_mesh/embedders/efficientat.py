"""EfficientAT (mn / dymn) chunk or frame embeddings."""

from __future__ import annotations

import os
from numbers import Integral, Real

from .._compat import Interval, Options, StrOptions
from ._native import _NativeEmbedder
from .base import _EXPECTED_FAILED_CHECKS

__all__ = ["EfficientATEmbedder"]

_SOURCE = (
    "https://github.com/fschmid56/EfficientAT/releases/tag/v0.0.1 (e.g. mn10_as_mAP_471.pt "
    "for 'mn10_as', dymn10_as.pt for 'dymn10_as')"
)


class EfficientATEmbedder(_NativeEmbedder):
    """EfficientAT (Schmid et al., 2023) embeddings from the ``mn`` and ``dymn`` CNNs.

    A native implementation of EfficientAT's MobileNetV3 (``mn``, channel
    squeeze-excitation) and dynamic MobileNet (``dymn``: dynamic convolution, dynamic ReLU
    and coordinate attention) that loads the released ``.pt`` files as they are. Audio is
    resampled to 32 kHz.

    The MESH authors used the per-chunk embedding of these models (10 s chunks, 10 s hop,
    plus one chunk aligned to the clip end; the global average of the last feature map,
    ``6 * 160 * width`` channels, 960 for width 1.0) with chunk pooling:
    ``EfficientATEmbedder(output="chunk")`` followed by ``ChunkPooling(stats=...)``.

    Parameters
    ----------
    checkpoint : str or path-like, default=None
        A released EfficientAT state dict (e.g. ``mn10_as_mAP_471.pt``, ``dymn10_as.pt``);
        ``weights_only=True``. A mismatch (e.g. the file of another width) raises
        :class:`~sklearn_mesh.embedders.CheckpointError` naming the missing, unexpected and
        mis-shaped keys. ``None`` gives random weights (tests and benchmarks only).
    model_name : str, default="mn10_as"
        Released model name: the family (``mn*`` or ``dymn*``) and the width multiplier
        (``mn04`` -> 0.4, ``mn10`` -> 1.0, ``mn40`` -> 4.0, ``dymn20`` -> 2.0, ...). Must
        describe the checkpoint.
    width_mult : float, default=None
        Overrides the width multiplier parsed from ``model_name``.
    output : {"chunk", "frames"}, default="chunk"
        ``"chunk"``: one vector per 10 s chunk (chunk-level output, the paper's use).
        ``"frames"``: the time axis of the last feature map, averaged over frequency:
        3.125 frames per second (0.32 s hop), concatenated over consecutive 10 s windows.
    pad_to_max : bool, default=False
        Zero-pad every input (chunk) to 10 s before the network, as the MESH extraction
        did. With ``False`` every chunk is processed at its own length, so silence that
        is not in the clip never enters an embedding.
    module : None
        Not used: the network is built from ``checkpoint``. Must stay ``None``.
    sample_rate : int, default=32000
        EfficientAT's rate; other values are refused.
    input_sample_rate, batch_size, device, cache_dir, max_duration, on_error, progress, random_state
        See :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Attributes
    ----------
    module_ : sklearn_mesh.backbones._efficientat.EfficientAT
    embedding_dim_ : int
    frame_hop_ : float or None
        ``None`` with ``output="chunk"``, 0.32 s with ``output="frames"``.

    Notes
    -----
    Squeeze-excitation and the dynamic blocks' context pool over the whole input, so every
    input is run alone (no padding is ever shared between clips); on CPU this costs little
    because the network is small.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.embedders import EfficientATEmbedder
    >>> from sklearn_mesh.pooling import ChunkPooling
    >>> emb = EfficientATEmbedder(model_name="mn01_as", random_state=0)   # random weights
    >>> out = emb.fit_transform([(np.zeros(32000 * 12, np.float32), 32000)])
    >>> out.lengths.tolist(), out.dim            # chunks [0, 10) and [2, 12) s
    ([2], 96)
    >>> ChunkPooling(stats=("mean", "max")).fit_transform(out).shape
    (1, 192)
    """

    _max_input_seconds = 10.0
    _min_input_seconds = 0.0
    _name = "efficientat"
    _label = "EfficientAT"
    _source = _SOURCE

    _parameter_constraints = {
        **_NativeEmbedder._parameter_constraints,
        "model_name": [str],
        "width_mult": [Interval(Real, 0, None, closed="neither"), None],
        "output": [StrOptions({"chunk", "frames"})],
        "pad_to_max": ["boolean"],
        "sample_rate": [Options(Integral, {32000})],
    }

    def __init__(
        self,
        checkpoint=None,
        *,
        model_name="mn10_as",
        width_mult=None,
        output="chunk",
        pad_to_max=False,
        module=None,
        sample_rate=32000,
        input_sample_rate=None,
        batch_size=8,
        device="cpu",
        cache_dir=None,
        max_duration=None,
        on_error="raise",
        progress=False,
        random_state=None,
    ):
        self.checkpoint = checkpoint
        self.model_name = model_name
        self.width_mult = width_mult
        self.output = output
        self.pad_to_max = pad_to_max
        self.module = module
        self.sample_rate = sample_rate
        self.input_sample_rate = input_sample_rate
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self.max_duration = max_duration
        self.on_error = on_error
        self.progress = progress
        self.random_state = random_state

    # ----------------------------------------------------------- metadata
    def _width(self):
        from ..backbones._efficientat import efficientat_width

        family, width = efficientat_width(self.model_name)
        return family, (width if self.width_mult is None else float(self.width_mult))

    @property
    def _output_level(self):
        return "chunk" if self.output == "chunk" else "frame"

    @property
    def _frame_hop_seconds(self):
        return None if self.output == "chunk" else 0.32

    @property
    def _embedding_dim(self):
        from ..backbones._efficientat import _make_divisible

        return 6 * _make_divisible(160 * self._width()[1])

    def _windows(self, n_samples):
        if self.output != "chunk":
            return super()._windows(n_samples)
        # the MESH chunks: 10 s windows every 10 s, plus one window aligned to the end
        size = int(round(self._max_input_seconds * self.sample_rate))
        if n_samples <= size:
            return [(0, n_samples)]
        starts = list(range(0, n_samples - size + 1, size))
        if starts[-1] != n_samples - size:
            starts.append(n_samples - size)
        return [(a, a + size) for a in starts]

    # ------------------------------------------------------------- module
    def _build_module(self):
        from ..backbones._efficientat import EfficientAT, efficientat_state_dict_from_checkpoint
        from ._checkpoint import load_state_dict_checked

        family, width = self._width()
        module = EfficientAT(self.model_name, width_mult=width, output=self.output,
                             pad_to_max=self.pad_to_max)
        if self.checkpoint is not None:
            state = efficientat_state_dict_from_checkpoint(self._read_checkpoint())
            name = (f"{self._checkpoint_name()} "
                    f"(model_name={self.model_name!r}: {family}, width {width:g})")
            load_state_dict_checked(module.net, state, name=name)
        return module

    def _cache_config(self):
        return {"output": self.output, "pad_to_max": bool(self.pad_to_max),
                "width": self._width()}


def _check_instances():
    return [
        (
            EfficientATEmbedder(model_name="mn01_as", input_sample_rate=100, random_state=0),
            _EXPECTED_FAILED_CHECKS,
        )
    ]
