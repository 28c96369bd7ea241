"""theory.diagnose: the report against the existing closed forms, K = 3 against simulation, bad input.

The toy checks build arrays whose *empirical* second moments are exactly the paper's population
statistics (orthonormal columns rescaled), so every closed form of theory.two_layer,
theory.deep and theory.mitigation can be evaluated on the same moments and compared with
what the report says.
"""
import json
import math

import numpy as np
import pytest

import theory
from theory import (chain_map, deep_time_ratio, diagnose, equalising_lr_ratio, late_times,
                    predicted_misattribution, predicted_misattribution_toy, preference_region, rank_one_map,
                    time_ratio_toy, toy_stats)

U0 = 1e-9 * math.sqrt(50.0)     # the default per-entry init 1e-9 at width 100


def exact_arrays(sigma, w_star, n=64, seed=0):
    """Zero-mean arrays (xs, y) of scalar modalities whose second moments are exactly Σ and Σ W*ᵀ."""
    sigma = np.asarray(sigma, dtype=float)
    z = np.random.default_rng(seed).standard_normal((n, sigma.shape[0] + 1))
    z[:, 0] = 1.0
    q = np.linalg.qr(z)[0][:, 1:]                  # orthonormal columns, orthogonal to the constant
    x = math.sqrt(n) * q @ np.linalg.cholesky(sigma).T
    y = x @ np.asarray(w_star, dtype=float)
    return [x[:, k] for k in range(x.shape[1])], y


def toy_report(rho, ratio, w_star=(1.0, 1.0), **kw):
    sigma, _, _ = toy_stats(rho, ratio, w_star)
    xs, y = exact_arrays(sigma, w_star)
    return diagnose(xs, y, names=("A", "B"), preprocess="none", **kw)


# ---------------------------------------------------------------------- the toy statistics
@pytest.mark.parametrize("rho", [0.0, 0.5, -0.3])
def test_toy_report_equals_the_two_layer_closed_forms(rho):
    r = 2.0
    rep = toy_report(rho, r)
    sigma, syx, syy = toy_stats(rho, r)
    np.testing.assert_allclose([s.corr for s in rep.strengths], [r * r + rho * r, 1 + rho * r], rtol=1e-10)
    np.testing.assert_allclose(rep.sigma, sigma, rtol=1e-10, atol=1e-12)
    lt = late_times(sigma, syx, (1, 1), U0, lr=0.04)
    assert rep.late.order == (0, 1)
    np.testing.assert_allclose(rep.late.t, [lt.t_a, lt.t_b], rtol=1e-9)
    assert rep.late.t[1] / rep.late.t[0] == pytest.approx(time_ratio_toy(rho, r), rel=1e-9)
    (plateau,) = rep.late.plateaus
    assert plateau.learned == (0,)
    assert plateau.loss == pytest.approx((1 - rho ** 2) / (r * r + 1 + 2 * rho * r), rel=1e-9)
    # relative misattribution ρ/r (W_A* = 1), and the absolute one W_B* Σ_BA Σ_A⁻¹
    assert plateau.misattribution[0] == pytest.approx(predicted_misattribution_toy(rho, r), abs=1e-10)
    assert np.isnan(plateau.misattribution[1])
    absolute = plateau.misattribution[0] * 1.0
    assert absolute == pytest.approx(float(predicted_misattribution(sigma, [1.0, 1.0], (1, 1))[0, 0]), abs=1e-10)
    assert rep.late.early == pytest.approx(math.log(1 / U0) / (np.linalg.norm(syx) * 0.04), rel=1e-10)


def test_toy_report_equals_the_deep_closed_forms_and_the_exact_maps():
    rho, r = 0.5, 2.0
    rep = toy_report(rho, r)
    sigma, syx, syy = toy_stats(rho, r)
    assert [d.fuse_depth for d in rep.depths] == [1, 2, 3, 4]
    for d in rep.depths:
        assert d.ratio_closed == pytest.approx(deep_time_ratio(4, d.fuse_depth, r, rho, 0.1), rel=1e-9)
        # scalar modalities: the aligned-chain map is theory.dynamics.chain_map, crossing its projection
        n = int(np.nanmax(d.t)) + 2
        chain = chain_map(sigma, syx, syy, 4, d.fuse_depth, np.arange(n + 1), 0.04, u0=0.1, crossing="projection")
        np.testing.assert_allclose(d.t, chain.t_cross, rtol=1e-12)
        assert d.ratio == pytest.approx(chain.ratio, rel=1e-12)
    n = int(np.nanmax(rep.late.t_map)) + 2
    ro = rank_one_map(sigma, syx, syy, (1, 1), np.arange(n + 1), 0.04, u0=U0, crossing="projection")
    np.testing.assert_allclose(rep.late.t_map, ro.t_cross, rtol=1e-12)
    # scalar modalities: the learning amplitude is the value at the fixed point where it is learned
    np.testing.assert_allclose(rep.late.scales, [1 + rho / r, 1.0], rtol=1e-10)


