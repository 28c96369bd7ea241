"""Compiled full-batch gradient descent for the fusion-network family.

The only module that imports numba. Kernels do no validation, no I/O, no random draws and
no allocation inside the epoch loop; :mod:`linfusion._engine` prepares their arguments
(writable, C-contiguous arrays of one dtype, plain Python scalars) and reads the records.

Graph tables
------------
A network is a chain of *nodes* in topological order, fed by *edges*:

- ``nodes[j, N_COL]``: offset (in units) of the node's block in its buffer (the input
  buffer for input nodes, the buffer of computed units otherwise); ``N_UNITS``; ``N_BIAS``
  the offset of its bias in the flat weights, or -1; ``N_KIND`` one of ``KIND_INPUT``
  (filled by the caller), ``KIND_HIDDEN`` (leaky ReLU applied), ``KIND_OUTPUT``.
- ``edges[e, E_OFF]``: offset of the weight block W (``E_ROWS`` x ``E_COLS``, row-major)
  that maps node ``E_SRC`` into node ``E_DST``; ``E_BLAS`` 1 if the sample path computes
  this block's products with BLAS, 0 for the fused loops (the dispatch rule is
  :func:`linfusion._engine.blas_edges`).

Kernels (one compiled specialisation per dtype; R runs per call, each with its own data set
``sched.data_of[r]``, weights W[r] at epoch ``rec.k[r]``):

- ``train_moment(net: Net, sched: Schedule, data: MomentData, rec: Records, W (R, P) f64)``:
  linear nets, squared loss. With D > out the out rows of the identity are sent backward
  (the end-to-end map W_tot appears at the input nodes), then the output error
  G = W_tot Σxx − Σyx (out x D) is sent forward; with D <= out the D basis vectors are sent
  forward and Gᵀ backward. Either way the weight gradient is a sum of outer products over
  those rows: a cost independent of n and proportional to min(D, out) x parameters.
- ``train_gram(gnet: GramNet, sched, data: MomentData, rec, S (R, n_state) f64)``: two-layer
  linear nets through the exact map of (W_tot, W¹ᵀW¹, W²W²ᵀ) per block (theory.md §6.10).
- ``train_feature(net, sched, data: FeatureData, rec, W (R, P) f64)``: late-fusion
  leaky-ReLU nets without bias whose modalities are scalars: the rows are the 2K inputs ±1
  of one modality each, whose output error is the error moment of the feature relu(±x_k)
  (theory.md §6.11).
- ``train_sample(net, sched, data: SampleData, rec, W (R, P) f64 or f32)``: everything
  else; every epoch the (run, sample group) tasks run in parallel (:func:`_sample_tasks`,
  the engine's only parallel loop).

Serial kernels release the GIL; the engine spreads their runs over threads.

Layouts. The moment, feature and W_tot passes are *sample-major* (:func:`forward`,
:func:`backward`): a buffer of m rows (basis vectors, error rows, the 2K inputs) holds node j
as the contiguous (m, units) block at element ``m * nodes[j, N_COL]``, each row's units
contiguous. The sample path is *feature-major* (:func:`forward_fm`, :func:`backward_fm`):
a chunk of m samples holds node j as the (units, m) block at the same offset, so narrow
blocks run fused loops over samples and wide blocks are single BLAS products Z = W S.

Every loop's order depends only on shapes, and sums over samples run in a fixed order
(fixed chunks inside fixed sample groups, the groups summed in group order), so a run gives
the same bits whether it is trained alone, in parallel groups, on any number of threads, or
inside a batch. BLAS calls run single-threaded (the engine sets it), one per task.

Numba's cache index stores the argument types, namedtuple classes included: renaming or
removing a record class below makes an old cache index unreadable (numba then fails while
unpickling it); clear ``__pycache__`` after such a change.
"""
import os

# The sample path opens a parallel region every epoch. OpenMP's default busy-waiting makes
# it many times slower than one thread when other processes use the cores (measured:
# 21 ms against 3.3 ms per epoch); passive waiting costs little on an idle machine. Set
# before numba loads its OpenMP pool; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import ctypes  # noqa: E402
from collections import namedtuple  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

# ---------------------------------------------------------------------- table columns, codes
N_COL, N_UNITS, N_BIAS, N_KIND = 0, 1, 2, 3
KIND_INPUT, KIND_HIDDEN, KIND_OUTPUT = 0, 1, 2
E_OFF, E_ROWS, E_COLS, E_SRC, E_DST, E_BLAS = 0, 1, 2, 3, 4, 5

LOSS_MSE, LOSS_EXP, LOSS_LOGISTIC = 0, 1, 2
STATUS_COMPLETED, STATUS_CONVERGED, STATUS_DIVERGED, STATUS_PAUSED = 0, 1, 2, 3
_AXPY_MIN = 8   # below this many columns, a block is read transposed (see fill_transposes)

# ---------------------------------------------------------------------- argument records
#: The network: node and edge tables (int64), leaky-ReLU slope, biases on/off, loss code.
Net = namedtuple("Net", "nodes edges n_in n_comp slope bias loss")
#: What to run. lr, wd : (R,) float64; data_of : (R,) int64, each run's data set; n_epochs,
#: record_every : int; tol, blowup : float; grad_only : bool (evaluate the loss and gradient
#: at the current weights into Records.grad, no update).
Schedule = namedtuple("Schedule", "lr wd data_of n_epochs record_every tol blowup grad_only")
#: Records of R runs with room for ``cap`` entries each. epoch (R, cap) int64, loss (R, cap),
#: w_tot (R, cap, out, D), eg (R, cap), n_rec (R,) int64 (entries written), status (R,) int64,
#: k (R,) int64 (in: the epoch the weights are at; out: the epoch reached), limit (R,)
#: (blow-up threshold; NaN: set at this call's first evaluation), grad (R, P) (grad_only).
Records = namedtuple("Records", "epoch loss w_tot eg n_rec status k limit grad")
#: Moment-path data (Rd data sets): sxx (Rd, D, D); syx, w_ls, g0 = W_ls Σxx − Σyx
#: (Rd, out, D); loss_min, half_syy (Rd,); live (n_nodes, rows) bool: which rows of each
#: node can be nonzero.
#: Every data record ends with the population statistics for E_g: has_pop (Rd,) bool,
#: sigma (Rd, D, D), w_star (Rd, out, D) (flat: numba's parallel loops take no nested records).
MomentData = namedtuple("MomentData", "sxx syx w_ls g0 loss_min half_syy live has_pop sigma w_star")
#: Sample-path data: x (Rd, n*D), y (Rd, n*out) chunk-blocked (chunk c = samples
#: chunk_lo[c]:chunk_lo[c+1] starts at element D*chunk_lo[c] of x, node blocks of m rows
#: inside it); group g = chunks group_lo[g]:group_lo[g+1]; inv_n = 1/n; half_syy (Rd,).
SampleData = namedtuple("SampleData", "x y chunk_lo group_lo inv_n half_syy has_pop sigma w_star")
#: Feature-moment data: x (2K*K,) the 2K inputs ±e_k as one chunk; F (Rd, 2K, 2K),
#: q, c_ls (Rd, out, 2K), loss_min, half_syy (Rd,); live (n_nodes, 2K) bool.
FeatureData = namedtuple("FeatureData", "x F q c_ls loss_min half_syy live has_pop sigma w_star")
#: Gram-state layout: col (K+1,) input columns of each block (one block for early fusion),
#: q_off, n_off (K,) offsets of Q_k (d_k x d_k) and N_k (out x out) in a run's state vector
#: (W_tot (out x D) comes first); out.
GramNet = namedtuple("GramNet", "col q_off n_off out")


