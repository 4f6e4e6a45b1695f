"""Tests for MESHSystem: Systems 1–4 end to end, holdout isolation, cache, submission."""

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from sklearn_mesh.classifier import HProxyClassifier
from sklearn_mesh.ensemble import GreedyOOFEnsemble
from sklearn_mesh.filtering import FilteredClassifier
from sklearn_mesh.fusion import SelectiveKernelFusion
from sklearn_mesh.metrics import hierarchical_f1_score
from sklearn_mesh.system import SUBMISSION_COLUMNS, MESHSystem, submission_frame
from sklearn_mesh.taxonomy import BST

LABELS = np.array(["fx-o", "fx-v", "m-sp", "sp-s", "ss-n"])
CENTERS = np.random.RandomState(42).normal(size=(len(LABELS), 16)) * 1.5


def make(n, noise=0.0, seed=0):
    rng = np.random.RandomState(seed)
    k = rng.randint(0, len(LABELS), n)
    X = CENTERS[k] + rng.normal(size=(n, 16))
    y = LABELS[k].astype(object)
    if noise:
        flip = rng.rand(n) < noise
        y[flip] = LABELS[rng.randint(0, len(LABELS), flip.sum())]
    return X.astype(np.float32), y


def tiny(**params):
    """A tiny HProxyClassifier template."""
    base = dict(embedding_dim=8, max_epochs=3, lr=2e-2, patience=2, batch_size=32)
    base.update(params)
    return HProxyClassifier(**base)


def small_system(**params):
    base = dict(
        feature_sets={"lo": slice(0, 8), "all": None},
        pretrain_objectives=(None, "hproxy", "proxy_anchor+focal"),
        finetune_objectives=("ce",),
        filters=(None, "el2n"),
        estimator=tiny(),
        cv=2,
        random_state=0,
    )
    base.update(params)
    return MESHSystem.small(**base)


@pytest.fixture(scope="module")
def data():
    X, y = make(140, seed=0)
    Xp, yp = make(160, noise=0.3, seed=1)
    Xh, yh = make(80, seed=2)
    return X, y, Xp, yp, Xh, yh


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mesh_cache")


@pytest.fixture(scope="module")
def fitted(data, cache_dir):
    X, y, Xp, yp, Xh, yh = data
    mesh = small_system(cache_dir=str(cache_dir))
    ids = np.array([f"clip{i:04d}" for i in range(len(y))])
    return mesh.fit(X, y, X_pretrain=Xp, y_pretrain=yp, holdout=(Xh, yh), ids=ids)


# ------------------------------------------------------------------ systems 1-4
@pytest.mark.slow
def test_four_systems_end_to_end(fitted, data):
    X, y, *_ , Xh, yh = data
    cand = fitted.candidates_
    # 2 feature sets x (no pre-training + 2 objectives x 2 filters) x 1 fine-tuning
    assert len(cand) == 10 and cand["name"].is_unique
    table = fitted.systems_.set_index("system")
    assert table.loc[:, "available"].all()
    assert table["n_candidates"].tolist() == [10, 10, 4, 4]
    pre = dict(zip(cand["name"], cand["pretrain"]))
    assert {pre[n] for n in fitted.members_[3]} == {"hproxy"}
    assert {pre[n] for n in fitted.members_[4]} == {"proxy_anchor+focal"}
    assert not set(fitted.members_[3]) & set(fitted.members_[4])
    assert isinstance(fitted.ensembles_[2], SelectiveKernelFusion)
    for s in (1, 3, 4):
        assert isinstance(fitted.ensembles_[s], GreedyOOFEnsemble)
        assert fitted.ensembles_[s].selected_ == fitted.members_[s]
    assert fitted.oof_score_ == pytest.approx(table.loc[1, "oof_hf"])
    assert fitted.ids_[0] == "clip0000" and fitted.ensembles_[1].ids_[0] == "clip0000"
    assert sorted(np.bincount(fitted.folds_)) == [70, 70]
    # every system predicts, rows sum to 1, and predict_proba_systems agrees
    all_p = fitted.predict_proba_systems(Xh)
    assert sorted(all_p) == [1, 2, 3, 4]
    for s in (1, 2, 3, 4):
        mesh = joblib.load(_dump(fitted)) if s == 4 else fitted
        proba = mesh.set_params(system=s).predict_proba(Xh)
        assert proba.shape == (len(Xh), len(BST.leaves))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_allclose(proba, all_p[s], atol=1e-12)
    fitted.set_params(system=1)
    # the systems learned something on this easy problem
    assert table.loc[1, "oof_hf"] > 0.5 and table.loc[1, "holdout_hf"] > 0.5


