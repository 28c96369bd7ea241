"""Tests of theory.deep: the scalar chain's closed-form times for depth L, fusion layer L_f."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from theory.deep import (deep_lag, deep_t_a, deep_time_ratio, deep_time_ratio_vector, deep_times,
                         deep_times_vector)
from theory.two_layer import time_ratio, time_ratio_toy, toy_stats

RHOS = np.linspace(-0.9, 0.9, 9)

# theory.md §8, L = 4, r = 2, u0 = 0.1; columns L_f = 4, 3, 2, 1.
TABLE_RHO = np.array([
    [16.789, 5.382, 2.354, 1], [6.511, 2.480, 1.446, 1], [4.762, 1.982, 1.290, 1],
    [4.160, 1.805, 1.233, 1], [4.000, 1.748, 1.213, 1], [4.160, 1.773, 1.217, 1],
    [4.762, 1.904, 1.251, 1], [6.511, 2.303, 1.356, 1], [16.789, 4.678, 1.994, 1],
])
# Across r (rho = 0, u0 = 0.1); columns L_f = 4, 3, 2.
TABLE_R = {1.2: [1.440, 1.116, 1.036], 1.6: [2.560, 1.395, 1.115], 2.0: [4.000, 1.748, 1.213],
           2.4: [5.760, 2.179, 1.333], 2.8: [7.840, 2.688, 1.473]}
# Across init (r = 2, rho = 0); rows L_f = 4, 3, 2.
INITS = [0.03, 0.0675, 0.105, 0.1425, 0.18]
TABLE_INIT = {4: [4.000] * 5, 3: [1.222, 1.502, 1.786, 2.080, 2.385], 2: [1.029, 1.113, 1.231, 1.372, 1.532]}


@pytest.mark.parametrize("col, fuse_depth", list(enumerate([4, 3, 2, 1])))
def test_deep_table_across_rho(col, fuse_depth):
    got = deep_time_ratio(4, fuse_depth, 2.0, RHOS, 0.1)
    np.testing.assert_array_equal(np.round(got, 3), TABLE_RHO[:, col])


@pytest.mark.parametrize("r", sorted(TABLE_R))
def test_deep_table_across_r(r):
    got = [deep_time_ratio(4, lf, r, 0.0, 0.1) for lf in (4, 3, 2)]
    np.testing.assert_array_equal(np.round(got, 3), TABLE_R[r])


@pytest.mark.parametrize("fuse_depth", [4, 3, 2])
def test_deep_table_across_init(fuse_depth):
    got = deep_time_ratio(4, fuse_depth, 2.0, 0.0, np.array(INITS))
    np.testing.assert_array_equal(np.round(got, 3), TABLE_INIT[fuse_depth])


def test_theoretical_t_a_values():
    assert round(deep_t_a(4, 3, 2.0, 0.0, 0.1), 2) == 10.03
    assert round(deep_t_a(4, 2, 2.0, 0.0, 0.1), 2) == 8.09
    assert round(deep_t_a(4, 4, 2.0, 0.0, 0.1), 2) == 12.5


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 7), st.floats(1.0, 3.0), st.floats(-0.9, 0.9), st.floats(1e-4, 0.5))
def test_early_fusion_limit_is_one(depth, r, rho, u0):
    assert deep_time_ratio(depth, 1, r, rho, u0) == 1.0
    assert deep_lag(depth, 1, r, rho, u0) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.floats(1.0, 3.0), st.floats(-0.9, 0.9), st.floats(1e-6, 0.5))
def test_late_fusion_limit_is_two_layer_formula(depth, r, rho, u0):
    got = deep_time_ratio(depth, depth, r, rho, u0)
    assert got == pytest.approx(1 + (r * r - 1) / (1 - rho * rho), rel=1e-12)
    assert got == pytest.approx(time_ratio_toy(rho, r), rel=1e-12)
    times = deep_times(depth, depth, r, rho, u0)
    assert times.t_a_tau + times.lag_tau == pytest.approx(times.t_b_tau, rel=1e-12)


def test_late_fusion_t_a_closed_forms():
    u0, r, rho = 0.05, 2.0, 0.3
    w_a = r * r + rho * r
    assert deep_t_a(2, 2, r, rho, u0) == pytest.approx(np.log(1 / u0) / w_a)
    assert deep_t_a(5, 5, r, rho, u0) == pytest.approx(u0 ** -3 / (3 * w_a))


def test_intermediate_lag_formulas():
    r, rho, u0 = 2.0, 0.4, 0.08
    w_a, w_b = r * r + rho * r, 1 + rho * r
    k = w_b / w_a
    lag2 = (1 - k) * np.log(1 / u0) * (1 + rho / r) ** (2 / 5 - 1) / (1 - rho ** 2)
    lag3 = (1 - k) * u0 ** -1 * (1 + rho / r) ** (3 / 5 - 1) / (1 - rho ** 2)
    assert deep_lag(5, 2, r, rho, u0) == pytest.approx(lag2)
    assert deep_lag(5, 3, r, rho, u0) == pytest.approx(lag3)
    t = deep_times(5, 3, r, rho, u0, lr=0.04)
    assert t.ratio == pytest.approx(1 + t.lag_tau / t.t_a_tau)
    assert t.t_a == pytest.approx(t.t_a_tau / 0.04) and t.t_b == pytest.approx(t.t_b_tau / 0.04)


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.6])
def test_ratio_grows_with_fusion_depth_and_with_init(rho):
    ratios = [deep_time_ratio(5, lf, 2.0, rho, 0.1) for lf in range(1, 6)]
    assert np.all(np.diff(ratios) > 0)
    for lf in (2, 3, 4):
        by_init = deep_time_ratio(5, lf, 2.0, rho, np.array([1e-3, 1e-2, 0.05, 0.1]))
        assert np.all(np.diff(by_init) > 0)
        assert by_init[0] - 1 < 0.2 * (by_init[-1] - 1)


def test_equal_strength_gives_ratio_one():
    for lf in (1, 2, 3, 4):
        assert deep_time_ratio(4, lf, 1.0, 0.3, 0.1) == pytest.approx(1.0, abs=1e-12)


def test_vectorised_over_curves():
    rhos = np.linspace(-0.92, 0.92, 100)
    got = deep_time_ratio(4, 3, 2.0, rhos, 0.1)
    assert got.shape == (100,)
    np.testing.assert_allclose(got[[0, 50, 99]], [deep_time_ratio(4, 3, 2.0, x, 0.1) for x in rhos[[0, 50, 99]]])
    grid = deep_t_a(4, 2, np.array([1.5, 2.0])[:, None], np.array([0.0, 0.5, -0.5]), 0.1)
    assert grid.shape == (2, 3)
    assert isinstance(deep_time_ratio(4, 2, 2.0, 0.0, 0.1), float)


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.5])
@pytest.mark.parametrize("fuse_depth", [1, 2, 3, 4])
def test_vector_version_equals_toy_on_toy_moments(rho, fuse_depth):
    sigma, syx, _ = toy_stats(rho, 2.0)
    got = deep_time_ratio_vector(4, fuse_depth, sigma, syx, (1, 1), 0.1)
    assert got == pytest.approx(deep_time_ratio(4, fuse_depth, 2.0, rho, 0.1), rel=1e-10)
    tv = deep_times_vector(4, fuse_depth, sigma, syx, (1, 1), 0.1)
    assert tv.t_a_tau == pytest.approx(deep_t_a(4, fuse_depth, 2.0, rho, 0.1), rel=1e-10)


def test_vector_version_late_limit_is_two_layer_general_ratio():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T / 6 + np.diag([2.0] * 3 + [1.0] * 3)
    syx = rng.uniform(-1, 1, size=6) @ sigma
    syx[:3] *= 2.0
    for depth in (2, 3, 5):
        assert deep_time_ratio_vector(depth, depth, sigma, syx, (3, 3), 0.05) == pytest.approx(
            time_ratio(sigma, syx, (3, 3)), rel=1e-12)
    assert deep_time_ratio_vector(4, 1, sigma, syx, (3, 3), 0.05) == 1.0


def test_errors_name_parameter_value_and_rule():
    with pytest.raises(ValueError, match=r"fuse_depth == 5, must be <= depth \(4\)\."):
        deep_time_ratio(4, 5, 2.0, 0.0, 0.1)
    with pytest.raises(ValueError, match=r"fuse_depth == 0, must be >= 1"):
        deep_time_ratio(4, 0, 2.0, 0.0, 0.1)
    with pytest.raises(ValueError, match=r"u0 == 1.0, must be < 1"):
        deep_time_ratio(4, 3, 2.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"u0 == -0.1, must be > 0"):
        deep_t_a(4, 3, 2.0, 0.0, np.array([0.1, -0.1]))
    with pytest.raises(ValueError, match=r"rho == 1.0, must be < 1"):
        deep_time_ratio(4, 3, 2.0, 1.0, 0.1)
    with pytest.raises(ValueError, match=r"ratio == 0.5 with rho == 0.0 .*must be learned first \(ratio >= 1\)"):
        deep_time_ratio(4, 3, 0.5, 0.0, 0.1)
    with pytest.raises(ValueError, match=r"ratio == -2.0, must be > 0"):
        deep_lag(4, 3, -2.0, 0.0, 0.1)
    with pytest.raises(TypeError, match=r"depth == 4.0, must be an integer"):
        deep_time_ratio(4.0, 3, 2.0, 0.0, 0.1)
    with pytest.raises(ValueError, match=r"form == 'x', must be one of"):
        deep_time_ratio_vector(4, 3, np.eye(2), [[2.0, 1.0]], (1, 1), 0.1, form="x")
