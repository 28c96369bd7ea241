"""The engine's remedies (linfusion.mitigation, theory.md §11): per-block learning rates, OGM-GE,
expected modality dropout and unimodal auxiliary losses.

Checked against (1) the plain NumPy reference on samples (tests/reference.py: per-block
rates, OGM from sample scores, dropout by enumerating every mask, auxiliary losses from
the unimodal predictions), (2) central finite differences of those losses, (3) the exact
maps of theory.dynamics with lr_scales / ogm_alpha from each run's own initial weights,
(4) the closed forms of theory.mitigation.
"""
import numpy as np
import pytest

import linfusion as lf
import reference as ref
import theory
from linfusion import Mitigation, analysis
from linfusion.data import Moments, from_arrays
from theory import late_fixed_points
from theory import mitigation as tm
from theory.dynamics import gram_map


def _data(rng, n=40, dims=(2, 1), out=1):
    r = np.random.default_rng(rng)
    xs = [r.standard_normal((n, d)) * (1.5 if k == 0 else 1.0) for k, d in enumerate(dims)]
    x = np.concatenate(xs, axis=1)
    y = x @ r.standard_normal((x.shape[1], out)) + 0.3 * r.standard_normal((n, out))
    return from_arrays(xs, y)


def _toy_moments(ratio=2.0, rho=0.0):
    sig = np.array([[ratio * ratio, rho * ratio], [rho * ratio, 1.0]])
    ws = np.array([[1.0, 1.0]])
    return Moments(sig, ws @ sig, float((ws @ sig @ ws.T)[0, 0]))


def _fd(f, w, h=1e-6):
    g = np.zeros_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = h
        g[i] = (f(w + e) - f(w - e)) / (2 * h)
    return g


# ---------------------------------------------------------------------------------------
# Reference on samples: per-block rates and OGM-GE, moment and sample paths.
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("out", [1, 2])
def test_rates_and_ogm_match_the_reference_on_the_moment_path(out):
    ds = _data(0, out=out)
    net = lf.FusionNet.deep(in_dims=(2, 1), out_dim=out, width=5, depth=3, fuse_depth=2)
    w0 = ref.random_weights(net, np.random.default_rng(1), gain=0.5)
    scales = {"W1_0": 0.5, "W2_1": 3.0, "W3": 0.2}
    mit = Mitigation(lr_scales=scales, ogm_alpha=0.7)
    res = lf.train(net, ds, lr=0.05, epochs=60, w0=w0, path="moment", weight_decay=0.01, mitigation=mit)
    xs, y = ref.as_inputs(ds)
    want = ref.train_mitigated_reference(net, w0, xs, y, 0.05, 60, scales, 0.7, weight_decay=0.01)
    assert np.any(want["coef"] < 0.999), "the modulation never acted: the test would not test it"
    assert ref.max_rel(res.w_tot_all, want["w_tot"]) < 1e-9
    assert ref.max_rel(res.w, want["w"]) < 1e-9
    assert res.mitigation is mit


def test_rates_match_the_reference_on_the_sample_path():
    ds = _data(2, n=70)
    net = lf.FusionNet.deep(in_dims=(2, 1), width=6, depth=3, fuse_depth=2, slope=0.1, bias=True)
    w0 = ref.random_weights(net, np.random.default_rng(3), gain=0.7)
    scales = {"W1_0": 2.0, "b1_0": 0.0, "W2_1": 0.3, "W3": 1.5}
    res = lf.train(net, ds, lr=0.03, epochs=40, w0=w0, mitigation=Mitigation(lr_scales=scales),
                   weight_decay=0.02)
    assert res.path == "sample"
    xs, y = ref.as_inputs(ds)
    want = ref.train_mitigated_reference(net, w0, xs, y, 0.03, 40, scales, 0.0, weight_decay=0.02)
    assert ref.max_rel(res.w, want["w"]) < 1e-9
    assert np.array_equal(net.unpack(res.w)["b1_0"], net.unpack(w0)["b1_0"])     # scale 0 freezes


