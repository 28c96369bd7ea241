"""The Gram-state path: two-layer linear nets through the exact map of (W_tot, W¹ᵀW¹, W²W²ᵀ) (theory.md §6.10)."""
import numpy as np
from numba import njit

from ._passes import _decide, _first_due, _limit, _moment_loss, _record, _run_records


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


