"""Tests of embedding-set selection (sklearn_mesh.selection)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joblib import parallel_config
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mesh.metrics import hierarchical_f1_score
from sklearn_mesh.selection import (
    EmbeddingSetSelector,
    _greedy_select,
    blocks_from_feature_names,
    linear_cka,
    plot_selection,
    stack_blocks,
)
from sklearn_mesh.taxonomy import BST

REPO = Path(__file__).resolve().parents[1]
LABELS = np.array(["m-sp", "fx-o", "sp-s", "is-p"])


# ------------------------------------------------------------------ helpers
def _naive_cka(X, Y):
    """Gram-matrix form with an explicit centring matrix (reference implementation)."""
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    n = X.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    K = H @ (X @ X.T) @ H
    L = H @ (Y @ Y.T) @ H
    return np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


def _orthogonal(d, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _blocks_data(n=90, seed=0):
    """Four labelled blocks: informative, weak, noise; y with 3 BST classes."""
    rng = np.random.default_rng(seed)
    y = np.repeat(LABELS[:3], n // 3)
    onehot = (y[:, None] == LABELS[:3]).astype(float)
    strong = onehot @ rng.normal(size=(3, 4)) + rng.normal(0, 0.5, (n, 4))
    weak = onehot @ rng.normal(size=(3, 3)) + rng.normal(0, 2.0, (n, 3))
    noise = rng.normal(size=(n, 3))
    return {"strong": strong, "weak": weak, "noise": noise}, y


# ------------------------------------------------------------------ linear CKA
matrices = st.integers(0, 10_000).flatmap(
    lambda seed: st.tuples(st.just(seed), st.integers(3, 25), st.integers(1, 30))
)


@settings(deadline=None, max_examples=25)
@given(matrices)
def test_cka_matches_naive_gram_reference(params):
    seed, n, d = params
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = X[:, : max(1, d // 2)] @ rng.normal(size=(max(1, d // 2), 3)) + rng.normal(size=(n, 3))
    assert linear_cka(X, Y) == pytest.approx(_naive_cka(X, Y), abs=1e-9)
    assert linear_cka(Y, X) == pytest.approx(linear_cka(X, Y), abs=1e-12)
    assert 0.0 <= linear_cka(X, Y) <= 1.0


@settings(deadline=None, max_examples=25)
@given(matrices, st.floats(1e-3, 1e3))
def test_cka_self_one_and_invariances(params, scale):
    seed, n, d = params
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d)
    Y = np.tanh(X @ rng.normal(size=(d, 4))) + 0.1 * rng.normal(size=(n, 4))
    Q = _orthogonal(d, seed + 1)
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-9)
    # orthogonal transform and isotropic scaling of one block leave CKA unchanged
    assert linear_cka(X @ Q, X) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(scale * X, X) == pytest.approx(1.0, abs=1e-9)
    base = linear_cka(X, Y)
    assert linear_cka(scale * (X @ Q), Y) == pytest.approx(base, abs=1e-9)
    assert linear_cka(X, Y @ _orthogonal(4, seed + 2) / scale) == pytest.approx(base, abs=1e-9)


def test_cka_not_invariant_to_anisotropic_scaling_and_edge_cases():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    assert linear_cka(X * [1.0, 1.0, 30.0], X) < 0.9
    assert np.isnan(linear_cka(np.ones((5, 2)), rng.normal(size=(5, 2))))
    with pytest.raises(ValueError, match="same number of rows"):
        linear_cka(X, X[:10])
    with pytest.raises(ValueError, match="NaN"):
        linear_cka(np.full((3, 2), np.nan), X[:3])
    # wide blocks (more features than samples) go through the compressed Gram path
    W = rng.normal(size=(12, 50))
    assert linear_cka(W, W[:, :7]) == pytest.approx(_naive_cka(W, W[:, :7]), abs=1e-9)


# ------------------------------------------------------------------ greedy rule
@settings(deadline=None, max_examples=40)
@given(
    st.integers(0, 10_000),
    st.integers(1, 8),
    st.integers(1, 8),
    st.sampled_from([0.0, 0.5]),
)
def test_weight_zero_is_top_k_by_hf(seed, n, k, tie_fraction):
    rng = np.random.default_rng(seed)
    hf = rng.uniform(size=n)
    if tie_fraction and n > 1:
        hf[: n // 2] = hf[-1]  # ties are broken by block order
    D = rng.uniform(size=(n, n))
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    order, _ = _greedy_select(hf, D, k, 0.0, 1e-6)
    assert order == list(np.argsort(-hf, kind="stable")[:k])


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 10_000), st.integers(2, 7), st.floats(1e-4, 10.0))
def test_duplicate_never_selected_twice_greedy(seed, n, weight):
    rng = np.random.default_rng(seed)
    hf = rng.uniform(size=n)
    D = rng.uniform(0.05, 1.0, size=(n, n))
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    # block n is a copy of block 0: same hF, zero diversity to it, same to the others
    hf = np.append(hf, hf[0])
    D = np.block([[D, D[:, :1]], [D[:1, :], np.zeros((1, 1))]])
    order, path = _greedy_select(hf, D, None, weight, 1e-6)
    assert not {0, n} <= set(order)
    assert len(order) == n  # every non-duplicate block still adds something
    assert path[0][0] == int(np.argmax(hf))


def test_greedy_prefers_diverse_block_and_stops_without_gain():
    hf = np.array([0.80, 0.79, 0.70])
    D = np.array([[0.0, 0.05, 0.9], [0.05, 0.0, 0.8], [0.9, 0.8, 0.0]])
    assert _greedy_select(hf, D, 2, 0.0, 1e-6)[0] == [0, 1]
    assert _greedy_select(hf, D, 2, 0.5, 1e-6)[0] == [0, 2]
    D0 = np.zeros((3, 3))
    assert _greedy_select(hf, D0, None, 0.1, 1e-6)[0] == [0]  # nothing adds diversity


# ------------------------------------------------------------------ estimator
def test_scores_match_manual_cross_validation():
    blocks, y = _blocks_data()
    X, layout = stack_blocks(blocks)
    sel = EmbeddingSetSelector(layout, cv=3, random_state=0).fit(X, y)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    y_idx = BST.encode(y)
    for name, cols in layout:
        fold = []
        oof = np.empty(len(y), dtype=object)
        for train, test in cv.split(X, y_idx):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
            clf.fit(X[train, cols], y[train])
            oof[test] = clf.predict(X[test, cols])
            fold.append(hierarchical_f1_score(y[test], oof[test]))
        assert sel.cv_scores_.loc[name].to_numpy() == pytest.approx(fold)
        assert sel.scores_.loc[name, "hf_mean"] == pytest.approx(np.mean(fold))
        assert sel.scores_.loc[name, "hf_std"] == pytest.approx(np.std(fold))
        assert sel.scores_.loc[name, "hf_oof"] == pytest.approx(hierarchical_f1_score(y, oof))
        assert list(sel.oof_predictions_[name]) == list(oof)
    assert sel.scores_.loc["strong", "rank"] == 1
    assert sel.scores_.loc["strong", "hf_mean"] > sel.scores_.loc["noise", "hf_mean"]


def test_diversity_matrices_match_naive_loops():
    blocks, y = _blocks_data()
    sel = EmbeddingSetSelector(cv=3, random_state=0).fit(blocks, y)
    names = list(blocks)
    assert set(sel.diversity_) == {"cka", "disagreement", "correlation"}
    for a in names:
        for b in names:
            pa, pb = sel.oof_predictions_[a], sel.oof_predictions_[b]
            dis = sum(u != v for u, v in zip(pa, pb)) / len(pa)
            assert sel.diversity_["disagreement"].loc[a, b] == pytest.approx(dis)
            assert sel.diversity_["cka"].loc[a, b] == pytest.approx(
                _naive_cka(blocks[a], blocks[b]), abs=1e-9
            )
            P = sel.oof_proba_[a] - sel.oof_proba_[a].mean(0)
            Q = sel.oof_proba_[b] - sel.oof_proba_[b].mean(0)
            corr = np.sum(P * Q) / np.sqrt(np.sum(P * P) * np.sum(Q * Q))
            assert sel.diversity_["correlation"].loc[a, b] == pytest.approx(corr)
    assert np.allclose(sel.diversity_matrix_.to_numpy(), 1 - sel.diversity_["cka"].to_numpy())
    assert sel.oof_proba_["strong"].shape == (len(y), BST.n_leaves)
    assert np.allclose(sel.oof_proba_["strong"].sum(1), 1.0)


@pytest.mark.parametrize("diversity", ["cka", "disagreement", "correlation", "mean"])
@pytest.mark.parametrize("weight", [0.01, 1.0])
def test_duplicated_block_never_selected_twice(diversity, weight):
    blocks, y = _blocks_data()
    rotated = blocks["strong"] @ _orthogonal(4, 3) * 2.5  # same information, CKA = 1
    data = {**blocks, "strong_copy": blocks["strong"].copy(), "strong_rot": rotated}
    sel = EmbeddingSetSelector(
        diversity=diversity, diversity_weight=weight, cv=3, random_state=0
    ).fit(data, y)
    copies = {"strong", "strong_copy"}
    assert len(copies & set(sel.selected_)) == 1
    if diversity == "cka":
        assert len((copies | {"strong_rot"}) & set(sel.selected_)) == 1
    # under weight 0, plain top-k takes the two tied copies together
    assert sel.scores_.loc["strong", "hf_mean"] == sel.scores_.loc["strong_copy", "hf_mean"]
    assert set(sel.select(n_blocks=2, diversity_weight=0.0)) == copies


@pytest.mark.parametrize("k", [1, 2, 3])
def test_weight_zero_fit_equals_top_k(k):
    blocks, y = _blocks_data(seed=2)
    sel = EmbeddingSetSelector(n_blocks=k, diversity_weight=0.0, cv=3, random_state=0)
    sel.fit(blocks, y)
    expected = list(sel.scores_["hf_mean"].sort_values(ascending=False, kind="stable").index[:k])
    assert sel.selected_ == expected
    assert sel.scores_.loc[sel.selected_, "rank"].tolist() == list(range(1, k + 1))


def test_deterministic_with_random_state_and_n_jobs():
    blocks, y = _blocks_data(n=120)
    kw = dict(cv=3, cka_max_samples=50, random_state=7, diversity_weight=0.3)
    a = EmbeddingSetSelector(**kw).fit(blocks, y)
    with parallel_config(backend="threading"):  # same code path as processes, no spawn cost
        b = EmbeddingSetSelector(**kw, n_jobs=2).fit(blocks, y)
    pd.testing.assert_frame_equal(a.scores_, b.scores_)
    for m in a.diversity_:
        pd.testing.assert_frame_equal(a.diversity_[m], b.diversity_[m])
    assert a.selected_ == b.selected_
    np.testing.assert_array_equal(a.cka_sample_indices_, b.cka_sample_indices_)
    assert len(a.cka_sample_indices_) == 50
    c = EmbeddingSetSelector(**{**kw, "random_state": 8}).fit(blocks, y)
    assert not np.array_equal(a.cka_sample_indices_, c.cka_sample_indices_)


def test_transform_and_feature_names_keep_block_names():
    blocks, y = _blocks_data()
    X, layout = stack_blocks(blocks)
    sel = EmbeddingSetSelector(layout, n_blocks=2, diversity_weight=0.0, cv=3, random_state=0)
    Xt = sel.fit_transform(X, y)
    mask = np.zeros(X.shape[1], dtype=bool)
    for name, cols in layout:
        if name in sel.selected_:
            mask[cols] = True
    np.testing.assert_array_equal(sel.support_, mask)
    np.testing.assert_array_equal(Xt, X[:, mask])
    names = sel.get_feature_names_out()
    assert len(names) == Xt.shape[1]
    assert {n.split("__")[0] for n in names} == set(sel.selected_)
    # a mapping input gives the same result and must match the fitted layout
    np.testing.assert_array_equal(sel.transform(blocks), Xt)
    with pytest.raises(ValueError, match="fitted on"):
        sel.transform({"noise": blocks["noise"]})
    sel.set_output(transform="pandas")
    assert list(sel.transform(X).columns) == list(names)


def test_pipeline_after_feature_union_infers_blocks():
    blocks, y = _blocks_data()
    X = np.hstack([blocks["strong"], blocks["noise"]])
    union = FeatureUnion(
        [("pca", PCA(n_components=2, random_state=0)), ("raw", StandardScaler())]
    ).set_output(transform="pandas")
    pipe = make_pipeline(
        union,
        EmbeddingSetSelector(n_blocks=1, diversity_weight=0.0, cv=3, random_state=0),
        LogisticRegression(max_iter=300),
    )
    pipe.fit(X, y)
    sel = pipe[1]
    assert [name for name, _ in sel.blocks_] == ["pca", "raw"]
    assert sel.selected_ == [sel.scores_["hf_mean"].idxmax()]
    out = pipe[:-1].get_feature_names_out()
    assert all(n.startswith(sel.selected_[0] + "__") for n in out)
    assert pipe.predict(X).shape == y.shape


def test_blocks_from_dataframe_column_names_and_index_forms():
    blocks, y = _blocks_data()
    X, _ = stack_blocks(blocks)
    df = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    by_name = {"strong": ["c0", "c1", "c2", "c3"], "rest": [f"c{j}" for j in range(4, 10)]}
    by_index = [("strong", np.arange(4)), ("rest", slice(4, None))]
    mask = np.zeros(10, dtype=bool)
    mask[:4] = True
    by_mask = [("strong", mask), ("rest", ~mask)]
    fitted = [
        EmbeddingSetSelector(spec, cv=3, random_state=0).fit(data, y)
        for spec, data in [(by_name, df), (by_index, X), (by_mask, X)]
    ]
    for other in fitted[1:]:
        pd.testing.assert_frame_equal(fitted[0].scores_, other.scores_)
    names = fitted[0].get_feature_names_out()
    assert names[0] == "strong__c0"


def test_blocks_from_feature_names():
    assert blocks_from_feature_names(["a__x0", "b__y", "a__x1"]) == [("a", [0, 2]), ("b", [1])]
    with pytest.raises(ValueError, match="prefix"):
        blocks_from_feature_names(["a__x0", "plain"])


@pytest.mark.parametrize(
    "blocks, X_kind, match",
    [
        (None, "array", "no feature names"),
        ({"a": slice(0, 3), "b": slice(20, 30)}, "array", "selects no column"),
        ({"a": [0, 1], "b": [12]}, "array", "refers to column 12"),
        ({"a": ["nope"]}, "frame", "not in X"),
        ([("a", [0]), ("a", [1])], "array", "used twice"),
        ([], "array", "empty"),
        ([("a", [0], "extra")], "array", r"\(name, columns\)"),
        ({"a": [0.5]}, "array", "must be a slice"),
        (None, "frame", "prefix"),
    ],
)
def test_bad_block_specs_raise_clear_errors(blocks, X_kind, match):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 6))
    y = np.repeat(LABELS[:3], 10)
    if X_kind == "frame":
        X = pd.DataFrame(X, columns=[f"c{j}" for j in range(6)])
    with pytest.raises(ValueError, match=match):
        EmbeddingSetSelector(blocks, cv=2).fit(X, y)


def test_other_input_errors():
    blocks, y = _blocks_data()
    X, layout = stack_blocks(blocks)
    with pytest.raises(ValueError, match="leave blocks=None"):
        EmbeddingSetSelector(layout).fit(blocks, y)
    with pytest.raises(ValueError, match="rows"):
        stack_blocks({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))})
    with pytest.raises(ValueError, match="unknown|Unknown|not a leaf|label"):
        EmbeddingSetSelector(layout, cv=2).fit(X, np.repeat(["dog", "cat", "car"], 30))
    sel = EmbeddingSetSelector(layout, cv=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="n_blocks"):
        sel.select(n_blocks=0)
    with pytest.raises(ValueError, match="diversity"):
        sel.select(diversity="cosine")


def test_group_cv_custom_estimator_and_single_class_folds():
    blocks, y = _blocks_data()
    groups = np.arange(len(y)) % 5
    sel = EmbeddingSetSelector(
        estimator=LogisticRegression(max_iter=200), cv=GroupKFold(5), random_state=0
    ).fit(blocks, y, groups=groups)
    assert sel.cv_scores_.shape == (3, 5)
    # integer taxonomy indices; a fold whose training part holds a single class
    y_int = np.array([0] * 29 + [11])
    X = np.random.default_rng(0).normal(size=(30, 4))
    split = [(np.arange(25), np.arange(25, 30))]
    sel = EmbeddingSetSelector([("a", [0, 1]), ("b", [2, 3])], cv=split)
    with pytest.warns(UserWarning, match="out of every test fold"):
        sel.fit(X, y_int)
    assert list(sel.classes_) == list(range(BST.n_leaves))
    assert set(sel.oof_predictions_["a"][25:]) == {0}


def test_plot_selection():
    pytest.importorskip("matplotlib")
    blocks, y = _blocks_data()
    sel = EmbeddingSetSelector(cv=3, random_state=0).fit(blocks, y)
    for measure in ["cka", "disagreement", "used"]:
        fig = plot_selection(sel, measure=measure)
        assert len(fig.axes) >= 2
    with pytest.raises(ValueError, match="measure"):
        plot_selection(sel, measure="nope")


@pytest.mark.slow
def test_example_quick_mode_runs(bsd10k_dir):
    script = REPO / "examples" / "select_embedding_sets.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--n-samples", "400", "--no-minilm", "--outer-folds", "2",
         "--inner-folds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
             "SKLEARN_MESH_BSD10K_DIR": str(bsd10k_dir)},
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "selected" in proc.stdout and "hF" in proc.stdout


def test_plot_selection_without_matplotlib_names_the_extra(monkeypatch):
    blocks, y = _blocks_data()
    sel = EmbeddingSetSelector(cv=3, random_state=0).fit(blocks, y)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"sklearn-mesh\[plot\]"):
        plot_selection(sel)


def test_get_feature_names_out_input_features():
    blocks, y = _blocks_data()
    X, layout = stack_blocks(blocks)
    sel = EmbeddingSetSelector(layout, n_blocks=1, diversity_weight=0.0, cv=3, random_state=0)
    sel.fit(X, y)
    names = [f"f{j}" for j in range(X.shape[1])]
    out = sel.get_feature_names_out(names)
    best = sel.selected_[0]
    assert list(out) == [f"{best}__f{j}" for j in np.flatnonzero(sel.support_)]
    with pytest.raises(ValueError, match="length"):
        sel.get_feature_names_out(names[:-1])
