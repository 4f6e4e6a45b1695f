"""Ragged frame/chunk embeddings and the pooling transformers (paper section 2.1).

Embedders return a :class:`RaggedEmbeddings`: one variable-length sequence of frame (or
chunk) vectors per clip, stored without padding (a ``(n_frames_total, dim)`` array plus
per-clip lengths), each frame with its start/end time in seconds. Padding therefore never
enters a statistic.

- :class:`SequencePooling` computes clip-level statistics over all frames of a clip
  ("sequence pooling"; "clip-level pooling" for M2D in the paper).
- :class:`ChunkPooling` cuts the clip into time windows (10 s long, 10 s hop, plus one
  window aligned to the clip end by default), computes ``frame_stats`` inside each
  window (chunk-level vectors), then ``stats`` across the windows ("chunk pooling").
  On chunk-level input (CLAP, PaSST: one vector per 10 s window, already cut by the
  embedder) the windows are the embedder's own chunks and only ``stats`` applies.

Both share one code path (:func:`segment_stats`). The rows of the paper's Table 2
(``D`` = frame dimension):

==============================================  =========================================================
"CLAP music, chunk mean" (512)                  ``ChunkPooling(stats=("mean",))`` on CLAP chunks
"CLAP 630k, chunk mean+max" (1024)              ``ChunkPooling(stats=("mean", "max"))`` on CLAP chunks
"BEATs, sequence mean+std, chunk mean" (2D)     ``ChunkPooling(frame_stats=("mean", "std"), stats=("mean",))``
"PaSST, chunk max" (D)                          ``ChunkPooling(stats=("max",))`` on PaSST chunks
"BEATs, sequence mean+max+std, chunk max" (3D)  ``ChunkPooling(frame_stats=("mean", "max", "std"), stats=("max",))``
"ATST, sequence max+std, chunk mean+std" (4D)   ``ChunkPooling(frame_stats=("max", "std"), stats=("mean", "std"))``
"M2D, clip-level mean+std" (2D)                 ``SequencePooling(stats=("mean", "std"))``
==============================================  =========================================================

The dimensions printed in Table 2 (e.g. 2,304 for 768-d BEATs) are reproduced by this
nested reading. ``FeatureUnion`` concatenates several poolings (or embedders) when a
whole-clip statistic is wanted *beside* chunk statistics.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ._compat import Interval, _fit_context, validate_data

__all__ = ["RaggedEmbeddings", "SequencePooling", "ChunkPooling", "segment_stats", "chunk_windows"]

STATS = ("mean", "max", "min", "std")
_BLOCK_ELEMENTS = 1 << 22  # float64 work-array size of segment_stats (32 MiB)


class RaggedEmbeddings:
    """Per-clip sequences of frame (or chunk) embeddings of different lengths.

    Parameters
    ----------
    values : array-like of shape (n_frames_total, dim)
        All frames of all clips, clip after clip (no padding).
    lengths : array-like of int, shape (n_clips,)
        Number of frames of each clip (0 for a clip that failed to load).
    times : array-like of shape (n_frames_total, 2), default=None
        Start and end time (seconds) of every frame. ``None`` derives them from
        ``frame_hop`` (frame ``i`` spans ``[i*hop, (i+1)*hop)``).
    frame_hop : float, default=None
        Seconds between consecutive frames (informative for chunk-level data).
    durations : array-like of shape (n_clips,), default=None
        Clip durations in seconds; ``None`` uses the end of each clip's last frame.
    prefix : str, default="emb"
        Prefix of the feature names produced by pooling.
    level : {"frame", "chunk"}, default="frame"
        ``"chunk"``: each vector already embeds one time window (CLAP, PaSST).
    errors : dict, default=None
        ``{row: message}`` for clips that failed (their length is 0).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.pooling import RaggedEmbeddings
    >>> r = RaggedEmbeddings.from_list([np.ones((3, 2)), np.zeros((1, 2))], frame_hop=0.5)
    >>> len(r), r.dim, r.lengths.tolist()
    (2, 2, [3, 1])
    >>> padded, mask = r.padded()
    >>> padded.shape, mask.sum(axis=1).tolist()
    ((2, 3, 2), [3, 1])
    """

    def __init__(
        self,
        values,
        lengths,
        *,
        times=None,
        frame_hop=None,
        durations=None,
        prefix="emb",
        level="frame",
        errors=None,
    ):
        values = np.asarray(values, dtype=np.float32)
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if values.ndim != 2:
            raise ValueError(f"values must be 2-D (n_frames_total, dim), got shape {values.shape}.")
        if (lengths < 0).any() or lengths.sum() != values.shape[0]:
            raise ValueError(
                f"lengths must be >= 0 and sum to the number of frames ({values.shape[0]}), "
                f"got sum {int(lengths.sum())}."
            )
        if level not in ("frame", "chunk"):
            raise ValueError(f"level must be 'frame' or 'chunk', got {level!r}.")
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if times is None:
            if frame_hop is None:
                # unknown timing: one frame per unit
                hop = 1.0
            else:
                hop = float(frame_hop)
            local = np.arange(values.shape[0]) - np.repeat(offsets[:-1], lengths)
            times = np.stack([local * hop, (local + 1) * hop], axis=1)
        times = np.asarray(times, dtype=np.float64)
        if times.shape != (values.shape[0], 2):
            raise ValueError(f"times must have shape ({values.shape[0]}, 2), got {times.shape}.")
        if durations is None:
            durations = np.zeros(len(lengths))
            nz = lengths > 0
            durations[nz] = np.maximum.reduceat(times[:, 1], offsets[:-1][nz]) if nz.any() else 0
        durations = np.asarray(durations, dtype=np.float64).reshape(-1)
        if durations.shape != lengths.shape:
            raise ValueError("durations must have one entry per clip.")
        self.values = values
        self.lengths = lengths
        self.offsets = offsets
        self.times = times
        self.frame_hop = None if frame_hop is None else float(frame_hop)
        self.durations = durations
        self.prefix = str(prefix)
        self.level = level
        self.errors = dict(errors or {})

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_list(cls, frames, *, times=None, **kwargs):
        """Build from a list of ``(n_frames_i, dim)`` arrays (and optional time arrays)."""
        frames = [np.asarray(f, dtype=np.float32) for f in frames]
        if not frames:
            raise ValueError("Cannot build RaggedEmbeddings from an empty list.")
        dims = {f.shape[1] for f in frames if f.ndim == 2 and f.shape[0] > 0}
        if any(f.ndim != 2 for f in frames) or len(dims) > 1:
            raise ValueError(
                "Every clip must be a 2-D (n_frames, dim) array with the same dim; got shapes "
                f"{sorted({f.shape for f in frames})[:5]}."
            )
        dim = dims.pop() if dims else max((f.shape[1] for f in frames if f.ndim == 2), default=0)
        values = np.concatenate([f.reshape(-1, dim) for f in frames], axis=0)
        lengths = [f.shape[0] for f in frames]
        if times is not None:
            times = np.concatenate([np.asarray(t, dtype=np.float64).reshape(-1, 2) for t in times])
        return cls(values, lengths, times=times, **kwargs)

    @classmethod
    def from_padded(cls, padded, mask=None, **kwargs):
        """Build from a padded ``(n_clips, max_frames, dim)`` array and a boolean mask.

        ``mask[i, j]`` is True for real frames. Masked-out frames are dropped wherever
        they are (they need not be at the end); frame times follow frame positions.
        """
        padded = np.asarray(padded, dtype=np.float32)
        if padded.ndim != 3:
            raise ValueError(f"padded must be 3-D (n_clips, n_frames, dim), got {padded.shape}.")
        n, f, _ = padded.shape
        mask = np.ones((n, f), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != (n, f):
            raise ValueError(f"mask must have shape {(n, f)}, got {mask.shape}.")
        hop = kwargs.get("frame_hop")
        hop = 1.0 if hop is None else float(hop)
        pos = np.broadcast_to(np.arange(f), (n, f))[mask]
        times = np.stack([pos * hop, (pos + 1) * hop], axis=1)
        return cls(padded[mask], mask.sum(axis=1), times=times, **kwargs)

    # -- access -----------------------------------------------------------------------
    def __len__(self):
        return len(self.lengths)

    @property
    def dim(self):
        """Embedding dimension."""
        return self.values.shape[1]

    @property
    def n_clips(self):
        return len(self.lengths)

    @property
    def shape(self):
        """``(n_clips, max_frames, dim)``, the shape of the NaN-padded array view."""
        return (len(self), int(self.lengths.max()) if len(self) else 0, self.dim)

    @property
    def dtype(self):
        return self.values.dtype

    def __array__(self, dtype=None, copy=None):
        """NaN-padded ``(n_clips, max_frames, dim)`` array (padding is visibly not data)."""
        out = self.padded(fill_value=np.nan)[0]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return (
            f"RaggedEmbeddings(n_clips={len(self)}, dim={self.dim}, level={self.level!r}, "
            f"frames={int(self.lengths.sum())}, prefix={self.prefix!r}, failed={len(self.errors)})"
        )

    def frames(self, i):
        """Frames of clip ``i`` as a ``(n_frames_i, dim)`` array."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def frame_times(self, i):
        """Start/end times (seconds) of the frames of clip ``i``."""
        return self.times[self.offsets[i] : self.offsets[i + 1]]

    def __getitem__(self, index):
        if isinstance(index, (Integral, np.integer)):
            return self.frames(int(index))
        rows = np.arange(len(self))[index]
        rows = np.atleast_1d(rows)
        take = (
            np.concatenate([np.arange(self.offsets[r], self.offsets[r + 1]) for r in rows])
            if len(rows)
            else np.zeros(0, dtype=np.int64)
        ).astype(np.int64)
        errors = {
            new: self.errors[int(old)] for new, old in enumerate(rows) if int(old) in self.errors
        }
        return RaggedEmbeddings(
            self.values[take],
            self.lengths[rows],
            times=self.times[take],
            frame_hop=self.frame_hop,
            durations=self.durations[rows],
            prefix=self.prefix,
            level=self.level,
            errors=errors,
        )

    @property
    def mask(self):
        """Boolean ``(n_clips, max_frames)`` mask of real frames (True) vs padding."""
        f = int(self.lengths.max()) if len(self) else 0
        return np.arange(f)[None, :] < self.lengths[:, None]

    def padded(self, fill_value=0.0):
        """``(padded, mask)``: a ``(n_clips, max_frames, dim)`` array and its mask."""
        mask = self.mask
        out = np.full(mask.shape + (self.dim,), fill_value, dtype=np.float32)
        out[mask] = self.values
        return out, mask

    @classmethod
    def concat(cls, parts):
        """Stack several containers (clips of ``parts[0]`` first)."""
        parts = list(parts)
        first = parts[0]
        errors, shift = {}, 0
        for p in parts:
            errors.update({shift + k: v for k, v in p.errors.items()})
            shift += len(p)
        return cls(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            times=np.concatenate([p.times for p in parts]),
            frame_hop=first.frame_hop,
            durations=np.concatenate([p.durations for p in parts]),
            prefix=first.prefix,
            level=first.level,
            errors=errors,
        )


