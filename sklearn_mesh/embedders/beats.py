"""BEATs frame embeddings (the paper's "BEATs AS2M" and "BEATs AS2M FT1")."""

from __future__ import annotations

from numbers import Integral

from .._compat import Options
from ._native import _NativeEmbedder

__all__ = ["BEATsEmbedder"]

_SOURCE = (
    "https://github.com/microsoft/unilm/tree/master/beats (BEATs_iter3_plus_AS2M.pt for "
    "'BEATs AS2M', BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1.pt for 'BEATs AS2M FT1')"
)

class BEATsEmbedder(_NativeEmbedder):
    """BEATs (Chen et al., 2023) frame embeddings: 768-d, 6.25 frames per second.

    A native implementation of Microsoft's BEATs encoder that loads the released
    checkpoint files as they are (``{"cfg": ..., "model": ...}``). MESH used
    ``BEATs_iter3_plus_AS2M.pt`` ("BEATs AS2M"; Table 2: sequence mean+max+std, chunk
    max, 2,304-d = ``ChunkPooling(frame_stats=("mean", "max", "std"), stats=("max",))``)
    and ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1.pt`` ("BEATs AS2M FT1"; sequence
    mean+std, chunk mean, 1,536-d). For the fine-tuned checkpoint the frames are the
    encoder output before its AudioSet classifier.

    Preprocessing is BEATs' own: 16 kHz, Kaldi fbank (128 mel bins, 25 ms windows, 10 ms
    hop) of the waveform scaled by 2^15, normalised with BEATs' mean 15.41663 and
    std 6.55582. A frame is one column of 16 x 16 patches (16 fbank frames = 160 ms),
    the 8 frequency patches averaged. A clip of ``n`` samples gives
    ``max(1, (1 + (n - 400) // 160) // 16)`` frames per 10 s window: only patches made
    of real audio are kept (as upstream); a clip shorter than one patch (0.175 s) keeps one
    frame. Padded patches are excluded from attention (BEATs' key padding mask), so a
    clip's frames do not depend on the other clips of its batch. Clips longer than 10 s
    (BEATs' training length) are cut into consecutive 10 s windows whose frames are
    concatenated.

    Parameters
    ----------
    checkpoint : str or path-like, default=None
        The released ``.pt`` file, loaded with ``weights_only=True``; its ``cfg`` defines
        the architecture. A mismatch raises
        :class:`~sklearn_mesh.embedders.CheckpointError` naming every missing,
        unexpected and mis-shaped key. ``None`` gives random weights (tests, benchmarks).
    model_config : dict, default=None
        Overrides of the iter3+ ``cfg`` for random-weight models only (e.g.
        ``{"encoder_layers": 1}``); refused together with a checkpoint.
    module : None
        Not used: the network is built from ``checkpoint``. Must stay ``None``.
    sample_rate : int, default=16000
        BEATs' rate; other values are refused.
    input_sample_rate, batch_size, device, cache_dir, max_duration, on_error, progress, random_state
        See :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Attributes
    ----------
    module_ : sklearn_mesh.backbones.BEATsModel
    embedding_dim_ : int
        768 for the released models.
    frame_hop_ : float
        0.16 s.

    See Also
    --------
    sklearn_mesh.pooling.ChunkPooling, sklearn_mesh.pooling.SequencePooling

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.embedders import BEATsEmbedder
    >>> emb = BEATsEmbedder(model_config={"encoder_layers": 1}, random_state=0)  # random weights
    >>> out = emb.fit_transform([(np.zeros(16000, np.float32), 16000)])
    >>> out.lengths.tolist(), out.dim, emb.frame_hop_
    ([6], 768, 0.16)
    """

    _frame_hop_seconds = 0.16
    _max_input_seconds = 10.0
    _output_level = "frame"
    _name = "beats"
    _label = "BEATs"
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
            return int(self.module_.embed_dim)
        return None  # probed from the built module

    def _build_module(self):
        from ..backbones._beats import BEATS_DEFAULT_CONFIG, BEATS_ITER3_CONFIG, BEATsModel
        from ._checkpoint import CheckpointError, load_state_dict_checked

        config = self._checked_model_config(BEATS_DEFAULT_CONFIG)
        if self.checkpoint is None:
            return BEATsModel({**BEATS_ITER3_CONFIG, **config})
        name = self._checkpoint_name()
        ckpt = self._read_checkpoint()
        if not isinstance(ckpt, dict) or "model" not in ckpt or "cfg" not in ckpt:
            found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
            raise CheckpointError(
                f"{name} is not a released BEATs checkpoint: expected a dict with 'cfg' and "
                f"'model' entries, found {found}. Get the file from {_SOURCE}."
            )
        if not isinstance(ckpt["cfg"], dict):
            raise CheckpointError(f"{name}: 'cfg' must be a dict, got {type(ckpt['cfg']).__name__}.")
        module = BEATsModel(ckpt["cfg"])
        return load_state_dict_checked(module, ckpt["model"], name=name)


def _check_instances():
    from .base import _EXPECTED_FAILED_CHECKS

    tiny = {"encoder_layers": 1, "encoder_embed_dim": 16, "embed_dim": 8, "encoder_ffn_embed_dim": 16,
            "encoder_attention_heads": 2, "conv_pos": 4, "conv_pos_groups": 2}
    return [(BEATsEmbedder(model_config=tiny, input_sample_rate=100, random_state=0),
             dict(_EXPECTED_FAILED_CHECKS))]
