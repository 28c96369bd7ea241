"""Tests of theory.dynamics: reduced flows, exact GD maps, crossing times."""
import types

import numpy as np
import pytest
import scipy.integrate

from linfusion.analysis import crossing_time
from theory.deep import deep_time_ratio
from theory.dynamics import chain_flow, chain_map, chain_map_many, effective_seed, flow, gram_map, rank_one_map
from theory.fixed_points import early_fixed_points, quadratic_loss
from theory.two_layer import time_ratio_toy, toy_stats


# ---------------------------------------------------------------------------------------
# Plain-numpy gradient-descent references (independent of the code under test).
# ---------------------------------------------------------------------------------------

def gd_late(sigma, syx, w1s, w2s, dims, lr, n_epochs, wd=0.0):
    """Full-batch GD of two-layer late fusion on moments; W_tot at every epoch."""
    w1s = [w.copy() for w in w1s]
    w2s = [w.copy() for w in w2s]
    edges = np.concatenate([[0], np.cumsum(dims)])
    out = []
    for _ in range(n_epochs + 1):
        w_tot = np.concatenate([w2 @ w1 for w1, w2 in zip(w1s, w2s)], axis=1)
        out.append(w_tot[0].copy())
        g = syx - w_tot @ sigma
        for k in range(len(dims)):
            g_k = g[:, edges[k]:edges[k + 1]]
            d1 = -(w2s[k].T @ g_k) + wd * w1s[k]
            d2 = -(g_k @ w1s[k].T) + wd * w2s[k]
            w1s[k] = w1s[k] - lr * d1
            w2s[k] = w2s[k] - lr * d2
    return np.array(out)


def gd_early(sigma, syx, w1, w2, lr, n_epochs, wd=0.0):
    w1, w2 = w1.copy(), w2.copy()
    out = []
    for _ in range(n_epochs + 1):
        w_tot = w2 @ w1
        out.append(w_tot[0].copy())
        g = syx - w_tot @ sigma
        w1, w2 = w1 - lr * (-(w2.T @ g) + wd * w1), w2 - lr * (-(g @ w1.T) + wd * w2)
    return np.array(out)


def gd_deep_width1(sigma, syx, pre, post, lr, n_epochs):
    """GD of a width-1-per-path deep fusion net by generic backprop over layer matrices.

    Layers 1..L_f-1 are diagonal K×K (one encoder unit per modality, off-diagonals masked),
    layer L_f is the 1×K fusion row, later layers are 1×1.
    """
    n_mod, l_f = pre.shape
    mats, masks = [], []
    for layer in range(l_f - 1):
        mats.append(np.diag(pre[:, layer]))
        masks.append(np.eye(n_mod))
    mats.append(pre[:, l_f - 1][None, :])
    masks.append(np.ones((1, n_mod)))
    for c in post:
        mats.append(np.array([[c]]))
        masks.append(np.ones((1, 1)))
    out = []
    for _ in range(n_epochs + 1):
        w_tot = np.eye(n_mod)
        below = []
        for m in mats:
            below.append(w_tot)
            w_tot = m @ w_tot
        out.append(w_tot[0].copy())
        g = syx - w_tot @ sigma
        above = np.eye(1)
        new = [None] * len(mats)
        for i in range(len(mats) - 1, -1, -1):
            new[i] = mats[i] + lr * masks[i] * (above.T @ g @ below[i].T)
            above = above @ mats[i]
        mats = new
    return np.array(out)


def logistic(t, w0, s, var):
    """Closed form of τ dW/dt = 2 W (s − var W): logistic with rate 2s, capacity s/var."""
    cap = s / var
    return cap / (1 + (cap / w0 - 1) * np.exp(-2 * s * t))


# ---------------------------------------------------------------------------------------
# Flow: closed forms, limits, consistency.
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("r", [1.5, 2.0, 3.0])
def test_flow_matches_logistic_closed_form_uncorrelated(r):
    sigma, syx, syy = toy_stats(0.0, r)
    lr, u0 = 0.04, 1e-4
    epochs = np.arange(0, 1501, 5.0)
    tr = flow(sigma, syx, syy, (1, 1), epochs, lr, u0=u0)
    t = lr * epochs
    w0 = u0 ** 2
    np.testing.assert_allclose(tr.block(0)[:, 0], logistic(t, w0, r * r, r * r), rtol=1e-7)
    np.testing.assert_allclose(tr.block(1)[:, 0], logistic(t, w0, 1.0, 1.0), rtol=1e-7)
    # half-way crossings of the logistic: t/τ = ln((K − W0)/W0)/(2s) with K = 1
    assert tr.t_a == pytest.approx(np.log((1 - w0) / w0) / (2 * r * r) / lr, rel=1e-7)
    assert tr.t_b == pytest.approx(np.log((1 - w0) / w0) / 2 / lr, rel=1e-7)
    assert tr.ratio == pytest.approx(r * r, rel=1e-6)


def test_flow_three_independent_modalities():
    sigma = np.diag([1.0, 4.0, 2.0])
    w = np.array([1.0, 1.0, 0.5])
    syx = (w @ sigma)[None, :]
    syy = float(w @ sigma @ w)
    lr, u0 = 0.1, 1e-3
    tr = flow(sigma, syx, syy, (1, 1, 1), np.arange(0, 400.0), lr, u0=u0)
    s = syx[0]
    targets = s / np.diag(sigma)
    expect = np.log((targets - u0 ** 2) / u0 ** 2) / (2 * s) / lr
    np.testing.assert_allclose(tr.t_cross, expect, rtol=1e-6)
    np.testing.assert_allclose(tr.thresholds, targets / 2)


