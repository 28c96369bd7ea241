"""A slow, plainly written NumPy reference for the FusionNet family.

Written independently of ``linfusion._kernels`` and ``linfusion.train``: it reads the
weights through ``net.layout`` only, and then does ordinary layer-by-layer matrix products
on the samples. It is the oracle the compiled kernels are tested against, so it favours
clarity over speed (no moment path, no chunking, no transposed buffers).

Conventions (theory.md §2, §4 and the engine's docstrings):

- layers 1 .. L_f-1 are per-modality encoders, layer L_f sees all modalities through its
  column blocks F_k, layers L_f+1 .. L are shared; the last layer has ``out_dim`` units;
- a leaky ReLU φ(z) = z (z > 0), slope·z (z <= 0) follows every layer but the last; its
  derivative at 0 is ``slope``;
- losses are means over samples of sums over outputs: ½ (ŷ − y)², exp(−y ŷ),
  log(1 + exp(−y ŷ));
- one gradient-descent step is w ← w − lr (∇L(w) + λ w), weight decay on every parameter.
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = ["Weights", "read_weights", "forward", "loss_value", "loss_and_grad", "gd_step",
           "train_reference", "w_tot", "as_inputs", "gram_state", "gram_train_reference",
           "equivalent_samples"]


class Weights:
    """Weight matrices and biases of one network, read from the flat vector.

    ``W[(m, layer)]`` is the (rows, cols) matrix of modality ``m`` (-1 for shared) in
    ``layer``; ``b[(m, layer)]`` is the bias vector, and ``off[...]`` / ``boff[...]`` the
    offsets in the flat vector (so gradients can be written back).
    """

    def __init__(self, net, w):
        self.W, self.b, self.off, self.boff = {}, {}, {}, {}
        for off, rows, cols, mod, layer, kind in np.asarray(net.layout):
            off, rows, cols, mod, layer, kind = (int(v) for v in (off, rows, cols, mod, layer, kind))
            block = np.array(w[off:off + rows * cols], dtype=float)
            if kind == 0:
                self.W[(mod, layer)] = block.reshape(rows, cols)
                self.off[(mod, layer)] = off
            else:
                self.b[(mod, layer)] = block
                self.boff[(mod, layer)] = off


def read_weights(net, w):
    return Weights(net, w)


def as_inputs(data):
    """(list of per-modality arrays (n, d_k), targets (n, out)) from a Dataset."""
    return [np.asarray(x, dtype=float) for x in data.xs], np.asarray(data.y, dtype=float)


def _phi(z, slope):
    return np.where(z > 0, z, slope * z)


def _dphi(z, slope):
    return np.where(z > 0, 1.0, slope)


def _layer(h, W, b):
    z = h @ W.T                          # (n, rows)
    if b is not None:
        z = z + b
    return z


def forward(net, w, xs):
    """Forward pass on the samples.

    Returns
    -------
    yhat : ndarray (n, out_dim)
    cache : dict with per-modality encoder inputs / pre-activations, the fusion input list
        and the shared-layer inputs / pre-activations, for the backward pass.
    """
    P = read_weights(net, w)
    L, Lf, s = net.depth, net.fuse_depth, net.slope
    enc_in, enc_z = {}, {}
    fused_inputs = []
    for k, x in enumerate(xs):
        h = x
        for layer in range(1, Lf):
            enc_in[(k, layer)] = h
            z = _layer(h, P.W[(k, layer)], P.b.get((k, layer)))
            enc_z[(k, layer)] = z
            h = _phi(z, s)
        fused_inputs.append(h)
    z = sum(h @ P.W[(k, Lf)].T for k, h in enumerate(fused_inputs))
    if (-1, Lf) in P.b:
        z = z + P.b[(-1, Lf)]
    shared_in, shared_z = {}, {Lf: z}
    for layer in range(Lf + 1, L + 1):
        h = _phi(z, s)                    # every layer but the last has φ
        shared_in[layer] = h
        z = _layer(h, P.W[(-1, layer)], P.b.get((-1, layer)))
        shared_z[layer] = z
    cache = dict(P=P, enc_in=enc_in, enc_z=enc_z, fused_inputs=fused_inputs,
                 shared_in=shared_in, shared_z=shared_z)
    return z, cache


def loss_value(kind, yhat, y):
    """Loss (mean over samples, sum over outputs) and dL/dŷ."""
    n = y.shape[0]
    if kind == "mse":
        d = yhat - y
        return 0.5 * np.sum(d * d) / n, d / n
    margin = y * yhat
    if kind == "exponential":
        e = np.exp(-margin)
        return np.sum(e) / n, -y * e / n
    if kind == "logistic":
        # log(1 + exp(-m)) and its derivative -y / (1 + exp(m)), written stably
        ell = np.logaddexp(0.0, -margin)
        sig = np.exp(-np.logaddexp(0.0, margin))      # = 1 / (1 + e^m)
        return np.sum(ell) / n, -y * sig / n
    raise ValueError(kind)


def loss_and_grad(net, w, xs, y, loss="mse"):
    """Loss and flat gradient (no weight decay), by plain back-propagation."""
    L, Lf, s = net.depth, net.fuse_depth, net.slope
    yhat, c = forward(net, w, xs)
    P = c["P"]
    value, delta = loss_value(loss, yhat, y)          # delta = dL/dz of the top layer (n, out)
    grad = np.zeros(net.n_params)

    def put_w(key, G):
        off = P.off[key]
        grad[off:off + G.size] = G.ravel()

    def put_b(key, d):
        if key in P.boff:
            off = P.boff[key]
            grad[off:off + d.shape[1]] = d.sum(axis=0)

    # shared layers, from the top down
    for layer in range(L, Lf, -1):
        h = c["shared_in"][layer]
        put_w((-1, layer), delta.T @ h)
        put_b((-1, layer), delta)
        back = delta @ P.W[(-1, layer)]                # dL/dh (n, h)
        delta = back * _dphi(c["shared_z"][layer - 1], s)
    # fusion layer: one column block per modality, one shared bias
    put_b((-1, Lf), delta)
    for k, h in enumerate(c["fused_inputs"]):
        put_w((k, Lf), delta.T @ h)
        d = delta @ P.W[(k, Lf)]
        for layer in range(Lf - 1, 0, -1):
            d = d * _dphi(c["enc_z"][(k, layer)], s)
            put_w((k, layer), d.T @ c["enc_in"][(k, layer)])
            put_b((k, layer), d)
            d = d @ P.W[(k, layer)]
    return value, grad


def gd_step(net, w, xs, y, lr, loss="mse", weight_decay=0.0):
    """One full-batch gradient-descent step with weight decay on every parameter."""
    _, g = loss_and_grad(net, w, xs, y, loss)
    return w - lr * (g + weight_decay * w)


def w_tot(net, w):
    """End-to-end product of the weight matrices along each modality's path (list of (out, d_k))."""
    P = read_weights(net, w)
    post = np.eye(net.out_dim)
    for layer in range(net.depth, net.fuse_depth, -1):
        post = post @ P.W[(-1, layer)]
    out = []
    for k in range(net.n_modalities):
        m = post @ P.W[(k, net.fuse_depth)]
        for layer in range(net.fuse_depth - 1, 0, -1):
            m = m @ P.W[(k, layer)]
        out.append(m)
    return out


