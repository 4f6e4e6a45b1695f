"""HProxyClassifier: fitting, inputs, model selection, warm start (two-stage training)."""

import copy
import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict

from sklearn_mesh.classifier import HProxyClassifier, PretrainedState
from sklearn_mesh.metrics import hf_scorer
from sklearn_mesh.nn.losses import LOSSES, FocalLoss
from sklearn_mesh.taxonomy import BST, Taxonomy

FAST = dict(embedding_dim=8, max_epochs=2, batch_size=32, lr=1e-2, random_state=0)


def _data(n_per_class=8, n_classes=23, n_features=12, seed=0, labels="str"):
    X, y = make_classification(
        n_samples=n_per_class * n_classes, n_features=n_features, n_informative=8,
        n_redundant=0, n_classes=n_classes, n_clusters_per_class=1, weights=None,
        class_sep=2.0, random_state=seed,
    )
    leaves = np.asarray(BST.leaves, dtype=object)[np.linspace(0, 22, n_classes).astype(int)]
    if labels == "int":
        return X.astype(np.float32), BST.encode(leaves[y])
    return X.astype(np.float32), leaves[y]


@pytest.fixture(scope="module")
def small():
    return _data(n_per_class=10, n_classes=6)


@pytest.fixture(scope="module")
def full():
    # every BST class present, taxonomy indices as labels (see cross_val_predict notes)
    return _data(n_per_class=10, n_classes=23, labels="int")


# ------------------------------------------------------------------ basic fit
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_named_loss_gives_23_columns_summing_to_one(small, loss):
    X, y = small
    clf = HProxyClassifier(loss=loss, **FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 23)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (proba >= 0).all()
    assert list(clf.classes_) == list(BST.leaves)
    assert set(clf.predict(X)) <= set(BST.leaves)


@pytest.mark.parametrize("encoder, head", [("linear", "linear"), ("mlp", "mlp"), ("mlp", "cosine")])
def test_architectures(small, encoder, head):
    X, y = small
    clf = HProxyClassifier(loss="ce", encoder=encoder, head=head, **FAST).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0, atol=1e-12)
    assert clf.embed(X).shape == (len(X), 8)


