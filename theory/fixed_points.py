"""Fixed points of linear late and early fusion, their losses, and the late-fusion path.

The mathematical object is the quadratic loss of a linear map W^tot on second moments,

    L(W) = ½ syy − tr(W Σ_yxᵀ) + ½ tr(W Σ Wᵀ),   g = −∂L/∂W = Σ_yx − W Σ,

restricted to the stationary points a fusion network can sit at (theory.md §6.1). In late
fusion each modality X is either unlearned (W_X = 0) or at its conditional optimum
(g_X = 0), so a fixed point is named by the subset S of learned modalities:
W_S = Σ_yx,S Σ_SS⁻¹ and W_X = 0 outside S, with loss ½ syy − ½ Σ_yx,S Σ_SS⁻¹ Σ_yx,Sᵀ
(Σ_SS⁺ for a singular block, below). Early fusion has only M_0 (nothing learned) and M_* (everything learned).

Singular Σ (theory.md §6.8, over-parameterised data: n < D samples give an empirical Σ of
rank n). Σ must be symmetric positive *semi*-definite. The loss is then flat along the null
space of Σ_SS, so the points with g_S = 0 form an affine space
{Σ_yx,S Σ_SS⁺ + V : V Σ_SS = 0}; every function here returns its minimum-norm point
W_S = Σ_yx,S Σ_SS⁺ (the least-squares solution; Σ⁺ is the pseudo-inverse, eigenvalues below
D · eps · λ_max count as 0), and the loss is the same on the whole set. Gradient descent of
early fusion from a small init converges to that minimum-norm M_*: every update lies in the
row space of Σ. Late fusion does not: it first fits the data with A alone and B then
interpolates what is left, ending at another point of the set (the permanent unimodal bias
of §6.8). Moments of one data set always have Σ_yx in the range of Σ; moments that do not
(the loss unbounded below, no fixed point with g_S = 0) are rejected. Formulas that need an
inverse (the time ratio and misattribution, with Σ_A⁻¹) still require the block they
invert to be positive definite.

Conventions: ``sigma`` (D, D) is the uncentred input second moment, ``syx`` (out, D) or
(D,) the input-output correlation, ``syy`` the scalar <|y|²>, and ``dims`` the input
dimension of each of the K >= 2 modalities, in the column order of ``sigma``. Modality 0
is A, the first-learned one by the toolkit's convention.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from linfusion.validation import check_array, check_int, check_scalar

from ._checks import _check_moments, _check_psd, _psd_solve, _readonly, _slices

__all__ = ["FixedPoint", "residual_correlation", "quadratic_loss", "late_fixed_point",
           "late_fixed_points", "late_learning_path", "early_fixed_points"]


def _loss(sigma, syx, syy, w):
    return float(0.5 * syy - np.sum(w * syx) + 0.5 * np.sum((w @ sigma) * w))


def _subset_weights(sigma, syx, dims, learned):
    """W_S = Σyx_S Σ_SS⁺ on the learned columns, zero elsewhere; shape (out, D).

    Σ_SS⁺ = Σ_SS⁻¹ when Σ_SS is positive definite; otherwise W_S is the minimum-norm
    solution of W_S Σ_SS = Σyx_S.
    """
    sl = _slices(dims)
    w = np.zeros_like(syx)
    if learned:
        cols = np.concatenate([np.arange(sl[k].start, sl[k].stop) for k in learned])
        w[:, cols] = _psd_solve(sigma[np.ix_(cols, cols)], syx[:, cols].T).T
    return w


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
        L = ½ syy − ½ Σ_yx,S Σ_SS⁺ Σ_yx,Sᵀ (Σ_SS⁺ = Σ_SS⁻¹ unless the block is singular).
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
    sigma = _check_psd("sigma", sigma)
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


def late_fixed_point(sigma, syx, syy, dims, learned):
    """The late-fusion fixed point with the given modalities learned.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Input second moment Σ, symmetric positive semi-definite (singular when there are
        fewer samples than inputs).
    syx : ndarray of shape (out, D) or (D,)
        Input-output correlation Σ_yx (in the range of Σ).
    syy : float
        <|y|²>.
    dims : tuple of int
        Input dimension of each modality (K >= 2), summing to D.
    learned : sequence of int
        Learned modalities S; W_S = Σ_yx,S Σ_SS⁻¹ and the other blocks are 0. When Σ_SS is
        singular the fixed points of S form an affine space and its minimum-norm point
        Σ_yx,S Σ_SS⁺ is returned (module docstring).

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
    """The two fixed points of linear early fusion, M_0 and M_* (theory.md §6.2).

    For a singular Σ (fewer samples than inputs, theory.md §6.8) the global minima form the
    affine space {W : W Σ = Σ_yx} and M_* is its minimum-norm point Σ_yx Σ⁺, the one that
    gradient descent of early fusion reaches from a small init (its updates stay in the row
    space of Σ). Late fusion from a small init ends at another point of that space, with
    more weight on the first-learned modality: the permanent unimodal bias.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Symmetric positive semi-definite.
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
