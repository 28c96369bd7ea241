"""Exact gradient-descent maps of two-layer linear nets: the Gram-state map and the rank-one map.

One update rule (:func:`_gram_steps`) serves :func:`gram_map` (any two-layer linear net from
its actual weights) and :func:`rank_one_map` (balanced rank-one nets, whose Gram state is
rank one). It reproduces full-batch gradient descent of the network to rounding at the
simulation's learning rate (theory.md §6.10), also with per-block learning rates and the
OGM-GE modulation (:mod:`theory.mitigation`).

Derivation. Stack a branch's weights as Z = [W¹ | W²ᵀ] (h × (d + 1)); its Gram state is
ZᵀZ = [[Q, Wᵀ], [W, N]] with Q = W¹ᵀW¹, W = W²W¹ (end-to-end) and N = W²W²ᵀ. With
G = Σ_yx − W^tot Σ restricted to the branch's inputs, one GD step with rate η1 on W¹ and η2
on W² and weight decay λ is Z ← Z P, P = [[c1 I, η2 Gᵀ], [η1 G, c2]] (c_i = 1 − η_i λ),
hence ZᵀZ ← Pᵀ (ZᵀZ) P, that is

    W ← c1c2 W + c1η2 G Q + c2η1 N G + η1η2 (G Wᵀ) G
    Q ← c1² Q + c1η1 (Gᵀ W + Wᵀ G) + η1² N Gᵀ G
    N ← c2² N + c2η2 (W Gᵀ + G Wᵀ) + η2² G Q Gᵀ

(η1 = η2 = η, c1 = c2 = c: W ← c²W + cη (N G + G Q) + η² G Wᵀ G). Early fusion may give
each modality's column block of W¹ its own rate: η1 and c1 then act per input column
(η1 G becomes G diag(η1), c1 I becomes diag(c1)). Late fusion keeps one (W_X, Q_X, N_X)
per modality, coupled only through G; early fusion keeps one. The state is closed, so
the trajectory of W^tot equals the network's whatever its width and sample count, and
whether or not Σ is singular.

Implementation: all groups at once on flat arrays, W (D,), Q (D, D) block diagonal
(zero between groups), N (K,); about 30 array operations per epoch whatever K, so an
epoch costs ~15 µs of CPU for the toy data and O(D²) for large D.
"""
from __future__ import annotations

import numpy as np

from linfusion.validation import check_array, check_choice, check_scalar

from .._checks import _check_block_scales, _check_moments, _check_u0, _check_wd, _one_init, _readonly
from .._modulation import _kappa
from ._problem import (_check_finite, _directions, _finish_map, _groups, _problem, _seed, _setup,
                       _weights)
from .records import Seed

__all__ = ["gram_map", "rank_one_map", "effective_seed"]


def effective_seed(sigma, syx, dims, w1, w2, fusion="late"):
    """Effective growing-mode seed of an actual two-layer network (theory.md §6.10).

    Near zero the update mixes a = W¹_X d̂_X (first layer along the growing input direction)
    and b = W²_Xᵀ; a + b grows and a − b shrinks, so after a short transient the net is
    rank one and balanced with ‖W_X^tot‖ = s_X(0) = ‖a(0) + b(0)‖²/4. d̂_X is the unit
    Σ_yx,X, negated when that points against the weights the modality ends up with (the
    "a − b" case of a negative initial correlation).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (1, D) or (D,)
    dims : tuple of int
    w1 : sequence of ndarray of shape (h_X, d_X) (late) or ndarray of shape (h, D) (early)
        First-layer weights.
    w2 : sequence of ndarray of shape (1, h_X) (late) or ndarray of shape (1, h) (early)
        Second-layer weights (the row block read by each modality's hidden units).
    fusion : {'late', 'early'}

    Returns
    -------
    Seed
    """
    check_choice("fusion", fusion, ("late", "early"))
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims, out_one=True)
    prob = _problem(sigma, syx, 0.0, dims)
    w1, w2 = _weights(prob, fusion, w1, w2)
    s, w_init, _ = _seed(prob, fusion, w1, w2)
    return Seed(s=_readonly(s), w_init=_readonly(w_init))


# ---------------------------------------------------------------------------------------
# The one update rule.
# ---------------------------------------------------------------------------------------