@pytest.mark.parametrize("rho", [0.5, -0.5])
def test_flow_ratio_converges_to_closed_form_as_u0_shrinks(rho):
    sigma, syx, syy = toy_stats(rho, 2.0)
    limit = time_ratio_toy(rho, 2.0)
    errors = []
    for u0 in (1e-3, 1e-6, 1e-12):
        tr = flow(sigma, syx, syy, (1, 1), np.linspace(0, 80, 801), 1.0, u0=u0)
        errors.append(abs(tr.ratio - limit))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.35 * errors[0]


def test_flow_signed_case_follows_signed_ratio():
    # rho < -1/r: B's right-sign mode first decays, then regrows (theory.md §6.3).
    sigma, syx, syy = toy_stats(-0.9, 2.0)
    tr = flow(sigma, syx, syy, (1, 1), np.linspace(0, 400, 801), 1.0, u0=1e-12)
    signed, norm = time_ratio_toy(-0.9, 2.0), time_ratio_toy(-0.9, 2.0, form="norm")
    assert abs(tr.ratio - signed) < 0.2 * signed
    assert abs(tr.ratio - signed) < abs(tr.ratio - norm)
    assert tr.block(1).min() > 0  # the scalar flow never changes sign


def test_early_flow_single_transition():
    sigma, syx, syy = toy_stats(0.0, 2.0)
    tr = flow(sigma, syx, syy, (1, 1), np.arange(0, 1001.0), 0.04, fusion="early", u0=1e-5)
    assert 1.0 <= tr.ratio < 1.3  # theory.md §6.2: close to 1, slightly above
    np.testing.assert_allclose(tr.w_tot[-1], [1.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("rho", [0.0, 0.5, -0.5])
@pytest.mark.parametrize("depth", [2, 3, 4])
def test_chain_flow_late_limit_equals_per_modality_flow(rho, depth):
    sigma, syx, syy = toy_stats(rho, 2.0)
    u0 = 0.08 if depth > 2 else 1e-4
    epochs = np.arange(0, 8001.0, 10)
    a = chain_flow(sigma, syx, syy, depth, depth, epochs, 0.04, u0=u0)
    b = flow(sigma, syx, syy, (1, 1), epochs, 0.04, depth=depth, u0=u0)
    np.testing.assert_allclose(a.w_tot, b.w_tot, rtol=1e-6, atol=1e-9)
    assert a.t_a == pytest.approx(b.t_a, rel=1e-6) and a.t_b == pytest.approx(b.t_b, rel=1e-6)


@pytest.mark.parametrize("u0", [0.05, 1e-5])
@pytest.mark.parametrize("depth", [2, 3])
def test_chain_flow_early_limit_equals_early_flow(depth, u0):
    sigma, syx, syy = toy_stats(0.3, 2.0)
    v0 = np.sqrt(2) * u0
    epochs = np.arange(0, 2001.0, 10)
    a = chain_flow(sigma, syx, syy, depth, 1, epochs, 0.04, u0=u0)
    b = flow(sigma, syx, syy, (1, 1), epochs, 0.04, fusion="early", depth=depth,
             w_init=v0 ** (depth - 1) * np.array([u0, u0]))
    np.testing.assert_allclose(a.w_tot, b.w_tot, rtol=1e-6, atol=1e-9 * u0)


@pytest.mark.parametrize("fuse_depth", [1, 2, 3, 4])
def test_chain_scales_are_balanced_and_give_w_tot(fuse_depth):
    # v² − Σ u_X² is conserved by the flow (theory.md §5), so a balanced start stays balanced.
    sigma, syx, syy = toy_stats(-0.5, 2.0)
    ep = np.arange(0, 4001.0, 20)
    tr = chain_flow(sigma, syx, syy, 4, fuse_depth, ep, 0.04, u0=0.1)
    u, m = tr.scales[:, :2], 4 - fuse_depth
    if m:
        v = tr.scales[:, 2]
        np.testing.assert_allclose(v ** 2, np.sum(u ** 2, axis=1), rtol=1e-6)
        np.testing.assert_allclose(tr.w_tot, v[:, None] ** m * u ** fuse_depth, rtol=1e-10)
    else:
        assert tr.scales.shape == (ep.size, 2)
    mp = chain_map(sigma, syx, syy, 4, fuse_depth, np.arange(0, 4001, 20), 0.04, u0=0.1)
    assert mp.scales.shape == (ep.size, 2 * fuse_depth + m)
    pre = mp.scales[:, :2 * fuse_depth].reshape(-1, 2, fuse_depth)
    post = np.prod(mp.scales[:, 2 * fuse_depth:], axis=1)
    np.testing.assert_allclose(mp.w_tot, post[:, None] * np.prod(pre, axis=2), rtol=1e-12)


@pytest.mark.parametrize("fuse_depth", [2, 3])
def test_chain_flow_close_to_closed_form_at_small_init(fuse_depth):
    # theory.md §6.6: the closed form is within 1 % of the balanced chain at u0 = 0.03.
    sigma, syx, syy = toy_stats(0.0, 2.0)
    tr = chain_flow(sigma, syx, syy, 4, fuse_depth, np.linspace(0, 600, 601), 1.0, u0=0.03)
    assert tr.ratio == pytest.approx(deep_time_ratio(4, fuse_depth, 2.0, 0.0, 0.03), rel=0.01)


def test_vector_flow_runs_and_converges():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 5))
    sigma = a @ a.T / 5 + np.diag([2.0, 2.0, 1.0, 1.0, 1.0])
    w_star = rng.uniform(-1, 1, 5)
    syx = (w_star @ sigma)[None, :]
    syy = float(w_star @ sigma @ w_star)
    for fusion in ("late", "early"):
        tr = flow(sigma, syx, syy, (2, 3), np.linspace(0, 3000, 301), 0.04, fusion=fusion, u0=1e-4,
                  sigma_pop=sigma, w_star=w_star)
        np.testing.assert_allclose(tr.w_tot[-1], w_star, atol=1e-5)
        assert tr.e_g[-1] < 1e-9 and tr.e_g[0] > 0.1
        np.testing.assert_allclose(tr.loss, tr.e_g, atol=1e-12)  # noiseless, population stats


