"""The bridge between the public training API and the compiled kernels.

:mod:`linfusion.training` validates its arguments, chooses the path and interprets the
outcome; this module turns a network into the kernels' tables, prepares their arguments
(writable C-contiguous arrays of one dtype and plain Python scalars, so that every kernel
has one compiled specialisation per dtype), calls them and hands the raw records back. It
imports :mod:`linfusion._kernels` (and so numba) only when a kernel is first needed, so
that ``import linfusion`` stays light.

What each path computes per call (nothing else):

- ``'sample'``: ½<|y|²> (O(n·out)) and one chunk-blocked copy of the inputs in the
  kernel's dtype (O(n·D)); no moments.
- ``'moment'`` and ``'gram'``: Σxx, Σyx, <|y|²> of each data set (O(n·D²), skipped when
  the caller passes Moments or ``moments``) and its least-squares fit (O(D³), skipped when
  the caller passes ``fits``); ``'gram'`` also the initial Gram state (O(h·D²)).
- ``'feature'``: the 2K x 2K feature moments (O(n·K²)) and their least-squares fit.

Records grow as the run goes: the kernels pause a run when its buffer is full and this
module resumes it from its current weights (gradient descent is Markov in the weights, so
the result is bitwise that of an unpaused run).
"""
from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import mitigation as _mit

__all__ = ["LOSS_CODES", "STATUS_NAMES", "PATHS", "Records", "graph", "fit", "loss_grad", "set_threads",
           "get_threads", "max_threads", "blas_edges", "sample_layout", "gram_applies", "feature_applies"]

#: loss name -> kernel code (the values of _kernels.LOSS_*)
LOSS_CODES = {"mse": 0, "exponential": 1, "logistic": 2}
#: kernel status code -> name (the values of _kernels.STATUS_*; 3, paused, never leaves this module)
STATUS_NAMES = {0: "completed", 1: "converged", 2: "diverged"}
_PAUSED = 3
PATHS = ("moment", "gram", "feature", "sample")

_GROUP = 1024               # nominal samples per parallel group (fixed: results do not depend on threads)
_CHUNK_BYTES = 1 << 20      # activations + errors of a chunk of the fused loops (measured, see sample_layout)
_BLAS_MIN = 16              # an edge uses BLAS when both its sides have at least this many units
_RECORD_BYTES = 16 << 20    # first record buffers of a call (all runs); doubled as runs go on
_COMPILE_NOTE = "compiling the training kernels (first run only)"


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


