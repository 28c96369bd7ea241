"""FusionNet: the weight layout, end-to-end weights, initialisation schemes and argument checks."""
import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import linfusion as lf

import reference as ref


@st.composite
def nets(draw):
    depth = draw(st.integers(1, 5))
    k = draw(st.integers(1, 3))
    return lf.FusionNet(tuple(draw(st.lists(st.integers(1, 4), min_size=k, max_size=k))),
                        draw(st.integers(1, 3)), draw(st.integers(1, 6)), depth,
                        draw(st.integers(1, depth)), draw(st.sampled_from([1.0, 0.5, 0.0])),
                        draw(st.booleans()))


def expected_blocks(net):
    """Every block the family should have, as {(modality, layer, kind): (rows, cols)}, from theory.md §4."""
    h, L, Lf, out = net.width, net.depth, net.fuse_depth, net.out_dim
    want = {}
    for k, d in enumerate(net.in_dims):
        for layer in range(1, Lf):
            want[(k, layer, 0)] = (h, d if layer == 1 else h)
            if net.bias:
                want[(k, layer, 1)] = (h, 1)
        want[(k, Lf, 0)] = (out if Lf == L else h, d if Lf == 1 else h)
    if net.bias:
        want[(-1, Lf, 1)] = (out if Lf == L else h, 1)
    for layer in range(Lf + 1, L + 1):
        want[(-1, layer, 0)] = (out if layer == L else h, h)
        if net.bias:
            want[(-1, layer, 1)] = (out if layer == L else h, 1)
    return want


# ---------------------------------------------------------------------- layout
@settings(max_examples=200)
@given(nets())
def test_layout_is_consistent(net):
    lay = np.asarray(net.layout)
    assert lay.ndim == 2 and lay.shape[1] == 6
    sizes = lay[:, 1] * lay[:, 2]
    assert net.n_params == int(sizes.sum())
    order = np.argsort(lay[:, 0])
    starts, ends = lay[order, 0], lay[order, 0] + sizes[order]
    assert starts[0] == 0 and np.all(starts[1:] == ends[:-1]), "blocks overlap or leave gaps"
    got = {(int(m), int(layer), int(kind)): (int(r), int(c)) for _, r, c, m, layer, kind in lay}
    assert len(got) == len(lay), "duplicate (modality, layer, kind) entries"
    assert got == expected_blocks(net)


def test_n_params_by_hand():
    # L = 4, L_f = 2, K = 2 (d = 3, 1), h = 5, out = 2, with biases:
    # encoders 5*3 + 5 and 5*1 + 5; fusion 5*5 + 5*5 + 5; layer 3: 25 + 5; layer 4: 10 + 2
    net = lf.FusionNet((3, 1), 2, 5, 4, 2, bias=True)
    assert net.n_params == (15 + 5) + (5 + 5) + (25 + 25 + 5) + (25 + 5) + (10 + 2)
    assert net.n_modalities == 2 and net.in_dim == 4
    assert net.in_slices == (slice(0, 3), slice(3, 4))


def test_blocks_and_unpack_are_views_in_layout_order():
    net = lf.FusionNet((2, 1), 1, 3, 3, 2, bias=True)
    w = np.arange(net.n_params, dtype=float)
    blocks = net.blocks(w)
    assert [b.shape for b in blocks] == [(int(r), int(c)) for _, r, c, _, _, kind in net.layout if kind == 0]
    assert [b.shape for b in net.blocks(w, kind=1)] == [(3,), (3,), (3,), (1,)]
    assert [b.shape for b in net.blocks(w, modality=0)] == [(3, 2), (3, 3)]
    assert [b.shape for b in net.blocks(w, layer=2)] == [(3, 3), (3, 3)]
    assert [b.shape for b in net.blocks(w, modality=-1)] == [(1, 3)]
    blocks[0][1, 0] = -7.0                      # row-major: entry (1, 0) of a 3x2 block at offset 0
    assert w[2] == -7.0
    u = net.unpack(w)
    assert set(u) == {"W1_0", "b1_0", "W1_1", "b1_1", "W2_0", "W2_1", "b2", "W3", "b3"}
    u["b3"][0] = 99.0
    assert w[-1] == 99.0
    with pytest.raises(ValueError, match=r"^w has shape \(5,\), must have shape"):
        net.unpack(np.zeros(5))


