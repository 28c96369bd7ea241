"""Exact gradient-descent maps of aligned rank-one fusion chains: one scalar per layer.

A depth-L linear fusion net whose layers are W_l = a_l v_l v_{l−1}ᵀ with aligned unit
vectors (the 'balanced' initialisation of :meth:`linfusion.FusionNet.init`, or any width-1
net) stays aligned under gradient descent when every modality is one scalar input, and
reduces to its layer scalars (theory.md §6.10). :func:`chain_map` iterates one chain and
returns its :class:`Trajectory`; :func:`chain_map_many` iterates many chains at once and
keeps only their crossing epochs. Both run the same update rule (:func:`_chain_states`),
with one learning rate per layer scalar when ``lr_scales`` is given.

Crossing rule (as :func:`linfusion.analysis.crossing_time`): the first epoch at which the
modality's quantity rises from below its threshold to it, linearly interpolated from the
epoch before; NaN if it never does (starting at or above it is no crossing), or if the
threshold is 0.
"""
from __future__ import annotations

import math

import numpy as np

from linfusion.validation import check_array, check_choice, check_int

from .._checks import (_check_block_scales, _check_depths, _check_lr, _check_moments, _check_u0, _one_init,
                       _readonly)
from ._problem import _chain_setup, _check_finite, _finish_map, _growing_direction, _targets
from .records import ChainCrossings

__all__ = ["chain_map", "chain_map_many"]


# The aligned rank-one chain map: one update rule for one chain or a batch of chains.
#
# The state is a list per modality of its pre-fusion scalars and a list of the shared
# scalars. Every entry is a Python float (one chain, chain_map) or an ndarray of shape (R,)
# (R chains, chain_map_many); the moments are floats (shared) or (R,) arrays (per chain).
# The rule uses only + − ×, so the same code runs on both, with the same rounding: a chain
# of a batch follows chain_map's trajectory bit for bit. (Python floats are ~5× faster
# than numpy arrays of one element, which matters for the 10⁴-10⁵ epochs of one chain.)

def _prod(xs):
    """x_0 · x_1 · …, left to right; 1.0 for no factor."""
    if not xs:
        return 1.0
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _others(xs):
    """For every entry, the product of the other entries: no division, exact at zeros.

    Entry l is (x_0 ⋯ x_{l−1}) · (x_{n−1} ⋯ x_{l+1}), from a prefix and a suffix product.
    """
    n = len(xs)
    if n == 1:
        return [1.0]
    left = [xs[0]]                      # left[i] = x_0 ⋯ x_i
    for x in xs[1:-1]:
        left.append(left[-1] * x)
    right = [xs[-1]]                    # right[i] = x_{n−1} ⋯ x_{n−1−i}
    for x in xs[-2:0:-1]:
        right.append(right[-1] * x)
    return [right[n - 2]] + [left[l - 1] * right[n - 2 - l] for l in range(1, n - 1)] + [left[n - 2]]


def _chain_states(pre, post, cols, syx, lr_pre, lr_post, n_steps):
    """Iterate the chain map; yield (step, W, pre, post) at steps 0..n_steps.

    One GD step adds η_a g_X ∂W_X/∂a to every scalar a, all at the old values, with
    W_X = Π post · Π pre_X and g = Σ_yx − W Σ:

        pre_X,l ← pre_X,l + η_X,l g_X (Π post) Π_{l' ≠ l} pre_X,l'
        post_j  ← post_j  + η_j (Σ_X g_X Π pre_X) Π_{j' ≠ j} post_j'

    ``cols[j][i]`` is Σ_ij (column j of Σ), ``syx[j]`` is Σ_yx,j; ``lr_pre[X][l]`` and
    ``lr_post[j]`` are the learning rates of the scalars (floats). The consumer stops early
    by breaking out of the loop.
    """
    rng = range(len(pre))
    for step in range(n_steps + 1):
        c_all = _prod(post)
        p = [_prod(row) for row in pre]
        w = [c_all * p_k for p_k in p]
        yield step, w, pre, post
        if step == n_steps:
            return
        g = [s_j - _dot(w, col) for s_j, col in zip(syx, cols)]
        if post:
            h = _dot(g, p)
            post = [c + (e * h) * o for c, e, o in zip(post, lr_post, _others(post))]
        pre = [[a + (e * f) * o for a, e, o in zip(pre[k], lr_pre[k], _others(pre[k]))] for k, f in
               zip(rng, [g_k * c_all for g_k in g])]


def _dot(xs, ys):
    out = xs[0] * ys[0]
    for x, y in zip(xs[1:], ys[1:]):
        out = out + x * y
    return out


