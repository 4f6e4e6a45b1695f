"""``LogMelEmbedder``: weights-free log-mel frames (the default for demos and tests)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch

from .._compat import Interval, StrOptions
from .base import TorchEmbedder

__all__ = ["LogMelEmbedder", "mel_filterbank"]


def mel_filterbank(sample_rate, n_fft, n_mels, fmin=0.0, fmax=None, norm="area"):
    """Triangular HTK-mel filterbank of shape ``(n_fft // 2 + 1, n_mels)``.

    The triangles are :func:`sklearn_mesh.backbones._features.htk_mel_banks` (the one
    HTK filterbank of the package). ``norm="area"`` scales each triangle to unit area
    (Slaney style); ``None`` keeps unit peaks (torchaudio's
    ``melscale_fbanks(norm=None)``, used by laion-clap).

    Examples
    --------
    >>> from sklearn_mesh.embedders.logmel import mel_filterbank
    >>> mel_filterbank(16000, 512, 40).shape
    (257, 40)
    """
    from ..backbones._features import htk_mel_banks

    fmax = sample_rate / 2 if fmax is None else fmax
    fb = htk_mel_banks(n_mels, n_fft, sample_rate, fmin, fmax).T.numpy().astype(np.float64)
    if norm == "area":
        mel_min, mel_max = (2595.0 * np.log10(1.0 + f / 700.0) for f in (fmin, fmax))
        edges = 700.0 * (10.0 ** (np.linspace(mel_min, mel_max, n_mels + 2) / 2595.0) - 1.0)
        fb *= (2.0 / np.maximum(edges[2:] - edges[:-2], 1e-9))[None]
    return fb.astype(np.float32)


class _LogMel(torch.nn.Module):
    def __init__(self, sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax):
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        self.register_buffer("fb", torch.from_numpy(fb), persistent=False)

    def forward(self, waves):
        spec = torch.stft(
            waves,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real**2 + spec.imag**2  # (B, n_freq, F)
        mel = torch.einsum("bft,fm->btm", power, self.fb)
        return torch.log(mel + 1e-6)


class LogMelEmbedder(TorchEmbedder):
    """Log-mel spectrogram frames: a fast, weights-free audio "embedding".

    Each frame is the natural log of a mel-band energy vector (``n_mels``-d), one frame
    every ``hop_seconds``. Pool with :class:`~sklearn_mesh.pooling.SequencePooling` or
    :class:`~sklearn_mesh.pooling.ChunkPooling`. Useful for demos, tests and as a cheap
    baseline; it needs no download.

    Parameters
    ----------
    sample_rate : int, default=16000
    n_mels : int, default=64
    win_seconds : float, default=0.025
        Analysis window length.
    hop_seconds : float, default=0.01
        Seconds between frames.
    fmin, fmax : float, default=0.0 and None (Nyquist)
    input_sample_rate, batch_size, device, cache_dir, max_duration, on_error, progress, random_state
        As in :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Attributes
    ----------
    module_, device_, embedding_dim_, frame_hop_, errors_, last_transform_
        As in :class:`~sklearn_mesh.embedders.TorchEmbedder`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mesh.embedders import LogMelEmbedder
    >>> from sklearn_mesh.pooling import SequencePooling
    >>> clips = [(np.random.default_rng(0).normal(size=16000), 16000), (np.zeros(441), 44100)]
    >>> frames = LogMelEmbedder(n_mels=32).fit_transform(clips)
    >>> frames.lengths.tolist(), frames.dim
    ([101, 2], 32)
    >>> SequencePooling().fit_transform(frames).shape
    (2, 96)
    """

    _output_level = "frame"
    _name = "logmel"

    _parameter_constraints = {
        **TorchEmbedder._parameter_constraints,
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "win_seconds": [Interval(Real, 0, None, closed="neither")],
        "hop_seconds": [Interval(Real, 0, None, closed="neither")],
        "fmin": [Interval(Real, 0, None, closed="left")],
        "fmax": [Interval(Real, 0, None, closed="neither"), None],
        "device": [StrOptions({"cpu", "cuda", "auto"}), str],
    }

    def __init__(
        self,
        *,
        sample_rate=16000,
        n_mels=64,
        win_seconds=0.025,
        hop_seconds=0.01,
        fmin=0.0,
        fmax=None,
        input_sample_rate=None,
        batch_size=16,
        device="cpu",
        cache_dir=None,
        max_duration=None,
        on_error="raise",
        progress=False,
        random_state=None,
    ):
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.win_seconds = win_seconds
        self.hop_seconds = hop_seconds
        self.fmin = fmin
        self.fmax = fmax
        self.input_sample_rate = input_sample_rate
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self.max_duration = max_duration
        self.on_error = on_error
        self.progress = progress
        self.random_state = random_state

    def _lengths(self):
        hop = max(1, int(round(self.hop_seconds * self.sample_rate)))
        win = max(2, int(round(self.win_seconds * self.sample_rate)))
        n_fft = 1 << int(np.ceil(np.log2(win)))
        return hop, win, n_fft

    @property
    def _frame_hop_seconds(self):
        return self._lengths()[0] / self.sample_rate

    @property
    def _embedding_dim(self):
        return self.n_mels

    def _build_module(self):
        hop, win, n_fft = self._lengths()
        nyq = self.sample_rate / 2
        fmax = nyq if self.fmax is None else float(self.fmax)
        if not self.fmin < fmax <= nyq:
            raise ValueError(
                f"Need 0 <= fmin < fmax <= sample_rate / 2 = {nyq:g} Hz, got fmin={self.fmin}, fmax={fmax}."
            )
        return _LogMel(self.sample_rate, n_fft, win, hop, self.n_mels, self.fmin, fmax)

    def _embed_batch(self, module, waves, lengths):
        frames = module(waves)
        hop = self._lengths()[0]
        n_valid = (lengths // hop + 1).clamp(1, frames.shape[1])
        mask = torch.arange(frames.shape[1], device=frames.device)[None, :] < n_valid[:, None]
        return frames, mask


def _check_instances():
    from .base import _EXPECTED_FAILED_CHECKS

    return [(LogMelEmbedder(sample_rate=800, n_mels=4, input_sample_rate=200, hop_seconds=0.005), _EXPECTED_FAILED_CHECKS)]

