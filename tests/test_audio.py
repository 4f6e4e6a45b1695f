"""The one audio loader: decoding, mix-down, resampling, validation errors."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sklearn_mesh.audio import AudioLoadError, audio_items, item_fingerprint, load_audio, resample


def _sine(freq, sr, seconds, phase=0.0):
    t = np.arange(int(round(sr * seconds))) / sr
    return np.sin(2 * np.pi * freq * t + phase).astype(np.float32)


def test_file_decoding_and_stereo_mixdown(tmp_path):
    left, right = _sine(440, 22050, 0.5), np.zeros(11025, np.float32)
    path = tmp_path / "s.flac"
    sf.write(path, np.stack([left, right], axis=1), 22050)
    wave, sr = load_audio(str(path))
    assert sr == 22050 and wave.dtype == np.float32
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-4)  # FLAC is 16-bit


@pytest.mark.parametrize("orig, target", [(44100, 16000), (8000, 48000), (48000, 32000)])
def test_resampling_preserves_a_sine(orig, target):
    wave = resample(_sine(300, orig, 1.0), orig, target)
    assert wave.shape == (target,)
    ref = _sine(300, target, 1.0)
    inner = slice(target // 10, -target // 10)  # ignore filter edges
    np.testing.assert_allclose(wave[inner], ref[inner], atol=2e-2)


def test_in_memory_forms_agree():
    x = _sine(200, 8000, 0.25)
    a = load_audio((x, 8000), sample_rate=16000)[0]
    b = load_audio({"array": x, "sampling_rate": 8000}, sample_rate=16000)[0]
    c = load_audio(x, input_sample_rate=8000, sample_rate=16000)[0]
    d = load_audio(((x * 32767).astype(np.int16), 8000), sample_rate=16000)[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(a, d, atol=1e-3)
    # (channels, samples) and (samples, channels) both mix down
    st = np.stack([x, -x])
    np.testing.assert_allclose(load_audio((st, 8000))[0], 0, atol=1e-7)
    np.testing.assert_allclose(load_audio((st.T, 8000))[0], 0, atol=1e-7)


def test_max_duration_crops():
    wave, _ = load_audio((np.ones(48000), 16000), max_duration=1.0)
    assert len(wave) == 16000


def test_bare_waveform_needs_a_rate():
    with pytest.raises(AudioLoadError, match="input_sample_rate") as info:
        load_audio(np.zeros(100))
    assert info.value.reason == "invalid"


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, reason, match",
    [
        (lambda p: p / "nope.wav", "missing", "not found"),
        (lambda p: _write(p / "empty.wav", b""), "empty", "empty"),
        (lambda p: _write(p / "bad.wav", b"RIFF\x00\x01garbage" * 20), "unreadable", "could not be decoded"),
        (lambda p: sf.write(p / "zero.wav", np.zeros(0), 16000) or p / "zero.wav", "empty", "0 samples"),
    ],
)
def test_file_errors(tmp_path, make, reason, match):
    with pytest.raises(AudioLoadError, match=match) as info:
        load_audio(str(make(tmp_path)))
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "item, reason",
    [
        ((np.array([0.0, np.nan, 1.0]), 8000), "non_finite"),
        ((np.array([0.0, np.inf]), 8000), "non_finite"),
        ((np.zeros(0), 8000), "empty"),
        ((np.zeros(10), 0), "invalid"),
        ((np.zeros(10), 8000.5), "invalid"),
        ({"foo": 1}, "invalid"),
        (None, "missing"),
        ((np.zeros((2, 2, 2)), 8000), "invalid"),
    ],
)
def test_waveform_errors(item, reason):
    with pytest.raises(AudioLoadError) as info:
        load_audio(item)
    assert info.value.reason == reason


def test_too_short():
    load_audio((np.zeros(80), 8000), min_duration=0.01)  # exactly 10 ms is fine
    with pytest.raises(AudioLoadError, match="shorter than the minimum") as info:
        load_audio((np.zeros(40), 8000), min_duration=0.01)
    assert info.value.reason == "too_short"


def test_audio_items_accepts_tables():
    paths = ["a.wav", "b.wav"]
    assert audio_items(pd.Series(paths)) == paths
    assert audio_items(pd.DataFrame({"audio": paths})) == paths
    assert audio_items(np.array(paths, dtype=object)[:, None]) == paths
    assert len(audio_items(np.zeros((3, 50)))) == 3
    with pytest.raises(ValueError, match="single audio column"):
        audio_items(pd.DataFrame({"a": paths, "b": paths}))
    with pytest.raises(ValueError, match="single path"):
        audio_items("a.wav")
    with pytest.raises(ValueError, match="1-D numeric"):
        audio_items(np.zeros(100))


def test_fingerprint_is_content_based(tmp_path):
    x = _sine(100, 8000, 0.1)
    sf.write(tmp_path / "a.wav", x, 8000)
    sf.write(tmp_path / "b.wav", x, 8000)
    sf.write(tmp_path / "c.wav", -x, 8000)
    fa, fb, fc = (item_fingerprint(str(tmp_path / n)) for n in ("a.wav", "b.wav", "c.wav"))
    assert fa == fb != fc
    assert item_fingerprint(str(tmp_path / "missing.wav")) is None