def max_threads():
    """Upper bound on numba thread ids, for per-thread scratch buffers."""
    return numba.config.NUMBA_NUM_THREADS


def get_threads():
    """Threads the parallel kernels use now."""
    return numba.get_num_threads()


def set_threads(n):
    """Let the parallel kernels use n threads (clipped to 1 .. max_threads())."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


# ---------------------------------------------------------------------- compilation, BLAS threads
def signature_of(kernel, args):
    """The numba signature a call of ``kernel`` with ``args`` dispatches to."""
    return tuple(numba.typeof(a) for a in args)


def is_compiled(kernel, sig):
    """True when ``sig`` is compiled in this process or stored in numba's cache."""
    if sig in kernel.overloads:
        return True
    try:      # numba's own cache index (the layout of numba 0.5x-0.6x); unknown layouts: assume cached
        cache = kernel._cache
        index = cache._cache_file._load_index()
        return cache._index_key(sig, kernel.targetctx.codegen()) in index
    except Exception:                       # pragma: no cover - depends on numba internals
        return True


def compile_for(kernel, sig):
    """Compile (or load from the cache) ``kernel`` for ``sig``."""
    kernel.compile(sig)


class _Blas:
    """Thread count of the BLAS that numba's np.dot calls (scipy's, through cython_blas).

    Found on first use (importing scipy.linalg costs 0.2 s; only the sample path needs it).
    """

    def __init__(self):
        self.get = self.set = None
        self.found = False

    def _find(self):
        self.found = True
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba uses)
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
            for p in sorted(paths):
                lib = ctypes.CDLL(p)
                for prefix in ("scipy_openblas", "openblas"):
                    if hasattr(lib, prefix + "_set_num_threads") and hasattr(lib, prefix + "_get_num_threads") \
                            and "numpy" not in p:
                        self.set = getattr(lib, prefix + "_set_num_threads")
                        self.get = getattr(lib, prefix + "_get_num_threads")
                        return
        except Exception:                    # pragma: no cover - platform without /proc or OpenBLAS
            pass

    def single(self):
        """Set one BLAS thread; returns the previous count (or None if unknown)."""
        if not self.found:
            self._find()
        if self.set is None:
            return None
        old = int(self.get())
        if old != 1:
            self.set(1)
        return old

    def restore(self, old):
        if old is not None and old != 1:
            self.set(old)


BLAS = _Blas()

# Reductions may be reassociated so that they vectorise (2-3x faster). This flag alone keeps
# NaN and infinity semantics (unlike the full fast-math set); the summation order it picks is
# fixed by the compiled code, so results stay reproducible run to run and batch to batch.
_REDUCE = {"reassoc"}

# Compile time is what a new user waits for. Helpers called only from compiled code get no
# Python wrapper, and one-line helpers are inlined into their callers before typing (each
# separately compiled function costs a pipeline, a wrapper and a code-generation pass).
# Numba compiles a separate copy of a callee for every constant bool or int argument
# (Literal types): the kernels pass the drivers' flags as runtime values (``yes``/``no``).
_inner = njit(cache=True, no_cpython_wrapper=True)
_tiny = njit(cache=True, inline="always")


# ---------------------------------------------------------------------- vector primitives
@njit(cache=True, no_cpython_wrapper=True, fastmath=_REDUCE)
def _sum(a):
    """Sum of a 1-D view, in its dtype."""
    s = a.dtype.type(0)
    for i in range(a.shape[0]):
        s += a[i]
    return s


@njit(cache=True, no_cpython_wrapper=True, fastmath=_REDUCE)
def _dot(a, b):
    """a · b for 1-D views of equal length, in their dtype."""
    s = a.dtype.type(0)
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@_tiny
def _axpy(a, x, y):
    """y += a x for 1-D views of equal length (views let the loop vectorise)."""
    av = y.dtype.type(a)
    for i in range(y.shape[0]):
        y[i] += av * x[i]


@_tiny
def _fill(y, v):
    """y[:] = v (a loop: numba's slice assignment compiles seconds of error formatting)."""
    vv = y.dtype.type(v)
    for i in range(y.shape[0]):
        y[i] = vv


@_tiny
def _copy(x, y):
    """y[:] = x for 1-D views of equal length."""
    for i in range(y.shape[0]):
        y[i] = x[i]


@_tiny
def _block(buf, m, col, units):
    """The (m, units) block of a sample-major buffer that starts at unit column ``col``."""
    return buf[m * col:m * (col + units)].reshape(m, units)


@_tiny
def _is_live(live, j, s):
    """Row s of node j can be nonzero (always, when ``live`` has no columns)."""
    return live.shape[1] == 0 or live[j, s]


@_tiny
def _node_fm(net, j, xin, A, m):
    """Feature-major block of node j: (units, m), in the input buffer or in A."""
    c0, units = net.nodes[j, N_COL], net.nodes[j, N_UNITS]
    if net.nodes[j, N_KIND] == KIND_INPUT:
        return xin[m * c0:m * (c0 + units)].reshape(units, m)
    return A[m * c0:m * (c0 + units)].reshape(units, m)


@_tiny
def _node_row(net, j, xin, A, m, s):
    """Row s of node j's block (in the input buffer or in A), a contiguous 1-D view."""
    units = net.nodes[j, N_UNITS]
    a = m * net.nodes[j, N_COL] + s * units
    if net.nodes[j, N_KIND] == KIND_INPUT:
        return xin[a:a + units]
    return A[a:a + units]


@_inner
def fill_transposes(w, wt, edges):
    """wt[block] = transpose of w[block] (cols x rows) for every block with few columns.

    Only blocks with cols < _AXPY_MIN are read transposed (the forward pass's axpy form and
    the backward pass's dot form); wider blocks are read row by row.
    """
    for e in range(edges.shape[0]):
        off, rows, cols = edges[e, E_OFF], edges[e, E_ROWS], edges[e, E_COLS]
        if cols < _AXPY_MIN:
            for r in range(rows):
                for c in range(cols):
                    wt[off + c * rows + r] = w[off + r * cols + c]


