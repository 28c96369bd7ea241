"""The feature-moment path: late-fusion leaky-ReLU nets with scalar modalities (theory.md §6.11)."""
import numpy as np
from numba import njit

from ._base import N_COL, fill_transposes
from ._passes import _decide, _first_due, _limit, _record, _run_records, backward, end_to_end, forward


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


