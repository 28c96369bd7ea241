"""The fusion classifiers of linfusion.classify: gradients, a plain reference, SGD reproducibility."""
import numpy as np
import pytest

from linfusion import mnist
from linfusion._classify_engine import (Engine, conv_backward, conv_forward, cross_entropy, pool_backward,
                                        pool_forward)
from linfusion.classify import ClassifierNet, learning_rate, train_classifier


def _fd(f, x, h=1e-6):
    """Central finite differences of the scalar f at every entry of x (modified in place, restored)."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        v = flat[i]
        flat[i] = v + h
        up = f()
        flat[i] = v - h
        down = f()
        flat[i] = v
        gf[i] = (up - down) / (2 * h)
    return g


# --------------------------------------------------------------------------- pieces
def test_cross_entropy_gradient_and_value():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    loss, d = cross_entropy(z.copy(), y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), y])), rel=1e-12)
    np.testing.assert_allclose(d, _fd(lambda: cross_entropy(z, y, grad=False)[0], z), rtol=1e-6, atol=1e-9)
    # a huge logit must not overflow
    big = np.array([[1000.0, 0.0]])
    assert cross_entropy(big, np.array([0]))[0] == pytest.approx(0.0, abs=1e-12)


def test_conv_gradients_and_bias():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 6, 5, 3)), rng.normal(size=(4, 27)), rng.normal(size=4)
    v = rng.normal(size=(2, 4, 3, 4))

    def f():
        return float(np.sum(v * conv_forward(x, w, b)))

    gw, gb, dx = conv_backward(x, w, v)
    np.testing.assert_allclose(gw, _fd(f, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, _fd(f, b), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, _fd(f, x), rtol=1e-6, atol=1e-8)


def test_conv_matches_direct_definition():
    rng = np.random.default_rng(2)
    x, w4, b = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)  # NCHW, torch layout
    want = np.zeros((2, 5, 5, 4))
    for i in range(5):
        for j in range(4):
            want[:, :, i, j] = np.einsum("nchw,ochw->no", x[:, :, i:i + 3, j:j + 3], w4) + b
    wmat = w4.transpose(0, 2, 3, 1).reshape(5, -1)
    got = conv_forward(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), wmat, b)
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2), want, rtol=1e-12, atol=1e-12)


def test_pool_value_and_gradient():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 5, 6, 3))                 # odd height: the last row is dropped
    p, idx = pool_forward(a)
    assert p.shape == (2, 2, 3, 3)
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(p[:, i, j], a[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(1, 2)))
    v = rng.normal(size=p.shape)
    da = pool_backward(v, idx, a.shape)
    np.testing.assert_allclose(da, _fd(lambda: float(np.sum(v * pool_forward(a)[0])), a), rtol=1e-6, atol=1e-8)
    assert np.all(da[:, 4] == 0)
    # ties: the gradient goes to the first maximum only (as PyTorch)
    tie = np.ones((1, 2, 2, 1))
    _, idx = pool_forward(tie)
    np.testing.assert_array_equal(pool_backward(np.ones((1, 1, 1, 1)), idx, tie.shape)[0, :, :, 0], [[1, 0], [0, 0]])


# --------------------------------------------------------------------------- a plain reference
def _reference_logits(net, w, xa, xb):
    """The network written out directly: NCHW, torch-layout weights, explicit taps and windows."""
    p = net.unpack(w)
    relu = lambda z: np.maximum(z, 0)   # noqa: E731

    def conv(x, name):
        k, b = p[name + ".weight"], p[name + ".bias"]
        n, _, h, wd = x.shape
        out = np.zeros((n, k.shape[0], h - 2, wd - 2))
        for i in range(h - 2):
            for j in range(wd - 2):
                out[:, :, i, j] = np.einsum("nchw,ochw->no", x[:, :, i:i + 3, j:j + 3], k) + b
        return out

    def dense(x, name):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    layer = conv if net.kind == "conv" else dense
    if net.kind == "conv":
        hs = [xa[:, None], xb[:, None]]
    else:
        hs = [xa.reshape(len(xa), -1), xb.reshape(len(xb), -1)]
    for lay in range(1, net.fuse_depth):
        hs = [relu(layer(h, f"encode{m}_{lay}")) for h, m in zip(hs, "AB")]
    h = layer(np.concatenate(hs, axis=1), "fuse")
    for lay in range(net.fuse_depth + 1, net.depth + 1):
        h = layer(relu(h), f"decode_{lay - 1}")
    if net.kind == "dense":
        return h
    h = relu(h)
    n, c, hh, ww = h.shape
    pooled = np.zeros((n, c, hh // 2, ww // 2))
    for i in range(hh // 2):
        for j in range(ww // 2):
            pooled[:, :, i, j] = h[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(2, 3))
    return pooled.reshape(n, -1) @ p["fc.weight"].T + p["fc.bias"]


def _ref_loss(net, w, xa, xb, y):
    z = _reference_logits(net, w, xa, xb)
    z = z - z.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))


NETS = [dict(kind="dense", width=5, depth=3, fuse_depth=1), dict(kind="dense", width=5, depth=3, fuse_depth=2),
        dict(kind="dense", width=5, depth=3, fuse_depth=3), dict(kind="conv", width=3, depth=2, fuse_depth=1),
        dict(kind="conv", width=3, depth=2, fuse_depth=2), dict(kind="conv", width=2, depth=3, fuse_depth=2)]


@pytest.mark.parametrize("spec", NETS, ids=lambda s: f"{s['kind']}-L{s['depth']}-Lf{s['fuse_depth']}")
def test_forward_and_gradient_against_reference(spec):
    net = ClassifierNet(image=(9, 8), classes=4, **spec)
    rng = np.random.default_rng(4)
    w = net.init("torch", rng, dtype=np.float64)
    xa, xb, y = rng.normal(size=(3, 9, 8)), rng.normal(size=(3, 9, 8)), np.array([0, 3, 2])
    eng = Engine(net, np.float64, w)
    np.testing.assert_allclose(eng.forward((xa, xb)), _reference_logits(net, w, xa, xb), rtol=1e-10, atol=1e-12)
    loss, g = eng.loss_and_grad((xa, xb), y)
    assert loss == pytest.approx(_ref_loss(net, w, xa, xb, y), rel=1e-12)
    wr = w.copy()
    np.testing.assert_allclose(g, _fd(lambda: _ref_loss(net, wr, xa, xb, y), wr), rtol=1e-5, atol=1e-8)
    assert np.count_nonzero(g) > 0.5 * g.size       # every block takes part
    for b in net.layout:
        if b.bias:
            assert np.any(g[b.offset:b.offset + b.size] != 0), b.name


def test_layout_matches_the_original_modules():
    fcn = {b.name: b.shape for b in ClassifierNet().layout}
    assert fcn == {"encodeA_1.weight": (500, 784), "encodeA_1.bias": (500,), "encodeB_1.weight": (500, 784),
                   "encodeB_1.bias": (500,), "fuse.weight": (500, 1000), "fuse.bias": (500,),
                   "decode_2.weight": (500, 500), "decode_2.bias": (500,), "decode_3.weight": (10, 500),
                   "decode_3.bias": (10,)}
    assert {b.name: b.shape for b in ClassifierNet(fuse_depth=1).layout}["fuse.weight"] == (500, 1568)
    assert {b.name: b.shape for b in ClassifierNet(fuse_depth=4).layout}["fuse.weight"] == (10, 1000)
    cnn = {b.name: b.shape for b in ClassifierNet(kind="conv", width=32).layout}
    assert cnn["encodeA_1.weight"] == (32, 1, 3, 3) and cnn["fuse.weight"] == (32, 64, 3, 3)
    assert cnn["decode_3.weight"] == (32, 32, 3, 3) and cnn["fc.weight"] == (10, 3200)
    assert {b.name: b.shape for b in ClassifierNet(kind="conv", width=32, fuse_depth=1).layout}["fuse.weight"] == \
        (32, 2, 3, 3)


def test_torch_default_init_bounds():
    net = ClassifierNet(kind="conv", width=32)
    w = net.init("torch", 0, dtype=np.float64)
    for b in net.layout:
        v = w[b.offset:b.offset + b.size]
        bound = 1 / np.sqrt(b.fan_in)
        assert np.all(np.abs(v) <= bound)
        if v.size > 1000:
            assert np.var(v) == pytest.approx(bound ** 2 / 3, rel=0.1)
    fan = {b.name: b.fan_in for b in net.layout}
    assert fan["fuse.weight"] == 64 * 9 and fan["fuse.bias"] == 64 * 9 and fan["fc.weight"] == 3200


def test_bad_network_and_training_parameters():
    with pytest.raises(ValueError, match="fuse_depth == 5, must be <= depth"):
        ClassifierNet(depth=4, fuse_depth=5)
    with pytest.raises(ValueError, match="kind == 'rnn'"):
        ClassifierNet(kind="rnn")
    with pytest.raises(ValueError, match="depth == 14 with image"):
        ClassifierNet(kind="conv", depth=14)
    data = _digits(20, 10)
    net = ClassifierNet(image=(8, 8), width=4, depth=2)
    for kw, msg in ((dict(lr=-1), "lr == -1"), (dict(gamma=1.5), "gamma == 1.5"), (dict(batch=0), "batch == 0"),
                    (dict(epochs=0), "epochs == 0"), (dict(corruption="x"), "corruption == 'x'"),
                    (dict(evals=("c",)), "evals =="), (dict(dtype=np.int32), "dtype == int32")):
        with pytest.raises(ValueError, match=msg):
            train_classifier(net, data, **kw)
    with pytest.raises(ValueError, match=r"data.x_train has shape \(20, 8, 8\), must be \(n, 28, 28\)"):
        train_classifier(ClassifierNet(width=4, depth=2), data)


def test_learning_rate_schedules():
    assert learning_rate(0.04, 0, 0.996) == 0.04
    assert learning_rate(0.04, 3, 0.996) == pytest.approx(0.04 * 0.996 ** 3)
    assert [learning_rate(1.0, e, 0.5, step=2) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]


# --------------------------------------------------------------------------- stochastic training
def _digits(n_train, n_test, size=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n_train + n_test)
    protos = rng.normal(size=(10, size, size))
    x = (protos[y] + 0.5 * rng.normal(size=(len(y), size, size))).astype(np.float32)
    return mnist.Digits(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "synthetic")


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_same_seed_bitwise_equal_other_seed_differs(kind):
    data = _digits(60, 30)
    net = ClassifierNet(kind=kind, image=(8, 8), width=6, depth=2, fuse_depth=2)
    kw = dict(epochs=3, batch=16, test_batch=7, lr=0.1)
    r1, r2 = train_classifier(net, data, seed=3, **kw), train_classifier(net, data, seed=3, **kw)
    assert r1.status == "completed"
    np.testing.assert_array_equal(r1.w, r2.w)
    np.testing.assert_array_equal(r1.train_loss, r2.train_loss)
    for k in r1.accuracy:
        np.testing.assert_array_equal(r1.accuracy[k], r2.accuracy[k])
    # the same initial weights with another seed: other shuffles and corruptions, other weights
    r3 = train_classifier(net, data, seed=4, w0=net.init("torch", np.random.SeedSequence(3).spawn(4)[0]), **kw)
    assert not np.array_equal(r1.w, r3.w)


def test_training_learns_and_records():
    data = _digits(400, 200)
    net = ClassifierNet(image=(8, 8), width=32, depth=2, fuse_depth=2)
    r = train_classifier(net, data, epochs=12, batch=50, lr=0.1, gamma=0.99, eval_every=5, seed=0)
    assert r.status == "completed"
    np.testing.assert_array_equal(r.eval_epochs, [0, 5, 10, 12])
    assert r.train_loss[-1] < 0.5 * r.train_loss[0]
    assert r.accuracy["both"][-1] > 0.8 and r.accuracy["a"][-1] > 0.8
    assert r.accuracy["both"][0] < 0.4
    np.testing.assert_allclose(r.lr, 0.1 * 0.99 ** np.arange(12))
    assert r.first_batch_loss[0] == r.train_loss[0]


def test_divergence_is_reported_not_measured():
    data = _digits(64, 16)
    net = ClassifierNet(image=(8, 8), width=16, depth=3, fuse_depth=2)
    r = train_classifier(net, data, epochs=5, batch=16, lr=1e6, seed=0)
    assert r.status == "diverged" and not r.usable
    assert "non-finite loss" in r.message
    assert np.all(np.isfinite(r.w))
    assert np.isnan(r.train_loss[-1]) and np.isnan(r.accuracy["both"][-1])


@pytest.mark.parametrize("spec", [NETS[1], NETS[4]], ids=["dense", "conv"])
def test_one_sgd_step_agrees_with_pytorch(spec):
    """The same step in PyTorch (the original's layer order, our initial weights copied in)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    net = ClassifierNet(image=(9, 8), classes=4, **spec)
    rng = np.random.default_rng(5)
    w = net.init("torch", rng, dtype=np.float64)
    xa, xb, y = rng.normal(size=(6, 9, 8)), rng.normal(size=(6, 9, 8)), rng.integers(0, 4, 6)
    eng = Engine(net, np.float64, w)
    loss = eng.step((xa, xb), y, 0.1)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in net.unpack(w.copy()).items()}
    conv = net.kind == "conv"

    def layer(h, name):
        if conv:
            return F.conv2d(h, p[name + ".weight"], p[name + ".bias"])
        return F.linear(h, p[name + ".weight"], p[name + ".bias"])

    ta, tb = torch.tensor(xa), torch.tensor(xb)
    ta, tb = (ta[:, None], tb[:, None]) if conv else (ta.flatten(1), tb.flatten(1))
    for lay in range(1, net.fuse_depth):
        ta, tb = F.relu(layer(ta, f"encodeA_{lay}")), F.relu(layer(tb, f"encodeB_{lay}"))
    h = layer(torch.cat((ta, tb), 1), "fuse")
    for lay in range(net.fuse_depth + 1, net.depth + 1):
        h = layer(F.relu(h), f"decode_{lay - 1}")
    if conv:
        h = F.linear(torch.flatten(F.max_pool2d(F.relu(h), 2), 1), p["fc.weight"], p["fc.bias"])
    tloss = F.cross_entropy(h, torch.tensor(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    ours = net.unpack(eng.w)
    for k, v in p.items():
        np.testing.assert_allclose(ours[k], (v - 0.1 * v.grad).detach().numpy(), rtol=1e-10, atol=1e-12)