# ---------------------------------------------------------------------- forward
@_inner
def forward(w, wt, net, xin, A, m, live, slope, bias):
    """Sample-major forward pass over m rows: Z = Σ_e S_e W_eᵀ (+ b), then φ, into A.

    For few rows (basis vectors, output-error rows, the feature path's 2K inputs): each
    row's units are contiguous. The sample path uses :func:`forward_fm`.

    Parameters
    ----------
    w, wt : (P,) weights and :func:`fill_transposes` of them.
    xin : flat input buffer (m rows of every input node's block).
    A : flat buffer of computed units, at least m * net.n_comp long.
    m : rows.
    live : (n_nodes, >= m) bool: rows that can be nonzero (the others are set to 0); with no
        columns, every row.
    slope : leaky-ReLU slope applied to hidden nodes (1: linear). bias : add biases.
    """
    nodes, edges = net.nodes, net.edges
    sl = w.dtype.type(slope)
    for j in range(nodes.shape[0]):
        kind = nodes[j, N_KIND]
        if kind == KIND_INPUT:
            continue
        units = nodes[j, N_UNITS]
        zb = m * nodes[j, N_COL]
        boff = nodes[j, N_BIAS]
        has_b = bias and boff >= 0
        act = kind == KIND_HIDDEN and slope != 1.0
        for s in range(m):                                   # one row at a time, in cache
            z = A[zb + s * units:zb + (s + 1) * units]
            if not _is_live(live, j, s):
                _fill(z, 0.0)
                continue
            _fill(z, 0.0)
            if has_b:
                _axpy(1.0, w[boff:boff + units], z)
            for e in range(edges.shape[0]):
                if edges[e, E_DST] != j:
                    continue
                src = edges[e, E_SRC]
                if not _is_live(live, src, s):
                    continue
                off, rows, cols = edges[e, E_OFF], edges[e, E_ROWS], edges[e, E_COLS]
                a_src = _node_row(net, src, xin, A, m, s)
                if cols < _AXPY_MIN:                         # z += Σ_c a[c] W[:, c]
                    for c in range(cols):
                        if a_src[c] != 0.0:                  # exact: skips adding 0·W
                            _axpy(a_src[c], wt[off + c * rows:off + (c + 1) * rows], z)
                else:                                        # z[r] += W[r, :] · a
                    for r in range(rows):
                        z[r] += _dot(a_src, w[off + r * cols:off + (r + 1) * cols])
            if act:
                for r in range(units):
                    if z[r] < 0.0:
                        z[r] *= sl


# ---------------------------------------------------------------------- backward
@_inner
def backward(w, wt, net, xin, A, Dl, Din, m, live, target, coef, decay, propagate, slope):
    """Sample-major backward pass over m rows: send errors down and/or accumulate the gradient.

    Dl holds dL/dZ of every computed node (same layout as A); the output node's block is
    filled by the caller and never written here.

    Parameters
    ----------
    Din : flat buffer for the errors at the input nodes (their blocks of m rows), or empty.
    live : as in :func:`forward`.
    target : (P,) buffer that receives ``coef`` x the gradient, or empty (send errors only).
        With target = w (coef = −lr, decay = lr·λ) the update is fused into the pass: each
        block is first multiplied by (1 − decay) and updated after its error was sent down
        with its old weights.
    propagate : send errors down (False: Dl is already complete for every node).
    slope : φ' of hidden nodes (1 for linear passes; from the activations in A).
    """
    nodes, edges = net.nodes, net.edges
    dt = w.dtype.type
    sl = dt(slope)
    cf = dt(coef)
    keep = dt(1.0) - dt(decay)
    grad = target.shape[0] > 0
    for j in range(nodes.shape[0] - 1, -1, -1):
        if nodes[j, N_KIND] == KIND_INPUT:
            continue
        units = nodes[j, N_UNITS]
        jb = m * nodes[j, N_COL]
        boff = nodes[j, N_BIAS]
        if grad and net.bias and boff >= 0:
            gb = target[boff:boff + units]
            if decay != 0.0:
                for i in range(units):
                    gb[i] *= keep
            for s in range(m):
                if _is_live(live, j, s):
                    _axpy(cf, Dl[jb + s * units:jb + (s + 1) * units], gb)
        for e in range(edges.shape[0]):
            if edges[e, E_DST] != j:
                continue
            off, rows, cols, src = edges[e, E_OFF], edges[e, E_ROWS], edges[e, E_COLS], edges[e, E_SRC]
            to_input = nodes[src, N_KIND] == KIND_INPUT
            down = propagate and (not to_input or Din.shape[0] > 0)
            act = down and nodes[src, N_KIND] == KIND_HIDDEN and slope != 1.0
            sb = m * nodes[src, N_COL]
            Db = Din if to_input else Dl                     # where the source's errors go
            if down:                                         # Ds = (Dj W) ⊙ φ'(S), old weights
                for s in range(m):
                    d = Db[sb + s * cols:sb + (s + 1) * cols]
                    if not _is_live(live, src, s):
                        _fill(d, 0.0)
                        continue
                    dj = Dl[jb + s * rows:jb + (s + 1) * rows]
                    if cols < _AXPY_MIN:
                        for c in range(cols):
                            d[c] = _dot(dj, wt[off + c * rows:off + (c + 1) * rows])
                    else:
                        _fill(d, 0.0)
                        for r in range(rows):
                            if dj[r] != 0.0:
                                _axpy(dj[r], w[off + r * cols:off + (r + 1) * cols], d)
                    if act:
                        a = A[sb + s * cols:sb + (s + 1) * cols]
                        for c in range(cols):
                            if not a[c] > 0.0:
                                d[c] *= sl
            if not grad:
                continue
            if decay != 0.0:
                for i in range(off, off + rows * cols):
                    target[i] *= keep
            for s in range(m):                               # target[block] += coef Djᵀ S
                if not _is_live(live, src, s):
                    continue
                dj = Dl[jb + s * rows:jb + (s + 1) * rows]
                a = _node_row(net, src, xin, A, m, s)
                if cols == 1:                                # one column is contiguous
                    if a[0] != 0.0:
                        _axpy(cf * a[0], dj, target[off:off + rows])
                elif cols < _AXPY_MIN:
                    for c in range(cols):
                        ac = cf * a[c]
                        if ac != 0.0:
                            for r in range(rows):
                                target[off + r * cols + c] += ac * dj[r]
                else:
                    for r in range(rows):
                        if dj[r] != 0.0:
                            _axpy(cf * dj[r], a, target[off + r * cols:off + (r + 1) * cols])


@_inner
def end_to_end(w, wt, net, Dl, Din, none, out_wtot):
    """out_wtot (out, D) = W_tot: the identity rows sent backward through the linear net.

    Products of weights along each path, ignoring φ and biases (bookkeeping for ReLU nets).
    Dl, Din : scratch of at least out * n_comp and out * n_in elements. none : (n_nodes, 0)
    bool and (0,) weights-dtype arrays' stand-ins: a table with no columns.
    """
    n_out = out_wtot.shape[0]
    last = net.nodes.shape[0] - 1
    Do = _block(Dl, n_out, net.nodes[last, N_COL], n_out)
    for i in range(n_out):
        for o in range(n_out):
            Do[i, o] = 1.0 if i == o else 0.0
    yes = n_out > 0                             # a runtime True (see _inner)
    backward(w, wt, net, Din, Dl, Dl, Din, n_out, none, Dl[:0], 0.0, 0.0, yes, 1.0)
    for j in range(net.nodes.shape[0]):
        if net.nodes[j, N_KIND] == KIND_INPUT:
            c0, units = net.nodes[j, N_COL], net.nodes[j, N_UNITS]
            B = _block(Din, n_out, c0, units)
            for o in range(n_out):
                for c in range(units):
                    out_wtot[o, c0 + c] = B[o, c]