# ---------------------------------------------------------------------- end-to-end weights
@settings(max_examples=100)
@given(nets(), st.integers(0, 2 ** 32 - 1))
def test_w_tot_is_the_product_along_each_path(net, seed):
    w = np.random.default_rng(seed).standard_normal(net.n_params)
    u = net.unpack(w)
    tots = net.w_tot(w)
    assert len(tots) == net.n_modalities
    for k, d in enumerate(net.in_dims):
        m = u[f"W1_{k}"]                                   # layer 1 is always on the path of k
        for layer in range(2, net.fuse_depth + 1):
            m = u[f"W{layer}_{k}"] @ m
        for layer in range(net.fuse_depth + 1, net.depth + 1):
            m = u[f"W{layer}"] @ m
        assert tots[k].shape == (net.out_dim, d)
        assert np.allclose(tots[k], m, rtol=1e-13, atol=1e-13 * np.abs(m).max())


@settings(max_examples=50)
@given(nets(), st.integers(0, 2 ** 32 - 1))
def test_w_tot_is_the_linear_map_of_a_linear_net(net, seed):
    """For slope 1 and no bias, ŷ = Σ_k W_k^tot x_k (via the independent reference forward pass)."""
    net = dataclasses.replace(net, slope=1.0, bias=False)
    rng = np.random.default_rng(seed)
    w = ref.random_weights(net, rng)
    xs = [rng.standard_normal((7, d)) for d in net.in_dims]
    yhat, _ = ref.forward(net, w, xs)
    pred = sum(x @ t.T for x, t in zip(xs, net.w_tot(w)))
    assert ref.max_rel(pred, yhat) <= 1e-12


# ---------------------------------------------------------------------- init: entry and layer
def test_entry_init_is_iid_normal_with_std_scale():
    net = lf.FusionNet((30, 20), 1, 400, 2, 2, bias=True)
    w = net.init("entry", 0.01, 0)
    weights = np.concatenate([b.ravel() for b in net.blocks(w)])
    # 20400 entries: the sample std has relative sd 1/√(2·20400) = 0.5 %; 3 % is 6 sd
    assert np.std(weights) == pytest.approx(0.01, rel=0.03)
    assert abs(np.mean(weights)) < 6 * 0.01 / np.sqrt(weights.size)
    assert all(np.all(b == 0) for b in net.blocks(w, kind=1)), "biases start at zero"
    assert np.array_equal(w, net.init("entry", 0.01, 0)), "same rng, same weights"
    assert not np.array_equal(w, net.init("entry", 0.01, 1))


@pytest.mark.parametrize("depth,fuse_depth", [(4, 1), (4, 2), (4, 3), (4, 4), (3, 2)])
def test_layer_init_norms(depth, fuse_depth):
    """theory.md §5 (deep nets): ‖W‖_F ≈ u0 before fusion, ≈ √2·u0 from fusion on, ‖F_k‖_F ≈ u0 (K = 2, equal dims).

    Every block has >= 8000 entries, so each squared norm is u0²·χ²_n/n with relative sd
    √(2/n) <= 1.6 %, i.e. <= 0.8 % on the norm; 5 % is > 6 sd.
    """
    u0 = 0.1
    net = lf.FusionNet((40, 40), 40, 200, depth, fuse_depth)
    w = net.init("layer", u0, 7)
    for layer in range(1, depth + 1):
        blocks = net.blocks(w, layer=layer)
        total = np.sqrt(sum(np.sum(b * b) for b in blocks))
        if layer < fuse_depth:
            for b in blocks:                      # one encoder block per modality
                assert np.linalg.norm(b) == pytest.approx(u0, rel=0.05), (layer, b.shape)
        elif layer == fuse_depth:
            assert len(blocks) == 2
            for b in blocks:
                assert np.linalg.norm(b) == pytest.approx(u0, rel=0.05), ("F_k", b.shape)
            assert total == pytest.approx(np.sqrt(2) * u0, rel=0.05)
        else:
            assert len(blocks) == 1
            assert total == pytest.approx(np.sqrt(2) * u0, rel=0.05), layer


