"""An embedded synthetic heterogeneous audio set on the Broad Sound Taxonomy.

:func:`make_bst_audio` synthesises one recipe per second-level class (harmonic tones with
different timbres for instrument samples, rhythmic hits and multi-voice mixtures for music,
formant babble for speech, noise textures with sparse events for soundscapes, chirps,
impacts and engines for sound effects, ...). Recipes of sibling classes share building
blocks and draw their parameters from overlapping ranges, some recipes borrow events of a
cousin class (birds in nature soundscapes, engines in urban ones), durations span
0.05 s to 30 s, and every clip gets a random noise floor: the set is learnable but not
trivially separable, and siblings are more confusable than cousins.

Everything is vectorised numpy/scipy per clip (wavetable oscillators, FFT convolution of
impulse trains with event kernels, IIR filters); there is no per-sample Python loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import signal
from sklearn.utils import Bunch, check_random_state

from ..taxonomy import check_taxonomy

__all__ = ["make_bst_audio"]

_TABLE_N = 2048
_TABLE_X = np.arange(_TABLE_N, dtype=np.float64) / _TABLE_N
_TWO_PI = 2.0 * np.pi

# (F1, F2, F3) of a few vowels, Hz.
_VOWELS = np.array(
    [
        [730, 1090, 2440],  # a
        [530, 1840, 2480],  # e
        [270, 2290, 3010],  # i
        [570, 840, 2410],  # o
        [300, 870, 2240],  # u
        [660, 1720, 2410],  # ae
    ],
    dtype=np.float64,
)


_BANK_LEN = 2**18
_BANKS: dict = {}


def _noise_bank(sr):
    """Deterministic noise buffers for one sample rate: white, pink, brown, octave bands.

    Computed once per sample rate (a fixed seed, independent of ``random_state``); clips
    read random stretches of them, which is much cheaper than filtering fresh noise.
    """
    bank = _BANKS.get(sr)
    if bank is not None:
        return bank
    rng = np.random.default_rng(20260)
    n = _BANK_LEN

    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        x = x - x.mean()
        return (x / max(np.sqrt(np.mean(x * x)), 1e-12)).astype(np.float32, copy=False)

    white = unit(rng.standard_normal(n))
    pink = unit(signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(n)))
    brown = unit(signal.lfilter([1.0], [1.0, -0.995], rng.standard_normal(n)))
    nyq = 0.5 * sr
    centres = 62.5 * 2.0 ** np.arange(12)
    centres = centres[centres * 1.41 < 0.95 * nyq]
    bands = []
    for fc in centres:
        sos = signal.butter(2, [fc / 1.41, fc * 1.41], btype="bandpass", fs=sr, output="sos")
        bands.append(unit(signal.sosfilt(sos, rng.standard_normal(n))))
    bank = {"white": white, "pink": pink, "brown": brown, "centres": centres, "bands": bands}
    _BANKS[sr] = bank
    return bank


class _Clip:
    """Synthesis context of one clip: random generator, sample rate, length, primitives."""

    def __init__(self, rng: np.random.Generator, sr: int, n: int):
        self.rng = rng
        self.sr = int(sr)
        self.n = int(n)
        self.nyq = 0.5 * self.sr
        self._t = None

    # ------------------------------------------------------------------ random
    def u(self, lo, hi):
        return float(self.rng.uniform(lo, hi))

    def lu(self, lo, hi):
        return float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))

    def chance(self, p):
        return bool(self.rng.random() < p)

    @property
    def t(self) -> np.ndarray:
        if self._t is None:
            self._t = np.arange(self.n, dtype=np.float32) / np.float32(self.sr)
        return self._t

    @property
    def duration(self) -> float:
        return self.n / self.sr

    def sub(self, seconds: float) -> _Clip:
        """A context for an event kernel of ``seconds`` (at most the clip length)."""
        m = int(max(8, min(self.n, round(seconds * self.sr))))
        return _Clip(self.rng, self.sr, m)

    # -------------------------------------------------------------- oscillators
    def harmonic_amps(self, f0_max, tilt=1.0, odd=0.0, n_max=24, jitter=0.3):
        """Amplitudes of harmonics 1..H (H limited by Nyquist); ``odd`` damps even ones."""
        h = int(max(1, min(n_max, np.floor(0.9 * self.nyq / max(f0_max, 1.0)))))
        k = np.arange(1, h + 1, dtype=np.float64)
        amps = k ** (-float(tilt)) * np.exp(self.rng.normal(0.0, jitter, h))
        amps[1::2] *= 1.0 - float(odd)
        return amps

    def table(self, amps):
        """One wavetable period from harmonic amplitudes (random phases), via an inverse FFT."""
        amps = np.asarray(amps, dtype=np.float64)[: _TABLE_N // 2 - 1]
        spec = np.zeros(_TABLE_N // 2 + 1, dtype=np.complex128)
        spec[1 : amps.size + 1] = amps * np.exp(1j * self.rng.uniform(0.0, _TWO_PI, amps.size))
        tab = np.fft.irfft(spec, _TABLE_N)
        tab /= max(np.abs(tab).max(), 1e-12)
        return tab.astype(np.float32, copy=False)

    def osc(self, freq, table=None, amps=None):
        """Wavetable oscillator at a constant or per-sample frequency (Hz)."""
        if table is None:
            table = self.table(np.ones(1) if amps is None else amps)
        phase0 = self.rng.uniform(0.0, 1.0) * _TABLE_N
        scale = _TABLE_N / self.sr
        if np.ndim(freq) == 0:
            cyc = np.arange(self.n, dtype=np.float64)
            cyc *= max(float(freq), 0.0) * scale
        else:
            cyc = np.cumsum(np.maximum(freq, 0.0), dtype=np.float64)
            cyc *= scale
        cyc += phase0
        idx = cyc.astype(np.int64)
        idx &= _TABLE_N - 1
        return table[idx]

    def sine(self, freq):
        return self.osc(freq, amps=np.ones(1))

    def chirp(self, f_start, f_end, *, log=True):
        f_start = min(max(f_start, 20.0), 0.95 * self.nyq)
        f_end = min(max(f_end, 20.0), 0.95 * self.nyq)
        frac = self.t / max(self.duration, 1e-6)
        if log:
            freq = f_start * (f_end / f_start) ** frac
        else:
            freq = f_start + (f_end - f_start) * frac
        return self.sine(freq)

    # ------------------------------------------------------------------- noise
    def _slice(self, buf):
        """A random stretch of a precomputed noise buffer (random sign and direction)."""
        size = buf.shape[0]
        off = int(self.rng.integers(0, size))
        if off + self.n <= size:
            out = buf[off : off + self.n]
        else:
            reps = (off + self.n) // size + 1
            out = np.concatenate([buf[off:]] + [buf] * reps)[: self.n]
        out = (out[::-1] if self.rng.random() < 0.5 else out).copy()
        if self.rng.random() < 0.5:
            np.negative(out, out=out)
        return out

    def noise(self):
        """White noise, unit variance."""
        return self._slice(_noise_bank(self.sr)["white"])

    def colored(self, alpha):
        """Noise with a spectral tilt: ``alpha`` 0 white, ~0.9 pink-ish, ~0.99 brown."""
        kind = "white" if alpha < 0.5 else ("pink" if alpha < 0.95 else "brown")
        return self._slice(_noise_bank(self.sr)[kind])

    def noise_band(self, lo, hi, slope=0.0):
        """Band-limited noise (sum of octave-band noises in ``[lo, hi]``), unit RMS."""
        bank = _noise_bank(self.sr)
        centres = bank["centres"]
        sel = np.flatnonzero((centres >= lo / 1.41) & (centres <= hi * 1.41))
        if sel.size == 0:
            sel = np.array([int(np.argmin(np.abs(np.log(centres / np.sqrt(lo * hi)))))])
        gains = (centres[sel] / 1000.0) ** (0.5 * slope) * self.rng.uniform(0.7, 1.0, sel.size)
        gains = gains / np.sqrt(np.sum(gains**2))
        gains *= np.where(self.rng.random(sel.size) < 0.5, -1.0, 1.0)
        out = np.zeros(self.n, dtype=np.float32)
        size = _BANK_LEN
        for g, j in zip(gains, sel):
            buf = bank["bands"][j]
            off = int(self.rng.integers(0, size))
            pos = 0
            while pos < self.n:  # wrap around the buffer for clips longer than it
                m = min(self.n - pos, size - off)
                out[pos : pos + m] += np.float32(g) * buf[off : off + m]
                pos += m
                off = 0
        return out

    def octave_noise(self, fc):
        """Noise in the single octave band nearest ``fc`` (cheapest band-limited noise)."""
        bank = _noise_bank(self.sr)
        j = int(np.argmin(np.abs(np.log(bank["centres"] / fc))))
        return self._slice(bank["bands"][j])

    def _clamp_band(self, lo, hi):
        lo = float(np.clip(lo, 20.0, 0.9 * self.nyq))
        hi = float(np.clip(hi, lo * 1.05, 0.95 * self.nyq))
        if hi <= lo:
            lo = 0.5 * hi
        return lo, hi

    def band(self, x, lo, hi, order=2):
        lo, hi = self._clamp_band(lo, hi)
        sos = signal.butter(order, [lo, hi], btype="bandpass", fs=self.sr, output="sos")
        return signal.sosfilt(sos, x).astype(np.float32, copy=False)

    def lowpass(self, x, fc, order=2):
        fc = float(np.clip(fc, 20.0, 0.95 * self.nyq))
        sos = signal.butter(order, fc, btype="lowpass", fs=self.sr, output="sos")
        return signal.sosfilt(sos, x).astype(np.float32, copy=False)

    def highpass(self, x, fc, order=2):
        fc = float(np.clip(fc, 20.0, 0.9 * self.nyq))
        sos = signal.butter(order, fc, btype="highpass", fs=self.sr, output="sos")
        return signal.sosfilt(sos, x).astype(np.float32, copy=False)

    def smooth(self, rate, depth=1.0):
        """Slowly varying random control signal (~``rate`` Hz), values in about [-depth, depth].

        Interpolated at a 250 Hz control rate and held in between (cheap).
        """
        hop = max(1, self.sr // 250)
        n_ctrl = self.n // hop + 1
        k = int(np.ceil(self.duration * rate)) + 2
        vals = self.rng.uniform(-depth, depth, k)
        ctrl = np.interp(np.arange(n_ctrl) * (hop * rate / self.sr), np.arange(k), vals)
        return np.repeat(ctrl.astype(np.float32), hop)[: self.n]

    # ---------------------------------------------------------------- events
    def times(self, rate, *, regular=0.0, start=0.0, at_least_one=True):
        """Event onset times (s): a Poisson process of ``rate``/s, or a jittered grid."""
        dur = self.duration
        if regular > 0:
            ioi = 1.0 / rate
            grid = np.arange(start, dur, ioi)
            grid = grid + self.rng.normal(0.0, (1 - regular) * 0.25 * ioi, grid.size)
        else:
            k = self.rng.poisson(rate * max(dur - start, 0.0))
            grid = np.sort(self.rng.uniform(start, dur, k))
        grid = grid[(grid >= 0) & (grid < dur)]
        if at_least_one and grid.size == 0:
            grid = np.array([self.u(0.0, min(dur * 0.5, 0.05 + start))])
        return grid

    def place(self, times, kernel, amps=None):
        """Sum of copies of ``kernel`` starting at ``times`` (s), scaled by ``amps``."""
        kernel = np.asarray(kernel, dtype=np.float32)[: self.n]
        pos = (np.asarray(times, dtype=np.float64) * self.sr).astype(np.int64)
        pos = np.minimum(pos, self.n - 1)
        a = np.ones(len(pos)) if amps is None else np.asarray(amps, dtype=np.float64)
        if len(pos) <= 48:  # few events: add shifted copies directly
            out = np.zeros(self.n, dtype=np.float32)
            for p0, g in zip(pos.tolist(), a.tolist()):
                seg = min(kernel.size, self.n - p0)
                out[p0 : p0 + seg] += np.float32(g) * kernel[:seg]
            return out
        imp = np.zeros(self.n, dtype=np.float32)
        np.add.at(imp, pos, a.astype(np.float32))
        return signal.oaconvolve(imp, kernel)[: self.n].astype(np.float32, copy=False)

    def notes(self, rate, *, swing=0.5, rest=0.0):
        """Note segmentation: per-sample note index, time within note (s), note lengths (s)."""
        dur = self.duration
        choices = np.array([0.5, 1.0, 1.0, 1.5, 2.0])
        k_max = int(np.ceil(dur * rate * 2.5)) + 2
        iois = (1.0 / rate) * np.where(
            self.rng.random(k_max) < swing, self.rng.choice(choices, k_max), 1.0
        )
        onsets = np.concatenate([[0.0], np.cumsum(iois)])
        onsets = onsets[onsets < dur]
        lengths_s = np.diff(np.concatenate([onsets, [dur]]))
        lengths = np.diff(np.concatenate([(onsets * self.sr).astype(np.int64), [self.n]]))
        keep = lengths > 0
        lengths, lengths_s, onsets = lengths[keep], lengths_s[keep], onsets[keep]
        idx = np.repeat(np.arange(lengths.size), lengths)
        t_in = self.t - onsets[idx].astype(np.float32, copy=False)
        active = self.rng.random(lengths.size) >= rest
        active[0] = True
        return idx, t_in, lengths_s, active

    def env_ad(self, t_in, attack, decay):
        """Attack / exponential-decay envelope evaluated at times ``t_in`` (s)."""
        a = np.float32(max(attack, 1e-4))
        d = np.float32(max(decay, 1e-4))
        return (1.0 - np.exp(-t_in / a)) * np.exp(-t_in / d)

    def fade(self, x, seconds=0.005):
        m = int(min(self.n // 2, max(1, seconds * self.sr)))
        ramp = np.linspace(0.0, 1.0, m, dtype=np.float32)
        x[:m] *= ramp
        x[-m:] *= ramp[::-1]
        return x


def _midi_to_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def _melody(c: _Clip, n_notes, low, high):
    """A random-walk melody on a pentatonic / major scale, MIDI numbers."""
    scale = np.array([0, 2, 4, 7, 9]) if c.chance(0.5) else np.array([0, 2, 4, 5, 7, 9, 11])
    root = c.rng.integers(low, max(low + 1, high - 12))
    steps = c.rng.choice([-2, -1, -1, 0, 1, 1, 2], n_notes)
    deg = np.cumsum(steps) + c.rng.integers(0, scale.size)
    octave, pos = np.divmod(deg, scale.size)
    midi = root + 12 * octave + scale[pos]
    # fold into range
    while True:
        over = midi > high
        under = midi < low
        if not (over.any() or under.any()):
            break
        midi = np.where(over, midi - 12, np.where(under, midi + 12, midi))
    return midi


# ---------------------------------------------------------------------------
# Timbres (shared building blocks of instrument samples and music)
# ---------------------------------------------------------------------------
_TIMBRES = ("string", "wind", "keyboard", "synth")


def _timbre_tone(c: _Clip, kind, f0, t_in, note_len):
    """A harmonic tone of a given timbre; ``f0`` may vary per sample."""
    f0_max = float(np.max(f0))
    if kind == "string":
        vib = c.u(0.002, 0.012) if c.chance(0.8) else 0.0
        freq = f0 * (1.0 + vib * np.sin(_TWO_PI * c.u(4.0, 7.0) * c.t))
        amps = c.harmonic_amps(f0_max, tilt=c.u(0.8, 1.5), odd=c.u(0.0, 0.3))
        env = c.env_ad(t_in, c.u(0.02, 0.25), c.u(0.8, 6.0))
        x = c.osc(freq, c.table(amps)) * env
        x += 0.05 * c.u(0.0, 1.0) * c.noise_band(2000.0, 8000.0) * env
    elif kind == "wind":
        vib = c.u(0.002, 0.01) if c.chance(0.5) else 0.0
        freq = f0 * (1.0 + vib * np.sin(_TWO_PI * c.u(4.0, 6.5) * c.t))
        amps = c.harmonic_amps(f0_max, tilt=c.u(1.0, 2.2), odd=c.u(0.0, 0.9))
        env = c.env_ad(t_in, c.u(0.02, 0.15), c.u(1.0, 8.0))
        x = c.osc(freq, c.table(amps)) * env
        x += c.u(0.02, 0.2) * c.noise_band(1000.0, 6000.0) * env
    elif kind == "keyboard":
        tau = c.u(0.3, 3.0)
        bright = c.table(c.harmonic_amps(f0_max, tilt=c.u(0.6, 1.2)))
        mellow = c.table(c.harmonic_amps(f0_max, tilt=c.u(1.5, 2.5), n_max=4))
        freq = f0 * (1.0 + c.u(0.0, 0.002))
        x = c.osc(freq, bright) * c.env_ad(t_in, c.u(0.001, 0.008), tau * c.u(0.1, 0.3))
        x += c.osc(freq, mellow) * c.env_ad(t_in, c.u(0.001, 0.01), tau)
    else:  # synth
        tilt = 1.0 + c.u(-0.1, 0.1)
        amps = c.harmonic_amps(f0_max, tilt=tilt, odd=1.0 if c.chance(0.5) else 0.0, jitter=0.05)
        tab = c.table(amps)
        det = c.u(0.001, 0.01)
        x = c.osc(f0 * (1 + det), tab) + c.osc(f0 * (1 - det), tab)
        if c.chance(0.5):
            x *= 1.0 + c.u(0.1, 0.5) * np.sin(_TWO_PI * c.u(2.0, 8.0) * c.t)
        gate = c.env_ad(t_in, c.u(0.001, 0.02), c.u(2.0, 30.0))
        x = c.lowpass(x * gate, c.lu(800.0, 8000.0))
    return x.astype(np.float32, copy=False)


def _perc_kernel(c: _Clip, kind=None):
    """One percussive hit: membrane (pitch drop), snare-like, hat-like or metallic."""
    kind = kind or c.rng.choice(["membrane", "snare", "hat", "metal"], p=[0.4, 0.25, 0.2, 0.15])
    if kind == "membrane":
        k = c.sub(c.u(0.08, 0.8))
        f0 = c.lu(45.0, 400.0)
        freq = f0 * (1.0 + c.u(0.2, 2.0) * np.exp(-k.t / c.u(0.01, 0.06)))
        x = k.sine(freq) * np.exp(-k.t / c.u(0.05, 0.4))
        x += c.u(0.0, 0.4) * k.noise() * np.exp(-k.t / c.u(0.005, 0.03))
    elif kind == "snare":
        k = c.sub(c.u(0.08, 0.5))
        x = 0.5 * k.sine(c.u(150.0, 300.0)) * np.exp(-k.t / c.u(0.02, 0.1))
        x += k.noise_band(1500.0, 8000.0) * np.exp(-k.t / c.u(0.03, 0.2))
    elif kind == "hat":
        k = c.sub(c.u(0.03, 0.4))
        x = k.noise_band(c.u(5000.0, 7000.0), 12000.0) * np.exp(-k.t / c.u(0.01, 0.15))
    else:
        k = c.sub(c.u(0.3, 2.5))
        base = c.lu(200.0, 1200.0)
        ratios = np.array([1.0, 2.76, 5.4, 8.93]) * (1 + c.rng.normal(0, 0.03, 4))
        x = np.zeros(k.n, dtype=np.float32)
        for r in ratios:
            if base * r < 0.9 * k.nyq:
                x += k.sine(base * r) * np.exp(-k.t / c.u(0.1, 1.5)).astype(np.float32, copy=False)
        x += 0.3 * k.noise_band(4000.0, 12000.0) * np.exp(-k.t / c.u(0.05, 0.5))
    return x.astype(np.float32, copy=False)


def _modal_kernel(c: _Clip):
    """An object impact: a few decaying resonant modes plus a click."""
    k = c.sub(c.u(0.05, 0.6))
    x = np.zeros(k.n, dtype=np.float32)
    for _ in range(int(c.rng.integers(2, 6))):
        f = c.lu(400.0, 7000.0)
        if f < 0.9 * k.nyq:
            x += c.u(0.2, 1.0) * k.sine(f) * np.exp(-k.t / np.float32(c.u(0.005, 0.25)))
    x += c.u(0.1, 0.8) * k.noise() * np.exp(-k.t / c.u(0.001, 0.01))
    return x


# ---------------------------------------------------------------------------
# Voices (speech family)
# ---------------------------------------------------------------------------
def _vowel_tables(c: _Clip, f0, shift, vowels):
    """One wavetable per vowel: glottal harmonics shaped by that vowel's formants.

    Additive formant synthesis (the spectral envelope sampled at the harmonics of ``f0``)
    costs one table lookup per sample instead of a filter bank.
    """
    h = int(max(1, min(60, np.floor(0.9 * c.nyq / (f0 * 1.3)))))
    k = np.arange(1, h + 1, dtype=np.float64)
    freqs = k * f0
    tilt = k ** (-c.u(0.6, 1.2))
    tables = []
    for v in vowels:
        formants = _VOWELS[v] * shift
        bw = np.array([80.0, 110.0, 160.0]) * c.u(0.8, 1.6)
        env = sum(
            g / (1.0 + ((freqs - f) / b) ** 2) for f, b, g in zip(formants, bw, (1.0, 0.6, 0.25))
        )
        tables.append(c.table(tilt * env))
    return np.stack(tables)


def _speech(c: _Clip, f0=None, shift=None, rate=None, rest=0.15):
    """One formant-synthesised voice: syllables with intonation, vowels and consonants."""
    f0 = f0 or c.lu(85.0, 280.0)
    shift = shift or (1.0 + (f0 - 120.0) / 600.0) * c.u(0.92, 1.08)
    rate = rate or c.u(3.0, 6.5)
    idx, t_in, lengths, active = c.notes(rate, swing=0.8, rest=rest)
    freq = f0 * 2.0 ** (c.u(0.05, 0.25) * c.smooth(c.u(0.5, 3.0)))
    vowel_set = c.rng.choice(_VOWELS.shape[0], size=min(4, _VOWELS.shape[0]), replace=False)
    tables = _vowel_tables(c, f0, shift, vowel_set)
    syl_vowel = c.rng.integers(0, len(vowel_set), lengths.size)
    cyc = np.cumsum(freq, dtype=np.float64) / c.sr + c.rng.uniform()
    pos = (cyc * _TABLE_N).astype(np.int64) & (_TABLE_N - 1)
    flat = syl_vowel[idx].astype(np.int64)
    flat *= _TABLE_N
    flat += pos
    src = tables.ravel()[flat]
    seg = lengths[idx].astype(np.float32, copy=False)
    env = np.sin(np.pi * np.clip(t_in / np.maximum(seg * 0.9, 1e-3), 0.0, 1.0)) ** 2
    env *= (active * c.rng.uniform(0.4, 1.0, lengths.size)).astype(np.float32)[idx]
    consonant = (c.rng.random(lengths.size) < 0.5) & active
    burst = (t_in < 0.04) & consonant[idx]
    x = src * env
    if burst.any():
        x += np.float32(c.u(0.1, 0.5)) * c.octave_noise(4000.0) * burst
    return x


# ---------------------------------------------------------------------------
# Recipes, one per second-level class
# ---------------------------------------------------------------------------
def _r_is_single(kind):
    def recipe(c: _Clip):
        lo, hi = {"string": (40, 96), "wind": (48, 100), "keyboard": (28, 104), "synth": (28, 100)}[
            kind
        ]
        n_notes = 1 if c.chance(0.7) else int(c.rng.integers(2, 5))
        rate = n_notes / max(c.duration, 1e-3)
        idx, t_in, _, _ = c.notes(rate, swing=0.0)
        midi = c.rng.integers(lo, hi, idx.max() + 1)
        f0 = _midi_to_hz(midi)[idx].astype(np.float32, copy=False)
        return _timbre_tone(c, kind, f0, t_in, None)

    return recipe


def _r_is_p(c: _Clip):
    k = _perc_kernel(c)
    times = [c.u(0.0, 0.03)] if c.chance(0.75) else c.times(c.u(1.0, 3.0))
    return c.place(times, k)


def _r_m_sp(c: _Clip):
    bpm = c.u(70.0, 180.0)
    step = 60.0 / bpm / 4.0
    x = np.zeros(c.n, dtype=np.float32)
    for kind, p_on in (("membrane", 0.3), ("snare", 0.2), ("hat", 0.5)):
        if kind != "membrane" and c.chance(0.3):
            continue
        pattern = c.rng.random(16) < p_on
        pattern[0] |= kind == "membrane"
        grid = np.arange(0.0, c.duration, step)
        on = pattern[np.arange(grid.size) % 16]
        times = grid[on] + c.rng.normal(0, 0.004, on.sum())
        amps = c.rng.uniform(0.5, 1.0, times.size)
        x += c.place(np.clip(times, 0, None), _perc_kernel(c, kind), amps)
    return x


def _r_m_si(c: _Clip):
    if c.chance(0.15):  # solo singing: sustained sung vowels
        return _speech(c, f0=c.lu(110.0, 500.0), rate=c.u(1.0, 2.5), rest=0.05)
    kind = c.rng.choice(_TIMBRES)
    rate = c.u(1.5, 6.0)
    idx, t_in, _, active = c.notes(rate, rest=0.1)
    midi = _melody(c, idx.max() + 1, 48, 90)
    f0 = _midi_to_hz(midi)[idx].astype(np.float32, copy=False)
    return _timbre_tone(c, kind, f0, t_in, None) * active[idx]


def _r_m_m(c: _Clip):
    kinds = c.rng.choice(_TIMBRES, 2, replace=True)
    rate = c.u(1.5, 6.0)
    idx, t_in, _, _ = c.notes(rate)
    melody = _midi_to_hz(_melody(c, idx.max() + 1, 55, 88))[idx].astype(np.float32, copy=False)
    x = _timbre_tone(c, kinds[0], melody, t_in, None)
    b_idx, b_t, _, _ = c.notes(rate / 2, swing=0.2)
    bass = _midi_to_hz(_melody(c, b_idx.max() + 1, 30, 52))[b_idx].astype(np.float32, copy=False)
    x += c.u(0.4, 1.0) * _timbre_tone(c, kinds[1], bass, b_t, None)
    if c.chance(0.4):  # chord pad
        root = _midi_to_hz(c.rng.integers(48, 64))
        pad = sum(c.sine(root * r) for r in (1.0, 1.26, 1.5))
        x += c.u(0.1, 0.4) * pad
    if c.chance(0.6):
        x += c.u(0.3, 1.0) * _r_m_sp(c)
    return x


def _r_sp_s(c: _Clip):
    return _speech(c)


def _r_sp_c(c: _Clip):
    n_voices = int(c.rng.integers(2, 5))
    x = np.zeros(c.n, dtype=np.float32)
    for _ in range(n_voices):
        x += c.u(0.3, 1.0) * _speech(c, rest=0.35)
    if c.chance(0.5):  # distant crowd babble
        babble = c.noise_band(200.0, 3000.0, slope=-1.0)
        x += c.u(0.05, 0.3) * babble * (1.0 + 0.5 * c.smooth(4.0))
    return x


def _r_sp_p(c: _Clip):
    mode = c.rng.choice(["telephone", "robot", "crush", "pitched"])
    if mode == "robot":
        x = _speech(c, f0=c.lu(70.0, 200.0))
        x = x * np.sin(_TWO_PI * c.u(30.0, 120.0) * c.t)
    elif mode == "pitched":
        x = _speech(c, f0=c.lu(250.0, 600.0), shift=c.u(1.3, 1.8))
    else:
        x = _speech(c)
    if mode == "telephone":
        x = c.band(x, 300.0, 3400.0, order=4)
        x = np.tanh(c.u(2.0, 8.0) * x / max(np.abs(x).max(), 1e-9))
    elif mode == "crush":
        levels = c.u(4.0, 16.0)
        x = np.round(x / max(np.abs(x).max(), 1e-9) * levels) / levels
    return x


def _r_fx_o(c: _Clip):
    if c.chance(0.2):  # appliance hum with a bell at the end
        x = c.osc(c.u(90.0, 130.0), amps=c.harmonic_amps(130.0, tilt=1.5, n_max=8))
        x = x * c.u(0.1, 0.4) + 0.1 * c.colored(0.9)
        x += c.place([c.duration * c.u(0.6, 0.95)], _modal_kernel(c))
        return x
    rate = c.lu(0.5, 8.0)
    times = c.times(rate)
    x = c.place(times, _modal_kernel(c), c.rng.uniform(0.3, 1.0, times.size))
    if c.chance(0.5):
        x += c.place(c.times(rate), _modal_kernel(c))
    return x


def _engine(c: _Clip, f0=None):
    f0 = f0 or c.lu(20.0, 120.0)
    rpm = 1.0 + c.u(0.05, 0.4) * c.smooth(c.u(0.1, 0.5))
    amps = c.harmonic_amps(f0 * 1.5, tilt=c.u(0.4, 1.1), n_max=30, jitter=0.5)
    x = c.osc(f0 * rpm, c.table(amps))
    x += c.u(0.2, 1.0) * c.noise_band(30.0, c.u(300.0, 2000.0), slope=-1.0)
    return x


def _r_fx_v(c: _Clip):
    x = _engine(c)
    if c.chance(0.6):  # pass-by swell
        centre = c.u(0.2, 0.8) * c.duration
        width = c.u(0.1, 0.5) * c.duration + 0.05
        x *= 0.15 + np.exp(-(((c.t - centre) / width) ** 2))
    if c.chance(0.15):  # horn
        horn = c.osc(c.u(350.0, 500.0), amps=c.harmonic_amps(500.0, tilt=1.0, n_max=10))
        gate = (c.t > c.u(0.0, 0.5) * c.duration) & (c.t < c.u(0.5, 1.0) * c.duration)
        x += c.u(0.3, 1.0) * horn * gate
    return x


def _r_fx_m(c: _Clip):
    f0 = c.lu(40.0, 400.0)
    amps = c.harmonic_amps(f0, tilt=c.u(0.7, 1.5), n_max=20)
    x = c.osc(f0 * (1 + 0.01 * c.smooth(0.2)), amps=amps)
    x = x * c.u(0.2, 1.0)
    clicks = c.times(c.lu(2.0, 30.0), regular=c.u(0.7, 1.0))
    x += c.place(clicks, _modal_kernel(c))
    if c.chance(0.5):
        x += c.u(0.05, 0.3) * c.sine(c.lu(500.0, 3000.0))
    x += c.u(0.05, 0.5) * c.noise_band(c.lu(200.0, 1000.0), c.lu(2000.0, 6000.0))
    return x


def _r_fx_h(c: _Clip):
    mode = c.rng.choice(["steps", "claps", "breath", "laugh"])
    if mode == "steps":
        k = c.sub(c.u(0.05, 0.2))
        hit = k.noise_band(30.0, c.u(300.0, 1500.0), slope=-1.0) * np.exp(-k.t / c.u(0.01, 0.05))
        return c.place(c.times(c.u(1.4, 2.6), regular=c.u(0.6, 0.95)), hit)
    if mode == "claps":
        k = c.sub(c.u(0.03, 0.1))
        hit = k.noise_band(800.0, 5000.0) * np.exp(-k.t / c.u(0.005, 0.02))
        return c.place(c.times(c.u(1.0, 8.0), regular=c.u(0.0, 0.9)), hit)
    if mode == "breath":
        rate = c.u(0.2, 0.5)
        env = np.maximum(0.0, np.sin(_TWO_PI * rate * c.t + c.u(0, 6.28))) ** 2
        return c.noise_band(c.u(300.0, 800.0), c.u(1500.0, 4000.0)) * env
    # laugh / cough: short voiced bursts
    return _speech(c, f0=c.lu(150.0, 400.0), rate=c.u(5.0, 9.0), rest=0.4)


def _bird(c: _Clip):
    k = c.sub(c.u(0.05, 0.4))
    f_a, f_b = c.lu(1500.0, 7000.0), c.lu(1500.0, 7000.0)
    x = k.chirp(f_a, f_b) * np.sin(np.pi * np.clip(k.t / (k.duration + 1e-9), 0, 1)) ** 2
    return x.astype(np.float32, copy=False)


def _r_fx_a(c: _Clip):
    mode = c.rng.choice(["bird", "bark", "insect", "meow"])
    if mode == "bird":
        return c.place(c.times(c.u(1.0, 8.0)), _bird(c))
    if mode == "bark":
        k = c.sub(c.u(0.1, 0.35))
        f0 = c.lu(250.0, 800.0)
        tone = k.osc(f0 * (1 - 0.3 * k.t / k.duration), amps=k.harmonic_amps(f0, tilt=0.8))
        bark = k.band(tone, 500.0, 3000.0) * np.exp(-k.t / c.u(0.03, 0.15))
        return c.place(c.times(c.u(0.5, 3.0)), bark)
    if mode == "insect":
        carrier = c.noise_band(c.u(3000.0, 5000.0), c.u(5500.0, 7500.0))
        return carrier * (0.5 + 0.5 * np.sin(_TWO_PI * c.u(20.0, 80.0) * c.t))
    k = c.sub(c.u(0.3, 1.2))
    f0 = c.lu(400.0, 900.0)
    glide = f0 * (1 + 0.4 * np.sin(np.pi * k.t / k.duration))
    meow = k.osc(glide, amps=k.harmonic_amps(f0 * 1.4, tilt=1.0)) * np.sin(
        np.pi * k.t / k.duration
    )
    return c.place(c.times(c.u(0.2, 1.0)), meow)


def _wind(c: _Clip):
    gust = 1.0 + 0.8 * c.smooth(c.u(0.1, 0.6))
    return c.noise_band(30.0, c.u(300.0, 1500.0), slope=-1.0) * gust


def _rain(c: _Clip):
    k = c.sub(0.01)
    drop = k.noise() * np.exp(-k.t / 0.002)
    times = c.times(c.u(20.0, 200.0))
    x = c.place(times, drop, c.rng.uniform(0.1, 1.0, times.size))
    return x + c.u(0.1, 0.5) * c.noise_band(3000.0, 12000.0)


def _bubbles(c: _Clip):
    k = c.sub(c.u(0.02, 0.08))
    f = c.lu(400.0, 2500.0)
    b = k.sine(f * (1 + 2 * k.t / max(k.duration, 1e-3))) * np.exp(-k.t / (k.duration / 3))
    return c.place(c.times(c.u(5.0, 40.0)), b)


def _r_fx_n(c: _Clip):
    mode = c.rng.choice(["wind", "rain", "explosion", "water"])
    if mode == "wind":
        return _wind(c)
    if mode == "rain":
        return _rain(c)
    if mode == "water":
        return _bubbles(c) + c.u(0.1, 0.5) * c.noise_band(500.0, 4000.0)
    k = c.sub(c.u(0.5, 4.0))
    boom = k.noise_band(30.0, c.u(150.0, 1200.0), slope=-1.5) * np.exp(-k.t / c.u(0.2, 1.5))
    return c.place([c.u(0.0, 0.3) * c.duration], boom)


def _r_fx_ex(c: _Clip):
    x = np.zeros(c.n, dtype=np.float32)
    n_grains = int(c.rng.integers(1, 4))
    for _ in range(n_grains):
        k = c.sub(c.u(0.01, 0.3))
        win = np.sin(np.pi * k.t / max(k.duration, 1e-3)) ** 2
        grain = (k.sine(c.lu(100.0, 6000.0)) + c.u(0, 1) * k.noise()) * win
        x += c.place(c.times(c.lu(2.0, 40.0)), grain, None)
    if c.chance(0.5):
        x *= np.sin(_TWO_PI * c.lu(20.0, 800.0) * c.t)
    if c.chance(0.3):
        x = x[::-1].copy()
    if c.chance(0.3):
        x += c.u(0.1, 0.6) * _r_fx_el(c)
    return x


def _r_fx_el(c: _Clip):
    mode = c.rng.choice(["beeps", "sweep", "glitch"])
    if mode == "beeps":
        rate = c.u(1.0, 10.0)
        idx, t_in, lengths, active = c.notes(rate, swing=0.3, rest=0.3)
        f = c.rng.choice([1.0, 1.5, 2.0, 1.25], idx.max() + 1) * c.lu(400.0, 3000.0)
        square = c.chance(0.4)
        amps = (
            c.harmonic_amps(float(f.max()), tilt=1.0, odd=1.0, jitter=0.0)
            if square
            else np.ones(1)
        )
        gate = (t_in < lengths[idx] * c.u(0.3, 0.9)) & active[idx]
        return c.osc(f[idx], amps=amps) * gate
    if mode == "sweep":
        return c.chirp(c.lu(100.0, 4000.0), c.lu(100.0, 8000.0), log=c.chance(0.5))
    k = c.sub(c.u(0.005, 0.05))
    click = np.sign(k.sine(c.lu(200.0, 4000.0))) * np.exp(-k.t / (k.duration / 2))
    return c.place(c.times(c.lu(3.0, 30.0)), click)


def _r_fx_d(c: _Clip):
    sweep = np.linspace(0.0, 1.0, c.n, dtype=np.float32)
    low = c.noise_band(200.0, 1000.0)
    high = c.noise_band(2000.0, 7000.0)
    x = (1 - sweep) * low + sweep * high
    x *= np.sin(np.pi * sweep) ** 2
    x += c.u(0.1, 0.6) * c.chirp(c.lu(100.0, 400.0), c.lu(1000.0, 6000.0))
    return x


def _r_ss_n(c: _Clip):
    x = _wind(c) * c.u(0.3, 1.0)
    if c.chance(0.6):
        x += c.u(0.2, 1.0) * c.place(c.times(c.u(0.3, 4.0)), _bird(c))
    if c.chance(0.4):
        x += c.u(0.1, 0.6) * _bubbles(c)
    if c.chance(0.3):
        x += c.u(0.1, 0.5) * c.noise_band(4000.0, 7000.0) * (
            0.5 + 0.5 * np.sin(_TWO_PI * c.u(20.0, 60.0) * c.t)
        )
    return x


def _r_ss_i(c: _Clip):
    mains = c.rng.choice([50.0, 60.0])
    x = c.u(0.05, 0.3) * c.osc(mains, amps=c.harmonic_amps(mains * 4, tilt=1.2, n_max=6))
    x += c.u(0.1, 0.4) * c.colored(c.u(0.9, 0.99))
    if c.chance(0.6):
        x += c.u(0.1, 0.5) * c.lowpass(_speech(c, rest=0.5), 2500.0)
    if c.chance(0.6):
        x += c.u(0.1, 0.6) * c.place(c.times(c.u(0.1, 2.0)), _modal_kernel(c))
    return x


def _r_ss_u(c: _Clip):
    x = c.u(0.3, 1.0) * c.noise_band(30.0, 600.0, slope=-2.0)
    if c.chance(0.7):
        x += c.u(0.2, 0.8) * _r_fx_v(c)
    if c.chance(0.5):
        x += c.u(0.1, 0.4) * c.noise_band(200.0, 3000.0, slope=-1.0) * (1.0 + 0.5 * c.smooth(4.0))
    if c.chance(0.3):
        x += c.u(0.1, 0.5) * _r_fx_h(c)
    return x


def _r_ss_s(c: _Clip):
    x = np.zeros(c.n, dtype=np.float32)
    root = c.lu(40.0, 300.0)
    for r in c.rng.choice([1.0, 1.5, 2.0, 1.26, 3.0], int(c.rng.integers(2, 5))):
        x += c.sine(root * r * (1 + 0.003 * c.smooth(0.3)))
    x *= 1.0 + 0.5 * c.smooth(c.u(0.05, 0.4))
    x += c.u(0.1, 0.8) * c.noise_band(c.lu(100, 500), c.lu(800, 6000)) * (
        0.5 + 0.5 * c.smooth(0.2)
    )
    if c.chance(0.3):
        x += c.u(0.05, 0.3) * _r_fx_el(c)
    return x


def _other_of(siblings):
    def recipe(c: _Clip):
        x = _RECIPES[str(c.rng.choice(siblings))](c)
        if c.chance(0.5):
            x = x * np.sin(_TWO_PI * c.lu(5.0, 300.0) * c.t)
        return c.band(x, c.lu(60.0, 500.0), c.lu(2000.0, 8000.0))

    return recipe


_RECIPES = {
    "m-sp": _r_m_sp,
    "m-si": _r_m_si,
    "m-m": _r_m_m,
    "is-p": _r_is_p,
    "is-s": _r_is_single("string"),
    "is-w": _r_is_single("wind"),
    "is-k": _r_is_single("keyboard"),
    "is-e": _r_is_single("synth"),
    "sp-s": _r_sp_s,
    "sp-c": _r_sp_c,
    "sp-p": _r_sp_p,
    "fx-o": _r_fx_o,
    "fx-v": _r_fx_v,
    "fx-m": _r_fx_m,
    "fx-h": _r_fx_h,
    "fx-a": _r_fx_a,
    "fx-n": _r_fx_n,
    "fx-ex": _r_fx_ex,
    "fx-el": _r_fx_el,
    "fx-d": _r_fx_d,
    "ss-n": _r_ss_n,
    "ss-i": _r_ss_i,
    "ss-u": _r_ss_u,
    "ss-s": _r_ss_s,
}
_RECIPES.update(
    {
        "m-other": _other_of(["m-sp", "m-si", "m-m"]),
        "is-other": _other_of(["is-p", "is-s", "is-w", "is-k", "is-e"]),
        "sp-other": _other_of(["sp-s", "sp-c", "sp-p"]),
        "fx-other": _other_of(["fx-o", "fx-m", "fx-h", "fx-ex"]),
        "ss-other": _other_of(["ss-n", "ss-i", "ss-u", "ss-s"]),
    }
)


def _render(label, seed, n, sr):
    rng = np.random.default_rng(seed)
    c = _Clip(rng, sr, n)
    x = np.asarray(_RECIPES[label](c), dtype=np.float32)
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    rms = float(np.sqrt(np.dot(x, x) / x.size))
    if rms < 1e-8:
        x = 1e-3 * c.noise()
        rms = float(np.sqrt(np.dot(x, x) / x.size))
    # shared nuisance: a coloured noise floor at a random SNR
    snr_db = rng.uniform(12.0, 45.0)
    floor = c.colored(rng.uniform(0.0, 0.98))
    floor *= np.float32(rms * 10 ** (-snr_db / 20.0))
    x = x + floor
    x = c.fade(x, 0.002)
    peak = max(float(x.max()), -float(x.min()), 1e-9)
    x *= np.float32(rng.uniform(0.1, 0.95) / peak)  # peak <= 0.95: inside [-1, 1]
    return x


# ---------------------------------------------------------------------------
# Synthetic metadata text
# ---------------------------------------------------------------------------
_TOP_WORDS = {
    "m": "music song track loop melody musical tune",
    "is": "sample note one-shot instrument multisample single-note",
    "sp": "voice speech talking spoken words vocal",
    "fx": "sfx effect foley sound-effect",
    "ss": "ambience ambient atmosphere soundscape field-recording background",
}
_LEAF_WORDS = {
    "m-sp": "drum drums beat groove percussion rhythm tabla breakbeat",
    "m-si": "solo guitar piano melody improvisation flute riff",
    "m-m": "band ensemble orchestra jam song mix arrangement",
    "is-p": "kick snare hit tom cymbal hihat drum percussion",
    "is-s": "violin cello guitar string bowed pizzicato",
    "is-w": "flute sax clarinet trumpet wind brass",
    "is-k": "piano keys rhodes organ keyboard grand",
    "is-e": "synth bass lead pad analog electronic",
    "sp-s": "man woman reading monologue narration voice",
    "sp-c": "crowd people conversation chatter dialogue talking",
    "sp-p": "robot vocoder radio telephone processed distorted",
    "fx-o": "door keys glass cup drawer microwave click object",
    "fx-v": "car engine truck motorcycle vehicle bus passing",
    "fx-m": "machine motor engine gear mechanism printer fan",
    "fx-h": "footsteps clap breath cough laugh hands",
    "fx-a": "bird dog cat insect animal chirp bark",
    "fx-n": "wind rain thunder explosion water fire storm",
    "fx-ex": "experimental weird abstract glitch granular noise",
    "fx-el": "beep ui interface notification bleep electronic",
    "fx-d": "whoosh riser transition design swoosh",
    "ss-n": "forest birds nature river wind night",
    "ss-i": "room indoor kitchen office restaurant hall",
    "ss-u": "street city traffic urban market station",
    "ss-s": "drone pad synthetic ambient texture atmosphere",
    "m-other": "music other experimental sound",
    "is-other": "sample instrument other bell",
    "sp-other": "whisper voice other",
    "fx-other": "effect misc other",
    "ss-other": "ambience other misc",
}
_GENERIC = (
    "recording sound wav stereo mono field zoom h4n 44.1khz free test clip audio "
    "processed raw edit short long loud quiet my new final mic 24bit"
).split()


def _make_texts(rng, labels, taxonomy, p_empty=0.04):
    leaves = taxonomy.leaves
    vocab_leaf = {k: _LEAF_WORDS.get(k, k).split() for k in leaves}
    vocab_top = {t: _TOP_WORDS.get(t, t).split() for t in taxonomy.tops}
    parent = taxonomy.parent_of
    texts = []
    for lab in labels:
        if rng.random() < p_empty:
            texts.append("")
            continue
        n_words = int(rng.integers(2, 10))
        src = rng.choice(4, n_words, p=[0.3, 0.2, 0.12, 0.38])
        words = []
        for s in src:
            if s == 0:
                words.append(str(rng.choice(vocab_leaf[lab])))
            elif s == 1:
                words.append(str(rng.choice(vocab_top[parent[lab]])))
            elif s == 2:
                words.append(str(rng.choice(vocab_leaf[leaves[rng.integers(len(leaves))]])))
            else:
                words.append(str(rng.choice(_GENERIC)))
        title = " ".join(words[: max(1, n_words // 3)])
        tags = ",".join(words[max(1, n_words // 3) :])
        texts.append(f"{title} {tags}".strip())
    return texts


def _flip_labels(rng, y_idx, taxonomy, label_noise, p_sibling=0.6):
    n = y_idx.size
    k = taxonomy.n_leaves
    n_flip = int(round(label_noise * n))
    noisy = y_idx.copy()
    mask = np.zeros(n, dtype=bool)
    if n_flip == 0 or k < 2:
        return noisy, mask
    flip = rng.choice(n, n_flip, replace=False)
    parent = taxonomy.parent_index
    for i in flip:  # n_flip small; loop over flipped clips only
        cur = y_idx[i]
        sibs = np.flatnonzero((parent == parent[cur]) & (np.arange(k) != cur))
        if sibs.size and rng.random() < p_sibling:
            new = rng.choice(sibs)
        else:
            others = np.flatnonzero(np.arange(k) != cur)
            new = rng.choice(others)
        noisy[i] = new
    mask[flip] = True
    return noisy, mask


def make_bst_audio(
    n_samples=230,
    *,
    sample_rate=16000,
    min_duration=0.05,
    max_duration=30.0,
    label_noise=0.0,
    taxonomy=None,
    class_weights=None,
    random_state=None,
):
    """Synthetic heterogeneous audio clips labelled with the Broad Sound Taxonomy.

    One synthesis recipe per second-level class (harmonic tones of different timbres for
    instrument samples, rhythmic hits and multi-voice mixtures for music, formant babble
    for speech, noise textures with sparse events for soundscapes, chirps, impacts and
    engines for effects). Sibling recipes share building blocks and overlapping
    parameter ranges; clips are 0.05 s to 30 s long (log-uniform) with a random noise
    floor, so classes are learnable but not trivially separable.

    Parameters
    ----------
    n_samples : int, default=230
        Number of clips. With ``class_weights=None`` classes are balanced (each class
        gets ``n_samples // n_classes`` clips, the remainder to random classes).
    sample_rate : int, default=16000
        Sample rate in Hz (>= 4000).
    min_duration, max_duration : float, default=0.05, 30.0
        Clip durations are log-uniform in ``[min_duration, max_duration]`` seconds.
    label_noise : float in [0, 1), default=0.0
        Fraction of clips whose label is flipped (to a sibling class 60% of the time,
        otherwise to any other class), standing in for crowd-sourced labels.
    taxonomy : Taxonomy, default=None
        ``None`` means :data:`~sklearn_mesh.taxonomy.BST`. Its leaves must be classes of
        ``BST_FULL`` (for example ``BST_FULL`` itself, or ``BST.subset([...])``).
    class_weights : array-like of shape (n_classes,), default=None
        Class sampling probabilities in taxonomy order (normalised); ``None`` balances.
    random_state : int, RandomState instance or None, default=None
        Same seed, same clips, labels and texts.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``audio`` (list of 1-D float32 arrays in [-1, 1]), ``sample_rate``, ``target``
        (possibly noisy labels, object array), ``target_clean``, ``noisy_mask``,
        ``target_top`` (top of the clean label), ``text`` (list of str), ``ids``,
        ``durations`` (s), ``confidence`` (int 1-5, lower for noisy labels),
        ``taxonomy`` and ``frame`` (DataFrame with columns ``id``, ``audio`` — each a
        ``(waveform, sample_rate)`` tuple — ``text``, ``label``, ``confidence``).

    Examples
    --------
    >>> from sklearn_mesh.datasets import make_bst_audio
    >>> data = make_bst_audio(23, max_duration=0.5, random_state=0)
    >>> len(data.audio), data.sample_rate, sorted(set(data.target))[:3]
    (23, 16000, ['fx-a', 'fx-el', 'fx-ex'])
    >>> data.frame.columns.tolist()
    ['id', 'audio', 'text', 'label', 'confidence']
    """
    taxonomy = check_taxonomy(taxonomy)
    unknown = [k for k in taxonomy.leaves if k not in _RECIPES]
    if unknown:
        raise ValueError(
            f"make_bst_audio has no synthesis recipe for the classes {unknown}; use BST, "
            "BST_FULL or a subset of them."
        )
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 4000:
        raise ValueError(f"sample_rate must be an integer >= 4000 Hz, got {sample_rate!r}.")
    if not (0 < min_duration <= max_duration):
        raise ValueError(
            f"Need 0 < min_duration <= max_duration, got {min_duration} and {max_duration}."
        )
    if not (0.0 <= label_noise < 1.0):
        raise ValueError(f"label_noise must lie in [0, 1), got {label_noise}.")

    rs = check_random_state(random_state)
    rng = np.random.default_rng(rs.randint(0, 2**31 - 1, size=4))
    k = taxonomy.n_leaves
    if class_weights is None:
        y_idx = np.resize(np.arange(k), n_samples)
        extra = n_samples % k
        if extra:
            y_idx[-extra:] = rng.choice(k, extra, replace=False)
        y_idx = rng.permutation(y_idx)
    else:
        w = np.asarray(class_weights, dtype=np.float64)
        if w.shape != (k,) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"class_weights must be {k} non-negative numbers (taxonomy order), got shape "
                f"{w.shape}."
            )
        y_idx = rng.choice(k, n_samples, p=w / w.sum())
    durations = np.exp(rng.uniform(np.log(min_duration), np.log(max_duration), n_samples))
    lengths = np.maximum(16, np.round(durations * sample_rate).astype(np.int64))
    durations = lengths / float(sample_rate)
    seeds = rng.integers(0, 2**63 - 1, n_samples)
    leaves = np.asarray(taxonomy.leaves, dtype=object)
    y_clean = leaves[y_idx]
    audio = [
        _render(str(lab), int(s), int(m), int(sample_rate))
        for lab, s, m in zip(y_clean, seeds, lengths)
    ]

    text_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    texts = _make_texts(text_rng, y_clean, taxonomy)
    noisy_idx, noisy_mask = _flip_labels(rng, y_idx, taxonomy, label_noise)
    p_clean = np.array([0.03, 0.07, 0.2, 0.35, 0.35])
    p_noisy = np.array([0.35, 0.3, 0.2, 0.1, 0.05])
    conf = np.where(
        noisy_mask, rng.choice(5, n_samples, p=p_noisy), rng.choice(5, n_samples, p=p_clean)
    ) + 1
    ids = np.array([f"bst-{i:05d}" for i in range(n_samples)], dtype=object)
    target = leaves[noisy_idx]
    frame = pd.DataFrame(
        {
            "id": ids,
            "audio": pd.Series([(a, int(sample_rate)) for a in audio], dtype=object),
            "text": texts,
            "label": target,
            "confidence": conf,
        }
    )
    return Bunch(
        audio=audio,
        sample_rate=int(sample_rate),
        target=target,
        target_clean=y_clean,
        noisy_mask=noisy_mask,
        target_top=np.asarray(taxonomy.tops, dtype=object)[taxonomy.parent_index[y_idx]],
        text=texts,
        ids=ids,
        durations=durations,
        confidence=conf.astype(np.int64),
        taxonomy=taxonomy,
        frame=frame,
    )