def _dump(est):
    import io

    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    return buf


def test_candidate_table_matches_a_naive_recomputation(fitted, data):
    X, y, *_ = data
    for _, row in fitted.candidates_.iterrows():
        oof = fitted.oof_probas_[row["name"]]
        assert oof.shape == (len(y), 23)
        np.testing.assert_allclose(oof.sum(axis=1), 1.0, atol=1e-6)
        pred = np.asarray(BST.leaves, dtype=object)[oof.argmax(axis=1)]
        assert row["oof_hf"] == pytest.approx(hierarchical_f1_score(y, pred))
        filt = row["filter"] if pd.notna(row["filter"]) else None
        kept = fitted.pretrain_masks_[(row["feature_set"], filt)]
        expected = int(kept.sum()) if pd.notna(row["pretrain"]) else 0
        assert row["n_pretrain"] == expected
    # EL2N filtering removed 20% of the pre-training set (the small() filter)
    for fs in ("lo", "all"):
        assert fitted.pretrain_masks_[(fs, "el2n")].sum() == 160 - 32
        assert fitted.pretrain_masks_[(fs, None)].all()


def test_test_time_outputs_come_from_refit_models_through_the_feature_sets(fitted, data):
    """Naive reference for System 1: weights . member outputs on sliced columns."""
    Xh = data[4]
    ens = fitted.ensembles_[1]
    out = 0.0
    for name, w in zip(ens.selected_, ens.weights_):
        cols = slice(0, 8) if name.startswith("lo|") else slice(None)
        out = out + w * fitted.estimators_[name].predict_proba(Xh[:, cols])
    out = out / out.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fitted.set_params(system=1).predict_proba(Xh), out, atol=1e-10)
    # each fold model differs from the refit model (OOF outputs are not refit outputs)
    name = ens.selected_[0]
    cols = slice(0, 8) if name.startswith("lo|") else slice(None)
    refit = fitted.estimators_[name].predict_proba(data[0][:, cols])
    assert not np.allclose(refit, fitted.oof_probas_[name])