@pytest.mark.parametrize("seed", [4, 9, 13])       # OGM coefficients (0, 1), (0.59, 1), (1, 0.43)
def test_one_step_is_the_scaled_modulated_gradient_by_finite_differences(seed):
    ds = _data(seed)
    net = lf.FusionNet.deep(in_dims=(2, 1), width=4, depth=3, fuse_depth=3)
    w0 = lf.train(net, ds, lr=0.02, epochs=300, rng=5, init="layer", scale=0.3).w   # scores > 0: OGM acts
    xs, y = ref.as_inputs(ds)
    scales = {"W1_0": 0.25, "W3_1": 4.0}
    lr = 1e-3
    res = lf.train(net, ds, lr=lr, epochs=1, w0=w0, path="moment",
                   mitigation=Mitigation(lr_scales=scales, ogm_alpha=0.3))
    g = _fd(lambda w: ref.loss_and_grad(net, w, xs, y)[0], w0)
    kap = ref.ogm_from_samples(net, w0, xs, y, 0.3)
    assert kap.min() < 0.99
    mod = np.full(net.n_params, -1)
    for off, r, c, m, _, _ in net.layout:
        mod[off:off + r * c] = m
    factor = ref.block_rates(net, scales) * np.where(mod >= 0, kap[np.maximum(mod, 0)], 1.0)
    np.testing.assert_allclose((w0 - res.w) / lr, factor * g, rtol=1e-6, atol=1e-8)


def test_train_many_per_run_mitigations_equal_single_runs():
    ds = _data(6)
    net = lf.FusionNet.late(in_dims=(2, 1), width=5)
    mits = [None, Mitigation(lr_scales={"W1_1": 2.0}), Mitigation(ogm_alpha=1.0), Mitigation(dropout=(0.3, 0.1))]
    many = lf.train_many(net, ds, lr=0.05, epochs=50, rng=[7, 8, 9, 10], scale=0.1, init="layer", mitigation=mits)
    for r, m in enumerate(mits):
        one = lf.train(net, ds, lr=0.05, epochs=50, rng=[7, 8, 9, 10][r], scale=0.1, init="layer", mitigation=m)
        assert np.array_equal(one.w, many[r].w) and np.array_equal(one.loss, many[r].loss)
        assert many[r].mitigation is m


# ---------------------------------------------------------------------------------------
# Expected dropout and auxiliary losses: enumerated masks, finite differences, fixed points.
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rescale", [True, False])
def test_expected_dropout_is_the_mask_average(rescale):
    ds = _data(11)
    net = lf.FusionNet.deep(in_dims=(2, 1), width=4, depth=3, fuse_depth=2)
    w0 = ref.random_weights(net, np.random.default_rng(12), gain=0.8)
    xs, y = ref.as_inputs(ds)
    p = (0.3, 0.6)
    lr = 1e-3
    res = lf.train(net, ds, lr=lr, epochs=1, w0=w0, mitigation=Mitigation(dropout=p, dropout_rescale=rescale))
    loss, grad = ref.expected_dropout_loss_and_grad(net, w0, xs, y, p, rescale)
    assert abs(res.loss[0] - loss) < 1e-12 * max(1.0, loss)
    np.testing.assert_allclose((w0 - res.w) / lr, grad, rtol=1e-8, atol=1e-10)
    fd = _fd(lambda w: ref.expected_dropout_loss_and_grad(net, w, xs, y, p, rescale)[0], w0)
    np.testing.assert_allclose((w0 - res.w) / lr, fd, rtol=1e-6, atol=1e-8)


