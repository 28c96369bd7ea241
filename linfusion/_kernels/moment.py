"""The moment path: linear nets with squared loss, trained from Σxx, Σyx, <|y|²> (theory.md §6.10)."""
import math

import numpy as np
from numba import njit

from ._base import KIND_INPUT, N_COL, N_KIND, N_UNITS, fill_transposes
from ._passes import _decide, _gates, _scaled, _first_due, _limit, _moment_loss, _record, _run_records, backward, forward


@njit(cache=True, no_cpython_wrapper=True)
def ogm_coefficients(wtot, sxx, syx, cmod, alpha, score, kap):
    """OGM-GE coefficients kap (K,) of the state W_tot (out, D) (theory.md §11; the rule of theory._modulation).

    s_k = tr(Σyx,k W_kᵀ) − ½ tr(W_k Σkk W_kᵀ); the dominant modality d (largest score, lowest
    index on ties) gets 1 − tanh(α rho), rho = s_d / mean_{j≠d} s_j, when rho > 1 (rho = inf
    when that mean is <= 0 < s_d); every other coefficient is 1; nothing when s_d <= 0.
    """
    n_mod = kap.shape[0]
    n_out, D = wtot.shape
    for k in range(n_mod):
        kap[k] = 1.0
        score[k] = 0.0
    if alpha == 0.0:
        return
    for o in range(n_out):
        for i in range(D):
            k = cmod[i]
            quad = 0.0
            for j in range(D):
                if cmod[j] == k:
                    quad += sxx[i, j] * wtot[o, j]
            score[k] += wtot[o, i] * (syx[o, i] - 0.5 * quad)
    d = 0
    for k in range(1, n_mod):
        if score[k] > score[d]:
            d = k
    if not score[d] > 0.0:
        return
    rest = 0.0
    for k in range(n_mod):
        if k != d:
            rest += score[k]
    rest /= n_mod - 1
    rho = score[d] / rest if rest > 0.0 else np.inf
    if rho > 1.0:
        kap[d] = 1.0 - math.tanh(alpha * rho)


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
    n_mod = 1
    for i in range(D):
        n_mod = max(n_mod, data.cmod[i] + 1)
    gbuf = np.zeros(P if sched.scale.shape[1] > 0 else 0)
    score = np.zeros(n_mod)
    kap = np.ones(n_mod)
    gate = np.ones(n_mod)
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
        scaled = _scaled(sched, r)              # per-parameter rates or OGM: gradient, then update
        target = rec.grad[r] if sched.grad_only else (gbuf if scaled else w)
        coef = 1.0 if sched.grad_only or scaled else -sched.lr[r]
        decay = 0.0 if sched.grad_only or scaled else sched.lr[r] * sched.wd[r]
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
            if scaled:
                for i in range(P):
                    gbuf[i] = 0.0
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
            if scaled:                          # w ← w − η s_p (κ_k g + λ w)   (κ: OGM-GE, theory.md §11)
                ogm_coefficients(wtot, sxx, data.syx[q], data.cmod, sched.ogm[r], score, kap)
                _gates(sched, r, k, gate)       # schedules: frozen branches keep their weights
                lr, wd = sched.lr[r], sched.wd[r]
                for i in range(P):
                    mk = data.pmod[i]
                    kp, on = (kap[mk], gate[mk]) if mk >= 0 else (1.0, 1.0)
                    w[i] -= lr * on * sched.scale[r, i] * (kp * gbuf[i] + wd * w[i])
            k += 1
        rec.status[r], rec.n_rec[r], rec.limit[r], rec.k[r] = st, nr, lim, k