# ------------------------------------------------------ holdout and cache resume
@pytest.mark.slow
def test_cache_resume_and_holdout_never_used_for_selection(fitted, data, cache_dir, monkeypatch):
    X, y, Xp, yp, Xh, yh = data
    calls = []
    original = HProxyClassifier.fit

    def spy(self, *args, **kwargs):
        calls.append(len(args[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HProxyClassifier, "fit", spy)
    # a holdout with scrambled labels: if it played any part in selection, the systems
    # would differ
    rng = np.random.RandomState(5)
    wrong = rng.permutation(yh)
    again = small_system(cache_dir=str(cache_dir))
    again.fit(X, y, X_pretrain=Xp, y_pretrain=yp, holdout=(Xh, wrong))
    assert calls == []  # nothing retrained
    assert again.cache_info_["candidate"] == {"hits": 10, "misses": 0}
    assert again.cache_info_["pretrain"] == {"hits": 8, "misses": 0}
    assert again.cache_info_["filter"] == {"hits": 2, "misses": 0}
    assert again.candidates_["cached"].all() and not fitted.candidates_["cached"].any()
    for s in (1, 2, 3, 4):
        assert again.members_[s] == fitted.members_[s]
    pd.testing.assert_series_equal(again.systems_["oof_hf"], fitted.systems_["oof_hf"])
    np.testing.assert_allclose(
        again.predict_proba_systems(Xh)[2], fitted.predict_proba_systems(Xh)[2], atol=1e-12
    )
    assert again.holdout_score_ != fitted.holdout_score_
    # a changed grid value retrains only the new candidates
    calls.clear()
    more = small_system(cache_dir=str(cache_dir), finetune_objectives=("ce", "focal"))
    more.fit(X, y, X_pretrain=Xp, y_pretrain=yp)
    assert more.cache_info_["candidate"] == {"hits": 10, "misses": 10}
    assert more.cache_info_["pretrain"]["misses"] == 0
    assert len(calls) == 10 * 3  # 2 folds + 1 refit per new candidate
    assert not hasattr(more, "holdout_scores_")


def test_holdout_scores_are_reported(fitted, data):
    Xh, yh = data[4], data[5]
    systems, cand = fitted.evaluate(Xh, yh)
    assert list(systems["system"]) == [1, 2, 3, 4]
    pd.testing.assert_series_equal(
        fitted.systems_["holdout_hf"], systems["holdout_hf"], check_names=False
    )
    pred = fitted.set_params(system=1).predict(Xh)
    assert fitted.holdout_score_ == pytest.approx(hierarchical_f1_score(yh, pred))
    assert set(cand.index) == set(fitted.candidates_["name"])


# ------------------------------------------------------------------ submission
def test_submission_csv(fitted, data, tmp_path):
    Xh = data[4]
    ids = np.array([f"{i:05d}" for i in range(len(Xh))], dtype=object)
    path = tmp_path / "submission.csv"
    table = fitted.write_submission(Xh, ids, path)
    back = pd.read_csv(path, dtype={"id": str})
    assert tuple(back.columns) == SUBMISSION_COLUMNS
    assert back["id"].tolist() == ids.tolist()  # leading zeros kept
    proba = fitted.predict_proba(Xh)
    np.testing.assert_allclose(back["prediction_score"], proba.max(axis=1), rtol=1e-9)
    assert back["predicted_bst_second_level_class"].tolist() == list(fitted.predict(Xh))
    assert set(back["predicted_bst_second_level_class"]) <= set(BST.leaves)
    pd.testing.assert_frame_equal(table.astype({"id": str}), back)
    with pytest.raises(ValueError, match="one id per row|one value per sample"):
        fitted.write_submission(Xh, ids[:-1], tmp_path / "bad.csv")


def test_submission_frame_uses_leaf_names_for_integer_labels():
    proba = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    table = submission_frame(proba, [3, 4], ["a", "b", "c"])
    assert table["predicted_bst_second_level_class"].tolist() == ["b", "a"]
    assert table["prediction_score"].tolist() == [0.7, 0.5]
    with pytest.raises(ValueError, match="shape"):
        submission_frame(proba[:, :2], [3, 4], ["a", "b", "c"])


# ------------------------------------------------------------ determinism, n_jobs
@pytest.mark.slow
def test_same_seed_same_outputs_serial_and_parallel(data):
    X, y, *_ = data
    params = dict(pretrain_objectives=(None,), finetune_objectives=("ce", "focal"),
                  systems=(1, 2), fusion_max_candidates=2)
    a = small_system(n_jobs=1, **params).fit(X, y)
    b = small_system(n_jobs=2, **params).fit(X, y)
    c = small_system(random_state=1, n_jobs=1, **params).fit(X, y)
    for name in a.oof_probas_:
        np.testing.assert_allclose(a.oof_probas_[name], b.oof_probas_[name], atol=1e-12)
    assert a.members_ == b.members_
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-12)
    assert not np.allclose(a.oof_probas_[name], c.oof_probas_[name])
    assert not (set(a.systems_["system"]) - {1, 2})


# -------------------------------------------------------------- conf1, feature sets
def test_conf1_removed_from_training_folds_only(data, monkeypatch):
    X, y, *_ = data
    conf = np.where(np.arange(len(y)) % 5 == 0, 1.0, 4.0)
    sizes = []
    original = HProxyClassifier.fit

    def spy(self, Xa, ya):
        sizes.append(len(Xa))
        return original(self, Xa, ya)

    monkeypatch.setattr(HProxyClassifier, "fit", spy)
    mesh = small_system(pretrain_objectives=(None,), exclude_conf1=(False, True), systems=(1,),
                        feature_sets=None)
    mesh.fit(X, y, confidence=conf)
    drop = mesh.candidates_.query("exclude_conf1")["name"].item()
    keep = mesh.candidates_.query("not exclude_conf1")["name"].item()
    assert isinstance(mesh.estimators_[drop], FilteredClassifier)
    assert mesh.estimators_[drop].filter_.excluded_.sum() == (conf == 1).sum()
    folds = mesh.folds_
    n_conf1_train = [int(((folds != k) & (conf == 1)).sum()) for k in (0, 1)]
    expected_keep = [int((folds != k).sum()) for k in (0, 1)] + [len(y)]
    expected_drop = [int((folds != k).sum()) - n_conf1_train[k] for k in (0, 1)]
    expected_drop.append(len(y) - int((conf == 1).sum()))
    assert sorted(sizes) == sorted(expected_keep + expected_drop)
    # evaluation keeps every row: OOF outputs exist for the conf-1 clips too
    for name in (drop, keep):
        np.testing.assert_allclose(mesh.oof_probas_[name].sum(axis=1), 1.0, atol=1e-6)


def test_feature_sets_by_name_and_transformer(data):
    X, y, *_ = data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    mesh = small_system(
        pretrain_objectives=(None,), systems=(1,),
        feature_sets={"named": ["f0", "f3", "f5"], "scaled": StandardScaler()},
    ).fit(df, y)
    assert mesh.feature_transformers_["named"].indices_.tolist() == [0, 3, 5]
    assert mesh.predict(df.iloc[:5]).shape == (5,)
    name = mesh.candidates_.query("feature_set == 'named'")["name"].item()
    assert mesh.estimators_[name].n_features_in_ == 3


# ------------------------------------------------------------------- bad input
def test_errors(data):
    X, y, Xp, yp, *_ = data
    with pytest.raises(ValueError, match="X_pretrain must have the same feature columns"):
        small_system().fit(X, y, X_pretrain=Xp[:, :10], y_pretrain=yp)
    with pytest.raises(ValueError, match="needs a pre-training set"):
        small_system().fit(X, y)
    with pytest.raises(ValueError, match="system"):
        small_system(system=5).fit(X, y, X_pretrain=Xp, y_pretrain=yp)
    with pytest.raises(ValueError, match="System 3 .*no HProxy pre-training objective"):
        small_system(system=3, pretrain_objectives=(None, "proxy_anchor+focal")).fit(
            X, y, X_pretrain=Xp, y_pretrain=yp)
    with pytest.raises(ValueError, match="System 4 .*Proxy Anchor"):
        small_system(system=4, pretrain_objectives=(None,)).fit(X, y)
    with pytest.raises(ValueError, match="does not build it"):
        small_system(system=2, systems=(1,)).fit(X, y)
    with pytest.raises(ValueError, match="no confidence"):
        small_system(pretrain_objectives=(None,), exclude_conf1=(True,)).fit(X, y)
    with pytest.raises(ValueError, match="finetune_objectives has unknown values"):
        small_system(finetune_objectives=("bogus",)).fit(X, y)
    with pytest.raises(ValueError, match="filters has unknown values"):
        small_system(filters=("el3n",)).fit(X, y)
    bad = yp.copy()
    bad[0] = "not-a-class"
    with pytest.raises(ValueError, match="y_pretrain"):
        small_system().fit(X, y, X_pretrain=Xp, y_pretrain=bad)
    with pytest.raises(ValueError, match=r"y_pretrain must be a 1-D array with one value per sample \(160\)"):
        small_system().fit(X, y, X_pretrain=Xp, y_pretrain=yp[:-1])
    with pytest.raises(ValueError, match="selects no column"):
        small_system(feature_sets={"none": slice(0, 0)}).fit(X, y, X_pretrain=Xp, y_pretrain=yp)
    with pytest.raises(ValueError, match="holdout must be a pair"):
        small_system().fit(X, y, X_pretrain=Xp, y_pretrain=yp, holdout=X)
    with pytest.warns(UserWarning, match="X_pretrain is ignored"):
        small_system(pretrain_objectives=(None,), systems=(1,), finetune_objectives=("ce",),
                     feature_sets=None).fit(X, y, X_pretrain=Xp, y_pretrain=yp)


def test_predict_with_a_system_that_was_not_built(data):
    X, y, *_ = data
    mesh = small_system(pretrain_objectives=(None,), systems=(1,), feature_sets=None).fit(X, y)
    with pytest.raises(ValueError, match="System 2 was not assembled"):
        mesh.set_params(system=2).predict(X)
    with pytest.raises(ValueError, match="X has 15 features"):
        mesh.set_params(system=1).predict(X[:, :15])


# ------------------------------------------------------------ property tests
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sklearn_mesh.system import _configs, _pools  # noqa: E402


@settings(deadline=None, max_examples=30)
@given(
    n_sets=st.integers(1, 3),
    pre=st.lists(st.sampled_from([None, "hproxy", "proxy_anchor+focal"]), min_size=1,
                 max_size=3, unique=True),
    filters=st.lists(st.sampled_from([None, "el2n", "grand", "union", "intersection"]),
                     min_size=1, max_size=5, unique=True),
    ft=st.lists(st.sampled_from(["ce", "focal", "focal+hproxy"]), min_size=1, max_size=3,
                unique=True),
    c1=st.lists(st.booleans(), min_size=1, max_size=2, unique=True),
    es=st.lists(st.sampled_from(["hf", "accuracy"]), min_size=1, max_size=2, unique=True),
)
def test_grid_size_and_pools(n_sets, pre, filters, ft, c1, es):
    grid = dict(pretrain=pre, filter=filters, finetune=ft, exclude_conf1=c1, early_stopping=es)
    configs = _configs([f"set{i}" for i in range(n_sets)], grid)
    n_pre = sum(o is not None for o in pre)
    per_branch = len(ft) * len(c1) * len(es)
    expected = n_sets * ((None in pre) + n_pre * len(filters)) * per_branch
    assert len(configs) == expected
    names = [c["name"] for c in configs]
    assert len(set(names)) == len(names)
    assert all(c["filter"] is None for c in configs if c["pretrain"] is None)
    pools = _pools(configs)
    assert pools[1] == pools[2] == names
    assert not set(pools[3]) & set(pools[4])
    assert len(pools[3]) == n_sets * ("hproxy" in pre) * len(filters) * per_branch
    assert len(pools[4]) == n_sets * ("proxy_anchor+focal" in pre) * len(filters) * per_branch


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 30), st.integers(2, 6), st.integers(0, 10_000))
def test_submission_frame_matches_argmax(n, k, seed):
    rng = np.random.RandomState(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    classes = [f"c-{i}" for i in range(k)]
    table = submission_frame(proba, np.arange(n), classes)
    assert tuple(table.columns) == SUBMISSION_COLUMNS
    for i in range(n):  # naive loop reference
        best = max(range(k), key=lambda j: proba[i, j])
        assert table.loc[i, "predicted_bst_second_level_class"] == classes[best]
        assert table.loc[i, "prediction_score"] == proba[i, best]


# ------------------------------------------------------- interruption, int labels
def test_interrupted_fit_resumes_where_it_stopped(data, tmp_path, monkeypatch):
    import sklearn_mesh.system as system_mod

    X, y, *_ = data
    params = dict(pretrain_objectives=(None,), finetune_objectives=("ce", "focal", "focal+hproxy"),
                  feature_sets=None, systems=(1,), cache_dir=str(tmp_path))
    original = system_mod._run_candidate
    done = []

    def crash_on_third(*args, **kwargs):
        if len(done) == 2:
            raise KeyboardInterrupt("simulated interruption")
        done.append(args[1]["name"])
        return original(*args, **kwargs)

    monkeypatch.setattr(system_mod, "_run_candidate", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        small_system(**params).fit(X, y)
    monkeypatch.setattr(system_mod, "_run_candidate", original)
    mesh = small_system(**params).fit(X, y)
    assert mesh.cache_info_["candidate"] == {"hits": 2, "misses": 1}
    assert set(mesh.candidates_.query("cached")["name"]) == set(done)


def test_integer_labels_and_group_folds(data):
    from sklearn.model_selection import StratifiedGroupKFold

    X, y, *_ = data
    y_int = BST.encode(y)
    groups = np.arange(len(y)) // 7  # e.g. uploaders
    mesh = small_system(pretrain_objectives=(None,), feature_sets=None, systems=(1,),
                        cv=StratifiedGroupKFold(2, shuffle=True, random_state=0))
    mesh.fit(X, y_int, groups=groups)
    for g in np.unique(groups):  # a group never straddles two folds
        assert len(np.unique(mesh.folds_[groups == g])) == 1
    assert mesh.classes_.tolist() == list(range(23))
    assert mesh.predict(X).dtype.kind in "iu"
    table = mesh.submission(X[:4], ["a", "b", "c", "d"])
    expected = np.asarray(BST.leaves)[mesh.predict(X[:4])]
    assert table["predicted_bst_second_level_class"].tolist() == expected.tolist()
