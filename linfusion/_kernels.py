"""Compiled full-batch gradient descent for the fusion-network family.

The only module that imports numba. Kernels do no validation, no I/O, no random draws
and no allocation inside the epoch loop; :mod:`linfusion.train` validates, allocates and
builds results.

A network is a chain of *nodes* in topological order, fed by *edges*:

- ``nodes[j] = (col, units, bias_off, kind)``: the node's activations sit in columns
  ``col .. col+units`` of a sample-major buffer ``A[s, :]``; ``kind`` is 0 for an input
  modality (filled by the caller), 1 for a hidden node (leaky ReLU applied), 2 for the
  output node. ``bias_off`` is the offset of its bias in the flat weights, or -1.
- ``edges[e] = (w_off, rows, cols, src, dst)``: the weight block ``W`` (rows x cols,
  row-major at ``w_off``) that maps node ``src`` into node ``dst``.

Two exact gradient paths share this forward and backward code:

- *sample path*: the rows of ``A`` are samples; the output error is dℓ/dŷ / n.
- *moment path* (linear net, squared loss): the rows of ``A`` are the D basis vectors,
  so the output node holds W_totᵀ, and the output error is (W_tot Σxx − Σyx)ᵀ; the
  weight gradients are then exactly the sample-path ones, at a cost independent of n.

Every product is written so that its innermost loop either runs over contiguous memory
without a reduction (an axpy, which vectorises without reassociating sums) or is a dot
product with four fixed partial sums. Loop orders depend only on shapes, and sums over
samples run in a fixed order (fixed sample groups, summed in group order), so a run gives
the same bits whether it is trained alone, in parallel groups, or inside a batch.
"""
import os

# The sample path opens parallel regions every epoch. OpenMP's default busy-waiting makes
# them many times slower than one thread when other processes use the cores (measured:
# 21 ms against 3.3 ms per epoch); passive waiting costs little on an idle machine. Set
# before numba loads its OpenMP pool; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

LOSS_MSE, LOSS_EXP, LOSS_LOGISTIC = 0, 1, 2
STATUS_COMPLETED, STATUS_CONVERGED, STATUS_DIVERGED = 0, 1, 2
_AXPY_MIN = 8   # below this many outputs, a dot product beats an axpy


def max_threads():
    """Upper bound on numba thread ids, for per-thread scratch buffers."""
    return numba.config.NUMBA_NUM_THREADS


def get_threads():
    """Threads the parallel kernels use now."""
    return numba.get_num_threads()


def set_threads(n):
    """Let the parallel kernels use n threads (clipped to 1 .. max_threads())."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


# Reductions may be reassociated so that they vectorise (2-3x faster). This flag alone keeps
# NaN and infinity semantics (unlike the full fast-math set); the summation order it picks is fixed
# by the compiled code, so results stay reproducible run to run and batch to batch.
_REDUCE = {"reassoc"}


@njit(cache=True, fastmath=_REDUCE)
def _dot(a, b):
    """a · b for 1-D views of equal length."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(cache=True, fastmath=_REDUCE)
