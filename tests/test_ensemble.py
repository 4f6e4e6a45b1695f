"""GreedyOOFEnsemble, TaxonomyAligned and oof_predict_proba."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, ShuffleSplit
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier

from sklearn_mesh.ensemble import (
    GreedyOOFEnsemble,
    TaxonomyAligned,
    _argmax_blocks,
    _IdxScorer,
    _softmax,
    oof_predict_proba,
)
from sklearn_mesh.metrics import (
    hierarchical_accuracy_score,
    hierarchical_f1_score,
    hierarchical_precision_recall_fscore,
)
from sklearn_mesh.taxonomy import BST

K = BST.n_leaves


def _pool(rng, n=300, n_cand=6, quality=(0.2, 0.9)):
    """Candidates of varying quality: a mix of the one-hot truth and Dirichlet noise."""
    y = rng.randint(0, K, size=n)
    onehot = np.eye(K)[y]
    pool = {}
    for i, q in enumerate(np.linspace(*quality, n_cand)):
        noise = rng.dirichlet(np.ones(K) * 0.3, size=n)
        pool[f"c{i}"] = q * onehot * rng.uniform(0.2, 1.0, size=(n, 1)) + (1 - q) * noise
        pool[f"c{i}"] /= pool[f"c{i}"].sum(axis=1, keepdims=True)
    return pool, y


# ------------------------------------------------------------------ fast scoring
@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000), st.sampled_from(["hf", "hp", "hr", "accuracy"]))
def test_index_scorer_matches_metrics(seed, metric):
    rng = np.random.RandomState(seed)
    n = rng.randint(1, 60)
    t = rng.randint(0, rng.randint(1, K + 1), size=n)
    p = rng.randint(0, K, size=n)
    got = _IdxScorer(t, BST, metric=metric).from_idx(p)
    if metric == "accuracy":
        expected = hierarchical_accuracy_score(t, p)
    else:
        index = {"hp": 0, "hr": 1, "hf": 2}[metric]
        expected = hierarchical_precision_recall_fscore(t, p)[index]
    assert got == pytest.approx(expected)


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000))
def test_argmax_blocks_match_full_argmax(seed):
    rng = np.random.RandomState(seed)
    m, n, k = rng.randint(1, 6), rng.randint(1, 40), rng.randint(2, 25)
    Pm = rng.dirichlet(np.ones(k) * rng.choice([0.05, 0.5, 3.0]), size=(m, n))
    if seed % 2:
        Pm = np.round(Pm, 1)  # many ties: first-index rule must hold
    p_idx, blocks = _argmax_blocks(Pm)
    for _ in range(3):
        w = _softmax(rng.normal(size=m) * 2)
        got = p_idx.copy()
        for rows, cols, Q in blocks:
            best = (w @ Q).reshape(cols.shape).argmax(axis=1)
            got[rows] = cols[np.arange(len(rows)), best]
        np.testing.assert_array_equal(got, np.tensordot(w, Pm, axes=1).argmax(axis=1))


# ------------------------------------------------------------------ selection
def test_perfect_candidate_is_selected_first():
    rng = np.random.RandomState(0)
    pool, y = _pool(rng, quality=(0.1, 0.6))
    pool = {**pool, "perfect": np.eye(K)[y] * 0.9 + 0.1 / K}
    ens = GreedyOOFEnsemble(random_state=0).fit_oof(pool, y)
    assert ens.selected_[0] == "perfect"
    assert ens.trace_.added.iloc[0] == "perfect"
    assert ens.oof_score_ == 1.0
    assert ens.candidate_scores_["perfect"] == 1.0


@settings(deadline=None, max_examples=12)
@given(
    st.integers(0, 10_000),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.integers(1, 8)),
)
def test_trace_never_decreases_and_weights_are_a_simplex(seed, replace, optimize, max_members):
    rng = np.random.RandomState(seed)
    pool, y = _pool(rng, n=120, n_cand=rng.randint(1, 6))
    ens = GreedyOOFEnsemble(
        with_replacement=replace,
        optimize_weights=optimize,
        max_members=max_members,
        patience=None,
        max_fev=30,
        random_state=seed,
    ).fit_oof(pool, y)
    tr = ens.trace_
    assert np.all(np.diff(tr.best_score) >= 0)
    assert np.all(tr.score_optimized >= tr.score - 1e-12)
    assert ens.oof_score_ == tr.best_score.iloc[-1] == tr.score_optimized.max()
    assert np.all(ens.weights_ >= 0) and ens.weights_.sum() == pytest.approx(1.0)
    assert len(ens.weights_) == len(ens.selected_) == len(set(ens.selected_))
    assert len(tr) <= (max_members or len(pool) if replace else min(max_members or 99, len(pool)))
    # the reported score is the metric of the kept OOF ensemble
    pred = ens.classes_[ens.oof_proba_.argmax(axis=1)]
    assert ens.oof_score_ == pytest.approx(hierarchical_f1_score(y, pred))
    np.testing.assert_allclose(ens.oof_proba_.sum(axis=1), 1.0)
    np.testing.assert_allclose(ens.predict_proba_from(pool), ens.oof_proba_)


def _naive_caruana(pool, y, n_steps, replace):
    """Reference: recompute the mean of the members from scratch for every trial."""
    names = list(pool)
    chosen, trace = [], []
    for _ in range(n_steps):
        best, best_s = None, -np.inf
        for c in names:
            if not replace and c in chosen:
                continue
            mean = np.mean([pool[m] for m in [*chosen, c]], axis=0)
            s = hierarchical_f1_score(y, mean.argmax(axis=1))
            if s > best_s:
                best, best_s = c, s
        if best is None:
            break
        chosen.append(best)
        trace.append(best_s)
    return chosen, trace


@pytest.mark.parametrize("replace", [False, True])
def test_incremental_selection_matches_naive_reference(replace):
    rng = np.random.RandomState(3)
    pool, y = _pool(rng, n=200, n_cand=7, quality=(0.05, 0.5))
    ens = GreedyOOFEnsemble(
        with_replacement=replace, optimize_weights=False, patience=None, max_members=6
    ).fit_oof(pool, y)
    chosen, scores = _naive_caruana(pool, y, 6, replace)
    assert list(ens.trace_.added) == chosen
    np.testing.assert_allclose(ens.trace_.score, scores)


def test_weight_optimisation_helps_and_with_replacement_repeats():
    rng = np.random.RandomState(5)
    pool, y = _pool(rng, n=300, n_cand=8, quality=(0.05, 0.4))
    plain = GreedyOOFEnsemble(optimize_weights=False, with_replacement=True, max_members=12)
    plain.fit_oof(pool, y)
    tuned = GreedyOOFEnsemble(random_state=0, n_restarts=1).fit_oof(pool, y)
    assert tuned.oof_score_ >= plain.trace_.score.iloc[0]
    assert (tuned.trace_.score_optimized > tuned.trace_.score).any()
    added = plain.trace_.added
    assert len(added) > len(set(added)) or len(set(added)) == len(pool)


def test_patience_and_max_members():
    rng = np.random.RandomState(6)
    pool, y = _pool(rng, n=150, n_cand=6)
    ens = GreedyOOFEnsemble(max_members=2, patience=None).fit_oof(pool, y)
    assert len(ens.trace_) == 2
    ens = GreedyOOFEnsemble(patience=1).fit_oof(pool, y)
    worse = ens.trace_.best_score.diff().fillna(1) <= 0
    # it stops right after the first step that did not improve
    assert (not worse.any()) or (worse.idxmax() == len(ens.trace_) - 1)


def test_reproducible_with_random_state():
    rng = np.random.RandomState(7)
    pool, y = _pool(rng, n=200, n_cand=5, quality=(0.05, 0.4))
    kw = dict(n_restarts=2, max_fev=40)
    a = GreedyOOFEnsemble(random_state=11, **kw).fit_oof(pool, y)
    b = GreedyOOFEnsemble(random_state=11, **kw).fit_oof(pool, y)
    assert a.selected_ == b.selected_
    np.testing.assert_array_equal(a.weights_, b.weights_)
    pd.testing.assert_frame_equal(a.trace_, b.trace_)


def test_callable_scoring_is_used():
    rng = np.random.RandomState(8)
    pool, y = _pool(rng, n=100, n_cand=4)

    def neg_log_loss(y_true, proba):
        return float(np.mean(np.log(proba[np.arange(len(y_true)), y_true] + 1e-12)))

    ens = GreedyOOFEnsemble(scoring=neg_log_loss, max_fev=20, random_state=0).fit_oof(pool, y)
    best_single = max(neg_log_loss(y, p) for p in pool.values())
    assert ens.oof_score_ >= best_single - 1e-12
    assert ens.oof_score_ == pytest.approx(neg_log_loss(y, ens.oof_proba_))


# ------------------------------------------------------------------ alignment
def test_string_labels_and_dataframe_outputs():
    rng = np.random.RandomState(9)
    pool, y_idx = _pool(rng, n=100, n_cand=3)
    y = BST.decode(y_idx)
    ids = np.arange(100) + 1000
    frames = {k: pd.DataFrame(v, index=ids, columns=BST.leaves) for k, v in pool.items()}
    ens = GreedyOOFEnsemble(random_state=0).fit_oof(frames, y, ids=ids)
    np.testing.assert_array_equal(ens.ids_, ids)
    assert ens.classes_[0] == "m-sp"
    pred = ens.predict_from(frames, ids=ids)
    assert set(pred) <= set(BST.leaves)
    # an index in another order, a shuffled column order, a wrong ids list: all errors
    with pytest.raises(ValueError, match="row ids"):
        ens.predict_proba_from({k: f.iloc[::-1] for k, f in frames.items()}, ids=ids)
    with pytest.raises(ValueError, match="row ids"):
        bad = dict(frames)
        bad["c1"] = frames["c1"].sample(frac=1.0, random_state=0)
        GreedyOOFEnsemble().fit_oof(bad, y)
    cols = list(BST.leaves)
    cols[0], cols[1] = cols[1], cols[0]
    with pytest.raises(ValueError, match="class order"):
        GreedyOOFEnsemble().fit_oof({**frames, "c0": frames["c0"][cols]}, y)
    with pytest.raises(ValueError, match="row ids"):
        GreedyOOFEnsemble().fit_oof(frames, y, ids=ids[::-1])


def test_shape_and_name_errors():
    rng = np.random.RandomState(10)
    pool, y = _pool(rng, n=50, n_cand=3)
    with pytest.raises(ValueError, match="rows"):
        GreedyOOFEnsemble().fit_oof({**pool, "short": pool["c0"][:-1]}, y)
    with pytest.raises(ValueError, match="rows"):
        GreedyOOFEnsemble().fit_oof(pool, y[:-1])
    with pytest.raises(ValueError, match=r"\(n_samples, 23\)"):
        GreedyOOFEnsemble().fit_oof({**pool, "narrow": pool["c0"][:, :-1]}, y)
    nan = pool["c0"].copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GreedyOOFEnsemble().fit_oof({**pool, "nan": nan}, y)
    with pytest.raises(TypeError, match="mapping"):
        GreedyOOFEnsemble().fit_oof([pool["c0"]], y)
    ens = GreedyOOFEnsemble(max_members=3, patience=None, optimize_weights=False).fit_oof(pool, y)
    missing = {k: v for k, v in pool.items() if k != ens.selected_[0]}
    with pytest.raises(ValueError, match="missing"):
        ens.predict_proba_from(missing)
    with pytest.raises(AttributeError, match="predict_proba_from"):
        ens.predict_proba(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Unknown labels"):
        GreedyOOFEnsemble().fit_oof(pool, np.array(["nope"] * 50))


def test_fold_lists_are_averaged_at_predict_time():
    rng = np.random.RandomState(12)
    pool, y = _pool(rng, n=60, n_cand=3)
    ens = GreedyOOFEnsemble(random_state=0).fit_oof(pool, y)
    folds = {k: [v, np.roll(v, 1, axis=1)] for k, v in pool.items()}
    mean = {k: (a + b) / 2 for k, (a, b) in folds.items()}
    np.testing.assert_allclose(ens.predict_proba_from(folds), ens.predict_proba_from(mean))


# ---------------------------------------------------- estimators, OOF, leakage
class _ShuffledClasses(ClassifierMixin, BaseEstimator):
    """Exposes all taxonomy classes, but in a wrong order."""

    def fit(self, X, y):
        self.classes_ = np.asarray(BST.leaves, dtype=object)[::-1]
        return self

    def predict_proba(self, X):
        return np.full((len(X), K), 1 / K)


class _Memorizer(ClassifierMixin, BaseEstimator):
    """One-hot for rows seen in training, uniform for rows never seen."""

    def fit(self, X, y):
        self.classes_ = np.asarray(BST.leaves, dtype=object)
        self.memory_ = {row.tobytes(): BST.encode([label])[0] for row, label in zip(X, y)}
        return self

    def predict_proba(self, X):
        out = np.full((len(X), K), 1 / K)
        for i, row in enumerate(np.asarray(X)):
            if row.tobytes() in self.memory_:
                out[i] = np.eye(K)[self.memory_[row.tobytes()]]
        return out


def _labelled_data(rng, n=120, n_classes=4):
    labels = np.asarray(BST.leaves, dtype=object)[[0, 5, 11, 19][:n_classes]]
    y = labels[rng.randint(0, n_classes, size=n)]
    centers = rng.normal(size=(n_classes, 3)) * 3
    which = np.searchsorted(np.sort(labels), y).clip(0, n_classes - 1)
    X = centers[which] + rng.normal(size=(n, 3))
    return X, y


def test_candidate_with_shuffled_class_order_raises():
    X, y = _labelled_data(np.random.RandomState(0))
    ens = GreedyOOFEnsemble(
        [("ok", TaxonomyAligned(GaussianNB())), ("shuffled", _ShuffledClasses())], cv=3
    )
    with pytest.raises(ValueError, match="'shuffled'.*class order|class order.*'shuffled'"):
        ens.fit(X, y)


def test_oof_outputs_are_truly_out_of_fold():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(90, 4))  # unique rows
    y = np.asarray(BST.leaves, dtype=object)[rng.randint(0, K, size=90)]
    cv = KFold(5, shuffle=True, random_state=0)
    oof = oof_predict_proba(_Memorizer(), X, y, cv=cv)
    # no row was predicted by a model that had seen it
    np.testing.assert_allclose(oof, 1 / K)
    # while the refitted model memorises everything
    assert np.all(_Memorizer().fit(X, y).predict_proba(X).max(axis=1) == 1)
    # a 1-NN on random labels: perfect in-sample, near chance out of fold
    knn = TaxonomyAligned(KNeighborsClassifier(n_neighbors=1))
    ens = GreedyOOFEnsemble([("knn", knn), ("memo", _Memorizer())], cv=cv).fit(X, y)
    assert ens.candidate_scores_.max() < 0.5
    assert hierarchical_f1_score(y, knn.fit(X, y).predict(X)) == 1.0


def test_fit_on_estimators_end_to_end():
    X, y = _labelled_data(np.random.RandomState(2), n=150)
    cands = [
        ("lr", TaxonomyAligned(LogisticRegression(max_iter=200))),
        ("nb", TaxonomyAligned(GaussianNB())),
        ("knn", TaxonomyAligned(KNeighborsClassifier(n_neighbors=5))),
    ]
    ens = GreedyOOFEnsemble(cands, random_state=0).fit(X, y)
    assert list(ens.classes_) == list(BST.leaves)
    assert ens.oof_score_ >= ens.candidate_scores_.max()
    assert len(ens.estimators_) == len(ens.selected_)
    proba = ens.predict_proba(X[:7])
    assert proba.shape == (7, K)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(ens.predict(X)) <= set(y)
    # the same candidates computed elsewhere give the same selection
    oof = oof_predict_proba(cands, X, y, cv=ens.cv, random_state=0)
    again = GreedyOOFEnsemble(random_state=0).fit_oof(oof, y)
    assert again.selected_ == ens.selected_
    np.testing.assert_allclose(again.weights_, ens.weights_)


def test_oof_keeps_labels_as_given():
    # cross_val_predict would re-encode {"fx-o", "ss-n"} as {0, 1} = {"m-sp", "m-si"}.
    rng = np.random.RandomState(4)
    y = np.array(["ss-n", "fx-o"] * 30, dtype=object)
    X = rng.normal(size=(60, 2)) + (y == "fx-o")[:, None] * 4
    oof = oof_predict_proba(TaxonomyAligned(GaussianNB()), X, y, cv=3, random_state=0)
    used = np.flatnonzero(oof.sum(axis=0) > 0)
    assert [BST.leaves[i] for i in used] == ["fx-o", "ss-n"]
    assert hierarchical_f1_score(y, BST.decode(oof.argmax(axis=1))) > 0.9


def test_cv_must_partition_the_samples():
    X, y = _labelled_data(np.random.RandomState(3))
    with pytest.raises(ValueError, match="exactly one test fold"):
        oof_predict_proba(TaxonomyAligned(GaussianNB()), X, y, cv=ShuffleSplit(3, random_state=0))


def test_taxonomy_aligned_pads_missing_classes():
    X = np.array([[0.0], [0.1], [5.0], [5.1]])
    y = np.array(["ss-s", "ss-s", "is-p", "is-p"], dtype=object)  # alphabetical != taxonomy
    clf = TaxonomyAligned(GaussianNB()).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (4, K)
    assert proba[:, BST.leaves.index("ss-s")][:2].min() > 0.9
    assert proba[:, BST.leaves.index("is-p")][2:].min() > 0.9
    np.testing.assert_array_equal(clf.predict(X), y)
    others = np.delete(np.arange(K), [BST.leaves.index("ss-s"), BST.leaves.index("is-p")])
    assert np.all(proba[:, others] == 0)


def test_fit_requires_estimators():
    with pytest.raises(ValueError, match="fit_oof"):
        GreedyOOFEnsemble().fit(np.zeros((4, 2)), ["m-sp"] * 4)
    with pytest.raises(ValueError, match="unique"):
        GreedyOOFEnsemble([("a", GaussianNB()), ("a", GaussianNB())]).fit(
            np.zeros((4, 2)), ["m-sp"] * 4
        )


def test_parallel_fits_match_sequential():
    from joblib import parallel_backend

    X, y = _labelled_data(np.random.RandomState(5), n=90)
    cands = [
        ("nb", TaxonomyAligned(GaussianNB())),
        ("knn", TaxonomyAligned(KNeighborsClassifier(5))),
    ]
    seq = GreedyOOFEnsemble(cands, cv=3, random_state=0).fit(X, y)
    with parallel_backend("threading"):  # any joblib backend (dask, ray) plugs in here
        par = GreedyOOFEnsemble(cands, cv=3, random_state=0, n_jobs=2).fit(X, y)
    assert par.selected_ == seq.selected_
    np.testing.assert_array_equal(par.oof_proba_, seq.oof_proba_)
    np.testing.assert_array_equal(par.predict_proba(X), seq.predict_proba(X))
