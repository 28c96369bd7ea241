"""Exact gradient-descent map of a balanced aligned fusion chain with vector modalities (private).

The aligned rank-one chain of :func:`theory.dynamics.chain_map` (theory.md §6.10) with one
change: each modality's input may be a vector. Layer 1 of modality k's path is
W_1 = e_1 p_kᵀ (p_k ∈ R^{d_k}, e_1 a fixed unit hidden vector), every later layer is a
scalar times an outer product of fixed unit vectors: a_{k,l} e_l e_{l−1}ᵀ before the fusion
layer (l = 2..L_f, the last one being modality k's block of the fusion layer), c_j e_j e_{j−1}ᵀ
after it (j = L_f+1..L), so W_k^tot = C · A_k · p_kᵀ with C = Π c_j, A_k = Π_l a_{k,l}.

Gradient descent keeps this form exactly. The error signal reaching layer l is along e_l
and layer l's input along e_{l−1}, so ∂L/∂W_l ∝ e_l e_{l−1}ᵀ for l >= 2, and
∂L/∂W_1 = e_1 (∂L/∂p_k)ᵀ: the hidden directions never move, only p_k turns. With
g = Σ_yx − W^tot Σ, one step at rate η (all at the old values) is

    p_k     ← p_k + η C A_k g_k
    a_{k,l} ← a_{k,l} + η C (Π_{l'≠l} a_{k,l'}) (g_k · p_k)
    c_j     ← c_j + η (Π_{j'≠j} c_{j'}) Σ_k A_k (g_k · p_k) .

With scalar modalities it is :func:`theory.dynamics.chain_map`; at L = L_f = 2 it is the
rank-one map of two-layer late fusion (:func:`theory.dynamics.rank_one_map`). It is the
network's own gradient descent, to rounding, for ``linfusion`` nets initialised with
``init='balanced'`` and ``align`` along the start directions (any width, any sample count).

Start used here (the engine's balanced scheme): p_k = u0 d̂_k, every other pre-fusion scalar
u0, every shared scalar √K u0, with d̂_k the unit direction along which modality k grows from
a small init (Σ_yx,k, flipped when that points against the modality's eventual weights).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = []


@dataclass(frozen=True, eq=False)
class _ChainRun:
    t_cross: np.ndarray        # (K,) crossing epoch of each modality, NaN if not within the epochs run
    n_epochs: int              # epochs iterated
    diverged: bool             # W^tot became non-finite (or the loss blew up); then every crossing is NaN
    w: np.ndarray | None       # (n_epochs + 1, D) end-to-end weights per epoch, when recorded


def _others(xs):
    """For every entry the product of the other entries (no division)."""
    n = len(xs)
    if n == 0:
        return []
    if n == 1:
        return [1.0]
    return [math.prod(xs[:i]) * math.prod(xs[i + 1:]) for i in range(n)]


def vector_chain(sigma, syx, slices, depth, fuse_depth, lr, u0, directions, along, thresholds, max_epochs, *,
                 min_epochs=0, settle=0.0, extra=0, record=False, syy=None):
    """Iterate the map from the balanced start until every modality has crossed its threshold.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (D,)
    slices : list of slice
        Columns of each of the K modalities.
    depth, fuse_depth : int
        L >= 2 and 1 <= L_f <= L.
    lr : float
    u0 : float
        Per-layer scale of the balanced start.
    directions : list of ndarray of shape (d_k,)
        Unit start direction of every modality's first-layer vector.
    along : list of ndarray of shape (d_k,)
        Unit vector per modality along which its progress W_k^tot · along_k is measured.
    thresholds : ndarray of shape (K,)
        A modality has crossed when its progress rises from below its threshold to it (linearly
        interpolated between epochs, the rule of :func:`linfusion.analysis.crossing_time`);
        a threshold <= 0 is never crossed.
    max_epochs : int
        Upper bound on the epochs iterated.
    min_epochs : int
        Iterate at least this many epochs (up to ``max_epochs``), even once every modality has crossed.
    settle, extra : float, int
        Once every modality has crossed, at epoch s, go on to epoch (1 + settle)·s + extra (within
        ``max_epochs``), so that a blow-up right after the crossings is caught.
    record : bool
        Keep W^tot at every epoch.
    syy : float, optional
        ⟨y²⟩: with it, a loss above 10⁶ × ½⟨y²⟩ counts as divergence (the engine's rule), so that
        crossings made while blowing up are not reported.

    Returns
    -------
    _ChainRun
    """
    n_mod = len(slices)
    pre_len = fuse_depth - 1                      # scalars a_{k,2..L_f}
    post = [math.sqrt(n_mod) * u0] * (depth - fuse_depth)
    p = [u0 * np.asarray(d, dtype=float) for d in directions]
    a = [[u0] * pre_len for _ in range(n_mod)]
    thr = np.asarray(thresholds, dtype=float)
    t_cross = np.full(n_mod, np.nan)
    watch = [k for k in range(n_mod) if thr[k] > 0]
    prev = np.full(n_mod, np.nan)
    w = np.zeros(sigma.shape[0])
    rows = [] if record else None
    diverged = False
    limit = 1e6 * 0.5 * syy if syy is not None else np.inf
    stop_at = None
    step = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            c_all = math.prod(post)
            amp = [math.prod(row) for row in a]
            for k, s in enumerate(slices):
                w[s] = (c_all * amp[k]) * p[k]
            if record:
                rows.append(w.copy())
            prog = np.array([(c_all * amp[k]) * float(p[k] @ along[k]) for k in range(n_mod)])
            if not np.all(np.isfinite(prog)):
                diverged = True
                break
            for k in watch:
                if np.isnan(t_cross[k]) and prev[k] < thr[k] <= prog[k]:
                    t_cross[k] = (step - 1) + (thr[k] - prev[k]) / (prog[k] - prev[k])
            prev = prog
            if stop_at is None and all(not np.isnan(t_cross[k]) for k in watch):
                stop_at = max(min_epochs, math.ceil((1.0 + settle) * step) + extra)
            if step >= max_epochs or (stop_at is not None and step >= stop_at):
                break
            g = syx - w @ sigma
            if syy is not None and 0.5 * syy - 0.5 * float(w @ (syx + g)) > limit:
                diverged = True
                break
            gp = [float(g[s] @ p[k]) for k, s in enumerate(slices)]
            new_p = [p[k] + (lr * c_all * amp[k]) * g[s] for k, s in enumerate(slices)]
            a = [[x + lr * c_all * o * gp[k] for x, o in zip(a[k], _others(a[k]))] for k in range(n_mod)]
            if post:
                h = sum(amp[k] * gp[k] for k in range(n_mod))
                post = [c + lr * o * h for c, o in zip(post, _others(post))]
            p = new_p
            step += 1
    if diverged:
        t_cross[:] = np.nan
    w_rec = np.array(rows) if record else None
    return _ChainRun(t_cross=t_cross, n_epochs=step, diverged=diverged, w=w_rec)