def _as_ragged(X):
    """Accept RaggedEmbeddings, a list of 2-D arrays, a 3-D array or a 2-D array.

    A 2-D ``(n_clips, dim)`` array is read as one frame per clip, so poolings of it are
    identities (mean = max = the row, std = 0).
    """
    if isinstance(X, RaggedEmbeddings):
        return X
    if isinstance(X, list) and X and all(getattr(x, "ndim", 0) == 2 for x in X):
        return RaggedEmbeddings.from_list(X)
    arr = np.asarray(X)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            "Pooling expects a RaggedEmbeddings (the output of an embedder), a list of 2-D "
            f"(n_frames, dim) arrays, or a numeric 2-D/3-D array; got dtype {arr.dtype}."
        )
    if arr.ndim == 3:
        return RaggedEmbeddings.from_padded(arr)
    if arr.ndim == 2:
        return RaggedEmbeddings(arr, np.ones(arr.shape[0], dtype=np.int64))
    raise ValueError(
        f"Pooling expects a 2-D (n_clips, dim) or 3-D (n_clips, n_frames, dim) array, got shape {arr.shape}."
    )


def segment_stats(values, starts, lengths, stats):
    """Per-segment statistics over consecutive rows: the one pooling code path.

    Parameters
    ----------
    values : ndarray of shape (n_rows, dim)
    starts, lengths : ndarray of int, shape (n_segments,)
        Segment ``s`` is ``values[starts[s] : starts[s] + lengths[s]]``.
    stats : sequence of {"mean", "max", "min", "std"}
        ``std`` is the population standard deviation (ddof=0).

    Returns
    -------
    ndarray of shape (n_segments, len(stats) * dim), float32
        Statistic blocks side by side, in the order of ``stats``. Empty segments give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.pooling import segment_stats
    >>> v = np.array([[1.0], [3.0], [5.0]])
    >>> segment_stats(v, np.array([0, 2]), np.array([2, 1]), ("mean", "max")).tolist()
    [[2.0, 3.0], [5.0, 5.0]]
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    bad = [t for t in stats if t not in STATS]
    if bad:
        raise ValueError(f"Unknown statistic {bad[0]!r}; choose from {STATS}.")
    n, d = len(lengths), values.shape[1]
    out = np.full((n, len(stats) * d), np.nan, dtype=np.float32)
    ok = np.flatnonzero(lengths > 0)
    # process segments in groups of bounded size: float64 work arrays stay small
    budget = max(1, _BLOCK_ELEMENTS // max(d, 1))
    g0 = 0
    while g0 < len(ok):
        g1, rows = g0, 0
        while g1 < len(ok) and (g1 == g0 or rows + lengths[ok[g1]] <= budget):
            rows += lengths[ok[g1]]
            g1 += 1
        seg = ok[g0:g1]
        s, ln = starts[seg], lengths[seg]
        if np.all(s[1:] == s[:-1] + ln[:-1]):  # contiguous: a slice, no gather
            v = values[s[0] : s[-1] + ln[-1]]
        else:
            v = values[np.concatenate([np.arange(a, a + b) for a, b in zip(s, ln)])]
        seg_start = np.zeros(len(ln), dtype=np.int64)
        np.cumsum(ln[:-1], out=seg_start[1:])
        mean = None
        for k, stat in enumerate(stats):
            if stat in ("mean", "std") and mean is None:
                mean = np.add.reduceat(v, seg_start, axis=0, dtype=np.float64) / ln[:, None]
            if stat == "mean":
                res = mean
            elif stat == "max":
                res = np.maximum.reduceat(v, seg_start, axis=0)
            elif stat == "min":
                res = np.minimum.reduceat(v, seg_start, axis=0)
            else:  # std, two-pass
                dev = v - np.repeat(mean, ln, axis=0)
                res = np.sqrt(np.add.reduceat(dev * dev, seg_start, axis=0) / ln[:, None])
            out[seg, k * d : (k + 1) * d] = res
        g0 = g1
    return out


def chunk_windows(duration, chunk_seconds=10.0, hop_seconds=10.0, align_end=True):
    """Time windows ``[(start, end), ...]`` of chunk pooling for a clip of ``duration`` s.

    Windows of ``chunk_seconds`` start every ``hop_seconds`` while they fit in the clip;
    with ``align_end`` one more window ``[duration - chunk, duration]`` is added unless
    the last regular window already ends at the clip end (exact multiples). A clip
    shorter than one chunk gives the single window ``[0, duration]``.

    Examples
    --------
    >>> from sklearn_mesh.pooling import chunk_windows
    >>> chunk_windows(25.0)
    [(0.0, 10.0), (10.0, 20.0), (15.0, 25.0)]
    >>> chunk_windows(20.0), chunk_windows(3.0)
    ([(0.0, 10.0), (10.0, 20.0)], [(0.0, 3.0)])
    """
    duration = float(duration)
    c, h = float(chunk_seconds), float(hop_seconds)
    eps = 1e-6 * max(1.0, c)
    if duration <= c + eps:
        return [(0.0, duration)]
    wins, start = [], 0.0
    while start + c <= duration + eps:
        wins.append((start, start + c))
        start += h
    if not wins:
        wins.append((0.0, c))
    if align_end and wins[-1][1] < duration - eps:
        wins.append((duration - c, duration))
    return wins


def _check_stats(stats, name):
    if isinstance(stats, str):
        stats = (stats,)
    stats = tuple(stats)
    bad = [s for s in stats if s not in STATS]
    if not stats or bad or len(set(stats)) != len(stats):
        raise ValueError(
            f"{name} must be a non-empty sequence of distinct statistics among {STATS}, got {stats!r}."
        )
    return stats


class _PoolingBase(TransformerMixin, BaseEstimator):
    def _validate_input(self, X, reset):
        name = type(self).__name__
        if isinstance(X, RaggedEmbeddings) or (
            isinstance(X, list) and X and all(getattr(x, "ndim", 0) == 2 for x in X)
        ):
            R = _as_ragged(X)
            if not np.isfinite(R.values).all():
                raise ValueError(f"Input embeddings contain NaN or infinity ({name}).")
            if reset:
                self.n_features_in_ = R.dim
        elif getattr(X, "ndim", None) == 3:
            arr = check_array(X, allow_nd=True, dtype=[np.float32, np.float64])
            R = RaggedEmbeddings.from_padded(arr)
            if reset:
                self.n_features_in_ = R.dim
        else:
            arr = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64])
            R = RaggedEmbeddings(arr, np.ones(arr.shape[0], dtype=np.int64))
        if reset:
            self.embedding_dim_ = R.dim
            self.prefix_ = R.prefix
            self.level_ = R.level
        elif R.dim != self.embedding_dim_:
            raise ValueError(
                f"X has {R.dim} features, but {name} is expecting {self.embedding_dim_} "
                "features as input (embedding dimension seen in fit)."
            )
        return R

    def _names(self, blocks):
        check_is_fitted(self)
        d = self.embedding_dim_
        return np.asarray(
            [f"{self.prefix_}_{b}_{j}" for b in blocks for j in range(d)], dtype=object
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class SequencePooling(_PoolingBase):
    """Clip-level statistics over all frames of each clip ("sequence pooling").

    Parameters
    ----------
    stats : sequence of {"mean", "max", "min", "std"}, default=("mean", "max", "std")
        Statistics, concatenated in this order; ``std`` has ddof=0.

    Attributes
    ----------
    embedding_dim_ : int
        Frame dimension ``D``; the output has ``len(stats) * D`` columns.
    n_features_in_ : int
        Same as ``embedding_dim_``.
    prefix_ : str
        Feature-name prefix taken from the training embeddings.

    Notes
    -----
    Clips with no frames (failed to load, see ``on_error="skip"`` of the embedders) give
    rows of NaN. A 2-D array is read as one frame per row (identity pooling).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.pooling import RaggedEmbeddings, SequencePooling
    >>> r = RaggedEmbeddings.from_list([np.array([[0.0], [2.0]]), np.array([[5.0]])])
    >>> SequencePooling(stats=("mean", "std")).fit_transform(r).tolist()
    [[1.0, 1.0], [5.0, 0.0]]
    """

    _parameter_constraints = {"stats": ["array-like", str]}

    def __init__(self, stats=("mean", "max", "std")):
        self.stats = stats

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the embedding dimension and feature-name prefix."""
        _check_stats(self.stats, "stats")
        self._validate_input(X, reset=True)
        return self

    def transform(self, X):
        """Pool every clip to one ``(len(stats) * dim,)`` row."""
        check_is_fitted(self)
        stats = _check_stats(self.stats, "stats")
        R = self._validate_input(X, reset=False)
        return segment_stats(R.values, R.offsets[:-1], R.lengths, stats)

    def get_feature_names_out(self, input_features=None):
        """Names ``{prefix}_seq_{stat}_{j}``."""
        stats = _check_stats(self.stats, "stats")
        return self._names([f"seq_{s}" for s in stats])


