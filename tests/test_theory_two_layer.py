"""Tests of theory.two_layer: time ratios, times, schedule, misattribution, preference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from theory.fixed_points import late_fixed_points
from theory.two_layer import (contribution_threshold, late_schedule, late_times, predicted_misattribution,
                              predicted_misattribution_toy, preference_region, prioritisation_threshold,
                              time_ratio, time_ratio_toy, toy_stats)

RHOS = np.linspace(-0.9, 0.9, 9)

# theory.md §8, two-layer late fusion, signed form (rows r = 3, 2, 1.5, 1).
TABLE_SIGNED = {
    3.0: [43.11, 15.70, 11.03, 9.43, 9.00, 9.43, 11.03, 15.70, 43.11],
    2.0: [16.79, 6.51, 4.76, 4.16, 4.00, 4.16, 4.76, 6.51, 16.79],
    1.5: [7.58, 3.30, 2.57, 2.32, 2.25, 2.32, 2.57, 3.30, 7.58],
    1.0: [1.0] * 9,
}
# theory.md §8, norm form where it differs (rho = -0.9, -0.675, -0.45, ...).
TABLE_NORM = {3.0: [25.21, 11.93, 10.15], 2.0: [8.37, 5.23], 1.5: [3.89, 3.25]}

rhos = st.floats(-0.95, 0.95)
ratios = st.floats(1.0, 4.0)


@pytest.mark.parametrize("r", sorted(TABLE_SIGNED))
def test_two_layer_table_signed(r):
    np.testing.assert_array_equal(np.round(time_ratio_toy(RHOS, r), 2), TABLE_SIGNED[r])


@pytest.mark.parametrize("r", sorted(TABLE_NORM))
def test_two_layer_table_norm_form(r):
    norm = np.round(time_ratio_toy(RHOS, r, form="norm"), 2)
    n = len(TABLE_NORM[r])
    np.testing.assert_array_equal(norm[:n], TABLE_NORM[r])
    np.testing.assert_array_equal(norm[n:], TABLE_SIGNED[r][n:])


def test_heatmap_landmarks_and_grid_shape():
    assert round(time_ratio_toy(0.0, 3.0), 2) == 9.0
    assert round(time_ratio_toy(0.92, 3.0), 2) == 53.08
    assert round(time_ratio_toy(-0.92, 3.0), 2) == 53.08
    assert round(time_ratio_toy(0.92, 2.0), 2) == 20.53
    grid = time_ratio_toy(np.linspace(-0.92, 0.92, 100)[None, :], np.linspace(1, 3, 100)[:, None])
    assert grid.shape == (100, 100)
    np.testing.assert_allclose(grid[0], 1.0)
    mis = predicted_misattribution_toy(np.linspace(-0.92, 0.92, 100)[None, :], np.linspace(1, 3, 100)[:, None])
    assert mis.min() == pytest.approx(-0.92) and mis.max() == pytest.approx(0.92)


@settings(max_examples=60, deadline=None)
@given(rhos, ratios)
def test_ratio_symmetric_in_rho_and_one_at_equal_strength(rho, r):
    assert time_ratio_toy(rho, r) == pytest.approx(time_ratio_toy(-rho, r), rel=1e-12)
    assert time_ratio_toy(rho, 1.0) == pytest.approx(1.0, abs=1e-12)
    assert time_ratio_toy(rho, r) >= 1.0 - 1e-12


@settings(max_examples=80, deadline=None)
@given(rhos, ratios)
def test_signed_and_norm_differ_only_below_minus_one_over_r(rho, r):
    signed = time_ratio_toy(rho, r)
    norm = time_ratio_toy(rho, r, form="norm")
    if rho < -1.0 / r - 1e-9:
        assert norm < signed
    elif rho > -1.0 / r + 1e-9:
        assert norm == pytest.approx(signed, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(rhos, ratios, st.sampled_from(["signed", "norm"]))
def test_general_form_agrees_with_toy_form(rho, r, form):
    sigma, syx, _ = toy_stats(rho, r)
    assert time_ratio(sigma, syx, (1, 1), form=form) == pytest.approx(time_ratio_toy(rho, r, form=form),
                                                                     rel=1e-9)


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.4])
@pytest.mark.parametrize("w_star", [(1.0, 0.5), (2.0, 1.0), (0.7, 1.3)])
def test_general_w_star_formula(rho, w_star):
    r = 2.0
    wa, wb = w_star
    s_a, s_b = wa * r * r + wb * rho * r, wb + wa * rho * r
    expect = 1 + (s_a - s_b) / (wb * (1 - rho ** 2))  # theory.md §6.3, general W*
    assert time_ratio_toy(rho, r, w_star=w_star) == pytest.approx(expect, rel=1e-12)
    sigma, syx, _ = toy_stats(rho, r, w_star=w_star)
    assert time_ratio(sigma, syx, (1, 1)) == pytest.approx(expect, rel=1e-9)


def test_superficial_example_time_ratio():
    assert time_ratio_toy(0.0, 2.0, w_star=(0.375, 1.0)) == pytest.approx(1.5)
    assert preference_region(2.0, 0.375) == "A first, B contributes more (superficial)"


def test_multi_data_population_ratio_is_three():
    sigma = np.diag(np.r_[3.0 * np.ones(50), np.ones(50)])
    syx = (0.1 * np.ones(100) @ sigma)[None, :]
    assert time_ratio(sigma, syx, (50, 50)) == pytest.approx(3.0)


def test_vector_signed_rule_only_for_exact_anti_parallel():
    # B is 2-d; its correlation makes an obtuse (not opposite) angle with its residual, so
    # its phase-1 growth carries over and both forms agree.
    sigma = np.array([[4.0, -1.5, 0.3], [-1.5, 1.0, 0.0], [0.3, 0.0, 1.0]])
    w = np.array([1.0, 1.0, 1.0])
    syx = (w @ sigma)[None, :]
    assert time_ratio(sigma, syx, (1, 2)) == pytest.approx(time_ratio(sigma, syx, (1, 2), form="norm"))
    # Embedding the scalar toy at rho = -0.9 into a 2-d B keeps the anti-parallel flip.
    s2, y2, _ = toy_stats(-0.9, 2.0)
    big = np.zeros((3, 3))
    big[:2, :2] = s2
    big[2, 2] = 1.0
    syx3 = np.c_[y2, [[0.0]]]
    assert time_ratio(big, syx3, (1, 2)) == pytest.approx(time_ratio_toy(-0.9, 2.0))


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.5])
def test_misattribution_toy_and_general(rho):
    r = 2.0
    sigma, syx, syy = toy_stats(rho, r)
    m = predicted_misattribution(sigma, [1.0, 1.0], (1, 1))
    assert m.shape == (1, 1)
    assert m[0, 0] == pytest.approx(rho / r)
    assert predicted_misattribution_toy(rho, r) == pytest.approx(rho / r)
    # m = W_A on the plateau (M_A) minus W_A at the end (M_*)
    _, ma, _, ms = late_fixed_points(sigma, syx, syy, (1, 1))
    assert m[0, 0] == pytest.approx(ma.w_tot[0, 0] - ms.w_tot[0, 0])
    if rho == 0.5:
        assert ma.w_tot[0, 0] == pytest.approx(1.25)


def test_misattribution_zero_without_cross_covariance_and_vector_identity():
    assert predicted_misattribution_toy(0.0, 2.5) == 0.0
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 5))
    sigma = a @ a.T + np.eye(5)
    w_star = rng.normal(size=(1, 5))
    syx = w_star @ sigma
    syy = (w_star @ sigma @ w_star.T).item()
    _, ma, _, ms = late_fixed_points(sigma, syx, syy, (2, 3))
    np.testing.assert_allclose(predicted_misattribution(sigma, w_star, (2, 3)), ma.block(0) - ms.block(0), atol=1e-10)
    block = np.eye(5)
    block[:2, :2] = sigma[:2, :2]
    block[2:, 2:] = sigma[2:, 2:]
    np.testing.assert_allclose(predicted_misattribution(block, w_star, (2, 3)), 0.0, atol=1e-14)


def test_preference_thresholds_and_regions():
    assert prioritisation_threshold(2.0) == 0.25 and contribution_threshold(2.0) == 0.5
    np.testing.assert_allclose(prioritisation_threshold(np.array([1.0, 0.5])), [1.0, 4.0])
    assert preference_region(2.0, 1.0) == "A first, A contributes more"
    assert preference_region(2.0, 0.1) == "B first, B contributes more"
    assert preference_region(2.0, 0.4) == "A first, B contributes more (superficial)"
    # mirror region for r < 1: 1/r < w < 1/r²
    assert preference_region(0.5, 3.0) == "B first, A contributes more (superficial)"
    assert preference_region(0.5, 5.0) == "A first, A contributes more"
    assert preference_region(0.5, 1.0) == "B first, B contributes more"
    assert preference_region(2.0, 0.25) == "A and B together, B contributes more"
    assert preference_region(1.0, 1.0) == "A and B together, A and B contribute equally"


@settings(max_examples=60, deadline=None)
@given(st.floats(0.2, 3.0), st.floats(0.01, 3.0))
def test_preference_region_matches_fixed_point_losses(r, w_ratio):
    sigma, syx, syy = toy_stats(0.0, r, w_star=(w_ratio, 1.0))
    m0, ma, mb, _ = late_fixed_points(sigma, syx, syy, (1, 1))
    region = preference_region(r, w_ratio)
    a_first = abs(syx[0, 0]) > abs(syx[0, 1])
    a_more = (m0.loss - ma.loss) > (m0.loss - mb.loss)
    if abs(abs(syx[0, 0]) - abs(syx[0, 1])) > 1e-9 and abs(ma.loss - mb.loss) > 1e-9:
        assert region.startswith("A first" if a_first else "B first")
        assert ("A contributes more" if a_more else "B contributes more") in region
        assert region.endswith("(superficial)") == (a_first != a_more)


def test_late_times_leading_order():
    sigma, syx, _ = toy_stats(0.0, 2.0)
    t = late_times(sigma, syx, (1, 1), 1e-9, lr=0.04)
    assert t.t_a_tau == pytest.approx(np.log(1e9) / 4.0)
    assert t.ratio == pytest.approx(4.0)
    assert t.t_b_tau == pytest.approx(4.0 * t.t_a_tau)
    assert t.t_a == pytest.approx(t.t_a_tau / 0.04) and t.t_b == pytest.approx(t.t_b_tau * 25)
    assert np.isnan(late_times(sigma, syx, (1, 1), 1e-9).t_a)   # no lr: NaN (never None)


def test_schedule_two_modalities_matches_time_ratio():
    for rho in (-0.9, -0.3, 0.0, 0.6):
        sigma, syx, syy = toy_stats(rho, 2.0)
        sched = late_schedule(sigma, syx, syy, (1, 1), 1e-6, lr=0.04)
        times = late_times(sigma, syx, (1, 1), 1e-6, lr=0.04)
        assert sched.order == (0, 1)
        np.testing.assert_allclose(sched.t_tau, [times.t_a_tau, times.t_b_tau], rtol=1e-12)
        np.testing.assert_allclose(sched.t, sched.t_tau / 0.04)
        assert [p.name for p in sched.path] == ["M_0", "M_A", "M_*"]
    sigma, syx, syy = toy_stats(-0.9, 2.0)
    norm = late_schedule(sigma, syx, syy, (1, 1), 1e-6, form="norm")
    assert norm.t_tau[1] / norm.t_tau[0] == pytest.approx(time_ratio_toy(-0.9, 2.0, form="norm"))


def test_schedule_independent_modalities():
    # No cross-covariance: each modality grows at ‖Σyx_X‖ throughout, so
    # t_X = ln(1/u0)/‖Σyx_X‖ and the order is by correlation strength.
    sigma = np.diag([1.0, 4.0, 2.0, 2.0, 0.5])
    w = np.array([1.0, 1.0, 0.3, 0.3, 1.0])
    syx = (w @ sigma)[None, :]
    syy = float(w @ sigma @ w)
    sched = late_schedule(sigma, syx, syy, (1, 1, 2, 1), 1e-4)
    strength = np.array([1.0, 4.0, np.hypot(0.6, 0.6), 0.5])
    np.testing.assert_allclose(sched.t_tau, np.log(1e4) / strength, rtol=1e-12)
    assert sched.order == (1, 0, 2, 3)
    assert sched.path[-1].name == "M_*"


def test_schedule_redundant_modality_is_never_learned():
    sigma = np.array([[1.0, 0.0], [0.0, 1.0]])
    syx = np.array([[1.0, 0.0]])
    sched = late_schedule(sigma, syx, 1.0, (1, 1), 1e-3)
    assert sched.order == (0, 1)
    assert np.isfinite(sched.t_tau[0]) and sched.t_tau[1] == np.inf
    assert len(sched.path) == 2


def test_errors_name_parameter_value_and_rule():
    with pytest.raises(ValueError, match=r"rho == 1.0, must be < 1"):
        time_ratio_toy(1.0, 2.0)
    with pytest.raises(ValueError, match=r"rho == -1.2, must be > -1"):
        time_ratio_toy(np.array([0.0, -1.2]), 2.0)
    with pytest.raises(ValueError, match=r"ratio == 0.0, must be > 0"):
        time_ratio_toy(0.0, 0.0)
    with pytest.raises(ValueError, match=r"ratio == 0.5 .* modality A must be learned first"):
        time_ratio_toy(0.0, 0.5)
    with pytest.raises(ValueError, match=r"form == 'abs', must be one of 'signed', 'norm'"):
        time_ratio_toy(0.0, 2.0, form="abs")
    with pytest.raises(ValueError, match=r"w_B\* must be != 0"):
        time_ratio_toy(0.0, 2.0, w_star=(1.0, 0.0))
    sigma, syx, syy = toy_stats(0.0, 2.0)
    with pytest.raises(ValueError, match=r"‖Σyx_A‖ = 1 < ‖Σyx_B‖ = 4.*swap A and B"):
        time_ratio(sigma[::-1, ::-1], syx[:, ::-1], (1, 1))
    with pytest.raises(ValueError, match=r"zero residual correlation"):
        time_ratio(np.eye(2), [[1.0, 0.0]], (1, 1))
    with pytest.raises(ValueError, match=r"dims == \(1, 1, 1\), must list exactly 2 modalities"):
        time_ratio(np.eye(3), [[3.0, 2.0, 1.0]], (1, 1, 1))
    with pytest.raises(ValueError, match=r"u0 == 1.5, must be < 1"):
        late_times(sigma, syx, (1, 1), 1.5)
    with pytest.raises(ValueError, match=r"lr == -0.1, must be > 0"):
        late_times(sigma, syx, (1, 1), 1e-3, lr=-0.1)
    with pytest.raises(ValueError, match=r"w_ratio == -1.0, must be >= 0"):
        preference_region(2.0, -1.0)
    with pytest.raises(ValueError, match=r"sigma is not symmetric"):
        time_ratio([[1.0, 0.5], [0.0, 1.0]], syx, (1, 1))


def test_singular_sigma_needs_only_sigma_a_invertible():
    """n < D samples (theory.md §6.8): the time ratio and misattribution invert Σ_A only."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6)) * np.array([2.0, 2.0, 1.0, 1.0, 1.0, 1.0])     # d_A = 2 < n = 4 < D = 6
    w_star = rng.normal(size=6)
    sigma = x.T @ x / 4
    syx = (w_star @ sigma)[None, :]
    assert np.linalg.matrix_rank(sigma) == 4
    s_a, s_ab = sigma[:2, :2], sigma[:2, 2:]
    res = syx[:, 2:] - syx[:, :2] @ np.linalg.solve(s_a, s_ab)
    expect = 1.0 + (np.linalg.norm(syx[:, :2]) - np.linalg.norm(syx[:, 2:])) / np.linalg.norm(res)
    assert time_ratio(sigma, syx, (2, 4), form="norm") == pytest.approx(expect, rel=1e-12)
    np.testing.assert_allclose(predicted_misattribution(sigma, w_star, (2, 4)),
                               w_star[None, 2:] @ np.linalg.solve(s_a, s_ab).T, rtol=1e-12)
    # split as d_A = 5 > n = 4: Σ_A is singular too, and the formulas have no Σ_A⁻¹
    msg = (r"^sigma's block Σ_A \(columns 0\.\.4\) has smallest eigenvalue .*, must be positive definite: "
           r"the {} needs Σ_A⁻¹ \(with fewer samples than A's input dimension, Σ_A is singular\)\.$")
    with pytest.raises(ValueError, match=msg.format("time ratio")):
        time_ratio(sigma, syx, (5, 1))
    with pytest.raises(ValueError, match=msg.format("misattribution")):
        predicted_misattribution(sigma, w_star, (5, 1))


