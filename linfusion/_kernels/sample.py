"""The sample path: feature-major chunks of samples, fused loops for narrow blocks, BLAS for wide ones."""
import numba
import numpy as np
from numba import njit, prange

from ._base import E_BLAS, E_COLS, E_DST, E_OFF, E_ROWS, E_SRC, KIND_HIDDEN, KIND_INPUT, N_BIAS, N_COL, N_KIND, N_UNITS, _axpy, _copy, _dot, _inner, _node_fm, _sum, _tiny, fill_transposes
from ._passes import _decide, _scaled, _first_due, _limit, _output_error, _record, _run_records, end_to_end


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


@_tiny
def _mix(z):
    """splitmix64's finaliser (uint64 -> uint64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@_inner
def dropout_uniform(seed, epoch, sample, modality):
    """A uniform number in [0, 1) that depends only on (seed, epoch, sample, modality).

    Counter-based (nested splitmix64 finalisers of the four integers), so a mask is the same
    whatever the threads, groups or batch; modality k of sample i is dropped at an epoch when
    this number is < p_k.
    """
    z = _mix(np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15))
    z = _mix(z ^ np.uint64(epoch))
    z = _mix(z ^ np.uint64(sample))
    z = _mix(z ^ np.uint64(modality))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@_inner
def _masked_chunk(net, sched, r, epoch, xin, s0, m, A):
    """A copy of a chunk's inputs with run r's sampled modality dropout applied, in A's free tail."""
    D = net.n_in
    xs = A[A.shape[0] - D * m:]
    for i in range(D * m):
        xs[i] = xin[i]
    for k in range(sched.drop.shape[1]):
        p = sched.drop[r, k]
        if p == 0.0:
            continue
        c0, units = net.nodes[k, N_COL], net.nodes[k, N_UNITS]       # input node k: modality k
        keep = xs.dtype.type(sched.keep_scale[r, k])
        for s in range(m):
            f = xs.dtype.type(0.0) if dropout_uniform(sched.seed[r], epoch, s0 + s, k) < p else keep
            for j in range(units):
                xs[m * c0 + j * m + s] *= f
    return xs


@_inner
def _group_loss_grad(w, wt, net, data, q, grp, A, Dl, T, g, want_grad, sched, r, epoch):
    """Loss (float64, times 1/n) and, if ``want_grad``, gradient (into g) of one sample group.

    g must be zero on entry. A, Dl, T : this thread's scratch (A with room for a masked chunk
    at its end when run r has sampled dropout, ``sched.drop``).
    """
    D = net.n_in
    n_out = net.nodes[net.nodes.shape[0] - 1, N_UNITS]
    oc = net.nodes[net.nodes.shape[0] - 1, N_COL]
    total = 0.0
    c_first = data.group_lo[grp]
    masked = sched.drop.shape[1] > 0
    for c in range(c_first, data.group_lo[grp + 1]):
        s0, s1 = data.chunk_lo[c], data.chunk_lo[c + 1]
        m = s1 - s0
        xin = data.x[q, D * s0:D * s1]
        if masked:
            xin = _masked_chunk(net, sched, r, epoch, xin, s0, m, A)
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
                                g, want, sched, r, kr[r])


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
    extra = D * m_max if sched.drop.shape[1] > 0 else 0     # room for a masked chunk (sampled dropout)
    SA = np.empty((n_thr, m_rows * net.n_comp + extra), dtype=dt)
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
            if _scaled(sched, r):                   # per-parameter rates (linfusion.mitigation)
                for i in range(P):
                    w[i] -= lr * dt.type(sched.scale[r, i]) * (GRAD[i] + wd * w[i])
            else:
                for i in range(P):
                    w[i] -= lr * (GRAD[i] + wd * w[i])
            kr[r] += 1
