"""LAION-CLAP audio and text embedders (laion-clap 1.1.7), fully offline.

How the offline pitfalls of laion-clap are handled (see the user guide, "Embedders"):

- **No `import laion_clap`.** The package's ``__init__`` imports ``hook.py``, which imports
  ``training/data.py``; that module builds BERT/RoBERTa/BART tokenizers *at import time*
  (an 11-minute hub retry loop online-without-network, or silently degenerate 5-token
  tokenizers with ``HF_HUB_OFFLINE=1``) and imports torchvision, webdataset, PIL and wget.
  We load only the model code (``laion_clap/clap_module/{model,htsat,...}.py``) through
  temporary parent-package stubs, with ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` forced
  during that import, so no tokenizer is built and nothing touches the network.
- **torchvision.** ``clap_module/utils.py`` imports ``torchvision.ops.misc.FrozenBatchNorm2d``
  (used only to freeze layers for training). When torchvision is not importable (it
  does not import beside some torch builds), a minimal shim module providing that one
  class is placed in ``sys.modules`` *only for the duration of that import* and removed
  afterwards, so other code never sees a fake torchvision. A broken ``timm`` is hidden
  the same way (laion-clap treats timm as optional).
- **RoBERTa download.** ``CLAP.__init__`` calls ``RobertaModel.from_pretrained('roberta-base')``.
  During construction that name is rebound to a builder that creates the model from a
  local config (``text_model_dir``'s ``config.json``, else the built-in roberta-base
  architecture) with random weights; the checkpoint then provides the weights. The audio
  embedder builds a tiny throw-away text branch and drops it.
- **Checkpoints** are user files, read with ``weights_only=True`` and compared key by key
  with the model (architecture/fusion mismatches are reported clearly). No download.
- **Degenerate tokenizers are refused**: the text embedder loads the tokenizer from a
  local directory only and raises if it has (almost) nothing but special tokens, or if
  it maps ordinary words to the unknown token.
- **Audio preprocessing** follows laion-clap's own: 48 kHz, int16 quantisation, each
  <= 10 s chunk repeated then zero-padded to 10 s ("repeatpad"); for fusion models the
  4-channel mel input is computed with torch (no torchaudio).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import types
import warnings
from collections import OrderedDict
from importlib.util import find_spec
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from .._compat import Interval, StrOptions
from ..pooling import chunk_windows
from .base import TorchEmbedder

__all__ = ["ClapAudioEmbedder", "ClapTextEmbedder", "CLAP_CHECKPOINTS"]

CLAP_CHECKPOINTS = {
    "630k-best.pt": ("HTSAT-tiny", False),
    "630k-audioset-best.pt": ("HTSAT-tiny", False),
    "630k-fusion-best.pt": ("HTSAT-tiny", True),
    "630k-audioset-fusion-best.pt": ("HTSAT-tiny", True),
    "music_audioset_epoch_15_esc_90.14.pt": ("HTSAT-base", False),
    "music_speech_audioset_epoch_15_esc_89.98.pt": ("HTSAT-base", False),
    "music_speech_epoch_15_esc_89.25.pt": ("HTSAT-base", False),
}
"""Known checkpoint file names -> (amodel, enable_fusion), for clearer error messages."""

_CKPT_SOURCE = (
    "https://huggingface.co/lukewys/laion_clap (e.g. 630k-audioset-best.pt for HTSAT-tiny, "
    "music_audioset_epoch_15_esc_90.14.pt for HTSAT-base)"
)

_ROBERTA_BASE = dict(
    vocab_size=50265,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=514,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)

_LOCK = threading.RLock()
_LAION = {}


# --------------------------------------------------------------------- laion import
@contextlib.contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _torchvision_importable():
    before = set(sys.modules)
    try:
        import torchvision.ops.misc  # noqa: F401
    except Exception:  # ImportError, or RuntimeError "operator torchvision::nms does not exist"
        for name in set(sys.modules) - before:
            if name == "torchvision" or name.startswith("torchvision."):
                del sys.modules[name]
        return False
    return True


def _frozen_bn_shim():
    """A minimal ``torchvision.ops.misc`` exposing ``FrozenBatchNorm2d``."""
    import torch

    class FrozenBatchNorm2d(torch.nn.Module):
        """BatchNorm2d with fixed statistics and affine parameters (shim)."""

        def __init__(self, num_features, eps=1e-5):
            super().__init__()
            self.eps = eps
            self.register_buffer("weight", torch.ones(num_features))
            self.register_buffer("bias", torch.zeros(num_features))
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))

        def forward(self, x):
            scale = self.weight * (self.running_var + self.eps).rsqrt()
            bias = self.bias - self.running_mean * scale
            return x * scale[None, :, None, None] + bias[None, :, None, None]

    mods = {}
    for name in ("torchvision", "torchvision.ops", "torchvision.ops.misc"):
        m = types.ModuleType(name)
        m.__dict__["__sklearn_mesh_shim__"] = True
        mods[name] = m
    mods["torchvision"].__path__ = []
    mods["torchvision.ops"].__path__ = []
    mods["torchvision"].ops = mods["torchvision.ops"]
    mods["torchvision.ops"].misc = mods["torchvision.ops.misc"]
    mods["torchvision.ops.misc"].FrozenBatchNorm2d = FrozenBatchNorm2d
    return mods


def _laion():
    """The laion-clap model modules (``model``, ``htsat``), imported without side effects."""
    with _LOCK:
        if _LAION:
            return _LAION
        spec = find_spec("laion_clap")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                "laion-clap is needed for the CLAP embedders but is not installed. Install it "
                'with: pip install "sklearn-mesh[clap]" && pip install --no-deps laion-clap==1.1.7 '
                "(--no-deps because laion-clap pins numpy<2 and imports packages it never needs "
                "for inference; the extra installs what its model code really uses)."
            )
        for dep in ("torchlibrosa", "librosa", "transformers", "h5py"):
            if find_spec(dep) is None:
                raise ImportError(
                    f"{dep!r} is needed by laion-clap's model code; install it with: "
                    'pip install "sklearn-mesh[clap]"'
                )
        root = spec.submodule_search_locations[0]
        # import what laion's model code needs from transformers *before* any shim is in
        # place (transformers probes find_spec("torchvision") at import time)
        with _env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"):
            import transformers
            from transformers import BartModel, BertModel, RobertaModel  # noqa: F401
            from transformers.tokenization_utils_base import BatchEncoding  # noqa: F401
        inserted = {}
        if "laion_clap" not in sys.modules:
            pkg = types.ModuleType("laion_clap")
            pkg.__path__ = [root]
            inserted["laion_clap"] = pkg
        if "laion_clap.clap_module" not in sys.modules:
            sub = types.ModuleType("laion_clap.clap_module")
            sub.__path__ = [os.path.join(root, "clap_module")]
            inserted["laion_clap.clap_module"] = sub
        if not _torchvision_importable():
            inserted.update(_frozen_bn_shim())
        hide_timm = False
        if find_spec("timm") is not None:
            try:
                import timm  # noqa: F401
            except Exception:  # a timm that does not import with this torch
                hide_timm = "timm" not in sys.modules
        if hide_timm:
            inserted["timm"] = None  # makes `import timm` raise ImportError (optional in laion)
        saved = {k: sys.modules[k] for k in inserted if k in sys.modules}
        sys.modules.update(inserted)
        try:
            with _env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"):
                from importlib import import_module

                model = import_module("laion_clap.clap_module.model")
                htsat = import_module("laion_clap.clap_module.htsat")
        finally:
            for k in inserted:
                if k in saved:
                    sys.modules[k] = saved[k]
                else:
                    sys.modules.pop(k, None)
        _LAION.update(model=model, htsat=htsat, configs=Path(root) / "clap_module" / "model_configs")
        return _LAION


def _model_config(amodel, enable_fusion):
    lib = _laion()
    path = lib["configs"] / f"{amodel}.json"
    if not path.is_file():
        raise ValueError(f"Unknown CLAP audio model {amodel!r}.")
    cfg = json.loads(path.read_text())
    cfg["text_cfg"]["model_type"] = "roberta"
    cfg["enable_fusion"] = bool(enable_fusion)
    cfg["fusion_type"] = "aff_2d" if enable_fusion else "None"
    return cfg


def _roberta_config(text_model_dir, tiny=False):
    from transformers import RobertaConfig

    if tiny:
        return RobertaConfig(
            vocab_size=8, hidden_size=768, num_hidden_layers=1, num_attention_heads=1,
            intermediate_size=8, max_position_embeddings=80, type_vocab_size=1,
        )
    if text_model_dir is not None and (Path(os.fspath(text_model_dir)) / "config.json").is_file():
        return RobertaConfig.from_pretrained(os.fspath(text_model_dir), local_files_only=True)
    return RobertaConfig(**_ROBERTA_BASE)


def _build_clap(amodel, enable_fusion, *, keep, text_model_dir=None, roberta_config=None):
    """Construct a CLAP model offline; ``keep`` is ``"audio"`` or ``"text"``."""
    from transformers import RobertaConfig, RobertaModel

    lib = _laion()
    model_mod = lib["model"]
    if roberta_config is not None:
        config = RobertaConfig(**roberta_config)
    else:
        config = _roberta_config(text_model_dir, tiny=(keep == "audio"))
    if config.hidden_size != 768:
        raise ValueError(
            f"CLAP's text projection expects a 768-d RoBERTa; the config in {text_model_dir!r} "
            f"has hidden_size={config.hidden_size}."
        )

    class _LocalRoberta:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            return RobertaModel(config, add_pooling_layer=True)

    cfg = _model_config(amodel, enable_fusion)
    with _LOCK:
        original = model_mod.RobertaModel
        model_mod.RobertaModel = _LocalRoberta
        try:
            model = model_mod.CLAP(**cfg)
        finally:
            model_mod.RobertaModel = original
    if keep == "audio":
        for name in ("text_branch", "text_transform", "text_projection"):
            setattr(model, name, None)
    else:
        for name in ("audio_branch", "audio_transform", "audio_projection"):
            setattr(model, name, None)
    return model.eval()


def _load_clap_weights(model, checkpoint):
    from ._checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked, strip_prefix

    state = load_checkpoint(checkpoint, source=_CKPT_SOURCE)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"CLAP checkpoint {os.fspath(checkpoint)!r} does not hold a state dict.")
    state = strip_prefix(state, "module.")
    own = model.state_dict()
    roots = {k.split(".")[0] for k in own}
    # keep the branch this model has; old checkpoints carry a position_ids buffer
    state = {
        k: v
        for k, v in state.items()
        if k.split(".")[0] in roots and not (k.endswith("position_ids") and k not in own)
    }
    name = f"CLAP checkpoint {Path(os.fspath(checkpoint)).name!r}"
    known = CLAP_CHECKPOINTS.get(Path(os.fspath(checkpoint)).name)
    try:
        load_state_dict_checked(model, state, name=name)
    except CheckpointError as exc:
        hint = ""
        if known is not None:
            hint = f" This file is known to need amodel={known[0]!r}, enable_fusion={known[1]}."
        raise CheckpointError(f"{exc}{hint}") from exc
    return model


class _PickledClap:
    """Picklable stand-in for a CLAP model: architecture + state dict.

    laion-clap's classes are imported through temporary package stubs (see the module
    docstring), so pickle cannot find them by name; an estimator stores this instead and
    rebuilds the model when unpickled.
    """

    def __init__(self, model, amodel, enable_fusion, keep):
        self.amodel, self.enable_fusion, self.keep = amodel, bool(enable_fusion), keep
        self.roberta_config = None
        if keep == "text":
            self.roberta_config = model.text_branch.config.to_dict()
        self.state = {k: v.detach().cpu() for k, v in model.state_dict().items()}

    def rebuild(self, device="cpu"):
        model = _build_clap(
            self.amodel, self.enable_fusion, keep=self.keep, roberta_config=self.roberta_config
        )
        model.load_state_dict(self.state)
        return model.to(device).eval()


def _pickle_state(est, state, attr, keep):
    model = state.get(attr)
    if model is not None and not isinstance(model, _PickledClap):
        state = dict(state)
        state[attr] = _PickledClap(model, est.amodel, est.enable_fusion, keep)
    return state


def _unpickle_state(state, attr):
    model = state.get(attr)
    if isinstance(model, _PickledClap):
        state = dict(state)
        state[attr] = model.rebuild(state.get("device_", "cpu"))
    return state


_MODEL_CACHE: OrderedDict = OrderedDict()


def _cached_model(key, build):
    """Reuse built CLAP models across fits (they are only used for inference)."""
    with _LOCK:
        if key is not None and key in _MODEL_CACHE:
            _MODEL_CACHE.move_to_end(key)
            return _MODEL_CACHE[key]
    model = build()
    if key is not None:
        with _LOCK:
            _MODEL_CACHE[key] = model
            while len(_MODEL_CACHE) > 2:
                _MODEL_CACHE.popitem(last=False)
    return model


def _ckpt_id(checkpoint):
    if checkpoint is None:
        return None
    p = Path(os.fspath(checkpoint)).expanduser()
    try:
        st = p.stat()
    except OSError:
        return (str(p), None)
    return (str(p.resolve()), st.st_size, st.st_mtime_ns)


# ------------------------------------------------------------------- mel (fusion)
def _mel_fusion(waves, audio_cfg):
    """laion-clap's fusion-model mel input for <= 10 s chunks: (B, 4, T, n_mels) in dB."""
    import torch

    from .logmel import mel_filterbank

    sr, n_fft, hop = audio_cfg.sample_rate, audio_cfg.window_size, audio_cfg.hop_size
    window = torch.hann_window(n_fft, device=waves.device)
    spec = torch.stft(
        waves, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=window,
        center=True, pad_mode="reflect", return_complex=True,
    )
    power = spec.real**2 + spec.imag**2
    fb = torch.from_numpy(
        mel_filterbank(sr, n_fft, audio_cfg.mel_bins, audio_cfg.fmin, audio_cfg.fmax, norm=None)
    ).to(waves.device)
    mel = torch.einsum("bft,fm->btm", power, fb)
    mel = 10.0 * torch.log10(mel.clamp_min(1e-10))
    return mel[:, None].expand(-1, 4, -1, -1).contiguous()