# ---------------------------------------------------------------------- graph tables
def blas_edges(rows, cols):
    """The dispatch rule of the sample path: which weight blocks use BLAS matrix products.

    A block (rows x cols) uses BLAS when both sides have at least ``_BLAS_MIN`` (16) units;
    narrower blocks (the toy nets' 1-input encoders and 1-output read-outs) use the fused
    loops, which keep a unit's row of samples in cache and skip exact zeros (ReLU).

    Measured (``python benchmarks/bench_engine.py --dispatch``: one thread, 4096 samples, ReLU
    nets with inputs (d, d), d in {1, 4, 16, 64}, a shared hidden layer of width h in {8, 16, 32,
    100}, float64 and float32, 32 cases; the rule "BLAS iff rows >= t and cols >= t"): the sum
    over cases of time / best time, for t = 1, 4, 8, 16, 32, 64 and loops only, was 47.4, 36.6,
    36.6, 36.1, 36.5, 38.3, 52.8 timing one forward and backward pass, and 55.5, 42.4, 42.8,
    39.0, 37.4, 35.4, 47.4 timing whole epochs (with the update). Thresholds 4 to 64 lie within
    about 10 % of each other in both; 1 and loops only are 30-50 % worse. Width-100 blocks are 3x faster
    as BLAS products than as loops; 8-unit blocks up to 3x slower.
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    return ((rows >= _BLAS_MIN) & (cols >= _BLAS_MIN)).astype(np.int64)


def graph(net, blas=True):
    """Node and edge tables of ``net`` for the kernels (column names: _kernels.N_*, E_*).

    Returns
    -------
    nodes : ndarray of int64 of shape (n_nodes, 4)
        (column in the input or computed buffer, units, bias offset or -1, kind 0 input /
        1 hidden / 2 output).
    edges : ndarray of int64 of shape (n_edges, 6)
        (weight offset, rows, cols, source node, destination node, BLAS flag).
    n_in, n_comp : int
        Input units (D) and computed units.
    """
    lay = net.layout
    nodes, edges = [], []
    col_in = 0
    for d in net.in_dims:
        nodes.append([col_in, d, -1, 0])
        col_in += d
    col = 0

    def find(mod, layer, kind):
        hit = np.flatnonzero((lay[:, 3] == mod) & (lay[:, 4] == layer) & (lay[:, 5] == kind))
        return int(lay[hit[0], 0]) if hit.size else -1

    def add_node(units, bias_off, kind):
        nonlocal col
        nodes.append([col, units, bias_off, kind])
        col += units
        return len(nodes) - 1

    def add_edge(off, src, dst):
        r, c = (int(v) for v in lay[lay[:, 0] == off][0, 1:3])
        edges.append([off, r, c, src, dst, 0])

    L, Lf = net.depth, net.fuse_depth
    last = list(range(net.n_modalities))
    for k in range(net.n_modalities):
        for layer in range(1, Lf):
            j = add_node(net.width, find(k, layer, 1), 1)
            add_edge(find(k, layer, 0), last[k], j)
            last[k] = j
    fuse_units = net.out_dim if Lf == L else net.width
    j = add_node(fuse_units, find(-1, Lf, 1), 2 if Lf == L else 1)
    for k in range(net.n_modalities):
        add_edge(find(k, Lf, 0), last[k], j)
    prev = j
    for layer in range(Lf + 1, L + 1):
        off = find(-1, layer, 0)
        r = int(lay[lay[:, 0] == off][0, 1])
        j = add_node(r, find(-1, layer, 1), 2 if layer == L else 1)
        add_edge(off, prev, j)
        prev = j
    nodes = np.array(nodes, dtype=np.int64)
    edges = np.array(edges, dtype=np.int64)
    if blas:
        edges[:, 5] = blas_edges(edges[:, 1], edges[:, 2])
    return nodes, edges, col_in, col


def _support(nodes, edges, rows_input):
    """live[j, i]: row i can be nonzero at node j, when row i feeds only input node rows_input[i]."""
    n_nodes = nodes.shape[0]
    reach = np.eye(n_nodes, dtype=bool)             # reach[a, b]: a path from node a to node b
    for e in edges:                                  # edges in topological order of their sources
        reach[:, e[4]] |= reach[:, e[3]]
    return np.ascontiguousarray(reach[rows_input].T)


def _net_record(net, loss, blas):
    K = _kernels()
    nodes, edges, n_in, n_comp = graph(net, blas=blas)
    return K.Net(nodes, edges, int(n_in), int(n_comp), float(net.slope), bool(net.bias), int(LOSS_CODES[loss]))


def gram_applies(net, loss):
    """The Gram-state map is exact: two-layer linear nets (early or late fusion), no bias, mse."""
    return net.depth == 2 and net.slope == 1.0 and not net.bias and loss == "mse"


def feature_applies(net, loss):
    """Feature moments are exact: late fusion (L_f = L >= 2), scalar modalities, no bias, mse."""
    return (net.fuse_depth == net.depth >= 2 and all(d == 1 for d in net.in_dims) and not net.bias
            and loss == "mse")


# ---------------------------------------------------------------------- argument preparation
def _c(a, dtype):
    """A writable, aligned, C-contiguous copy (or the array itself when it already is one)."""
    return np.require(a, dtype=dtype, requirements=("C", "W", "A"))


def _stack(items, dtype):
    return _c(np.stack([np.asarray(i, dtype=dtype) for i in items]), dtype)


def _pop_record(has_pop, sigma, w_star, n_out, D, Rd):
    """(has_pop, sigma, w_star) for the data records' last three fields."""
    if has_pop is None:
        return np.zeros(Rd, dtype=bool), np.zeros((Rd, D, D)), np.zeros((Rd, n_out, D))
    return (_c(np.asarray(has_pop, dtype=bool).reshape(-1), bool), _c(sigma, np.float64),
            _c(w_star, np.float64))