def test_auxiliary_losses_by_finite_differences():
    ds = _data(13)
    net = lf.FusionNet.deep(in_dims=(2, 1), width=4, depth=3, fuse_depth=2)
    w0 = ref.random_weights(net, np.random.default_rng(14), gain=0.8)
    xs, y = ref.as_inputs(ds)
    lam = (0.5, 2.0)
    lr = 1e-3
    res = lf.train(net, ds, lr=lr, epochs=1, w0=w0, mitigation=Mitigation(aux_weight=lam))
    assert abs(res.loss[0] - ref.auxiliary_loss(net, w0, xs, y, lam)) < 1e-12 * max(1.0, res.loss[0])
    fd = _fd(lambda w: ref.auxiliary_loss(net, w, xs, y, lam), w0)
    np.testing.assert_allclose((w0 - res.w) / lr, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("rescale", [True, False])
def test_module_moments_equal_the_theory_moments(rescale):
    ds = _data(15, dims=(2, 1, 3))
    mo = ds.moments()
    dims = (2, 1, 3)
    mine = lf.mitigation.dropout_moments(mo.sxx, mo.syx, mo.syy, dims, (0.2, 0.5, 0.0), rescale)
    theirs = tm.dropout_moments(mo.sxx, mo.syx, mo.syy, dims, (0.2, 0.5, 0.0), rescale)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    mine = lf.mitigation.auxiliary_moments(mo.sxx, mo.syx, mo.syy, dims, (0.2, 0.0, 3.0))
    theirs = tm.auxiliary_moments(mo.sxx, mo.syx, mo.syy, dims, (0.2, 0.0, 3.0))
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)


@pytest.mark.parametrize("rho", [0.0, 0.5, -0.3])
def test_expected_dropout_reaches_the_modified_fixed_point(rho):
    mo = _toy_moments(2.0, rho)
    net = lf.FusionNet.late(width=20)
    p = (0.5, 0.2)
    res = lf.train(net, mo, lr=0.04, epochs=20000, rng=3, scale=1e-4, init="layer",
                   mitigation=Mitigation(dropout=p))
    sig, syx, syy = tm.dropout_moments(mo.sxx, mo.syx, mo.syy, (1, 1), p)
    star = [f for f in late_fixed_points(sig, syx, syy, (1, 1)) if f.learned == (0, 1)][0]
    m_star = np.linalg.solve(sig, syx.ravel())
    np.testing.assert_allclose(res.w_tot_all[-1, 0], m_star, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.w_tot_all[-1, 0], np.ravel(star.w_tot), rtol=0, atol=1e-8)
    # the modified moments move the optimum away from the unmitigated one
    assert np.abs(m_star - np.linalg.solve(mo.sxx, mo.syx.ravel())).max() > 1e-2


# ---------------------------------------------------------------------------------------
# Exact maps and closed forms (two-layer linear late fusion, toy data).
# ---------------------------------------------------------------------------------------

def _map_of(res, mo, net, epochs, **kw):
    u = net.unpack(res.w0)
    return gram_map(mo.sxx, mo.syx, mo.syy, (1, 1), epochs, res.lr, [u["W1_0"], u["W1_1"]],
                    [u["W2_0"], u["W2_1"]], **kw)


def _times(epochs, w, thr):
    return [analysis.crossing_time(epochs, w[:, k], thr[k]) for k in range(2)]


@pytest.mark.parametrize("rho", [0.0, 0.4, -0.2])
@pytest.mark.parametrize("kw", [dict(lr_scales={"W1_1": 3.0, "W2_1": 3.0}), dict(lr_scales={"W2_0": 0.5}),
                                dict(ogm_alpha=0.5), dict(ogm_alpha=1.0, lr_scales={"W1_1": 1.5})])
def test_exact_map_predicts_the_run(rho, kw):
    mo = _toy_moments(2.0, rho)
    net = lf.FusionNet.late(width=30)
    res = lf.train(net, mo, lr=0.04, epochs=10000, rng=21, scale=1e-6, mitigation=Mitigation(**kw))
    traj = _map_of(res, mo, net, res.epochs, **kw)
    w = res.w_tot_all[:, 0, :]
    assert ref.max_rel(w, traj.w_tot) < 1e-8
    thr = traj.thresholds
    t_run, t_map = _times(res.epochs, w, thr), _times(traj.epochs, traj.w_tot, thr)
    # strong OGM can hold A below its threshold for good (A's score stays the larger: theory.md §11)
    assert np.all(np.isfinite(t_run)) or ("ogm_alpha" in kw and np.isfinite(t_run[1]))
    np.testing.assert_allclose(t_run, t_map, rtol=5e-3)         # NaN where both never cross
    if "ogm_alpha" not in kw:
        # the map without the scales is a different run: the comparison can fail
        plain = _map_of(res, mo, net, res.epochs)
        assert not np.allclose(_times(plain.epochs, plain.w_tot, thr), t_run, rtol=5e-3)