# ---------------------------------------------------------------------------------------
# Exact maps against plain gradient descent.
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", [-0.9, 0.0, 0.5])
def test_rank_one_map_matches_width_one_gd(rho):
    sigma, syx, syy = toy_stats(rho, 2.0)
    lr, u0, n = 0.04, 1e-3, 800
    ref = gd_late(sigma, syx, [np.array([[u0]])] * 2, [np.array([[u0]])] * 2, (1, 1), lr, n)
    tr = rank_one_map(sigma, syx, syy, (1, 1), np.arange(n + 1), lr, u0=u0)
    np.testing.assert_allclose(tr.w_tot, ref, rtol=1e-12, atol=1e-15)


def test_rank_one_map_vector_and_early_match_gd():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 3))
    sigma = a @ a.T / 3 + np.eye(3)
    syx = rng.normal(size=(1, 3))
    syy = (syx @ np.linalg.solve(sigma, syx.T)).item() + 0.1
    w_init = np.array([0.02, -0.01, 0.03])
    lr, n = 0.05, 400
    s_a, s_b = np.linalg.norm(w_init[:2]), abs(w_init[2])
    w1s = [np.sqrt(s_a) * (w_init[:2] / s_a)[None, :], np.sqrt(s_b) * np.sign(w_init[2:])[None, :]]
    w2s = [np.array([[np.sqrt(s_a)]]), np.array([[np.sqrt(s_b)]])]
    ref = gd_late(sigma, syx, w1s, w2s, (2, 1), lr, n)
    tr = rank_one_map(sigma, syx, syy, (2, 1), np.arange(n + 1), lr, w_init=w_init)
    np.testing.assert_allclose(tr.w_tot, ref, rtol=1e-11, atol=1e-14)
    s = np.linalg.norm(w_init)
    ref_e = gd_early(sigma, syx, np.sqrt(s) * (w_init / s)[None, :], np.array([[np.sqrt(s)]]), lr, n)
    tr_e = rank_one_map(sigma, syx, syy, (2, 1), np.arange(n + 1), lr, fusion="early", w_init=w_init)
    np.testing.assert_allclose(tr_e.w_tot, ref_e, rtol=1e-11, atol=1e-14)


def _width5(rng, dims, scale=0.3, width=5):
    w1s = [scale * rng.normal(size=(width, d)) for d in dims]
    w2s = [scale * rng.normal(size=(1, width)) for _ in dims]
    return w1s, w2s


def _problem(rng, dims):
    d = sum(dims)
    a = rng.normal(size=(d, d))
    sigma = a @ a.T / d + np.eye(d)
    syx = rng.normal(size=(1, d))
    syy = (syx @ np.linalg.solve(sigma, syx.T)).item() + 0.2
    return sigma, syx, syy


@pytest.mark.parametrize("dims", [(1, 1), (2, 3), (3, 5)])  # python path (D <= 6) and numpy path
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_gram_map_matches_gd_late(dims, wd):
    rng = np.random.default_rng(sum(dims))
    sigma, syx, syy = _problem(rng, dims)
    w1s, w2s = _width5(rng, dims)
    lr, n = 0.05, 300
    ref = gd_late(sigma, syx, w1s, w2s, dims, lr, n, wd=wd)
    tr = gram_map(sigma, syx, syy, dims, np.arange(n + 1), lr, w1s, w2s, weight_decay=wd)
    assert np.max(np.abs(tr.w_tot - ref)) <= 1e-10 * np.max(np.abs(ref))


@pytest.mark.parametrize("dims", [(1, 1), (2, 3), (3, 5)])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_gram_map_matches_gd_early(dims, wd):
    rng = np.random.default_rng(10 + sum(dims))
    sigma, syx, syy = _problem(rng, dims)
    w1 = 0.3 * rng.normal(size=(5, sum(dims)))
    w2 = 0.3 * rng.normal(size=(1, 5))
    lr, n = 0.05, 300
    ref = gd_early(sigma, syx, w1, w2, lr, n, wd=wd)
    tr = gram_map(sigma, syx, syy, dims, np.arange(n + 1), lr, w1, w2, fusion="early", weight_decay=wd)
    assert np.max(np.abs(tr.w_tot - ref)) <= 1e-10 * np.max(np.abs(ref))


