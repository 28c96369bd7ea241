"""The bridge between the public training API and the compiled kernels.

:mod:`linfusion.training` validates its arguments and interprets the outcome; this module
turns a network into the kernels' tables, prepares their arrays, calls them and hands the
raw records back. It imports :mod:`linfusion._kernels` (and so numba) only when a kernel is
first needed, so that ``import linfusion`` stays light.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LOSS_CODES", "STATUS_NAMES", "Records", "graph", "fit", "loss_grad", "set_threads",
           "get_threads", "max_threads"]

#: loss name -> kernel code (the values of _kernels.LOSS_*)
LOSS_CODES = {"mse": 0, "exponential": 1, "logistic": 2}
#: kernel status code -> name (the values of _kernels.STATUS_*)
STATUS_NAMES = {0: "completed", 1: "converged", 2: "diverged"}
_GROUP = 1024     # samples per parallel group on the sample path (fixed: results do not depend on threads)


def _kernels():
    """The compiled kernels, imported on first use."""
    from . import _kernels as K
    return K


def set_threads(n):
    """Let the parallel kernels use n threads (clipped to 1 .. the number numba started with)."""
    _kernels().set_threads(n)


def get_threads():
    """Threads the parallel kernels use now."""
    return _kernels().get_threads()


def max_threads():
    """Upper bound on the kernels' thread count."""
    return _kernels().max_threads()


def _chunk(n_units):
    """Samples per cache-resident chunk: activations and errors of a chunk fit in ~1 MiB."""
    return int(min(512, max(16, (65536 // n_units) // 8 * 8)))



# ---------------------------------------------------------------------- graph tables
def graph(net):
    """Node and edge tables of ``net`` for the kernels, and the buffer width.

    Returns
    -------
    nodes : ndarray of int64 of shape (n_nodes, 4)
        (buffer column, units, bias offset or -1, kind 0 input / 1 hidden / 2 output).
    edges : ndarray of int64 of shape (n_edges, 5)
        (weight offset, rows, cols, source node, destination node).
    n_units : int
        Columns of the activation buffer.
    """
    lay = net.layout
    nodes, edges = [], []
    col = 0
    for d in net.in_dims:
        nodes.append([col, d, -1, 0])
        col += d

    def find(mod, layer, kind):
        hit = np.flatnonzero((lay[:, 3] == mod) & (lay[:, 4] == layer) & (lay[:, 5] == kind))
        return int(lay[hit[0], 0]) if hit.size else -1

    def add_node(units, bias_off, kind):
        nonlocal col
        nodes.append([col, units, bias_off, kind])
        col += units
        return len(nodes) - 1

    L, Lf = net.depth, net.fuse_depth
    last = list(range(net.n_modalities))
    for k in range(net.n_modalities):
        for layer in range(1, Lf):
            j = add_node(net.width, find(k, layer, 1), 1)
            off = find(k, layer, 0)
            r, c = (int(v) for v in lay[lay[:, 0] == off][0, 1:3])
            edges.append([off, r, c, last[k], j])
            last[k] = j
    fuse_units = net.out_dim if Lf == L else net.width
    j = add_node(fuse_units, find(-1, Lf, 1), 2 if Lf == L else 1)
    for k in range(net.n_modalities):
        off = find(k, Lf, 0)
        r, c = (int(v) for v in lay[lay[:, 0] == off][0, 1:3])
        edges.append([off, r, c, last[k], j])
    prev = j
    for layer in range(Lf + 1, L + 1):
        off = find(-1, layer, 0)
        r, c = (int(v) for v in lay[lay[:, 0] == off][0, 1:3])
        j = add_node(r, find(-1, layer, 1), 2 if layer == L else 1)
        edges.append([off, r, c, prev, j])
        prev = j
    return np.array(nodes, dtype=np.int64), np.array(edges, dtype=np.int64), col


@dataclass
class Records:
    """What the kernels recorded for R runs (rows r = runs; the first n_rec[r] entries are valid)."""

    epoch: np.ndarray      # (R, n_max) int64
    loss: np.ndarray       # (R, n_max)
    w_tot: np.ndarray      # (R, n_max, out_dim, D)
    eg: np.ndarray         # (R, n_max)
    n_rec: np.ndarray      # (R,) int64
    status: np.ndarray     # (R,) int64 kernel status codes (STATUS_NAMES)


def fit(net, path, W, *, moments=None, fits=None, datas=None, lrs, wds, loss, epochs, record_every, tol,
        has_pop, sigma, w_star):
    """Train the R runs of ``W`` (R, P) in place on ``path`` and return their :class:`Records`.

    moments, fits : per data set (Moments, (W_ls, L_min)), moment path.
    datas : per data set Dataset, sample path.
    lrs, wds : (R,) float arrays. has_pop : (Rd,) bool; sigma (Rd, D, D), w_star (Rd, out, D).
    """
    K = _kernels()
    nodes, edges, n_units = graph(net)
    R = W.shape[0]
    D, n_out = net.in_dim, net.out_dim
    n_max = epochs // record_every + 2
    rec = Records(np.zeros((R, n_max), dtype=np.int64), np.zeros((R, n_max)),
                  np.zeros((R, n_max, n_out, D)), np.zeros((R, n_max)),
                  np.zeros(R, dtype=np.int64), np.zeros(R, dtype=np.int64))
    if path == "moment":
        K.train_moments(W, np.stack([m.sxx for m in moments]), np.stack([m.syx for m in moments]),
                        np.stack([f[0] for f in fits]), np.array([f[1] for f in fits]), lrs, wds,
                        edges, nodes, n_units, epochs, record_every, tol, has_pop, sigma, w_star,
                        rec.epoch, rec.loss, rec.w_tot, rec.eg, rec.n_rec, rec.status)
    else:
        Xt = np.stack([d.x.T for d in datas])
        Yt = np.stack([d.y.T for d in datas])
        n = Xt.shape[2]
        groups = max(1, -(-n // _GROUP))
        K.train_samples(W, Xt, Yt, lrs, wds, edges, nodes, n_units, net.slope, net.bias, LOSS_CODES[loss],
                        groups, _chunk(n_units), K.max_threads(), epochs, record_every, tol, has_pop, sigma,
                        w_star, rec.epoch, rec.loss, rec.w_tot, rec.eg, rec.n_rec, rec.status)
    return rec


def loss_grad(net, path, w, *, moments=None, fit=None, data=None, loss="mse"):
    """Loss and gradient of one network at ``w`` (one exact evaluation, no update)."""
    K = _kernels()
    nodes, edges, n_units = graph(net)
    if path == "moment":
        return K.loss_grad_moments(w, edges, nodes, n_units, moments.sxx, moments.syx, *fit)
    return K.loss_grad_samples(w, edges, nodes, n_units, np.ascontiguousarray(data.x.T),
                               np.ascontiguousarray(data.y.T), net.slope, net.bias, LOSS_CODES[loss],
                               _chunk(n_units))