def _repeatpad(x, max_len):
    """laion-clap's "repeatpad": repeat a short clip whole, then zero-pad to max_len."""
    import torch

    n = x.shape[0]
    if n >= max_len:
        return x[:max_len]
    x = x.repeat(max_len // n)
    return torch.nn.functional.pad(x, (0, max_len - x.shape[0]))


# --------------------------------------------------------------------- estimators
_COMMON = {
    "checkpoint": [str, os.PathLike, None],
    "amodel": [StrOptions({"HTSAT-tiny", "HTSAT-base", "PANN-6", "PANN-10", "PANN-14"})],
    "enable_fusion": ["boolean"],
}


class ClapAudioEmbedder(TorchEmbedder):
    """LAION-CLAP audio embeddings, one 512-d unit vector per 10 s chunk.

    Each clip is cut into 10 s chunks every ``hop_seconds`` plus one chunk aligned to the
    clip end (see :func:`~sklearn_mesh.pooling.chunk_windows`); a clip shorter than 10 s
    is one chunk. Every chunk goes through laion-clap's preprocessing ("repeatpad" to
    10 s at 48 kHz, int16 quantisation) and the audio encoder. The output is a
    chunk-level :class:`~sklearn_mesh.pooling.RaggedEmbeddings`: pool it with
    ``ChunkPooling(stats=("mean",))`` (paper: CLAP music, 512-d) or
    ``ChunkPooling(stats=("mean", "max"))`` (CLAP 630k, 1024-d).

    Parameters
    ----------
    checkpoint : str or path-like, default=None
        A laion-clap checkpoint file (``630k-audioset-best.pt``,
        ``music_audioset_epoch_15_esc_90.14.pt``, ...), read with ``weights_only=True``.
        ``None`` uses random weights (tests and benchmarks only; a warning says so).
    amodel : {"HTSAT-tiny", "HTSAT-base", "PANN-6", "PANN-10", "PANN-14"}, default="HTSAT-tiny"
        Audio encoder; the released 630k checkpoints use ``"HTSAT-tiny"``, the music
        checkpoints ``"HTSAT-base"``. The PANN encoders (no fusion) are laion-clap's CNN
        alternatives.
    enable_fusion : bool, default=False
        Fusion architecture (``*-fusion-*`` checkpoints; HTSAT only).
    chunk_seconds : float, default=10.0
        Chunk length, and the length every chunk is repeat-padded to. CLAP was trained on
        10 s inputs: keep 10 for real checkpoints (HTSAT resamples any input to its fixed
        spectrogram image, so shorter chunks are not faster with HTSAT).
    hop_seconds : float, default=10.0
        Hop between chunk starts.
    align_end : bool, default=True
        Add a chunk aligned to the clip end.
    quantize : bool, default=True
        Round the waveform to int16 as laion-clap does before embedding.
    input_sample_rate, batch_size, device, cache_dir, max_duration, on_error, progress, random_state
        As in :class:`~sklearn_mesh.embedders.TorchEmbedder` (``random_state`` seeds the
        random weights when ``checkpoint`` is None).

    Attributes
    ----------
    module_, device_, embedding_dim_, errors_, last_transform_, config_hash_
        As in :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Examples
    --------
    >>> from sklearn_mesh.embedders import ClapAudioEmbedder
    >>> from sklearn_mesh.pooling import ChunkPooling
    >>> from sklearn.pipeline import make_pipeline
    >>> clap_630k = make_pipeline(ClapAudioEmbedder("630k-audioset-best.pt"),
    ...                           ChunkPooling(stats=("mean", "max")))   # 1024-d
    >>> clap_630k[0].amodel, clap_630k[0].sample_rate
    ('HTSAT-tiny', 48000)

    With random weights (tests only), every chunk is a 512-d unit vector:

    >>> import numpy as np, warnings
    >>> with warnings.catch_warnings():  # doctest: +SKIP
    ...     warnings.simplefilter("ignore")
    ...     out = ClapAudioEmbedder(random_state=0).fit_transform([(np.zeros(4800), 48000)])
    >>> out.level, out.dim  # doctest: +SKIP
    ('chunk', 512)
    """

    sample_rate = 48000
    _frame_hop_seconds = None
    _embedding_dim = 512
    _output_level = "chunk"
    _name = "clap"

    _parameter_constraints = {
        **TorchEmbedder._parameter_constraints,
        **_COMMON,
        "chunk_seconds": [Interval(Real, 0, None, closed="neither")],
        "hop_seconds": [Interval(Real, 0, None, closed="neither")],
        "align_end": ["boolean"],
        "quantize": ["boolean"],
    }

    def __init__(
        self,
        checkpoint=None,
        *,
        amodel="HTSAT-tiny",
        enable_fusion=False,
        chunk_seconds=10.0,
        hop_seconds=10.0,
        align_end=True,
        quantize=True,
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
        self.amodel = amodel
        self.enable_fusion = enable_fusion
        self.chunk_seconds = chunk_seconds
        self.hop_seconds = hop_seconds
        self.align_end = align_end
        self.quantize = quantize
        self.input_sample_rate = input_sample_rate
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self.max_duration = max_duration
        self.on_error = on_error
        self.progress = progress
        self.random_state = random_state

    def _build_module(self):
        import torch

        if self.enable_fusion and self.amodel.startswith("PANN"):
            raise ValueError("enable_fusion=True is only available with the HTSAT encoders.")
        if self.checkpoint is None:
            warnings.warn(
                "ClapAudioEmbedder(checkpoint=None) uses RANDOM weights: fine for tests and "
                "speed measurements, meaningless as features. Pass a laion-clap checkpoint file.",
                UserWarning,
                stacklevel=3,
            )
            seed = int(torch.initial_seed())
            key = ("audio", self.amodel, bool(self.enable_fusion), None, seed)
        else:
            key = ("audio", self.amodel, bool(self.enable_fusion), _ckpt_id(self.checkpoint))

        def build():
            model = _build_clap(self.amodel, self.enable_fusion, keep="audio")
            if self.checkpoint is not None:
                _load_clap_weights(model, self.checkpoint)
            return model

        return _cached_model(key, build)

    def _windows(self, n_samples):
        sr = self.sample_rate
        wins = chunk_windows(n_samples / sr, self.chunk_seconds, self.hop_seconds, self.align_end)
        out = []
        for a, b in wins:
            a_i, b_i = int(round(a * sr)), min(int(round(b * sr)), n_samples)
            out.append((a_i, max(b_i, a_i + 1)))
        return out

    def _embed_batch(self, module, waves, lengths):
        import torch

        cfg = module.audio_cfg
        max_len = int(round(self.chunk_seconds * self.sample_rate))
        xs = []
        for j in range(waves.shape[0]):
            x = waves[j, : int(lengths[j])]
            if self.quantize:
                x = (x.clamp(-1.0, 1.0) * 32767.0).to(torch.int16).to(torch.float32) / 32767.0
            xs.append(_repeatpad(x, max_len))
        batch = torch.stack(xs)
        if cfg.model_type == "PANN":
            emb = module.audio_branch(batch, device=batch.device)["embedding"]
        else:
            inputs = {
                "waveform": batch,
                "longer": torch.zeros(batch.shape[0], dtype=torch.bool, device=batch.device),
            }
            if module.enable_fusion:
                inputs["mel_fusion"] = _mel_fusion(batch, cfg)
            emb = module.encode_audio(inputs, device=batch.device)["embedding"]
        emb = torch.nn.functional.normalize(module.audio_projection(emb), dim=-1)
        frames = emb[:, None, :]
        return frames, torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)

    @property
    def _max_input_seconds(self):
        return self.chunk_seconds

    def __getstate__(self):
        return _pickle_state(self, super().__getstate__(), "module_", "audio")

    def __setstate__(self, state):
        super().__setstate__(_unpickle_state(state, "module_"))

    def _cache_config(self):
        return {"amodel": self.amodel, "fusion": bool(self.enable_fusion)}


from .text import _TextEmbedderBase  # noqa: E402  (shared text input handling)


class ClapTextEmbedder(_TextEmbedderBase):
    """LAION-CLAP text embeddings (512-d, unit norm) from a local RoBERTa tokenizer.

    Parameters
    ----------
    checkpoint : str or path-like, default=None
        A laion-clap checkpoint file; ``None`` uses random weights (tests only, warned).
    text_model_dir : str or path-like
        Local directory with the RoBERTa tokenizer files (``vocab.json`` and
        ``merges.txt``, or ``tokenizer.json``) and optionally its ``config.json``
        (e.g. a saved copy of ``roberta-base``). Required: nothing is downloaded. A
        tokenizer that loads but is degenerate (only special tokens, or ordinary words
        mapped to ``<unk>``) is refused with an error.
    amodel : {"HTSAT-tiny", "HTSAT-base"}, default="HTSAT-tiny"
        Must match the checkpoint (the text tower is the same; the keys are not).
    enable_fusion : bool, default=False
    max_length : int, default=77
        Token sequence length (laion-clap uses 77).
    separator : str, default=" "
        Joins the columns of a multi-column input (e.g. title and tags).
    batch_size : int, default=32
    device : {"cpu", "cuda", "auto"}, default="cpu"
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    model_ : torch.nn.Module
    tokenizer_ : transformers tokenizer
    n_features_out_ : int
        512.

    Examples
    --------
    See the user guide: a RoBERTa tokenizer directory is needed, which no package ships.
    >>> from sklearn_mesh.embedders import ClapTextEmbedder
    >>> ClapTextEmbedder(text_model_dir="/path/to/roberta-base").max_length
    77
    """

    _name = "clap_text"

    _parameter_constraints = {
        **_TextEmbedderBase._parameter_constraints,
        **_COMMON,
        "text_model_dir": [str, os.PathLike, None],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        checkpoint=None,
        *,
        text_model_dir=None,
        amodel="HTSAT-tiny",
        enable_fusion=False,
        max_length=77,
        separator=" ",
        batch_size=32,
        device="cpu",
        random_state=None,
    ):
        self.checkpoint = checkpoint
        self.text_model_dir = text_model_dir
        self.amodel = amodel
        self.enable_fusion = enable_fusion
        self.max_length = max_length
        self.separator = separator
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _load(self):
        import torch
        from sklearn.utils import check_random_state

        tokenizer = load_roberta_tokenizer(self.text_model_dir)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        if self.checkpoint is None:
            warnings.warn(
                "ClapTextEmbedder(checkpoint=None) uses RANDOM weights: fine for tests, "
                "meaningless as features. Pass a laion-clap checkpoint file.",
                UserWarning,
                stacklevel=3,
            )
            key = ("text", self.amodel, bool(self.enable_fusion), str(self.text_model_dir), None, seed)
        else:
            key = ("text", self.amodel, bool(self.enable_fusion), str(self.text_model_dir),
                   _ckpt_id(self.checkpoint))

        def build():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = _build_clap(
                    self.amodel, self.enable_fusion, keep="text", text_model_dir=self.text_model_dir
                )
            if self.checkpoint is not None:
                _load_clap_weights(model, self.checkpoint)
            return model

        model = _cached_model(key, build)
        vocab = model.text_branch.config.vocab_size
        if len(tokenizer) > vocab:
            raise ValueError(
                f"The tokenizer in {os.fspath(self.text_model_dir)!r} has {len(tokenizer)} tokens "
                f"but the text model only {vocab}: they do not belong together."
            )
        return model, tokenizer

    def __getstate__(self):
        return _pickle_state(self, super().__getstate__(), "model_", "text")

    def __setstate__(self, state):
        super().__setstate__(_unpickle_state(state, "model_"))

    def _encode(self, texts):
        import torch

        model, tok = self.model_, self.tokenizer_
        out = []
        for s in range(0, len(texts), self.batch_size):
            enc = tok(
                texts[s : s + self.batch_size],
                padding="max_length",
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                x = model.text_branch(
                    input_ids=enc["input_ids"].to(self.device_),
                    attention_mask=enc["attention_mask"].to(self.device_),
                )["pooler_output"]
                x = torch.nn.functional.normalize(model.text_projection(x), dim=-1)
            out.append(x.float().cpu().numpy())
        return np.concatenate(out)


def load_roberta_tokenizer(path):
    """Load a RoBERTa tokenizer from a local directory, refusing degenerate ones.

    Raises
    ------
    ValueError
        If ``path`` is not a local directory, or the tokenizer has (almost) only special
        tokens (what transformers returns offline when the files are missing), or maps
        ordinary words to ``<unk>``.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_mesh.embedders.clap import load_roberta_tokenizer
    >>> try:
    ...     load_roberta_tokenizer(tempfile.mkdtemp())
    ... except ValueError as exc:
    ...     print(str(exc)[:39])
    Refusing a degenerate RoBERTa tokenizer
    """
    if path is None:
        raise ValueError(
            "ClapTextEmbedder needs text_model_dir: a local directory with the RoBERTa "
            "tokenizer files (vocab.json + merges.txt, or tokenizer.json), e.g. made once "
            "online with `AutoTokenizer.from_pretrained('roberta-base').save_pretrained(dir)` "
            "and `AutoConfig.from_pretrained('roberta-base').save_pretrained(dir)`."
        )
    p = Path(os.fspath(path)).expanduser()
    if not p.is_dir():
        raise ValueError(
            f"text_model_dir={os.fspath(path)!r} is not a local directory. Hub names such as "
            "'roberta-base' are not accepted (nothing is downloaded); save the tokenizer to a "
            "folder once and pass that folder."
        )
    with _env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers import RobertaTokenizer

        try:
            tok = RobertaTokenizer.from_pretrained(str(p), local_files_only=True)
        except Exception as exc:
            raise ValueError(f"Could not load a RoBERTa tokenizer from {str(p)!r}: {exc}") from exc
    n_special = len(set(tok.all_special_ids))
    probe = tok("a dog barks in the rain", add_special_tokens=False)["input_ids"]
    unk = tok.unk_token_id
    if len(tok) - n_special < 100 or not probe or all(i == unk or i in tok.all_special_ids for i in probe):
        raise ValueError(
            f"Refusing a degenerate RoBERTa tokenizer from {str(p)!r}: it has {len(tok)} tokens "
            f"({n_special} special) and encodes 'a dog barks in the rain' as {probe[:8]}. "
            "transformers returns such a tokenizer silently when the vocabulary files are "
            "missing (e.g. under HF_HUB_OFFLINE=1); text embeddings from it would be garbage. "
            "Put vocab.json and merges.txt (or tokenizer.json) of roberta-base in that folder."
        )
    return tok


def _bytes_to_unicode():
    """GPT-2/RoBERTa byte-level alphabet: byte value -> printable character."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars)))


def _write_tiny_roberta_dir(path):
    """Write a tiny, valid byte-level RoBERTa tokenizer + 1-layer config (tests/demos).

    The vocabulary is the 256 byte symbols (no merges), so every text tokenizes into
    characters; the config is a 1-layer, 768-wide RoBERTa (CLAP's projection needs 768).
    """
    path = Path(os.fspath(path))
    path.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in _bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    vocab["<mask>"] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    config = dict(
        _ROBERTA_BASE, model_type="roberta", architectures=["RobertaModel"],
        vocab_size=len(vocab), num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=80,
    )
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def _check_instances():
    import tempfile

    from .base import _EXPECTED_FAILED_CHECKS

    tmp = Path(tempfile.mkdtemp(prefix="sklearn_mesh_clap_checks_"))
    return [
        (
            # HTSAT costs ~0.1 s per chunk whatever its length; laion-clap's small CNN
            # encoder on 0.5 s chunks keeps the API checks fast (HTSAT is tested in
            # tests/test_embedders.py)
            ClapAudioEmbedder(
                amodel="PANN-6", chunk_seconds=0.5, input_sample_rate=300, random_state=0, batch_size=64
            ),
            _EXPECTED_FAILED_CHECKS,
        ),
        (
            ClapTextEmbedder(
                text_model_dir=str(_write_tiny_roberta_dir(tmp / "roberta")), max_length=16, random_state=0
            ),
            {},
        ),
    ]