# ---------------------------------------------------------------------- init: balanced
def conserved_quantities(net, w):
    """Every conserved quantity of gradient flow in theory.md §5 (linear nets), as matrices."""
    L, Lf, K = net.depth, net.fuse_depth, net.n_modalities
    u = net.unpack(w)
    out = []
    for k in range(K):
        for layer in range(1, Lf):                         # W_{l+1}ᵀW_{l+1} − W_l W_lᵀ on the path, incl. F_k
            nxt = u[f"W{layer + 1}_{k}"]
            cur = u[f"W{layer}_{k}"]
            out.append(nxt.T @ nxt - cur @ cur.T)
    if Lf < L:
        nxt = u[f"W{Lf + 1}"]
        out.append(nxt.T @ nxt - sum(u[f"W{Lf}_{k}"] @ u[f"W{Lf}_{k}"].T for k in range(K)))
    for layer in range(Lf + 1, L):
        nxt, cur = u[f"W{layer + 1}"], u[f"W{layer}"]
        out.append(nxt.T @ nxt - cur @ cur.T)
    return out


BALANCED = [(L, Lf, dims, out) for L in range(1, 5) for Lf in range(1, L + 1)
            for dims, out in (((1, 1), 1), ((3, 2), 1), ((2, 1, 2), 2))]


@pytest.mark.parametrize("depth,fuse_depth,in_dims,out_dim", BALANCED)
def test_balanced_init_is_exactly_balanced_and_aligned(depth, fuse_depth, in_dims, out_dim):
    rng = np.random.default_rng(depth * 10 + fuse_depth)
    net = lf.FusionNet(in_dims, out_dim, 6, depth, fuse_depth)
    D = net.in_dim
    q = rng.standard_normal(out_dim)
    q *= np.sign(q.sum())
    p = rng.standard_normal(D)
    align = np.outer(q, p)                                  # a rank-one direction, so alignment is exact
    u0 = 0.3
    w = net.init("balanced", u0, 1, align=align)
    for c in conserved_quantities(net, w):
        assert np.max(np.abs(c)) <= 1e-12 * u0 ** 2
    K = net.n_modalities
    mag = u0 ** fuse_depth * (np.sqrt(K) * u0) ** (depth - fuse_depth)
    for k, (sl, tot) in enumerate(zip(net.in_slices, net.w_tot(w))):
        blk = align[:, sl]
        expected = mag * blk / np.linalg.norm(blk)            # unit-norm rank-one block, times the chain magnitude
        assert np.allclose(tot, expected, rtol=0, atol=1e-12 * mag), k
    assert np.array_equal(w, net.init("balanced", u0, 1, align=align))


def test_balanced_init_paper_case_magnitude():
    """K = 2 (theory.md §5 scalar chain): W_k^tot = u0^Lf (√2 u0)^(L−Lf) along the given direction."""
    net = lf.FusionNet((1, 1), 1, 50, 4, 2)
    w = net.init("balanced", 0.1, 0, align=np.array([[2.0, -0.5]]))
    wa, wb = net.w_tot(w)
    mag = 0.1 ** 2 * (np.sqrt(2) * 0.1) ** 2
    assert wa[0, 0] == pytest.approx(mag, rel=1e-12)
    assert wb[0, 0] == pytest.approx(-mag, rel=1e-12)