def closed_gram_map(sigma, syx, w1s, w2s, dims, lr, n_epochs, wd):
    """The documented Gram-state map, transcribed group by group with plain matrices."""
    edges = np.concatenate([[0], np.cumsum(dims)])
    ws = [(w2 @ w1)[0] for w1, w2 in zip(w1s, w2s)]
    qs = [w1.T @ w1 for w1 in w1s]
    ns = [float((w2 @ w2.T)[0, 0]) for w2 in w2s]
    c = 1.0 - lr * wd
    out = [np.concatenate(ws)]
    for _ in range(n_epochs):
        g_all = syx[0] - np.concatenate(ws) @ sigma
        for k in range(len(dims)):
            g, w, q, n = g_all[edges[k]:edges[k + 1]], ws[k], qs[k], ns[k]
            ws[k] = c * c * w + c * lr * (n * g + g @ q) + lr * lr * (g @ w) * g
            qs[k] = c * c * q + c * lr * (np.outer(g, w) + np.outer(w, g)) + lr * lr * n * np.outer(g, g)
            ns[k] = c * c * n + 2 * c * lr * (w @ g) + lr * lr * (g @ q @ g)
        out.append(np.concatenate(ws))
    return np.array(out)


@pytest.mark.parametrize("dims", [(1, 1), (2, 3), (1, 2, 2)])
def test_gram_map_is_the_documented_closed_map(dims):
    # One implementation of the update; here against the formula of its docstring.
    rng = np.random.default_rng(sum(dims))
    sigma, syx, syy = _problem(rng, dims)
    w1s, w2s = _width5(rng, dims, scale=1e-1)
    ref = closed_gram_map(sigma, syx, w1s, w2s, dims, 0.04, 800, 0.01)
    tr = gram_map(sigma, syx, syy, dims, np.arange(801), 0.04, w1s, w2s, weight_decay=0.01)
    np.testing.assert_allclose(tr.w_tot, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fuse_depth", [1, 2, 3, 4])
def test_chain_map_matches_deep_width_one_gd(fuse_depth):
    sigma, syx, syy = toy_stats(0.3, 2.0)
    lr, n, depth = 0.04, 600, 4
    rng = np.random.default_rng(fuse_depth)
    pre = 0.3 + 0.2 * rng.random((2, fuse_depth))
    post = 0.4 + 0.2 * rng.random(depth - fuse_depth)
    ref = gd_deep_width1(sigma, syx, pre, post, lr, n)
    tr = chain_map(sigma, syx, syy, depth, fuse_depth, np.arange(n + 1), lr, layer_scales=(pre, post))
    np.testing.assert_allclose(tr.w_tot, ref, rtol=1e-12, atol=1e-15)
    # balanced start from u0
    u0 = 0.1
    pre_b = np.full((2, fuse_depth), u0)
    post_b = np.full(depth - fuse_depth, np.sqrt(2) * u0)
    ref_b = gd_deep_width1(sigma, syx, pre_b, post_b, lr, n)
    tr_b = chain_map(sigma, syx, syy, depth, fuse_depth, np.arange(n + 1), lr, u0=u0)
    np.testing.assert_allclose(tr_b.w_tot, ref_b, rtol=1e-12, atol=1e-15)


def test_map_approaches_flow_as_lr_shrinks_and_flow_is_early_at_lr_004():
    sigma, syx, syy = toy_stats(0.5, 2.0)
    u0 = 1e-4
    small = 0.002
    ep = np.arange(0, 12001)
    m = rank_one_map(sigma, syx, syy, (1, 1), ep, small, u0=u0)
    f = flow(sigma, syx, syy, (1, 1), ep, small, u0=u0)
    assert m.t_a == pytest.approx(f.t_a, rel=0.01) and m.t_b == pytest.approx(f.t_b, rel=0.01)
    ep = np.arange(0, 801)
    m = rank_one_map(sigma, syx, syy, (1, 1), ep, 0.04, u0=u0)
    f = flow(sigma, syx, syy, (1, 1), ep, 0.04, u0=u0)
    assert 0.03 < 1 - f.t_a / m.t_a < 0.15  # theory.md §6.10: the flow runs early in t_A


def test_effective_seed_predicts_random_init_run():
    sigma, syx, syy = toy_stats(0.5, 2.0)
    rng = np.random.default_rng(5)
    w1s = [1e-9 * rng.normal(size=(100, 1)) for _ in range(2)]
    w2s = [1e-9 * rng.normal(size=(1, 100)) for _ in range(2)]
    seed = effective_seed(sigma, syx, (1, 1), w1s, w2s)
    expect = [np.sum((w1[:, 0] + w2[0]) ** 2) / 4 for w1, w2 in zip(w1s, w2s)]
    np.testing.assert_allclose(seed.s, expect)
    np.testing.assert_allclose(seed.w_init, expect)  # both targets positive: direction +1
    ep = np.arange(0, 1201)
    exact = gram_map(sigma, syx, syy, (1, 1), ep, 0.04, w1s, w2s)
    reduced = rank_one_map(sigma, syx, syy, (1, 1), ep, 0.04, w1=w1s, w2=w2s)
    assert reduced.t_a == pytest.approx(exact.t_a, rel=1e-3)
    assert reduced.t_b == pytest.approx(exact.t_b, rel=1e-3)
    from_seed = flow(sigma, syx, syy, (1, 1), ep, 0.04, w1=w1s, w2=w2s)
    assert from_seed.t_a < exact.t_a


def test_effective_seed_uses_a_minus_b_for_negative_initial_correlation():
    # rho = -0.9, r = 2: Σyx_B < 0 while B's final weight is +1, so B's seed is ‖a − b‖²/4
    # with a along Σyx_B (= −W¹ column), i.e. ‖W¹ + W²ᵀ‖²/4 in the positive direction.
    sigma, syx, _ = toy_stats(-0.9, 2.0)
    assert syx[0, 1] < 0
    rng = np.random.default_rng(6)
    w1s = [rng.normal(size=(4, 1)) for _ in range(2)]
    w2s = [rng.normal(size=(1, 4)) for _ in range(2)]
    seed = effective_seed(sigma, syx, (1, 1), w1s, w2s)
    a_b = -w1s[1][:, 0]
    assert seed.s[1] == pytest.approx(np.sum((a_b - w2s[1][0]) ** 2) / 4)
    assert seed.w_init[1] > 0


# ---------------------------------------------------------------------------------------
# Singular Σ (n < D samples, theory.md §6.8).
# ---------------------------------------------------------------------------------------

def _few_samples(rng, dims, n, noise=0.1):
    d = sum(dims)
    x = rng.normal(size=(n, d)) * np.r_[np.full(dims[0], 1.5), np.ones(d - dims[0])]
    y = x @ rng.normal(size=d) + noise * rng.normal(size=n)
    return x.T @ x / n, (y @ x)[None, :] / n, float(y @ y) / n


@pytest.mark.parametrize("dims", [(3, 3), (4, 5)])   # python path (D <= 6) and numpy path
def test_gram_map_on_singular_sigma_matches_gd(dims):
    rng = np.random.default_rng(20 + sum(dims))
    sigma, syx, syy = _few_samples(rng, dims, n=4)
    assert np.linalg.matrix_rank(sigma) == 4 < sum(dims)
    lr, n = 0.02, 300          # λ_max(Σ) ≈ 10: well inside the stability bound
    w1s, w2s = _width5(rng, dims)
    ref = gd_late(sigma, syx, w1s, w2s, dims, lr, n)
    tr = gram_map(sigma, syx, syy, dims, np.arange(n + 1), lr, w1s, w2s)
    assert np.max(np.abs(tr.w_tot - ref)) <= 1e-10 * np.max(np.abs(ref))
    w1 = 0.3 * rng.normal(size=(5, sum(dims)))
    w2 = 0.3 * rng.normal(size=(1, 5))
    ref = gd_early(sigma, syx, w1, w2, lr, n)
    tr = gram_map(sigma, syx, syy, dims, np.arange(n + 1), lr, w1, w2, fusion="early")
    assert np.max(np.abs(tr.w_tot - ref)) <= 1e-10 * np.max(np.abs(ref))


def test_singular_sigma_early_reaches_minimum_norm_late_does_not():
    """§6.8: both interpolate; early fusion ends at Σyx Σ⁺, late fusion at a larger-norm point."""
    rng = np.random.default_rng(7)
    dims = (3, 3)
    sigma, syx, syy = _few_samples(rng, dims, n=4)
    m_star = early_fixed_points(sigma, syx, syy, dims)[1].w_tot[0]
    ep = np.arange(0, 15001, 100)
    early = gram_map(sigma, syx, syy, dims, ep, 0.02, 1e-6 * rng.normal(size=(8, 6)),
                     1e-6 * rng.normal(size=(1, 8)), fusion="early")
    late = gram_map(sigma, syx, syy, dims, ep, 0.02, [1e-6 * rng.normal(size=(8, 3)) for _ in dims],
                    [1e-6 * rng.normal(size=(1, 8)) for _ in dims])
    assert early.loss[-1] < 1e-12 and late.loss[-1] < 1e-12
    np.testing.assert_allclose(early.w_tot[-1], m_star, atol=1e-5)
    assert np.linalg.norm(late.w_tot[-1]) > 1.1 * np.linalg.norm(m_star)
    assert late.w_norms[-1, 0] > np.linalg.norm(m_star[:3])        # over-weights A, the first learned
    # the flow and the rank-one map accept the singular moments as well
    assert flow(sigma, syx, syy, dims, ep, 0.02, fusion="early", u0=1e-3).loss[-1] < 1e-8
    assert rank_one_map(sigma, syx, syy, dims, ep, 0.02, u0=1e-3).loss[-1] < 1e-8


def test_chain_map_on_singular_sigma_matches_gd():
    # x_B = 0.5 x_A exactly: Σ has rank 1, Σyx lies in its range
    sigma = np.array([[4.0, 2.0], [2.0, 1.0]])
    syx = np.array([[6.0, 3.0]])
    pre, post = np.full((2, 2), 0.3), np.full(2, 0.4)
    ref = gd_deep_width1(sigma, syx, pre, post, 0.02, 400)
    tr = chain_map(sigma, syx, 9.0, 4, 2, np.arange(401), 0.02, layer_scales=(pre, post))
    np.testing.assert_allclose(tr.w_tot, ref, rtol=1e-12, atol=1e-15)


def test_indefinite_or_asymmetric_sigma_is_rejected():
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])
    syx = np.array([[1.0, 1.0]])
    msg = (r"^sigma has smallest eigenvalue -1, must be positive semi-definite "
           r"\(>= -1e-12 × its largest eigenvalue\)\.$")
    ep = np.arange(11)
    w1, w2 = [np.ones((2, 1))] * 2, [np.ones((1, 2))] * 2
    for call in (lambda: gram_map(bad, syx, 5.0, (1, 1), ep, 0.04, w1, w2),
                 lambda: flow(bad, syx, 5.0, (1, 1), ep, 0.04, u0=1e-3),
                 lambda: chain_map(bad, syx, 5.0, 3, 2, ep, 0.04, u0=0.1),
                 lambda: chain_map_many(bad, syx[0], 3, 2, 0.04, 10, u0=0.1)):
        with pytest.raises(ValueError, match=msg):
            call()
    with pytest.raises(ValueError, match=r"^sigma is not symmetric, must be a symmetric covariance matrix\.$"):
        gram_map([[1.0, 0.5], [0.0, 1.0]], syx, 5.0, (1, 1), ep, 0.04, w1, w2)
    # rounding below −1e-12 × λ_max is not indefiniteness
    tiny = np.array([[1.0, 1.0], [1.0, 1.0 - 1e-14]])
    assert np.linalg.eigvalsh(tiny)[0] < 0
    gram_map(tiny, syx, 5.0, (1, 1), ep, 0.04, w1, w2)


