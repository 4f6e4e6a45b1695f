"""Tests of the hierarchical metric: hand-worked cases, a naive reference, properties, scorers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score

from sklearn_mesh.metrics import (
    HierarchicalScorer,
    hf_proba_scorer,
    hf_scorer,
    hierarchical_accuracy_score,
    hierarchical_classification_report,
    hierarchical_f1_score,
    hierarchical_precision_recall_fscore,
    hierarchical_sample_scores,
    make_hierarchical_scorer,
)
from sklearn_mesh.taxonomy import BST, Taxonomy

K = BST.n_leaves
LEAVES = list(BST.leaves)
PARENT = BST.parent_of


# --------------------------------------------------------------------------- reference
def reference_hprf(y_true, y_pred, parent, lam=0.75, never_predicted="zero"):
    """Straightforward per-sample / per-class implementation with sets and dicts."""
    scores = []
    for t, p in zip(y_true, y_pred):
        truth = {parent[t], t}
        pred = {parent[p], p}
        if p == t:
            w = 1.0
        elif parent[p] == parent[t]:
            w = lam
        else:
            w = 0.0
        scores.append(w * len(pred & truth) / len(pred))
    per_class = {}
    for c in sorted(set(y_true)):
        true_scores = [s for s, t in zip(scores, y_true) if t == c]
        pred_scores = [s for s, p in zip(scores, y_pred) if p == c]
        recall = sum(true_scores) / len(true_scores)
        if not pred_scores:
            if never_predicted == "drop":
                continue
            precision = 0.0
        else:
            precision = sum(pred_scores) / len(pred_scores)
        f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        per_class[c] = (precision, recall, f)
    if not per_class:
        return 0.0, 0.0, 0.0, per_class, scores
    hp = sum(v[0] for v in per_class.values()) / len(per_class)
    hr = sum(v[1] for v in per_class.values()) / len(per_class)
    hf = sum(v[2] for v in per_class.values()) / len(per_class)
    return hp, hr, hf, per_class, scores


@st.composite
def label_pairs(draw, min_size=1, max_size=60, k=K):
    n = draw(st.integers(min_size, max_size))
    y_true = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    y_pred = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    return np.array(y_true), np.array(y_pred)


def _keys(idx):
    return np.asarray(LEAVES, dtype=object)[np.asarray(idx)]


# --------------------------------------------------------------------------- hand-worked
def test_sample_scores_exact_sibling_cousin():
    scores = hierarchical_sample_scores(["m-sp", "m-sp", "m-sp"], ["m-sp", "m-m", "fx-o"])
    np.testing.assert_allclose(scores, [1.0, 0.375, 0.0])


def test_single_clip_cases():
    assert hierarchical_f1_score(["is-p"], ["is-p"]) == 1.0
    # one clip, sibling prediction: the true class has recall 0.375 and is never predicted
    hp, hr, hf = hierarchical_precision_recall_fscore(["is-p"], ["is-s"])
    assert (hp, hr, hf) == (0.0, 0.375, 0.0)
    assert hierarchical_precision_recall_fscore(["is-p"], ["fx-o"]) == (0.0, 0.0, 0.0)


def test_never_predicted_class_both_policies():
    # y_true has m-sp x2 and m-m x1; everything is predicted m-sp.
    y_true = ["m-sp", "m-sp", "m-m"]
    y_pred = ["m-sp", "m-sp", "m-sp"]
    p_a = (1 + 1 + 0.375) / 3  # precision of m-sp
    f_a = 2 * p_a * 1.0 / (p_a + 1.0)
    hp, hr, hf = hierarchical_precision_recall_fscore(y_true, y_pred)  # "zero" (default)
    assert hp == pytest.approx((p_a + 0.0) / 2)
    assert hr == pytest.approx((1.0 + 0.375) / 2)
    assert hf == pytest.approx(f_a / 2)
    hp, hr, hf = hierarchical_precision_recall_fscore(y_true, y_pred, never_predicted="drop")
    assert (hp, hr, hf) == pytest.approx((p_a, 1.0, f_a))
    # the drop policy inflates the score
    assert hierarchical_f1_score(y_true, y_pred, never_predicted="drop") > hierarchical_f1_score(
        y_true, y_pred
    )


def test_drop_policy_all_classes_unpredicted():
    # every true class goes unpredicted: nothing left to average
    assert hierarchical_precision_recall_fscore(
        ["m-sp"], ["fx-o"], never_predicted="drop"
    ) == (0.0, 0.0, 0.0)


def test_predicted_class_absent_from_truth_is_not_averaged():
    # fx-o is predicted but absent from y_true: it does not enter the macro average
    y_true = ["m-sp", "m-sp"]
    y_pred = ["m-sp", "fx-o"]
    hp, hr, hf = hierarchical_precision_recall_fscore(y_true, y_pred)
    assert (hp, hr) == (1.0, 0.5)
    assert hf == pytest.approx(2 * 0.5 / 1.5)


def test_accuracy_uses_lambda_half():
    assert hierarchical_accuracy_score(["m-sp", "m-sp"], ["m-sp", "m-m"]) == 0.625
    assert hierarchical_accuracy_score(["m-sp"], ["m-m"], lam=1.0) == 0.5


def test_per_class_output_and_report():
    y_true = ["m-sp", "m-sp", "m-m", "fx-o"]
    y_pred = ["m-sp", "m-m", "m-m", "fx-v"]
    p, r, f = hierarchical_precision_recall_fscore(y_true, y_pred, average=None)
    assert p.shape == r.shape == f.shape == (K,)
    ref = reference_hprf(y_true, y_pred, PARENT)[3]
    for c, (pc, rc, fc) in ref.items():
        i = LEAVES.index(c)
        assert (p[i], r[i], f[i]) == pytest.approx((pc, rc, fc))
    absent = [i for i, c in enumerate(LEAVES) if c not in ref]
    assert np.isnan(f[absent]).all()
    report = hierarchical_classification_report(y_true, y_pred)
    assert set(report["class"]) == {"m-sp", "m-m", "fx-o", "fx-v", "macro"}
    macro = report.set_index("class").loc["macro"]
    assert macro["hF"] == pytest.approx(hierarchical_f1_score(y_true, y_pred))
    assert not report.set_index("class").loc["fx-v", "in_average"]


def test_custom_taxonomy():
    tax = Taxonomy.from_mapping({"a": ["a1", "a2"], "b": ["b1"]})
    scores = hierarchical_sample_scores(["a1", "a1", "a1"], ["a1", "a2", "b1"], taxonomy=tax)
    assert scores.tolist() == [1.0, 0.375, 0.0]


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        (["m-sp", "m-m"], ["m-sp"], "2 labels but y_pred has 1"),
        ([], [], "empty"),
        (["m-sp"], ["zz-top"], "zz-top"),
        (np.zeros((2, 2), dtype=int), np.zeros((2, 2), dtype=int), "1-D"),
        ([0, 99], [0, 1], "outside"),
    ],
)
def test_bad_inputs(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        hierarchical_f1_score(y_true, y_pred)


def test_bad_parameters():
    with pytest.raises(ValueError, match="lam"):
        hierarchical_f1_score(["m-sp"], ["m-sp"], lam=2.0)
    with pytest.raises(ValueError, match="never_predicted"):
        hierarchical_f1_score(["m-sp"], ["m-sp"], never_predicted="skip")
    with pytest.raises(ValueError, match="average"):
        hierarchical_precision_recall_fscore(["m-sp"], ["m-sp"], average="micro")
    with pytest.raises(ValueError, match="metric"):
        HierarchicalScorer("auc")


# --------------------------------------------------------------------------- reference agreement
@settings(deadline=None, max_examples=60)
@given(
    pair=label_pairs(),
    lam=st.sampled_from([0.75, 0.5, 0.0, 1.0, 0.3]),
    policy=st.sampled_from(["zero", "drop"]),
)
def test_matches_reference_implementation(pair, lam, policy):
    t_idx, p_idx = pair
    y_true, y_pred = _keys(t_idx), _keys(p_idx)
    hp, hr, hf, _, scores = reference_hprf(list(y_true), list(y_pred), PARENT, lam, policy)
    got = hierarchical_precision_recall_fscore(y_true, y_pred, lam=lam, never_predicted=policy)
    assert got == pytest.approx((hp, hr, hf), abs=1e-12)
    np.testing.assert_allclose(
        hierarchical_sample_scores(y_true, y_pred, lam=lam), scores, atol=1e-12
    )
    # index labels give the same result as string labels
    assert hierarchical_precision_recall_fscore(
        t_idx, p_idx, lam=lam, never_predicted=policy
    ) == pytest.approx(got, abs=1e-12)


# --------------------------------------------------------------------------- properties
@settings(deadline=None, max_examples=60)
@given(pair=label_pairs(), policy=st.sampled_from(["zero", "drop"]))
def test_bounds(pair, policy):
    t, p = pair
    for value in hierarchical_precision_recall_fscore(t, p, never_predicted=policy):
        assert 0.0 <= value <= 1.0
    assert 0.0 <= hierarchical_accuracy_score(t, p) <= 1.0


@settings(deadline=None, max_examples=60)
@given(pair=label_pairs())
def test_one_only_for_perfect_predictions(pair):
    t, p = pair
    assert hierarchical_f1_score(t, t) == 1.0
    perfect = np.array_equal(t, p)
    assert (hierarchical_f1_score(t, p) == 1.0) == perfect
    assert (hierarchical_accuracy_score(t, p) == 1.0) == perfect


def test_drop_policy_can_reach_one_without_perfect_predictions():
    # documents why the "zero" policy is the default: a missed class vanishes under "drop"
    y_true, y_pred = ["m-sp", "is-p"], ["fx-o", "is-p"]
    assert hierarchical_f1_score(y_true, y_pred, never_predicted="drop") == 1.0
    assert hierarchical_f1_score(y_true, y_pred) < 1.0


@settings(deadline=None, max_examples=60)
@given(pair=label_pairs(min_size=1), data=st.data())
def test_right_parent_mistake_never_below_wrong_parent(pair, data):
    t, p = pair
    i = data.draw(st.integers(0, t.size - 1))
    parent = BST.parent_index
    siblings = np.flatnonzero((parent == parent[t[i]]) & (np.arange(K) != t[i]))
    cousins = np.flatnonzero(parent != parent[t[i]])
    sib = data.draw(st.sampled_from(siblings.tolist()))
    cou = data.draw(st.sampled_from(cousins.tolist()))
    p_sib, p_cou = p.copy(), p.copy()
    p_sib[i], p_cou[i] = sib, cou
    s_sib = hierarchical_sample_scores(t, p_sib)
    s_cou = hierarchical_sample_scores(t, p_cou)
    assert s_sib[i] > s_cou[i]
    assert hierarchical_accuracy_score(t, p_sib) > hierarchical_accuracy_score(t, p_cou)
    assert (
        hierarchical_precision_recall_fscore(t, p_sib)[1]
        >= hierarchical_precision_recall_fscore(t, p_cou)[1]
    )
    # hF compares cleanly when neither mistaken-to class is a ground-truth class (their
    # precision is then not averaged) and nothing else is predicted as them.
    others = np.delete(p, i)
    if sib not in t and cou not in t and sib not in others and cou not in others:
        assert hierarchical_f1_score(t, p_sib) >= hierarchical_f1_score(t, p_cou)


@settings(deadline=None, max_examples=40)
@given(pair=label_pairs(), seed=st.integers(0, 2**32 - 1), policy=st.sampled_from(["zero", "drop"]))
def test_invariant_to_sample_order(pair, seed, policy):
    t, p = pair
    perm = np.random.default_rng(seed).permutation(t.size)
    assert hierarchical_precision_recall_fscore(
        t[perm], p[perm], never_predicted=policy
    ) == pytest.approx(hierarchical_precision_recall_fscore(t, p, never_predicted=policy))


# --------------------------------------------------------------------------- scorers
def _toy(n=120, seed=0, labels=("m-sp", "m-m", "is-p", "fx-o")):
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=object)[rng.integers(0, len(labels), n)]
    centres = {lab: rng.normal(0, 1, 5) for lab in labels}
    X = np.stack([centres[lab] for lab in y]) + rng.normal(0, 1.5, (n, 5))
    return X, y


def test_scorer_in_cross_val_score_matches_manual_loop():
    X, y = _toy()
    cv = KFold(4, shuffle=True, random_state=0)
    clf = LogisticRegression(max_iter=500)
    got = cross_val_score(clf, X, y, scoring=hf_scorer, cv=cv)
    got_proba = cross_val_score(clf, X, y, scoring=hf_proba_scorer, cv=cv)
    manual, manual_proba = [], []
    for tr, te in cv.split(X):
        model = LogisticRegression(max_iter=500).fit(X[tr], y[tr])
        manual.append(hierarchical_f1_score(y[te], model.predict(X[te])))
        argmax = model.classes_[np.argmax(model.predict_proba(X[te]), axis=1)]
        manual_proba.append(hierarchical_f1_score(y[te], argmax))
    np.testing.assert_allclose(got, manual)
    np.testing.assert_allclose(got_proba, manual_proba)
    assert np.all((got > 0) & (got <= 1))


def test_scorers_in_grid_search_with_index_labels():
    X, y = _toy()
    y_idx = BST.encode(y)
    for scorer in (hf_scorer, hf_proba_scorer, make_hierarchical_scorer("accuracy")):
        search = GridSearchCV(
            LogisticRegression(max_iter=500),
            {"C": [0.01, 1.0]},
            scoring=scorer,
            cv=StratifiedKFold(3, shuffle=True, random_state=0),
        ).fit(X, y_idx)
        assert 0 < search.best_score_ <= 1
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_grid_search_multi_metric_and_refit():
    X, y = _toy()
    scoring = {"hf": hf_scorer, "hp": HierarchicalScorer("hp"), "hr": HierarchicalScorer("hr")}
    search = GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, scoring=scoring, refit="hf", cv=3
    ).fit(X, y)
    for key in scoring:
        assert f"mean_test_{key}" in search.cv_results_
    assert search.score(X, y) == pytest.approx(hierarchical_f1_score(y, search.predict(X)))


def test_scorer_rejects_sample_weight_and_repr():
    X, y = _toy(n=40)
    clf = LogisticRegression(max_iter=200).fit(X, y)
    with pytest.raises(ValueError, match="sample weights"):
        hf_scorer(clf, X, y, sample_weight=np.ones(len(y)))
    assert "predict_proba" in repr(hf_proba_scorer)
    y_true, y_pred = ["m-sp", "m-m"], ["m-sp", "m-sp"]
    got = HierarchicalScorer("hf", never_predicted="drop").score_predictions(y_true, y_pred)
    assert got == pytest.approx(hierarchical_f1_score(y_true, y_pred, never_predicted="drop"))