@pytest.mark.parametrize("rho", [0.0, 0.3])
@pytest.mark.parametrize("c", [0.5, 2.0, 3.0])
def test_closed_form_time_ratio_with_block_rates(rho, c):
    mo = _toy_moments(2.0, rho)
    net = lf.FusionNet.late(width=30)
    scales = {"W1_1": c, "W2_1": c}
    res = lf.train(net, mo, lr=0.02, epochs=12000, rng=22, scale=1e-9, init="entry",
                   mitigation=Mitigation(lr_scales=scales))
    m = analysis.measure(res)
    want = tm.time_ratio_lrs(mo.sxx, mo.syx, (1, 1), scales)
    assert abs(m.t_b / m.t_a - want) < 0.15 * want


@pytest.mark.parametrize("rho", [0.0, 0.3])
def test_equalising_ratio_removes_the_unimodal_phase(rho):
    mo = _toy_moments(2.0, rho)
    kappa = tm.equalising_lr_ratio(mo.sxx, mo.syx, (1, 1))
    net = lf.FusionNet.late(width=30)
    plain = analysis.measure(lf.train(net, mo, lr=0.02, epochs=12000, rng=23, scale=1e-9))
    res = lf.train(net, mo, lr=0.02, epochs=12000, rng=23, scale=1e-9,
                   mitigation=Mitigation(lr_scales={"W1_1": kappa, "W2_1": kappa}))
    m = analysis.measure(res)
    assert plain.t_b / plain.t_a > 1.3                  # there was a unimodal phase to remove
    assert abs(m.t_b / m.t_a - 1.0) < 0.10


# ---------------------------------------------------------------------------------------
# Validation and recording.
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, exc, words", [
    (dict(lr_scales={"W1_0": -1.0}), ValueError, "lr_scales['W1_0'] == -1.0, must be >= 0"),
    (dict(lr_scales=[1.0]), TypeError, "lr_scales is a list"),
    (dict(ogm_alpha=-0.1), ValueError, "ogm_alpha == -0.1"),
    (dict(ogm_alpha=float("nan")), ValueError, "ogm_alpha"),
    (dict(dropout=1.0), ValueError, "dropout == 1.0, must be < 1"),
    (dict(dropout=(0.1, 1.5)), ValueError, "dropout[1] == 1.5"),
    (dict(dropout_rescale=1), TypeError, "dropout_rescale"),
    (dict(aux_weight=-1), ValueError, "aux_weight == -1"),
])
def test_bad_configuration_is_refused(kw, exc, words):
    with pytest.raises(exc) as info:
        Mitigation(**kw)
    assert words in str(info.value)


def test_configuration_is_checked_against_the_net_and_path_before_work():
    net = lf.FusionNet.late(width=4)
    mo = _toy_moments()
    with pytest.raises(ValueError, match="lr_scales has the key 'W3'"):
        lf.train(net, mo, epochs=1, mitigation=Mitigation(lr_scales={"W3": 2.0}))
    with pytest.raises(ValueError, match="dropout has 3 entries, must have 2"):
        lf.train(net, mo, epochs=1, mitigation=Mitigation(dropout=(0.1, 0.1, 0.1)))
    with pytest.raises(ValueError, match="path == 'gram' with a mitigation"):
        lf.train(net, mo, epochs=1, path="gram", final_weights=False, mitigation=Mitigation(ogm_alpha=1.0))
    relu = lf.FusionNet.late(width=4, slope=0.0)
    ds = _data(30, dims=(1, 1))
    with pytest.raises(ValueError, match="ogm_alpha == 1.0 on the sample path"):
        lf.train(relu, ds, epochs=1, mitigation=Mitigation(ogm_alpha=1.0))
    with pytest.raises(ValueError, match="on the sample path, must be 0"):
        lf.train(relu, ds, epochs=1, mitigation=Mitigation(aux_weight=1.0))
    with pytest.raises(TypeError, match="train trains one run"):
        lf.train(net, mo, epochs=1, mitigation=[Mitigation()])
    with pytest.raises(ValueError, match="data, lr, weight_decay, rng, w0, mitigation and n_runs differ"):
        lf.train_many(net, [mo, mo], epochs=1, mitigation=[Mitigation()] * 3)
    with pytest.raises(TypeError, match="mitigation is a dict"):
        lf.train_many(net, mo, epochs=1, mitigation={"ogm_alpha": 1.0})