def _layer_rates(lr, lr_scales, n_mod, l_f, depth):
    """Learning rate of every chain scalar: (per modality a list over layers 1..L_f, shared list)."""
    names = [f"W{l}_{k}" for k in range(n_mod) for l in range(1, l_f + 1)]
    names += [f"W{l}" for l in range(l_f + 1, depth + 1)]
    scale = _check_block_scales(lr_scales, names)
    pre = [[lr * scale[f"W{l}_{k}"] for l in range(1, l_f + 1)] for k in range(n_mod)]
    post = [lr * scale[f"W{l}"] for l in range(l_f + 1, depth + 1)]
    return pre, post


def chain_map(sigma, syx, syy, depth, fuse_depth, epochs, lr, *, u0=None, layer_scales=None,
              lr_scales=None, sigma_pop=None, w_star=None, crossing="norm"):
    """Exact GD map of an aligned rank-one depth-L fusion chain, one scalar per layer (§6.10).

    Layers W_l = a_l v_l v_{l−1}ᵀ with aligned unit vectors reduce to scalars: per modality X
    the pre-fusion layers a_{X,1..L_f} (a_{X,L_f} is X's block of the fusion layer), then the
    shared layers c_{L_f+1..L}; W_X = Π c · Π_l a_{X,l}. One GD step on the loss adds
    η g_X ∂W_X/∂a to every scalar (all evaluated at the old values). Scalar inputs. The
    update is the one of :func:`chain_map_many`, which runs many chains at once and returns
    only their crossing epochs; a chain there follows this trajectory exactly.

    Parameters
    ----------
    sigma : ndarray of shape (K, K)
        Input second moment of K >= 2 scalar modalities (positive semi-definite).
    syx : ndarray of shape (1, K) or (K,)
    syy : float
    depth : int
        L >= 1.
    fuse_depth : int
        1 <= L_f <= L.
    epochs : ndarray of shape (n,)
        Whole epochs.
    lr : float
    u0 : float, optional
        Balanced start: every pre-fusion scalar u0 (the first one carries the sign of the
        modality's eventual weight), every shared scalar √K u0.
    layer_scales : tuple (pre, post), optional
        pre : ndarray of shape (K, L_f), post : ndarray of shape (L − L_f,). Used as given
        (signs included).
    lr_scales : dict, optional
        Per-layer learning-rate scales (the rate of a scalar is lr times its scale, default
        1), keyed by the block names of :meth:`linfusion.FusionNet.unpack`: 'W{l}_{k}' for
        modality k's layer l <= L_f (its encoder layers and its block of the fusion layer),
        'W{l}' for a shared layer l > L_f.
    sigma_pop, w_star : optional
    crossing : {'norm', 'projection'}

    Returns
    -------
    Trajectory

    Raises
    ------
    RuntimeError
        If W_tot becomes non-finite (lr above the stability bound).
    """
    big_l, l_f, prob, signs = _chain_setup(sigma, syx, syy, depth, fuse_depth, epochs, lr, sigma_pop,
                                           w_star, crossing, True)
    n_mod, m = len(prob.dims), big_l - l_f
    how = _one_init(u0=u0, layer_scales=layer_scales)
    if how == "u0":
        u0 = _check_u0(u0)
        pre = [[float(signs[k]) * u0] + [u0] * (l_f - 1) for k in range(n_mod)]
        post = [math.sqrt(n_mod) * u0] * m
    else:
        if not isinstance(layer_scales, (tuple, list)) or len(layer_scales) != 2:
            raise ValueError("layer_scales must be a pair (pre, post).")
        pre = check_array("layer_scales[0] (pre)", layer_scales[0], shape=(n_mod, l_f)).tolist()
        post = check_array("layer_scales[1] (post)", np.ravel(np.asarray(layer_scales[1], dtype=float)),
                           shape=(m,)).tolist()
    lr_pre, lr_post = _layer_rates(prob.lr, lr_scales, n_mod, l_f, big_l)
    n_steps = int(prob.epochs[-1])
    rec_w, rec_s = [], []
    for step, w, pre_s, post_s in _chain_states(pre, post, prob.sigma.T.tolist(), prob.syx.tolist(),
                                                lr_pre, lr_post, n_steps):
        rec_w.append(w)
        rec_s.append([x for row in pre_s for x in row] + post_s)
        if not step & 255 and not all(map(math.isfinite, w)):
            break
    out = np.array(rec_w)
    scales = np.array(rec_s).reshape(len(rec_s), n_mod * l_f + m)
    _check_finite(out, prob.lr, n_steps)
    return _finish_map(prob, out, "chain_map", scales=scales)


