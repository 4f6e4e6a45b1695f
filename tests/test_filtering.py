"""GraNd / EL2N scores, GrandEL2NFilter and FilteredClassifier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mesh import _filter_scores
from sklearn_mesh.filtering import (
    FilteredClassifier,
    GrandEL2NFilter,
    _keep_mask,
    el2n_scores,
    grand_scores,
)

TINY = dict(n_runs=1, n_epochs=2, hidden_units=4, random_state=0)


def _blobs(n_per_class=(15, 15, 10), n_features=3, seed=0, flip=3):
    rng = np.random.RandomState(seed)
    centers = rng.normal(0, 3, (len(n_per_class), n_features))
    X = np.concatenate([rng.normal(c, 1.0, (k, n_features)) for c, k in zip(centers, n_per_class)])
    y = np.concatenate([[c] * k for c, k in enumerate(n_per_class)])
    flipped = rng.choice(len(y), flip, replace=False)
    y[flipped] = (y[flipped] + 1) % len(n_per_class)
    return X, y, flipped


# ----------------------------------------------------------------------- GraNd reference
class _TinyNet(torch.nn.Module):
    """Odd on purpose: a frozen parameter, a buffer and a LayerNorm."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.lin = torch.nn.Linear(n_features, 5)
        self.norm = torch.nn.LayerNorm(5)
        self.out = torch.nn.Linear(5, n_classes)
        self.frozen = torch.nn.Parameter(torch.randn(n_classes), requires_grad=False)
        self.register_buffer("shift", torch.randn(n_classes))

    def forward(self, x):
        return self.out(torch.tanh(self.norm(self.lin(x)))) + self.frozen + self.shift