@pytest.mark.parametrize("w_a", [0.375, 0.8, 0.1, 0.3])
def test_superficial_preference_equals_the_toy_regions(w_a):
    r = 2.0
    rep = toy_report(0.0, r, w_star=(w_a, 1.0))
    region = preference_region(r, w_a)
    assert rep.preference.superficial == ("(superficial)" in region)
    assert rep.preference.first == (0 if region.startswith("A first") else 1)
    assert rep.superficial == rep.preference.superficial


def test_learning_rate_advice_equals_the_mitigation_closed_forms():
    rho, r = 0.3, 2.0
    rep = toy_report(rho, r)
    sigma, syx, _ = toy_stats(rho, r)
    kappa = equalising_lr_ratio(sigma, syx, (1, 1))
    np.testing.assert_allclose(rep.advice.lr_multipliers, [1.0, kappa], rtol=1e-12)
    assert rep.advice.lr_scales == {"W1_0": 1.0, "W2_0": 1.0, "W1_1": pytest.approx(kappa),
                                    "W2_1": pytest.approx(kappa)}
    assert rep.advice.equalisable
    assert rep.advice.t_equalised[1] == pytest.approx(rep.advice.t_equalised[0], rel=1e-9)
    assert rep.advice.t_equalised[0] == pytest.approx(rep.late.t[0], rel=1e-9)


def test_signed_case_no_equalising_rate():
    # ρ < −1/r: Σyx_B points against B's eventual weight (theory.md §6.3)
    rep = toy_report(-0.8, 2.0)
    assert rep.late.t[1] / rep.late.t[0] == pytest.approx(time_ratio_toy(-0.8, 2.0), rel=1e-9)
    assert not rep.advice.equalisable
    assert any("points against" in line for line in rep.advice.lines)


def test_held_out_losses_are_the_quadratic_loss_at_the_fixed_points():
    rho, r = 0.5, 2.0
    sigma, _, _ = toy_stats(rho, r)
    xs, y = exact_arrays(sigma, (1.0, 1.0), seed=1)
    rng = np.random.default_rng(5)
    xt = rng.standard_normal((50, 2)) @ np.linalg.cholesky(sigma).T
    yt = xt @ np.array([1.0, 0.7]) + 0.1 * rng.standard_normal(50)
    rep = diagnose(xs, y, xs_test=[xt[:, 0], xt[:, 1]], y_test=yt, preprocess="none")
    s_te, syx_te, syy_te = xt.T @ xt / 50, yt @ xt / 50, yt @ yt / 50

    def rel(w):
        return (0.5 * syy_te - w @ syx_te + 0.5 * w @ s_te @ w) / (0.5 * syy_te)
    w_a = np.array([1 + rho / r, 0.0])            # M_A on the training moments
    assert rep.late.plateaus[0].test_loss == pytest.approx(rel(w_a), rel=1e-9)
    assert rep.held_out.loss_end == pytest.approx(rel(np.array([1.0, 1.0])), rel=1e-8)
    assert rep.held_out.deficit == pytest.approx(rel(w_a) - rel(np.array([1.0, 1.0])), rel=1e-7)
    assert rep.held_out.n == 50


# ---------------------------------------------------------------------- the report object
def test_report_repr_dict_and_text():
    rep = toy_report(0.5, 2.0)
    line = repr(rep)
    assert "\n" not in line and len(line) < 200 and "A → B" in line
    d = rep.to_dict()
    text = json.dumps(d)                              # plain Python throughout
    assert json.loads(text)["order"] == ["A", "B"]
    assert d["late"]["t"][0] == pytest.approx(rep.late.t[0])
    assert set(d) >= {"strengths", "late", "depths", "preference", "advice", "notes", "methods", "confirmation"}
    assert d["confirmation"] is None and d["held_out"] is None
    out = rep.text()
    for needle in ("A → B", "Misattribution", "Fusion depth", "Superficial preference: no", "Recommendation",
                   "inputs used as given"):
        assert needle in out
    assert isinstance(theory.diagnosis.Diagnosis, type) and "Diagnosis" in theory.__all__


