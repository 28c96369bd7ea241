"""The compiled gradients: finite differences, the NumPy reference, both paths, weight decay.

Every gradient the kernels compute (``loss_and_grad`` on the sample and the moment path,
and the update that ``train`` applies) is checked against central finite differences of
the loss along random directions, property-based over the whole FusionNet family:
K = 1..3 modalities, depth 1..4 with every fusion layer, linear / leaky-ReLU / ReLU,
with and without biases, all three losses, out_dim 1..2.

Tolerances. Central differences with step ε = 1e-5 (float64, unit-norm directions) have
truncation error O(ε²·f''') ≈ 1e-10 relative and rounding error O(ε_mach·|L|/ε) ≈
1e-11·|L|; the checks use a relative tolerance of 1e-6 on the directional derivative plus
an absolute floor of 1e-9·|L| (a 100x margin over the rounding term). A wrong gradient is
wrong by O(1) relative in the direction of the block it affects, and every layout block
gets its own direction, so a per-block error cannot hide behind a large total gradient.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import linfusion as lf
from linfusion.data import from_arrays

import reference as ref

EPS = 1e-5           # finite-difference step along unit directions
RTOL_FD = 1e-6       # see the module docstring
ATOL_FD = 1e-9       # times |loss|: 100x the rounding error of a central difference at EPS
RTOL_EXACT = 1e-12   # kernel vs reference, same maths, different summation order (n, width <= 40)

LOSSES = ("mse", "exponential", "logistic")
SLOPES = (1.0, 0.3, 0.1, 0.0)


# ---------------------------------------------------------------------- problem generators
@st.composite
def configs(draw, linear_only=False):
    k = draw(st.integers(1, 3))
    depth = draw(st.integers(1, 4))
    cfg = dict(
        in_dims=tuple(draw(st.lists(st.integers(1, 3), min_size=k, max_size=k))),
        out_dim=draw(st.integers(1, 2)),
        width=draw(st.integers(2, 6)),
        depth=depth,
        fuse_depth=draw(st.integers(1, depth)),
        n=draw(st.integers(5, 40)),
        seed=draw(st.integers(0, 2 ** 32 - 1)),
    )
    if linear_only:
        cfg.update(slope=1.0, bias=False, loss="mse")
    else:
        cfg.update(slope=draw(st.sampled_from(SLOPES)), bias=draw(st.booleans()),
                   loss=draw(st.sampled_from(LOSSES)))
    return cfg


def make_problem(cfg):
    """(net, Dataset, xs, y, w) for a configuration; ±1 targets for exp/logistic losses."""
    net = lf.FusionNet(cfg["in_dims"], cfg["out_dim"], cfg["width"], cfg["depth"],
                       cfg["fuse_depth"], cfg["slope"], cfg["bias"])
    rng = np.random.default_rng(cfg["seed"])
    n = cfg["n"]
    xs = [rng.standard_normal((n, d)) for d in cfg["in_dims"]]
    if cfg["loss"] == "mse":
        y = rng.standard_normal((n, cfg["out_dim"]))
    else:
        y = rng.choice([-1.0, 1.0], size=(n, cfg["out_dim"]))
    w = ref.random_weights(net, rng)
    return net, from_arrays(xs, y), xs, y, w


def block_directions(net, rng):
    """One random unit direction supported on each layout block, plus one on all weights."""
    dirs = []
    for off, rows, cols, mod, layer, kind in net.layout:
        v = np.zeros(net.n_params)
        v[off:off + rows * cols] = rng.standard_normal(rows * cols)
        dirs.append(v / np.linalg.norm(v))
    v = rng.standard_normal(net.n_params)
    dirs.append(v / np.linalg.norm(v))
    return dirs


def check_directional_derivatives(f, w, grad, net, xs, rng):
    """Compare grad·v with central differences of f along every block direction.

    For nonlinear nets, a direction whose ±ε points change the sign of some hidden
    pre-activation straddles a kink, where finite differences are not a derivative; such
    directions are skipped (rare: |z| < ~1e-5 for one of <= a few thousand units), and at
    least half of the directions must be checked.
    """
    f0 = f(w)
    dirs = block_directions(net, rng)
    base = ref.activation_pattern(net, w, xs) if net.slope != 1.0 else None
    checked = 0
    for i, v in enumerate(dirs):
        wp, wm = w + EPS * v, w - EPS * v
        if base is not None and not (np.array_equal(ref.activation_pattern(net, wp, xs), base)
                                     and np.array_equal(ref.activation_pattern(net, wm, xs), base)):
            continue
        fd = (f(wp) - f(wm)) / (2 * EPS)
        an = float(grad @ v)
        tol = RTOL_FD * max(abs(an), abs(fd)) + ATOL_FD * abs(f0)
        assert abs(fd - an) <= tol, (
            f"direction {i} (block {net.layout[i] if i < len(net.layout) else 'all'}): "
            f"analytic {an!r}, finite difference {fd!r}, |diff| {abs(fd - an):.3g} > {tol:.3g}")
        checked += 1
    assert checked >= len(dirs) / 2, f"only {checked} of {len(dirs)} directions avoided kinks"


def kernel_loss(net, ds, loss, path):
    return lambda w: lf.loss_and_grad(net, ds, w, loss=loss, path=path)[0]


# ---------------------------------------------------------------------- the oracle itself
@settings(max_examples=60)
@given(configs())
def test_reference_gradient_matches_finite_differences(cfg):
    """The NumPy reference is itself right (so agreeing with it means something)."""
    net, ds, xs, y, w = make_problem(cfg)
    value, grad = ref.loss_and_grad(net, w, xs, y, cfg["loss"])
    check_directional_derivatives(lambda v: ref.loss_and_grad(net, v, xs, y, cfg["loss"])[0],
                                  w, grad, net, xs, np.random.default_rng(cfg["seed"] + 1))


def test_reference_losses_by_hand():
    """Reference loss conventions on a one-weight model: ½ mean sq., mean exp(-yŷ), mean log(1+e^{-yŷ})."""
    net = lf.FusionNet((1,), 1, 1, 1, 1)
    xs, w = [np.array([[1.0], [2.0]])], np.array([0.5])       # ŷ = (0.5, 1.0)
    y = np.array([[1.0], [-1.0]])
    assert ref.loss_and_grad(net, w, xs, y, "mse")[0] == pytest.approx(0.5 * (0.25 + 4.0) / 2, rel=1e-15)
    assert ref.loss_and_grad(net, w, xs, y, "exponential")[0] == pytest.approx(
        (np.exp(-0.5) + np.exp(1.0)) / 2, rel=1e-15)
    assert ref.loss_and_grad(net, w, xs, y, "logistic")[0] == pytest.approx(
        (np.log(1 + np.exp(-0.5)) + np.log(1 + np.exp(1.0))) / 2, rel=1e-15)


# ---------------------------------------------------------------------- sample path
@settings(max_examples=300)
@given(configs())
def test_sample_path_gradient_matches_finite_differences(cfg):
    net, ds, xs, y, w = make_problem(cfg)
    w_before = w.copy()
    value, grad = lf.loss_and_grad(net, ds, w, loss=cfg["loss"], path="sample")
    assert np.array_equal(w, w_before), "loss_and_grad must not modify w"
    assert grad.shape == (net.n_params,)
    ref_value, ref_grad = ref.loss_and_grad(net, w, xs, y, cfg["loss"])
    assert value == pytest.approx(ref_value, rel=RTOL_EXACT)
    assert ref.max_rel(grad, ref_grad) <= RTOL_EXACT
    check_directional_derivatives(kernel_loss(net, ds, cfg["loss"], "sample"), w, grad, net, xs,
                                  np.random.default_rng(cfg["seed"] + 1))


# ---------------------------------------------------------------------- moment path
@settings(max_examples=100)
@given(configs(linear_only=True))
def test_moment_path_gradient_matches_finite_differences(cfg):
    net, ds, xs, y, w = make_problem(cfg)
    value, grad = lf.loss_and_grad(net, ds, w, path="moment")
    s_value, s_grad = lf.loss_and_grad(net, ds, w, path="sample")
    # Same quantities from Σxx, Σyx, <|y|²> instead of the samples: the loss is a difference
    # of O(<|y|²>) terms, so its rounding is relative to <|y|²>, not to the loss.
    syy = float(np.mean(np.sum(y * y, axis=1)))
    assert abs(value - s_value) <= RTOL_EXACT * max(syy, abs(s_value))
    assert ref.max_rel(grad, s_grad) <= 1e-11        # moments accumulate n·D rounding terms
    check_directional_derivatives(kernel_loss(net, ds, "mse", "moment"), w, grad, net, xs,
                                  np.random.default_rng(cfg["seed"] + 1))


def test_moment_path_accepts_moments():
    """Moments alone give the same loss and gradient as the Dataset they came from."""
    cfg = dict(in_dims=(2, 3), out_dim=2, width=4, depth=3, fuse_depth=2, n=30, seed=7,
               slope=1.0, bias=False, loss="mse")
    net, ds, xs, y, w = make_problem(cfg)
    a = lf.loss_and_grad(net, ds, w)
    b = lf.loss_and_grad(net, ds.moments(), w)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="Moments"):
        lf.loss_and_grad(net, ds.moments(), w, path="sample")


# ---------------------------------------------------------------------- every (L, L_f, K)
ARCHS = [(depth, fuse, k) for depth in range(1, 5) for fuse in range(1, depth + 1) for k in (1, 2, 3)]


@pytest.mark.parametrize("depth,fuse_depth,k", ARCHS)
def test_every_depth_and_fusion_layer(depth, fuse_depth, k):
    """Deterministic sweep over all (L, L_f) with L <= 4 and K = 1, 2, 3 (hypothesis may miss some)."""
    in_dims = (2, 1, 3)[:k]
    for loss, slope, bias in (("mse", 0.3, True), ("exponential", 0.1, False), ("logistic", 0.0, True)):
        cfg = dict(in_dims=in_dims, out_dim=2, width=3, depth=depth, fuse_depth=fuse_depth, n=17,
                   seed=100 * depth + 10 * fuse_depth + k, slope=slope, bias=bias, loss=loss)
        net, ds, xs, y, w = make_problem(cfg)
        value, grad = lf.loss_and_grad(net, ds, w, loss=loss)
        ref_value, ref_grad = ref.loss_and_grad(net, w, xs, y, loss)
        assert value == pytest.approx(ref_value, rel=RTOL_EXACT)
        assert ref.max_rel(grad, ref_grad) <= RTOL_EXACT
        check_directional_derivatives(kernel_loss(net, ds, loss, "sample"), w, grad, net, xs,
                                      np.random.default_rng(cfg["seed"]))
    cfg.update(slope=1.0, bias=False, loss="mse")
    net, ds, xs, y, w = make_problem(cfg)
    value, grad = lf.loss_and_grad(net, ds, w)                # auto: the moment path
    check_directional_derivatives(kernel_loss(net, ds, "mse", "moment"), w, grad, net, xs,
                                  np.random.default_rng(cfg["seed"]))


# ---------------------------------------------------------------------- wide blocks, many samples
WIDE = [  # (in_dims, out_dim, width, depth, fuse_depth, n): blocks with >= 8 columns/rows, several chunks
    ((9, 2), 1, 12, 3, 2, 1500),
    ((10,), 2, 9, 2, 1, 700),
    ((1, 1), 1, 40, 2, 2, 1100),
    ((3, 8, 1), 1, 10, 4, 3, 600),
]


@pytest.mark.parametrize("in_dims,out_dim,width,depth,fuse_depth,n", WIDE)
def test_wide_blocks_and_many_samples(in_dims, out_dim, width, depth, fuse_depth, n):
    """Kernels pick loop forms by block shape (narrow < 8 columns, wide >= 8) and split samples
    into chunks; the hypothesis tests above only reach narrow blocks and one chunk."""
    for slope, bias, loss in ((1.0, False, "mse"), (0.3, True, "logistic"), (0.0, True, "mse")):
        cfg = dict(in_dims=in_dims, out_dim=out_dim, width=width, depth=depth, fuse_depth=fuse_depth,
                   n=n, seed=n + width, slope=slope, bias=bias, loss=loss)
        net, ds, xs, y, w = make_problem(cfg)
        value, grad = lf.loss_and_grad(net, ds, w, loss=loss, path="sample")
        ref_value, ref_grad = ref.loss_and_grad(net, w, xs, y, loss)
        # n up to 1500 samples summed in different orders: rounding ~n·ε relative
        assert value == pytest.approx(ref_value, rel=1e-12)
        assert ref.max_rel(grad, ref_grad) <= 1e-11
        if slope == 1.0:
            m_value, m_grad = lf.loss_and_grad(net, ds, w, path="moment")
            syy = float(np.mean(np.sum(y * y, axis=1)))
            assert abs(m_value - ref_value) <= 1e-12 * max(syy, ref_value)
            assert ref.max_rel(m_grad, ref_grad) <= 1e-11
            check_directional_derivatives(kernel_loss(net, ds, "mse", "moment"), w, m_grad, net, xs,
                                          np.random.default_rng(cfg["seed"]))


# ---------------------------------------------------------------------- known values
def test_shallow_linear_gradient_closed_form():
    """L = 1: ŷ = W x, so ∇L = (W Σxx − Σyx) and L = ½<|y − Wx|²>, written out by hand."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 3))
    y = rng.standard_normal((50, 2))
    net = lf.FusionNet((2, 1), 2, 5, 1, 1)
    ds = from_arrays([x[:, :2], x[:, 2:]], y)
    w = rng.standard_normal(net.n_params)
    W = np.concatenate([blk for blk in net.blocks(w)], axis=1)         # (2, 3): F_A | F_B
    resid = y - x @ W.T
    g_expected = -(resid.T @ x) / 50
    for path in ("moment", "sample"):
        value, grad = lf.loss_and_grad(net, ds, w, path=path)
        assert value == pytest.approx(0.5 * np.mean(np.sum(resid ** 2, axis=1)), rel=1e-12)
        G = np.concatenate(net.blocks(grad), axis=1)                   # (2, 3)
        assert ref.max_rel(G, g_expected) <= 1e-12, path


