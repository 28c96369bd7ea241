"""The NumPy engine of :mod:`linfusion.classify`: forward, backward and SGD of a ClassifierNet.

The time goes to BLAS matrix products on contiguous arrays of one dtype (float32 or
float64). Dense layers are ``x @ W.T``; a 3×3 valid convolution is an im2col product in
channels-last (NHWC) layout: the windows of a chunk of samples are copied into a contiguous
(positions, 9·C_in) matrix ordered (kh, kw, c_in) and multiplied by the weight reordered
the same way. Chunks keep that matrix near 8 MB; the backward pass rebuilds it rather than
keeping it, and gets the input gradient as a full convolution (one more im2col product). 2×2 max pooling keeps the index of the (first) maximum of each window.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Engine", "conv_forward", "conv_backward", "pool_forward", "pool_backward", "cross_entropy"]

_CHUNK_BYTES = 8 << 20


def _chunk(n, positions, k, itemsize):
    return max(1, min(n, _CHUNK_BYTES // max(1, positions * k * itemsize)))


def _cols(x, out=None):
    """im2col of NHWC ``x`` (n, H, W, C): (n·H'·W', 9·C), columns ordered (kh, kw, c)."""
    n, h, w, c = x.shape
    win = sliding_window_view(x, (3, 3), axis=(1, 2))            # (n, H', W', C, 3, 3)
    win = win.transpose(0, 1, 2, 4, 5, 3)
    if out is None:
        return win.reshape(n * (h - 2) * (w - 2), 9 * c)
    out = out[:n * (h - 2) * (w - 2)]
    out.reshape(win.shape)[...] = win
    return out


def conv_forward(x, wmat, bias):
    """3×3 valid convolution of NHWC ``x`` with ``wmat`` (C_out, 9·C_in) in (kh, kw, c_in) order; + bias."""
    n, h, w, c = x.shape
    pos = (h - 2) * (w - 2)
    cout = wmat.shape[0]
    out = np.empty((n, h - 2, w - 2, cout), dtype=x.dtype)
    flat = out.reshape(n * pos, cout)
    step = _chunk(n, pos, 9 * c, x.itemsize)
    buf = np.empty((step * pos, 9 * c), dtype=x.dtype)
    for s in range(0, n, step):
        cols = _cols(x[s:s + step], buf)
        np.matmul(cols, wmat.T, out=flat[s * pos:s * pos + cols.shape[0]])
    flat += bias
    return out


def conv_backward(x, wmat, dout, need_dx=True):
    """Gradients of :func:`conv_forward`: (d wmat (C_out, 9·C_in), d bias (C_out,), dx or None).

    dx is the full convolution of ``dout`` (zero-padded by 2) with the flipped, transposed
    kernel: one more im2col product instead of scattering the columns back.
    """
    n, h, w, c = x.shape
    pos = (h - 2) * (w - 2)
    cout = wmat.shape[0]
    dflat = dout.reshape(n * pos, cout)
    gw = np.zeros_like(wmat)
    tmp = np.empty_like(wmat)
    gb = dflat.sum(axis=0)
    step = _chunk(n, pos, 9 * c, x.itemsize)
    buf = np.empty((step * pos, 9 * c), dtype=x.dtype)
    for s in range(0, n, step):
        cols = _cols(x[s:s + step], buf)
        np.matmul(dflat[s * pos:s * pos + cols.shape[0]].T, cols, out=tmp)
        gw += tmp
    if not need_dx:
        return gw, gb, None
    padded = np.zeros((n, h + 2, w + 2, cout), dtype=x.dtype)
    padded[:, 2:h, 2:w] = dout
    flipped = wmat.reshape(cout, 3, 3, c)[:, ::-1, ::-1, :].transpose(3, 1, 2, 0).reshape(c, 9 * cout)
    dx = conv_forward(padded, np.ascontiguousarray(flipped), np.zeros(c, dtype=x.dtype))
    return gw, gb, dx


def pool_forward(a):
    """2×2 max pooling of NHWC ``a`` (odd sizes floored): (pooled, index of the first maximum in 0..3)."""
    n, h, w, c = a.shape
    hp, wp = h // 2, w // 2
    quad = a[:, :2 * hp, :2 * wp].reshape(n, hp, 2, wp, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, hp, wp, c, 4)
    idx = quad.argmax(axis=-1)
    return np.take_along_axis(quad, idx[..., None], axis=-1)[..., 0], idx


def pool_backward(dp, idx, shape):
    """Gradient of :func:`pool_forward` w.r.t. its input of ``shape``."""
    n, h, w, c = shape
    hp, wp = h // 2, w // 2
    quad = np.zeros((n, hp, wp, c, 4), dtype=dp.dtype)
    np.put_along_axis(quad, idx[..., None], dp[..., None], axis=-1)
    da = np.zeros(shape, dtype=dp.dtype)
    da[:, :2 * hp, :2 * wp] = quad.reshape(n, hp, wp, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 2 * hp, 2 * wp, c)
    return da


def cross_entropy(logits, y, grad=True):
    """Mean softmax cross-entropy of ``logits`` (n, C) at labels ``y``, and its gradient (or None)."""
    n = logits.shape[0]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(s[:, 0]) + m[:, 0] - logits[rows, y]))
    if not grad:
        return loss, None
    e /= s
    e[rows, y] -= 1.0
    e /= n
    return loss, e


class Engine:
    """Parameters, gradients and one SGD step of a :class:`linfusion.classify.ClassifierNet`."""

    def __init__(self, net, dtype, w0):
        self.net = net
        self.dtype = np.dtype(dtype)
        self.w = np.array(w0, dtype=self.dtype, copy=True)
        self.g = np.zeros_like(self.w)
        self.W = net.unpack(self.w)
        self.G = net.unpack(self.g)
        self.conv = net.kind == "conv"
        self._tape = None

    # ------------------------------------------------------------------ weights as products take them
    def _wmat(self, name):
        """Weight of layer ``name`` as the matrix the products use."""
        w = self.W[name + ".weight"]
        if w.ndim == 4:        # (out, in, 3, 3) -> (out, 9·in) in (kh, kw, in) order
            return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)
        if name == "fc":       # columns in NCHW order -> NHWC order
            hp, wp = self.net.pooled
            return np.ascontiguousarray(w.reshape(w.shape[0], -1, hp, wp).transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)
        return w

    def _store_grad(self, name, gmat):
        g = self.G[name + ".weight"]
        if g.ndim == 4:
            g[...] = gmat.reshape(g.shape[0], 3, 3, g.shape[1]).transpose(0, 3, 1, 2)
        elif name == "fc":
            hp, wp = self.net.pooled
            g[...] = gmat.reshape(g.shape[0], hp, wp, -1).transpose(0, 3, 1, 2).reshape(g.shape)
        else:
            g[...] = gmat

    # ------------------------------------------------------------------ passes
    def _layer(self, name, x, relu, tape):
        wmat, b = self._wmat(name), self.W[name + ".bias"]
        if x.ndim == 4:
            z = conv_forward(x, wmat, b)
        else:
            z = np.matmul(x, wmat.T)
            z += b
        if relu:
            np.maximum(z, 0, out=z)
        if tape is not None:
            tape.append((name, x, z, relu, wmat))
        return z

    def _inputs(self, xs):
        net = self.net
        out = []
        for x in xs:
            x = np.asarray(x, dtype=self.dtype)
            n = x.shape[0]
            out.append(x.reshape(n, *net.image, net.channels) if self.conv else x.reshape(n, -1))
        if len(out) != net.n_modalities:
            raise ValueError(f"{len(out)} modality inputs, the network has {net.n_modalities}.")
        return out

    def forward(self, xs, keep=True):
        """Logits (n, classes) of the modality inputs ``xs``; ``keep`` records what backward needs."""
        net = self.net
        tape = [] if keep else None
        hs = self._inputs(xs)
        for layer in range(1, net.fuse_depth):
            hs = [self._layer(f"encode{m}_{layer}", h, True, tape) for m, h in zip(net.letters, hs)]
        self._split = [h.shape[-1] for h in hs]
        h = hs[0] if len(hs) == 1 else np.concatenate(hs, axis=-1)
        names = ["fuse"] + [f"decode_{layer - 1}" for layer in range(net.fuse_depth + 1, net.depth + 1)]
        for i, name in enumerate(names):
            h = self._layer(name, h, self.conv or i < len(names) - 1, tape)
        if self.conv:
            shape = h.shape
            h, idx = pool_forward(h)
            self._pool = (idx, shape, h.shape)
            h = self._layer("fc", h.reshape(h.shape[0], -1), False, tape)
        self._tape = tape
        return h

    def _back(self, entry, dz, need_dx):
        name, x, z, relu, wmat = entry
        if relu:
            dz *= z > 0
        if x.ndim == 4:
            gmat, gb, dx = conv_backward(x, wmat, dz, need_dx)
        else:
            gmat = np.matmul(dz.T, x)
            gb = dz.sum(axis=0)
            dx = np.matmul(dz, wmat) if need_dx else None
        self._store_grad(name, gmat)
        self.G[name + ".bias"][...] = gb
        return dx

    def backward(self, dlogits):
        """Fill the gradient vector ``self.g`` from d loss / d logits (after :meth:`forward`)."""
        net, tape = self.net, list(self._tape)
        dz = dlogits
        if self.conv:
            idx, shape, pshape = self._pool
            dp = self._back(tape.pop(), dz, True).reshape(pshape)
            dz = pool_backward(dp, idx, shape)
        n_shared = net.depth - net.fuse_depth + 1
        for k in range(n_shared):
            entry = tape.pop()
            dz = self._back(entry, dz, need_dx=net.fuse_depth > 1 or k < n_shared - 1)
        if net.fuse_depth == 1:
            return
        bounds = np.cumsum([0] + self._split)
        ds = [np.ascontiguousarray(dz[..., bounds[i]:bounds[i + 1]]) for i in range(len(self._split))]
        for layer in range(net.fuse_depth - 1, 0, -1):
            entries = tape[-len(ds):]
            del tape[-len(ds):]
            ds = [self._back(e, d, need_dx=layer > 1) for e, d in zip(entries, ds)]

    def cross_entropy(self, logits, y, grad=True):
        return cross_entropy(logits, y, grad)

    def loss_and_grad(self, xs, y):
        """Mean cross-entropy at the current parameters and its gradient (a copy of ``self.g``)."""
        loss, d = cross_entropy(self.forward(xs), y)
        self.backward(d)
        return loss, self.g.copy()

    def step(self, xs, y, lr):
        """One SGD step on a batch; returns the batch loss before the step (no step if it is not finite)."""
        with np.errstate(over="ignore", invalid="ignore"):      # a diverging step is reported, not warned
            loss, d = cross_entropy(self.forward(xs), y)
        if not np.isfinite(loss):
            self._tape = None
            return loss
        self.backward(d)
        self._tape = None
        self.w -= self.dtype.type(lr) * self.g
        return loss