def train_reference(net, w0, xs, y, lr, epochs, loss="mse", weight_decay=0.0):
    """Plain GD loop; records (before each update) the loss and W_tot at epochs 0..epochs."""
    w = np.array(w0, dtype=float)
    losses, wtots = [], []
    for k in range(epochs + 1):
        value, g = loss_and_grad(net, w, xs, y, loss)
        losses.append(value)
        wtots.append(np.concatenate(w_tot(net, w), axis=1))
        if k == epochs:
            break
        w = w - lr * (g + weight_decay * w)
    return dict(loss=np.array(losses), w_tot=np.array(wtots), w=w)


# ---------------------------------------------------------------------- two-layer linear nets: Gram states
def gram_state(net, w):
    """(W_tot, [Q_b], [N_b]) of a two-layer net: per block b (a modality for late fusion, all
    inputs for early fusion) Q_b = W¹_bᵀ W¹_b and N_b = W²_b W²_bᵀ."""
    P = read_weights(net, w)
    if net.fuse_depth == 2:
        pairs = [(P.W[(k, 1)], P.W[(k, 2)]) for k in range(net.n_modalities)]
    else:
        pairs = [(np.concatenate([P.W[(k, 1)] for k in range(net.n_modalities)], axis=1), P.W[(-1, 2)])]
    wtot = np.concatenate([w2 @ w1 for w1, w2 in pairs], axis=1)
    return wtot, [w1.T @ w1 for w1, _ in pairs], [w2 @ w2.T for _, w2 in pairs]


