"""Losses and modules of sklearn_mesh.nn against naive reference implementations."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_mesh.nn.losses import (
    LOSSES,
    CrossEntropyLoss,
    FocalLoss,
    HProxyLoss,
    ProxyAnchorLoss,
    WeightedSumLoss,
    make_loss,
)
from sklearn_mesh.nn.modules import FeatureAugmentation, ProxyNet, ProxyOutput, proxy_logits
from sklearn_mesh.taxonomy import BST, Taxonomy

TINY = Taxonomy.from_mapping({"a": ["a1", "a2", "a3"], "b": ["b1"], "c": ["c1", "c2"]})


# ------------------------------------------------------------------ references
def _softmax_row(v):
    m = max(v)
    e = [math.exp(x - m) for x in v]
    s = sum(e)
    return [x / s for x in e]


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def ref_ce(logits, y, eps=0.0):
    total = 0.0
    for row, t in zip(logits, y):
        p = _softmax_row(list(row))
        k = len(p)
        total += -((1 - eps) * math.log(p[t]) + eps / k * sum(math.log(q) for q in p))
    return total / len(y)


def ref_focal(logits, y, gamma):
    total = 0.0
    for row, t in zip(logits, y):
        p = _softmax_row(list(row))[t]
        total += -((1 - p) ** gamma) * math.log(p)
    return total / len(y)


def ref_proxy_ce(z, P, y, tau):
    logits = [[_cos(zi, p) / tau for p in P] for zi in z]
    return ref_ce(logits, y)


def ref_hproxy_terms(z, P2, P1, y, parent, tau, m_sib, m_top):
    second = ref_proxy_ce(z, P2, y, tau)
    top = ref_proxy_ce(z, P1, [parent[t] for t in y], tau)
    align = sum(1 - _cos(P2[k], P1[parent[k]]) for k in range(len(P2))) / len(P2)
    sib = []
    for i in range(len(P2)):
        for j in range(i + 1, len(P2)):
            if parent[i] == parent[j]:
                sib.append(max(0.0, _cos(P2[i], P2[j]) - m_sib))
    top_sep = []
    for i in range(len(P1)):
        for j in range(i + 1, len(P1)):
            top_sep.append(max(0.0, _cos(P1[i], P1[j]) - m_top))
    return {
        "second": second,
        "top": top,
        "align": align,
        "sib": sum(sib) / len(sib) if sib else 0.0,
        "top_sep": sum(top_sep) / len(top_sep) if top_sep else 0.0,
    }


def ref_proxy_anchor(z, P, y, margin, alpha):
    K = len(P)
    pos_sum = [0.0] * K
    neg_sum = [0.0] * K
    has_pos = [False] * K
    for zi, t in zip(z, y):
        for k in range(K):
            s = _cos(zi, P[k])
            if k == t:
                pos_sum[k] += math.exp(-alpha * (s - margin))
                has_pos[k] = True
            else:
                neg_sum[k] += math.exp(alpha * (s + margin))
    pos = sum(math.log1p(pos_sum[k]) for k in range(K) if has_pos[k]) / sum(has_pos)
    neg = sum(math.log1p(neg_sum[k]) for k in range(K)) / K
    return pos, neg


def _output(n=7, d=5, tax=TINY, seed=0, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=dtype) * scale
    p2 = torch.randn(tax.n_leaves, d, generator=g, dtype=dtype) * scale
    p1 = torch.randn(tax.n_tops, d, generator=g, dtype=dtype) * scale
    y = torch.randint(0, tax.n_leaves, (n,), generator=g)
    logits = proxy_logits(z, p2, 0.07)
    return ProxyOutput(logits, z, p2, p1), y


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("eps", [0.0, 0.01, 0.2])
def test_cross_entropy_matches_reference(eps):
    out, y = _output()
    got = CrossEntropyLoss(label_smoothing=eps)(out, y)
    assert float(got) == pytest.approx(ref_ce(out.logits.tolist(), y.tolist(), eps), rel=1e-9)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 3.5])
def test_focal_matches_reference(gamma):
    out, y = _output(seed=1)
    logits = out.logits * 0.05  # moderate probabilities
    got = FocalLoss(gamma=gamma)(logits, y)
    assert float(got) == pytest.approx(ref_focal(logits.tolist(), y.tolist(), gamma), rel=1e-9)


def test_focal_gamma0_is_cross_entropy():
    out, y = _output(seed=2)
    assert float(FocalLoss(0.0)(out, y)) == pytest.approx(float(CrossEntropyLoss(0.0)(out, y)))


@pytest.mark.parametrize("tax", [TINY, BST], ids=["tiny", "bst"])
@pytest.mark.parametrize("seed", [0, 1])
def test_hproxy_terms_match_reference(tax, seed):
    out, y = _output(n=9, d=6, tax=tax, seed=seed)
    loss = HProxyLoss(tax, temperature=0.1, alpha=0.4, beta=0.3, gamma=0.15, delta=0.05,
                      sibling_margin=-0.2, top_margin=-0.1)  # negative margins: hinges active
    total = loss(out, y)
    ref = ref_hproxy_terms(out.embedding.numpy(), out.proxies.numpy(), out.top_proxies.numpy(),
                           y.tolist(), tax.parent_index.tolist(), 0.1, -0.2, -0.1)
    for key, value in ref.items():
        assert float(loss.last_terms_[key]) == pytest.approx(value, rel=1e-9, abs=1e-12), key
    expected = (ref["second"] + 0.4 * ref["top"] + 0.3 * ref["align"] + 0.15 * ref["sib"]
                + 0.05 * ref["top_sep"])
    assert float(total) == pytest.approx(expected, rel=1e-9)
    assert float(loss.last_terms_["loss"]) == pytest.approx(expected, rel=1e-9)


def test_hproxy_with_zero_weights_is_proxy_cross_entropy():
    out, y = _output(n=11, d=4, tax=BST, seed=3)
    loss = HProxyLoss(BST, alpha=0, beta=0, gamma=0, delta=0)
    ref = ref_proxy_ce(out.embedding.numpy(), out.proxies.numpy(), y.tolist(), 0.07)
    assert float(loss(out, y)) == pytest.approx(ref, rel=1e-9)


def test_alignment_is_zero_when_children_equal_parents():
    out, y = _output(tax=BST, seed=4)
    parent = torch.tensor(np.array(BST.parent_index))
    scale = torch.rand(BST.n_leaves, 1, dtype=torch.float64) + 0.5  # cosine ignores scale
    children = out.top_proxies[parent] * scale
    loss = HProxyLoss(BST)
    loss(ProxyOutput(out.logits, out.embedding, children, out.top_proxies), y)
    assert float(loss.last_terms_["align"]) == pytest.approx(0.0, abs=1e-12)
    # ...and positive otherwise
    loss(out, y)
    assert float(loss.last_terms_["align"]) > 0.1


def test_hproxy_parents_come_from_the_taxonomy():
    # same leaves, different parents: only the hierarchy-dependent terms change
    other = Taxonomy.from_mapping({"a": ["a1"], "b": ["a2", "a3", "b1"], "c": ["c1", "c2"]})
    assert other.leaves == TINY.leaves
    out, y = _output(tax=TINY, seed=5)
    la, lb = HProxyLoss(TINY), HProxyLoss(other)
    la(out, y), lb(out, y)
    assert float(la.last_terms_["second"]) == pytest.approx(float(lb.last_terms_["second"]))
    assert float(la.last_terms_["align"]) != pytest.approx(float(lb.last_terms_["align"]))
    assert la.parent_index.tolist() == TINY.parent_index.tolist()


def test_hproxy_default_hyperparameters_follow_the_report():
    loss = HProxyLoss()
    assert (loss.temperature, loss.alpha, loss.beta, loss.gamma, loss.delta) == (
        0.07, 0.4, 0.3, 0.15, 0.05)
    assert (loss.sibling_margin, loss.top_margin) == (0.4, 0.0)
    assert loss.n_classes == 23 and loss.n_tops == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proxy_anchor_matches_reference(seed):
    out, y = _output(n=8, d=4, seed=seed)
    y[0] = 0  # at least one class without positives is likely; ensure one with
    loss = ProxyAnchorLoss(margin=0.1, alpha=32.0)
    total = loss(out, y)
    pos, neg = ref_proxy_anchor(out.embedding.numpy(), out.proxies.numpy(), y.tolist(), 0.1, 32.0)
    assert float(loss.last_terms_["positive"]) == pytest.approx(pos, rel=1e-9)
    assert float(loss.last_terms_["negative"]) == pytest.approx(neg, rel=1e-9)
    assert float(total) == pytest.approx(pos + neg, rel=1e-9)


def test_weighted_sum_matches_parts_and_logs_terms():
    out, y = _output(tax=BST, seed=6)
    combo = make_loss("focal+hproxy")
    total = combo(out, y)
    focal, hp = FocalLoss(2.0)(out, y), HProxyLoss(BST)(out, y)
    assert float(total) == pytest.approx(0.9 * float(focal) + 0.1 * float(hp), rel=1e-9)
    terms = combo.last_terms_
    assert {"loss", "focal", "hproxy", "hproxy.second", "hproxy.align"} <= set(terms)
    assert float(terms["focal"]) == pytest.approx(float(focal))


def test_make_loss_names_weights_and_params():
    assert set(LOSSES) >= {"ce", "focal", "hproxy", "focal+hproxy", "proxy_anchor+focal"}
    assert make_loss("ce").label_smoothing == 0.01
    assert make_loss("focal").gamma == 2.0
    assert make_loss("proxy_anchor+focal").weights == {"proxy_anchor": 1.0, "focal": 1.0}
    pa = make_loss("proxy_anchor+focal").losses["proxy_anchor"]
    assert (pa.margin, pa.alpha) == (0.1, 32.0)
    custom = make_loss("focal+hproxy", weights={"hproxy": 0.5}, params={"hproxy": {"alpha": 0.3}})
    assert custom.weights == {"focal": 0.9, "hproxy": 0.5}
    assert custom.losses["hproxy"].alpha == 0.3
    assert isinstance(make_loss("ce", weights={"ce": 2.0}), WeightedSumLoss)
    assert make_loss("hproxy", TINY).n_classes == 6
    with pytest.raises(ValueError, match="Unknown loss"):
        make_loss("bogus")
    with pytest.raises(ValueError, match="components"):
        make_loss("focal", params={"hproxy": {}})
    with pytest.raises(ValueError, match="components"):
        make_loss("focal", weights={"ce": 1.0})
    with pytest.raises(ValueError, match="same keys"):
        WeightedSumLoss({"ce": CrossEntropyLoss()}, {"focal": 1.0})


def test_proxy_losses_need_the_proxy_output():
    with pytest.raises(TypeError, match="ProxyOutput"):
        HProxyLoss(TINY)(torch.zeros(2, 6), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="ProxyOutput"):
        ProxyAnchorLoss()(torch.zeros(2, 6), torch.tensor([0, 1]))
    out, y = _output(tax=TINY)
    with pytest.raises(ValueError, match="same taxonomy"):
        HProxyLoss(BST)(out, y)


_LOSS_FACTORIES = {
    "ce": lambda: make_loss("ce"),
    "focal": lambda: make_loss("focal"),
    "hproxy": lambda: make_loss("hproxy", TINY),
    "proxy_anchor": lambda: make_loss("proxy_anchor"),
    "focal+hproxy": lambda: make_loss("focal+hproxy", TINY),
    "proxy_anchor+focal": lambda: make_loss("proxy_anchor+focal", TINY),
}


@settings(deadline=None, max_examples=25)
@given(
    name=st.sampled_from(sorted(_LOSS_FACTORIES)),
    exponent=st.floats(-8, 8),
    seed=st.integers(0, 1000),
    zero_row=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_losses_have_finite_gradients_at_any_scale(name, exponent, seed, zero_row, dtype):
    scale = 10.0 ** exponent
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(6, 4, generator=g, dtype=dtype) * scale).requires_grad_()
    p2 = (torch.randn(TINY.n_leaves, 4, generator=g, dtype=dtype) * scale).requires_grad_()
    p1 = (torch.randn(TINY.n_tops, 4, generator=g, dtype=dtype) * scale).requires_grad_()
    logits = (torch.randn(6, TINY.n_leaves, generator=g, dtype=dtype) * scale).requires_grad_()
    if zero_row:
        z.data[0] = 0
        logits.data[0] = 0
    y = torch.randint(0, TINY.n_leaves, (6,), generator=g)
    total = _LOSS_FACTORIES[name]()(ProxyOutput(logits, z, p2, p1), y)
    assert torch.isfinite(total)
    total.backward()
    for t in (z, p2, p1, logits):
        if t.grad is not None:
            assert torch.isfinite(t.grad).all()


# -------------------------------------------------------------------- modules
def test_proxy_net_cosine_head_and_shapes():
    net = ProxyNet(7, n_classes=6, n_tops=3, embedding_dim=5).eval()
    x = torch.randn(4, 7)
    out = net(x)
    assert isinstance(out, ProxyOutput) and isinstance(out, tuple)
    assert out.logits.shape == (4, 6) and out.top_proxies.shape == (3, 5)
    ref = torch.tensor([[_cos(zi, p) / 0.07 for p in out.proxies.detach().numpy()]
                        for zi in out.embedding.detach().numpy()])
    assert torch.allclose(out.logits.detach().double(), ref.double(), atol=1e-4)
    # rebuild from an iterable, as skorch's to_device does
    assert type(out)(iter(out)).logits is out.logits
    names = [n for n, _ in net.named_parameters()]
    assert "proxies" in names and "top_proxies" in names  # the optimizer sees them


@pytest.mark.parametrize("encoder", ["linear", "mlp"])
@pytest.mark.parametrize("head", ["cosine", "linear", "mlp"])
def test_proxy_net_variants(encoder, head):
    net = ProxyNet(9, n_classes=4, n_tops=2, embedding_dim=8, encoder=encoder, head=head)
    out = net(torch.randn(5, 9))
    assert out.logits.shape == (5, 4)
    assert out.embedding.shape == (5, 8)
    out.logits.sum().backward()


def test_feature_augmentation():
    torch.manual_seed(0)
    aug = FeatureAugmentation(noise_std=0.0, max_mask_fraction=0.7)
    x = torch.ones(2000, 50)
    assert torch.equal(aug.eval()(x), x)
    masked = aug.train()(x)
    frac_zero = (masked == 0).float().mean(dim=1)
    assert frac_zero.max() <= 0.95 and frac_zero.mean() == pytest.approx(0.35, abs=0.03)
    noisy = FeatureAugmentation(noise_std=1e-4, max_mask_fraction=0.0).train()(x)
    assert 0 < (noisy - x).std() < 2e-4