@pytest.mark.parametrize("slope", [0.0, 0.3])
def test_leaky_relu_derivative_at_zero_is_slope(slope):
    """A hidden pre-activation exactly 0 back-propagates with factor ``slope`` (the documented convention)."""
    net = lf.FusionNet((1,), 1, 1, 2, 1, slope=slope, bias=True)
    w = np.zeros(net.n_params)
    v = net.unpack(w)
    v["W1_0"][:] = 0.5
    v["b1"][:] = -0.5            # z1 = 0.5·1 − 0.5 = 0 exactly
    v["W2"][:] = 2.0
    v["b2"][:] = 0.25            # ŷ = 2·φ(0) + 0.25 = 0.25
    ds = from_arrays([np.array([[1.0]])], np.array([[1.0]]))
    value, grad = lf.loss_and_grad(net, ds, w)
    g = net.unpack(grad)
    err = 0.25 - 1.0             # dL/dŷ for ½(ŷ − y)² with one sample
    assert value == pytest.approx(0.5 * err ** 2, rel=1e-15)
    assert g["b2"][0] == pytest.approx(err, rel=1e-15)
    assert g["W2"][0, 0] == 0.0                               # φ(0) = 0
    assert g["b1"][0] == pytest.approx(slope * 2.0 * err, rel=1e-15, abs=0.0)
    assert g["W1_0"][0, 0] == pytest.approx(slope * 2.0 * err * 1.0, rel=1e-15, abs=0.0)


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_margin_losses_closed_form(loss):
    """Shallow net, scalar output: ℓ(m) with m = y ŷ, dL/dW = mean ℓ'(m) y x."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((40, 2))
    y = rng.choice([-1.0, 1.0], size=(40, 1))
    net = lf.FusionNet((2,), 1, 3, 1, 1)
    w = np.array([0.7, -1.3])
    m = (y[:, 0] * (x @ w))
    if loss == "exponential":
        ell, dell = np.exp(-m), -np.exp(-m)
    else:
        ell, dell = np.log1p(np.exp(-m)), -1.0 / (1.0 + np.exp(m))
    value, grad = lf.loss_and_grad(net, from_arrays([x], y), w, loss=loss)
    assert value == pytest.approx(np.mean(ell), rel=1e-12)
    assert ref.max_rel(grad, np.mean((dell * y[:, 0])[:, None] * x, axis=0)) <= 1e-12


def test_logistic_loss_is_stable_at_large_margins():
    """log(1 + e^{-m}) must not overflow for m = −800 (it is ≈ 800) nor lose the gradient."""
    net = lf.FusionNet((1,), 1, 1, 1, 1)
    ds = from_arrays([np.array([[1.0], [1.0]])], np.array([[1.0], [-1.0]]))
    value, grad = lf.loss_and_grad(net, ds, np.array([-800.0]), loss="logistic")
    # sample 1: m = −800, ℓ = 800 + log1p(e^-800) = 800, dℓ/dw = −1·1; sample 2: m = 800, ℓ ≈ e^-800 = 0
    assert value == pytest.approx(400.0, rel=1e-15)
    assert grad[0] == pytest.approx(-0.5, rel=1e-15)


# ---------------------------------------------------------------------- weight decay: the GD step
@settings(max_examples=100)
@given(configs(), st.sampled_from([0.0, 0.01, 0.3]), st.sampled_from(["auto", "sample"]))
def test_gd_step_with_weight_decay(cfg, weight_decay, path):
    """train(epochs=1) applies w1 = w0 − lr (∇L(w0) + λ w0), biases included, on either path."""
    net, ds, xs, y, w0 = make_problem(cfg)
    lr = 0.05
    with warnings.catch_warnings():
        # random data can put lr above the (conservative) stability estimate; irrelevant for one step
        warnings.simplefilter("ignore", RuntimeWarning)
        res = lf.train(net, ds, lr=lr, epochs=1, w0=w0, loss=cfg["loss"], weight_decay=weight_decay,
                       path=path)
    assert np.array_equal(res.w0, w0)
    expected = ref.gd_step(net, w0, xs, y, lr, cfg["loss"], weight_decay)
    # the update lr·(g + λw) is O(lr); compare it (not w1, dominated by w0) to relative 1e-12
    assert ref.max_rel(w0 - res.w, w0 - expected) <= 1e-11
    # and independently of the reference: (w0 − w1)/lr is the gradient of L + λ/2 |w|²
    reg = kernel_loss(net, ds, cfg["loss"], "sample")
    check_directional_derivatives(lambda v: reg(v) + 0.5 * weight_decay * float(v @ v),
                                  w0, (w0 - res.w) / lr, net, xs, np.random.default_rng(cfg["seed"] + 2))