def test_init_errors():
    net = lf.FusionNet((1, 2), 1, 4, 3, 2)
    with pytest.raises(ValueError, match=r"^scheme == 'he', must be one of 'entry', 'layer', 'balanced'"):
        net.init("he", 0.1)
    with pytest.raises(ValueError, match=r"^scale == 0\.0, must be > 0"):
        net.init("entry", 0.0)
    with pytest.raises(ValueError, match=r"^scale == -1\.0, must be > 0"):
        net.init("layer", -1.0)
    with pytest.raises(ValueError, match=r"^align == None, must be given"):
        net.init("balanced", 0.1)
    with pytest.raises(ValueError, match=r"^align has shape \(1, 2\), must have shape \(1, 3\)"):
        net.init("balanced", 0.1, align=np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"modality 1\) is zero, must be nonzero"):
        net.init("balanced", 0.1, align=np.array([[1.0, 0.0, 0.0]]))


# ---------------------------------------------------------------------- constructors and checks
def test_named_constructors():
    assert (lf.FusionNet.shallow().depth, lf.FusionNet.shallow().fuse_depth) == (1, 1)
    e = lf.FusionNet.early((2, 3), width=7, depth=3)
    assert (e.depth, e.fuse_depth, e.width, e.in_dims) == (3, 1, 7, (2, 3))
    late = lf.FusionNet.late(depth=3)
    assert (late.depth, late.fuse_depth) == (3, 3)
    d = lf.FusionNet.deep(fuse_depth=3)
    assert (d.depth, d.fuse_depth) == (4, 3)
    assert lf.FusionNet(2).in_dims == (2,)
    assert lf.FusionNet([1, 2]).in_dims == (1, 2)
    assert lf.FusionNet((1, 1), 1, 4) == lf.FusionNet((1, 1), 1, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lf.FusionNet((1, 1)).depth = 3


def test_architecture_errors():
    with pytest.raises(ValueError, match="^" + re.escape("fuse_depth == 5, must be <= depth (4).") + "$"):
        lf.FusionNet((1, 1), 1, 10, 4, 5)
    with pytest.raises(ValueError, match=r"^fuse_depth == 0, must be >= 1\.$"):
        lf.FusionNet((1, 1), 1, 10, 4, 0)
    with pytest.raises(ValueError, match=r"^depth == 0, must be >= 1\.$"):
        lf.FusionNet((1, 1), 1, 10, 0, 1)
    with pytest.raises(ValueError, match=r"^width == 0, must be >= 1\.$"):
        lf.FusionNet((1, 1), 1, 0)
    with pytest.raises(ValueError, match=r"^out_dim == 0, must be >= 1\.$"):
        lf.FusionNet((1, 1), 0)
    with pytest.raises(ValueError, match=r"^in_dims\[1\] == 0, must be >= 1\.$"):
        lf.FusionNet((1, 0))
    with pytest.raises(ValueError, match=r"^in_dims == \(\), must name at least one modality"):
        lf.FusionNet(())
    with pytest.raises(ValueError, match=r"^slope == 1\.5, must be <= 1"):
        lf.FusionNet((1, 1), slope=1.5)
    with pytest.raises(ValueError, match=r"^slope == -0\.1, must be >= 0"):
        lf.FusionNet((1, 1), slope=-0.1)
    with pytest.raises(TypeError, match=r"^in_dims\[0\] == 1\.5, must be an integer"):
        lf.FusionNet((1.5, 1))
    with pytest.raises(TypeError, match=r"^in_dims == None, must be a tuple of positive integers"):
        lf.FusionNet(None)
    with pytest.raises(TypeError, match=r"^width == 4\.0, must be an integer"):
        lf.FusionNet((1, 1), 1, 4.0)
    with pytest.raises(TypeError, match=r"^depth == True, must be an integer"):
        lf.FusionNet((1, 1), 1, 4, True)


# ---------------------------------------------------------------------- forward pass (issue 12)
FORWARD_NETS = [
    ((1, 1), 1, 4, 2, 2, 1.0, False, "mse"),
    ((2, 3), 2, 5, 4, 2, 0.0, True, "mse"),
    ((1, 2, 1), 1, 3, 3, 1, 0.3, True, "mse"),
    ((2, 1), 1, 4, 3, 3, 0.1, False, "logistic"),
    ((3,), 2, 4, 1, 1, 1.0, True, "mse"),
]


@pytest.mark.parametrize("spec", FORWARD_NETS, ids=lambda s: f"{s[0]}-L{s[3]}-Lf{s[4]}-slope{s[5]}-bias{s[6]}")
def test_forward_matches_the_engine_loss(spec):
    """½<|y − forward(w, xs)|²> (or the logistic loss of it) is the engine's loss to rounding."""
    in_dims, out_dim, width, depth, fuse, slope, bias, loss = spec
    net = lf.FusionNet(in_dims, out_dim, width, depth, fuse, slope, bias)
    rng = np.random.default_rng(len(in_dims) + depth)
    xs = [rng.standard_normal((300, d)) for d in in_dims]
    y = rng.standard_normal((300, out_dim))
    if loss != "mse":
        y = np.sign(y)
    data = lf.data.from_arrays(xs, y)
    w = ref.random_weights(net, rng)
    out = net.forward(w, xs)
    assert out.shape == (300, out_dim)
    if loss == "mse":
        mine = 0.5 * np.mean(np.sum((y - out) ** 2, axis=1))
    else:
        mine = np.mean(np.sum(np.log1p(np.exp(-y * out)), axis=1))
    engine = lf.loss_and_grad(net, data, w, loss=loss, path="sample")[0]
    assert mine == pytest.approx(engine, rel=1e-12)
    # the reference forward pass agrees entry by entry, and one (n, D) array is the same input
    assert ref.max_rel(out, ref.forward(net, w, xs)[0]) <= 1e-12
    assert np.array_equal(net.forward(w, np.concatenate(xs, axis=1)), out)


def test_forward_of_a_linear_net_is_its_end_to_end_map():
    net = lf.FusionNet((2, 1), 1, 6, 3, 2)
    rng = np.random.default_rng(3)
    w = rng.standard_normal(net.n_params)
    xs = [rng.standard_normal((5, 2)), rng.standard_normal((5, 1))]
    expect = sum(x @ t.T for x, t in zip(xs, net.w_tot(w)))
    assert np.allclose(net.forward(w, xs), expect, rtol=1e-12, atol=1e-12 * np.abs(expect).max())


def test_forward_errors():
    net = lf.FusionNet((2, 1), 1, 4)
    w = np.zeros(net.n_params)
    with pytest.raises(TypeError, match=r"^xs is a list of length 1, must be 2 arrays \(n, d_k\)"):
        net.forward(w, [np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"^xs\[1\] has shape \(3, 2\), must have shape \(any, 1\)"):
        net.forward(w, [np.zeros((3, 2)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"^xs have \[2, 3\] rows, must all have the same number"):
        net.forward(w, [np.zeros((3, 2)), np.zeros((2, 1))])
    with pytest.raises(ValueError, match=r"^xs has shape \(3, 2\), must have shape \(any, 3\)"):
        net.forward(w, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^w has shape \(3,\), must have shape"):
        net.forward(np.zeros(3), np.zeros((3, 3)))


# ---------------------------------------------------------------------- extreme scales and rng (issue 11.9)
@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e160, 1e200])
def test_layer_init_at_extreme_scales(scale):
    """scale² under/overflows float64; the weights still have the scheme's norms (not 0 or inf)."""
    net = lf.FusionNet((40, 40), 1, 50, 3, 2)
    w = net.init("layer", scale, 0)
    assert np.all(np.isfinite(w))
    for b in net.blocks(w, layer=1):
        # norm of b / scale: the norm of b itself would overflow; 2000 entries: sd 1.6 %
        assert np.linalg.norm(b / scale) == pytest.approx(1.0, rel=0.05)


def test_init_rng_errors_name_rng():
    net = lf.FusionNet((1, 1), 1, 4)
    with pytest.raises(TypeError, match=r"^rng == 'x', must be None, a non-negative integer"):
        net.init("entry", 0.1, "x")
    with pytest.raises(ValueError, match=r"^rng == -3, must be >= 0"):
        net.init("layer", 0.1, -3)