def _batch(name, value, item_ndim, item_shape=None):
    """``value`` as a float array with one leading batch axis (size 1 if unbatched)."""
    arr = check_array(name, value)
    shape = arr.shape
    if arr.ndim == item_ndim:
        arr = arr[None]
    if arr.ndim != item_ndim + 1:
        raise ValueError(f"{name} has shape {shape}, must have {item_ndim} or {item_ndim + 1} "
                         "dimensions (one chain, or a leading axis of chains).")
    if item_shape is not None and arr.shape[1:] != tuple(item_shape):
        raise ValueError(f"{name} has shape {shape}, must be {tuple(item_shape)} or "
                         f"(R, {', '.join(str(d) for d in item_shape)}).")
    return arr


def _n_chains(**sizes):
    sizes = {k: v for k, v in sizes.items() if v != 1}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"the batch sizes ({listed}) must agree (or be 1, shared by every chain).")
    return next(iter(sizes.values()), 1)


def chain_map_many(sigma, syx, depth, fuse_depth, lr, max_epochs, *, u0=None, layer_scales=None,
                   lr_scales=None, thresholds=None, crossing="norm", stop=None):
    """Crossing epochs of many aligned rank-one chains under GD at rate lr (theory.md §6.10).

    The map of :func:`chain_map`, iterated for R chains at once (each with its own
    moments or sharing one, its own initial scalars), stopping when every chain has crossed
    (``stop``). A chain of the batch follows :func:`chain_map`'s trajectory bit for bit;
    only the crossing epochs are kept, so a sweep of hundreds of chains over 10⁵ epochs runs
    in seconds and little memory.

    Parameters
    ----------
    sigma : ndarray of shape (K, K) or (R, K, K)
        Input second moment of K >= 2 scalar modalities, shared or per chain (positive
        semi-definite).
    syx : ndarray of shape (K,) or (R, K)
        Input-output correlation, shared or per chain.
    depth : int
        L >= 1.
    fuse_depth : int
        1 <= L_f <= L.
    lr : float
    max_epochs : int
        Upper bound on the epochs iterated.
    u0 : float or ndarray of shape (R,), optional
        Balanced start per chain, as in :func:`chain_map` (the first pre-fusion scalar
        carries the sign of the modality's eventual weight).
    layer_scales : tuple (pre, post), optional
        pre : ndarray of shape (K, L_f) or (R, K, L_f); post : ndarray of shape (L − L_f,)
        or (R, L − L_f). Used as given (signs included).
    lr_scales : dict, optional
        Per-layer learning-rate scales shared by every chain, as in :func:`chain_map`.
    thresholds : ndarray of shape (K,) or (R, K), optional
        Threshold of every modality. Default: half its value at the fixed point where late
        fusion learns it, from each chain's moments (as :func:`chain_map`).
    crossing : {'norm', 'projection'}
        Compare |W_X|, or W_X times the sign of the modality's eventual weight.
    stop : int, optional
        Stop once every chain has crossed modality ``stop`` (or diverged). Default: once
        every chain has crossed every modality with a positive threshold.

    Returns
    -------
    ChainCrossings
    """
    check_choice("crossing", crossing, ("norm", "projection"))
    big_l, l_f = _check_depths(depth, fuse_depth)
    lr = _check_lr(lr)
    max_epochs = check_int("max_epochs", max_epochs, lo=0)
    m = big_l - l_f
    sig = _batch("sigma", sigma, 2)
    n_mod = sig.shape[1]
    if n_mod < 2 or sig.shape[2] != n_mod:
        raise ValueError(f"sigma has shape {np.shape(sigma)}, must be (K, K) or (R, K, K) with K >= 2: "
                         "the scalar chain has one scalar input per modality.")
    sy = _batch("syx", syx, 1, (n_mod,))
    if stop is not None:
        stop = check_int("stop", stop, lo=0, hi=n_mod - 1, hi_name="K - 1")
    how = _one_init(u0=u0, layer_scales=layer_scales)
    lr_pre, lr_post = _layer_rates(lr, lr_scales, n_mod, l_f, big_l)
    if how == "u0":
        u0s = check_array("u0", np.atleast_1d(np.asarray(u0, dtype=float)), ndim=1)
        if np.any(u0s <= 0):
            _check_u0(float(u0s[u0s <= 0][0]))
        pre0 = post0 = None
        n_init = u0s.shape[0]
    else:
        if not isinstance(layer_scales, (tuple, list)) or len(layer_scales) != 2:
            raise ValueError("layer_scales must be a pair (pre, post).")
        pre0 = _batch("layer_scales[0] (pre)", layer_scales[0], 2, (n_mod, l_f))
        post0 = _batch("layer_scales[1] (post)", layer_scales[1], 1, (m,))
        n_init = _n_chains(pre=pre0.shape[0], post=post0.shape[0])
    thr = None if thresholds is None else _batch("thresholds", thresholds, 1, (n_mod,))
    n = _n_chains(sigma=sig.shape[0], syx=sy.shape[0], initial_condition=n_init,
                  thresholds=1 if thr is None else thr.shape[0])

    # Per set of moments: validation, default thresholds, sign of the eventual weights.
    n_mom = max(sig.shape[0], sy.shape[0])
    sig_b = np.broadcast_to(sig, (n_mom, n_mod, n_mod))
    sy_b = np.broadcast_to(sy, (n_mom, n_mod))
    dims = (1,) * n_mod
    half = np.empty((n_mom, n_mod))
    signs = np.empty((n_mom, n_mod))
    for r in range(n_mom):
        s_r, y_r, _, _ = _check_moments(sig_b[r], sy_b[r], dims, out_one=True)
        targets, _ = _targets(s_r, y_r, dims)
        half[r] = [0.5 * np.linalg.norm(t) for t in targets]
        signs[r] = [_growing_direction(y_r[0, k:k + 1], targets[k])[0] for k in range(n_mod)]
    thr = np.broadcast_to(half if thr is None else thr, (n, n_mod)).astype(float)
    signs = np.broadcast_to(signs, (n, n_mod))
    if how == "u0":
        u0s = np.broadcast_to(u0s, (n,))
        pre0 = np.empty((n, n_mod, l_f))
        pre0[:] = u0s[:, None, None]
        pre0[:, :, 0] *= signs
        post0 = np.broadcast_to(math.sqrt(n_mod) * u0s[:, None], (n, m))
    pre = [[np.array(np.broadcast_to(pre0[:, k, l], (n,))) for l in range(l_f)] for k in range(n_mod)]
    post = [np.array(np.broadcast_to(post0[:, j], (n,))) for j in range(m)]

    def entry(a):
        # a shared moment stays a float: cheaper, and broadcasts against the (R,) state
        return float(a[0]) if a.shape[0] == 1 else np.ascontiguousarray(a)
    cols = [[entry(sig[:, i, j]) for i in range(n_mod)] for j in range(n_mod)]
    syx_ = [entry(sy[:, j]) for j in range(n_mod)]

    watch = [stop] if stop is not None else list(range(n_mod))
    t = [np.full(n, np.nan) for _ in range(n_mod)]
    thr_k = [np.ascontiguousarray(thr[:, k]) for k in range(n_mod)]
    pos_k = [x > 0 for x in thr_k]                # as chain_map: no crossing of a threshold <= 0
    sgn_k = [np.ascontiguousarray(signs[:, k]) for k in range(n_mod)]
    diverged = np.zeros(n, dtype=bool)

    def still_open():
        # chains that have a watched modality left to cross, and have not diverged
        out = np.zeros(n, dtype=bool)
        for k in watch:
            out |= pos_k[k] & np.isnan(t[k])
        return out & ~diverged

    open_ = still_open()
    prev = [None] * n_mod
    step = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for step, w, _, _ in _chain_states(pre, post, cols, syx_, lr_pre, lr_post, max_epochs):
            for k in range(n_mod):
                q = np.abs(w[k]) if crossing == "norm" else w[k] * sgn_k[k]
                if prev[k] is not None:             # starting at or above the threshold is no crossing
                    hit = (q >= thr_k[k]) & (prev[k] < thr_k[k])
                    if hit.any():
                        hit &= pos_k[k] & np.isnan(t[k]) & np.isfinite(q)    # an overflow is no crossing
                        q0 = prev[k][hit]
                        t[k][hit] = (step - 1) + (thr_k[k][hit] - q0) / (q[hit] - q0)
                        open_ = still_open()
                prev[k] = q
            if not step & 255:
                diverged |= ~np.all(np.isfinite(w), axis=0)
                open_ = still_open()
            if not open_.any():
                break
    diverged |= ~np.all(np.isfinite(w), axis=0)
    t_cross = np.stack(t, axis=1)
    return ChainCrossings(t_cross=_readonly(t_cross), thresholds=_readonly(thr),
                          diverged=_readonly(diverged, dtype=bool), n_epochs=int(step))