def test_a_mitigation_that_does_nothing_leaves_the_run_unchanged():
    mo = _toy_moments(2.0, 0.3)
    net = lf.FusionNet.late(width=8)
    a = lf.train(net, mo, lr=0.04, epochs=300, rng=5, scale=0.01, init="layer")
    b = lf.train(net, mo, lr=0.04, epochs=300, rng=5, scale=0.01, init="layer", mitigation=Mitigation())
    assert np.array_equal(a.w, b.w) and b.path == "moment"
    c = lf.train(net, mo, lr=0.04, epochs=300, rng=5, scale=0.01, init="layer",
                 mitigation=Mitigation(lr_scales={"W1_0": 1.0}))
    assert ref.max_rel(a.w, c.w) < 1e-12


# ---------------------------------------------------------------------------------------
# Sampled dropout (sample path): reference, reproducibility, agreement with the expectation.
# ---------------------------------------------------------------------------------------

def test_sampled_dropout_matches_the_reference():
    ds = _data(40, n=50)
    net = lf.FusionNet.deep(in_dims=(2, 1), width=5, depth=3, fuse_depth=2, slope=0.2, bias=True)
    w0 = ref.random_weights(net, np.random.default_rng(41), gain=0.7)
    mit = Mitigation(dropout=(0.4, 0.25), dropout_kind="sampled", dropout_seed=123)
    res = lf.train(net, ds, lr=0.05, epochs=12, w0=w0, mitigation=mit, weight_decay=0.01)
    assert res.path == "sample"
    xs, y = ref.as_inputs(ds)
    want = ref.train_sampled_dropout_reference(net, w0, xs, y, 0.05, 12, (0.4, 0.25), 123, weight_decay=0.01)
    assert ref.max_rel(res.w, want["w"]) < 1e-9
    np.testing.assert_allclose(res.loss, want["loss"], rtol=1e-10)
    # another seed draws other masks: the comparison can fail
    other = lf.train(net, ds, lr=0.05, epochs=12, w0=w0, weight_decay=0.01,
                     mitigation=Mitigation(dropout=(0.4, 0.25), dropout_kind="sampled", dropout_seed=124))
    assert ref.max_rel(other.w, want["w"]) > 1e-6


def test_sampled_dropout_is_bitwise_reproducible_across_threads_and_batches():
    ds = _data(42, n=5000, dims=(1, 1))            # several sample groups: the parallel tasks differ
    net = lf.FusionNet.late(width=8, slope=0.0)
    mits = [Mitigation(dropout=(0.5, 0.1), dropout_kind="sampled", dropout_seed=s) for s in (1, 2)]
    kw = dict(lr=0.05, epochs=30, rng=3, init="layer", scale=0.5)
    lf.set_threads(1)
    try:
        one = lf.train(net, ds, mitigation=mits[0], **kw)
    finally:
        lf.set_threads(2)
    two = lf.train(net, ds, mitigation=mits[0], **kw)
    batch = lf.train_many(net, ds, mitigation=mits, **{**kw, "rng": [3, 3]})
    assert np.array_equal(one.w, two.w) and np.array_equal(one.loss, two.loss)
    assert np.array_equal(one.w, batch[0].w) and not np.array_equal(batch[0].w, batch[1].w)