class ChunkPooling(_PoolingBase):
    """Chunk-level statistics, then clip-level statistics across chunks ("chunk pooling").

    Parameters
    ----------
    stats : sequence of {"mean", "max", "min", "std"}, default=("mean",)
        Statistics across the chunks of a clip (clip level).
    frame_stats : sequence of str, default=None
        Statistics over the frames inside each chunk (chunk level). ``None`` means
        ``("mean",)`` for frame-level input; for chunk-level input (CLAP, PaSST) each
        chunk is already one vector, and ``frame_stats`` must stay ``None``.
    chunk_seconds : float, default=10.0
    hop_seconds : float, default=10.0
    align_end : bool, default=True
        Add one window aligned to the clip end (see :func:`chunk_windows`).

    Attributes
    ----------
    embedding_dim_ : int
        Frame dimension ``D``; the output has ``len(stats) * len(frame_stats) * D``
        columns.
    n_features_in_ : int
    prefix_ : str
    level_ : {"frame", "chunk"}

    Notes
    -----
    A frame belongs to every window that contains its centre. A window that contains no
    frame centre (very short clips with long frames) takes the frame nearest to it. Clips
    with no frames give NaN rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.pooling import RaggedEmbeddings, ChunkPooling
    >>> r = RaggedEmbeddings.from_list([np.arange(4.0).reshape(4, 1)], frame_hop=5.0)
    >>> pool = ChunkPooling(stats=("max",), frame_stats=("mean",)).fit(r)
    >>> pool.transform(r).tolist()   # chunks [0,10): frames 0,1; [10,20): frames 2,3
    [[2.5]]
    """

    _parameter_constraints = {
        "stats": ["array-like", str],
        "frame_stats": ["array-like", str, None],
        "chunk_seconds": [Interval(Real, 0, None, closed="neither")],
        "hop_seconds": [Interval(Real, 0, None, closed="neither")],
        "align_end": ["boolean"],
    }

    def __init__(
        self, stats=("mean",), frame_stats=None, chunk_seconds=10.0, hop_seconds=10.0, align_end=True
    ):
        self.stats = stats
        self.frame_stats = frame_stats
        self.chunk_seconds = chunk_seconds
        self.hop_seconds = hop_seconds
        self.align_end = align_end

    def _frame_stats(self, level):
        if self.frame_stats is None:
            return None if level == "chunk" else ("mean",)
        if level == "chunk":
            raise ValueError(
                "These embeddings are already one vector per chunk (level='chunk', e.g. CLAP "
                "or PaSST), so there are no frames inside a chunk: leave frame_stats=None "
                "and choose the across-chunk statistics with stats=."
            )
        return _check_stats(self.frame_stats, "frame_stats")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the embedding dimension, level and feature-name prefix."""
        _check_stats(self.stats, "stats")
        R = self._validate_input(X, reset=True)
        self._frame_stats(R.level)
        return self

    def _chunk_segments(self, R):
        """Row indices of the chunk segments of every clip (frames may repeat)."""
        idx, seg_len, clip_nchunks = [], [], np.zeros(len(R), dtype=np.int64)
        centres = R.times.mean(axis=1)
        for i in range(len(R)):
            a, b = R.offsets[i], R.offsets[i + 1]
            if b == a:
                continue
            c = centres[a:b]
            dur = R.durations[i] if R.durations[i] > 0 else float(R.times[b - 1, 1])
            wins = chunk_windows(dur, self.chunk_seconds, self.hop_seconds, self.align_end)
            for k, (s, e) in enumerate(wins):
                last = k == len(wins) - 1
                inside = np.flatnonzero((c >= s) & ((c <= e) if last else (c < e)))
                if inside.size == 0:
                    inside = np.array([np.argmin(np.abs(c - (s + e) / 2))])
                idx.append(a + inside)
                seg_len.append(inside.size)
            clip_nchunks[i] = len(wins)
        idx = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)
        return idx, np.asarray(seg_len, dtype=np.int64), clip_nchunks

    def transform(self, X):
        """Pool every clip to one ``(len(stats) * len(frame_stats) * dim,)`` row."""
        check_is_fitted(self)
        stats = _check_stats(self.stats, "stats")
        R = self._validate_input(X, reset=False)
        fstats = self._frame_stats(R.level)
        if fstats is None:
            # chunk-level input: each vector is one chunk
            return segment_stats(R.values, R.offsets[:-1], R.lengths, stats)
        idx, seg_len, n_chunks = self._chunk_segments(R)
        seg_start = np.zeros(len(seg_len), dtype=np.int64)
        np.cumsum(seg_len[:-1], out=seg_start[1:])
        chunk_vecs = segment_stats(R.values[idx], seg_start, seg_len, fstats)
        clip_start = np.zeros(len(R), dtype=np.int64)
        np.cumsum(n_chunks[:-1], out=clip_start[1:])
        return segment_stats(chunk_vecs, clip_start, n_chunks, stats)

    def get_feature_names_out(self, input_features=None):
        """Names ``{prefix}_chunk_{stat}_{frame_stat}_{j}`` (``{prefix}_chunk_{stat}_{j}``
        on chunk-level input)."""
        check_is_fitted(self)
        stats = _check_stats(self.stats, "stats")
        fstats = self._frame_stats(self.level_)
        if fstats is None:
            return self._names([f"chunk_{s}" for s in stats])
        return self._names([f"chunk_{s}_{f}" for s in stats for f in fstats])


def _check_instances():
    return [
        (SequencePooling(), {}),
        (SequencePooling(stats=("mean",)), {}),
        (ChunkPooling(stats=("mean", "max"), frame_stats=("mean", "std")), {}),
    ]