# ---------------------------------------------------------------------------------------
# Many scalar chains at once.
# ---------------------------------------------------------------------------------------

def _chain_batch(rng, n, fuse_depth, depth=4):
    rhos = rng.uniform(-0.7, 0.7, n)
    stats = [toy_stats(r, 2.0) for r in rhos]
    sigma = np.array([s[0] for s in stats])
    syx = np.array([s[1][0] for s in stats])
    pre = rng.uniform(0.05, 0.15, size=(n, 2, fuse_depth))
    post = rng.uniform(0.05, 0.15, size=(n, depth - fuse_depth))
    return sigma, syx, pre, post


@pytest.mark.parametrize("fuse_depth", [1, 2, 3, 4])
def test_chain_map_many_is_chain_map_chain_by_chain(fuse_depth):
    """One update rule: a chain of the batch follows chain_map bit for bit."""
    rng = np.random.default_rng(30 + fuse_depth)
    sigma, syx, pre, post = _chain_batch(rng, 6, fuse_depth)
    for crossing in ("norm", "projection"):
        many = chain_map_many(sigma, syx, 4, fuse_depth, 0.04, 20000, layer_scales=(pre, post),
                              crossing=crossing)
        assert np.all(np.isfinite(many.t_cross)) and not many.diverged.any()
        for i in range(6):
            one = chain_map(sigma[i], syx[i], 10.0, 4, fuse_depth, np.arange(many.n_epochs + 1), 0.04,
                            layer_scales=(pre[i], post[i]), crossing=crossing)
            assert one.thresholds == tuple(many.thresholds[i])
            assert (one.t_a, one.t_b) == tuple(many.t_cross[i])
    u0 = np.linspace(0.1, 0.15, 6)
    many = chain_map_many(sigma, syx, 4, fuse_depth, 0.04, 40000, u0=u0)
    for i in (0, 5):
        one = chain_map(sigma[i], syx[i], 10.0, 4, fuse_depth, np.arange(many.n_epochs + 1), 0.04, u0=u0[i])
        assert (one.t_a, one.t_b) == tuple(many.t_cross[i])
    np.testing.assert_array_equal(many.ratio, many.t_b / many.t_a)