def gram_train_reference(net, w0, sxx, syx, lr, epochs, weight_decay=0.0):
    """The exact Gram-state map of a two-layer linear net (theory.md §6.10), in plain NumPy.

    With g = Σyx − W_tot Σxx and c = 1 − lr·λ, one GD step on W¹, W² maps each block to
    W ← c²W + c·lr (N g + g Q) + lr² g Wᵀ g, Q ← c²Q + c·lr (gᵀW + Wᵀg) + lr² gᵀ N g,
    N ← c²N + c·lr (W gᵀ + g Wᵀ) + lr² g Q gᵀ. Returns W_tot at epochs 0..epochs.
    """
    wtot, Qs, Ns = gram_state(net, w0)
    bounds = np.concatenate([[0], np.cumsum(net.in_dims)]) if net.fuse_depth == 2 else np.array([0, net.in_dim])
    c = 1.0 - lr * weight_decay
    out = [wtot.copy()]
    for _ in range(epochs):
        g = syx - wtot @ sxx
        new = wtot.copy()
        for b, (Q, N) in enumerate(zip(Qs, Ns)):
            sl = slice(bounds[b], bounds[b + 1])
            W, gb = wtot[:, sl], g[:, sl]
            new[:, sl] = c * c * W + c * lr * (N @ gb + gb @ Q) + lr * lr * gb @ W.T @ gb
            Qs[b] = c * c * Q + c * lr * (gb.T @ W + W.T @ gb) + lr * lr * gb.T @ N @ gb
            Ns[b] = c * c * N + c * lr * (W @ gb.T + gb @ W.T) + lr * lr * gb @ Q @ gb.T
        wtot = new
        out.append(wtot.copy())
    return np.array(out)


def equivalent_samples(sxx, syx):
    """D samples (x, y) whose moments are Σxx and Σyx (Σxx positive definite).

    A linear net's gradient depends on the data only through Σxx and Σyx, so plain GD on
    these samples (:func:`train_reference`) follows the moment path's trajectory; the loss
    differs by a constant (<|y|²> is not reproduced).
    """
    D = sxx.shape[0]
    x = np.sqrt(D) * np.linalg.cholesky(sxx).T          # xᵀx / D = Σxx
    y = x @ np.linalg.solve(sxx, syx.T)                 # yᵀx / D = Σyx
    return x, y


# ---------------------------------------------------------------------- test utilities
def random_weights(net, rng, gain=1.0, bias_scale=0.3):
    """Weights of moderate size for gradient checks: entries N(0, gain²/fan_in), biases N(0, bias_scale²).

    With unit-variance inputs every pre-activation is then O(1), so losses, gradients and
    their finite differences are all O(1) and the checks are well conditioned.
    """
    rng = np.random.default_rng(rng)
    w = np.zeros(net.n_params)
    for off, rows, cols, mod, layer, kind in np.asarray(net.layout):
        size = int(rows * cols)
        if kind == 0:
            w[off:off + size] = gain * rng.standard_normal(size) / np.sqrt(cols)
        else:
            w[off:off + size] = bias_scale * rng.standard_normal(size)
    return w


def activation_pattern(net, w, xs):
    """Signs (z > 0) of every hidden pre-activation, concatenated: constant between kinks."""
    _, c = forward(net, w, xs)
    parts = [z > 0 for z in c["enc_z"].values()]
    parts += [z > 0 for layer, z in c["shared_z"].items() if layer < net.depth]
    return np.concatenate([p.ravel() for p in parts]) if parts else np.zeros(0, dtype=bool)