def test_preprocessing_is_stated_and_changes_the_answer():
    sigma, _, _ = toy_stats(0.0, 2.0)
    xs, y = exact_arrays(sigma, (1.0, 1.0))
    raw = diagnose(xs, y, preprocess="none")
    std = diagnose(xs, y, preprocess="standardize")
    assert "scaled to unit variance" in std.text() and "as given" in raw.text()
    # standardised, a modality's correlation is w*σ/σ_y: 2/√5 and 1/√5
    np.testing.assert_allclose([s.corr for s in std.strengths], [2 / math.sqrt(5), 1 / math.sqrt(5)], rtol=1e-9)
    assert raw.late.t[1] / raw.late.t[0] == pytest.approx(4.0, rel=1e-9)
    # ... so the time ratio drops from 1 + (r² − 1) = 4 to 1 + (2 − 1)/1 = 2 (Σ = I after standardising)
    assert std.late.t[1] / std.late.t[0] == pytest.approx(2.0, rel=1e-9)


def test_classification_uses_the_logistic_small_weight_expansion():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 3)) * np.array([2.0, 1.0, 1.0])
    y = np.where(x @ np.array([1.0, 1.0, 0.5]) + 0.3 * rng.standard_normal(400) > 0, 1.0, -1.0)
    xs = [x[:, :1], x[:, 1:]]
    cls = diagnose(xs, y, preprocess="none")
    reg = diagnose(xs, y, task="regression", preprocess="none")
    assert cls.task == "classification" and cls.loss == "logistic"
    assert reg.task == "regression" and reg.loss == "mse"
    # the same moments: τ doubles, the order is the same
    np.testing.assert_allclose(cls.late.t, 2.0 * reg.late.t, rtol=1e-10)
    assert cls.late.order == reg.late.order
    assert "logistic" in cls.text() and "squared loss" in cls.text()


# ---------------------------------------------------------------------- K = 3 against simulation
def three_modalities(n=4096, seed=0):
    """Three modalities (1, 2 and 1 inputs) with distinct strengths and correlations; y = sum of inputs."""
    std = np.array([2.0, 1.2, 1.2, 0.8])
    corr = np.array([[1.0, 0.3, 0.0, 0.2], [0.3, 1.0, 0.2, -0.1], [0.0, 0.2, 1.0, 0.0], [0.2, -0.1, 0.0, 1.0]])
    sigma = corr * np.outer(std, std)
    x = np.random.default_rng(seed).standard_normal((n, 4)) @ np.linalg.cholesky(sigma).T
    y = x @ np.array([1.0, 0.6, 0.6, 1.0]) + 0.1 * np.random.default_rng(seed + 1).standard_normal(n)
    return [x[:, :1], x[:, 1:3], x[:, 3:]], y


def test_three_modalities_order_and_times_against_simulation():
    xs, y = three_modalities()
    rep = diagnose(xs, y, names=("a", "b", "c"), preprocess="none", depth=3, confirm=True, rng=7)
    run = rep.confirmation.late
    assert run.status == "completed" and np.all(np.isfinite(run.t))
    sim_order = tuple(np.argsort(run.t))
    assert sim_order == rep.late.order == rep.late.order_map
    assert len(set(sim_order)) == 3
    # the exact Gram map from the run's own initial weights reproduces the run
    np.testing.assert_allclose(run.t_exact, run.t, rtol=1e-6)
    # the map of the balanced rank-one net of the same effective scale: within 3 %
    np.testing.assert_allclose(rep.late.t_map, run.t, rtol=0.03)
    # the leading-order closed form: within 15 %
    np.testing.assert_allclose(rep.late.t, run.t, rtol=0.15)
    # every fusion layer, started balanced: the aligned-chain map is the network's gradient descent
    assert len(rep.confirmation.depths) == 3
    for sim, pred in zip(rep.confirmation.depths, rep.depths):
        assert sim.status == "completed"
        np.testing.assert_allclose(sim.t, pred.t, rtol=1e-6)
    assert "as predicted" in rep.text()