def test_learns_a_separable_problem(small):
    X, y = small
    clf = HProxyClassifier(loss="focal+hproxy", embedding_dim=16, max_epochs=40, lr=1e-2,
                           validation_fraction=None, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.n_epochs_ == 40 and clf.best_epoch_ == 40


def test_integer_labels_and_fold_missing_classes(small):
    X, y = small
    y_int = BST.encode(y)
    clf = HProxyClassifier(**FAST).fit(X, y_int)
    np.testing.assert_array_equal(clf.classes_, np.arange(23))
    assert clf.predict_proba(X).shape[1] == 23
    assert clf.predict(X).dtype.kind in "iu"


def test_custom_taxonomy():
    tax = Taxonomy.from_mapping({"a": ["a1", "a2"], "b": ["b1", "b2", "b3"]})
    X, y = make_classification(60, 6, n_informative=4, n_redundant=0, n_classes=5,
                               n_clusters_per_class=1, random_state=0)
    labels = np.asarray(tax.leaves, dtype=object)[y]
    clf = HProxyClassifier(taxonomy=tax, loss="hproxy", **FAST).fit(X, labels)
    assert list(clf.classes_) == list(tax.leaves)
    assert clf.net_.module_.top_proxies.shape == (2, 8)


def test_custom_loss_module(small):
    X, y = small
    loss = FocalLoss(gamma=1.0)
    clf = HProxyClassifier(loss=loss, **FAST).fit(X, y)
    assert clf.net_.criterion_ is not loss and clf.net_.criterion_.gamma == 1.0
    with pytest.raises(ValueError, match="named losses only"):
        HProxyClassifier(loss=loss, loss_params={"focal": {}}, **FAST).fit(X, y)


def test_loss_weights_and_params_reach_the_criterion(small):
    X, y = small
    clf = HProxyClassifier(loss="focal+hproxy", loss_weights={"hproxy": 0.5},
                           loss_params={"hproxy": {"alpha": 0.2}}, **FAST).fit(X, y)
    crit = clf.net_.criterion_
    assert crit.weights == {"focal": 0.9, "hproxy": 0.5}
    assert crit.losses["hproxy"].alpha == 0.2


def test_history_logs_loss_terms_and_validation_scores(small):
    X, y = small
    clf = HProxyClassifier(loss="focal+hproxy", **{**FAST, "max_epochs": 3}).fit(X, y)
    row = clf.history_[-1]
    for key in ("train_loss", "valid_loss", "valid_acc", "valid_hf", "train_focal",
                "train_hproxy", "train_hproxy.second", "train_hproxy.align", "valid_hproxy.top"):
        assert key in row, key
    assert 0.0 <= row["valid_hf"] <= 1.0


def test_early_stopping_restores_the_best_epoch(small):
    from sklearn.utils import check_random_state

    from sklearn_mesh.metrics import hierarchical_f1_score

    X, y = small
    clf = HProxyClassifier(loss="ce", early_stopping="hf", patience=2, embedding_dim=8,
                           max_epochs=15, lr=5e-2, random_state=1).fit(X, y)
    scores = clf.history_[:, "valid_hf"]
    assert clf.n_epochs_ <= 15
    assert scores[clf.best_epoch_ - 1] == pytest.approx(max(scores))
    # the kept weights are the best epoch's: they reproduce its validation hF
    seed = int(check_random_state(1).randint(0, 2**31 - 1))
    _, _, (X_val, y_val) = clf._split(X.astype(np.float32), BST.encode(y), seed)
    restored = hierarchical_f1_score(BST.decode(y_val), clf.predict(X_val))
    assert restored == pytest.approx(max(scores), abs=1e-9)


def test_verbose_prints_progress(small, capsys):
    X, y = small
    HProxyClassifier(verbose=1, **FAST).fit(X, y)
    out = capsys.readouterr().out
    assert "valid_hf" in out and "train_loss" in out


# ---------------------------------------------------------------- bad inputs
def test_clear_errors(small):
    X, y = small
    clf = HProxyClassifier(**FAST)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X_nan, y)
    X_inf = X.copy()
    X_inf[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.fit(X_inf, y)
    with pytest.raises(ValueError, match="Unknown labels"):
        clf.fit(X, np.where(y == y[0], "fx-other", y))
    fitted = clf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict_proba(X_nan)
    two = [0, int(np.flatnonzero(y != y[0])[0])]
    with pytest.raises(ValueError, match="validation_fraction=None"):
        HProxyClassifier(validation_fraction=0.9, **FAST).fit(X[two], y[two])
    with pytest.raises(ValueError, match="at least 2 classes.*one class"):
        HProxyClassifier(**FAST).fit(X, np.full(len(y), "fx-o"))
    with pytest.raises(ValueError, match="1d"):
        HProxyClassifier(**FAST).fit(X, np.c_[y, y])


def test_bad_device():
    X, y = _data(n_per_class=3, n_classes=3)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            HProxyClassifier(device="cuda", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="not a torch device"):
        HProxyClassifier(device="banana", **FAST).fit(X, y)
    assert HProxyClassifier(device="auto", **FAST).fit(X, y).net_.device in ("cpu", "cuda")


def test_pandas_input(small):
    X, y = small
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = HProxyClassifier(**FAST).fit(df, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        from_numpy = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(df), from_numpy)


# ------------------------------------------------------- reproducibility, pickle
def test_same_random_state_same_predictions(small):
    X, y = small
    a = HProxyClassifier(**FAST).fit(X, y).predict_proba(X)
    b = HProxyClassifier(**FAST).fit(X, y).predict_proba(X)
    c = HProxyClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_touch_global_torch_rng(small):
    import torch

    X, y = small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    HProxyClassifier(**FAST).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_pickle_and_joblib_round_trip(small):
    X, y = small
    clf = HProxyClassifier(loss="proxy_anchor+focal", **FAST).fit(X, y)
    expected = clf.predict_proba(X)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    buf = io.BytesIO()
    joblib.dump(clf, buf)
    buf.seek(0)
    np.testing.assert_array_equal(joblib.load(buf).predict_proba(X), expected)


# ----------------------------------------------------------- model selection
def test_grid_search_over_losses(full):
    X, y = full
    labels = BST.decode(y)
    grid = GridSearchCV(
        HProxyClassifier(validation_fraction=None, **FAST),
        {"loss": ["ce", "focal", "focal+hproxy"]},
        scoring=hf_scorer,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
    ).fit(X, labels)
    assert grid.best_params_["loss"] in ("ce", "focal", "focal+hproxy")
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.predict_proba(X).shape == (len(X), 23)


def test_cross_val_predict_proba_has_23_taxonomy_columns(full):
    X, y = full
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    clf = HProxyClassifier(validation_fraction=None, **FAST)
    proba = cross_val_predict(clf, X, y, cv=cv, method="predict_proba")
    assert proba.shape == (len(X), 23)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    # column k is taxonomy leaf k: each fold's model, refit by hand, gives the same columns
    train, test = next(cv.split(X, y))
    manual = clone(clf).fit(X[train], y[train]).predict_proba(X[test])
    np.testing.assert_allclose(proba[test], manual, atol=1e-12)
    np.testing.assert_array_equal(clone(clf).fit(X, y).classes_, np.arange(23))


# ------------------------------------------------------ two-stage warm start
@pytest.fixture(scope="module")
def pretrained_pair():
    X_noisy, y_noisy = _data(n_per_class=12, n_classes=23, seed=1, labels="int")
    pre = HProxyClassifier(loss="hproxy", **{**FAST, "max_epochs": 3}).fit(X_noisy, y_noisy)
    return pre, pre.pretrained_state()


def test_pretrained_state_is_immutable_and_survives_clone(pretrained_pair):
    pre, state = pretrained_pair
    assert copy.deepcopy(state) is state and copy.copy(state) is state
    clf = HProxyClassifier(pretrained=state)
    assert clone(clf).pretrained is state
    assert clone(clone(clf)).get_params()["pretrained"] is state
    name = next(iter(state.keys()))
    with pytest.raises(ValueError):
        state[name][...] = 0
    with pytest.raises(AttributeError):
        state.foo = 1
    assert pickle.loads(pickle.dumps(state)) == state
    assert not pickle.loads(pickle.dumps(state))[name].flags.writeable
    assert set(state.keys()) == set(pre.net_.module_.state_dict())
    assert state.config["leaves"] == list(BST.leaves)
    assert "PretrainedState(" in repr(state)


def test_zero_epoch_fine_tuning_reproduces_pretrained_predictions_in_every_fold(
    pretrained_pair, full
):
    pre, state = pretrained_pair
    X, y = full
    expected = pre.predict_proba(X)
    clf = HProxyClassifier(loss="focal+hproxy", pretrained=state, pretrained_heads="keep",
                           max_epochs=0, embedding_dim=8, random_state=3)
    oof = cross_val_predict(clf, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                            method="predict_proba")
    np.testing.assert_allclose(oof, expected, rtol=0, atol=1e-12)
    # without the pre-trained state, the same configuration predicts something else
    scratch = clone(clf).set_params(pretrained=None).fit(X, y).predict_proba(X)
    assert not np.allclose(scratch, expected, atol=1e-3)


def test_reinit_heads_transfers_only_the_encoder(pretrained_pair, full):
    pre, state = pretrained_pair
    X, y = full
    clf = HProxyClassifier(pretrained=state, max_epochs=0, embedding_dim=8,
                           random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.embed(X), pre.embed(X), atol=1e-12)
    own = clf.net_.module_.state_dict()
    assert not np.allclose(own["proxies"].numpy(), state["proxies"])


def test_fine_tuning_folds_do_not_leak(pretrained_pair, full):
    pre, state = pretrained_pair
    X, y = full
    clf = HProxyClassifier(loss="focal+hproxy", pretrained=state, validation_fraction=None,
                           **{**FAST, "max_epochs": 2})
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    (tr_a, _), (tr_b, te_b) = folds[0], folds[1]
    fresh_b = clone(clf).fit(X[tr_b], y[tr_b]).predict_proba(X[te_b])
    reused = clone(clf).fit(X[tr_a], y[tr_a])  # fit on fold A, then refit the same object
    after_a = reused.fit(X[tr_b], y[tr_b]).predict_proba(X[te_b])
    np.testing.assert_array_equal(after_a, fresh_b)
    # fine-tuning changed the model, and never the shared state
    assert not np.allclose(fresh_b, pre.predict_proba(X[te_b]))
    assert state == pre.pretrained_state()


def test_pretrained_state_file_round_trip(pretrained_pair, full, tmp_path):
    pre, state = pretrained_pair
    X, y = full
    path = tmp_path / "pre.pt"
    state.save(path)
    import torch

    torch.load(path, weights_only=True)  # loadable without unpickling code
    loaded = PretrainedState.load(path)
    assert loaded == state and loaded is not state
    kw = dict(pretrained_heads="keep", max_epochs=0, embedding_dim=8, random_state=0)
    from_file = HProxyClassifier(pretrained=str(path), **kw).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(from_file, pre.predict_proba(X), atol=1e-12)
    with pytest.raises(FileNotFoundError, match="pretrained_state"):
        HProxyClassifier(pretrained=tmp_path / "missing.pt", **kw).fit(X, y)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_only"):
        PretrainedState.load(tmp_path / "junk.pt")


def test_pretrained_mismatches_are_errors(pretrained_pair, full):
    pre, state = pretrained_pair
    X, y = full
    kw = dict(max_epochs=0, random_state=0)
    with pytest.raises(ValueError, match="'encoder.weight'.*shape"):
        HProxyClassifier(pretrained=state, embedding_dim=8, **kw).fit(X[:, :6], y)
    with pytest.raises(ValueError, match="shape"):
        HProxyClassifier(pretrained=state, embedding_dim=16, **kw).fit(X, y)
    with pytest.raises(ValueError, match="missing tensors"):
        HProxyClassifier(pretrained=state, embedding_dim=8, encoder="mlp", **kw).fit(X, y)
    with pytest.raises(ValueError, match="missing tensors"):
        HProxyClassifier(pretrained=state, embedding_dim=8, head="linear",
                         pretrained_heads="keep", **kw).fit(X, y)
    # keeping the heads needs the same taxonomy (same leaf order)
    shuffled = Taxonomy({k: BST.parent_of[k] for k in reversed(BST.leaves)})
    with pytest.raises(ValueError, match="taxonomy"):
        HProxyClassifier(pretrained=state, embedding_dim=8, pretrained_heads="keep",
                         taxonomy=shuffled, **kw).fit(X, y)
    # a different taxonomy is fine when the heads are re-initialised
    HProxyClassifier(pretrained=state, embedding_dim=8, taxonomy=shuffled, **kw).fit(X, y)