def max_rel(a, b):
    """max |a − b| / max |b|: an error relative to the scale of the whole array.

    Used for trajectories and weight vectors whose entries cross zero, where an entrywise
    relative error is meaningless.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a - b)))


# ---------------------------------------------------------------------- mitigations (theory.md §11)
def ogm_from_samples(net, w, xs, y, alpha):
    """OGM-GE coefficients per modality, from the samples and the rule as stated.

    Score of modality k: the loss reduction its contribution ŷ_k = W_k^tot x_k alone achieves,
    ½<|y|²> − ½<|y − ŷ_k|²>; dominant d = first maximum; rho = s_d / mean of the others
    (inf if that mean <= 0 < s_d); coefficient 1 − tanh(α rho) on d if rho > 1, else 1.
    """
    wt = w_tot(net, w)
    scores = []
    for k, x in enumerate(xs):
        yk = x @ wt[k].T
        scores.append(0.5 * np.mean(np.sum(y * y, axis=1)) - 0.5 * np.mean(np.sum((y - yk) ** 2, axis=1)))
    coef = np.ones(len(scores))
    if alpha == 0:
        return coef
    d = int(np.argmax(scores))
    if scores[d] <= 0:
        return coef
    rest = np.mean([s for j, s in enumerate(scores) if j != d])
    rho = scores[d] / rest if rest > 0 else np.inf
    if rho > 1:
        coef[d] = 1 - np.tanh(alpha * rho)
    return coef


def block_rates(net, lr_scales):
    """Per-parameter learning-rate factors: the block's scale (default 1) times its modality's
    OGM coefficient (shared blocks: 1), by reading ``net.layout``."""
    s = np.ones(net.n_params)
    for off, rows, cols, mod, layer, kind in np.asarray(net.layout):
        name = ("W" if kind == 0 else "b") + str(layer) + (f"_{mod}" if mod >= 0 else "")
        s[off:off + rows * cols] = lr_scales.get(name, 1.0)
    return s


def train_mitigated_reference(net, w0, xs, y, lr, epochs, lr_scales=None, ogm_alpha=0.0, weight_decay=0.0,
                              gates=None):
    """Plain GD with per-block rates and OGM-GE: w ← w − lr s (κ g + λ w); records as train_reference,
    plus the OGM coefficients used at every update (``coef``, (epochs, K)). ``gates(k)`` -> (K,) 0/1:
    the branches that learn at epoch k (shared blocks always learn)."""
    w = np.array(w0, dtype=float)
    s = block_rates(net, lr_scales or {})
    mod = np.full(net.n_params, -1)
    for off, rows, cols, m, layer, kind in np.asarray(net.layout):
        mod[off:off + rows * cols] = m
    losses, wtots, coefs = [], [], []
    for k in range(epochs + 1):
        value, g = loss_and_grad(net, w, xs, y)
        losses.append(value)
        wtots.append(np.concatenate(w_tot(net, w), axis=1))
        if k == epochs:
            break
        c = ogm_from_samples(net, w, xs, y, ogm_alpha)
        coefs.append(c)
        kap = np.where(mod >= 0, c[np.maximum(mod, 0)], 1.0)
        on = np.ones(net.n_params) if gates is None else np.where(mod >= 0, np.asarray(gates(k))[np.maximum(mod, 0)], 1.0)
        w = w - lr * on * s * (kap * g + weight_decay * w)
    return dict(loss=np.array(losses), w_tot=np.array(wtots), w=w, coef=np.array(coefs))


def expected_dropout_loss_and_grad(net, w, xs, y, p, rescale=True):
    """Loss and gradient averaged over every dropout mask (modality k dropped with probability p[k],
    kept ones multiplied by 1/(1 − p[k]) when ``rescale``): an exact enumeration of 2^K masks."""
    K = len(xs)
    total, grad = 0.0, np.zeros(net.n_params)
    for mask in itertools.product((0, 1), repeat=K):
        prob = np.prod([(1 - p[k]) if mask[k] else p[k] for k in range(K)])
        if prob == 0:
            continue
        xm = [x * (mask[k] / (1 - p[k]) if rescale else mask[k]) for k, x in enumerate(xs)]
        value, g = loss_and_grad(net, w, xm, y)
        total += prob * value
        grad += prob * g
    return total, grad


def auxiliary_loss(net, w, xs, y, weight):
    """Fused loss plus λ_k · ½<|y − W_k^tot x_k|²> for every modality k (linear nets)."""
    value, _ = loss_and_grad(net, w, xs, y)
    wt = w_tot(net, w)
    for k, x in enumerate(xs):
        value += weight[k] * 0.5 * np.mean(np.sum((y - x @ wt[k].T) ** 2, axis=1))
    return value


_M64 = (1 << 64) - 1


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def dropout_uniform(seed, epoch, sample, modality):
    """The sampled-dropout generator as documented (nested splitmix64 finalisers), in Python integers."""
    z = _mix64((seed + 0x9E3779B97F4A7C15) & _M64)
    z = _mix64(z ^ epoch)
    z = _mix64(z ^ sample)
    z = _mix64(z ^ modality)
    return (z >> 11) / 9007199254740992.0


def train_sampled_dropout_reference(net, w0, xs, y, lr, epochs, p, seed, rescale=True, weight_decay=0.0):
    """Plain GD whose epoch-e inputs have modality k of sample i dropped when dropout_uniform(seed, e, i, k) < p[k]
    (kept ones times 1/(1 − p[k]) when ``rescale``); returns the final weights and the recorded losses."""
    w = np.array(w0, dtype=float)
    n = xs[0].shape[0]
    losses = []
    for e in range(epochs + 1):
        xm = []
        for k, x in enumerate(xs):
            keep = np.array([0.0 if dropout_uniform(seed, e, i, k) < p[k] else
                             (1.0 / (1.0 - p[k]) if rescale else 1.0) for i in range(n)])
            xm.append(x * keep[:, None])
        value, g = loss_and_grad(net, w, xm, y)
        losses.append(value)
        if e == epochs:
            break
        w = w - lr * (g + weight_decay * w)
    return dict(w=w, loss=np.array(losses))