def _loop_grad_norms(model, X, y):
    """Naive reference: one torch.autograd.grad call per sample."""
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for i in range(X.shape[0]):
        loss = torch.nn.functional.cross_entropy(model(X[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        out.append(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item())
    return np.array(out)


@pytest.mark.parametrize("factory", [None, _TinyNet])
@pytest.mark.parametrize("hidden_units", [0, 6])
@pytest.mark.parametrize("method, chunk_size", [("vmap", None), ("vmap", 3), ("auto", None)])
def test_grad_norms_match_per_sample_autograd_loop(factory, hidden_units, method, chunk_size):
    torch.manual_seed(1)
    X = torch.randn(11, 4)
    y = torch.randint(0, 3, (11,))
    model = _filter_scores.build_model(factory, 4, 3, hidden_units=hidden_units).eval()
    got = _filter_scores.grad_norms(model, X, y, chunk_size=chunk_size, method=method)
    np.testing.assert_allclose(got, _loop_grad_norms(model, X, y), rtol=1e-5, atol=1e-7)


def test_closed_form_applies_only_to_all_linear_models():
    X, y = torch.randn(5, 4), torch.randint(0, 3, (5,))
    mlp = _filter_scores.build_model(None, 4, 3, hidden_units=6).eval()
    assert _filter_scores._linear_grad_norms(mlp, X, y) is not None
    assert _filter_scores._linear_grad_norms(_TinyNet(4, 3).eval(), X, y) is None  # LayerNorm
    mlp.net[0].weight.requires_grad_(False)  # frozen first layer: only trainable ones count
    np.testing.assert_allclose(
        _filter_scores.grad_norms(mlp, X, y), _loop_grad_norms(mlp, X, y), rtol=1e-5, atol=1e-7
    )


def test_grand_scores_public_path_matches_loop_at_initialisation():
    X, y, _ = _blobs()
    models = []

    def factory(n_features, n_classes):
        models.append(_TinyNet(n_features, n_classes))
        return models[-1]

    s = grand_scores(X, y, module=factory, n_epochs=0, n_runs=1, standardize=False, random_state=3)
    ref = _loop_grad_norms(models[0].eval(), torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y))
    np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-7)


def test_el2n_scores_match_their_probabilities_and_average_runs():
    X, y, _ = _blobs()
    s1, p1 = el2n_scores(X, y, n_runs=1, n_epochs=3, hidden_units=8, random_state=0, return_proba=True)
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(s1, np.linalg.norm(p1 - onehot, axis=1), atol=1e-12)
    s3 = el2n_scores(X, y, n_runs=3, n_epochs=3, hidden_units=8, random_state=0)
    assert not np.allclose(s1, s3)  # averaging over more runs changes the scores
    assert np.all((s3 >= 0) & (s3 <= np.sqrt(2)))


def test_scores_deterministic_for_random_state_and_out_of_fold_probabilities():
    X, y, _ = _blobs()
    kw = dict(n_runs=2, n_epochs=3, hidden_units=8, cv=3)
    a, pa = grand_scores(X, y, random_state=5, return_proba=True, **kw)
    b = grand_scores(X, y, random_state=5, **kw)
    c = grand_scores(X, y, random_state=6, **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # out-of-fold: each sample is scored exactly once per run -> averaged rows sum to 1
    np.testing.assert_allclose(pa.sum(axis=1), 1.0, atol=1e-9)


def test_scoring_leaves_the_global_torch_rng_alone():
    X, y, _ = _blobs()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    el2n_scores(X, y, **TINY)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_flipped_labels_score_high():
    X, y, flipped = _blobs(n_per_class=(40, 40, 40), flip=6, seed=2)
    filt = GrandEL2NFilter("intersection", prune_fraction=0.05, n_runs=2, n_epochs=20,
                           hidden_units=0, lr=0.02, batch_size=16, cv=3, random_state=0)
    filt.fit(X, y)
    for name, s in filt.scores_.items():
        top = np.argsort(-s)[: len(flipped)]
        assert len(set(top) & set(flipped)) >= len(flipped) - 1, name
    removed = set(np.flatnonzero(~filt.support_))
    assert len(removed & set(flipped)) >= len(removed) - 1


# ----------------------------------------------------------------------- EL2N properties
@settings(deadline=None, max_examples=40)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 30),
    k=st.integers(2, 6),
    scale=st.floats(0.0, 60.0),
)
def test_el2n_in_range_and_zero_only_for_correct_one_hot(seed, n, k, scale):
    rng = np.random.RandomState(seed)
    logits = rng.normal(0, 1, (n, k)) * scale
    proba = np.exp(logits - logits.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    y = rng.randint(0, k, n)
    # some exact one-hot rows: correct ones and wrong ones
    exact = rng.rand(n) < 0.3
    hot = np.where(rng.rand(n) < 0.5, y, (y + 1) % k)
    proba[exact] = np.eye(k)[hot[exact]]
    s = _filter_scores.el2n_from_proba(proba, y)
    assert np.all(s >= 0) and np.all(s <= np.sqrt(2))
    correct_one_hot = np.all(proba == np.eye(k)[y], axis=1)
    np.testing.assert_array_equal(s == 0, correct_one_hot)
    np.testing.assert_allclose(s[exact & (hot != y)], np.sqrt(2))


# ----------------------------------------------------------------------- selection
@settings(deadline=None, max_examples=60)
@given(
    counts=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    fraction=st.floats(0.0, 0.99),
    min_per_class=st.integers(0, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_kept_set_has_documented_size(counts, fraction, min_per_class, seed):
    rng = np.random.RandomState(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(y)
    n = y.size
    eligible = rng.rand(n) < 0.85
    scores = rng.rand(n)
    keys = rng.randint(0, 2**62, n).astype(np.uint64)
    m = eligible.sum()
    m_c = np.bincount(y[eligible], minlength=len(counts))
    protected = np.minimum(min_per_class, m_c)
    # per class
    keep = _keep_mask(scores, y, eligible, fraction, "per_class", min_per_class, keys, "el2n")
    assert not np.any(keep & ~eligible)
    expected = m_c - np.minimum(np.floor(fraction * m_c + 1e-9).astype(int), m_c - protected)
    np.testing.assert_array_equal(np.bincount(y[keep], minlength=len(counts)), expected)
    # global: exact size, or a clear error when the minimum cannot be kept
    n_prune = int(np.floor(fraction * m + 1e-9))
    if n_prune > m - protected.sum():
        with pytest.raises(ValueError, match="min_per_class"):
            _keep_mask(scores, y, eligible, fraction, "global", min_per_class, keys, "el2n")
        return
    keep = _keep_mask(scores, y, eligible, fraction, "global", min_per_class, keys, "el2n")
    assert keep.sum() == m - n_prune
    assert np.all(np.bincount(y[keep], minlength=len(counts)) >= protected)
    # the pruned samples are the highest-scoring unprotected ones
    if n_prune and min_per_class == 0:
        assert scores[eligible & ~keep].min() >= scores[keep].max()


def _fake_scores(monkeypatch, table):
    """Make the filter see chosen scores (indexed by the first feature)."""

    def fake(X, y_idx, n_classes, *, methods, **kwargs):
        ids = X[:, 0].astype(int)
        out = {m: np.asarray(table[m], dtype=float)[ids] for m in methods}
        out["proba"] = np.full((X.shape[0], n_classes), 1.0 / n_classes)
        return out

    monkeypatch.setattr(_filter_scores, "compute_scores", fake)


def test_union_single_intersection_with_chosen_scores(monkeypatch):
    n = 10
    X = np.c_[np.arange(n), np.zeros(n)]
    y = np.array([0] * 5 + [1] * 5)
    el2n = [9, 1, 2, 3, 4, 9, 1, 2, 3, 4]
    grand = [1, 9, 2, 3, 4, 1, 2, 3, 4, 9]
    _fake_scores(monkeypatch, {"el2n": el2n, "grand": grand})
    kw = dict(prune_fraction=0.2, prune_scope="per_class")
    sup = {m: GrandEL2NFilter(m, **kw).fit(X, y).support_ for m in ("el2n", "grand", "union", "intersection")}
    assert np.flatnonzero(~sup["el2n"]).tolist() == [0, 5]
    assert np.flatnonzero(~sup["grand"]).tolist() == [1, 9]
    assert sup["union"].all()
    assert np.flatnonzero(~sup["intersection"]).tolist() == [0, 1, 5, 9]
    filt = GrandEL2NFilter("intersection", **kw).fit(X, y)
    assert filt.report_[["flagged_el2n", "flagged_grand", "removed", "kept"]].to_numpy().tolist() == [
        [1, 1, 2, 3], [1, 1, 2, 3]
    ]
    # disjoint flags in a 2-sample class: the intersection would empty it
    _fake_scores(monkeypatch, {"el2n": [9, 1], "grand": [1, 9]})
    with pytest.raises(ValueError, match="intersection.*min_per_class"):
        GrandEL2NFilter("intersection", prune_fraction=0.5).fit(np.c_[[0, 1], [0, 0]], [0, 0])
    kept = GrandEL2NFilter("intersection", prune_fraction=0.5, min_per_class=0).fit(
        np.c_[[0, 1], [0, 0]], [0, 0]
    )
    assert kept.support_.sum() == 0


@settings(deadline=None, max_examples=4)
@given(seed=st.integers(0, 2**31 - 1), fraction=st.sampled_from([0.1, 0.3, 0.5]),
       scope=st.sampled_from(["global", "per_class"]))
def test_union_contains_single_contains_intersection(seed, fraction, scope):
    X, y, _ = _blobs(seed=seed % 1000)
    # min_per_class=0: an intersection may legitimately empty a small class (tested apart)
    kw = dict(TINY, prune_fraction=fraction, prune_scope=scope, min_per_class=0, random_state=seed)
    sup = {m: GrandEL2NFilter(m, **kw).fit(X, y).support_ for m in ("el2n", "grand", "union", "intersection")}
    for single in ("el2n", "grand"):
        assert np.all(sup["union"] >= sup[single])
        assert np.all(sup[single] >= sup["intersection"])
        if scope == "global":  # documented size: m - floor(f * m)
            assert sup[single].sum() == len(y) - int(np.floor(fraction * len(y) + 1e-9))


@settings(deadline=None, max_examples=5)
@given(seed=st.integers(0, 2**31 - 1), method=st.sampled_from(["el2n", "grand", "union"]),
       cv=st.sampled_from([None, 3]))
def test_permuting_rows_permutes_the_result(seed, method, cv):
    X, y, _ = _blobs(seed=seed % 1000)
    conf = np.random.RandomState(seed).randint(1, 6, len(y)).astype(float)
    conf[:2] = np.nan
    perm = np.random.RandomState(seed + 1).permutation(len(y))
    kw = dict(TINY, prune_fraction=0.3, cv=cv, random_state=seed)
    a = GrandEL2NFilter(method, **kw).fit(X, y, confidence=conf)
    b = GrandEL2NFilter(method, **kw).fit(X[perm], y[perm], confidence=conf[perm])
    np.testing.assert_array_equal(a.support_[perm], b.support_)
    for m in a.scores_:
        np.testing.assert_array_equal(a.scores_[m][perm], b.scores_[m])
    pd.testing.assert_frame_equal(a.report_, b.report_)


# ----------------------------------------------------------------------- confidence
def test_confidence_rule():
    X, y, _ = _blobs()
    conf = np.full(len(y), 4.0)
    conf[[0, 1, 20]] = 1
    conf[[2, 3]] = np.nan  # unknown confidence is never excluded
    conf[4] = 2
    f = GrandEL2NFilter(prune_fraction=0.0).fit(X, y, confidence=conf)
    assert f.scores_ == {} and f.scoring_proba_ is None  # fraction 0: no scoring at all
    np.testing.assert_array_equal(np.flatnonzero(~f.support_), [0, 1, 20])
    f = GrandEL2NFilter(prune_fraction=0.0, exclude_confidence=(1, 2)).fit(X, y, confidence=conf)
    np.testing.assert_array_equal(np.flatnonzero(~f.support_), [0, 1, 4, 20])
    assert GrandEL2NFilter(prune_fraction=0.0).fit(X, y).support_.all()  # no confidence: no rule
    assert GrandEL2NFilter(prune_fraction=0.0, exclude_confidence=()).fit(X, y, confidence=conf).support_.all()
    # excluded samples take no part in scoring and get NaN scores; pruning is over the rest
    f = GrandEL2NFilter(prune_fraction=0.25, **TINY).fit(X, y, confidence=conf)
    assert np.isnan(f.scores_["el2n"][[0, 1, 20]]).all() and np.isfinite(np.delete(f.scores_["el2n"], [0, 1, 20])).all()
    m = len(y) - 3
    assert f.support_.sum() == m - int(np.floor(0.25 * m))
    assert f.report_["excluded_confidence"].sum() == 3
    assert (f.report_["kept"] + f.report_["removed"] == f.report_["n_samples"]).all()


def test_confidence_errors():
    X, y, _ = _blobs()
    with pytest.raises(ValueError, match="confidence must be a 1-D array with one value per sample"):
        GrandEL2NFilter(prune_fraction=0.0).fit(X, y, confidence=np.ones(len(y) - 1))
    with pytest.raises(ValueError, match="confidence must be a 1-D array with one value per sample"):
        GrandEL2NFilter(prune_fraction=0.0).fit(X, y, confidence=np.ones((len(y), 2)))
    conf = np.where(y == 2, 1.0, 5.0)  # a whole class at confidence 1
    with pytest.raises(ValueError, match="confidence rule.*min_per_class"):
        GrandEL2NFilter(prune_fraction=0.0).fit(X, y, confidence=conf)
    f = GrandEL2NFilter(prune_fraction=0.0, min_per_class=0).fit(X, y, confidence=conf)
    assert f.report_.loc[2, "kept"] == 0


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params, match",
    [
        (dict(prune_fraction=1.0), "prune_fraction"),
        (dict(prune_fraction=-0.1), "prune_fraction"),
        (dict(method="random"), "method"),
        (dict(prune_scope="class"), "prune_scope"),
        (dict(min_per_class=-1), "min_per_class"),
    ],
)
def test_invalid_parameters(params, match):
    X, y, _ = _blobs()
    with pytest.raises(InvalidParameterError, match=match):
        GrandEL2NFilter(**params).fit(X, y)


def test_invalid_fraction_dict_and_impossible_global_prune():
    X, y, _ = _blobs()
    with pytest.raises(ValueError, match=r"prune_fraction\['grand'\] must be a number in \[0, 1\)"):
        GrandEL2NFilter("union", prune_fraction={"el2n": 0.2, "grand": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="missing"):
        GrandEL2NFilter("union", prune_fraction={"el2n": 0.2}).fit(X, y)
    with pytest.raises(ValueError, match="push a class below min_per_class"):
        GrandEL2NFilter(prune_fraction=0.9, min_per_class=10, **TINY).fit(X, y)
    with pytest.raises(ValueError, match="cv must be"):
        el2n_scores(X, y, cv=1)
    from sklearn.model_selection import ShuffleSplit, StratifiedKFold

    with pytest.raises(ValueError, match="exactly one test fold"):
        el2n_scores(X, y, cv=ShuffleSplit(3, test_size=0.2, random_state=0), n_runs=1, n_epochs=0)
    s, p = el2n_scores(X, y, cv=StratifiedKFold(3), n_runs=1, n_epochs=1, return_proba=True)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="one label per row"):
        el2n_scores(X, y[:-1])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        el2n_scores(X, y, module=lambda d, k: "not a module", n_runs=1)
    with pytest.raises(ValueError, match="logits of shape"):
        el2n_scores(X, y, module=lambda d, k: torch.nn.Linear(d, k + 1), n_runs=1, n_epochs=0)


def test_per_method_fractions():
    X, y, _ = _blobs()
    f = GrandEL2NFilter("union", prune_fraction={"el2n": 0.1, "grand": 0.3}, **TINY).fit(X, y)
    assert (~f.masks_["el2n"]).sum() == 4 and (~f.masks_["grand"]).sum() == 12
    np.testing.assert_array_equal(f.support_, f.masks_["el2n"] | f.masks_["grand"])


# ----------------------------------------------------------------------- sampler protocol
def test_fit_resample_keeps_pandas_types_and_string_labels():
    X, y, _ = _blobs()
    labels = np.array(["fx-o", "m-sp", "sp-s"], dtype=object)[y]
    Xdf = pd.DataFrame(X, columns=["a", "b", "c"], index=np.arange(len(y)) + 100)
    ys = pd.Series(labels, index=Xdf.index, name="label")
    f = GrandEL2NFilter(prune_fraction=0.2, **TINY)
    Xr, yr = f.fit_resample(Xdf, ys)
    assert isinstance(Xr, pd.DataFrame) and isinstance(yr, pd.Series)
    assert Xr.index.tolist() == (f.sample_indices_ + 100).tolist() == yr.index.tolist()
    assert list(f.classes_) == ["fx-o", "m-sp", "sp-s"]
    assert list(f.report_.index) == ["fx-o", "m-sp", "sp-s"]
    assert f.feature_names_in_.tolist() == ["a", "b", "c"]
    Xa, ya = GrandEL2NFilter(prune_fraction=0.2, **TINY).fit_resample(X, labels)
    np.testing.assert_array_equal(Xa, X[f.support_])
    np.testing.assert_array_equal(ya, labels[f.support_])


def test_in_imblearn_pipeline_drops_rows_and_routes_confidence():
    imblearn_pipeline = pytest.importorskip("imblearn.pipeline")
    X, y, _ = _blobs()
    conf = np.full(len(y), 3.0)
    conf[:4] = 1
    pipe = imblearn_pipeline.Pipeline(
        [("filter", GrandEL2NFilter(prune_fraction=0.25, **TINY)), ("clf", LogisticRegression())]
    )
    pipe.fit(X, y)
    filt = pipe.named_steps["filter"]
    assert filt.support_.sum() == len(y) - 10
    assert pipe.predict(X).shape == (len(y),)  # predicting never drops rows
    # imbalanced-learn 0.14 passes no `step__param` to fit_resample without metadata
    # routing, so confidence reaches a sampler in its Pipeline through routing only
    with sklearn.config_context(enable_metadata_routing=True):
        filt = GrandEL2NFilter(prune_fraction=0.0).set_fit_request(confidence=True)
        pipe = imblearn_pipeline.Pipeline([("filter", filt), ("clf", LogisticRegression())])
        pipe.fit(X, y, confidence=conf)
        assert pipe.named_steps["filter"].excluded_.sum() == 4
        # a class defined after imbalanced-learn's import also has set_fit_resample_request
        class _LateFilter(GrandEL2NFilter):
            pass

        late = _LateFilter(prune_fraction=0.0).set_fit_resample_request(confidence=True)
        pipe = imblearn_pipeline.Pipeline([("filter", late), ("clf", LogisticRegression())])
        assert pipe.fit(X, y, confidence=conf).named_steps["filter"].excluded_.sum() == 4
        with pytest.raises(Exception, match="confidence"):  # not requested -> sklearn refuses
            imblearn_pipeline.Pipeline(
                [("filter", GrandEL2NFilter(prune_fraction=0.0)), ("clf", LogisticRegression())]
            ).fit(X, y, confidence=conf)


# ----------------------------------------------------------------------- FilteredClassifier
class _RecordingLR(LogisticRegression):
    """LogisticRegression that remembers what fit received."""

    def fit(self, X, y, sample_weight=None):
        self.fit_rows_ = np.asarray(X).copy()
        self.fit_weight_ = sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def test_filtered_classifier_fits_on_kept_rows_with_subset_sample_weight():
    X, y, _ = _blobs()
    w = np.linspace(0.5, 2.0, len(y))
    conf = np.full(len(y), 3.0)
    conf[5] = 1
    clf = FilteredClassifier(GrandEL2NFilter(prune_fraction=0.2, **TINY), _RecordingLR())
    clf.fit(X, y, sample_weight=w, confidence=conf)
    sup = clf.filter_.support_
    assert not sup[5] and clf.filter_.excluded_.sum() == 1
    np.testing.assert_array_equal(clf.estimator_.fit_rows_, X[sup])
    np.testing.assert_array_equal(clf.estimator_.fit_weight_, w[sup])
    ref = LogisticRegression().fit(X[sup], y[sup], sample_weight=w[sup])
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X))
    assert clf.predict(X).shape == (len(y),)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])