# ---------------------------------------------------------------------- losses, records, stopping
@_inner
def _output_error(loss_kind, yhat, y, inv_n):
    """Per-sample, per-output loss and its derivative dℓ/dŷ, both scaled by 1/n (float64)."""
    if loss_kind == LOSS_MSE:
        d = yhat - y
        return 0.5 * d * d * inv_n, d * inv_n
    z = -y * yhat
    if loss_kind == LOSS_EXP:
        e = np.exp(z)
        return e * inv_n, -y * e * inv_n
    if z > 0.0:
        ell = z + np.log1p(np.exp(-z))
        sig = 1.0 / (1.0 + np.exp(-z))
    else:
        ez = np.exp(z)
        ell = np.log1p(ez)
        sig = ez / (1.0 + ez)
    return ell * inv_n, -y * sig * inv_n


@njit(cache=True, no_cpython_wrapper=True, fastmath=_REDUCE)
def _moment_loss(wtot, sxx, g0, w_ls, loss_min, G, diff):
    """Loss of W_tot from the moments; G (out, D) = W_tot Σxx − Σyx, the gradient in W_tot.

    Loss = L_min + ½ tr((W_tot − W_ls) Σxx (W_tot − W_ls)ᵀ), with W_ls the least-squares
    solution and L_min its loss: the same quadratic as ½<y²> − tr(W_tot Σyxᵀ) +
    ½ tr(W_tot Σxx W_totᵀ), without its cancellation near the minimum (where that form
    rounds to ±1e-16 and can come out negative). One product serves both:
    G = (W_tot − W_ls) Σxx + g0 with g0 = W_ls Σxx − Σyx (zero up to rounding).
    diff : (D,) scratch.
    """
    n_out, D = wtot.shape
    acc = 0.0
    for o in range(n_out):
        for d in range(D):
            diff[d] = wtot[o, d] - w_ls[o, d]
        for s in range(D):
            q = 0.0
            for d in range(D):                   # Σxx is symmetric: rows, not columns
                q += sxx[s, d] * diff[d]
            G[o, s] = q + g0[o, s]
            acc += diff[s] * q
    return loss_min + 0.5 * acc


@njit(cache=True, no_cpython_wrapper=True, fastmath=_REDUCE)
def _gen_error(wtot, sigma, w_star):
    """½ Σ_o (W_tot − W*)[o] Σ (W_tot − W*)[o]ᵀ."""
    D = sigma.shape[0]
    total = 0.0
    for o in range(wtot.shape[0]):
        for a in range(D):
            da = wtot[o, a] - w_star[o, a]
            row = 0.0
            for b in range(D):
                row += sigma[a, b] * (wtot[o, b] - w_star[o, b])
            total += da * row
    return 0.5 * total