def _schedule(R, lrs, wds, n_data, epochs, record_every, tol, blowup, grad_only=False, scales=None, ogm=None,
              drop=None, phases=None):
    """The kernels' Schedule; ``scales`` (R, P) per-parameter rate factors, ``ogm`` (R,) OGM-GE α,
    ``drop`` = (p (R, K), keep scale (R, K), seed (R,)) of sampled dropout and ``phases`` =
    (pre-training epochs (R,), pre-trained branches (R, K) 0/1, alternation period (R,)), each None
    when off (linfusion.mitigation)."""
    K = _kernels()
    data_of = np.arange(R, dtype=np.int64) if n_data > 1 else np.zeros(R, dtype=np.int64)
    scale = np.zeros((R, 0)) if scales is None else np.asarray(scales, dtype=np.float64).reshape(R, -1)
    alpha = np.zeros(R) if ogm is None else np.broadcast_to(np.asarray(ogm, dtype=np.float64), (R,))
    drop = drop or (np.zeros((R, 0)), np.zeros((R, 0)), np.zeros(R))
    phases = phases or (np.zeros(R), np.zeros((R, 0)), np.zeros(R))
    return K.Schedule(_c(np.broadcast_to(np.asarray(lrs, dtype=np.float64), (R,)), np.float64),
                      _c(np.broadcast_to(np.asarray(wds, dtype=np.float64), (R,)), np.float64),
                      data_of, int(epochs), int(record_every), float(tol), float(blowup), bool(grad_only),
                      _c(scale, np.float64), _c(alpha, np.float64), _c(drop[0], np.float64), _c(drop[1], np.float64),
                      _c(drop[2], np.int64), _c(phases[0], np.int64), _c(phases[1], np.float64),
                      _c(phases[2], np.int64))


def least_squares(sxx, syx, syy):
    """W_ls = Σyx Σxx⁺ (minimum norm) and its loss L_min = ½(<y²> − tr(W_ls Σyxᵀ)) clipped at 0."""
    w_ls = np.linalg.lstsq(sxx, syx.T, rcond=None)[0].T
    return w_ls, max(0.0, 0.5 * (float(syy) - float(np.sum(w_ls * syx))))


def _moments(datas, moments, fits):
    if moments is None:
        moments = [d if not hasattr(d, "moments") else d.moments() for d in datas]
    if fits is None:
        fits = [least_squares(m.sxx, np.atleast_2d(m.syx), m.syy) for m in moments]
    return moments, fits


def _moment_data(net, moments, fits, pop):
    K = _kernels()
    nodes, edges, n_in, _ = graph(net, blas=False)
    D, n_out = net.in_dim, net.out_dim
    if D > n_out:                                   # out error rows: all live
        live = np.ones((nodes.shape[0], n_out), dtype=bool)
    else:                                           # D basis rows: live where the input reaches
        rows_input = np.repeat(np.arange(net.n_modalities), net.in_dims)
        live = _support(nodes, edges, rows_input)
    sxx = _stack([m.sxx for m in moments], np.float64)
    syx = _stack([np.atleast_2d(m.syx) for m in moments], np.float64)
    w_ls = _stack([f[0] for f in fits], np.float64)
    return K.MomentData(sxx, syx, w_ls, _c(np.einsum("rod,rds->ros", w_ls, sxx) - syx, np.float64),
                        _c(np.array([f[1] for f in fits], dtype=np.float64), np.float64),
                        _c(np.array([0.5 * float(m.syy) for m in moments], dtype=np.float64), np.float64),
                        _c(live, bool), *pop, _c(_mit.param_modality(net), np.int64),
                        _c(np.repeat(np.arange(net.n_modalities), net.in_dims), np.int64))


