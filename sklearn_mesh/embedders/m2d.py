"""M2D / M2D-CLAP frame embeddings (the paper's "M2D CLAP ViT-base")."""

from __future__ import annotations

import os
from numbers import Integral

from .._compat import Options
from ._native import _NativeEmbedder

__all__ = ["M2DEmbedder"]

_SOURCE = (
    "https://github.com/nttcslab/m2d/releases (e.g. m2d_clap_vit_base-80x1001p16x16-240128_"
    "AS-FT_enconly.zip or m2d_clap_vit_base-80x608p16x16-240128.zip; unzip and pass the .pth "
    "inside its folder: the folder name gives the input size)"
)
_MODEL_KEYS = {"depth", "dim", "heads", "n_time", "input_frames"}


class M2DEmbedder(_NativeEmbedder):
    """M2D (Niizumi et al.) frame embeddings: 3,840-d, 6.25 frames per second.

    A native implementation of the M2D / M2D-CLAP ViT-Base audio encoder that loads
    nttcslab's released ``.pth`` files as they are. Each frame concatenates the 5
    frequency-patch tokens of one 160 ms time step (5 x 768 = 3,840, M2D's standard
    feature); MESH's "M2D CLAP ViT-base, clip-level mean+std" (7,680-d) is
    ``SequencePooling(stats=("mean", "std"))``.

    Preprocessing is M2D's own: 16 kHz, log-mel (80 Slaney mel bands, 400-sample
    window and FFT, 160 hop, 50-8000 Hz), ``log(x + eps)``, normalised with the
    checkpoint's ``norm_stats``. Any length is accepted: as upstream, the spectrogram is
    encoded in units of ``input_frames`` mel frames (10.01 s for the ``80x1001`` weights,
    6.08 s for ``80x608``); the last unit is zero-padded to a multiple of 16 frames.
    Units of different lengths share a batch with the padding excluded from attention,
    so every clip gets exactly the frames it gets alone. Frame ``i`` of unit ``k`` starts
    at ``k * input_frames * 0.01 + i * 0.16`` s; the reported times use a uniform 0.16 s
    hop (off by at most 0.09 s per unit boundary).

    Parameters
    ----------
    checkpoint : str or path-like, default=None
        The released ``.pth`` (the encoder at top level or under ``"model"``; CLAP
        projections, text encoder, decoder branches in it are ignored; keys under the
        encoder's own names must match exactly, else
        :class:`~sklearn_mesh.embedders.CheckpointError` lists them). Loaded with
        ``weights_only=True``. The unit length is read from the folder or file name
        (``...-80x1001p16x16-...``), else from the position-embedding grid. ``None``:
        random weights (tests and benchmarks only).
    model_config : dict, default=None
        ``depth`` / ``dim`` / ``heads`` / ``n_time`` / ``input_frames`` of a random-weight
        model (tests); ``None`` is ViT-Base for ``80x1001``.
    module : None
        Not used. Must stay ``None``.
    sample_rate : int, default=16000
        M2D's rate (16 kHz weights); other values are refused.
    input_sample_rate, batch_size, device, cache_dir, max_duration, on_error, progress, random_state
        See :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Attributes
    ----------
    module_ : sklearn_mesh.backbones.M2DModel
    embedding_dim_ : int
        3,840 for ViT-Base.
    frame_hop_ : float
        0.16 s.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.embedders import M2DEmbedder
    >>> emb = M2DEmbedder(model_config={"depth": 1, "dim": 16, "heads": 2}, random_state=0)
    >>> out = emb.fit_transform([(np.zeros(16000, np.float32), 16000)])
    >>> out.lengths.tolist(), out.dim, emb.frame_hop_
    ([7], 80, 0.16)
    """

    _frame_hop_seconds = 0.16
    _max_input_seconds = None
    _output_level = "frame"
    _name = "m2d"
    _label = "M2D"
    _source = _SOURCE

    _parameter_constraints = {
        **_NativeEmbedder._parameter_constraints,
        "model_config": [dict, None],
        "sample_rate": [Options(Integral, {16000})],
    }

    def __init__(
        self,
        checkpoint=None,
        *,
        model_config=None,
        module=None,
        sample_rate=16000,
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
        self.model_config = model_config
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

    @property
    def _embedding_dim(self):
        if getattr(self, "module_", None) is not None:
            return 5 * int(self.module_.dim)
        return None

    def _build_module(self):
        from ..backbones._m2d import M2DModel, model_from_state_dict, prepare_m2d_state_dict
        from ._checkpoint import CheckpointError, load_state_dict_checked

        config = self._checked_model_config(_MODEL_KEYS)
        if self.checkpoint is None:
            return M2DModel(**config)
        name = self._checkpoint_name()
        try:
            state = prepare_m2d_state_dict(self._read_checkpoint())
            module = model_from_state_dict(state, os.fspath(self.checkpoint))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{name}: {exc} Get the weights from {_SOURCE}.") from exc
        return load_state_dict_checked(module, state, name=name)


def _check_instances():
    from .base import _EXPECTED_FAILED_CHECKS

    return [(M2DEmbedder(model_config={"depth": 1, "dim": 8, "heads": 2}, input_sample_rate=100,
                         random_state=0), dict(_EXPECTED_FAILED_CHECKS))]