# ---------------------------------------------------------------------------------------
# The original rand_sweep's prediction (its sweep.py, lag_twolayer): empirical Σyx with the
# population Σ_A and Σ_AB, norm form. time_ratio must reproduce it from those mixed inputs.
# ---------------------------------------------------------------------------------------

def test_time_ratio_reproduces_original_mixed_inputs_by_hand():
    # A: two inputs, B: one. Population Σ = [[2, 0, 1], [0, 2, 0], [1, 0, 3]]; an empirical
    # Σyx = (3, 4 | 1) that no data with this Σ need have exactly (mixed inputs).
    sigma_pop = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 0.0, 3.0]])
    syx_emp = np.array([3.0, 4.0, 1.0])
    # By hand: ‖Σyx_A‖ = 5, ‖Σyx_B‖ = 1, W_A^uni = Σyx_A Σ_A⁻¹ = (1.5, 2),
    # W_A^uni Σ_AB = 1.5, residual 1 − 1.5 = −0.5: the original's 1 + (5 − 1)/0.5 = 9.
    assert time_ratio(sigma_pop, syx_emp, (2, 1), form="norm") == pytest.approx(9.0, rel=1e-14)
    # Σyx_B (+1) is anti-parallel to its residual (−0.5): the signed form counts B's head start
    # negatively, 1 + (5 + 1)/0.5 = 13; the original uses the norm form.
    assert time_ratio(sigma_pop, syx_emp, (2, 1), form="signed") == pytest.approx(13.0, rel=1e-14)
    # Scalars: Σ = [[4, 1], [1, 1]], Σyx = (3.9, 2.1): 1 + (3.9 − 2.1)/(2.1 − 3.9/4) = 2.6.
    assert time_ratio([[4.0, 1.0], [1.0, 1.0]], [3.9, 2.1], (1, 1), form="norm") == pytest.approx(2.6, rel=1e-14)


@pytest.mark.parametrize("draw", range(5))
def test_time_ratio_reproduces_original_rand_sweep_prediction(draw):
    """The original's formula, transcribed from its semantics, against time_ratio on the same draw."""
    from linfusion.data import random_stats

    ds = random_stats(20, 2048, rng=np.random.SeedSequence(11, spawn_key=(draw,)))
    xa, xb, y = ds.xs[0], ds.xs[1], ds.y
    y_xa, y_xb = np.mean(y * xa, axis=0), np.mean(y * xb, axis=0)        # empirical, uncentred
    cov_a, cov_ab = ds.sigma[:10, :10], ds.sigma[:10, 10:]                  # population
    wa_uni = y_xa @ np.linalg.inv(cov_a)
    original = 1 + (np.linalg.norm(y_xa) - np.linalg.norm(y_xb)) / np.linalg.norm(y_xb - wa_uni @ cov_ab)
    assert original >= 1                                # these draws have A first (the original keeps them)
    assert time_ratio(ds.sigma, ds.moments().syx, (10, 10), form="norm") == pytest.approx(original, rel=1e-12)
