"""The sample-major forward and backward passes of the moment, feature and W_tot computations;
losses, records and the stopping rule shared by every kernel."""
import numpy as np
from numba import njit

from ._base import E_COLS, E_DST, E_OFF, E_ROWS, E_SRC, KIND_HIDDEN, KIND_INPUT, LOSS_EXP, LOSS_MSE, N_BIAS, N_COL, N_KIND, N_UNITS, STATUS_COMPLETED, STATUS_CONVERGED, STATUS_DIVERGED, STATUS_PAUSED, _AXPY_MIN, _REDUCE, _axpy, _block, _dot, _fill, _inner, _is_live, _node_row, _tiny


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


@_inner
def _scaled(sched, r):
    """Run r needs the separate update: some rate factor differs from 1, or OGM-GE is on.

    A run whose factors are all 1 keeps the fused update, so that it gives the same bits
    alone as inside a batch with mitigated runs.
    """
    if sched.scale.shape[1] == 0:
        return False
    if sched.ogm[r] != 0.0 or sched.alt_period[r] > 0 or (sched.pre_epochs[r] > 0 and sched.pre_mask.shape[1] > 0):
        return True
    for i in range(sched.scale.shape[1]):
        if sched.scale[r, i] != 1.0:
            return True
    return False


@_inner
def _gates(sched, r, k, gate):
    """gate (K,): 1 for the branches that learn at epoch k, 0 for the frozen ones (schedules).

    Pre-training: for k < pre_epochs[r] only the branches with pre_mask[r] = 1. Then, with
    alt_period[r] = T > 0, only branch ((k − pre_epochs) // T) mod K. Shared blocks always learn.
    """
    n_mod = gate.shape[0]
    pre = sched.pre_epochs[r] if sched.pre_mask.shape[1] > 0 else 0
    for j in range(n_mod):
        gate[j] = 1.0
    if k < pre:
        for j in range(n_mod):
            gate[j] = sched.pre_mask[r, j]
    elif sched.alt_period[r] > 0:
        on = ((k - pre) // sched.alt_period[r]) % n_mod
        for j in range(n_mod):
            gate[j] = 1.0 if j == on else 0.0
