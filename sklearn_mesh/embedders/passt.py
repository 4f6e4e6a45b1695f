"""PaSST ("PaSST KD AudioSet") and frame-level PaSST ("fPaSST weak checkpoint") embedders."""

from __future__ import annotations

from numbers import Integral

from .._compat import Options, StrOptions
from ._native import _NativeEmbedder

__all__ = ["FPasstEmbedder", "PasstEmbedder"]

_PASST_SOURCE = (
    "https://github.com/kkoutini/PaSST/releases/download/v.0.0.9/passt-s-kd-ap.486.pt "
    "(PaSST-S trained with knowledge distillation, the 'PaSST KD AudioSet' of MESH; the file "
    "hear21passt downloads for arch='passt_s_kd_p16_128_ap486')"
)
_FPASST_SOURCE = (
    "https://github.com/fschmid56/PretrainedSED/releases/tag/v0.0.1 (fpasst_weak.pt, the "
    "'fPaSST weak checkpoint' of MESH; also fpasst_strong_1.pt)"
)
_MODEL_KEYS = {"depth", "dim", "heads"}


class _PasstBase(_NativeEmbedder):
    # subclasses: _model_class (name in backbones._passt) and _window_key (the
    # model_config key of the time-position table: shorter tables make tiny test models
    # fast, windows shrink accordingly)
    _model_class = None
    _window_key = None

    @property
    def _max_input_seconds(self):
        module = getattr(self, "module_", None)
        if module is not None:
            return module.window_samples / self.sample_rate
        config = self.model_config or {}
        if type(self).__name__ == "PasstEmbedder":
            return (config.get("input_frames", 998) + 2) * 0.01
        return config.get("pos_embed_length", 250) * 0.04

    _parameter_constraints = {
        **_NativeEmbedder._parameter_constraints,
        "model_config": [dict, None],
    }

    @property
    def _embedding_dim(self):
        module = getattr(self, "module_", None)
        if module is not None:
            return int(module.cls_token.shape[-1])
        return int((self.model_config or {}).get("dim", 768))

    def _build_module(self):
        from ..backbones import _passt

        model_cls = getattr(_passt, self._model_class)
        config = self._checked_model_config(_MODEL_KEYS | {self._window_key})
        if self.checkpoint is None:
            return model_cls(**config)
        return self._load_passt(model_cls)

    def _load_passt(self, model_cls):
        """Build the model sized like the checkpoint and load it (clear errors on mismatch)."""
        from ..backbones._passt import passt_model_from_state_dict, prepare_passt_state_dict
        from ._checkpoint import CheckpointError, load_state_dict_checked

        name = self._checkpoint_name()
        state = self._read_checkpoint()
        if not isinstance(state, dict):
            raise CheckpointError(f"{name} holds a {type(state).__name__}, not a state dict.")
        state, _ = prepare_passt_state_dict(state, model_cls)
        try:
            module = passt_model_from_state_dict(state, model_cls)
        except KeyError as exc:
            raise CheckpointError(f"{name}: {exc.args[0]} Get it from {self._source}.") from exc
        state, ignore = prepare_passt_state_dict(state, module)
        return load_state_dict_checked(module, state, name=name, ignore=ignore)