@pytest.mark.parametrize("fuse_depth", [1, 2, 4])
def test_chain_map_many_matches_deep_width_one_gd(fuse_depth):
    rng = np.random.default_rng(40 + fuse_depth)
    sigma, syx, pre, post = _chain_batch(rng, 3, fuse_depth)
    pre, post = pre + 0.25, post + 0.25          # large scalars: crossings within a few hundred epochs
    many = chain_map_many(sigma, syx, 4, fuse_depth, 0.04, 800, layer_scales=(pre, post))
    for i in range(3):
        ref = gd_deep_width1(sigma[i], syx[i][None], pre[i], post[i], 0.04, 800)
        expect = [crossing_time(np.arange(801.0), np.abs(ref[:, k]), many.thresholds[i, k]) for k in range(2)]
        np.testing.assert_allclose(many.t_cross[i], expect, rtol=1e-10)


def test_chain_map_many_shared_moments_stop_thresholds_and_divergence():
    sigma, syx, _ = toy_stats(0.3, 2.0)
    rng = np.random.default_rng(50)
    pre = rng.uniform(0.05, 0.15, size=(5, 2, 2))
    post = rng.uniform(0.05, 0.15, size=(5, 2))
    full = chain_map_many(sigma, syx, 4, 2, 0.04, 40000, layer_scales=(pre, post))
    assert full.t_cross.shape == (5, 2) and np.all(full.t_b > full.t_a)
    np.testing.assert_allclose(full.thresholds, [[0.5 * (1 + 0.3 / 2), 0.5]] * 5)
    # stop at A: the loop ends at the last A crossing, before any B crossing
    at_a = chain_map_many(sigma, syx, 4, 2, 0.04, 40000, layer_scales=(pre, post), stop=0)
    np.testing.assert_array_equal(at_a.t_a, full.t_a)
    assert at_a.n_epochs == int(np.ceil(np.max(full.t_a))) < np.max(full.t_b)
    np.testing.assert_array_equal(at_a.t_b, np.where(full.t_b <= at_a.n_epochs, full.t_b, np.nan))
    # explicit thresholds, shared by every chain; one unreachable: NaN, and the run goes to max_epochs
    thr = chain_map_many(sigma, syx, 4, 2, 0.04, 3000, layer_scales=(pre, post), thresholds=[0.3, 5.0])
    assert np.all(np.isfinite(thr.t_a)) and np.all(np.isnan(thr.t_b)) and thr.n_epochs == 3000
    # a learning rate above the stability bound: diverged, not an exception
    big = chain_map_many(sigma, syx, 4, 2, 3.0, 1000, layer_scales=(pre + 0.5, post + 0.5), thresholds=[1e300] * 2)
    assert big.diverged.all() and np.all(np.isnan(big.t_cross)) and big.n_epochs < 1000


