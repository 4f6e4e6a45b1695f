"""The one audio loader: decode, mix down to mono, resample, validate.

Every embedder reads audio through :func:`load_audio`, so a clip is decoded the same way
for training and for evaluation. An *audio item* is one of

- a path (``str`` or ``os.PathLike``) to a file that ``soundfile`` can decode
  (WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1, ...);
- a ``(waveform, sample_rate)`` tuple;
- a dict ``{"array": waveform, "sampling_rate": sr}`` (the Hugging Face ``datasets``
  layout; a ``"path"`` entry is used when ``"array"`` is missing);
- a bare 1-D waveform, when ``input_sample_rate`` is given.

Waveforms may be float or integer arrays (integers are scaled to [-1, 1]); 2-D arrays are
mixed down to mono along their shorter axis (``(channels, samples)`` or
``(samples, channels)``).

Every failure raises :class:`AudioLoadError` (a ``ValueError``) whose ``reason`` is one of
``"missing"``, ``"unreadable"``, ``"empty"``, ``"too_short"``, ``"non_finite"``,
``"invalid"``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from math import gcd
from pathlib import Path

import numpy as np

__all__ = ["AudioLoadError", "load_audio", "resample", "audio_items", "describe_item", "item_fingerprint"]


class AudioLoadError(ValueError):
    """An audio item could not be turned into a valid waveform.

    Attributes
    ----------
    reason : str
        ``"missing"``, ``"unreadable"``, ``"empty"``, ``"too_short"``, ``"non_finite"`` or
        ``"invalid"``.
    """

    def __init__(self, message, reason="invalid"):
        super().__init__(message)
        self.reason = reason


def describe_item(item, limit=80):
    """Short human description of an audio item, for error messages.

    Examples
    --------
    >>> from sklearn_mesh.audio import describe_item
    >>> describe_item("a.wav")
    "'a.wav'"
    """
    if isinstance(item, (str, os.PathLike)):
        text = repr(os.fspath(item))
    elif isinstance(item, Mapping):
        text = f"dict with keys {sorted(map(str, item))}"
    elif isinstance(item, tuple):
        text = f"tuple of {len(item)}"
    elif hasattr(item, "shape"):
        text = f"array of shape {tuple(item.shape)}"
    else:
        text = type(item).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resample(wave, orig_sr, target_sr):
    """Resample a 1-D float waveform (soxr when installed, else polyphase filtering).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.audio import resample
    >>> resample(np.zeros(441, dtype="float32"), 44100, 16000).shape
    (160,)
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return wave
    n_out = int(round(len(wave) * target_sr / orig_sr))
    try:
        import soxr
    except ImportError:  # pragma: no cover - soxr is in the audio extra
        from scipy.signal import resample_poly

        g = gcd(orig_sr, target_sr)
        out = resample_poly(wave.astype(np.float64), target_sr // g, orig_sr // g)
    else:
        out = soxr.resample(wave.astype(np.float32), orig_sr, target_sr, quality="HQ")
    out = np.asarray(out, dtype=np.float32)
    if len(out) > n_out:
        out = out[:n_out]
    elif len(out) < n_out:
        out = np.pad(out, (0, n_out - len(out)))
    return out


def _to_float_mono(array, what):
    arr = np.asarray(array)
    if arr.dtype == object:
        raise AudioLoadError(f"{what}: waveform has dtype object; expected numbers.", "invalid")
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        arr = arr.astype(np.float32) / float(max(abs(info.min), info.max))
    elif np.issubdtype(arr.dtype, np.bool_) or not np.issubdtype(arr.dtype, np.number):
        raise AudioLoadError(f"{what}: waveform has dtype {arr.dtype}; expected numbers.", "invalid")
    elif np.iscomplexobj(arr):
        raise AudioLoadError(f"{what}: waveform is complex; expected real samples.", "invalid")
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        # mix down along the shorter axis (channels)
        axis = 0 if arr.shape[0] <= arr.shape[1] else 1
        arr = arr.mean(axis=axis, dtype=np.float32) if arr.size else arr.reshape(-1)
    elif arr.ndim == 0 or arr.ndim > 2:
        raise AudioLoadError(
            f"{what}: waveform must be 1-D (samples) or 2-D (channels x samples), "
            f"got shape {arr.shape}.",
            "invalid",
        )
    return np.ascontiguousarray(arr)


def _read_file(path):
    import soundfile as sf

    path = Path(os.fspath(path)).expanduser()
    if not path.exists():
        raise AudioLoadError(f"Audio file not found: {str(path)!r}.", "missing")
    if path.is_dir():
        raise AudioLoadError(f"Audio path {str(path)!r} is a directory, not a file.", "unreadable")
    if path.stat().st_size == 0:
        raise AudioLoadError(f"Audio file {str(path)!r} is empty (0 bytes).", "empty")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise AudioLoadError(
            f"Audio file {str(path)!r} could not be decoded by soundfile (corrupt file or "
            f"unsupported format; convert it to WAV/FLAC): {exc}",
            "unreadable",
        ) from exc
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)


