"""Spectrogram front-ends of the native backbones, in plain torch.

One implementation of each concept, shared by every backbone that needs it:

- :func:`kaldi_mel_banks` -- the triangular mel filterbank of Kaldi (as in
  ``torchaudio.compliance.kaldi.get_mel_banks``); used by BEATs' fbank and by the
  PaSST / fPaSST mel front-ends.
- :func:`htk_mel_banks` -- triangles in Hz between points equally spaced on the HTK
  mel scale (torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")``); used by
  ATST-Frame.
- :func:`slaney_mel_banks` -- the Slaney-style, area-normalised filterbank of librosa
  (``librosa.filters.mel(htk=False, norm="slaney")``); used by M2D.
- :func:`kaldi_fbank` -- Kaldi-compatible log mel filterbank features (the defaults of
  ``torchaudio.compliance.kaldi.fbank``: povey window, DC removal, pre-emphasis 0.97,
  ``snip_edges=True``); BEATs' input.
- :class:`KaldiFbank`, :class:`PasstMel`, :class:`M2DMel` -- batched ``nn.Module``
  front-ends, one per backbone family, with their frame counts as functions of the
  number of input samples.

torchaudio is not needed (and does not import beside recent torch wheels); the tests
compare each function with a naive numpy reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "KaldiFbank",
    "M2DMel",
    "PasstMel",
    "htk_mel_banks",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "slaney_mel_banks",
]

_EPS32 = float(torch.finfo(torch.float32).eps)


def kaldi_mel_banks(n_mels, n_fft, sample_rate, low_freq=20.0, high_freq=0.0):
    """Kaldi's triangular mel filterbank, shape ``(n_mels, n_fft // 2 + 1)``.

    Parameters
    ----------
    n_mels : int
        Number of mel bins.
    n_fft : int
        FFT size (the padded window length).
    sample_rate : float
    low_freq : float, default=20.0
        Lowest band edge in Hz.
    high_freq : float, default=0.0
        Highest band edge in Hz; ``<= 0`` means ``nyquist + high_freq`` (Kaldi's rule).

    Returns
    -------
    banks : torch.Tensor of shape (n_mels, n_fft // 2 + 1), float32
        The last (Nyquist) column is zero, as in Kaldi.

    Examples
    --------
    >>> from sklearn_mesh.backbones._features import kaldi_mel_banks
    >>> kaldi_mel_banks(128, 512, 16000).shape
    torch.Size([128, 257])
    """
    n_bins = n_fft // 2
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq = high_freq + nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(
            f"Mel band edges must satisfy 0 <= low_freq < high_freq <= nyquist; got "
            f"low_freq={low_freq}, high_freq={high_freq}, nyquist={nyquist}."
        )
    # float32 arithmetic on purpose: the released models were trained on banks computed
    # this way (torchaudio), and float64 banks shift faint bins by ~1e-4 in log scale.
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (n_mels + 1)
    idx = torch.arange(n_mels, dtype=torch.float32)[:, None]
    left = mel_low + idx * delta
    center = mel_low + (idx + 1.0) * delta
    right = mel_low + (idx + 2.0) * delta
    freqs = (sample_rate / n_fft) * torch.arange(n_bins, dtype=torch.float32)
    mel = (1127.0 * (1.0 + freqs / 700.0).log())[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp_min(torch.minimum(up, down), 0.0)
    return F.pad(banks, (0, 1))


def htk_mel_banks(n_mels, n_fft, sample_rate, f_min, f_max):
    """Triangular HTK mel filterbank, unnormalised, ``(n_mels, n_fft // 2 + 1)``.

    Same construction as torchaudio's ``melscale_fbanks(..., norm=None, mel_scale="htk")``:
    triangles between ``n_mels + 2`` points equally spaced on the HTK mel scale, evaluated
    (in Hz, unlike :func:`kaldi_mel_banks`) at the linearly spaced STFT bin frequencies.

    Examples
    --------
    >>> from sklearn_mesh.backbones._features import htk_mel_banks
    >>> htk_mel_banks(64, 1024, 16000, 60.0, 7800.0).shape
    torch.Size([64, 513])
    """

    def hz_to_mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    n_freqs = n_fft // 2 + 1
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).T


def _slaney_hz_to_mel(freq):
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(
        freq >= min_log_hz,
        min_log_mel + np.log(np.maximum(freq, min_log_hz) / min_log_hz) / logstep,
        freq / f_sp,
    )


def _slaney_mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def slaney_mel_banks(n_mels, n_fft, sample_rate, fmin=0.0, fmax=None):
    """Slaney-style mel filterbank with area normalisation, ``(n_mels, n_fft // 2 + 1)``.

    Equal to ``librosa.filters.mel(sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
    fmax=fmax, htk=False, norm="slaney")``.

    Examples
    --------
    >>> from sklearn_mesh.backbones._features import slaney_mel_banks
    >>> slaney_mel_banks(80, 400, 16000, fmin=50, fmax=8000).shape
    torch.Size([80, 201])
    """
    if fmax is None:
        fmax = sample_rate / 2.0
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_pts = np.linspace(_slaney_hz_to_mel(fmin), _slaney_hz_to_mel(fmax), n_mels + 2)
    hz_pts = _slaney_mel_to_hz(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


def kaldi_fbank(waves, sample_rate=16000, n_mels=128, frame_length_ms=25.0, frame_shift_ms=10.0):
    """Kaldi-compatible log mel filterbank (``torchaudio.compliance.kaldi.fbank`` defaults).

    Parameters
    ----------
    waves : torch.Tensor of shape (n_samples,) or (batch, n_samples)
        Waveforms in the scale the model expects (BEATs multiplies by ``2**15`` first).
    sample_rate : int, default=16000
    n_mels : int, default=128
    frame_length_ms, frame_shift_ms : float, default=25.0, 10.0

    Returns
    -------
    fbank : torch.Tensor of shape (batch, n_frames, n_mels)
        ``n_frames = 1 + (n_samples - frame_length) // frame_shift`` (``snip_edges``),
        0 for inputs shorter than one frame.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones._features import kaldi_fbank
    >>> kaldi_fbank(torch.zeros(2, 16000)).shape
    torch.Size([2, 98, 128])
    """
    return KaldiFbank(sample_rate, n_mels, frame_length_ms, frame_shift_ms).to(waves.device)(waves)


class KaldiFbank(nn.Module):
    """Batched Kaldi fbank: povey window, DC removal, pre-emphasis, power, log mel.

    Frame ``j`` covers samples ``[j * shift, j * shift + length)``; there are
    ``n_frames(n_samples)`` frames (``snip_edges=True``). No dithering (Kaldi's
    ``dither=0``, the torchaudio default BEATs uses).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones import KaldiFbank
    >>> fbank = KaldiFbank()
    >>> fbank(torch.zeros(2, 16000)).shape, fbank.n_frames(16000)
    (torch.Size([2, 98, 128]), 98)
    """

    def __init__(self, sample_rate=16000, n_mels=128, frame_length_ms=25.0, frame_shift_ms=10.0,
                 low_freq=20.0, high_freq=0.0, preemphasis=0.97):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.win_length = int(sample_rate * frame_length_ms * 0.001)
        self.hop_length = int(sample_rate * frame_shift_ms * 0.001)
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        self.preemphasis = float(preemphasis)
        window = torch.hann_window(self.win_length, periodic=False).pow(0.85)
        self.register_buffer("window", window, persistent=False)
        banks = kaldi_mel_banks(n_mels, self.n_fft, sample_rate, low_freq, high_freq)
        self.register_buffer("banks", banks, persistent=False)

    def n_frames(self, n_samples):
        """Number of frames for ``n_samples`` input samples."""
        if n_samples < self.win_length:
            return 0
        return 1 + (n_samples - self.win_length) // self.hop_length

    def forward(self, waves):
        if waves.dim() == 1:
            waves = waves[None]
        batch, n_samples = waves.shape
        n = self.n_frames(n_samples)
        if n == 0:
            return waves.new_zeros(batch, 0, self.banks.shape[0])
        frames = waves.unfold(-1, self.win_length, self.hop_length)  # (B, n, win)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - self.preemphasis * previous) * self.window
        spec = torch.fft.rfft(frames, n=self.n_fft).abs().pow(2.0)
        mel = spec @ self.banks.T
        return torch.clamp_min(mel, _EPS32).log()


class PasstMel(nn.Module):
    """The PaSST / fPaSST log-mel front-end (CP-JKU's ``AugmentMelSTFT`` in eval mode).

    Pre-emphasis ``y[t] = x[t + 1] - 0.97 x[t]`` (one sample shorter), centred STFT with
    reflect padding and a Hann window, power spectrum, Kaldi mel banks, log, then the
    "fast normalisation" ``(x + 4.5) / 5``.

    Parameters
    ----------
    sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax
        PaSST: 32000, 1024, 800, 320, 128, 0, 15000. fPaSST: 16000, 512, 400, 160,
        128, 0, 7000.
    periodic_window : bool
        PaSST (hear21passt) uses a symmetric window (False), fPaSST a periodic one.
    log_offset : float or None
        PaSST: ``log(x + 1e-5)``; fPaSST (None): ``log(max(x, 1e-7))``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones import PasstMel
    >>> mel = PasstMel()
    >>> mel(torch.zeros(2, 32000)).shape, mel.n_frames(32000)
    (torch.Size([2, 128, 100]), 100)
    """

    def __init__(self, sample_rate=32000, n_fft=1024, win_length=800, hop_length=320, n_mels=128,
                 fmin=0.0, fmax=15000.0, periodic_window=False, log_offset=1e-5):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.win_length = int(win_length)
        self.hop_length = int(hop_length)
        self.log_offset = log_offset
        window = torch.hann_window(self.win_length, periodic=periodic_window)
        self.register_buffer("window", window, persistent=False)
        banks = kaldi_mel_banks(n_mels, self.n_fft, sample_rate, fmin, fmax)
        self.register_buffer("banks", banks, persistent=False)

    def n_frames(self, n_samples):
        """Number of spectrogram frames for ``n_samples`` samples (centred STFT)."""
        return 1 + (n_samples - 1) // self.hop_length

    def forward(self, waves):
        x = waves[:, 1:] - 0.97 * waves[:, :-1]
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=True, pad_mode="reflect", normalized=False,
                          return_complex=True)
        power = spec.real.pow(2) + spec.imag.pow(2)
        mel = torch.matmul(self.banks, power)
        if self.log_offset is None:
            mel = torch.clamp_min(mel, 1e-7).log()
        else:
            mel = (mel + self.log_offset).log()
        return (mel + 4.5) / 5.0


class M2DMel(nn.Module):
    """M2D's log-mel front-end (nnAudio ``MelSpectrogram`` as used by ``PortableM2D``).

    Centred STFT (reflect padding, periodic Hann window, ``n_fft = win_length``), power
    spectrum, Slaney mel banks, ``log(x + eps)``; the caller normalises with the
    checkpoint's ``norm_stats``. 16 kHz: 400 / 160 / 80 mels / 50-8000 Hz.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mesh.backbones import M2DMel
    >>> M2DMel()(torch.zeros(2, 16000)).shape
    torch.Size([2, 80, 101])
    """

    def __init__(self, sample_rate=16000, n_fft=400, hop_length=160, n_mels=80, fmin=50.0,
                 fmax=8000.0):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        window = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window.float(), persistent=False)
        banks = slaney_mel_banks(n_mels, self.n_fft, sample_rate, fmin, fmax)
        self.register_buffer("banks", banks, persistent=False)

    def n_frames(self, n_samples):
        """Number of spectrogram frames for ``n_samples`` samples (centred STFT)."""
        return 1 + n_samples // self.hop_length

    def forward(self, waves):
        spec = torch.stft(waves, self.n_fft, hop_length=self.hop_length, window=self.window,
                          center=True, pad_mode="reflect", normalized=False, return_complex=True)
        power = spec.real.pow(2) + spec.imag.pow(2)
        mel = torch.matmul(self.banks, power)
        return (mel + _EPS32).log()


def padded_batch(waves):
    """Zero-pad 1-D waveforms into one ``(B, T)`` batch; returns ``(batch, lengths)``.

    Examples
    --------
    >>> from sklearn_mesh.backbones._features import padded_batch
    >>> batch, lengths = padded_batch([[1.0, 2.0], [3.0]])
    >>> batch.tolist(), lengths.tolist()
    ([[1.0, 2.0], [3.0, 0.0]], [2, 1])
    """
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.as_tensor(w)
    return batch, lengths