class PasstEmbedder(_PasstBase):
    """PaSST-S (Koutini et al., 2022) embeddings: one 768-d vector per 10 s window.

    A native implementation of PaSST-S that loads CP-JKU's released state dict as it is
    (the ``passt_s_kd_p16_128_ap486`` weights that hear21passt downloads; MESH's "PaSST KD
    AudioSet"). The default output is PaSST's clip embedding per window (mean of the class
    and distillation tokens after the final norm = hear21passt's ``embed_only`` output);
    the paper's "chunk max" (768-d) is ``ChunkPooling(stats=("max",))`` on it.

    Preprocessing is PaSST's own: 32 kHz, log-mel (128 Kaldi mel bands, n_fft 1024,
    800-sample window, 320 hop, 0-15 kHz), ``(x + 4.5) / 5``. PaSST's time position
    embeddings cover 10 s, so clips are cut into consecutive 10 s windows, and every window
    is zero-padded to 10 s (as the authors ran it; PaSST has no attention mask and was
    trained on 10 s clips).

    Parameters
    ----------
    checkpoint : str or path-like, default=None
        ``passt-s-kd-ap.486.pt`` (a plain state dict; ``net.`` / ``model.`` wrapper prefixes
        are accepted; the classifier heads are read but not used), loaded with
        ``weights_only=True``; a mismatch raises
        :class:`~sklearn_mesh.embedders.CheckpointError` naming every missing, unexpected
        and mis-shaped key. ``None`` gives random weights (tests and benchmarks only).
    output : {"clip", "frames"}, default="clip"
        ``"clip"``: one vector per 10 s window (chunk level). ``"frames"``: the patch
        tokens averaged over the 12 frequency patches, 10 frames per second (frames
        starting after the end of the audio are masked out).
    model_config : dict, default=None
        ``depth`` / ``dim`` / ``heads`` / ``input_frames`` of a random-weight model
        (tests; ``input_frames`` shortens the input window); ``None`` is PaSST-S
        (12 / 768 / 12 / 998 = 10 s).
    module : None
        Not used. Must stay ``None``.
    sample_rate : int, default=32000
        PaSST's rate; other values are refused.
    input_sample_rate, batch_size, device, cache_dir, max_duration, on_error, progress, random_state
        See :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Attributes
    ----------
    module_ : sklearn_mesh.backbones.PaSSTModel
    embedding_dim_ : int
    frame_hop_ : float or None
        ``None`` for ``output="clip"`` (one vector per window), 0.1 s for frames.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.embedders import PasstEmbedder
    >>> emb = PasstEmbedder(model_config={"depth": 1, "dim": 32, "heads": 2}, random_state=0)
    >>> out = emb.fit_transform([(np.zeros(16000 * 25, np.float32), 16000)])  # 25 s
    >>> out.lengths.tolist(), out.dim
    ([3], 32)
    """

    _name = "passt"
    _label = "PaSST"
    _source = _PASST_SOURCE
    _model_class = "PaSSTModel"
    _window_key = "input_frames"

    _parameter_constraints = {
        **_PasstBase._parameter_constraints,
        "output": [StrOptions({"clip", "frames"})],
        "sample_rate": [Options(Integral, {32000})],
    }

    def __init__(
        self,
        checkpoint=None,
        *,
        output="clip",
        model_config=None,
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
        self.output = output
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
    def _output_level(self):
        return "chunk" if self.output == "clip" else "frame"

    @property
    def _frame_hop_seconds(self):
        return None if self.output == "clip" else 0.1

    def _embed_batch(self, module, waves, lengths):
        import torch
        import torch.nn.functional as F

        waves = F.pad(waves, (0, module.window_samples - waves.shape[1]))
        if self.output == "clip":
            out = module.forward_clip(waves)[:, None]
            return out, torch.ones(out.shape[:2], dtype=torch.bool, device=out.device)
        frames = module.forward_frames(waves)
        n_valid = torch.clamp((lengths + 3199) // 3200, 1, frames.shape[1])
        mask = torch.arange(frames.shape[1], device=frames.device)[None, :] < n_valid[:, None]
        return frames, mask

    def _cache_config(self):
        return {"model_config": self.model_config, "output": self.output}


class FPasstEmbedder(_PasstBase):
    """Frame-level PaSST (Schmid et al., 2025) frame embeddings: 768-d, 25 frames / s.

    A native implementation of fPaSST, the frame-level PaSST of "Effective Pre-Training
    of Audio Transformers for Sound Event Detection" (fschmid56/PretrainedSED), loading
    the released ``fpasst_weak.pt`` (MESH's "fPaSST weak checkpoint": fPaSST trained on
    AudioSet weak labels) or ``fpasst_strong_1.pt`` as they are. The paper's "sequence
    mean+max, chunk max+std" (3,072-d) is
    ``ChunkPooling(frame_stats=("mean", "max"), stats=("max", "std"))``.

    Preprocessing is fPaSST's own: 16 kHz, log-mel (128 Kaldi mel bands, n_fft 512,
    400-sample window, 160 hop, 0-7 kHz), ``(x + 4.5) / 5``; three convolutions reduce
    time by 4, so one token is one 40 ms frame. The 250 time positions cover 10 s: clips are
    cut into consecutive 10 s windows, each zero-padded to 10 s (as in PretrainedSED's
    inference); frames starting after the end of the audio are masked out, so a clip of
    ``n`` samples gives ``ceil(n / 640)`` frames per window.

    Parameters
    ----------
    checkpoint : str or path-like, default=None
        ``fpasst_weak.pt``: PretrainedSED's state dict (encoder under ``model.`` or
        ``model.fpasst.``; its ``weak_head`` / ``strong_head`` classifiers are ignored; a
        checkpoint with a ``seq_model`` (RNN) on top is accepted and the RNN ignored, the
        frames are the transformer's). Loaded with ``weights_only=True``; a mismatch raises
        :class:`~sklearn_mesh.embedders.CheckpointError`. ``None``: random weights (tests).
    model_config : dict, default=None
        ``depth`` / ``dim`` / ``heads`` / ``pos_embed_length`` of a random-weight model
        (tests; ``pos_embed_length`` frames of 40 ms make the input window); ``None`` is
        fPaSST (12 / 768 / 12 / 250 = 10 s).
    module : None
        Not used. Must stay ``None``.
    sample_rate : int, default=16000
        fPaSST's rate; other values are refused.
    input_sample_rate, batch_size, device, cache_dir, max_duration, on_error, progress, random_state
        See :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Attributes
    ----------
    module_ : sklearn_mesh.backbones.FPaSSTModel
    embedding_dim_ : int
    frame_hop_ : float
        0.04 s.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.embedders import FPasstEmbedder
    >>> emb = FPasstEmbedder(model_config={"depth": 1, "dim": 32, "heads": 2}, random_state=0)
    >>> out = emb.fit_transform([(np.zeros(16000, np.float32), 16000)])
    >>> out.lengths.tolist(), out.dim, emb.frame_hop_
    ([25], 32, 0.04)
    """

    _frame_hop_seconds = 0.04
    _output_level = "frame"
    _name = "fpasst"
    _label = "fPaSST"
    _source = _FPASST_SOURCE
    _model_class = "FPaSSTModel"
    _window_key = "pos_embed_length"

    _parameter_constraints = {
        **_PasstBase._parameter_constraints,
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

    def _embed_batch(self, module, waves, lengths):
        import torch
        import torch.nn.functional as F

        waves = F.pad(waves, (0, module.window_samples - waves.shape[1]))
        frames = module(waves)
        n_valid = torch.clamp((lengths + 639) // 640, 1, frames.shape[1])
        mask = torch.arange(frames.shape[1], device=frames.device)[None, :] < n_valid[:, None]
        return frames, mask


def _check_instances():
    from .base import _EXPECTED_FAILED_CHECKS

    tiny = {"depth": 1, "dim": 8, "heads": 2}
    return [
        (PasstEmbedder(model_config={**tiny, "input_frames": 98}, input_sample_rate=100,
                       random_state=0), dict(_EXPECTED_FAILED_CHECKS)),
        (FPasstEmbedder(model_config={**tiny, "pos_embed_length": 25}, input_sample_rate=100,
                        random_state=0),
         dict(_EXPECTED_FAILED_CHECKS)),
    ]