def test_sampled_dropout_averages_to_the_expected_run():
    """Mean over 32 mask seeds of the final end-to-end weights against the exact expected-dropout run, within
    3 standard errors (the stochastic run's drift from its expectation is O(lr²) per step: lr is small)."""
    ds = _data(43, n=400, dims=(1, 1))
    net = lf.FusionNet.late(width=6)
    w0 = net.init("layer", 0.5, np.random.default_rng(44))
    p = (0.5, 0.2)
    expected = lf.train(net, ds, lr=0.01, epochs=150, w0=w0, mitigation=Mitigation(dropout=p))
    seeds = list(range(32))
    runs = lf.train_many(net, ds, lr=0.01, epochs=150, w0=w0, path="sample",
                         mitigation=[Mitigation(dropout=p, dropout_kind="sampled", dropout_seed=s) for s in seeds])
    final = np.array([r.w_tot_all[-1, 0] for r in runs])
    mean, se = final.mean(axis=0), final.std(axis=0, ddof=1) / np.sqrt(len(seeds))
    assert np.all(se > 0)
    assert np.all(np.abs(mean - expected.w_tot_all[-1, 0]) < 3 * se), (mean, expected.w_tot_all[-1, 0], se)
    # and the expectation is not the run without dropout (the test can tell them apart)
    plain = lf.train(net, ds, lr=0.01, epochs=150, w0=w0)
    assert np.any(np.abs(mean - plain.w_tot_all[-1, 0]) > 3 * se)


def test_sampled_dropout_configuration():
    net = lf.FusionNet.late(width=4)
    with pytest.raises(ValueError, match="dropout_kind == 'sampled' on the moment path"):
        lf.train(net, _data(45, dims=(1, 1)), epochs=1, path="moment",
                 mitigation=Mitigation(dropout=0.3, dropout_kind="sampled"))
    with pytest.raises(ValueError, match="dropout_kind"):
        Mitigation(dropout_kind="stochastic")
    with pytest.raises(ValueError, match="dropout_seed"):
        Mitigation(dropout_seed=-1)
    res = lf.train(net, _data(45, dims=(1, 1)), epochs=2, mitigation=Mitigation(dropout=0.3, dropout_kind="sampled"))
    assert res.path == "sample" and res.mitigation.dropout_kind == "sampled"


# ---------------------------------------------------------------------------------------
# Schedules (moment path): pre-training and alternation.
# ---------------------------------------------------------------------------------------