def test_chain_map_many_errors():
    sigma, syx, _ = toy_stats(0.3, 2.0)
    with pytest.raises(ValueError, match=r"the batch sizes \(sigma: 3, initial_condition: 4\) must agree"):
        chain_map_many(np.stack([sigma] * 3), syx[0], 4, 2, 0.04, 10, u0=np.full(4, 0.1))
    with pytest.raises(ValueError, match=r"layer_scales\[0\] \(pre\) has shape \(2, 3\), must be \(2, 2\) or "
                                         r"\(R, 2, 2\)"):
        chain_map_many(sigma, syx[0], 4, 2, 0.04, 10, layer_scales=(np.ones((2, 3)), np.ones(2)))
    with pytest.raises(ValueError, match=r"u0 == -0.1, must be > 0"):
        chain_map_many(sigma, syx[0], 4, 2, 0.04, 10, u0=[0.1, -0.1])
    with pytest.raises(ValueError, match=r"stop == 2, must be <= K - 1 \(1\)"):
        chain_map_many(sigma, syx[0], 4, 2, 0.04, 10, u0=0.1, stop=2)
    with pytest.raises(ValueError, match=r"exactly one initial condition must be given \(u0, layer_scales\)"):
        chain_map_many(sigma, syx[0], 4, 2, 0.04, 10)


# ---------------------------------------------------------------------------------------
# Records, conventions, crossing times.
# ---------------------------------------------------------------------------------------

def test_trajectory_record_fields():
    sigma, syx, syy = toy_stats(0.5, 2.0)
    ep = np.arange(0, 1001, 10)
    tr = flow(sigma, syx, syy, (1, 1), ep, 0.04, u0=1e-4, sigma_pop=sigma, w_star=[1.0, 1.0])
    assert tr.thresholds == pytest.approx((0.625, 0.5))  # half of 1 + ρ/r, half of W_B(M_*)
    assert tr.w_tot.shape == (ep.size, 2) and tr.loss.shape == (ep.size,)
    assert tr.block(0).shape == (ep.size, 1) and tr.w_norms.shape == (ep.size, 2)
    np.testing.assert_allclose(tr.t_tau, 0.04 * ep)
    assert tr.t_a_tau == pytest.approx(0.04 * tr.t_a)
    assert tr.ratio == pytest.approx(tr.t_b / tr.t_a)
    for i in (0, 30, 70):
        assert tr.loss[i] == pytest.approx(quadratic_loss(sigma, syx, syy, tr.w_tot[i]), abs=1e-12)
    assert tr.method == "flow" and tr.crossing == "norm"
    # the crossing agrees with interpolating the trajectory itself
    fine = flow(sigma, syx, syy, (1, 1), np.arange(0, 1001.0), 0.04, u0=1e-4)
    assert crossing_time(fine.epochs, fine.block(0)[:, 0], 0.625) == pytest.approx(tr.t_a, rel=1e-3)
    proj = flow(sigma, syx, syy, (1, 1), ep, 0.04, u0=1e-4, crossing="projection")
    assert proj.t_a == pytest.approx(tr.t_a, rel=1e-9)  # scalar, positive: same quantity
    short = flow(sigma, syx, syy, (1, 1), np.arange(0, 31), 0.04, u0=1e-4)
    assert np.isnan(short.t_a) and np.isnan(short.ratio)           # not crossed: NaN (never None)


def test_crossing_time_interpolates_first_upward_crossing():
    # The one crossing rule (linfusion.analysis.crossing_time) that every theory record uses.
    ep = np.arange(6.0)
    vals = np.array([0.0, 0.2, 0.6, 0.4, 0.7, 1.0])
    assert crossing_time(ep, vals, 0.5) == pytest.approx(1.75)
    assert np.isnan(crossing_time(ep, vals, 2.0))
    assert np.isnan(crossing_time(ep, 1.0 - vals[[0, 1, 1, 0, 0, 0]], 0.5))   # above from the start: no crossing
    assert crossing_time(ep, 1.0 - vals, 0.5) == pytest.approx(2.5)   # above, dips below, rises again


