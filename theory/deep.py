"""Deep and intermediate fusion: the balanced scalar chain's closed-form times (theory.md §6.6).

The mathematical object is the phase-1 integral and phase-2 lag of the balanced rank-one
("scalar chain") reduction of a depth-L linear fusion network with fusion layer L_f:
pre-fusion layers of modality X have scale u_X, post-fusion layers scale v with
v² = u_A² + u_B², and W_X^tot = v^{L−L_f} u_X^{L_f}. From u_A = u_B = u0:

    t_A/τ = I = ∫_{u0}^{1} du / [w_A u^{L_f−1} (u² + u_B(u)²)^{(L−L_f)/2}]
    L_f = 2: (t_B − t_A)/τ = (1 − k) ln(1/u0) (1 + ρ/r)^{L_f/L−1} / (1 − ρ²)
    L_f > 2: (t_B − t_A)/τ = (1 − k) u0^{2−L_f} (1 + ρ/r)^{L_f/L−1} / ((L_f − 2)(1 − ρ²))
    t_B/t_A = 1 + [(t_B − t_A)/τ] / I

with w_A = r² + ρr, w_B = 1 + ρr (signed), k = w_B/w_A, and u_B(u) the phase-1 orbit
(L_f = 2: u0^{1−k} u^k; L_f > 2: (k u^{2−L_f} + (1−k) u0^{2−L_f})^{1/(2−L_f)};
L_f = 1: u0 + k(u − u0)). Limits: L_f = 1 (early fusion) has ratio exactly 1 and no lag;
L_f = L (late fusion) has the depth- and u0-independent ratio 1 + (r² − 1)/(1 − ρ²) with
t_A/τ = ln(1/u0)/w_A (L = 2) or u0^{2−L}/((L − 2) w_A) (L > 2).

Status: leading order / heuristic (cut at u_A = 1, O(1) terms dropped, abrupt phase 2);
against the balanced chain 3-12 % high at u0 = 0.1 (the most at |ρ| = 0.9) and 0.3-2.3 %
at u0 = 0.03 (theory.md §6.6). The ODE that these
formulas approximate is :func:`theory.dynamics.chain_flow`.

Toy functions take scalars or arrays for ``ratio``, ``rho`` and ``u0`` (broadcast together)
and return floats or arrays of the broadcast shape; ``depth`` and ``fuse_depth`` are ints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion.validation import check_choice

from ._checks import (_as_output, _check_depths, _check_lr, _check_moments, _check_reals, _check_rho,
                      _check_u0, _slices, _two_modalities)
from .two_layer import _ratio_parts

__all__ = ["DeepTimes", "deep_t_a", "deep_lag", "deep_time_ratio", "deep_times",
           "deep_time_ratio_vector", "deep_times_vector"]


@dataclass(frozen=True)
class DeepTimes:
    """Scalar-chain times of depth-L fusion at layer L_f (floats, or arrays when vectorised).

    Attributes
    ----------
    t_a_tau : float or ndarray
        t_A/τ = I.
    lag_tau : float or ndarray
        (t_B − t_A)/τ.
    t_b_tau : float or ndarray
        t_B/τ = I · ratio.
    ratio : float or ndarray
        t_B/t_A.
    lr : float
        Learning rate (τ = 1/lr epochs); NaN when not given.
    t_a, t_b : float or ndarray
        The times in epochs; NaN without ``lr``.
    """

    t_a_tau: object
    lag_tau: object
    t_b_tau: object
    ratio: object
    lr: float
    t_a: object
    t_b: object


def _chain(depth, fuse_depth, w_a, w_b, w_uni, res, u0):
    """(I, lag, ratio) of the scalar chain for one setting; w_b is signed."""
    big_l, l_f = depth, fuse_depth
    k = w_b / w_a
    if l_f == big_l:
        # Late fusion: closed form. The lag's leading term pairs with I's leading term so
        # that 1 + lag/I is exactly 1 + (w_A − w_B)/res for every depth and u0.
        if big_l == 2:
            i_a = np.log(1.0 / u0) / w_a
            lag = (1.0 - k) * np.log(1.0 / u0) / res
        else:
            i_a = u0 ** (2 - big_l) / ((big_l - 2) * w_a)
            lag = (1.0 - k) * u0 ** (2 - big_l) / ((big_l - 2) * res)
        return i_a, lag, 1.0 + (w_a - w_b) / res
    if l_f == 1:
        def u_b(u):
            return u0 + k * (u - u0)
    elif l_f == 2:
        def u_b(u):
            return u0 ** (1.0 - k) * u ** k
    else:
        def u_b(u):
            return (k * u ** (2 - l_f) + (1.0 - k) * u0 ** (2 - l_f)) ** (1.0 / (2 - l_f))
    half = (big_l - l_f) / 2.0
    from scipy.integrate import quad     # here, not at import: `import theory` loads no integrator

    def integrand(s):
        # u = e^s: the integrand spans many decades in u when u0 is small, few in s.
        u = np.exp(s)
        return u / (w_a * u ** (l_f - 1) * (u * u + u_b(u) ** 2) ** half)

    i_a, err, *info = quad(integrand, np.log(u0), 0.0, limit=200, full_output=1)
    if not np.isfinite(i_a) or (len(info) > 1 and err > 1e-8 * abs(i_a)):
        raise RuntimeError(f"quad failed on the t_A integral (depth={big_l}, fuse_depth={l_f}, "
                           f"u0={float(u0)!r}): {info[-1] if info else 'non-finite value'}")
    if l_f == 1:
        return i_a, 0.0, 1.0
    c = w_uni ** (l_f / big_l - 1.0) / res
    if l_f == 2:
        lag = (1.0 - k) * c * np.log(1.0 / u0)
    else:
        lag = (1.0 - k) * c * u0 ** (2 - l_f) / (l_f - 2)
    return i_a, lag, 1.0 + lag / i_a


def _toy_grid(depth, fuse_depth, ratio, rho, u0):
    """Validate and broadcast; return (depth, fuse_depth, r, rho, u0, I, lag, ratio) arrays."""
    depth, fuse_depth = _check_depths(depth, fuse_depth)
    r = _check_reals("ratio", ratio, lo=0.0, lo_open=True)
    rho = _check_rho(rho)
    u0 = _check_reals("u0", u0, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    r, rho, u0 = np.broadcast_arrays(r, rho, u0)
    w_a = r * r + rho * r
    w_b = 1.0 + rho * r
    bad = np.abs(w_b) > w_a * (1.0 + 1e-12)
    if np.any(bad):
        i = np.flatnonzero(bad)[0]
        raise ValueError(f"ratio == {float(r.flat[i])!r} with rho == {float(rho.flat[i])!r} gives Σyx_A = "
                         f"{w_a.flat[i]:.6g} < |Σyx_B| = {abs(w_b.flat[i]):.6g}; modality A must be "
                         "learned first (ratio >= 1): swap A and B.")
    out = np.empty((3,) + r.shape)
    for idx in np.ndindex(r.shape):
        out[(slice(None),) + idx] = _chain(depth, fuse_depth, w_a[idx], w_b[idx],
                                           1.0 + rho[idx] / r[idx], 1.0 - rho[idx] ** 2, u0[idx])
    return out


def deep_t_a(depth, fuse_depth, ratio, rho, u0):
    """Theoretical t_A/τ = I of the balanced scalar chain (toy data, σ_B = 1).

    Parameters
    ----------
    depth : int
        Total depth L >= 1.
    fuse_depth : int
        Fusion layer L_f, 1 <= L_f <= L.
    ratio : float or ndarray
        r = σ_A/σ_B; A must be learned first (r >= 1).
    rho : float or ndarray
        |rho| < 1.
    u0 : float or ndarray
        Initial per-modality scale of the chain, 0 < u0 < 1 (deep "init").

    Returns
    -------
    t_a_tau : float or ndarray of the broadcast shape
        The integral I (closed form u0^{2−L}/((L−2) w_A) at L_f = L > 2, ln(1/u0)/w_A at
        L_f = L = 2).
    """
    return _as_output(_toy_grid(depth, fuse_depth, ratio, rho, u0)[0])


def deep_lag(depth, fuse_depth, ratio, rho, u0):
    """Phase-2 lag (t_B − t_A)/τ of the balanced scalar chain (toy data); 0 for L_f = 1.

    Parameters
    ----------
    depth : int
    fuse_depth : int
    ratio : float or ndarray
    rho : float or ndarray
    u0 : float or ndarray

    Returns
    -------
    lag_tau : float or ndarray of the broadcast shape
    """
    return _as_output(_toy_grid(depth, fuse_depth, ratio, rho, u0)[1])


def deep_time_ratio(depth, fuse_depth, ratio, rho, u0):
    """Time ratio t_B/t_A of depth-L fusion at layer L_f (toy data, signed statistics).

    Reproduces the deep tables of theory.md §8 (e.g. L = 4, r = 2, ρ = 0, u0 = 0.1:
    4.000, 1.748, 1.213, 1 for L_f = 4, 3, 2, 1). Exactly 1 for L_f = 1 and
    1 + (r² − 1)/(1 − ρ²) for L_f = L, whatever the depth and u0.

    Parameters
    ----------
    depth : int
        Total depth L >= 1.
    fuse_depth : int
        Fusion layer, 1 <= L_f <= L.
    ratio : float or ndarray
        r = σ_A/σ_B >= 1 (A first).
    rho : float or ndarray
        |rho| < 1.
    u0 : float or ndarray
        0 < u0 < 1.

    Returns
    -------
    ratio : float or ndarray of the broadcast shape
    """
    return _as_output(_toy_grid(depth, fuse_depth, ratio, rho, u0)[2])


def deep_times(depth, fuse_depth, ratio, rho, u0, lr=None):
    """t_A, lag, t_B and their ratio for the scalar chain (toy data), in τ and epochs.

    Parameters
    ----------
    depth : int
    fuse_depth : int
    ratio : float or ndarray
    rho : float or ndarray
    u0 : float or ndarray
    lr : float, optional
        Learning rate, for times in epochs.

    Returns
    -------
    DeepTimes
    """
    lr = _check_lr(lr, allow_none=True)
    i_a, lag, ratio_ = _toy_grid(depth, fuse_depth, ratio, rho, u0)
    return _times_record(i_a, lag, ratio_, lr)


def _times_record(i_a, lag, ratio, lr):
    t_b = i_a * ratio
    lr = np.nan if lr is None else lr
    return DeepTimes(t_a_tau=_as_output(i_a), lag_tau=_as_output(lag), t_b_tau=_as_output(t_b),
                     ratio=_as_output(ratio), lr=lr, t_a=_as_output(i_a / lr), t_b=_as_output(t_b / lr))


def _vector_parts(depth, fuse_depth, sigma, syx, dims, u0, form):
    check_choice("form", form, ("signed", "norm"))
    depth, fuse_depth = _check_depths(depth, fuse_depth)
    u0 = _check_u0(u0, below_one=True)
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims)
    _two_modalities(dims)
    n_a, signed_b, n_res = _ratio_parts(sigma, syx, dims, form)
    if n_a == 0.0:
        raise ValueError("syx has ‖Σyx_A‖ == 0, must be > 0: nothing is ever learned.")
    sl_a = _slices(dims)[0]
    w_uni = float(np.linalg.norm(np.linalg.solve(sigma[sl_a, sl_a], syx[:, sl_a].T)))
    return _chain(depth, fuse_depth, n_a, signed_b, w_uni, n_res, u0)


def deep_time_ratio_vector(depth, fuse_depth, sigma, syx, dims, u0, form="signed"):
    """Scalar-chain time ratio for general inputs (theory.md §6.6 "Vector version"; heuristic).

    Replaces w_A, w_B by ‖Σ_yx,A‖ and B's signed strength (see
    :func:`theory.two_layer.time_ratio`), (1 + ρ/r) by ‖W_A^uni‖ = ‖Σ_yx,A Σ_A⁻¹‖ and
    (1 − ρ²) by ‖Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB‖. On toy moments it equals
    :func:`deep_time_ratio`; at L_f = L it equals the two-layer :func:`time_ratio`.

    Parameters
    ----------
    depth : int
    fuse_depth : int
    sigma : ndarray of shape (D, D)
        Positive semi-definite, with Σ_A positive definite (inverted).
    syx : ndarray of shape (out, D) or (D,)
    dims : tuple of 2 ints
        (d_A, d_B) with ‖Σ_yx,A‖ >= ‖Σ_yx,B‖.
    u0 : float
        0 < u0 < 1.
    form : {'signed', 'norm'}

    Returns
    -------
    ratio : float
    """
    return float(_vector_parts(depth, fuse_depth, sigma, syx, dims, u0, form)[2])


def deep_times_vector(depth, fuse_depth, sigma, syx, dims, u0, lr=None, form="signed"):
    """t_A, lag, t_B and ratio of the scalar chain for general inputs (heuristic).

    Parameters
    ----------
    depth : int
    fuse_depth : int
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    dims : tuple of 2 ints
    u0 : float
    lr : float, optional
    form : {'signed', 'norm'}

    Returns
    -------
    DeepTimes
    """
    lr = _check_lr(lr, allow_none=True)
    i_a, lag, ratio = _vector_parts(depth, fuse_depth, sigma, syx, dims, u0, form)
    return _times_record(i_a, lag, ratio, lr)
