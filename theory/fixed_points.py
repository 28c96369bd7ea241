"""Fixed points of linear late and early fusion, their losses, and the late-fusion path.

The mathematical object is the quadratic loss of a linear map W^tot on second moments,

    L(W) = ½ syy − tr(W Σ_yxᵀ) + ½ tr(W Σ Wᵀ),   g = −∂L/∂W = Σ_yx − W Σ,

restricted to the stationary points a fusion network can sit at (THEORY.md §6.1). In late
fusion each modality X is either unlearned (W_X = 0) or at its conditional optimum
(g_X = 0), so a fixed point is named by the subset S of learned modalities:
W_S = Σ_yx,S Σ_SS⁻¹ and W_X = 0 outside S, with loss ½ syy − ½ Σ_yx,S Σ_SS⁻¹ Σ_yx,Sᵀ.
Early fusion has only M_0 (nothing learned) and M_* (everything learned).

Conventions: ``sigma`` (D, D) is the uncentred input second moment, ``syx`` (out, D) or
(D,) the input-output correlation, ``syy`` the scalar <|y|²>, and ``dims`` the input
dimension of each of the K >= 2 modalities, in the column order of ``sigma``. Modality 0
is A, the first-learned one by the toolkit's convention.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from linfusion.validation import (check_array, check_covariance, check_int, check_scalar)

__all__ = ["FixedPoint", "residual_correlation", "quadratic_loss", "generalization_error",
           "late_fixed_point", "late_fixed_points", "late_learning_path", "early_fixed_points"]


# ---------------------------------------------------------------------------------------
# Shared private helpers (also used by the other theory modules).
# ---------------------------------------------------------------------------------------

def _check_dims(dims, total=None, *, min_k=2):
    """Return ``dims`` as a tuple of positive ints (at least ``min_k``) summing to ``total``."""
    if isinstance(dims, (int, np.integer)) or not hasattr(dims, "__len__"):
        raise TypeError(f"dims == {dims!r}, must be a sequence of modality dimensions.")
    out = tuple(check_int(f"dims[{i}]", d, lo=1) for i, d in enumerate(dims))
    if len(out) < min_k:
        raise ValueError(f"dims == {out}, must list at least {min_k} modalities.")
    if total is not None and sum(out) != total:
        raise ValueError(f"dims == {out}, must sum to the input dimension of sigma ({total}).")
    return out


def _slices(dims):
    """Column slice of every modality."""
    edges = np.concatenate([[0], np.cumsum(dims)])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _check_moments(sigma, syx, dims, syy=None, *, out_one=False):
    """Validate (sigma, syx, dims[, syy]); return sigma (D, D), syx (out, D), dims, syy."""
    sigma = check_covariance("sigma", sigma)
    n_in = sigma.shape[0]
    syx = check_array("syx", syx, ndim=(1, 2))
    if syx.ndim == 1:
        syx = syx[None, :]
    if syx.shape[1] != n_in:
        raise ValueError(f"syx has shape {syx.shape}, must have {n_in} columns (the size of sigma).")
    if out_one and syx.shape[0] != 1:
        raise ValueError(f"syx has shape {syx.shape}, must have one row (scalar output).")
    dims = _check_dims(dims, n_in)
    if syy is not None:
        syy = check_scalar("syy", syy, lo=0.0)
        explained = float(np.trace(syx @ np.linalg.solve(sigma, syx.T)))
        # Cauchy-Schwarz for any (empirical or population) moments: the loss at M_* is >= 0.
        if syy < explained - 1e-9 * max(1.0, explained):
            raise ValueError(f"syy == {syy!r}, must be >= Σyx Σ⁻¹ Σyxᵀ = {explained:.6g} "
                             "(moments of one data set satisfy this).")
    return sigma, syx, dims, syy


def _check_reals(name, value, *, lo=None, hi=None, lo_open=False, hi_open=False):
    """Return ``value`` as a float array with every entry in the interval, else raise.

    The message names the first offending entry, in the style of ``check_scalar``.
    """
    arr = check_array(name, value).reshape(np.shape(value))
    ok = np.ones(arr.shape, dtype=bool)
    if lo is not None:
        ok &= (arr > lo) if lo_open else (arr >= lo)
    if hi is not None:
        ok &= (arr < hi) if hi_open else (arr <= hi)
    if not np.all(ok):
        bad = float(arr[~ok].flat[0])
        check_scalar(name, bad, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)
    return arr


def _check_rho(rho):
    """Correlation(s) with |rho| < 1."""
    return _check_reals("rho", rho, lo=-1.0, hi=1.0, lo_open=True, hi_open=True)


def _as_output(arr):
    """Float for 0-d results, the array otherwise."""
    arr = np.asarray(arr, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def _loss(sigma, syx, syy, w):
    return float(0.5 * syy - np.sum(w * syx) + 0.5 * np.sum((w @ sigma) * w))


def _subset_weights(sigma, syx, dims, learned):
    """W_S = Σyx_S Σ_SS⁻¹ on the learned columns, zero elsewhere; shape (out, D)."""
    sl = _slices(dims)
    w = np.zeros_like(syx)
    if learned:
        cols = np.concatenate([np.arange(sl[k].start, sl[k].stop) for k in learned])
        w[:, cols] = np.linalg.solve(sigma[np.ix_(cols, cols)], syx[:, cols].T).T
    return w


def _readonly(arr):
    arr = np.array(arr, dtype=float)
    arr.setflags(write=False)
    return arr


# ---------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FixedPoint:
    """A stationary point of linear (late or early) fusion.

    Attributes
    ----------
    learned : tuple of int
        Indices of the learned modalities, ascending (``()`` is M_0).
    w_tot : ndarray of shape (out, D)
        End-to-end weights W^tot at the point (read-only).
    loss : float
        L = ½ syy − ½ Σ_yx,S Σ_SS⁻¹ Σ_yx,Sᵀ.
    dims : tuple of int
        Input dimension of each modality.
    """

    learned: tuple
    w_tot: np.ndarray
    loss: float
    dims: tuple

    @property
    def name(self):
        """Paper name: ``M_0``, ``M_*`` (all learned), ``M_A``/``M_B`` for K = 2, else ``M_{0,2}``."""
        if not self.learned:
            return "M_0"
        if len(self.learned) == len(self.dims):
            return "M_*"
        if len(self.dims) == 2:
            return "M_" + "AB"[self.learned[0]]
        return "M_{" + ",".join(str(k) for k in self.learned) + "}"

    def block(self, k):
        """W^tot of modality ``k``, ndarray of shape (out, d_k)."""
        k = check_int("k", k, lo=0, hi=len(self.dims) - 1)
        return self.w_tot[:, _slices(self.dims)[k]]


def residual_correlation(sigma, syx, w_tot):
    """Residual correlation g = Σ_yx − W^tot Σ, the negative gradient of the loss.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Input second moment Σ.
    syx : ndarray of shape (out, D) or (D,)
        Input-output correlation Σ_yx.
    w_tot : ndarray of shape (out, D) or (D,)
        End-to-end weights.

    Returns
    -------
    g : ndarray of shape (out, D)
    """
    sigma = check_covariance("sigma", sigma)
    syx = np.atleast_2d(check_array("syx", syx, ndim=(1, 2)))
    w = np.atleast_2d(check_array("w_tot", w_tot, ndim=(1, 2)))
    if syx.shape[1] != sigma.shape[0] or w.shape != syx.shape:
        raise ValueError(f"w_tot has shape {w.shape} and syx {syx.shape}, "
                         f"must both be (out, {sigma.shape[0]}).")
    return syx - w @ sigma


def quadratic_loss(sigma, syx, syy, w_tot):
    """Training loss ½ syy − tr(W Σ_yxᵀ) + ½ tr(W Σ Wᵀ) of end-to-end weights.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
        <|y|²>.
    w_tot : ndarray of shape (out, D) or (D,)

    Returns
    -------
    loss : float
    """
    residual_correlation(sigma, syx, w_tot)  # validates the shapes
    syy = check_scalar("syy", syy, lo=0.0)
    return _loss(np.asarray(sigma, dtype=float), np.atleast_2d(np.asarray(syx, dtype=float)), syy,
                 np.atleast_2d(np.asarray(w_tot, dtype=float)))


def generalization_error(sigma_pop, w_star, w_tot):
    """E_g = ½ (W^tot − W*) Σ_pop (W^tot − W*)ᵀ (trace for several outputs).

    Parameters
    ----------
    sigma_pop : ndarray of shape (D, D)
        Population input second moment.
    w_star : ndarray of shape (out, D) or (D,)
        Teacher weights W*.
    w_tot : ndarray of shape (out, D) or (D,)

    Returns
    -------
    e_g : float
    """
    sigma_pop = check_covariance("sigma_pop", sigma_pop)
    w_star = np.atleast_2d(check_array("w_star", w_star, ndim=(1, 2)))
    w = np.atleast_2d(check_array("w_tot", w_tot, ndim=(1, 2)))
    if w.shape != w_star.shape or w.shape[1] != sigma_pop.shape[0]:
        raise ValueError(f"w_tot has shape {w.shape} and w_star {w_star.shape}, "
                         f"must both be (out, {sigma_pop.shape[0]}).")
    d = w - w_star
    return float(0.5 * np.sum((d @ sigma_pop) * d))


def late_fixed_point(sigma, syx, syy, dims, learned):
    """The late-fusion fixed point with the given modalities learned.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Input second moment Σ (symmetric positive definite).
    syx : ndarray of shape (out, D) or (D,)
        Input-output correlation Σ_yx.
    syy : float
        <|y|²>.
    dims : tuple of int
        Input dimension of each modality (K >= 2), summing to D.
    learned : sequence of int
        Learned modalities S; W_S = Σ_yx,S Σ_SS⁻¹ and the other blocks are 0.

    Returns
    -------
    FixedPoint
    """
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    learned = _check_learned(learned, len(dims))
    return _fixed_point(sigma, syx, syy, dims, learned)


def _check_learned(learned, n_mod):
    if isinstance(learned, (int, np.integer)):
        learned = (learned,)
    out = tuple(sorted(check_int("learned", k, lo=0, hi=n_mod - 1, hi_name="K - 1") for k in learned))
    if len(set(out)) != len(out):
        raise ValueError(f"learned == {out}, must not repeat a modality.")
    return out


def _fixed_point(sigma, syx, syy, dims, learned):
    w = _subset_weights(sigma, syx, dims, learned)
    return FixedPoint(learned=tuple(learned), w_tot=_readonly(w), loss=_loss(sigma, syx, syy, w),
                      dims=tuple(dims))


def late_fixed_points(sigma, syx, syy, dims):
    """All 2^K fixed points of linear late fusion.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
    dims : tuple of int
        K >= 2 modality dimensions.

    Returns
    -------
    points : tuple of FixedPoint
        Ordered by the number of learned modalities, then lexicographically: for K = 2,
        (M_0, M_A, M_B, M_*).
    """
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    n_mod = len(dims)
    return tuple(_fixed_point(sigma, syx, syy, dims, s)
                 for size in range(n_mod + 1) for s in combinations(range(n_mod), size))


def _greedy_path(sigma, syx, syy, dims):
    sl = _slices(dims)
    learned = []
    path = [_fixed_point(sigma, syx, syy, dims, ())]
    while len(learned) < len(dims):
        g = syx - path[-1].w_tot @ sigma
        rest = [k for k in range(len(dims)) if k not in learned]
        norms = [np.linalg.norm(g[:, sl[k]]) for k in rest]
        learned.append(rest[int(np.argmax(norms))])  # ties go to the lower index
        path.append(_fixed_point(sigma, syx, syy, dims, tuple(sorted(learned))))
    return tuple(path), tuple(learned)


def late_learning_path(sigma, syx, syy, dims):
    """Sequence of fixed points visited by late fusion from a small init (greedy order).

    At each stage, with the set S learned and the network at M_S, the next modality is the
    unlearned X with the largest residual correlation ‖Σ_yx,X − W_S Σ_S,X‖ (Frobenius norm),
    the rate at which its mode grows there. Ties go to the lower index. For K = 2 this is
    M_0 → M_A → M_* with A the modality with the larger ‖Σ_yx,X‖.

    This is the greedy rule; :func:`theory.two_layer.late_schedule` orders modalities by
    matching log-growth over the whole history instead, which can differ for K >= 3 (a
    modality that grew fast early may be learned before one with a larger current residual).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
    dims : tuple of int

    Returns
    -------
    path : tuple of FixedPoint
        K + 1 points, from M_0 to M_*; ``path[j + 1].learned`` adds one modality to
        ``path[j].learned``.
    """
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    return _greedy_path(sigma, syx, syy, dims)[0]


def early_fixed_points(sigma, syx, syy, dims):
    """The two fixed points of linear early fusion, M_0 and M_* (THEORY.md §6.2).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
    dims : tuple of int

    Returns
    -------
    (m_0, m_star) : tuple of FixedPoint
    """
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    return (_fixed_point(sigma, syx, syy, dims, ()),
            _fixed_point(sigma, syx, syy, dims, tuple(range(len(dims)))))