def _step_coefficients(e1, k1, e2, k2, grp):
    """The products of rates and decay factors of the update, per coordinate (D,) or group (K,).

    Returns c1c2, η2c1, η2 and c2 per coordinate; c2², 2c2η2, η2² per group.
    """
    e2d, k2d = e2[grp], k2[grp]
    return k1 * k2d, e2d * k1, e2d, k2d, k2 * k2, 2.0 * k2 * e2, e2 * e2


def _gram_steps(sigma, syx, grp, w, q, n, e1, k1, e2, k2, n_steps, kappa=None):
    """Iterate the Gram-state map; W^tot at every epoch, ndarray of shape (n_steps + 1, D).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (D,)
    grp : ndarray of int of shape (D,)
        Group (branch) of every input coordinate, 0..K−1.
    w : ndarray of shape (D,)
        Initial W^tot.
    q : ndarray of shape (D, D)
        Initial Q, block diagonal by group.
    n : ndarray of shape (K,)
        Initial N of every group.
    e1, k1 : ndarray of shape (D,)
        First-layer learning rate η1 and decay factor c1 = 1 − η1 λ of every input column.
    e2, k2 : ndarray of shape (K,)
        Second-layer learning rate η2 and decay factor c2 of every group.
    n_steps : int
    kappa : callable, optional
        W^tot (D,) -> coefficients (K,) multiplying both learning rates of every group at
        that step (the decay factors are not modulated).

    Returns
    -------
    ndarray of shape (m + 1, D)
        m = n_steps, or fewer when W^tot became non-finite (checked every 256 epochs).
    """
    n_in, n_grp = w.shape[0], n.shape[0]
    member = np.zeros((n_grp, n_in))
    member[grp, np.arange(n_in)] = 1.0
    mask = (grp[:, None] == grp[None, :]).astype(float)
    q_q = np.outer(k1, k1) * mask
    w, q, n = w.copy(), q * mask, n.copy()
    e1_now = e1
    w_w, w_gq, e2d, k2d, n_n, n_gw, n_gqg = _step_coefficients(e1, k1, e2, k2, grp)
    out = np.empty((n_steps + 1, n_in))
    out[0] = w
    with np.errstate(all="ignore"):           # a diverging run is reported by _check_finite
        for step in range(1, n_steps + 1):
            if kappa is not None:
                kap = kappa(w)
                e1_now = e1 * kap[grp]
                w_w, w_gq, e2d, k2d, n_n, n_gw, n_gqg = _step_coefficients(e1_now, k1, e2 * kap, k2, grp)
            g = syx - w @ sigma                 # G
            gt = e1_now * g                     # G diag(η1)
            gq = g @ q                          # G Q
            gw = member @ (g * w)               # G Wᵀ per group
            gqg = member @ (gq * g)             # G Q Gᵀ per group
            nd = n[grp]
            w_new = w_w * w + w_gq * gq + (e2d * gw[grp] + k2d * nd) * gt
            # c1² Q + (G̃ᵀ W c1 + c1 Wᵀ G̃) + N G̃ᵀ G̃, written as c1² Q + A + Aᵀ (Q stays symmetric)
            a = gt[:, None] * (k1 * w + 0.5 * nd * gt) * mask
            q = q_q * q + a + a.T
            n = n_n * n + n_gw * gw + n_gqg * gqg
            w = w_new
            out[step] = w
            if not step & 255 and not np.all(np.isfinite(w)):
                return out[:step + 1]
    return out


def _rates(prob, fusion, lr, lr_scales, wd):
    """(grp, e1, k1, e2, k2) of the update from the learning rate and the block scales."""
    groups = _groups(prob, fusion)
    n_mod = len(prob.dims)
    if fusion == "late":
        names = [f"W{layer}_{k}" for k in range(n_mod) for layer in (1, 2)]
    else:
        names = [f"W1_{k}" for k in range(n_mod)] + ["W2"]
    scale = _check_block_scales(lr_scales, names)
    grp = np.concatenate([np.full(g.stop - g.start, j) for j, g in enumerate(groups)]).astype(np.int64)
    e1 = np.concatenate([np.full(s.stop - s.start, lr * scale[f"W1_{k}"]) for k, s in enumerate(prob.slices)])
    if fusion == "late":
        e2 = np.array([lr * scale[f"W2_{k}"] for k in range(n_mod)])
    else:
        e2 = np.array([lr * scale["W2"]])
    return grp, e1, 1.0 - e1 * wd, e2, 1.0 - e2 * wd


