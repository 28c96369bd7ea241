"""Tests of theory.fixed_points: late/early fusion fixed points, losses, learning path."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from linfusion.analysis import generalization_error
from theory.fixed_points import (FixedPoint, early_fixed_points,
                                 late_fixed_point, late_fixed_points, late_learning_path,
                                 quadratic_loss, residual_correlation)
from theory.two_layer import toy_stats


def _random_problem(rng, dims, out=1, n=4000, noise=0.3):
    """Sampled data with correlated modalities and its empirical moments."""
    d = sum(dims)
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    x = rng.normal(size=(n, d)) @ mix.T
    w_true = rng.normal(size=(out, d))
    y = x @ w_true.T + noise * rng.normal(size=(n, out))
    sigma = x.T @ x / n
    syx = y.T @ x / n
    syy = float(np.sum(y * y) / n)
    return x, y, sigma, syx, syy


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.3, 0.5])
@pytest.mark.parametrize("r", [1.5, 2.0, 3.0])
def test_toy_fixed_points_match_closed_forms(rho, r):
    sigma, syx, syy = toy_stats(rho, r)
    m0, ma, mb, ms = late_fixed_points(sigma, syx, syy, (1, 1))
    assert [p.name for p in (m0, ma, mb, ms)] == ["M_0", "M_A", "M_B", "M_*"]
    # theory.md §6.1 toy values
    assert m0.loss == pytest.approx(0.5 * (r * r + 1 + 2 * rho * r))
    assert ma.loss == pytest.approx(0.5 * (1 - rho ** 2))
    assert mb.loss == pytest.approx(0.5 * r * r * (1 - rho ** 2))
    assert ms.loss == pytest.approx(0.0, abs=1e-12)
    assert ma.w_tot[0, 0] == pytest.approx(1 + rho / r) and ma.w_tot[0, 1] == 0.0
    assert mb.w_tot[0, 1] == pytest.approx(1 + rho * r) and mb.w_tot[0, 0] == 0.0
    np.testing.assert_allclose(ms.w_tot, [[1.0, 1.0]], atol=1e-12)
    np.testing.assert_array_equal(m0.w_tot, 0.0)


@pytest.mark.parametrize("rho, plateau", [(0.0, 0.200), (0.5, 0.107), (-0.5, 0.250)])
def test_plateau_loss_fraction_section_6_1(rho, plateau):
    sigma, syx, syy = toy_stats(rho, 2.0)
    m0, ma, _, _ = late_fixed_points(sigma, syx, syy, (1, 1))
    assert round(ma.loss / m0.loss, 3) == pytest.approx(plateau)


def test_superficial_example_section_6_5():
    sigma, syx, syy = toy_stats(0.0, 2.0, w_star=(0.375, 1.0))
    m0, ma, mb, _ = late_fixed_points(sigma, syx, syy, (1, 1))
    assert round(ma.loss / m0.loss, 2) == 0.64
    assert round(mb.loss / m0.loss, 2) == 0.36


@pytest.mark.parametrize("dims, out", [((2, 1, 3), 1), ((1, 2), 2), ((3, 3), 1)])
def test_losses_equal_least_squares_on_samples(dims, out):
    rng = np.random.default_rng(1)
    x, y, sigma, syx, syy = _random_problem(rng, dims, out=out)
    edges = np.concatenate([[0], np.cumsum(dims)])
    points = late_fixed_points(sigma, syx, syy, dims)
    assert len(points) == 2 ** len(dims)
    for p in points:
        cols = [c for k in p.learned for c in range(edges[k], edges[k + 1])]
        if cols:
            coef = np.linalg.lstsq(x[:, cols], y, rcond=None)[0]
            resid = y - x[:, cols] @ coef
            np.testing.assert_allclose(p.w_tot[:, cols], coef.T, rtol=1e-9, atol=1e-12)
        else:
            resid = y
        assert p.loss == pytest.approx(0.5 * np.sum(resid ** 2) / x.shape[0], rel=1e-9)
        others = [c for c in range(sum(dims)) if c not in cols]
        np.testing.assert_array_equal(p.w_tot[:, others], 0.0)


def _spd(draw_vals, d):
    a = np.array(draw_vals).reshape(d, d)
    return a @ a.T + 0.5 * np.eye(d)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-2, 2), min_size=16, max_size=16),
       st.lists(st.floats(-2, 2), min_size=4, max_size=4),
       st.sampled_from([(1, 3), (2, 2), (1, 1, 2)]))
def test_fixed_points_are_stationary_and_losses_are_quadratic_forms(vals, syx_vals, dims):
    sigma = _spd(vals, 4)
    syx = np.array([syx_vals])
    syy = (syx @ np.linalg.solve(sigma, syx.T)).item() + 0.7
    edges = np.concatenate([[0], np.cumsum(dims)])
    for p in late_fixed_points(sigma, syx, syy, dims):
        g = syx - p.w_tot @ sigma
        for k in p.learned:
            np.testing.assert_allclose(g[:, edges[k]:edges[k + 1]], 0.0, atol=1e-8 * (1 + np.abs(syx).max()))
        direct = 0.5 * syy - (p.w_tot @ syx.T).item() + 0.5 * (p.w_tot @ sigma @ p.w_tot.T).item()
        assert p.loss == pytest.approx(direct, rel=1e-9, abs=1e-9)
        assert quadratic_loss(sigma, syx, syy, p.w_tot) == pytest.approx(direct, rel=1e-9, abs=1e-9)
    # learning more never increases the loss
    losses = {p.learned: p.loss for p in late_fixed_points(sigma, syx, syy, dims)}
    for s, loss in losses.items():
        for k in range(len(dims)):
            if k not in s:
                assert losses[tuple(sorted(s + (k,)))] <= loss + 1e-9


def test_late_learning_path_toy_goes_through_m_a():
    sigma, syx, syy = toy_stats(0.5, 2.0)
    path = late_learning_path(sigma, syx, syy, (1, 1))
    assert [p.name for p in path] == ["M_0", "M_A", "M_*"]


def test_late_learning_path_greedy_on_residual():
    # Modality 1 has the largest raw correlation, so it goes first. Modality 2 duplicates it
    # (its residual vanishes at M_{1}), so modality 0 goes second although |Σyx_2| > |Σyx_0|.
    sigma = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.95], [0.0, 0.95, 1.0]])
    w = np.array([0.5, 1.0, 0.0])
    syx = (w @ sigma)[None, :]
    syy = float(w @ sigma @ w)
    path = late_learning_path(sigma, syx, syy, (1, 1, 1))
    assert [p.learned for p in path] == [(), (1,), (0, 1), (0, 1, 2)]
    assert path[2].name == "M_{0,1}"


def test_early_fixed_points_and_records():
    sigma, syx, syy = toy_stats(0.3, 2.0)
    m0, ms = early_fixed_points(sigma, syx, syy, (1, 1))
    assert m0.name == "M_0" and ms.name == "M_*"
    np.testing.assert_allclose(ms.w_tot, np.linalg.solve(sigma, syx.T).T)
    assert isinstance(ms, FixedPoint) and ms.dims == (1, 1)
    np.testing.assert_allclose(ms.block(1), ms.w_tot[:, 1:])
    with pytest.raises(ValueError):
        ms.w_tot[0, 0] = 3.0  # read-only record
    single = late_fixed_point(sigma, syx, syy, (1, 1), [1])
    assert single.name == "M_B"


def test_generalization_error_at_m_a_of_multi_data():
    # theory.md §6.8: data (b) in the population limit, E_g(M_A) = ½ W_B* Σ_B W_B*ᵀ = 0.25.
    sigma = np.diag(np.r_[3.0 * np.ones(50), np.ones(50)])
    w_star = 0.1 * np.ones(100)
    syx = (w_star @ sigma)[None, :]
    syy = float(w_star @ sigma @ w_star) + 0.25
    ma = late_fixed_point(sigma, syx, syy, (50, 50), (0,))
    assert generalization_error(ma.w_tot, sigma, w_star) == pytest.approx(0.25)
    np.testing.assert_allclose(residual_correlation(sigma, syx, ma.w_tot)[0, :50], 0.0, atol=1e-12)


def test_errors_name_parameter_value_and_rule():
    sigma, syx, syy = toy_stats(0.0, 2.0)
    with pytest.raises(ValueError, match=r"^sigma has smallest eigenvalue -1, must be positive semi-definite "
                                         r"\(>= -1e-12 × its largest eigenvalue\)\.$"):
        late_fixed_points(np.array([[1.0, 2.0], [2.0, 1.0]]), syx, syy, (1, 1))
    with pytest.raises(ValueError, match=r"^sigma is not symmetric, must be a symmetric covariance matrix\.$"):
        early_fixed_points(np.array([[1.0, 0.5], [0.0, 1.0]]), syx, syy, (1, 1))
    with pytest.raises(ValueError, match=r"dims == \(1, 2\), must sum to the input dimension of sigma \(2\)"):
        late_fixed_points(sigma, syx, syy, (1, 2))
    with pytest.raises(ValueError, match=r"dims == \(2,\), must list at least 2 modalities"):
        late_fixed_points(sigma, syx, syy, (2,))
    with pytest.raises(ValueError, match=r"syy == 0.1, must be >= Σyx Σ⁺ Σyxᵀ = 5 "):
        late_fixed_points(sigma, syx, 0.1, (1, 1))
    with pytest.raises(ValueError, match=r"learned == 2, must be <= K - 1 \(1\)"):
        late_fixed_point(sigma, syx, syy, (1, 1), (2,))
    with pytest.raises(ValueError, match=r"syx has shape \(1, 3\), must have 2 columns"):
        late_fixed_points(sigma, np.ones((1, 3)), syy, (1, 1))
    with pytest.raises(ValueError, match=r"dims\[1\] == 0, must be >= 1"):
        early_fixed_points(sigma, syx, syy, (2, 0))


# ---------------------------------------------------------------------------------------
# Singular Σ (n < D samples, theory.md §6.8): minimum-norm least-squares fixed points.
# ---------------------------------------------------------------------------------------

def _few_samples(rng, dims, n, noise=0.3):
    """n < D samples: the empirical Σ has rank n."""
    d = sum(dims)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=d) + noise * rng.normal(size=n)
    return x, y[:, None], x.T @ x / n, (y @ x)[None, :] / n, float(y @ y) / n


@pytest.mark.parametrize("dims, n", [((3, 3), 4), ((2, 5), 4), ((4, 4), 3)])
def test_singular_sigma_fixed_points_are_minimum_norm_least_squares(dims, n):
    rng = np.random.default_rng(sum(dims) + n)
    x, y, sigma, syx, syy = _few_samples(rng, dims, n)
    assert np.linalg.matrix_rank(sigma) == n < sum(dims)
    edges = np.concatenate([[0], np.cumsum(dims)])
    m0, ms = early_fixed_points(sigma, syx, syy, dims)
    # M_* = Σyx Σ⁺ = the minimum-norm interpolant of the samples, loss 0
    np.testing.assert_allclose(ms.w_tot, np.linalg.lstsq(x, y, rcond=None)[0].T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ms.w_tot, syx @ np.linalg.pinv(sigma), rtol=1e-9, atol=1e-12)
    assert ms.loss == pytest.approx(0.0, abs=1e-12)
    for p in late_fixed_points(sigma, syx, syy, dims):
        cols = [c for k in p.learned for c in range(edges[k], edges[k + 1])]
        if not cols:
            continue
        coef = np.linalg.lstsq(x[:, cols], y, rcond=None)[0]          # minimum norm when underdetermined
        np.testing.assert_allclose(p.w_tot[:, cols], coef.T, rtol=1e-9, atol=1e-12)
        g = residual_correlation(sigma, syx, p.w_tot)
        np.testing.assert_allclose(g[:, cols], 0.0, atol=1e-12)     # a fixed point of the learned blocks
        resid = y - x[:, cols] @ coef
        assert p.loss == pytest.approx(0.5 * np.sum(resid ** 2) / n, abs=1e-12)
    # any other point of the affine set of minima has the same loss and a larger norm
    null = np.linalg.svd(x)[2][n:]                                  # (D − n, D): x @ null.T == 0
    other = ms.w_tot + rng.normal(size=(1, null.shape[0])) @ null
    assert quadratic_loss(sigma, syx, syy, other) == pytest.approx(ms.loss, abs=1e-12)
    assert np.linalg.norm(other) > np.linalg.norm(ms.w_tot)


def test_singular_sigma_rejects_correlation_outside_its_range():
    sigma = np.diag([1.0, 0.0])
    with pytest.raises(ValueError, match=r"^syx has a component of norm 0.5 outside the range of sigma \(which has "
                                         r"rank 1 < 2\), must lie in it"):
        late_fixed_points(sigma, [1.0, 0.5], 2.0, (1, 1))
    m0, ms = early_fixed_points(sigma, [1.0, 0.0], 2.0, (1, 1))      # in the range: fine
    np.testing.assert_allclose(ms.w_tot, [[1.0, 0.0]])
    assert ms.loss == pytest.approx(0.5)
