"""Pooling of ragged frame sequences: naive references, padding/permutation invariance,
chunk windows, and the Table 2 compositions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.pipeline import FeatureUnion

from sklearn_mesh.pooling import (
    ChunkPooling,
    RaggedEmbeddings,
    SequencePooling,
    chunk_windows,
    segment_stats,
)

NAIVE = {
    "mean": lambda f: f.mean(axis=0),
    "max": lambda f: f.max(axis=0),
    "min": lambda f: f.min(axis=0),
    "std": lambda f: f.std(axis=0),
}


def _random_ragged(rng, n_clips=5, dim=3, max_frames=12, hop=0.5, min_frames=1):
    frames = [rng.normal(size=(rng.integers(min_frames, max_frames + 1), dim)) for _ in range(n_clips)]
    return frames, RaggedEmbeddings.from_list(frames, frame_hop=hop)


def naive_windows(duration, chunk=10.0, hop=10.0):
    """Independent restatement of the window rule (regular windows + end-aligned one)."""
    if duration <= chunk:
        return [(0.0, duration)]
    k = int(np.floor((duration - chunk) / hop + 1e-9)) + 1
    wins = [(i * hop, i * hop + chunk) for i in range(k)]
    if abs(wins[-1][1] - duration) > 1e-6:
        wins.append((duration - chunk, duration))
    return wins


def naive_chunk_pool(frames, hop, fstats, cstats, chunk=10.0, chunk_hop=10.0):
    n = len(frames)
    centres = (np.arange(n) + 0.5) * hop
    wins = naive_windows(n * hop, chunk, chunk_hop)
    chunk_vecs = []
    for k, (s, e) in enumerate(wins):
        last = k == len(wins) - 1
        sel = [i for i in range(n) if s <= centres[i] and (centres[i] <= e if last else centres[i] < e)]
        if not sel:
            sel = [int(np.argmin(np.abs(centres - (s + e) / 2)))]
        f = frames[sel]
        chunk_vecs.append(np.concatenate([NAIVE[t](f) for t in fstats]))
    chunk_vecs = np.asarray(chunk_vecs)
    return np.concatenate([NAIVE[t](chunk_vecs) for t in cstats])


@pytest.mark.parametrize("stats", [("mean",), ("mean", "max", "std"), ("min", "std", "max")])
def test_sequence_pooling_matches_naive_reference(stats):
    rng = np.random.default_rng(1)
    frames, R = _random_ragged(rng)
    out = SequencePooling(stats=stats).fit_transform(R)
    expected = np.stack([np.concatenate([NAIVE[s](f) for s in stats]) for f in frames])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert out.dtype == np.float32


@settings(deadline=None, max_examples=25)
@given(
    lengths=st.lists(st.integers(1, 8), min_size=1, max_size=5),
    extra=st.integers(1, 6),
    garbage=st.floats(-1e6, 1e6, allow_nan=False),
    seed=st.integers(0, 10_000),
)
def test_padding_never_enters_a_statistic(lengths, extra, garbage, seed):
    rng = np.random.default_rng(seed)
    dim = 3
    width = max(lengths)
    padded = rng.normal(size=(len(lengths), width, dim))
    mask = np.arange(width)[None] < np.asarray(lengths)[:, None]
    more = np.concatenate([padded, np.full((len(lengths), extra, dim), garbage)], axis=1)
    more_mask = np.concatenate([mask, np.zeros((len(lengths), extra), bool)], axis=1)
    for pool in (SequencePooling(), ChunkPooling(frame_stats=("mean", "max"), stats=("mean", "std"), chunk_seconds=2.0, hop_seconds=2.0)):
        a = pool.fit_transform(RaggedEmbeddings.from_padded(padded, mask, frame_hop=0.5))
        b = pool.transform(RaggedEmbeddings.from_padded(more, more_mask, frame_hop=0.5))
        np.testing.assert_allclose(a, b, rtol=1e-6)


@settings(deadline=None, max_examples=25)
@given(n=st.integers(1, 15), seed=st.integers(0, 10_000))
def test_permuting_frames_leaves_sequence_stats_unchanged(n, seed):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 4))
    perm = rng.permutation(n)
    pool = SequencePooling(stats=("mean", "max", "std", "min"))
    a = pool.fit_transform(RaggedEmbeddings.from_list([f]))
    b = pool.transform(RaggedEmbeddings.from_list([f[perm]]))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "duration, expected",
    [
        (20.0, [(0, 10), (10, 20)]),  # exact multiple: no extra end window
        (30.0, [(0, 10), (10, 20), (20, 30)]),
        (10.0, [(0, 10)]),
        (25.0, [(0, 10), (10, 20), (15, 25)]),  # end-aligned window
        (3.0, [(0, 3)]),  # shorter than a chunk
        (0.01, [(0, 0.01)]),
        (10.5, [(0, 10), (0.5, 10.5)]),
    ],
)
def test_chunk_windows(duration, expected):
    got = chunk_windows(duration)
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(expected, float))
    assert got == [tuple(map(float, w)) for w in naive_windows(duration)] or np.allclose(got, naive_windows(duration))


def test_chunk_windows_without_end_alignment_and_overlap():
    assert chunk_windows(25.0, align_end=False) == [(0.0, 10.0), (10.0, 20.0)]
    assert chunk_windows(20.0, 10.0, 5.0) == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0)]


@settings(deadline=None, max_examples=20)
@given(
    n_frames=st.lists(st.integers(1, 60), min_size=1, max_size=4),
    hop=st.sampled_from([0.5, 1.0, 0.32]),
    seed=st.integers(0, 10_000),
)
def test_chunk_pooling_matches_naive_reference(n_frames, hop, seed):
    rng = np.random.default_rng(seed)
    frames = [rng.normal(size=(n, 2)) for n in n_frames]
    R = RaggedEmbeddings.from_list(frames, frame_hop=hop)
    pool = ChunkPooling(frame_stats=("mean", "std"), stats=("max", "mean")).fit(R)
    out = pool.transform(R)
    expected = np.stack([naive_chunk_pool(f, hop, ("mean", "std"), ("max", "mean")) for f in frames])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert out.shape[1] == len(pool.get_feature_names_out())


def test_chunk_pooling_short_and_tiny_clips():
    # a 0.01 s clip with 10 ms frames (2 frames) and a 3 s clip: one chunk each
    R = RaggedEmbeddings.from_list([np.ones((2, 2)), np.arange(600.0).reshape(300, 2)], frame_hop=0.01)
    out = ChunkPooling(stats=("mean", "max"), frame_stats=("mean",)).fit_transform(R)
    np.testing.assert_allclose(out[0], [1, 1, 1, 1])
    mean = np.arange(600.0).reshape(300, 2).mean(axis=0)
    np.testing.assert_allclose(out[1], np.r_[mean, mean], rtol=1e-6)


def test_chunk_level_input_uses_the_chunks_directly():
    chunks = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]])
    R = RaggedEmbeddings.from_list([chunks], times=[[[0, 10], [10, 20], [15, 25]]], level="chunk", prefix="clap")
    pool = ChunkPooling(stats=("mean", "max")).fit(R)
    np.testing.assert_allclose(pool.transform(R)[0], np.r_[chunks.mean(0), chunks.max(0)], rtol=1e-6)
    assert pool.get_feature_names_out()[0] == "clap_chunk_mean_0"
    with pytest.raises(ValueError, match="already one vector per chunk"):
        ChunkPooling(frame_stats=("mean",)).fit(R)


@pytest.mark.parametrize(
    "pool, dim",
    [
        (ChunkPooling(stats=("mean",)), 512),  # CLAP music, chunk mean
        (ChunkPooling(stats=("mean", "max")), 1024),  # CLAP 630k, chunk mean+max
        (ChunkPooling(frame_stats=("mean", "std"), stats=("mean",)), 1536),  # BEATs FT1
        (ChunkPooling(frame_stats=("mean", "max", "std"), stats=("max",)), 2304),  # BEATs AS2M
        (ChunkPooling(frame_stats=("max", "std"), stats=("mean", "std")), 3072),  # ATST-Frame
        (ChunkPooling(frame_stats=("mean", "max"), stats=("max", "std")), 3072),  # fPaSST
        (SequencePooling(stats=("mean", "std")), 7680),  # M2D clip-level mean+std
    ],
)
def test_table2_dimensions(pool, dim):
    rng = np.random.default_rng(0)
    frame_dim = {512: 512, 1024: 512, 7680: 3840}.get(dim, 768)
    level = "chunk" if dim in (512, 1024) else "frame"
    R = RaggedEmbeddings.from_list(
        [rng.normal(size=(3, frame_dim)).astype(np.float32)], frame_hop=8.0, level=level
    )
    out = pool.fit_transform(R)
    assert out.shape == (1, dim)
    assert len(pool.get_feature_names_out()) == dim


def test_feature_union_composes_sequence_and_chunk_pooling():
    rng = np.random.default_rng(0)
    frames, R = _random_ragged(rng, dim=4, max_frames=50, hop=0.5)
    union = FeatureUnion(
        [("seq", SequencePooling(stats=("mean", "max", "std"))), ("chunk", ChunkPooling(stats=("max",)))]
    )
    out = union.fit_transform(R)
    assert out.shape == (len(frames), 4 * 4)
    names = union.get_feature_names_out()
    assert names[0] == "seq__emb_seq_mean_0" and names[-1] == "chunk__emb_chunk_max_mean_3"
    np.testing.assert_allclose(out[:, :4], np.stack([f.mean(0) for f in frames]), rtol=1e-5)


def test_failed_clips_give_nan_rows_and_survive_indexing():
    R = RaggedEmbeddings.from_list([np.ones((2, 3)), np.zeros((0, 3)), np.ones((1, 3))], errors={1: "missing"})
    out = SequencePooling().fit_transform(R)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    sub = R[[1, 2]]
    assert sub.errors == {0: "missing"} and sub.lengths.tolist() == [0, 1]
    assert np.isnan(ChunkPooling().fit(R).transform(R)[1]).all()


def test_ragged_container_roundtrip_and_array_view():
    rng = np.random.default_rng(0)
    frames, R = _random_ragged(rng)
    padded, mask = R.padded()
    R2 = RaggedEmbeddings.from_padded(padded, mask, frame_hop=0.5)
    np.testing.assert_array_equal(R2.values, R.values)
    np.testing.assert_allclose(R2.times, R.times)
    view = np.asarray(R)
    assert view.shape == R.shape and np.isnan(view[~mask]).all()
    both = RaggedEmbeddings.concat([R, R[:2]])
    assert len(both) == len(R) + 2
    np.testing.assert_array_equal(both.frames(len(R) + 1), frames[1].astype(np.float32))


def test_segment_stats_empty_segments_are_nan():
    out = segment_stats(np.ones((2, 1)), np.array([0, 2, 0]), np.array([2, 0, 1]), ("mean", "std"))
    assert np.isnan(out[1]).all() and out[0].tolist() == [1.0, 0.0]


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="distinct statistics"):
        SequencePooling(stats=("mean", "median")).fit(np.ones((2, 2)))
    pool = SequencePooling().fit(RaggedEmbeddings.from_list([np.ones((2, 3))]))
    with pytest.raises(ValueError, match="expecting 3 features"):
        pool.transform(RaggedEmbeddings.from_list([np.ones((2, 4))]))
    with pytest.raises(ValueError, match="lengths must"):
        RaggedEmbeddings(np.ones((3, 2)), [1, 1])


def test_segment_stats_in_small_blocks_matches_naive(monkeypatch):
    import sklearn_mesh.pooling as pooling

    rng = np.random.default_rng(3)
    frames, R = _random_ragged(rng, n_clips=30, dim=3, max_frames=9)
    monkeypatch.setattr(pooling, "_BLOCK_ELEMENTS", 12)  # a few clips per block
    out = SequencePooling(stats=("std", "max", "mean")).fit_transform(R)
    expected = np.stack([np.concatenate([NAIVE[s](f) for s in ("std", "max", "mean")]) for f in frames])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