def _unpack(item, input_sample_rate):
    """Return (waveform or None, sample rate or None, path or None)."""
    if isinstance(item, (str, os.PathLike)):
        return None, None, item
    if isinstance(item, Mapping):
        if item.get("array") is not None:
            sr = item.get("sampling_rate", item.get("sample_rate"))
            if sr is None:
                raise AudioLoadError(
                    "Audio dict has an 'array' but no 'sampling_rate'.", "invalid"
                )
            return item["array"], sr, None
        if item.get("path") is not None:
            return None, None, item["path"]
        raise AudioLoadError(
            f"Audio dict needs 'array' + 'sampling_rate' or 'path'; got keys {sorted(map(str, item))}.",
            "invalid",
        )
    if isinstance(item, tuple):
        if len(item) != 2:
            raise AudioLoadError(
                f"Audio tuple must be (waveform, sample_rate), got a tuple of {len(item)}.",
                "invalid",
            )
        return item[0], item[1], None
    if item is None or (isinstance(item, float) and np.isnan(item)):
        raise AudioLoadError("Audio item is missing (None/NaN).", "missing")
    if hasattr(item, "__array__") or isinstance(item, list):
        if input_sample_rate is None:
            raise AudioLoadError(
                "A bare waveform was given without a sample rate: pass (waveform, sample_rate) "
                "tuples, {'array', 'sampling_rate'} dicts, or set input_sample_rate.",
                "invalid",
            )
        return item, input_sample_rate, None
    raise AudioLoadError(
        f"Unsupported audio item of type {type(item).__name__}: expected a path, a "
        "(waveform, sample_rate) tuple, an {'array', 'sampling_rate'} dict or a 1-D array.",
        "invalid",
    )


def load_audio(
    item,
    *,
    sample_rate=None,
    input_sample_rate=None,
    max_duration=None,
    min_duration=0.0,
):
    """Decode an audio item to a mono float32 waveform at ``sample_rate``.

    Parameters
    ----------
    item : path, (waveform, sr) tuple, {"array", "sampling_rate"} dict or 1-D array
        See the module docstring.
    sample_rate : int, default=None
        Target rate; ``None`` keeps the native rate.
    input_sample_rate : int, default=None
        Rate of bare waveforms (needed only for them).
    max_duration : float, default=None
        Keep only the first ``max_duration`` seconds (BSD clips are cropped at 30 s).
    min_duration : float, default=0.0
        Clips shorter than this (in seconds, after decoding) raise ``"too_short"``.

    Returns
    -------
    wave : ndarray of shape (n_samples,), float32
    sample_rate : int

    Raises
    ------
    AudioLoadError
        Missing/unreadable file, empty, too short, or NaN/inf samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.audio import load_audio
    >>> stereo = np.ones((2, 8000), dtype="float32")
    >>> wave, sr = load_audio((stereo, 8000), sample_rate=16000)
    >>> wave.shape, sr
    ((16000,), 16000)
    """
    wave, sr, path = _unpack(item, input_sample_rate)
    what = describe_item(item)
    if path is not None:
        wave, sr = _read_file(path)
    else:
        wave = _to_float_mono(wave, f"Audio item {what}")
        try:
            sr_f = float(sr)
        except (TypeError, ValueError):
            raise AudioLoadError(f"Audio item {what}: sample rate {sr!r} is not a number.", "invalid")
        if not np.isfinite(sr_f) or sr_f <= 0 or sr_f != int(sr_f):
            raise AudioLoadError(
                f"Audio item {what}: sample rate must be a positive integer, got {sr!r}.", "invalid"
            )
        sr = int(sr_f)
    if wave.size == 0:
        raise AudioLoadError(f"Audio item {what} is empty (0 samples).", "empty")
    if not np.isfinite(wave).all():
        bad = int((~np.isfinite(wave)).sum())
        raise AudioLoadError(
            f"Audio item {what} has {bad} non-finite (NaN/inf) samples.", "non_finite"
        )
    duration = wave.size / sr
    if duration < min_duration:
        raise AudioLoadError(
            f"Audio item {what} lasts {duration * 1000:.2f} ms, shorter than the minimum "
            f"{min_duration * 1000:.2f} ms.",
            "too_short",
        )
    if max_duration is not None and duration > max_duration:
        wave = wave[: max(1, int(round(max_duration * sr)))]
    if sample_rate is not None and int(sample_rate) != sr:
        wave = resample(wave, sr, int(sample_rate))
        sr = int(sample_rate)
        if wave.size == 0:
            raise AudioLoadError(
                f"Audio item {what} has no samples left after resampling to {sr} Hz.", "too_short"
            )
    return wave, sr