def _sum(a):
    """Sum of a 1-D view."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i]
    return s


@njit(cache=True)
def _axpy(a, x, y):
    """y += a x for 1-D views of equal length (views let the loop vectorise)."""
    for i in range(y.shape[0]):
        y[i] += a * x[i]


@njit(cache=True)
def fill_transposes(w, wt, edges):
    """wt[block] = transpose of w[block] (cols x rows) for every block with few columns.

    Only blocks with cols < _AXPY_MIN are read transposed (by :func:`forward`'s axpy form
    and :func:`backward`'s dot form); wide blocks are always read row by row.
    """
    for e in range(edges.shape[0]):
        off, rows, cols = edges[e, 0], edges[e, 1], edges[e, 2]
        if cols < _AXPY_MIN:
            for r in range(rows):
                for c in range(cols):
                    wt[off + c * rows + r] = w[off + r * cols + c]


@njit(cache=True)
def support(nodes, edges, D):
    """sup[j, d]: input column d reaches node j along some path (structure, not weights).

    With the D basis vectors as inputs (moment path, end-to-end weights), row d of a node
    with sup[j, d] False is exactly zero, and so is every gradient it would carry: the
    passes below skip those rows (half the work of late fusion's pre-fusion layers).
    """
    sup = np.zeros((nodes.shape[0], D), dtype=np.bool_)
    for j in range(nodes.shape[0]):
        if nodes[j, 3] == 0:
            for d in range(nodes[j, 0], nodes[j, 0] + nodes[j, 1]):
                sup[j, d] = True
        for e in range(edges.shape[0]):          # sources precede their node
            if edges[e, 4] == j:
                for d in range(D):
                    sup[j, d] = sup[j, d] or sup[edges[e, 3], d]
    return sup


@njit(cache=True)
def forward(w, wt, edges, nodes, sup, A, m):
    """Linear forward pass over the basis vectors: fill every computed node's columns of A[:m].

    A : (m, U), row s the response to the s-th input basis vector (the moment path, and the
    end-to-end weights of any net); the input columns are filled by the caller. sup is
    :func:`support`.
    """
    for j in range(nodes.shape[0]):
        c0, units, kind = nodes[j, 0], nodes[j, 1], nodes[j, 3]
        if kind == 0:
            continue
        for s in range(m):
            for r in range(units):
                A[s, c0 + r] = 0.0
        for e in range(edges.shape[0]):
            if edges[e, 4] != j:
                continue
            off, rows, cols, src = edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]
            sc0 = nodes[src, 0]
            if cols < _AXPY_MIN:
                for s in range(m):
                    z = A[s, c0:c0 + rows]                       # (rows,)
                    a_src = A[s, sc0:sc0 + cols]                 # (cols,)
                    for c in range(cols):
                        if a_src[c] != 0.0:                      # exact: skips adding 0·W
                            _axpy(a_src[c], wt[off + c * rows:off + (c + 1) * rows], z)
            else:
                for s in range(m):
                    if not sup[src, s]:                          # an exactly zero source row
                        continue
                    a_src = A[s, sc0:sc0 + cols]
                    for r in range(rows):
                        A[s, c0 + r] += _dot(a_src, w[off + r * cols:off + (r + 1) * cols])


@njit(cache=True)
def backward(w, wt, edges, nodes, sup, A, Dl, m, target, coef, decay):
    """Sample-major backward pass of a linear net (the moment path).

    Adds ``coef`` times the loss gradient to ``target``: either a gradient buffer
    (coef 1, decay 0), or the weights themselves (target is w, coef −lr): the update is
    then fused into the pass, each block updated right after its error has been sent
    down with its old weights, and first multiplied by (1 − decay) for weight decay.

    Dl : (m_max, U) errors, same layout as A; the output node's columns filled. Rows s
    outside a source's support (sup[src, s] False) carry no gradient and are skipped.
    """
    out = nodes.shape[0] - 1
    for s in range(m):
        for j in range(out):
            if nodes[j, 3] != 0:
                for r in range(nodes[j, 1]):
                    Dl[s, nodes[j, 0] + r] = 0.0
    for j in range(out, -1, -1):
        c0, kind = nodes[j, 0], nodes[j, 3]
        if kind == 0:
            continue
        for e in range(edges.shape[0]):
            if edges[e, 4] != j:
                continue
            off, rows, cols, src = edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]
            sc0 = nodes[src, 0]
            pass_down = nodes[src, 3] != 0
            if cols < _AXPY_MIN:                           # narrow block: work column by column
                if pass_down:                              # Dl[s, src] = W^T Dl[s, j]
                    for s in range(m):
                        if not sup[src, s]:
                            continue
                        d = Dl[s, c0:c0 + rows]
                        for c in range(cols):
                            Dl[s, sc0 + c] += _dot(d, wt[off + c * rows:off + (c + 1) * rows])
                if decay != 0.0:
                    for i in range(off, off + rows * cols):
                        target[i] -= decay * target[i]
                for s in range(m):
                    for c in range(cols):
                        a = coef * A[s, sc0 + c]
                        if a == 0.0:
                            continue
                        if cols == 1:                      # a single column is contiguous
                            _axpy(a, Dl[s, c0:c0 + rows], target[off:off + rows])
                        else:
                            for r in range(rows):
                                target[off + r * cols + c] += a * Dl[s, c0 + r]
                continue
            for r in range(rows):                          # wide block: one pass, row by row
                w_row = w[off + r * cols:off + (r + 1) * cols]
                t_row = target[off + r * cols:off + (r + 1) * cols]
                if pass_down:
                    for s in range(m):
                        if sup[src, s] and Dl[s, c0 + r] != 0.0:
                            _axpy(Dl[s, c0 + r], w_row, Dl[s, sc0:sc0 + cols])
                if decay != 0.0:
                    for c in range(cols):
                        t_row[c] -= decay * t_row[c]
                for s in range(m):
                    if sup[src, s] and Dl[s, c0 + r] != 0.0:
                        _axpy(coef * Dl[s, c0 + r], A[s, sc0:sc0 + cols], t_row)


@njit(cache=True)
def _accumulate(first, last, b, wv, x, z, a, slope):
    """One term of a feature-major sum, fused with its neighbours' passes.

    z = (b if first else z) + wv·x, then, if ``last`` and slope != 1, either the leaky ReLU
    (``a`` is None: forward) or its derivative at the activations ``a`` (backward). A sum
    of one term (first and last) is a single pass.
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
        _axpy(wv, x, z)
    if act:
        if a is None:
            for s in range(z.shape[0]):
                if z[s] < 0.0:
                    z[s] *= slope
        else:
            for s in range(z.shape[0]):
                if not a[s] > 0.0:
                    z[s] *= slope


@njit(cache=True)
def _last_edge(edges, j):
    last = -1
    for e in range(edges.shape[0]):
        if edges[e, 4] == j:
            last = e
    return last


@njit(cache=True)
def forward_fm(w, edges, nodes, A, m, slope, use_bias):
    """Feature-major forward pass over a chunk of samples (the sample path).

    A : (U, m_max), one row per unit, one column per sample; input rows filled by the
    caller. Each row is built in place (bias plus one axpy per incoming weight) and
    activated in the same pass as its last term, while it is in cache.
    """
    for j in range(nodes.shape[0]):
        c0, units, boff, kind = nodes[j, 0], nodes[j, 1], nodes[j, 2], nodes[j, 3]
        if kind == 0:
            continue
        e_last = _last_edge(edges, j)
        act = slope if kind == 1 else 1.0
        for r in range(units):
            z = A[c0 + r, :m]                                    # (m,)
            b = w[boff + r] if (use_bias and boff >= 0) else 0.0
            first = True
            for e in range(e_last + 1):
                if edges[e, 4] != j:
                    continue
                off, cols, sc0 = edges[e, 0], edges[e, 2], nodes[edges[e, 3], 0]
                for c in range(cols):
                    _accumulate(first, e == e_last and c == cols - 1, b, w[off + r * cols + c],
                                A[sc0 + c, :m], z, None, act)
                    first = False


@njit(cache=True)
def backward_fm(w, edges, nodes, A, Dl, m, slope, use_bias, g):
    """Feature-major backward pass over a chunk; accumulates weight gradients into g.

    Dl : (U, m_max) errors dL/dZ; the output node's rows filled by the caller. Every
    computed node feeds exactly one edge (true of the whole FusionNet family), so each
    source row is written once, complete, and multiplied by φ' in the same pass.
    """
    for j in range(nodes.shape[0] - 1, -1, -1):
        c0, units, boff, kind = nodes[j, 0], nodes[j, 1], nodes[j, 2], nodes[j, 3]
        if kind == 0:
            continue
        if use_bias and boff >= 0:
            for r in range(units):
                g[boff + r] += _sum(Dl[c0 + r, :m])
        for e in range(edges.shape[0]):
            if edges[e, 4] != j:
                continue
            off, rows, cols, src = edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]
            sc0 = nodes[src, 0]
            for r in range(rows):
                d = Dl[c0 + r, :m]
                for c in range(cols):
                    g[off + r * cols + c] += _dot(d, A[sc0 + c, :m])
            if nodes[src, 3] == 0:
                continue
            for c in range(cols):                                # Dl[src] = φ'(A[src]) · Wᵀ Dl[j]
                for r in range(rows):
                    _accumulate(r == 0, r == rows - 1, 0.0, w[off + r * cols + c], Dl[c0 + r, :m],
                                Dl[sc0 + c, :m], A[sc0 + c, :m], slope)


@njit(cache=True)
def _output_error(loss_kind, yhat, y, inv_n):
    """Per-sample, per-output loss and its derivative dℓ/dŷ, both scaled by 1/n."""
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


@njit(cache=True)
def sample_grad(w, edges, nodes, Xt, Yt, start, stop, chunk, A, Dl, g,
                slope, use_bias, loss_kind, inv_n):
    """Loss and gradient (into g) of samples start..stop, chunk by chunk, feature-major.

    Xt : (D, n), Yt : (out, n); A, Dl : (U, chunk). Returns the sum of the samples'
    losses times inv_n.
    """
    D = Xt.shape[0]
    n_out = Yt.shape[0]
    oc = nodes[nodes.shape[0] - 1, 0]
    total = 0.0
    for s0 in range(start, stop, chunk):
        m = min(chunk, stop - s0)
        for d in range(D):
            A[d, :m] = Xt[d, s0:s0 + m]
        forward_fm(w, edges, nodes, A, m, slope, use_bias)
        for o in range(n_out):
            for s in range(m):
                ell, dl = _output_error(loss_kind, A[oc + o, s], Yt[o, s0 + s], inv_n)
                total += ell
                Dl[oc + o, s] = dl
        backward_fm(w, edges, nodes, A, Dl, m, slope, use_bias, g)
    return total


@njit(cache=True)
def moment_forward(w, wt, edges, nodes, sup, sxx, syx, w_ls, loss_min, A, Dl):
    """Loss of a linear net from the moments; leaves W_totᵀ in A and the output error in Dl.

    Loss = L_min + ½ tr((W_tot − W_ls) Σxx (W_tot − W_ls)ᵀ), with W_ls the least-squares
    solution and L_min its loss: the same quadratic as ½<y²> − tr(W_tot Σyxᵀ) +
    ½ tr(W_tot Σxx W_totᵀ), but without its cancellation near the minimum (where that form
    rounds to ±1e-16 and can come out negative). Output error (W_tot Σxx − Σyx)ᵀ.
    A, Dl : (D, U); wt must hold the narrow blocks' transposes.
    """
    D = sxx.shape[0]
    n_out = syx.shape[0]
    oc = nodes[nodes.shape[0] - 1, 0]
    for s in range(D):
        for d in range(D):
            A[s, d] = 1.0 if s == d else 0.0
    forward(w, wt, edges, nodes, sup, A, D)              # A[s, oc+o] = W_tot[o, s]
    acc = 0.0
    for o in range(n_out):
        for s in range(D):
            r = -syx[o, s]
            q = 0.0
            for d in range(D):
                r += sxx[s, d] * A[d, oc + o]
                q += sxx[s, d] * (A[d, oc + o] - w_ls[o, d])
            Dl[s, oc + o] = r                             # (W_tot Σxx − Σyx)[o, s]
            acc += (A[s, oc + o] - w_ls[o, s]) * q
    return loss_min + 0.5 * acc


@njit(cache=True)
def end_to_end(w, wt, edges, nodes, sup, A, D, out_wtot):
    """out_wtot[o, d] = W_tot[o, d]: the product of weights along each path (no φ, no bias)."""
    for s in range(D):
        for d in range(D):
            A[s, d] = 1.0 if s == d else 0.0
    forward(w, wt, edges, nodes, sup, A, D)
    oc = nodes[nodes.shape[0] - 1, 0]
    for o in range(out_wtot.shape[0]):
        for d in range(D):
            out_wtot[o, d] = A[d, oc + o]


@njit(cache=True)
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


@njit(cache=True)
def _record(r, k, loss, wtot, has_pop, sigma, w_star, rec_epoch, rec_loss, rec_wtot, rec_eg, n_rec):
    """Append epoch k's loss, W_tot and (when has_pop) E_g to run r's records."""
    i = n_rec[r]
    rec_epoch[r, i] = k
    rec_loss[r, i] = loss
    rec_wtot[r, i] = wtot
    rec_eg[r, i] = _gen_error(wtot, sigma, w_star) if has_pop else np.nan
    n_rec[r] = i + 1


@njit(cache=True)
def _step(w, grad, lr, wd):
    for i in range(w.shape[0]):
        w[i] -= lr * (grad[i] + wd * w[i])


@njit(cache=True)
def _decide(k, loss, n_epochs, record_every, tol):
    """(record?, status or -1 to continue) at epoch k with current loss."""
    if not np.isfinite(loss):
        return True, STATUS_DIVERGED
    if tol > 0.0 and loss < tol:                 # tol 0: never (a loss at rounding level may be < 0)
        return True, STATUS_CONVERGED
    if k == n_epochs:
        return True, STATUS_COMPLETED
    return k % record_every == 0, -1


@njit(parallel=True, cache=True)
def train_moments(W, sxx, syx, w_ls, loss_min, lr, wd, edges, nodes, n_units, n_epochs, record_every,
                  tol, has_pop, sigma, w_star, rec_epoch, rec_loss, rec_wtot, rec_eg, n_rec, status):
    """Train R linear nets on the moment path, one run per parallel task.

    W : (R, P) initial weights, overwritten with the final ones. sxx : (Rd, D, D),
    syx, w_ls : (Rd, out, D), loss_min, has_pop : (Rd,), sigma : (Rd, D, D),
    w_star : (Rd, out, D) with Rd in {1, R}. lr, wd : (R,). Records go to rec_*
    (R, n_max, ...); n_rec, status : (R,).
    """
    R, P = W.shape
    D = sxx.shape[1]
    n_out = syx.shape[1]
    Rd = sxx.shape[0]
    for r in prange(R):
        q = min(np.int64(r), Rd - 1)
        w = W[r]
        wt = np.empty(P)
        A = np.empty((D, n_units))
        Dl = np.empty((D, n_units))
        wtot = np.empty((n_out, D))
        oc = nodes[nodes.shape[0] - 1, 0]
        sup = support(nodes, edges, D)
        for k in range(n_epochs + 1):
            fill_transposes(w, wt, edges)
            loss = moment_forward(w, wt, edges, nodes, sup, sxx[q], syx[q], w_ls[q], loss_min[q], A, Dl)
            rec, st = _decide(k, loss, n_epochs, record_every, tol)
            if rec:
                for o in range(n_out):
                    for d in range(D):
                        wtot[o, d] = A[d, oc + o]
                _record(r, k, loss, wtot, has_pop[q], sigma[q], w_star[q],
                        rec_epoch, rec_loss, rec_wtot, rec_eg, n_rec)
            if st >= 0:
                status[r] = st
                break
            backward(w, wt, edges, nodes, sup, A, Dl, D, w, -lr[r], lr[r] * wd[r])


@njit(parallel=True, cache=True)
def train_samples(W, Xt, Yt, lr, wd, edges, nodes, n_units, slope, use_bias, loss_kind,
                  n_groups, chunk, n_threads, n_epochs, record_every, tol, has_pop, sigma, w_star,
                  rec_epoch, rec_loss, rec_wtot, rec_eg, n_rec, status):
    """Train R nets on their samples; every (run, sample group) pair is a parallel task.

    Xt : (Rd, D, n), Yt : (Rd, out, n) feature-major, Rd in {1, R}. The n samples are
    split into ``n_groups`` fixed contiguous groups (has_pop : (Rd,)); their gradients are summed in group
    order, so results do not depend on the number of threads or on R. ``n_threads``
    bounds the thread ids (per-thread scratch); pass :func:`max_threads`.
    """
    R, P = W.shape
    D, n = Xt.shape[1], Xt.shape[2]
    n_out = Yt.shape[1]
    Rd = Xt.shape[0]
    G = n_groups
    WT = np.empty((R, P))
    GG = np.empty((R * G, P))
    LL = np.empty(R * G)
    SA = np.empty((n_threads, n_units, chunk))
    SD = np.empty((n_threads, n_units, chunk))
    EA = np.empty((R, D, n_units))
    WTOT = np.empty((R, n_out, D))
    GRAD = np.empty((R, P))
    active = np.ones(R, dtype=np.bool_)
    inv_n = 1.0 / n
    sup = support(nodes, edges, D)
    for k in range(n_epochs + 1):
        for item in prange(R * G):
            r = item // G
            if not active[r]:
                continue
            q = min(np.int64(r), Rd - 1)
            grp = item % G
            t = numba.get_thread_id()
            GG[item, :] = 0.0
            start = (grp * n) // G
            stop = ((grp + 1) * n) // G
            LL[item] = sample_grad(W[r], edges, nodes, Xt[q], Yt[q], start, stop, chunk,
                                   SA[t], SD[t], GG[item], slope, use_bias, loss_kind, inv_n)
        for r in prange(R):
            if not active[r]:
                continue
            q = min(np.int64(r), Rd - 1)
            loss = 0.0
            for grp in range(G):
                loss += LL[r * G + grp]
            rec, st = _decide(k, loss, n_epochs, record_every, tol)
            if rec:
                fill_transposes(W[r], WT[r], edges)
                end_to_end(W[r], WT[r], edges, nodes, sup, EA[r], D, WTOT[r])
                _record(r, k, loss, WTOT[r], has_pop[q], sigma[q], w_star[q],
                        rec_epoch, rec_loss, rec_wtot, rec_eg, n_rec)
            if st >= 0:
                status[r] = st
                active[r] = False
                continue
            GRAD[r, :] = GG[r * G]
            for grp in range(1, G):
                GRAD[r, :] += GG[r * G + grp]
            _step(W[r], GRAD[r], lr[r], wd[r])
        any_active = False
        for r in range(R):
            any_active = any_active or active[r]
        if not any_active:
            break


@njit(cache=True)
def loss_grad_samples(w, edges, nodes, n_units, Xt, Yt, slope, use_bias, loss_kind, chunk):
    """Loss and gradient of one network on its samples (one group), for tests and tools.

    Xt : (D, n), Yt : (out, n) feature-major.
    """
    g = np.zeros(w.shape[0])
    A = np.empty((n_units, chunk))
    Dl = np.empty((n_units, chunk))
    loss = sample_grad(w, edges, nodes, Xt, Yt, 0, Xt.shape[1], chunk, A, Dl, g,
                       slope, use_bias, loss_kind, 1.0 / Xt.shape[1])
    return loss, g


@njit(cache=True)
def loss_grad_moments(w, edges, nodes, n_units, sxx, syx, w_ls, loss_min):
    """Loss and gradient of one linear network from the moments, for tests and tools."""
    D = sxx.shape[0]
    wt = np.empty(w.shape[0])
    g = np.zeros(w.shape[0])
    A = np.empty((D, n_units))
    Dl = np.empty((D, n_units))
    fill_transposes(w, wt, edges)
    sup = support(nodes, edges, D)
    loss = moment_forward(w, wt, edges, nodes, sup, sxx, syx, w_ls, loss_min, A, Dl)
    backward(w, wt, edges, nodes, sup, A, Dl, D, g, 1.0, 0.0)
    return loss, g
