"""SelectiveKernelFusion, stack_outputs and select_fusion_members."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_mesh.fusion import (
    SelectiveKernelFusion,
    _SKFusion,
    select_fusion_members,
    stack_outputs,
)
from sklearn_mesh.metrics import hierarchical_f1_score
from sklearn_mesh.taxonomy import BST

K = BST.n_leaves


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _specialists(rng, n=400):
    """A is right on classes 0-7, B on 8-22; where a model is wrong it is confidently
    wrong on a class of its own domain, so plain averaging fails but per-class trust
    (attention) recovers the truth."""
    y = rng.randint(0, K, size=n)
    a_domain = y < 8
    wrong_a = rng.randint(8, K, size=n)  # A's mistakes stay in A's weak domain
    wrong_b = rng.randint(0, 8, size=n)
    a_target = np.where(a_domain, y, wrong_a)
    b_target = np.where(a_domain, wrong_b, y)
    conf_a = np.where(a_domain, 0.55, 0.8)[:, None]
    conf_b = np.where(a_domain, 0.8, 0.55)[:, None]
    a = conf_a * np.eye(K)[a_target] + (1 - conf_a) * rng.dirichlet(np.ones(K), size=n)
    b = conf_b * np.eye(K)[b_target] + (1 - conf_b) * rng.dirichlet(np.ones(K), size=n)
    return {"a": a, "b": b}, y


def _naive_forward(module, B, inputs="proba"):
    """NumPy re-implementation of fuse -> select -> weighted sum."""
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    s = B.sum(axis=1)
    z = np.maximum(s @ sd["fuse.0.weight"].T + sd["fuse.0.bias"], 0)
    logits = (z @ sd["select.weight"].T + sd["select.bias"]).reshape(B.shape)
    a = _softmax(logits, axis=1)
    v = (a * B).sum(axis=1)
    if inputs == "proba":
        return v / v.sum(axis=1, keepdims=True)
    return _softmax(v, axis=1)


@settings(deadline=None, max_examples=5)
@given(st.integers(0, 10_000), st.integers(1, 4), st.sampled_from(["proba", "scores"]))
def test_output_rows_sum_to_one_and_match_reference(seed, n_models, inputs):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 5, size=40)
    if inputs == "proba":
        B = rng.dirichlet(np.ones(K) * 0.5, size=(40, n_models))
    else:
        B = rng.normal(size=(40, n_models, K)) * 3
    X = B.reshape(40, -1)
    skf = SelectiveKernelFusion(inputs=inputs, max_epochs=3, random_state=seed).fit(X, y)
    proba = skf.predict_proba(X)
    assert proba.shape == (40, K)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-10)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba, _naive_forward(skf.module_, B, inputs), atol=1e-8)
    att = skf.attention(X)
    np.testing.assert_allclose(att.sum(axis=1), 1.0, atol=1e-10)


def test_untrained_fusion_is_the_plain_average():
    rng = np.random.RandomState(0)
    B = rng.dirichlet(np.ones(K), size=(10, 3))
    module = _SKFusion(3, K, K, 8, "proba", "identity").double()
    with torch.no_grad():
        out = np.exp(module(torch.from_numpy(B)).numpy())
    np.testing.assert_allclose(out, B.mean(axis=1), atol=1e-10)


def test_learns_which_model_to_trust():
    rng = np.random.RandomState(1)
    pool, y = _specialists(rng, n=800)
    test_pool, y_test = _specialists(rng, n=400)
    skf = SelectiveKernelFusion(max_epochs=80, lr=1e-2, random_state=0).fit_oof(pool, y)
    fused = skf.predict_from(test_pool)
    single = max(hierarchical_f1_score(y_test, p.argmax(axis=1)) for p in test_pool.values())
    average = hierarchical_f1_score(y_test, (test_pool["a"] + test_pool["b"]).argmax(axis=1))
    score = hierarchical_f1_score(BST.decode(y_test), fused)
    assert score > single and score > average


def test_reproducible_with_random_state():
    rng = np.random.RandomState(2)
    pool, y = _specialists(rng, n=200)
    X, _ = stack_outputs(pool)
    a = SelectiveKernelFusion(max_epochs=4, random_state=3).fit(X, y).predict_proba(X)
    b = SelectiveKernelFusion(max_epochs=4, random_state=3).fit(X, y).predict_proba(X)
    c = SelectiveKernelFusion(max_epochs=4, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_layout_errors():
    rng = np.random.RandomState(3)
    y = rng.randint(0, 3, size=30)
    P = rng.dirichlet(np.ones(K), size=30)
    with pytest.raises(ValueError, match="multiple of the 23"):
        SelectiveKernelFusion().fit(np.hstack([P, P[:, :5]]), y)
    with pytest.raises(ValueError, match="sum to 1"):
        SelectiveKernelFusion().fit(np.hstack([P, P * 2]), y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SelectiveKernelFusion().fit(np.hstack([P, P - 0.5]), y)
    with pytest.raises(ValueError, match="head='linear'"):
        SelectiveKernelFusion(n_models=1).fit(np.hstack([P, P]), y)
    skf = SelectiveKernelFusion(max_epochs=1).fit(np.hstack([P, P]), y)
    with pytest.raises(ValueError, match="features"):
        skf.predict_proba(P)
    with pytest.raises(AttributeError, match="fit_oof"):
        skf.predict_proba_from({"a": P, "b": P})


def test_fit_oof_and_predict_from_mapping():
    rng = np.random.RandomState(4)
    pool, y = _specialists(rng, n=120)
    skf = SelectiveKernelFusion(max_epochs=3, random_state=0).fit_oof(pool, y)
    assert skf.model_names_ == ["a", "b"]
    X, _ = stack_outputs(pool)
    reordered = {"b": pool["b"], "a": pool["a"], "unused": pool["a"]}
    np.testing.assert_allclose(skf.predict_proba_from(reordered), skf.predict_proba(X))
    with pytest.raises(ValueError, match="missing"):
        skf.predict_proba_from({"a": pool["a"]})
    # fold lists: fuse fold by fold, then average (not the fusion of averaged inputs)
    folds = {"a": [pool["a"], pool["a"][:, ::-1]], "b": [pool["b"], pool["b"]]}
    per_fold = [
        skf.predict_proba(np.hstack([pool["a"], pool["b"]])),
        skf.predict_proba(np.hstack([pool["a"][:, ::-1], pool["b"]])),
    ]
    np.testing.assert_allclose(skf.predict_proba_from(folds), np.mean(per_fold, axis=0))
    with pytest.raises(ValueError, match="numbers of fold"):
        skf.predict_proba_from({"a": [pool["a"]] * 2, "b": [pool["b"]] * 3})


def test_stack_outputs_checks_alignment():
    rng = np.random.RandomState(5)
    P = rng.dirichlet(np.ones(K), size=4)
    ids = ["x", "y", "z", "w"]
    a = pd.DataFrame(P, index=ids, columns=BST.leaves)
    X, names = stack_outputs({"a": a, "b": P}, ids=ids)
    assert X.shape == (4, 2 * K) and names == ["a", "b"]
    np.testing.assert_array_equal(X[:, :K], P)
    with pytest.raises(ValueError, match="row ids"):
        stack_outputs({"a": a, "b": a.iloc[[1, 0, 2, 3]]})
    with pytest.raises(ValueError, match="rows"):
        stack_outputs({"a": P, "b": P[:3]})


def test_select_fusion_members():
    rng = np.random.RandomState(6)
    pool, y = _specialists(rng, n=300)
    pool["copy_of_a"] = pool["a"].copy()
    pool["noise"] = rng.dirichlet(np.ones(K), size=300)
    est = SelectiveKernelFusion(max_epochs=15, lr=1e-2, validation_fraction=None)
    names, trace = select_fusion_members(pool, y, n_members=2, estimator=est, random_state=0)
    solo = {k: hierarchical_f1_score(y, v.argmax(axis=1)) for k, v in pool.items()}
    assert names[0] == max(solo, key=solo.get)
    assert len(names) == 2 and len(set(names)) == 2
    assert list(trace.added) == names
    # the complementary specialist beats a copy of the first member and pure noise
    assert set(names) == {"a", "b"}
    with pytest.raises(ValueError, match="n_members"):
        select_fusion_members(pool, y, n_members=0)