def test_start_above_threshold_is_no_crossing_in_every_method():
    """Flows, maps and batched chains share the rule of linfusion.analysis.crossing_time: a
    modality that starts at or above its threshold (and stays) has not crossed, nor has one
    that never reaches it: both NaN."""
    sigma, syx, syy = toy_stats(0.0, 2.0)
    ep = np.arange(0, 41)
    w_init = [0.9, 1e-6]                         # A above its threshold 0.5 from the start; B never within 40 epochs
    for tr in (flow(sigma, syx, syy, (1, 1), ep, 0.001, w_init=w_init),
               rank_one_map(sigma, syx, syy, (1, 1), ep, 0.001, w_init=w_init)):
        assert np.isnan(tr.t_a) and np.isnan(tr.t_b) and np.isnan(tr.ratio)
    pre = np.array([[0.9 ** 0.5, 1.0], [1e-3, 1.0]])
    one = chain_map(sigma, syx, syy, 2, 2, ep, 0.001, layer_scales=(pre, np.zeros(0)))
    many = chain_map_many(sigma, syx, 2, 2, 0.001, 40, layer_scales=(pre, np.zeros(0)))
    assert np.isnan(one.t_a) and np.isnan(one.t_b)
    np.testing.assert_array_equal(many.t_cross[0], [np.nan, np.nan])
    assert np.isnan(many.ratio[0])


# ---------------------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------------------

def test_errors_name_parameter_value_and_rule(monkeypatch):
    sigma, syx, syy = toy_stats(0.0, 2.0)
    ep = np.arange(0, 101)
    with pytest.raises(ValueError, match=r"exactly one initial condition must be given \(u0, w1, w_init\); got none"):
        flow(sigma, syx, syy, (1, 1), ep, 0.04)
    with pytest.raises(ValueError, match=r"got u0, w_init"):
        flow(sigma, syx, syy, (1, 1), ep, 0.04, u0=1e-3, w_init=[1e-6, 1e-6])
    with pytest.raises(ValueError, match=r"epochs contains 0.5, must hold whole epochs"):
        rank_one_map(sigma, syx, syy, (1, 1), [0, 0.5, 1], 0.04, u0=1e-3)
    with pytest.raises(ValueError, match=r"epochs is not strictly increasing"):
        flow(sigma, syx, syy, (1, 1), [0, 2, 1], 0.04, u0=1e-3)
    with pytest.raises(ValueError, match=r"epochs\[-1\] == 0.0, must be > 0"):
        flow(sigma, syx, syy, (1, 1), [0.0], 0.04, u0=1e-3)
    with pytest.raises(ValueError, match=r"sigma_pop and w_star must be given together"):
        flow(sigma, syx, syy, (1, 1), ep, 0.04, u0=1e-3, sigma_pop=sigma)
    with pytest.raises(ValueError, match=r"depth == 3, must be 2 when starting from weights"):
        flow(sigma, syx, syy, (1, 1), ep, 0.04, depth=3, w1=[np.ones((2, 1))] * 2, w2=[np.ones((1, 2))] * 2)
    with pytest.raises(ValueError, match=r"w2\[1\] has 3 hidden units, must match w1\[1\] \(2\)"):
        gram_map(sigma, syx, syy, (1, 1), ep, 0.04, [np.ones((2, 1))] * 2, [np.ones((1, 2)), np.ones((1, 3))])
    with pytest.raises(ValueError, match=r"fuse_depth == 5, must be <= depth \(4\)\."):
        chain_flow(sigma, syx, syy, 4, 5, ep, 0.04, u0=0.1)
    with pytest.raises(ValueError, match=r"u_init has 2 entries, must have 3"):
        chain_flow(sigma, syx, syy, 4, 2, ep, 0.04, u_init=[0.1, 0.1])
    with pytest.raises(ValueError, match=r"u0 == -0.1, must be > 0"):
        chain_map(sigma, syx, syy, 4, 2, ep, 0.04, u0=-0.1)
    with pytest.raises(ValueError, match=r"lr == 0.0, must be > 0"):
        flow(sigma, syx, syy, (1, 1), ep, 0.0, u0=1e-3)
    with pytest.raises(ValueError, match=r"weight_decay == -1.0, must be >= 0"):
        rank_one_map(sigma, syx, syy, (1, 1), ep, 0.04, u0=1e-3, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"syx has shape \(2, 2\), must have one row"):
        flow(sigma, np.ones((2, 2)), syy, (1, 1), ep, 0.04, u0=1e-3)
    with pytest.raises(ValueError, match=r"w_init block 1 is zero, must be nonzero"):
        flow(sigma, syx, syy, (1, 1), ep, 0.04, w_init=[1e-3, 0.0])
    with pytest.raises(ValueError, match=r"fusion == 'mid', must be one of 'late', 'early'"):
        flow(sigma, syx, syy, (1, 1), ep, 0.04, u0=1e-3, fusion="mid")
    with pytest.raises(RuntimeError, match=r"the map diverged at epoch \d+ .*lr == 2.0"):
        rank_one_map(sigma, syx, syy, (1, 1), ep, 2.0, u0=0.5)

    def failing(*args, **kwargs):
        return types.SimpleNamespace(success=False, message="Required step size is less than spacing.")

    monkeypatch.setattr(scipy.integrate, "solve_ivp", failing)   # imported by the flows on each call
    with pytest.raises(RuntimeError, match=r"solve_ivp \(LSODA\) failed: Required step size"):
        flow(sigma, syx, syy, (1, 1), ep, 0.04, u0=1e-3)
