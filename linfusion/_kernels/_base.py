"""Records, table columns, codes, thread and compilation helpers, vector primitives (no kernels)."""

import ctypes
from collections import namedtuple

import numba
import numpy as np
from numba import njit

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
#: at the current weights into Records.grad, no update); scale (R, P) float64: each
#: parameter's learning-rate factor (no columns: all 1, the fused update); ogm (R,) float64:
#: OGM-GE α (0: off; moment path only, see :mod:`linfusion.mitigation`); drop (R, K) float64:
#: sampled dropout probability of each modality (no columns: off; sample path only), keep_scale
#: (R, K) float64: the factor of kept inputs, seed (R,) int64: the masks' seed; pre_epochs (R,)
#: int64, pre_mask (R, K) float64 (1: the branch learns while pre-training; no columns: off),
#: alt_period (R,) int64 (0: off): schedules of the moment path (see :func:`_passes._gates`).
Schedule = namedtuple("Schedule", "lr wd data_of n_epochs record_every tol blowup grad_only scale ogm drop "
                      "keep_scale seed pre_epochs pre_mask alt_period")
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
#: The moment data also carry pmod (P,) int64, the modality whose branch each parameter lies
#: on (-1: shared), and cmod (D,) int64, the modality of each input column (OGM-GE scores).
MomentData = namedtuple("MomentData", "sxx syx w_ls g0 loss_min half_syy live has_pop sigma w_star pmod cmod")
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