def sample_layout(n, n_comp, itemsize, any_blas):
    """Fixed chunks and groups of n samples (they depend on the shapes only, never on threads).

    Groups: one if n <= 1024, else ceil(n / 1024) rounded up to a multiple of 4 (so that 2 or
    4 threads share the work evenly), of equal sizes to one sample. Chunks: a whole group
    when some block uses BLAS (large products); else as many samples as keep a chunk's
    activations and errors within ``_CHUNK_BYTES`` (1 MiB: in the 2 MiB L2 cache of this
    machine's cores), at least 16.

    Returns
    -------
    chunk_lo : ndarray of int64 of shape (n_chunks + 1,)
    group_lo : ndarray of int64 of shape (n_groups + 1,)
        Chunk indices at which each group starts.
    """
    G = 1 if n <= _GROUP else 4 * (-(-(-(-n // _GROUP)) // 4))
    chunk_lo, group_lo = [0], [0]
    for g in range(G):
        a, b = (g * n) // G, ((g + 1) * n) // G
        size = b - a
        m = size if any_blas else max(16, _CHUNK_BYTES // (2 * itemsize * max(n_comp, 1)))
        nc = max(1, -(-size // m))
        for c in range(nc):
            chunk_lo.append(a + ((c + 1) * size) // nc)
        group_lo.append(len(chunk_lo) - 1)
    return np.array(chunk_lo, dtype=np.int64), np.array(group_lo, dtype=np.int64)


def _sample_data(net, datas, dtype, pop, net_rec):
    K = _kernels()
    n = datas[0].n_samples
    D, n_out = net.in_dim, net.out_dim
    any_blas = bool(net_rec.edges[:, 5].any())
    chunk_lo, group_lo = sample_layout(n, net_rec.n_comp, np.dtype(dtype).itemsize, any_blas)
    X = np.empty((len(datas), n * D), dtype=dtype)        # chunk c: (d_k, m) blocks, feature-major
    Y = np.empty((len(datas), n * n_out), dtype=dtype)    # chunk c: (out, m)
    cols = np.concatenate([[0], np.cumsum(net.in_dims)])
    for i, d in enumerate(datas):
        xs = [np.asarray(x, dtype=dtype) for x in d.xs]
        y = np.asarray(d.y, dtype=dtype)
        for c in range(chunk_lo.shape[0] - 1):
            s0, s1 = int(chunk_lo[c]), int(chunk_lo[c + 1])
            m = s1 - s0
            for k, x in enumerate(xs):
                X[i, D * s0 + m * cols[k]:D * s0 + m * cols[k + 1]] = x[s0:s1].T.reshape(-1)
            Y[i, n_out * s0:n_out * s1] = y[s0:s1].T.reshape(-1)
    half_syy = np.array([0.5 * float(np.mean(np.sum(np.asarray(d.y, dtype=np.float64) ** 2, axis=1)))
                         for d in datas])
    return K.SampleData(X, Y, chunk_lo, group_lo, float(1.0 / n), _c(half_syy, np.float64), *pop)


def _feature_data(net, datas, pop):
    K = _kernels()
    Kmod = net.n_modalities
    m = 2 * Kmod
    Fs, qs, cls, lmins, hs = [], [], [], [], []
    for d in datas:
        x = np.concatenate([np.asarray(v, dtype=np.float64) for v in d.xs], axis=1)     # (n, K)
        f = np.empty((x.shape[0], m))
        f[:, 0::2] = np.maximum(x, 0.0)
        f[:, 1::2] = np.maximum(-x, 0.0)
        y = np.asarray(d.y, dtype=np.float64)
        n = x.shape[0]
        F = f.T @ f / n
        q = y.T @ f / n
        syy = float(np.mean(np.sum(y * y, axis=1)))
        c_ls, lmin = least_squares(F, q, syy)
        Fs.append(F), qs.append(q), cls.append(c_ls), lmins.append(lmin), hs.append(0.5 * syy)
    xin = np.zeros(m * Kmod)                        # input node k's block (m x 1) starts at m*k
    for k in range(Kmod):
        xin[m * k + 2 * k] = 1.0
        xin[m * k + 2 * k + 1] = -1.0
    nodes, edges, _, _ = graph(net, blas=False)
    live = _support(nodes, edges, np.repeat(np.arange(Kmod), 2))
    return K.FeatureData(xin, _stack(Fs, np.float64), _stack(qs, np.float64), _stack(cls, np.float64),
                         _c(np.array(lmins), np.float64), _c(np.array(hs), np.float64), _c(live, bool), *pop)


def gram_layout(net):
    """Blocks of the Gram state: one per modality (late fusion) or one (early fusion)."""
    K = _kernels()
    D, n_out = net.in_dim, net.out_dim
    cols = [0] + list(np.cumsum(net.in_dims)) if net.fuse_depth == 2 else [0, D]
    dims = np.diff(cols)
    q_off, n_off = [], []
    off = n_out * D
    for d in dims:
        q_off.append(off)
        off += int(d * d)
    for _ in dims:
        n_off.append(off)
        off += n_out * n_out
    return K.GramNet(np.array(cols, dtype=np.int64), np.array(q_off, dtype=np.int64),
                     np.array(n_off, dtype=np.int64), int(n_out)), off


def gram_state(net, W):
    """Gram states (R, n_state) of the weights W (R, P): W_tot, then Q_b = W¹_bᵀW¹_b, N_b = W²_b W²_bᵀ."""
    gnet, size = gram_layout(net)
    S = np.empty((W.shape[0], size))
    n_out, D = net.out_dim, net.in_dim
    for r in range(W.shape[0]):
        u = net.unpack(W[r])
        if net.fuse_depth == 2:                      # late: W¹_k (h, d_k), F_k (out, h)
            pairs = [(u[f"W1_{k}"], u[f"W2_{k}"]) for k in range(net.n_modalities)]
        else:                                        # early: W¹ = [W¹_k] (h, D), W² (out, h)
            pairs = [(np.concatenate([u[f"W1_{k}"] for k in range(net.n_modalities)], axis=1), u["W2"])]
        wtot = np.concatenate([w2 @ w1 for w1, w2 in pairs], axis=1)
        S[r, :n_out * D] = wtot.reshape(-1)
        for b, (w1, w2) in enumerate(pairs):
            d = w1.shape[1]
            S[r, gnet.q_off[b]:gnet.q_off[b] + d * d] = (w1.T @ w1).reshape(-1)
            S[r, gnet.n_off[b]:gnet.n_off[b] + n_out * n_out] = (w2 @ w2.T).reshape(-1)
    return S


# ---------------------------------------------------------------------- calling the kernels
_ready = set()
_lock = threading.Lock()
_pool = None
_noted = False


def _ensure(kernel, args):
    """Compile (or load from the cache) the kernel for these arguments, once per process and dtype.

    Prints one line to stderr before the first compilation that numba's cache cannot serve.
    """
    global _noted
    key = (kernel.__name__, str(args[-1].dtype))
    if key in _ready:
        return
    K = _kernels()
    with _lock:
        sig = K.signature_of(kernel, args)
        if not K.is_compiled(kernel, sig):
            if not _noted:
                print(_COMPILE_NOTE, file=sys.stderr, flush=True)
                _noted = True
        K.compile_for(kernel, sig)
        _ready.add(key)


def _slice(rec, a, b):
    """Runs a:b of a record whose per-run fields are arrays (scalar fields are shared)."""
    return type(rec)(*(f[a:b] if isinstance(f, np.ndarray) else f for f in rec))


def _run(kernel, first, sched, data, rec, state, threads_over_runs):
    """Run the kernel on all runs of ``state``.

    Serial kernels (moment, Gram, feature) are spread over threads by blocks of runs (they
    release the GIL; runs are independent, so the result does not depend on the split); the
    sample kernel is parallel itself and runs with one BLAS thread per task.
    """
    global _pool
    K = _kernels()
    args = (first, sched, data, rec, state)
    _ensure(kernel, args)
    R = state.shape[0]
    T = min(get_threads(), R) if threads_over_runs and R > 1 else 1    # (asking starts numba's pool)
    if T <= 1:
        if threads_over_runs:
            kernel(*args)
            return
        old = K.BLAS.single()
        try:
            kernel(*args)
        finally:
            K.BLAS.restore(old)
        return
    n_blocks = min(R, 4 * T)
    bounds = [(i * R) // n_blocks for i in range(n_blocks + 1)]
    with _lock:
        if _pool is None or _pool._max_workers < T:
            _pool = ThreadPoolExecutor(T, thread_name_prefix="linfusion")
    futs = [_pool.submit(kernel, first, _slice(sched, a, b), data, _slice(rec, a, b), state[a:b])
            for a, b in zip(bounds[:-1], bounds[1:])]
    for f in futs:
        f.result()


def _sched_subset(sched, idx):      # the Schedule of the runs idx (every array field is per run)
    return sched._replace(**{f: _c(v[idx], v.dtype) for f, v in sched._asdict().items() if isinstance(v, np.ndarray)})


@dataclass
class Records:
    """What the kernels recorded for R runs (rows r = runs; the first n_rec[r] entries are valid)."""

    epoch: np.ndarray      # (R, n_max) int64
    loss: np.ndarray       # (R, n_max)
    w_tot: np.ndarray      # (R, n_max, out_dim, D)
    eg: np.ndarray         # (R, n_max)
    n_rec: np.ndarray      # (R,) int64
    status: np.ndarray     # (R,) int64 kernel status codes (STATUS_NAMES)
    calls: int = 1         # kernel calls (1 + resumes after a full record buffer)


def _drive(kernel, first, sched, data, state, n_out, D, grad_dim, grad_dtype, threads_over_runs,
           record_cap=None):
    """Call the kernel until every run has stopped, growing the record buffers as runs go on."""
    K = _kernels()
    R = state.shape[0]
    n_max = sched.n_epochs // sched.record_every + 2
    entry = 8 * (4 + n_out * D)
    cap = record_cap or max(16, min(n_max, _RECORD_BYTES // (entry * R)))
    k = np.zeros(R, dtype=np.int64)
    limit = np.full(R, np.nan)
    status = np.full(R, -1, dtype=np.int64)
    parts = [[] for _ in range(R)]
    todo = np.arange(R)
    calls = 0
    while todo.size:
        sub_all = todo.size == R
        n = todo.size
        rec = K.Records(np.zeros((n, cap), dtype=np.int64), np.zeros((n, cap)), np.zeros((n, cap, n_out, D)),
                        np.zeros((n, cap)), np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64),
                        _c(k[todo], np.int64), _c(limit[todo], np.float64),
                        np.zeros((n, grad_dim), dtype=grad_dtype))
        st = state if sub_all else _c(state[todo], state.dtype)
        _run(kernel, first, sched if sub_all else _sched_subset(sched, todo), data, rec, st, threads_over_runs)
        calls += 1
        if not sub_all:
            state[todo] = st
        for i, r in enumerate(todo):
            m = int(rec.n_rec[i])
            parts[r].append((rec.epoch[i, :m], rec.loss[i, :m], rec.w_tot[i, :m], rec.eg[i, :m]))
        k[todo] = rec.k
        limit[todo] = rec.limit
        status[todo] = rec.status
        todo = todo[rec.status == _PAUSED]
        if todo.size:
            left = int(((sched.n_epochs - k[todo]) // sched.record_every).max()) + 2
            cap = max(16, min(2 * cap, left))
    counts = np.array([sum(p[0].shape[0] for p in parts[r]) for r in range(R)], dtype=np.int64)
    n_rec_max = int(counts.max()) if R else 0
    if calls == 1:                       # no run paused: the kernel's buffers are the records
        return Records(rec.epoch[:, :n_rec_max], rec.loss[:, :n_rec_max], rec.w_tot[:, :n_rec_max],
                       rec.eg[:, :n_rec_max], counts, status, calls), rec
    out = Records(np.zeros((R, n_rec_max), dtype=np.int64), np.zeros((R, n_rec_max)),
                  np.zeros((R, n_rec_max, n_out, D)), np.zeros((R, n_rec_max)), counts, status, calls)
    for r in range(R):
        m = counts[r]
        for j, arr in enumerate((out.epoch, out.loss, out.w_tot, out.eg)):
            arr[r, :m] = np.concatenate([p[j] for p in parts[r]]) if len(parts[r]) > 1 else parts[r][0][j]
    return out, rec


def fit(net, path, W, *, datas=None, moments=None, fits=None, lrs, wds, loss, epochs, record_every, tol,
        has_pop=None, sigma=None, w_star=None, blowup=np.inf, dtype=np.float64, record_cap=None, scales=None,
        ogm=None, drop=None, phases=None):
    """Train the R runs of ``W`` (R, P) on ``path`` and return their :class:`Records`.

    Parameters
    ----------
    net : FusionNet
    path : {'moment', 'gram', 'feature', 'sample'}
    W : ndarray of shape (R, P), float64
        Initial weights, overwritten with the final ones (left unchanged on the Gram path,
        which has no weights).
    datas : list of Dataset or Moments (one, or one per run)
    moments, fits : per data set Moments and (W_ls, L_min), optional (moment and Gram
        paths; computed from ``datas`` when not given).
    lrs, wds : float or (R,) floats
    loss : str
    epochs, record_every : int
    tol : float
    has_pop : (Rd,) bool; sigma (Rd, D, D), w_star (Rd, out, D), optional
        Population statistics for E_g.
    blowup : float
        A run is diverged when its loss exceeds blowup x max(its first loss, ½<|y|²>)
        (inf: only non-finite losses).
    dtype : float64 or float32
        Arithmetic of the sample path (the other paths always use float64).
    record_cap : int, optional
        First capacity of the record buffers (tests; default from an 8 MiB budget).
    scales : ndarray of shape (R, P), optional
        Each parameter's learning-rate factor (moment and sample paths).
    ogm : ndarray of shape (R,), optional
        OGM-GE α of each run (moment path; 0: off).
    drop, phases : optional; sampled dropout (sample path) and schedules (moment path), see :func:`_schedule`.
    """
    K = _kernels()
    R = W.shape[0]
    D, n_out = net.in_dim, net.out_dim
    n_data = len(datas) if datas is not None else len(moments)
    pop = _pop_record(has_pop, sigma, w_star, n_out, D, n_data)
    sched = _schedule(R, lrs, wds, n_data, epochs, record_every, tol, blowup, scales=scales, ogm=ogm, drop=drop,
                      phases=phases)
    if path in ("moment", "gram"):
        moments, fits = _moments(datas, moments, fits)
        data = _moment_data(net, moments, fits, pop)
        if path == "moment":
            state = W if W.flags.c_contiguous and W.flags.writeable and W.dtype == np.float64 else _c(W, np.float64)
            rec, _ = _drive(K.train_moment, _net_record(net, "mse", False), sched, data, state, n_out, D, 0,
                            np.float64, True, record_cap)
            if state is not W:
                W[...] = state
            return rec
        gnet, _ = gram_layout(net)
        rec, _ = _drive(K.train_gram, gnet, sched, data, gram_state(net, W), n_out, D, 0, np.float64, True,
                        record_cap)
        return rec
    if path == "feature":
        state = _c(W, np.float64)
        rec, _ = _drive(K.train_feature, _net_record(net, loss, False), sched, _feature_data(net, datas, pop),
                        state, n_out, D, 0, np.float64, True, record_cap)
        W[...] = state
        return rec
    dtype = np.dtype(dtype)
    net_rec = _net_record(net, loss, True)
    state = _c(W, dtype)
    rec, _ = _drive(K.train_sample, net_rec, sched, _sample_data(net, datas, dtype, pop, net_rec), state,
                    n_out, D, 0, dtype, False, record_cap)
    if state is not W:
        W[...] = state
    return rec


def loss_grad(net, path, w, *, moments=None, fit=None, data=None, loss="mse"):
    """Loss and gradient of one network at ``w`` (one exact evaluation, no update).

    The same kernel code as training (the kernels' ``grad_only`` schedule); ``fit`` is the
    least-squares fit (W_ls, L_min) of the moment path.
    """
    K = _kernels()
    D, n_out = net.in_dim, net.out_dim
    state = _c(np.array(w, dtype=np.float64).reshape(1, -1), np.float64)
    sched = _schedule(1, 1.0, 0.0, 1, 0, 1, 0.0, np.inf, grad_only=True)
    pop = _pop_record(None, None, None, n_out, D, 1)
    P = state.shape[1]
    if path == "moment":
        moments = moments if moments is not None else data.moments()
        fits = [fit] if fit is not None else None
        mo, fits = _moments(None, [moments], fits)
        kernel, first, kdata = K.train_moment, _net_record(net, "mse", False), _moment_data(net, mo, fits, pop)
        threads = True
    elif path == "feature":
        kernel, first, kdata = K.train_feature, _net_record(net, loss, False), _feature_data(net, [data], pop)
        threads = True
    elif path == "sample":
        first = _net_record(net, loss, True)
        kernel, kdata = K.train_sample, _sample_data(net, [data], np.float64, pop, first)
        threads = False
    else:
        raise ValueError(f"path == {path!r}, must be 'moment', 'feature' or 'sample' for a gradient.")
    _, rec = _drive(kernel, first, sched, kdata, state, n_out, D, P, np.float64, threads, 1)
    return float(rec.loss[0, 0]), rec.grad[0].copy()