def test_pretraining_then_alternation_match_the_reference():
    ds = _data(50, dims=(2, 1, 1))
    net = lf.FusionNet.deep(in_dims=(2, 1, 1), width=4, depth=3, fuse_depth=2)
    w0 = ref.random_weights(net, np.random.default_rng(51), gain=0.6)
    mit = Mitigation(pretrain=(1, 2), pretrain_epochs=13, alternate=5, lr_scales={"W1_0": 2.0}, ogm_alpha=0.3)
    res = lf.train(net, ds, lr=0.05, epochs=60, w0=w0, mitigation=mit, weight_decay=0.02)

    def gates(k):
        if k < 13:
            return [0, 1, 1]
        on = ((k - 13) // 5) % 3
        return [1 if j == on else 0 for j in range(3)]
    xs, y = ref.as_inputs(ds)
    want = ref.train_mitigated_reference(net, w0, xs, y, 0.05, 60, {"W1_0": 2.0}, 0.3, weight_decay=0.02,
                                         gates=gates)
    assert ref.max_rel(res.w, want["w"]) < 1e-9
    assert ref.max_rel(res.w_tot_all[:, 0, :], want["w_tot"][:, 0, :]) < 1e-9
    # without the schedule the run differs: the comparison can fail
    plain = ref.train_mitigated_reference(net, w0, xs, y, 0.05, 60, {"W1_0": 2.0}, 0.3, weight_decay=0.02)
    assert ref.max_rel(res.w, plain["w"]) > 1e-3


def test_pretraining_freezes_the_other_branches():
    mo = _toy_moments(2.0, 0.3)
    net = lf.FusionNet.deep(width=5, depth=3, fuse_depth=2)
    mit = Mitigation(pretrain=(1,), pretrain_epochs=200)
    res = lf.train(net, mo, lr=0.04, epochs=200, rng=4, init="layer", scale=0.3, mitigation=mit, weight_decay=0.01)
    u0, u = net.unpack(res.w0), net.unpack(res.w)
    for name in ("W1_0", "W2_0"):
        assert np.array_equal(u0[name], u[name])            # A's branch kept its weights exactly
    for name in ("W1_1", "W2_1", "W3"):
        assert not np.array_equal(u0[name], u[name])        # B's branch and the shared layer learned
    # two-layer late fusion (no shared layer): B learned alone reaches its best response to A's fixed weight
    late = lf.FusionNet.late(width=5)
    long = lf.train(late, mo, lr=0.04, epochs=6000, rng=4, init="layer", scale=0.3,
                    mitigation=Mitigation(pretrain=(1,), pretrain_epochs=6000))
    assert long.w_tot_all[-1, 0, 0] == long.w_tot_all[0, 0, 0]
    w_a = long.w_tot_all[0, 0, 0]
    want_b = (mo.syx[0, 1] - w_a * mo.sxx[0, 1]) / mo.sxx[1, 1]
    assert long.w_tot_all[-1, 0, 1] == pytest.approx(want_b, rel=1e-8)


def test_schedule_configuration():
    with pytest.raises(ValueError, match="pretrain_epochs == 5, must be 0 when pretrain is empty"):
        Mitigation(pretrain_epochs=5)
    with pytest.raises(ValueError, match="alternate"):
        Mitigation(alternate=-1)
    with pytest.raises(ValueError, match="must not repeat"):
        Mitigation(pretrain=(1, 1), pretrain_epochs=3)
    net = lf.FusionNet.late(width=4)
    with pytest.raises(ValueError, match="pretrain == \\(2,\\), must name modalities 0..1"):
        lf.train(net, _toy_moments(), epochs=1, mitigation=Mitigation(pretrain=(2,), pretrain_epochs=3))
    with pytest.raises(ValueError, match="schedules are built on the moment path only"):
        lf.train(lf.FusionNet.late(width=4, slope=0.0), _data(52, dims=(1, 1)), epochs=1,
                 mitigation=Mitigation(alternate=3))


def test_divergence_advice_uses_the_same_remedies():
    mo = _toy_moments(2.0, 0.3)
    net = lf.FusionNet.late(width=10)
    mit = Mitigation(aux_weight=8.0, lr_scales={"W1_1": 3.0, "W2_1": 3.0})
    with pytest.warns(RuntimeWarning, match="diverged"):
        bad = lf.train(net, mo, lr=0.1, epochs=3000, rng=1, scale=1e-3, init="layer", mitigation=mit)
    assert bad.status == "diverged"
    advised = float(bad.message.split("try lr <= ")[1].split(" ")[0])
    good = lf.train(net, mo, lr=advised, epochs=3000, rng=1, scale=1e-3, init="layer", mitigation=mit)
    assert good.status == "completed"


def test_configuration_is_hashable_and_records_itself():
    a = Mitigation(lr_scales={"W1_1": 2.0}, dropout=(0.1, 0.2))
    b = Mitigation(lr_scales={"W1_1": 2.0}, dropout=[0.1, 0.2])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.as_dict()["lr_scales"] == {"W1_1": 2.0} and a.as_dict()["dropout"] == [0.1, 0.2]


@pytest.mark.parametrize("mit", [Mitigation(lr_scales={"W1_1": 2.0, "W2_1": 2.0}), Mitigation(ogm_alpha=0.5),
                                 Mitigation(dropout=(0.4, 0.0)), Mitigation(aux_weight=1.0, dropout=0.2,
                                                                            dropout_rescale=False)])
def test_theory_predict_uses_the_runs_remedies(mit):
    ds = lf.data.toy(rho=0.3, n=2048, rng=60)
    net = lf.FusionNet.late(width=20)
    res = lf.train(net, ds, lr=0.04, epochs=3000, rng=61, mitigation=mit)
    pred = theory.predict(res, ds)
    assert ref.max_rel(res.w_tot_all, pred.w_tot_all) < 1e-8
    np.testing.assert_allclose(pred.eg, res.eg, rtol=1e-6, atol=1e-12)     # the population E_g, unchanged
    again = theory.predict(res, res.moments)                                 # already modified moments
    assert ref.max_rel(res.w_tot_all, again.w_tot_all) < 1e-8


def test_theory_predict_refuses_remedies_without_a_map():
    ds = lf.data.toy(rho=0.3, n=256, rng=62)
    net = lf.FusionNet.late(width=5)
    res = lf.train(net, ds, epochs=20, rng=63, mitigation=Mitigation(pretrain=(1,), pretrain_epochs=5))
    with pytest.raises(ValueError, match="no exact map"):
        theory.predict(res, ds)