@_tiny
def _first_due(sched, k):
    """The first epoch >= k that is a multiple of record_every (records are due there)."""
    re = sched.record_every
    return ((k + re - 1) // re) * re


@_tiny
def _decide(sched, k, loss, lim, due, full):
    """(record?, status or -1 to go on) at epoch k with this loss.

    lim : the run's blow-up threshold (:func:`_limit`). due : k is a multiple of
    record_every (kept by the caller as a countdown: an integer modulo per epoch costs more
    than the Gram map's whole epoch). full : the run's record buffer is full; a due record
    then pauses the run instead (the caller resumes from these weights).

    Per-epoch helpers take scalars: reading an array field of a record inside the epoch
    loop costs an atomic reference-count pair per access, more than a toy epoch.
    """
    if not np.isfinite(loss) or loss > lim:
        st = STATUS_DIVERGED
    elif sched.tol > 0.0 and loss < sched.tol:   # tol 0: never (a loss at rounding level may be < 0)
        st = STATUS_CONVERGED
    elif k >= sched.n_epochs or sched.grad_only:
        st = STATUS_COMPLETED
    else:
        st = -1
    record = st >= 0 or due
    if record and full:
        return False, STATUS_PAUSED
    return record, st


@_tiny
def _limit(sched, loss, half_syy):
    """Blow-up threshold, fixed at a run's first evaluation: blowup x max(loss, ½<|y|²>)."""
    if sched.blowup == np.inf:
        return np.inf
    return sched.blowup * max(loss, half_syy)


@_tiny
def _run_records(rec, r):
    """Run r's record rows (epoch, loss, w_tot, eg), fetched once per run."""
    return rec.epoch[r], rec.loss[r], rec.w_tot[r], rec.eg[r]


@_tiny
def _record(rows, i, k, loss, wtot, has_pop, sigma, w_star):
    """Write entry i of a run's records: epoch k, its loss, W_tot and (when has_pop) E_g."""
    epoch, losses, wtots, egs = rows
    epoch[i] = k
    losses[i] = loss
    dst = wtots[i]
    for o in range(wtot.shape[0]):
        for d in range(wtot.shape[1]):
            dst[o, d] = wtot[o, d]
    egs[i] = _gen_error(wtot, sigma, w_star) if has_pop else np.nan


# ---------------------------------------------------------------------- moment path
@njit(cache=True, nogil=True)
def train_moment(net, sched, data, rec, W):
    """Train R linear nets on the moment path, run after run.

    Parameters
    ----------
    net : Net (slope 1, no bias).
    sched : Schedule.
    data : MomentData of Rd data sets (run r uses data set sched.data_of[r]); ``live`` is
        the support table (n_nodes, D) when D <= out (basis rows), all True (n_nodes, out)
        otherwise.
    rec : Records (R, cap).
    W : (R, P) float64, the weights at epoch rec.k[r]; overwritten with the last ones.
    """
    R, P = W.shape
    n_out, D = data.syx.shape[1], data.syx.shape[2]
    by_error = D > n_out                       # propagate the out error rows, not D basis rows
    m = n_out if by_error else D
    nodes, edges, live = net.nodes, net.edges, data.live
    last = nodes.shape[0] - 1
    oc = nodes[last, N_COL]
    wt = np.empty(P)
    A = np.empty(m * net.n_comp)
    Dl = np.zeros(m * net.n_comp)
    xin = np.zeros(m * D)
    Din = np.empty(m * D)
    wtot = np.empty((n_out, D))
    G = np.empty((n_out, D))
    diff = np.empty(D)
    none = np.empty(0)                         # no input errors / no gradient
    yes, no = R > 0, R < 0                      # runtime booleans (see _inner)
    cap = rec.loss.shape[1]
    if by_error:                                # backward seed: the identity (out x out)
        for i in range(m):
            for o in range(n_out):
                Dl[m * oc + i * n_out + o] = 1.0 if i == o else 0.0
    else:                                       # forward seed: the identity (D x D)
        for j in range(last + 1):
            if nodes[j, N_KIND] == KIND_INPUT:
                c0, units = nodes[j, N_COL], nodes[j, N_UNITS]
                for i in range(m):
                    for c in range(units):
                        xin[m * c0 + i * units + c] = 1.0 if i == c0 + c else 0.0
    for r in range(R):
        q = sched.data_of[r]
        w = W[r]
        target = rec.grad[r] if sched.grad_only else w
        coef = 1.0 if sched.grad_only else -sched.lr[r]
        decay = 0.0 if sched.grad_only else sched.lr[r] * sched.wd[r]
        sxx, g0, w_ls, loss_min, half = data.sxx[q], data.g0[q], data.w_ls[q], data.loss_min[q], data.half_syy[q]
        has_pop, sigma, w_star = data.has_pop[q], data.sigma[q], data.w_star[q]
        rows = _run_records(rec, r)
        nr, lim, k = rec.n_rec[r], rec.limit[r], rec.k[r]
        nxt = _first_due(sched, k)
        while True:
            fill_transposes(w, wt, edges)
            if by_error:                        # W_tot at the input nodes
                backward(w, wt, net, xin, A, Dl, Din, m, live, none, 0.0, 0.0, yes, 1.0)
                for j in range(last + 1):
                    if nodes[j, N_KIND] == KIND_INPUT:
                        c0, units = nodes[j, N_COL], nodes[j, N_UNITS]
                        for o in range(n_out):
                            for c in range(units):
                                wtot[o, c0 + c] = Din[m * c0 + o * units + c]
            else:                               # W_tot at the output node
                forward(w, wt, net, xin, A, m, live, 1.0, no)
                for o in range(n_out):
                    for d in range(D):
                        wtot[o, d] = A[m * oc + d * n_out + o]
            loss = _moment_loss(wtot, sxx, g0, w_ls, loss_min, G, diff)
            if np.isnan(lim):
                lim = _limit(sched, loss, half)
            due = k == nxt
            if due:
                nxt += sched.record_every
            record, st = _decide(sched, k, loss, lim, due, nr == cap)
            if record:
                _record(rows, nr, k, loss, wtot, has_pop, sigma, w_star)
                nr += 1
            if st >= 0 and not sched.grad_only:
                break
            if by_error:                        # send G forward, then the outer products
                for j in range(last + 1):
                    if nodes[j, N_KIND] == KIND_INPUT:
                        c0, units = nodes[j, N_COL], nodes[j, N_UNITS]
                        for o in range(n_out):
                            for c in range(units):
                                xin[m * c0 + o * units + c] = G[o, c0 + c]
                forward(w, wt, net, xin, A, m, live, 1.0, no)
                backward(w, wt, net, xin, A, Dl, none, m, live, target, coef, decay, no, 1.0)
            else:                               # send Gᵀ backward with the update fused in
                for i in range(m):
                    for o in range(n_out):
                        Dl[m * oc + i * n_out + o] = G[o, i]
                backward(w, wt, net, xin, A, Dl, none, m, live, target, coef, decay, yes, 1.0)
            if sched.grad_only:
                break
            k += 1
        rec.status[r], rec.n_rec[r], rec.limit[r], rec.k[r] = st, nr, lim, k


# ---------------------------------------------------------------------- Gram-state path
@njit(cache=True, nogil=True)
def train_gram(gnet, sched, data, rec, S):
    """Train R two-layer linear nets through their exact Gram-state map, run after run.

    Per block b (a modality for late fusion, all inputs for early fusion), with
    g = Σyx − W_tot Σxx, c = 1 − η λ, one GD step maps (W_b = W_tot[:, b], Q_b, N_b) to

        W_b ← c² W_b + c η (N_b g_b + g_b Q_b) + η² g_b W_bᵀ g_b
        Q_b ← c² Q_b + c η (g_bᵀ W_b + W_bᵀ g_b) + η² g_bᵀ N_b g_b
        N_b ← c² N_b + c η (W_b g_bᵀ + g_b W_bᵀ) + η² g_b Q_b g_bᵀ

    exactly (theory.md §6.10), for any width and number of samples.

    Parameters
    ----------
    gnet : GramNet.
    sched : Schedule (grad_only unsupported: there are no weights).
    data : MomentData (``live`` unused).
    rec : Records.
    S : (R, n_state) float64 states at epoch rec.k[r]: W_tot (out x D), then Q_b, N_b.
    """
    R = S.shape[0]
    n_out, D = data.syx.shape[1], data.syx.shape[2]
    col, q_off, n_off = gnet.col, gnet.q_off, gnet.n_off
    K = col.shape[0] - 1
    cap = rec.loss.shape[1]
    dmax = 0
    for b in range(K):
        dmax = max(dmax, col[b + 1] - col[b])
    G = np.empty((n_out, D))
    diff = np.empty(D)
    wtot = np.empty((n_out, D))
    Wn = np.empty((n_out, D))
    Qn = np.empty(dmax * dmax)
    Nn = np.empty(n_out * n_out)
    M = np.empty((n_out, n_out))              # g_b W_bᵀ
    T1 = np.empty((n_out, dmax))              # N_b g_b
    T2 = np.empty((n_out, dmax))              # g_b Q_b
    scalar = n_out == 1 and dmax == 1 and K == D
    for r in range(R):
        q = sched.data_of[r]
        st = S[r]                              # flat state: W_tot, Q_b (d x d), N_b (out x out)
        for o in range(n_out):
            for i in range(D):
                wtot[o, i] = st[o * D + i]
        eta = sched.lr[r]
        c = 1.0 - eta * sched.wd[r]
        c2, ce, e2 = c * c, c * eta, eta * eta
        sxx, g0, w_ls, loss_min, half = data.sxx[q], data.g0[q], data.w_ls[q], data.loss_min[q], data.half_syy[q]
        has_pop, sigma, w_star = data.has_pop[q], data.sigma[q], data.w_star[q]
        rows = _run_records(rec, r)
        nr, lim, k = rec.n_rec[r], rec.limit[r], rec.k[r]
        nxt = _first_due(sched, k)
        while True:
            loss = _moment_loss(wtot, sxx, g0, w_ls, loss_min, G, diff)
            if np.isnan(lim):
                lim = _limit(sched, loss, half)
            due = k == nxt
            if due:
                nxt += sched.record_every
            record, status = _decide(sched, k, loss, lim, due, nr == cap)
            if record:
                _record(rows, nr, k, loss, wtot, has_pop, sigma, w_star)
                nr += 1
            if status >= 0:
                break
            if scalar:                           # the paper's toy: every block 1 x 1
                for b in range(K):
                    qo, no = q_off[b], n_off[b]
                    g, wb, qb, nb = -G[0, b], wtot[0, b], st[qo], st[no]
                    gw = g * wb
                    Wn[0, b] = c2 * wb + ce * (nb * g + g * qb) + e2 * gw * g
                    st[qo] = c2 * qb + ce * (gw + gw) + e2 * g * nb * g
                    st[no] = c2 * nb + ce * (gw + gw) + e2 * g * qb * g
                for b in range(K):
                    wtot[0, b] = Wn[0, b]
                k += 1
                continue
            for b in range(K):
                c0 = col[b]
                d = col[b + 1] - c0
                qo, no = q_off[b], n_off[b]
                for o in range(n_out):           # g = −G; M = g Wᵀ, T1 = N g, T2 = g Q
                    for p in range(n_out):
                        acc = 0.0
                        for i in range(d):
                            acc -= G[o, c0 + i] * wtot[p, c0 + i]
                        M[o, p] = acc
                    for i in range(d):
                        t1 = 0.0
                        for p in range(n_out):
                            t1 -= st[no + o * n_out + p] * G[p, c0 + i]
                        T1[o, i] = t1
                        t2 = 0.0
                        for a in range(d):
                            t2 -= G[o, c0 + a] * st[qo + a * d + i]
                        T2[o, i] = t2
                for o in range(n_out):           # W_b ← c² W_b + cη (T1 + T2) + η² M g
                    for i in range(d):
                        mg = 0.0
                        for p in range(n_out):
                            mg -= M[o, p] * G[p, c0 + i]
                        Wn[o, c0 + i] = c2 * wtot[o, c0 + i] + ce * (T1[o, i] + T2[o, i]) + e2 * mg
                for a in range(d):               # Q_b ← c² Q + cη (gᵀW + Wᵀg) + η² gᵀ T1
                    for i in range(d):
                        gw = 0.0
                        gt = 0.0
                        for o in range(n_out):
                            gw -= G[o, c0 + a] * wtot[o, c0 + i] + wtot[o, c0 + a] * G[o, c0 + i]
                            gt -= G[o, c0 + a] * T1[o, i]
                        Qn[a * d + i] = c2 * st[qo + a * d + i] + ce * gw + e2 * gt
                for o in range(n_out):           # N_b ← c² N + cη (M + Mᵀ) + η² T2 gᵀ
                    for p in range(n_out):
                        tg = 0.0
                        for i in range(d):
                            tg -= T2[o, i] * G[p, c0 + i]
                        Nn[o * n_out + p] = c2 * st[no + o * n_out + p] + ce * (M[o, p] + M[p, o]) + e2 * tg
                for i in range(d * d):
                    st[qo + i] = Qn[i]
                for i in range(n_out * n_out):
                    st[no + i] = Nn[i]
            for o in range(n_out):
                for i in range(D):
                    wtot[o, i] = Wn[o, i]
            k += 1
        for o in range(n_out):
            for i in range(D):
                st[o * D + i] = wtot[o, i]
        rec.status[r], rec.n_rec[r], rec.limit[r], rec.k[r] = status, nr, lim, k


# ---------------------------------------------------------------------- feature-moment path
@njit(cache=True, nogil=True)
def train_feature(net, sched, data, rec, W):
    """Train R late-fusion leaky-ReLU nets with scalar modalities from feature moments.

    Row i = (k, ±) of the one chunk ``data.x`` is the input ±1 on modality k, 0 elsewhere;
    by positive homogeneity the output there is the coefficient c_i of the feature
    f_i = relu(±x_k), ŷ = Σ_i c_i f_i, so the loss is L_min + ½ (c − c_ls)ᵀ F (c − c_ls)
    per output and row i's output error is (F c − q)_i: the gradient is exactly the
    sample path's (theory.md §6.11), at the cost of 2K single-input passes.

    Parameters as :func:`train_moment`; data : FeatureData; W float64.
    """
    R, P = W.shape
    n_out = data.q.shape[1]
    m = data.F.shape[1]
    oc = net.nodes[net.nodes.shape[0] - 1, N_COL]
    wt = np.empty(P)
    A = np.empty(m * net.n_comp)
    Dl = np.zeros(m * net.n_comp)
    E = np.zeros(n_out * net.n_comp)           # scratch of the W_tot pass
    Ein = np.empty(n_out * net.n_in)
    wtot = np.empty((n_out, net.n_in))
    cdiff = np.empty(m)
    none = np.empty(0)
    all_live = np.zeros((net.nodes.shape[0], 0), dtype=np.bool_)
    yes, no = R > 0, R < 0                      # runtime booleans (see _inner)
    edges, live, x, slope = net.edges, data.live, data.x, net.slope
    cap = rec.loss.shape[1]
    for r in range(R):
        q = sched.data_of[r]
        F, qv, cls, loss_min, half = data.F[q], data.q[q], data.c_ls[q], data.loss_min[q], data.half_syy[q]
        has_pop, sigma, w_star = data.has_pop[q], data.sigma[q], data.w_star[q]
        w = W[r]
        target = rec.grad[r] if sched.grad_only else w
        coef = 1.0 if sched.grad_only else -sched.lr[r]
        decay = 0.0 if sched.grad_only else sched.lr[r] * sched.wd[r]
        rows = _run_records(rec, r)
        nr, lim, k = rec.n_rec[r], rec.limit[r], rec.k[r]
        nxt = _first_due(sched, k)
        while True:
            fill_transposes(w, wt, edges)
            forward(w, wt, net, x, A, m, live, slope, no)
            acc = 0.0                                         # A[m*oc + i*n_out + o] = c_{o,i}
            for o in range(n_out):
                for i in range(m):
                    cdiff[i] = A[m * oc + i * n_out + o] - cls[o, i]
                for i in range(m):
                    rq = -qv[o, i]
                    fq = 0.0
                    for a in range(m):
                        rq += F[i, a] * A[m * oc + a * n_out + o]
                        fq += F[i, a] * cdiff[a]
                    acc += cdiff[i] * fq
                    Dl[m * oc + i * n_out + o] = rq           # (F c − q)_i
            loss = loss_min + 0.5 * acc
            if np.isnan(lim):
                lim = _limit(sched, loss, half)
            due = k == nxt
            if due:
                nxt += sched.record_every
            record, st = _decide(sched, k, loss, lim, due, nr == cap)
            if record:
                end_to_end(w, wt, net, E, Ein, all_live, wtot)
                _record(rows, nr, k, loss, wtot, has_pop, sigma, w_star)
                nr += 1
            if st >= 0 and not sched.grad_only:
                break
            backward(w, wt, net, x, A, Dl, none, m, live, target, coef, decay, yes, slope)
            if sched.grad_only:
                break
            k += 1
        rec.status[r], rec.n_rec[r], rec.limit[r], rec.k[r] = st, nr, lim, k


# ---------------------------------------------------------------------- sample path
# Chunks of samples are *feature-major*: node j's block holds one row of m samples per unit,
# so the narrow blocks' loops run over samples (vectorised, their per-unit overhead spread
# over the chunk) and the wide blocks are single matrix products Z = W S.
#
# Where the next features go (issue 13), without changing this structure:
# - softmax cross-entropy over C classes: one more loss code in _group_loss_grad's output
#   stage, which already sees a chunk's (out, m) outputs and writes their (out, m) errors;
# - mini-batches: chunk_lo / group_lo describe which samples a step sees; a shuffled batch
#   is gathered into a chunk block of the same layout before forward_fm;
# - convolutions: an edge-kind column in the edge table, dispatched in forward_fm and
#   backward_fm next to E_BLAS (im2col into the scratch T, then the same BLAS products).
@_inner
def _accumulate(first, last, b, wv, x, z, a, slope):
    """One term of a unit's sum over the chunk, fused with its neighbours' passes.

    z = (b if first else z) + wv·x, then, if ``last`` and slope != 1, either the leaky ReLU
    (``a`` is None: forward) or its derivative at the activations ``a`` (backward).
    A sum of one term (first and last) is a single pass.
    """
    act = last and slope != 1.0
    if first and act:
        if a is None:
            for s in range(z.shape[0]):
                v = b + wv * x[s]
                z[s] = v if v >= 0.0 else slope * v
        else:
            for s in range(z.shape[0]):
                v = b + wv * x[s]
                z[s] = v if a[s] > 0.0 else slope * v
        return
    if first:
        for s in range(z.shape[0]):
            z[s] = b + wv * x[s]
    elif wv != 0.0:                                              # exact: skips adding 0·x
        for s in range(z.shape[0]):
            z[s] += wv * x[s]
    if act:
        if a is None:
            for s in range(z.shape[0]):
                if z[s] < 0.0:
                    z[s] *= slope
        else:
            for s in range(z.shape[0]):
                if not a[s] > 0.0:
                    z[s] *= slope


@_inner
def forward_fm(w, net, xin, A, m, T):
    """Feature-major forward pass over a chunk of m samples (the sample path).

    xin : the chunk's input block (node j's units x m rows at m * N_COL); A : computed units.
    T : BLAS scratch, or None (loops only). Narrow blocks: each unit's row is built in
    place (bias plus one pass per incoming weight) and activated in the same pass as its
    last term, while it is in cache. Wide blocks (E_BLAS): Z = W S, then bias and φ.
    """
    nodes, edges = net.nodes, net.edges
    dt = w.dtype.type
    slope = dt(net.slope)
    one = dt(1.0)
    for j in range(nodes.shape[0]):
        kind = nodes[j, N_KIND]
        if kind == KIND_INPUT:
            continue
        units = nodes[j, N_UNITS]
        zb = m * nodes[j, N_COL]
        act = slope if kind == KIND_HIDDEN else one
        written = False
        if T is not None:                                    # wide blocks: BLAS products
            for e in range(edges.shape[0]):
                if edges[e, E_DST] != j or edges[e, E_BLAS] == 0:
                    continue
                off, rows, cols = edges[e, E_OFF], edges[e, E_ROWS], edges[e, E_COLS]
                S = _node_fm(net, edges[e, E_SRC], xin, A, m)
                W2 = w[off:off + rows * cols].reshape(rows, cols)
                if not written:
                    np.dot(W2, S, out=A[zb:zb + units * m].reshape(units, m))
                    written = True
                else:
                    np.dot(W2, S, out=T[:units * m].reshape(units, m))
                    _axpy(1.0, T[:units * m], A[zb:zb + units * m])
        e_last = -1                                          # the last narrow edge into j
        for e in range(edges.shape[0]):
            if edges[e, E_DST] == j and (T is None or edges[e, E_BLAS] == 0):
                e_last = e
        boff = nodes[j, N_BIAS]
        for r in range(units):
            z = A[zb + r * m:zb + (r + 1) * m]
            b = w[boff + r] if (net.bias and boff >= 0) else dt(0.0)
            if e_last < 0:                                   # wide terms only: bias and φ
                for s in range(m):
                    v = z[s] + b
                    z[s] = v if (v >= 0.0 or act == one) else act * v
                continue
            first = not written
            if written and b != 0.0:
                for s in range(m):
                    z[s] += b
            for e in range(e_last + 1):
                if edges[e, E_DST] != j or (T is not None and edges[e, E_BLAS] != 0):
                    continue
                off, cols, src = edges[e, E_OFF], edges[e, E_COLS], edges[e, E_SRC]
                src_buf = xin if nodes[src, N_KIND] == KIND_INPUT else A
                sb = m * nodes[src, N_COL]
                for c in range(cols):
                    _accumulate(first, e == e_last and c == cols - 1, b, w[off + r * cols + c],
                                src_buf[sb + c * m:sb + (c + 1) * m], z, None, act)
                    first = False


@_inner
def backward_fm(w, net, xin, A, Dl, m, T, g, first):
    """Feature-major backward pass over a chunk; accumulates the weight gradient into g.

    Dl : errors dL/dZ, layout of A; the output node's rows filled by the caller. Every
    computed node feeds exactly one edge (true of the whole FusionNet family), so each source
    row is written once, complete, and multiplied by φ' in the same pass. Narrow blocks' sums
    over samples are dot products in a fixed order; wide blocks are BLAS products, written
    straight into g on the group's ``first`` chunk and added through T after.
    """
    nodes, edges = net.nodes, net.edges
    dt = w.dtype.type
    slope = dt(net.slope)
    for j in range(nodes.shape[0] - 1, -1, -1):
        if nodes[j, N_KIND] == KIND_INPUT:
            continue
        units = nodes[j, N_UNITS]
        jb = m * nodes[j, N_COL]
        boff = nodes[j, N_BIAS]
        if net.bias and boff >= 0:
            for r in range(units):
                g[boff + r] += _sum(Dl[jb + r * m:jb + (r + 1) * m])
        for e in range(edges.shape[0]):
            if edges[e, E_DST] != j:
                continue
            off, rows, cols, src = edges[e, E_OFF], edges[e, E_ROWS], edges[e, E_COLS], edges[e, E_SRC]
            down = nodes[src, N_KIND] != KIND_INPUT
            sb = m * nodes[src, N_COL]
            if T is not None:
                if edges[e, E_BLAS] != 0:
                    W2 = w[off:off + rows * cols].reshape(rows, cols)
                    Dj = Dl[jb:jb + rows * m].reshape(rows, m)
                    S = _node_fm(net, src, xin, A, m)
                    G2 = g[off:off + rows * cols].reshape(rows, cols)
                    if first:
                        np.dot(Dj, S.T, out=G2)
                    else:
                        np.dot(Dj, S.T, out=T[:rows * cols].reshape(rows, cols))
                        _axpy(1.0, T[:rows * cols], g[off:off + rows * cols])
                    if down:                                 # Dl_src = (Wᵀ Dj) ⊙ φ'(A_src)
                        np.dot(W2.T, Dj, out=Dl[sb:sb + cols * m].reshape(cols, m))
                        if slope != 1.0:
                            for i in range(cols * m):
                                if not A[sb + i] > 0.0:
                                    Dl[sb + i] *= slope
                    continue
            src_buf = xin if nodes[src, N_KIND] == KIND_INPUT else A
            for r in range(rows):
                d = Dl[jb + r * m:jb + (r + 1) * m]
                for c in range(cols):
                    g[off + r * cols + c] += _dot(d, src_buf[sb + c * m:sb + (c + 1) * m])
            if not down:
                continue
            for c in range(cols):                            # Dl_src = φ'(A_src) · Wᵀ Dl_j
                a = A[sb + c * m:sb + (c + 1) * m]
                dsrc = Dl[sb + c * m:sb + (c + 1) * m]
                for r in range(rows):
                    _accumulate(r == 0, r == rows - 1, dt(0.0), w[off + r * cols + c],
                                Dl[jb + r * m:jb + (r + 1) * m], dsrc, a, slope)


@_inner
def _group_loss_grad(w, wt, net, data, q, grp, A, Dl, T, g, want_grad):
    """Loss (float64, times 1/n) and, if ``want_grad``, gradient (into g) of one sample group.

    g must be zero on entry. A, Dl, T : this thread's scratch.
    """
    D = net.n_in
    n_out = net.nodes[net.nodes.shape[0] - 1, N_UNITS]
    oc = net.nodes[net.nodes.shape[0] - 1, N_COL]
    total = 0.0
    c_first = data.group_lo[grp]
    for c in range(c_first, data.group_lo[grp + 1]):
        s0, s1 = data.chunk_lo[c], data.chunk_lo[c + 1]
        m = s1 - s0
        xin = data.x[q, D * s0:D * s1]
        yc = data.y[q, n_out * s0:n_out * s1]                   # (out, m) feature-major
        forward_fm(w, net, xin, A, m, T)
        for o in range(n_out):
            zo = A[m * oc + o * m:m * oc + (o + 1) * m]
            do = Dl[m * oc + o * m:m * oc + (o + 1) * m]
            yo = yc[o * m:(o + 1) * m]
            for s in range(m):
                ell, dl = _output_error(net.loss, np.float64(zo[s]), np.float64(yo[s]), data.inv_n)
                total += ell
                do[s] = dl
        if want_grad:
            backward_fm(w, net, xin, A, Dl, m, T, g, c == c_first)
    return total


@_inner
def _sample_task(item, G, active, kr, net, sched, data, W, WT, SA, SD, ST, GG, LL):
    """Task ``item`` = (run, group) of an epoch: that group's loss into LL, gradient into GG."""
    r = item // G
    if not active[r]:
        return
    t = numba.get_thread_id()
    g = GG[item]
    for i in range(g.shape[0]):
        g[i] = 0.0
    want = sched.grad_only or kr[r] < sched.n_epochs
    LL[item] = _group_loss_grad(W[r], WT[r], net, data, sched.data_of[r], item % G, SA[t], SD[t], ST[t],
                                g, want)


@njit(cache=True, parallel=True, no_cpython_wrapper=True)
def _sample_tasks(G, active, kr, net, plan, data, W, WT, SA, SD, ST, GG, LL):
    """One epoch's (run, group) tasks, in parallel: the only parallel loop of the engine.

    Kept this small on purpose: numba's parallel lowering costs seconds per line of the
    function that holds the loop (``plan``: numba's parallel loops reserve ``sched``).
    """
    for item in prange(W.shape[0] * G):
        _sample_task(item, G, active, kr, net, plan, data, W, WT, SA, SD, ST, GG, LL)


@njit(cache=True)
def train_sample(net, sched, data, rec, W):
    """Train R nets on their samples; every (run, sample group) pair is a parallel task.

    Parameters
    ----------
    net : Net.
    sched : Schedule.
    data : SampleData of Rd data sets (run r uses sched.data_of[r]). The samples are split
        into fixed chunks inside fixed groups; a group's gradient is summed chunk by chunk and the groups'
        in group order, so results depend neither on the number of threads nor on R.
    rec : Records (R, cap); ``grad`` (R, P) in the weights' dtype.
    W : (R, P) float64 or float32, the weights at epoch rec.k[r]; overwritten.
    """
    R, P = W.shape
    G = data.group_lo.shape[0] - 1
    D = net.n_in
    n_out = net.nodes[net.nodes.shape[0] - 1, N_UNITS]
    m_max = 0
    for c in range(data.chunk_lo.shape[0] - 1):
        m_max = max(m_max, data.chunk_lo[c + 1] - data.chunk_lo[c])
    t_size = 0                                  # BLAS scratch: one product or one block
    for e in range(net.edges.shape[0]):
        if net.edges[e, E_BLAS] != 0:
            t_size = max(t_size, max(m_max, n_out) * net.edges[e, E_ROWS],
                         net.edges[e, E_ROWS] * net.edges[e, E_COLS])
    dt = W.dtype
    n_thr = numba.config.NUMBA_NUM_THREADS
    m_rows = max(m_max, n_out)
    SA = np.empty((n_thr, m_rows * net.n_comp), dtype=dt)
    SD = np.zeros((n_thr, m_rows * net.n_comp), dtype=dt)
    ST = np.empty((n_thr, max(t_size, 1)), dtype=dt)
    WT = np.empty((R, P), dtype=dt)
    GG = np.empty((R * G, P), dtype=dt)
    LL = np.empty(R * G)
    GRAD = np.empty(P, dtype=dt)
    E = np.zeros(n_out * net.n_comp, dtype=dt)     # scratch of the W_tot pass
    Ein = np.empty(n_out * D, dtype=dt)
    wtot = np.empty((n_out, D))
    wtot_dt = np.empty((n_out, D), dtype=dt)
    kr = rec.k.copy()                           # per-run state kept in local arrays
    nrs = rec.n_rec.copy()
    lims = rec.limit.copy()
    cap = rec.loss.shape[1]
    nxt = np.empty(R, dtype=np.int64)
    for r in range(R):
        nxt[r] = _first_due(sched, kr[r])
    all_live = np.zeros((net.nodes.shape[0], 0), dtype=np.bool_)
    active = np.ones(R, dtype=np.bool_)
    n_active = R
    while n_active > 0:
        _sample_tasks(G, active, kr, net, sched, data, W, WT, SA, SD, ST, GG, LL)
        for r in range(R):
            if not active[r]:
                continue
            q = sched.data_of[r]
            loss = 0.0
            for grp in range(G):
                loss += LL[r * G + grp]
            if np.isnan(lims[r]):
                lims[r] = _limit(sched, loss, data.half_syy[q])
            due = kr[r] == nxt[r]
            if due:
                nxt[r] += sched.record_every
            record, st = _decide(sched, kr[r], loss, lims[r], due, nrs[r] == cap)
            if record:
                fill_transposes(W[r], WT[r], net.edges)
                end_to_end(W[r], WT[r], net, E, Ein, all_live, wtot_dt)
                for o in range(n_out):
                    for d in range(D):
                        wtot[o, d] = wtot_dt[o, d]
                _record(_run_records(rec, r), nrs[r], kr[r], loss, wtot, data.has_pop[q], data.sigma[q],
                        data.w_star[q])
                nrs[r] += 1
            if st >= 0 and not sched.grad_only:
                rec.status[r], rec.n_rec[r], rec.limit[r], rec.k[r] = st, nrs[r], lims[r], kr[r]
                active[r] = False
                n_active -= 1
                continue
            _copy(GG[r * G], GRAD)                          # groups summed in group order
            for grp in range(1, G):
                _axpy(1.0, GG[r * G + grp], GRAD)
            if sched.grad_only:
                _copy(GRAD, rec.grad[r])
                rec.status[r], rec.n_rec[r], rec.limit[r], rec.k[r] = st, nrs[r], lims[r], kr[r]
                active[r] = False
                n_active -= 1
                continue
            w = W[r]
            lr = dt.type(sched.lr[r])
            wd = dt.type(sched.wd[r])
            for i in range(P):
                w[i] -= lr * (GRAD[i] + wd * w[i])
            kr[r] += 1