def _check_alpha(ogm_alpha, fusion):
    if ogm_alpha is None:
        return None
    alpha = check_scalar("ogm_alpha", ogm_alpha, lo=0.0)
    if fusion != "late":
        raise ValueError(f"ogm_alpha == {alpha!r} with fusion == {fusion!r}, must be None: the modulation "
                         "acts on each modality's own branch, which only late fusion has.")
    return alpha


def _gram_run(prob, fusion, w0, q0, n0, wd, lr_scales, alpha, method):
    """Assemble the flat state, iterate, check and finish."""
    grp, e1, k1, e2, k2 = _rates(prob, fusion, prob.lr, lr_scales, wd)
    n_in = prob.sigma.shape[0]
    q = np.zeros((n_in, n_in))
    for g, q_g in zip(_groups(prob, fusion), q0):
        q[g, g] = q_g
    kappa = None if alpha is None else _kappa(prob.sigma, prob.syx, prob.slices, alpha)
    n_steps = int(prob.epochs[-1])
    w_all = _gram_steps(prob.sigma, prob.syx, grp, np.asarray(w0, dtype=float), q,
                        np.asarray(n0, dtype=float), e1, k1, e2, k2, n_steps, kappa)
    _check_finite(w_all, prob.lr, n_steps)
    return _finish_map(prob, w_all, method)


def gram_map(sigma, syx, syy, dims, epochs, lr, w1, w2, *, fusion="late", weight_decay=0.0,
             lr_scales=None, ogm_alpha=None, sigma_pop=None, w_star=None, crossing="norm"):
    """Exact full-batch GD of a two-layer linear net through its Gram state (theory.md §6.10).

    With G = Σ_yx − W^tot Σ, Q = W¹ᵀW¹ and N = W²W²ᵀ, one GD step maps

        W^tot ← c²W^tot + cη (N G + G Q) + η² G W^totᵀ G
        Q     ← c²Q + cη (Gᵀ W^tot + W^totᵀ G) + η² Gᵀ N G
        N     ← c²N + cη (W^tot Gᵀ + G W^totᵀ) + η² G Q Gᵀ

    with c = 1 − η λ (λ = ``weight_decay``, the gradient of ½λ‖θ‖² evaluated at the old
    weights, as in ``w ← w − η (∇L + λ w)``); per-block rates give the general form of the
    module docstring. Late fusion keeps one (W_X, Q_X, N_X) per modality, coupled only
    through G; early fusion keeps one. The trajectory equals the network's to rounding,
    whatever its width and number of samples, and whether or not Σ is singular (n < D
    samples).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Training input second moment, symmetric positive semi-definite.
    syx : ndarray of shape (1, D) or (D,)
    syy : float
    dims : tuple of int
    epochs : ndarray of shape (n,)
        Whole epochs, strictly increasing, last > 0.
    lr : float
    w1 : sequence of ndarray of shape (h_X, d_X) (late) or ndarray of shape (h, D) (early)
        Initial first-layer weights.
    w2 : sequence of ndarray of shape (1, h_X) (late) or ndarray of shape (1, h) (early)
        Initial second-layer weights.
    fusion : {'late', 'early'}
    weight_decay : float
        λ >= 0.
    lr_scales : dict, optional
        Per-block learning-rate scales (:mod:`theory.mitigation`): the rate of a block is lr times its
        scale (default 1). Keys are the block names of :meth:`linfusion.FusionNet.unpack`:
        'W1_k' (modality k's first layer) and 'W2_k' (its block of the output layer) for
        late fusion; 'W1_k' (modality k's column block of the first layer) and 'W2' for
        early fusion.
    ogm_alpha : float, optional
        α >= 0 of the OGM-GE modulation (late fusion only): at every epoch, the
        coefficient 1 − tanh(α rho) multiplies both learning rates of the dominant
        modality's branch when its score ratio rho > 1 (:func:`theory.mitigation.ogm_coefficients`;
        weight decay is not modulated). None: no modulation.
    sigma_pop, w_star : optional
        Population statistics for E_g.
    crossing : {'norm', 'projection'}

    Returns
    -------
    Trajectory

    Raises
    ------
    RuntimeError
        If W_tot becomes non-finite (lr above the stability bound).
    """
    check_choice("fusion", fusion, ("late", "early"))
    wd = _check_wd(weight_decay)
    alpha = _check_alpha(ogm_alpha, fusion)
    prob = _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing, integer_epochs=True)
    _rates(prob, fusion, prob.lr, lr_scales, wd)           # validate the scales before any work
    w1, w2 = _weights(prob, fusion, w1, w2)
    w0 = np.concatenate([b @ a for a, b in zip(w1, w2)])
    q0 = [a.T @ a for a in w1]
    n0 = [float(b @ b) for b in w2]
    return _gram_run(prob, fusion, w0, q0, n0, wd, lr_scales, alpha, "gram_map")


