"""Measurements (linfusion.analysis): crossing times, the original's time convention exactly,
misattribution, generalisation error, and measure() on usable and unusable runs.

The original code's conventions are re-implemented here by hand from its description
(CONTRACT.md item 8): at loop index i it stores the weights after i + 1 updates; its
``time_half`` returns the first index i nearest the threshold; its sweep reads A's weight
at index (t_a + t_b)//2 against the last one.
"""
import dataclasses
import warnings

import numpy as np
import pytest

import linfusion as lf
from linfusion import analysis as A
from linfusion import data as D


def original_time_half(weights_after_update, half):
    """The original's time_half: argmin over its records (index i = after i + 1 updates)."""
    return int(np.argmin((np.asarray(weights_after_update) - half) ** 2))


def hand_result(w_a, w_b, *, status="completed", net=None, moments=None):
    """A TrainResult with a trajectory written by hand (records k = 0, 1, 2, ...)."""
    w_a, w_b = np.asarray(w_a, dtype=float), np.asarray(w_b, dtype=float)
    net = net or lf.FusionNet((1, 1), 1, 2, 2, 2)
    n = len(w_a)
    return lf.TrainResult(epochs=np.arange(n), loss=np.linspace(1.0, 0.1, n),
                          w_tot=[w_a.reshape(n, 1, 1), w_b.reshape(n, 1, 1)], eg=None,
                          w=np.zeros(net.n_params), w0=np.zeros(net.n_params), status=status,
                          message=f"{status} by hand", lr=0.1, path="moment", net=net, moments=moments)


# ---------------------------------------------------------------------- crossing_time
def test_crossing_time_interpolates_the_first_upward_crossing():
    ep = np.array([0.0, 1.0, 2.0, 4.0])
    vals = np.array([0.0, 0.2, 1.0, 0.0])
    assert A.crossing_time(ep, vals, 0.6) == pytest.approx(1.5)
    assert A.crossing_time(ep, vals, 1.0) == 2.0                   # reaching it counts (v0 < thr <= v1)
    assert np.isnan(A.crossing_time(ep, vals, 2.0))               # never: NaN, not None
    # a curve that dips and comes back: the first *upward* crossing
    assert A.crossing_time([0, 1, 2, 3], [0.8, 0.1, 0.3, 0.9], 0.5) == pytest.approx(2.0 + 0.2 / 0.6)


def test_crossing_time_starting_above_is_never_not_zero():
    """A curve that starts at or above the threshold and stays there was not learned in the run
    (issue 11.5: such a modality was reported as learned at epoch 0)."""
    assert np.isnan(A.crossing_time([0, 1, 2], [0.0, 0.0, 0.0], 0.0))
    assert np.isnan(A.crossing_time([0, 1, 2], [1.0, 1.2, 1.1], 0.5))
    assert np.isnan(A.crossing_time([0, 1, 2], [0.0, np.nan, 1.0], 0.5))       # no crossing through NaN


