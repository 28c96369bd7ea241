"""Private checks and small helpers shared by every module of :mod:`theory`.

Every public function validates its inputs here before any work, with messages that name
the parameter, its value and the rule (the house style of :mod:`linfusion.validation`,
which this module builds on). Also here: the numerical-rank rule for positive
semi-definite matrices (one cutoff for the whole package) and the small conversions of
results (read-only arrays, floats for 0-d results, column slices of modalities).
"""
from __future__ import annotations

import numpy as np

from linfusion.validation import check_array, check_covariance, check_int, check_scalar

# An eigenvalue of a symmetric PSD matrix below this many machine epsilons times
# D · λ_max is rounding (numpy's matrix_rank and lstsq cutoff), i.e. 0.
_EPS = np.finfo(float).eps


# ---------------------------------------------------------------------------------------
# Conversions.
# ---------------------------------------------------------------------------------------

def _slices(dims):
    """Column slice of every modality."""
    edges = np.concatenate([[0], np.cumsum(dims)])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _readonly(arr, dtype=float):
    arr = np.array(arr, dtype=dtype)
    arr.setflags(write=False)
    return arr


def _as_output(arr):
    """Float for 0-d results, the array otherwise."""
    arr = np.asarray(arr, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


# ---------------------------------------------------------------------------------------
# Numerical rank of positive semi-definite matrices.
# ---------------------------------------------------------------------------------------

def _rank_cutoff(eig):
    """Eigenvalues of a PSD matrix at or below this are 0 (eig ascending, shape (D,))."""
    return eig.shape[0] * _EPS * max(float(np.max(np.abs(eig))), 1e-300)


def _psd_solve(a, b):
    """Minimum-norm solution x of a x = b for symmetric PSD ``a`` (k, k), ``b`` (k, n).

    ``np.linalg.solve`` when ``a`` is numerically positive definite (so results on regular
    moments are unchanged), else the pseudo-inverse a⁺ b from the eigendecomposition with
    eigenvalues at or below the rank cutoff set to 0.
    """
    eig, vec = np.linalg.eigh(a)
    cut = _rank_cutoff(eig)
    if eig[0] > cut:
        return np.linalg.solve(a, b)
    keep = eig > cut
    v = vec[:, keep]
    return v @ ((v.T @ b) / eig[keep][:, None])


# ---------------------------------------------------------------------------------------
# Checks.
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


def _two_modalities(dims):
    if len(dims) != 2:
        raise ValueError(f"dims == {dims}, must list exactly 2 modalities (A, B); "
                         "use late_schedule for K > 2.")


def _check_psd(name, value, *, dim=None):
    """Return a symmetric positive semi-definite matrix (D, D), else raise."""
    return check_covariance(name, value, dim=dim, semidefinite=True)


def _require_pd(sigma, sl, why):
    """Raise unless the diagonal block sigma[sl, sl] is numerically positive definite."""
    block = sigma[sl, sl]
    eig = np.linalg.eigvalsh(block)
    if eig[0] <= _rank_cutoff(eig):
        raise ValueError(f"sigma's block Σ_A (columns {sl.start}..{sl.stop - 1}) has smallest eigenvalue "
                         f"{eig[0]:.3g}, must be positive definite: {why} needs Σ_A⁻¹ (with fewer samples "
                         "than A's input dimension, Σ_A is singular).")


def _check_moments(sigma, syx, dims, syy=None, *, out_one=False):
    """Validate (sigma, syx, dims[, syy]); return sigma (D, D), syx (out, D), dims, syy.

    Σ may be singular (positive semi-definite); Σ_yx must then lie in its range.
    """
    sigma = _check_psd("sigma", sigma)
    n_in = sigma.shape[0]
    syx = check_array("syx", syx, ndim=(1, 2))
    if syx.ndim == 1:
        syx = syx[None, :]
    if syx.shape[1] != n_in:
        raise ValueError(f"syx has shape {syx.shape}, must have {n_in} columns (the size of sigma).")
    if out_one and syx.shape[0] != 1:
        raise ValueError(f"syx has shape {syx.shape}, must have one row (scalar output).")
    dims = _check_dims(dims, n_in)
    eig, vec = np.linalg.eigh(sigma)
    null = vec[:, eig <= _rank_cutoff(eig)]
    if null.shape[1]:
        off = float(np.linalg.norm(syx @ null))
        if off > 1e-8 * max(float(np.linalg.norm(syx)), 1e-300):
            raise ValueError(f"syx has a component of norm {off:.3g} outside the range of sigma (which has "
                             f"rank {n_in - null.shape[1]} < {n_in}), must lie in it: moments of one data set "
                             "do, and otherwise the loss is unbounded below.")
    if syy is not None:
        syy = check_scalar("syy", syy, lo=0.0)
        explained = float(np.trace(syx @ _psd_solve(sigma, syx.T)))
        # Cauchy-Schwarz for any (empirical or population) moments: the loss at M_* is >= 0.
        if syy < explained - 1e-9 * max(1.0, explained):
            raise ValueError(f"syy == {syy!r}, must be >= Σyx Σ⁺ Σyxᵀ = {explained:.6g} "
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


def _check_ratio(ratio, name="ratio"):
    """σ_A/σ_B > 0 (scalar or array)."""
    return _check_reals(name, ratio, lo=0.0, lo_open=True)


def _check_w_star_toy(w_star):
    return check_array("w_star", w_star, shape=(2,))


def _check_u0(u0, *, below_one=False):
    """Initial scale u0 > 0; with ``below_one`` also < 1 (the closed forms use ln(1/u0))."""
    if below_one:
        return check_scalar("u0", u0, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    return check_scalar("u0", u0, lo=0.0, lo_open=True)


def _check_lr(lr, *, allow_none=False):
    return check_scalar("lr", lr, lo=0.0, lo_open=True, allow_none=allow_none)


def _check_wd(weight_decay):
    return check_scalar("weight_decay", weight_decay, lo=0.0)


def _check_depths(depth, fuse_depth):
    depth = check_int("depth", depth, lo=1)
    fuse_depth = check_int("fuse_depth", fuse_depth, lo=1, hi=depth, hi_name="depth")
    return depth, fuse_depth


def _check_epochs(epochs, *, integer):
    """A strictly increasing epoch grid (n,), first >= 0, last > 0; whole epochs if ``integer``."""
    epochs = check_array("epochs", epochs, ndim=1)
    if epochs.size == 0:
        raise ValueError("epochs has 0 entries, must have at least 1.")
    if epochs[0] < 0:
        raise ValueError(f"epochs[0] == {float(epochs[0])!r}, must be >= 0.")
    if epochs.size > 1 and not np.all(np.diff(epochs) > 0):
        raise ValueError("epochs is not strictly increasing, must be.")
    if epochs[-1] <= 0:
        raise ValueError(f"epochs[-1] == {float(epochs[-1])!r}, must be > 0.")
    if integer and not np.all(epochs == np.round(epochs)):
        bad = float(epochs[epochs != np.round(epochs)][0])
        raise ValueError(f"epochs contains {bad!r}, must hold whole epochs for a discrete map.")
    return epochs


def _one_init(**given):
    """The name of the one initial condition given (the others None), else raise."""
    named = [k for k, v in given.items() if v is not None]
    if len(named) != 1:
        listed = ", ".join(given)
        raise ValueError(f"exactly one initial condition must be given ({listed}); got "
                         f"{', '.join(named) if named else 'none'}.")
    return named[0]


def _check_block_scales(lr_scales, names):
    """Per-block learning-rate scales: a dict from block names (``names``) to floats > 0.

    Blocks not named keep scale 1. Returns a dict with every name of ``names``.
    """
    out = {n: 1.0 for n in names}
    if lr_scales is None:
        return out
    if not isinstance(lr_scales, dict):
        raise TypeError(f"lr_scales is a {type(lr_scales).__name__}, must be a dict from block names "
                        f"({', '.join(names)}) to positive scales.")
    for key, value in lr_scales.items():
        if key not in out:
            raise ValueError(f"lr_scales has the key {key!r}, must use only the block names "
                             f"{', '.join(repr(n) for n in names)}.")
        out[key] = check_scalar(f"lr_scales[{key!r}]", value, lo=0.0, lo_open=True)
    return out
