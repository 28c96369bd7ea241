"""Argument checks shared by every public function.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the
parameter, its value and the rule, e.g. ``fuse_depth == 5, must be <= depth (4).``
Public functions validate once at their boundary; kernels never validate.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_scalar", "check_int", "check_array", "check_choice", "check_covariance", "check_rng"]


# Most negative eigenvalue, relative to the largest |eigenvalue|, that is still rounding
# of a positive semi-definite matrix.
_PSD_TOL = 1e-12


def _fmt(value):
    if isinstance(value, float):
        return repr(value)
    return str(value)


def check_scalar(name, value, *, lo=None, hi=None, lo_open=False, hi_open=False,
                 allow_none=False):
    """Return ``value`` as a finite float inside the interval, else raise.

    Parameters
    ----------
    name : str
        Parameter name used in the message.
    value : object
        The value to check.
    lo, hi : float, optional
        Bounds; ``lo_open`` / ``hi_open`` make them strict.
    allow_none : bool
        Return ``None`` unchanged instead of raising.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} == {value!r}, must be a real number.")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} == {_fmt(v)}, must be finite.")
    if lo is not None:
        if lo_open and not v > lo:
            raise ValueError(f"{name} == {_fmt(value)}, must be > {_fmt(lo)}.")
        if not lo_open and not v >= lo:
            raise ValueError(f"{name} == {_fmt(value)}, must be >= {_fmt(lo)}.")
    if hi is not None:
        if hi_open and not v < hi:
            raise ValueError(f"{name} == {_fmt(value)}, must be < {_fmt(hi)}.")
        if not hi_open and not v <= hi:
            raise ValueError(f"{name} == {_fmt(value)}, must be <= {_fmt(hi)}.")
    return v


def check_int(name, value, *, lo=None, hi=None, hi_name=None, allow_none=False):
    """Return ``value`` as an int inside ``[lo, hi]``, else raise.

    ``hi_name`` names the bound in the message: ``fuse_depth == 5, must be <= depth (4).``
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} == {value!r}, must be an integer.")
    v = int(value)
    if lo is not None and v < lo:
        raise ValueError(f"{name} == {v}, must be >= {lo}.")
    if hi is not None and v > hi:
        bound = f"{hi_name} ({hi})" if hi_name else str(hi)
        raise ValueError(f"{name} == {v}, must be <= {bound}.")
    return v


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} == {value!r}, must be one of {listed}.")
    return value


def check_array(name, value, *, ndim=None, shape=None, finite=True, dtype=np.float64):
    """Return ``value`` as a C-contiguous array of ``dtype``, else raise.

    Integer, boolean and floating inputs are converted; complex input is refused (its
    imaginary part would be lost), as are strings and other non-numeric dtypes.

    Parameters
    ----------
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries match any length.
    finite : bool
        Reject NaN and infinity.
    """
    want_type = np.dtype(dtype).name
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:          # ragged nesting
        raise TypeError(f"{name} could not be converted to an array of {want_type}: {exc}") from None
    if raw.dtype.kind == "c":
        raise TypeError(f"{name} has complex dtype {raw.dtype}, must be real (the imaginary part would be "
                        "lost).")
    if raw.dtype.kind not in "biufO":
        raise TypeError(f"{name} could not be converted to an array of {want_type}: it has dtype "
                        f"{raw.dtype}, must hold real numbers.")
    try:
        arr = np.ascontiguousarray(raw, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be converted to an array of {want_type}: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            rule = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} has {arr.ndim} dimensions (shape {arr.shape}), must have {rule}.")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
            raise ValueError(f"{name} has shape {arr.shape}, must have shape {want}.")
    if finite and arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} has {bad} non-finite entries, must be all finite.")
    return arr


def check_rng(name, value):
    """Return ``value`` if ``np.random.default_rng`` / ``SeedSequence`` accept it as a seed, else raise.

    Accepted: None, a non-negative integer, a non-empty sequence of non-negative integers
    (entropy), a ``numpy.random.SeedSequence``, ``Generator`` or ``BitGenerator``.
    """
    rule = ("must be None, a non-negative integer (or a sequence of them), a numpy SeedSequence or a "
            "Generator.")
    if value is None or isinstance(value, (np.random.SeedSequence, np.random.Generator,
                                           np.random.BitGenerator)):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} == {value!r}, {rule}")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError(f"{name} == {value}, must be >= 0 (a seed).")
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(np.ravel(np.asarray(value, dtype=object))) if isinstance(value, np.ndarray) else list(value)
        if items and all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in items):
            if min(items) < 0:
                raise ValueError(f"{name} == {value!r}, must hold integers >= 0 (seed entropy).")
            return value
    raise TypeError(f"{name} == {value!r}, {rule}")


def check_covariance(name, value, *, dim=None, semidefinite=False):
    """Return a symmetric positive-definite (or semi-definite) matrix, else raise.

    Symmetry is checked to a relative tolerance of 1e-10; positive definiteness by a
    Cholesky factorisation. With ``semidefinite=True`` a singular matrix passes (e.g. the
    empirical second moment of fewer samples than dimensions) unless an eigenvalue lies
    below −1e-12 times the largest |eigenvalue|, which rounding cannot explain.
    """
    s = check_array(name, np.atleast_2d(value), ndim=2)
    if s.shape[0] != s.shape[1]:
        raise ValueError(f"{name} has shape {s.shape}, must be square.")
    if dim is not None and s.shape[0] != dim:
        raise ValueError(f"{name} has shape {s.shape}, must have shape ({dim}, {dim}).")
    scale = max(float(np.max(np.abs(s))), 1e-300)
    if np.max(np.abs(s - s.T)) > 1e-10 * scale:
        raise ValueError(f"{name} is not symmetric, must be a symmetric covariance matrix.")
    try:
        np.linalg.cholesky(s)                      # the common, positive-definite case
    except np.linalg.LinAlgError:
        eig = np.linalg.eigvalsh(s)
        if not semidefinite:
            raise ValueError(f"{name} has smallest eigenvalue {eig[0]:.3g}, must be positive definite.") from None
        if eig[0] < -_PSD_TOL * max(float(np.max(np.abs(eig))), 1e-300):
            raise ValueError(f"{name} has smallest eigenvalue {eig[0]:.3g}, must be positive semi-definite "
                             f"(>= -{_PSD_TOL:g} × its largest eigenvalue).") from None
    return s