def test_crossing_time_checks():
    with pytest.raises(ValueError, match=r"^epochs is not strictly increasing"):
        A.crossing_time([0, 2, 1], [0.0, 1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match=r"^values has shape \(2,\), must match epochs \(3,\)"):
        A.crossing_time([0, 1, 2], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match=r"^threshold == nan, must be finite"):
        A.crossing_time([0, 1], [0.0, 1.0], np.nan)


# ---------------------------------------------------------------------- the original's time convention
def test_nearest_time_is_the_original_index_one_below_the_update_count():
    """Records k = 0..5 (after k updates). The nearest record to 0.5 is k = 3 (3 updates), which
    the original stores at index 2: the two readings differ by one, and nearest_time gives 2."""
    ep = np.arange(6)
    w = np.array([0.0, 0.1, 0.3, 0.45, 0.8, 1.0])
    k_nearest = int(np.argmin(np.abs(w - 0.5)))
    assert k_nearest == 3 and ep[k_nearest] == 3                   # the number of updates
    assert original_time_half(w[1:], 0.5) == 2                      # the original's index
    assert A.nearest_time(ep, w, 0.5) == 2.0
    # the interpolated convention is the toolkit's default and reads 3 + 0.05/0.35
    assert A.crossing_time(ep, w, 0.5) == pytest.approx(3 + 0.05 / 0.35)


def test_nearest_time_never_reads_the_initial_record_and_breaks_ties_first():
    ep = np.arange(4)
    w = np.array([0.5, 0.0, 1.0, 0.0])                              # record 0 sits on the threshold
    assert original_time_half(w[1:], 0.5) == 0                      # tie between 0.0 and 1.0: first
    assert A.nearest_time(ep, w, 0.5) == 0.0
    assert np.isnan(A.nearest_time([0, 1], [0.0, np.nan], 0.5))


def test_paper_misattribution_reads_the_original_index():
    """t_A = 2, t_B = 5 (original indices): the original reads W[(2 + 5)//2] = W[3], the weights
    after 4 updates, i.e. our record 4 (not record 3)."""
    ep = np.arange(8)
    w_a = np.array([0.0, 0.2, 0.5, 1.0, 1.3, 1.2, 1.1, 1.0])
    W = w_a[1:]                                                     # the original's records
    expected = (W[(2 + 5) // 2] - W[-1]) / W[-1]
    assert expected == pytest.approx(0.3)
    assert A.measured_misattribution(ep, w_a, 2.0, 5.0, convention="paper") == expected
    assert np.isnan(A.measured_misattribution(ep, w_a, 2.0, np.nan))
    assert np.isnan(A.measured_misattribution(ep, np.r_[w_a[:-1], 0.0], 2.0, 5.0))   # W_A(end) = 0: undefined
    with pytest.raises(TypeError, match=r"^t_b == None, must be a real number"):
        A.measured_misattribution(ep, w_a, 2.0, None)


def test_paper_convention_reproduces_the_original_sweep_on_a_run():
    """measure(convention='paper') gives exactly the original's ta, tb, tb/ta and misattribution
    (its sweep(): A's threshold (1 + ρ/r)/2, B's half its maximum) on the same trajectory."""
    rho, ratio = 0.3, 2.0
    ds = D.toy(rho=rho, ratio=ratio, n=4096, rng=5)
    res = lf.train(lf.FusionNet.late((1, 1), width=50), ds, lr=0.04, epochs=1200, rng=1)
    W = res.w_tot_all[1:, 0, :]                                     # original: index i = after i + 1 updates
    ta = original_time_half(W[:, 0], (1 + rho / ratio) / 2)
    tb = original_time_half(W[:, 1], np.max(W[:, 1]) / 2)
    bias = (W[(ta + tb) // 2, 0] - W[-1, 0]) / W[-1, 0]
    m = A.measure(res, wa_uni=1 + rho / ratio, convention="paper")
    assert (m.t_a, m.t_b) == (ta, tb) and m.ratio == tb / ta and m.misattribution == bias
    assert m.thr_b == np.max(W[:, 1]) / 2 and m.ok
    assert 2.5 < m.ratio < 4.5                                      # a real unimodal phase was measured


# ---------------------------------------------------------------------- generalisation error
def test_generalization_error_signature_and_value():
    rng = np.random.default_rng(0)
    sigma = np.array([[2.0, 0.3], [0.3, 1.0]])
    w_star = np.array([[1.0, -1.0]])
    w_tot = rng.standard_normal((5, 1, 2))
    d = w_tot[:, 0, :] - w_star[0]
    expected = 0.5 * np.einsum("ki,ij,kj->k", d, sigma, d)
    assert np.allclose(A.generalization_error(w_tot, sigma, w_star), expected, rtol=1e-14, atol=0)
    assert A.generalization_error(w_star, sigma, w_star) == 0.0
    with pytest.raises(ValueError, match=r"^w_tot has trailing shape \(1, 3\), must match w_star \(1, 2\)"):
        A.generalization_error(np.zeros((1, 3)), sigma, w_star)
    with pytest.raises(ValueError, match=r"^sigma has shape \(3, 3\), must have shape \(2, 2\)"):
        A.generalization_error(w_tot, np.eye(3), w_star)


def test_no_ambiguous_names_remain():
    assert not hasattr(A, "misattribution")
    assert "measured_misattribution" in A.__all__ and "crossing_time" in A.__all__


# ---------------------------------------------------------------------- measure: unusable runs (issue 11.1)
def test_measure_of_a_diverged_run_is_nan_with_a_reason():
    ds = D.toy(n=256, rng=0)
    with pytest.warns(RuntimeWarning):
        res = lf.train(lf.FusionNet.late((1, 1), width=20), ds, lr=5.0, epochs=200, rng=0)
    assert res.status == "diverged"
    for conv in ("interp", "paper"):
        m = A.measure(res, wa_uni=1.0, wb_star=1.0, convention=conv)
        assert all(np.isnan(m[k]) for k in ("t_a", "t_b", "ratio", "misattribution", "thr_a", "thr_b"))
        assert m.reason.startswith("the run diverged: ") and not m.ok
    assert np.isnan(A.measure(res).ratio)                   # thresholds need no data for an unusable run


def test_measure_of_a_stalled_run_is_nan_with_a_reason():
    ds = D.toy(n=256, rng=0)
    with pytest.warns(RuntimeWarning):
        res = lf.train(lf.FusionNet((1, 1), 1, 10, 4, 2), ds, init="layer", scale=1e-300, epochs=50, rng=0)
    m = A.measure(res, ds)
    assert res.status == "stalled" and np.isnan(m.t_a) and m.reason.startswith("the run stalled: ")


def test_never_learned_modality_is_nan_not_epoch_zero():
    """A zero-variance modality B has nothing to learn: t_B and the ratio are NaN in both
    conventions, with a reason (issue 11.5: it was reported as t_B = 0, ratio = 0)."""
    ds = D.toy(n=512, rng=0)
    zero_b = D.from_arrays([ds.xs[0], np.zeros((512, 1))], ds.xs[0])
    res = lf.train(lf.FusionNet.late((1, 1), width=30), zero_b, epochs=1500, rng=0)
    assert res.status == "completed"
    for m in (A.measure(res, wa_uni=1.0, wb_star=0.0), A.measure(res), A.measure(res, zero_b),
              A.measure(res, wa_uni=1.0, convention="paper")):
        assert np.isfinite(m.t_a) and m.t_a > 0
        assert np.isnan(m.t_b) and np.isnan(m.ratio) and np.isnan(m.misattribution)
        assert "modality B" in m.reason


# ---------------------------------------------------------------------- measure: thresholds from the data
def test_default_thresholds_come_from_the_data():
    """Half of A's unimodal weight Σyx_A/Σ_A and half of B's least-squares weight, computed here
    from the samples directly; the moments the run kept, the Dataset and explicit values agree."""
    ds = D.toy(rho=0.4, ratio=2.0, n=2048, noise=0.2, rng=3)
    res = lf.train(lf.FusionNet.late((1, 1), width=40), ds, lr=0.04, epochs=1500, rng=2)
    x, y = ds.x, ds.y[:, 0]
    wa_uni = np.mean(y * x[:, 0]) / np.mean(x[:, 0] ** 2)
    wb_star = np.linalg.lstsq(x, y, rcond=None)[0][1]
    explicit = A.measure(res, wa_uni=wa_uni, wb_star=wb_star)
    for m in (A.measure(res), A.measure(res, ds), A.measure(res, ds.moments())):
        assert m.thr_a == pytest.approx(wa_uni / 2, rel=1e-10) and m.thr_b == pytest.approx(wb_star / 2, rel=1e-10)
        assert m.t_a == pytest.approx(explicit.t_a, rel=1e-9) and m.t_b == pytest.approx(explicit.t_b, rel=1e-9)
        assert m.ok and 2.0 < m.ratio < 6.0
    assert A.targets(ds) == pytest.approx((wa_uni, wb_star), rel=1e-10)


def test_relu_runs_double_the_thresholds_and_need_their_data():
    ds = D.toy(rho=0.0, ratio=2.0, n=2048, rng=1)
    res = lf.train(lf.FusionNet.late((1, 1), width=40, slope=0.0), ds, lr=0.04, epochs=800, rng=3)
    assert res.path == "feature" and res.moments is None
    with pytest.raises(ValueError, match=r"^data == None and result\.moments is None .* must pass data"):
        A.measure(res)
    wa, wb = A.targets(ds)
    m = A.measure(res, ds)
    assert (m.thr_a, m.thr_b) == (wa, wb)                 # ½ × 2 × target
    assert (A.measure(res, ds, relu=False).thr_a, A.measure(res, wa_uni=1.0, wb_star=1.0).thr_a) == (wa / 2, 1.0)


def test_max_thresholds_and_negative_targets():
    w_a = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 1.0])
    w_b = np.array([0.0, 0.0, 0.0, 0.1, 0.6, 1.2])
    m = A.measure(hand_result(w_a, w_b), wa_uni="max", wb_star="max")
    assert m.thr_a == 0.5 and m.thr_b == 0.6 and m.t_a == 2.0 and m.t_b == 4.0 and m.ratio == 2.0
    # a scalar path learning a negative weight crosses its (negative) threshold downwards
    neg = A.measure(hand_result(-w_a, -w_b), wa_uni=-1.0, wb_star=-1.2)
    assert (neg.thr_a, neg.thr_b, neg.t_a, neg.t_b) == (-0.5, -0.6, 2.0, 4.0)
    with pytest.raises(ValueError, match=r"^wa_uni == 'half', must be a number, 'max' or None"):
        A.measure(hand_result(w_a, w_b), wa_uni="half")
    with pytest.raises(ValueError, match=r"^wb_star == inf, must be finite"):
        A.measure(hand_result(w_a, w_b), wa_uni=1.0, wb_star=np.inf)
    with pytest.raises(ValueError, match=r"^convention == 'nearest', must be one of"):
        A.measure(hand_result(w_a, w_b), convention="nearest")
    with pytest.raises(TypeError, match=r"^result is a dict, must be a TrainResult"):
        A.measure({"w_tot": []})


def test_measurement_is_a_frozen_mapping():
    m = A.measure(hand_result([0.0, 0.2, 0.6, 1.0], [0.0, 0.1, 0.4, 1.0]), wa_uni=1.0, wb_star=1.0)
    assert isinstance(m, A.Measurement)
    assert list(m) == ["t_a", "t_b", "ratio", "misattribution", "thr_a", "thr_b", "reason"]
    assert dict(m)["t_a"] == m["t_a"] == m.t_a and m.reason == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.t_a = 1.0
    with pytest.raises(KeyError):
        m["status"]
    import pickle
    assert pickle.loads(pickle.dumps(m)) == m


def test_measure_of_a_one_modality_run_is_an_error():
    ds = D.from_arrays([np.random.default_rng(0).standard_normal((16, 2))], np.ones(16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = lf.train(lf.FusionNet((2,), 1, 3), ds, epochs=2, rng=0)
    with pytest.raises(ValueError, match=r"^result has 1 modality, must have at least 2"):
        A.measure(res)