# ---------------------------------------------------------------------- bad input, each named
def _good(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = x @ np.array([1.0, 0.5, 0.8, 0.3]) + 0.1 * rng.standard_normal(n)
    return [x[:, :2], x[:, 2:]], y


def test_mismatched_rows_name_the_modality():
    xs, y = _good()
    with pytest.raises(ValueError, match=r"xs\[1\] \('right'\) has 199 rows, must have as many as y \(200\)"):
        diagnose([xs[0], xs[1][:-1]], y, names=("left", "right"))
    with pytest.raises(ValueError, match=r"xs_test\[0\] \('modality 0'\) has 9 rows, must have as many as y_test"):
        diagnose(xs, y, xs_test=[xs[0][:9], xs[1][:10]], y_test=y[:10])


def test_missing_columns_in_the_held_out_split_name_the_modality():
    xs, y = _good()
    with pytest.raises(ValueError, match=r"xs_test\[1\] \('modality 1'\) has 1 columns, must have 2 like xs\[1\]"):
        diagnose(xs, y, xs_test=[xs[0][:20], xs[1][:20, :1]], y_test=y[:20])
    with pytest.raises(ValueError, match="xs_test and y_test must be given together"):
        diagnose(xs, y, xs_test=[xs[0], xs[1]])


def test_constant_target():
    xs, _ = _good()
    with pytest.raises(ValueError, match=r"y is constant \(every one of its 200 values is 3\), must vary"):
        diagnose(xs, np.full(200, 3.0))


def test_labels_must_be_plus_minus_one_for_classification():
    xs, _ = _good()
    y01 = (np.arange(200) % 2).astype(float)
    with pytest.raises(ValueError, match=r"y has the values \{0, 1\}, must be exactly -1 and \+1 .*2·y − 1"):
        diagnose(xs, y01, task="classification")


def test_singular_covariance_of_one_modality_names_it_and_its_columns():
    xs, y = _good()
    dup = np.column_stack([xs[1][:, 0], xs[1][:, 0] * 2.0])
    with pytest.raises(ValueError, match=r"xs\[1\] \('serum'\) has a singular input covariance \(rank 1 < 2 columns"):
        diagnose([xs[0], dup], y, names=("body", "serum"), columns=[["bmi", "bp"], ["s1", "s2"]])
    with pytest.raises(ValueError, match=r"fewer samples \(3\) than its 4 inputs"):
        rng = np.random.default_rng(0)
        diagnose([rng.standard_normal((3, 1)), rng.standard_normal((3, 4))], np.array([1.0, 2.0, 0.5]))


def test_singular_joint_covariance_names_the_columns():
    xs, y = _good()
    shared = np.column_stack([xs[1][:, 0], xs[0][:, 1]])       # B repeats a column of A
    with pytest.raises(ValueError, match=r"xs has a singular joint input covariance .*A:column 1.*B:column 1"):
        diagnose([xs[0], shared], y, names=("A", "B"))


def test_constant_column_with_centring():
    xs, y = _good()
    with pytest.raises(ValueError, match=r"xs\[0\] \('modality 0'\) has constant columns \('age'\)"):
        diagnose([np.column_stack([xs[0][:, 0], np.ones(200)]), xs[1]], y, columns=[["x", "age"], ["u", "v"]])


def test_modality_with_no_signal():
    n = 200
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    y = np.sin(t)
    a = np.column_stack([np.sin(t) + 0.1 * np.cos(3 * t)])
    b = np.column_stack([np.cos(t), np.sin(2 * t)])            # orthogonal to y over the full period
    with pytest.raises(ValueError, match=r"xs\[1\] \('noise'\) has no signal: its correlation with the target"):
        diagnose([a, b], y, names=("signal", "noise"))


@pytest.mark.parametrize("kw, match", [
    (dict(names=("a",)), r"names has 1 entries, must have 2"),
    (dict(names=("a", "a")), r"must be distinct"),
    (dict(task="ranking"), r"task == 'ranking', must be one of"),
    (dict(preprocess="whiten"), r"preprocess == 'whiten', must be one of"),
    (dict(scale=0.5), r"effective init u0 = scale·√\(width/2\) = 3\.54, must be < 1"),
    (dict(lr=0.0), r"lr == 0\.0, must be > 0"),
    (dict(depth=1), r"depth == 1, must be >= 2"),
    (dict(confirm="yes"), r"confirm == 'yes', must be True or False"),
])
def test_bad_options_are_named(kw, match):
    xs, y = _good()
    with pytest.raises((ValueError, TypeError), match=match):
        diagnose(xs, y, **kw)


def test_one_modality_or_a_bare_array_is_refused():
    xs, y = _good()
    with pytest.raises(ValueError, match=r"xs has 1 modality, must have at least 2"):
        diagnose([xs[0]], y)
    with pytest.raises(TypeError, match=r"xs is a ndarray, must be a list or tuple"):
        diagnose(np.hstack(xs), y)
    with pytest.raises(ValueError, match=r"y has shape \(200, 2\), must be one target per sample"):
        diagnose(xs, np.column_stack([y, y]))