def rank_one_map(sigma, syx, syy, dims, epochs, lr, *, fusion="late", u0=None, w1=None, w2=None,
                 w_init=None, weight_decay=0.0, lr_scales=None, ogm_alpha=None, sigma_pop=None,
                 w_star=None, crossing="norm"):
    """Exact GD map of a balanced rank-one two-layer net (theory.md §6.10).

    W¹_X = v_X p_Xᵀ, W²_X = q_X v_Xᵀ stays rank one under GD:
    p_X ← p_X + η q_X g_Xᵀ, q_X ← q_X + η g_X·p_X, W_X = q_X p_Xᵀ (scalar inputs, p = q = u:
    u ← u (1 + η g_X), W_X = u²). Iterated here through the equivalent Gram state
    (W = q pᵀ, Q = p pᵀ, N = q²), which is the same map. Early fusion shares one (p, q).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (1, D) or (D,)
    syy : float
    dims : tuple of int
    epochs : ndarray of shape (n,)
        Whole epochs.
    lr : float
    fusion : {'late', 'early'}
    u0 : float, optional
        p_X = u0 d̂_X, q_X = u0 (‖W_X(0)‖ = u0²).
    w1, w2 : optional
        Actual two-layer weights: start from their effective seeds p = q = √s_X
        (:func:`effective_seed`). Use :func:`gram_map` for the exact trajectory of those
        weights.
    w_init : ndarray of shape (D,), optional
        Initial end-to-end weights; each block becomes a balanced rank-one mode.
    weight_decay : float
    lr_scales : dict, optional
        Per-block learning-rate scales (:mod:`theory.mitigation`): the rate of a block is lr times its
        scale (default 1). Keys are the block names of :meth:`linfusion.FusionNet.unpack`:
        'W1_k' (modality k's first layer) and 'W2_k' (its block of the output layer) for
        late fusion; 'W1_k' (modality k's column block of the first layer) and 'W2' for
        early fusion.
    ogm_alpha : float, optional
        α >= 0 of the OGM-GE modulation (late fusion only): at every epoch, the
        coefficient 1 − tanh(α rho) multiplies both learning rates of the dominant
        modality's branch when its score ratio rho > 1 (:func:`theory.mitigation.ogm_coefficients`;
        weight decay is not modulated). None: no modulation.
    sigma_pop, w_star : optional
    crossing : {'norm', 'projection'}

    Returns
    -------
    Trajectory
    """
    check_choice("fusion", fusion, ("late", "early"))
    wd = _check_wd(weight_decay)
    alpha = _check_alpha(ogm_alpha, fusion)
    prob = _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing, integer_epochs=True)
    _rates(prob, fusion, prob.lr, lr_scales, wd)
    groups = _groups(prob, fusion)
    how = _one_init(u0=u0, w1=w1 if w2 is None else w2, w_init=w_init)
    if how == "u0":
        u0 = _check_u0(u0)
        scales = [u0 * u0] * len(groups)
        dirs = _directions(prob, fusion)
    elif how == "w1":
        if w1 is None or w2 is None:
            raise ValueError("w1 and w2 must be given together.")
        s, _, dirs = _seed(prob, fusion, *_weights(prob, fusion, w1, w2))
        scales = list(s)
    else:
        w_i = check_array("w_init", np.ravel(np.asarray(w_init, dtype=float)), shape=(prob.sigma.shape[0],))
        scales = [float(np.linalg.norm(w_i[g])) for g in groups]
        if min(scales) == 0:
            raise ValueError("w_init has a zero block, must be nonzero: a zero mode never grows.")
        dirs = [w_i[g] / s_k for g, s_k in zip(groups, scales)]
    w0 = np.concatenate([s_k * d for s_k, d in zip(scales, dirs)])
    q0 = [s_k * np.outer(d, d) for s_k, d in zip(scales, dirs)]
    return _gram_run(prob, fusion, w0, q0, scales, wd, lr_scales, alpha, "rank_one_map")
