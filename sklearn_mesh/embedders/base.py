"""``TorchEmbedder``: waveforms -> per-clip frame sequences, for any torch backbone.

The base class does everything that is not specific to a backbone: reading audio items
(:func:`sklearn_mesh.audio.load_audio`), splitting clips longer than the backbone's input
limit into windows, length-bucketed zero-padded batches, ``torch.inference_mode``, a
progress bar, a per-clip on-disk cache, per-clip error handling, and packing the result
into a :class:`~sklearn_mesh.pooling.RaggedEmbeddings`.

Writing a backbone (BEATs, M2D, ATST-Frame, fPaSST, EfficientAT, PaSST, CLAP) means
subclassing :class:`TorchEmbedder` and providing

- ``__init__`` listing every parameter (scikit-learn reads the signature), with a
  backbone-specific default ``sample_rate`` and ``module=None``;
- ``_build_module(self) -> torch.nn.Module``: construct the network and load
  ``self.checkpoint`` with :func:`~sklearn_mesh.embedders._checkpoint.load_checkpoint`
  and :func:`~sklearn_mesh.embedders._checkpoint.load_state_dict_checked`;
- ``_embed_batch(self, module, waves, lengths) -> (frames, mask)``: ``waves`` is a float32
  ``(B, T)`` tensor at ``self.sample_rate`` (zero-padded on the right), ``lengths`` a
  ``(B,)`` long tensor of real lengths in samples; return frames ``(B, F, D)`` and a boolean
  mask ``(B, F)`` (True = real frame; every row needs at least one);
- class attributes: ``_frame_hop_seconds`` (seconds between frames; ``None`` for
  one-vector-per-input backbones), ``_embedding_dim``, ``_max_input_seconds`` (longer clips
  are cut into windows whose frames are concatenated; ``None``: no limit),
  ``_min_input_seconds`` (shorter inputs are zero-padded, the mask keeps them out),
  ``_output_level`` (``"frame"`` or ``"chunk"``), ``_name`` (feature-name prefix);
- optionally ``_windows(self, n_samples)`` (how a clip is cut into inputs) and
  ``_cache_config(self)`` (extra items that change the output).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from .._compat import Interval, StrOptions, _fit_context
from ..audio import AudioLoadError, audio_items, describe_item, item_fingerprint, load_audio
from ..pooling import RaggedEmbeddings

__all__ = ["TorchEmbedder", "resolve_device"]


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; other values unchanged.

    Examples
    --------
    >>> from sklearn_mesh.embedders.base import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'cpu' or 'auto'.")
    return str(device)


def _state_hash(module):
    import torch

    h = hashlib.blake2b(digest_size=16)
    for k, v in module.state_dict().items():
        h.update(k.encode())
        t = v.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class _Cache:
    """One ``.npz`` file per clip under ``root/<config>/<k[:2]>/<k>.npz``."""

    def __init__(self, root, config_key):
        self.dir = Path(os.fspath(root)).expanduser() / config_key
        self.hits = 0
        self.misses = 0

    def _path(self, fingerprint):
        return self.dir / fingerprint[:2] / f"{fingerprint}.npz"

    def get(self, fingerprint):
        if fingerprint is None:
            return None
        path = self._path(fingerprint)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path) as data:
                out = data["frames"], data["times"], float(data["duration"])
        except Exception:  # a torn/corrupt cache file is recomputed
            self.misses += 1
            return None
        self.hits += 1
        return out

    def put(self, fingerprint, frames, times, duration):
        if fingerprint is None:
            return
        path = self._path(fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, frames=frames, times=times, duration=np.float64(duration))
        os.replace(tmp, path)


class TorchEmbedder(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Embed audio clips with a torch module into per-clip frame sequences.

    With ``module`` set, wraps any ``nn.Module`` mapping a float waveform batch ``(B, T)``
    to frames ``(B, F, D)``, to one vector per input ``(B, D)``, or to a
    ``(frames, mask)`` pair. Backbone subclasses build their own module instead.

    Parameters
    ----------
    module : torch.nn.Module, default=None
        The network (kept in eval mode, never trained here). ``None`` for subclasses.
    checkpoint : str or path-like, default=None
        State-dict file loaded into the module with ``weights_only=True``.
    sample_rate : int, default=16000
        Rate the module expects; every clip is resampled to it.
    input_sample_rate : int, default=None
        Rate of bare waveforms in X (1-D arrays, or rows of a 2-D numeric array).
    frame_rate : float, default=None
        Frames per second of the module's output (user modules only). ``None`` measures
        it at ``fit`` by running the module on 4 s of silence.
    batch_size : int, default=8
        Inputs per forward pass; inputs are sorted by length (length buckets) first.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
    cache_dir : str or path-like, default=None
        Folder of the per-clip cache (key: clip content hash + embedder configuration,
        including a hash of the weights). A rerun only computes clips not in it.
    max_duration : float, default=None
        Crop clips to their first ``max_duration`` seconds.
    on_error : {"raise", "skip"}, default="raise"
        ``"skip"``: a clip that cannot be loaded (missing, unreadable, empty, too short,
        NaN/inf) gets zero frames instead of stopping the batch; it is listed in
        ``errors_`` and in the output's ``errors``, and pooling turns it into a NaN row
        (impute it, e.g. with ``SimpleImputer``, or use a NaN-aware model).
    progress : bool, default=False
        Show a tqdm progress bar over clips.
    random_state : int, RandomState instance or None, default=None
        Seeds torch while the module is built (random-weight backbones).

    Attributes
    ----------
    module_ : torch.nn.Module
        The module in eval mode, on ``device_``.
    device_ : str
    embedding_dim_ : int
    frame_hop_ : float or None
        Seconds between output frames (``None``: one vector per input window).
    errors_ : list of dict
        Clips that failed in the last ``transform`` (``row``, ``item``, ``reason``,
        ``message``); empty when all succeeded.
    last_transform_ : dict
        Counts of the last ``transform``: ``n_clips``, ``computed``, ``cache_hits``,
        ``failed``.
    config_hash_ : str or None
        Cache key of the configuration (class, parameters, weights); ``None`` without
        ``cache_dir``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_mesh.embedders import TorchEmbedder
    >>> class Frames(torch.nn.Module):          # 100 frames/s of 4-d features
    ...     def forward(self, x):
    ...         return x[:, : x.shape[1] // 160 * 160].reshape(x.shape[0], -1, 160)[..., :4]
    >>> emb = TorchEmbedder(module=Frames(), sample_rate=16000, frame_rate=100)
    >>> out = emb.fit_transform([(np.zeros(16000), 16000), (np.ones(8000), 8000)])
    >>> out.lengths.tolist(), out.dim
    ([100, 100], 4)
    """

    _frame_hop_seconds = None
    _embedding_dim = None
    _max_input_seconds = None
    _min_input_seconds = 0.0
    _min_duration = 0.005
    _output_level = "frame"
    _name = "torch"

    _parameter_constraints = {
        "module": [object, None],
        "checkpoint": [str, os.PathLike, None],
        "sample_rate": [Interval(Integral, 1, None, closed="left")],
        "input_sample_rate": [Interval(Integral, 1, None, closed="left"), None],
        "frame_rate": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "cache_dir": [str, os.PathLike, None],
        "max_duration": [Interval(Real, 0, None, closed="neither"), None],
        "on_error": [StrOptions({"raise", "skip"})],
        "progress": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        module=None,
        *,
        checkpoint=None,
        sample_rate=16000,
        input_sample_rate=None,
        frame_rate=None,
        batch_size=8,
        device="cpu",
        cache_dir=None,
        max_duration=None,
        on_error="raise",
        progress=False,
        random_state=None,
    ):
        self.module = module
        self.checkpoint = checkpoint
        self.sample_rate = sample_rate
        self.input_sample_rate = input_sample_rate
        self.frame_rate = frame_rate
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self.max_duration = max_duration
        self.on_error = on_error
        self.progress = progress
        self.random_state = random_state

    # ------------------------------------------------------------------ hooks
    def _build_module(self):
        """Return the network (user module + optional checkpoint). Subclasses override."""
        import torch

        from ._checkpoint import load_checkpoint, load_state_dict_checked

        if self.module is None:
            raise ValueError(
                f"{type(self).__name__} needs a torch module: pass module=<nn.Module> "
                "(waveforms (B, T) -> frames (B, F, D)), or use a backbone embedder."
            )
        if not isinstance(self.module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(self.module).__name__}.")
        module = copy.deepcopy(self.module)
        if self.checkpoint is not None:
            state = load_checkpoint(self.checkpoint)
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
            load_state_dict_checked(module, state, name=f"checkpoint {os.fspath(self.checkpoint)!r}")
        return module

    def _embed_batch(self, module, waves, lengths):
        """Run the module on a padded batch; return ``(frames (B,F,D), mask (B,F))``."""
        import torch

        out = module(waves)
        mask = None
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise ValueError("A module returning a tuple must return (frames, mask).")
            out, mask = out
        if out.ndim == 2:
            out = out[:, None, :]
            mask = torch.ones(out.shape[:2], dtype=torch.bool, device=out.device)
        if out.ndim != 3:
            raise ValueError(
                f"The module must return (B, F, D) frames or (B, D) vectors, got shape {tuple(out.shape)}."
            )
        if mask is None:
            hop = self.frame_hop_
            n_valid = torch.ceil(lengths.to(torch.float64) / self.sample_rate / hop - 1e-6).long()
            n_valid = n_valid.clamp(1, out.shape[1])
            mask = torch.arange(out.shape[1], device=out.device)[None, :] < n_valid.to(out.device)[:, None]
        return out, mask.bool()

    def _windows(self, n_samples):
        """``[(start, stop), ...]`` sample ranges fed to the module for one clip."""
        if self._max_input_seconds is None:
            return [(0, n_samples)]
        step = int(round(self._max_input_seconds * self.sample_rate))
        return [(a, min(a + step, n_samples)) for a in range(0, n_samples, step)]

    def _cache_config(self):
        """Extra JSON-able items that change the embeddings (subclasses extend)."""
        return {}

    # --------------------------------------------------------------- fitting
    def _infer_metadata(self, module):
        """Set ``frame_hop_`` and ``embedding_dim_`` (probe the module if needed)."""
        import torch

        hop = self._frame_hop_seconds
        dim = self._embedding_dim
        level = self._output_level
        if getattr(self, "module", None) is not None and getattr(self, "frame_rate", None) is not None:
            hop = 1.0 / float(self.frame_rate)
        if dim is None or (hop is None and level == "frame"):
            seconds = 4.0 if self._max_input_seconds is None else min(4.0, self._max_input_seconds)
            n = int(seconds * self.sample_rate)
            waves = torch.zeros(1, n, device=self.device_)
            with torch.inference_mode():
                out = module(waves)
            if isinstance(out, (tuple, list)):
                out = out[0]
            if out.ndim == 2:
                level, hop = "chunk", None
            elif out.ndim == 3:
                if hop is None:
                    hop = seconds / out.shape[1]
            else:
                raise ValueError(
                    f"The module must return (B, F, D) frames or (B, D) vectors, got shape {tuple(out.shape)}."
                )
            dim = int(out.shape[-1])
        self.frame_hop_ = hop
        self.embedding_dim_ = int(dim)
        self.output_level_ = level

    def _check_X(self, X):
        """Validate X cheaply (no audio is read) and return the list of items."""
        import scipy.sparse as sp

        if sp.issparse(X):
            raise TypeError(
                f"{type(self).__name__} does not accept sparse input: pass audio items "
                "(paths, (waveform, sr) tuples, dicts) or a dense 2-D array of waveforms."
            )
        if (
            not isinstance(X, (list, tuple, np.ndarray, str, os.PathLike))
            and hasattr(X, "__array__")
            and not hasattr(X, "iloc")
        ):
            X = np.asarray(X)
        if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind not in "US":
            X = check_array(X, dtype=np.float32, ensure_2d=True, ensure_all_finite=True, input_name="X")
        elif isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 2 and X.shape[1] > 1:
            # several columns: only a numeric waveform matrix makes sense
            X = check_array(X, dtype=np.float32, input_name="X")
        elif isinstance(X, list) and X and all(isinstance(v, (list, tuple)) for v in X) and all(
            isinstance(u, (Real, np.number)) for u in X[0]
        ):
            # a list of lists of numbers: rows of a waveform matrix
            X = check_array(X, dtype=np.float32, input_name="X")
        items = audio_items(X)
        if not items:
            raise ValueError(f"{type(self).__name__}: X contains no audio items (0 clips).")
        return items

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Build the backbone (no learning happens); ``X`` is only validated, ``y`` ignored.

        Returns
        -------
        self
        """
        import torch

        if X is not None:
            self._check_X(X)
        self.device_ = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build_module()
        module = module.to(self.device_).eval()
        self.module_ = module
        self._infer_metadata(module)
        self.config_hash_ = self._config_hash() if self.cache_dir is not None else None
        # diagnostics of the last transform, updated in place
        self.errors_ = []
        self.last_transform_ = {"n_clips": 0, "computed": 0, "cache_hits": 0, "failed": 0}
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Build the backbone and embed ``X``."""
        return self.fit(X, y).transform(X)

    # ------------------------------------------------------------- transform
    def _weights_hash(self):
        # modules built by backbone subclasses are shared read-only: hash them once
        cached = getattr(self.module_, "_sklearn_mesh_weights_hash", None)
        if cached is None:
            cached = _state_hash(self.module_)
            if getattr(self, "module", None) is None:
                try:
                    self.module_._sklearn_mesh_weights_hash = cached
                except Exception:  # pragma: no cover
                    pass
        return cached

    def _config_hash(self):
        if True:
            from .. import __version__

            params = {
                k: (os.fspath(v) if isinstance(v, os.PathLike) else v)
                for k, v in self.get_params(deep=False).items()
                if k not in ("module", "batch_size", "device", "cache_dir", "on_error", "progress")
                and isinstance(v, (str, int, float, bool, type(None), os.PathLike, tuple, list))
            }
            config = {
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "version": __version__,
                "params": params,
                "extra": self._cache_config(),
                "weights": self._weights_hash(),
            }
            blob = json.dumps(config, sort_keys=True, default=str).encode()
            return hashlib.blake2b(blob, digest_size=16).hexdigest()

    def _load(self, item):
        return load_audio(
            item,
            sample_rate=self.sample_rate,
            input_sample_rate=self.input_sample_rate,
            max_duration=self.max_duration,
            min_duration=self._min_duration,
        )[0]

    def _run_block(self, block):
        """Embed a list of ``(row, wave)``; return ``{row: (frames, times, duration)}``."""
        import torch

        sr = self.sample_rate
        pieces = []  # (row, window index, start sample, wave piece)
        for row, wave in block:
            for k, (a, b) in enumerate(self._windows(len(wave))):
                pieces.append((row, k, a, wave[a:b]))
        order = sorted(range(len(pieces)), key=lambda p: len(pieces[p][3]))
        outputs = {}
        min_len = int(np.ceil(self._min_input_seconds * sr))
        for s in range(0, len(order), self.batch_size):
            batch = [pieces[p] for p in order[s : s + self.batch_size]]
            lengths = [len(p[3]) for p in batch]
            width = max(max(lengths), min_len, 1)
            arr = np.zeros((len(batch), width), dtype=np.float32)
            for j, p in enumerate(batch):
                arr[j, : len(p[3])] = p[3]
            waves = torch.from_numpy(arr).to(self.device_)
            lens = torch.as_tensor(lengths, dtype=torch.long, device=self.device_)
            with torch.inference_mode():
                frames, mask = self._embed_batch(self.module_, waves, lens)
            frames = frames.float().cpu().numpy()
            mask = mask.bool().cpu().numpy()
            if frames.shape[-1] != self.embedding_dim_:
                raise ValueError(
                    f"The backbone returned {frames.shape[-1]}-d frames, expected {self.embedding_dim_}."
                )
            for j, p in enumerate(batch):
                m = mask[j]
                if not m.any():
                    m = m.copy()
                    m[0] = True
                pos = np.flatnonzero(m)
                f = frames[j][pos]
                a_sec = p[2] / sr
                if self.output_level_ == "chunk" or self.frame_hop_ is None:
                    t = np.array([[a_sec, a_sec + len(p[3]) / sr]] * len(pos))
                else:
                    hop = self.frame_hop_
                    t = np.stack([a_sec + pos * hop, a_sec + (pos + 1) * hop], axis=1)
                outputs[(p[0], p[1])] = (f, t)
        result = {}
        for row, wave in block:
            ks = sorted(k for (r, k) in outputs if r == row)
            frames = np.concatenate([outputs[(row, k)][0] for k in ks]).astype(np.float32)
            times = np.concatenate([outputs[(row, k)][1] for k in ks])
            result[row] = (frames, times, len(wave) / sr)
        return result

    def transform(self, X):
        """Embed every clip of ``X``.

        Parameters
        ----------
        X : sequence of audio items (list, array, pandas Series, one-column DataFrame)
            Paths, ``(waveform, sr)`` tuples, ``{"array", "sampling_rate"}`` dicts, or bare
            waveforms when ``input_sample_rate`` is set (a 2-D numeric array is one clip
            per row).

        Returns
        -------
        RaggedEmbeddings
            One frame sequence per clip; failed clips (``on_error="skip"``) have none.
        """
        check_is_fitted(self, "module_")
        from tqdm.auto import tqdm

        items = self._check_X(X)
        cache = None
        if self.cache_dir is not None:
            key = getattr(self, "config_hash_", None) or self._config_hash()
            cache = _Cache(self.cache_dir, key)
        results = [None] * len(items)
        errors = []
        block, block_samples = [], 0
        block_limit = max(4 * self.batch_size, 32)
        sample_limit = int(block_limit * 10 * self.sample_rate)
        fingerprints = {}
        bar = tqdm(total=len(items), disable=not self.progress, desc=type(self).__name__, unit="clip")

        def flush():
            nonlocal block, block_samples
            if not block:
                return
            out = self._run_block(block)
            for row, (frames, times, dur) in out.items():
                results[row] = (frames, times, dur)
                if cache is not None:
                    cache.put(fingerprints.get(row), frames, times, dur)
            bar.update(len(block))
            block, block_samples = [], 0

        try:
            for row, item in enumerate(items):
                if cache is not None:
                    fp = item_fingerprint(item, self.input_sample_rate)
                    if fp is not None:
                        fp = hashlib.blake2b(
                            f"{fp}:{self.sample_rate}:{self.max_duration}".encode(), digest_size=20
                        ).hexdigest()
                    fingerprints[row] = fp
                    hit = cache.get(fp)
                    if hit is not None:
                        results[row] = hit
                        bar.update(1)
                        continue
                try:
                    wave = self._load(item)
                except AudioLoadError as exc:
                    if self.on_error == "raise":
                        raise AudioLoadError(
                            f"Row {row}: {exc} (use on_error='skip' to continue without it).",
                            exc.reason,
                        ) from exc
                    errors.append(
                        {"row": row, "item": describe_item(item), "reason": exc.reason, "message": str(exc)}
                    )
                    bar.update(1)
                    continue
                block.append((row, wave))
                block_samples += len(wave)
                if len(block) >= block_limit or block_samples >= sample_limit:
                    flush()
            flush()
        finally:
            bar.close()
        # diagnostics are updated in place (transform does not rebind attributes)
        self.errors_[:] = errors
        hits = 0 if cache is None else cache.hits
        self.last_transform_.update(
            n_clips=len(items), cache_hits=hits, failed=len(errors), computed=len(items) - hits - len(errors)
        )
        dim = self.embedding_dim_
        lengths = np.array([0 if r is None else len(r[0]) for r in results], dtype=np.int64)
        durations = np.array([0.0 if r is None else r[2] for r in results])
        values = np.empty((int(lengths.sum()), dim), dtype=np.float32)
        times = np.empty((int(lengths.sum()), 2), dtype=np.float64)
        pos = 0
        for i, r in enumerate(results):  # fill in place, releasing per-clip arrays
            if r is not None:
                values[pos : pos + len(r[0])] = r[0]
                times[pos : pos + len(r[0])] = r[1]
                pos += len(r[0])
                results[i] = None
        return RaggedEmbeddings(
            values,
            lengths,
            times=times,
            frame_hop=self.frame_hop_,
            durations=durations,
            prefix=self._name,
            level=self.output_level_,
            errors={e["row"]: f"{e['reason']}: {e['message']}" for e in errors},
        )

    def __init_subclass__(cls, **kwargs):
        # the output is a RaggedEmbeddings, never a DataFrame: no set_output wrapping,
        # for this class and every backbone subclass
        kwargs["auto_wrap_output_keys"] = None
        super().__init_subclass__(**kwargs)

    def set_output(self, *, transform=None):
        """Accepted for Pipeline compatibility; the output is always a RaggedEmbeddings."""
        return self

    def get_feature_names_out(self, input_features=None):
        """Names of the frame dimensions, ``{name}_{j}`` (pooling names its own outputs)."""
        check_is_fitted(self, "module_")
        return np.asarray([f"{self._name}_{j}" for j in range(self.embedding_dim_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.requires_fit = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class _FrameSplitter(torch.nn.Module):
    """Tiny frame module for tests and the common checks: reshapes the waveform into
    ``width``-sample frames (``(B, T) -> (B, T // width, width)``)."""

    def __init__(self, width=4):
        super().__init__()
        self.width = width

    def forward(self, x):
        b, t = x.shape
        n = max(t // self.width, 1)
        if t < self.width:
            x = torch.nn.functional.pad(x, (0, self.width - t))
        return x[:, : n * self.width].reshape(b, n, self.width)


_EXPECTED_FAILED_CHECKS = {
    "check_n_features_in": (
        "rows of a 2-D array are waveforms whose number of samples varies from clip to "
        "clip, so there is no fixed n_features_in_"
    ),
    "check_n_features_in_after_fitting": (
        "rows of a 2-D array are waveforms: any number of samples is valid, so "
        "transform does not require the training width"
    ),
    "check_transformer_general": (
        "its last step requires an error when transform gets another number of columns; "
        "rows are waveforms, so any length is valid (the rest of the check passes)"
    ),
}


def _check_instances():
    return [
        (
            TorchEmbedder(module=_FrameSplitter(4), sample_rate=100, input_sample_rate=100, frame_rate=25),
            _EXPECTED_FAILED_CHECKS,
        )
    ]