def item_fingerprint(item, input_sample_rate=None):
    """Content hash of an audio item (file bytes, or waveform bytes + rate).

    Two items with the same content get the same fingerprint wherever they live, so an
    embedding cache keyed by it survives renames. Returns ``None`` when the item cannot
    be read (the loader then reports the real error).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.audio import item_fingerprint
    >>> a = item_fingerprint((np.zeros(10), 8000))
    >>> a == item_fingerprint((np.zeros(10), 8000)), a == item_fingerprint((np.zeros(10), 16000))
    (True, False)
    """
    h = hashlib.blake2b(digest_size=20)
    try:
        wave, sr, path = _unpack(item, input_sample_rate)
    except AudioLoadError:
        return None
    if path is not None:
        try:
            with open(os.fspath(Path(os.fspath(path)).expanduser()), "rb") as fh:
                h.update(b"file:")
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            return None
        return h.hexdigest()
    try:
        arr = np.ascontiguousarray(np.asarray(wave))
        if arr.dtype == object:
            return None
        h.update(f"array:{arr.dtype.str}:{arr.shape}:{sr}:".encode())
        h.update(arr.tobytes())
    except (TypeError, ValueError):
        return None
    return h.hexdigest()


def audio_items(X):
    """Turn X (list, array, pandas Series, single-column DataFrame) into a list of items.

    A 2-D numeric array of shape ``(n_clips, n_samples)`` is a batch of equal-length
    waveforms (one clip per row). A 2-D object array or DataFrame must have one column.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.audio import audio_items
    >>> len(audio_items(["a.wav", "b.wav"])), len(audio_items(np.zeros((3, 100))))
    (2, 3)
    """
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"Expected a single audio column, got a DataFrame with {X.shape[1]} columns "
                f"{list(X.columns)[:5]}; select the audio column (e.g. in a ColumnTransformer)."
            )
        return list(X.iloc[:, 0])
    if hasattr(X, "iloc"):  # Series
        return list(X)
    if isinstance(X, (str, os.PathLike)):
        raise ValueError(
            "Expected a sequence of audio items (one per clip), got a single path; wrap it in a list."
        )
    if isinstance(X, tuple) and len(X) == 2 and np.isscalar(X[1]):
        raise ValueError(
            "Expected a sequence of audio items, got a single (waveform, sample_rate) tuple; "
            "wrap it in a list."
        )
    if isinstance(X, np.ndarray):
        if X.ndim == 1:
            if X.dtype != object and X.dtype.kind not in "US":
                raise ValueError(
                    "Expected a sequence of audio items, got a 1-D numeric array (one waveform?); "
                    "wrap it in a list with its rate: [(wave, sr)], or reshape to (1, n_samples)."
                )
            return list(X)
        if X.ndim == 2:
            if X.dtype == object or X.dtype.kind in "US":
                if X.shape[1] != 1:
                    raise ValueError(
                        f"Expected one audio column, got an array of shape {X.shape}."
                    )
                return list(X[:, 0])
            return [row for row in X]
        raise ValueError(f"Expected a 1-D sequence of audio items, got an array of shape {X.shape}.")
    try:
        return list(X)
    except TypeError as exc:
        raise ValueError(
            f"Expected a sequence of audio items, got {type(X).__name__}."
        ) from exc