def test_filtered_classifier_in_pipeline_cv_and_grid_search():
    X, y, _ = _blobs(n_per_class=(20, 20, 20))
    conf = np.full(len(y), 4.0)
    conf[::7] = 1
    pipe = make_pipeline(
        StandardScaler(), FilteredClassifier(GrandEL2NFilter(prune_fraction=0.2, **TINY), _RecordingLR())
    )
    pred = cross_val_predict(pipe, X, y, cv=3, params={"filteredclassifier__confidence": conf})
    assert pred.shape == (len(y),)
    # the filter only ever saw a training fold: each fit used < 2/3 of the rows
    pipe.fit(X[:40], y[:40], filteredclassifier__confidence=conf[:40])
    inner = pipe[-1]
    assert inner.filter_.support_.shape == (40,)
    assert inner.estimator_.fit_rows_.shape[0] == inner.filter_.support_.sum() < 40
    grid = GridSearchCV(
        FilteredClassifier(GrandEL2NFilter(**TINY), LogisticRegression()),
        {"filter__prune_fraction": [0.0, 0.3]}, cv=3,
    ).fit(X, y, confidence=conf)
    assert grid.best_params_["filter__prune_fraction"] in (0.0, 0.3)
    assert grid.predict(X).shape == (len(y),)


def test_filtered_classifier_metadata_routing():
    X, y, _ = _blobs(n_per_class=(20, 20, 20))
    conf = np.full(len(y), 4.0)
    conf[::6] = 1
    w = np.ones(len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        clf = FilteredClassifier(
            GrandEL2NFilter(prune_fraction=0.0).set_fit_request(confidence=True),
            _RecordingLR().set_fit_request(sample_weight=True),
        )
        clf.fit(X, y, confidence=conf, sample_weight=w)
        assert clf.filter_.excluded_.sum() == 10
        assert clf.estimator_.fit_weight_.shape == (50,)
        pred = cross_val_predict(clf, X, y, cv=3, params={"confidence": conf, "sample_weight": w})
        assert pred.shape == (len(y),)
        with pytest.raises(Exception, match="confidence"):
            FilteredClassifier(GrandEL2NFilter(prune_fraction=0.0), LogisticRegression()).fit(
                X, y, confidence=conf
            )


def test_filtered_classifier_accepts_any_sampler():
    under = pytest.importorskip("imblearn.under_sampling")
    X, y, _ = _blobs()
    clf = FilteredClassifier(under.RandomUnderSampler(random_state=0), LogisticRegression()).fit(X, y)
    assert clf.estimator_.n_features_in_ == 3
    assert np.bincount(y[clf.filter_.sample_indices_]).tolist() == [10, 10, 10]
