"""Measurements on training trajectories: the quantities the paper reads off its runs.

Times are in epochs (record k = weights after k updates; t/τ = lr·k). Two conventions
(theory.md §7):

- ``'interp'`` (the toolkit's default): :func:`crossing_time`, the first upward crossing
  of a threshold, linearly interpolated between records; thresholds from known end
  points (half of A's unimodal weight W_A^uni = Σyx_A Σ_A⁻¹, half of B's weight at M_*);
  misattribution on the plateau, where A's weight changes least between t_A and t_B.
- ``'paper'``: the original code's convention, exactly (:func:`nearest_time`). The
  original records, at loop index i, the weights after i + 1 updates, and its
  ``time_half`` returns the index i whose weight is nearest the threshold; B's threshold
  is half of B's largest recorded weight. Its misattribution reads A's weight at index
  ⌊(t_A + t_B)/2⌋, i.e. after ⌊(t_A + t_B)/2⌋ + 1 updates, against the last record.

"Never" is NaN everywhere: a modality whose weight never crosses its threshold upward was
not learned in the run, and its time (and every ratio built on it) is NaN, in both
conventions. By convention modality 0 is A (first learned) and modality 1 is B.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from .data import Dataset, Moments, _solve_rows
from .validation import check_array, check_choice, check_scalar

__all__ = ["modality_signal", "crossing_time", "nearest_time", "generalization_error",
           "measured_misattribution", "targets", "measure", "Measurement", "balancedness"]


def modality_signal(w_tot_k):
    """One number per record for a modality's end-to-end weights.

    Parameters
    ----------
    w_tot_k : ndarray of shape (n_rec, out_dim, d_k)

    Returns
    -------
    ndarray of shape (n_rec,)
        The signed weight for a scalar path (out_dim = d_k = 1), else its Frobenius norm.
    """
    w = np.asarray(w_tot_k, dtype=float)
    if w.ndim != 3:
        raise ValueError(f"w_tot_k has {w.ndim} dimensions (shape {w.shape}), must have 3 (n_rec, out_dim, d_k).")
    if w.shape[1] == 1 and w.shape[2] == 1:
        return w[:, 0, 0].copy()
    return np.sqrt(np.sum(w * w, axis=(1, 2)))


def _signal_of(block):
    """:func:`modality_signal` of one (out_dim, d_k) matrix."""
    return float(modality_signal(np.asarray(block, dtype=float)[None])[0])


def _check_traj(epochs, values):
    epochs = check_array("epochs", epochs, ndim=1)
    values = check_array("values", values, ndim=1, finite=False)
    if epochs.shape != values.shape:
        raise ValueError(f"values has shape {values.shape}, must match epochs {epochs.shape}.")
    if epochs.size == 0:
        raise ValueError("epochs is empty, must hold at least one record.")
    if epochs.size > 1 and not np.all(np.diff(epochs) > 0):
        raise ValueError("epochs is not strictly increasing, must be the epochs of successive records.")
    return epochs, values


def crossing_time(epochs, values, threshold):
    """First upward crossing of ``threshold``, linearly interpolated between records.

    Parameters
    ----------
    epochs : ndarray of shape (n_rec,)
        Strictly increasing.
    values : ndarray of shape (n_rec,)
        The curve (non-finite values never count as crossings).
    threshold : float

    Returns
    -------
    float
        The first t with values[k − 1] < threshold <= values[k], interpolated between
        epochs[k − 1] and epochs[k]; NaN if the curve never crosses upward (in particular
        a curve that starts at or above the threshold and stays there: nothing was
        learned within the run).
    """
    epochs, values = _check_traj(epochs, values)
    thr = check_scalar("threshold", threshold)
    v0, v1 = values[:-1], values[1:]
    hit = np.flatnonzero(np.isfinite(v0) & np.isfinite(v1) & (v0 < thr) & (v1 >= thr))
    if hit.size == 0:
        return np.nan
    k = int(hit[0])
    a, b = values[k], values[k + 1]
    return float(epochs[k] + (thr - a) / (b - a) * (epochs[k + 1] - epochs[k]))


def nearest_time(epochs, values, threshold):
    """The paper's time convention: exactly the original code's ``time_half`` index.

    The original stores, at index i, the weights after i + 1 updates and returns the first
    index i whose value is nearest ``threshold`` (argmin |W[i] − thr|). With records
    k = weights after k updates this is (the first argmin over records with k >= 1) − 1.

    Parameters
    ----------
    epochs : ndarray of shape (n_rec,)
        Strictly increasing epochs of the records (record k = weights after epochs[k] updates).
    values : ndarray of shape (n_rec,)
    threshold : float

    Returns
    -------
    float
        epochs[k*] − 1 for the nearest record k* with epochs[k*] >= 1; NaN if there is none
        with a finite value.
    """
    epochs, values = _check_traj(epochs, values)
    thr = check_scalar("threshold", threshold)
    after = np.flatnonzero(epochs >= 1)
    dist = np.abs(values[after] - thr)
    if not np.any(np.isfinite(dist)):
        return np.nan
    return float(epochs[after[int(np.nanargmin(dist))]] - 1)


def generalization_error(w_tot, sigma, w_star):
    """E_g = ½ Σ_o (W_tot − W*)[o] Σ (W_tot − W*)[o]ᵀ with population statistics.

    Parameters
    ----------
    w_tot : ndarray of shape (..., out_dim, D)
    sigma : ndarray of shape (D, D)
        Population input second moment (``Dataset.sigma``).
    w_star : ndarray of shape (out_dim, D)

    Returns
    -------
    ndarray of shape (...)
    """
    w_tot = check_array("w_tot", w_tot, finite=False)
    sigma = check_array("sigma", sigma, ndim=2)
    w_star = check_array("w_star", np.atleast_2d(w_star), ndim=2)
    if sigma.shape[0] != sigma.shape[1] or sigma.shape[0] != w_star.shape[1]:
        raise ValueError(f"sigma has shape {sigma.shape}, must have shape ({w_star.shape[1]}, {w_star.shape[1]}) "
                         f"to match w_star {w_star.shape}.")
    if w_tot.ndim < 2 or w_tot.shape[-2:] != w_star.shape:
        raise ValueError(f"w_tot has trailing shape {w_tot.shape[-2:]}, must match w_star {w_star.shape}.")
    d = w_tot - w_star
    return 0.5 * np.einsum("...od,de,...oe->...", d, sigma, d)


def _check_time(name, t):
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real):
        raise TypeError(f"{name} == {t!r}, must be a real number (NaN: not learned).")
    return float(t)


def measured_misattribution(epochs, w_a, t_a, t_b, *, convention="interp"):
    """Relative over-credit of modality A on the unimodal plateau, read off a trajectory.

    (W_A(t_plateau) − W_A(end)) / W_A(end), positive when A is over-credited. On the toy
    data it equals ρ/r (theory.md §6.4); ``theory.predicted_misattribution`` is the closed
    form.

    Parameters
    ----------
    epochs, w_a : ndarray of shape (n_rec,)
        A's signal (see :func:`modality_signal`).
    t_a, t_b : float
        Times at which A and B are learned, in ``convention``.
    convention : {'interp', 'paper'}
        ``'paper'``: the record after ⌊(t_A + t_B)/2⌋ + 1 updates (the original's index
        ⌊(t_A + t_B)/2⌋), or the nearest one. ``'interp'``: the record between t_A and t_B
        where A's weight changes least (the plateau).

    Returns
    -------
    float
        NaN when t_a or t_b is NaN (a modality was not learned) or A's final weight is 0.
    """
    epochs, w_a = _check_traj(epochs, w_a)
    check_choice("convention", convention, ("interp", "paper"))
    t_a, t_b = _check_time("t_a", t_a), _check_time("t_b", t_b)
    end = w_a[-1]
    if not (np.isfinite(t_a) and np.isfinite(t_b)) or not np.isfinite(end) or end == 0.0:
        return np.nan
    if convention == "paper":
        i = int(np.argmin(np.abs(epochs - (math.floor(0.5 * (t_a + t_b)) + 1))))
    else:
        inside = np.flatnonzero((epochs >= t_a) & (epochs <= t_b))
        if inside.size < 3:
            i = int(np.argmin(np.abs(epochs - 0.5 * (t_a + t_b))))
        else:
            slope = np.abs(np.gradient(w_a[inside], epochs[inside]))
            i = int(inside[np.argmin(slope)])
    return float((w_a[i] - end) / end)


def targets(data, in_dims=None):
    """A's unimodal weight and B's weight at M_*, as signals, from a data set's moments.

    W_A^uni = Σyx_A Σ_A⁺ (the unimodal plateau M_A of late fusion) and B's block of the
    least-squares solution W_ls = Σyx Σxx⁺ (M_*), both minimum-norm, each reduced to one
    number by :func:`modality_signal` (the signed weight of a scalar path, else the
    Frobenius norm). Modality 0 is A, modality 1 is B.

    Parameters
    ----------
    data : Dataset or Moments
    in_dims : tuple of int, optional
        Modality dimensions; required for Moments (a Dataset knows its own).

    Returns
    -------
    wa_uni, wb_star : float
    """
    if isinstance(data, Dataset):
        in_dims, mo = data.in_dims, data.moments()
    elif isinstance(data, Moments):
        if in_dims is None:
            raise ValueError("in_dims == None, must be given with Moments (they do not know the modalities).")
        mo = data
        in_dims = tuple(int(d) for d in in_dims)
        if sum(in_dims) != mo.sxx.shape[0]:
            raise ValueError(f"in_dims == {in_dims}, must sum to D = {mo.sxx.shape[0]} of the moments.")
    else:
        raise TypeError(f"data is a {type(data).__name__}, must be a Dataset or Moments.")
    if len(in_dims) < 2:
        raise ValueError(f"data has {len(in_dims)} modality, must have at least 2 for A and B.")
    edges = np.cumsum((0,) + tuple(in_dims))
    a, b = slice(edges[0], edges[1]), slice(edges[1], edges[2])
    wa_uni = _solve_rows(mo.sxx[a, a], mo.syx[:, a])
    w_ls = _solve_rows(mo.sxx, mo.syx)
    return _signal_of(wa_uni), _signal_of(w_ls[:, b])


_FIELDS = ("t_a", "t_b", "ratio", "misattribution", "thr_a", "thr_b", "reason")


@dataclass(frozen=True)
class Measurement(Mapping):
    """What :func:`measure` read off a run: a frozen record that is also a read-only mapping.

    ``m.t_a`` and ``m["t_a"]`` are the same; ``dict(m)`` gives a plain dict (a sweep row).

    Attributes
    ----------
    t_a, t_b : float
        Epochs at which A and B are learned (convention of the call); NaN: not learned.
    ratio : float
        t_B / t_A; NaN when either is NaN or t_A = 0.
    misattribution : float
        :func:`measured_misattribution`; NaN when undefined.
    thr_a, thr_b : float
        The thresholds on the signals of A and B (NaN for an unusable run).
    reason : str
        Empty when every number is defined; else why the first NaN is NaN (e.g. the run
        diverged, or B never crossed its threshold).
    """

    t_a: float
    t_b: float
    ratio: float
    misattribution: float
    thr_a: float
    thr_b: float
    reason: str = ""

    def __getitem__(self, key):
        if key in _FIELDS:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return iter(_FIELDS)

    def __len__(self):
        return len(_FIELDS)

    @property
    def ok(self):
        """True when every number is defined (``reason`` is empty)."""
        return not self.reason


assert tuple(f.name for f in fields(Measurement)) == _FIELDS


def _check_target(name, value):
    if value is None or (isinstance(value, str) and value == "max"):
        return value
    if isinstance(value, str):
        raise ValueError(f"{name} == {value!r}, must be a number, 'max' or None.")
    return check_scalar(name, value)


def measure(result, data=None, *, wa_uni=None, wb_star=None, convention="interp", relu=None):
    """t_A, t_B, time ratio and misattribution of a two-modality run.

    Thresholds are half the end points each modality is learning towards: by default
    derived from the data the run trained on (``data``, else ``result.moments``; see
    :func:`targets`): half of A's unimodal weight Σyx_A Σ_A⁻¹ and, for ``'interp'``, half
    of B's weight at M_* = Σyx Σxx⁺; ReLU nets double both (their unpacked W_tot converges
    to about twice the linear weight, theory.md §6.9). In the ``'paper'`` convention B's
    threshold is half of B's largest recorded weight, as in the original.

    Parameters
    ----------
    result : TrainResult
        A run with at least two modalities (A = modality 0, B = modality 1).
    data : Dataset or Moments, optional
        What the run trained on; default ``result.moments`` (present for moment-path runs).
        Only needed when a threshold is derived.
    wa_uni : float, 'max' or None
        A's target signal (the threshold is half of it, doubled for ReLU); ``'max'``: half
        of A's largest recorded weight (the original's choice at σ_A = σ_B); None: from the
        data.
    wb_star : float, 'max' or None
        B's target signal, likewise (``'interp'`` only; ``'paper'`` always uses 'max').
    convention : {'interp', 'paper'}
    relu : bool, optional
        Double numeric targets; default: the net is a ReLU net (slope 0).

    Returns
    -------
    Measurement
        A frozen record and read-only mapping with ``t_a``, ``t_b``, ``ratio``,
        ``misattribution``, ``thr_a``, ``thr_b`` and ``reason``. For a run that is not
        usable (diverged or stalled) every number is NaN and ``reason`` says why; no
        exception.

    Notes
    -----
    For a scalar path whose target is negative the crossing is that of −W (the weight
    grows towards a negative target). A target of 0 (e.g. a modality with zero variance)
    means nothing to learn: its time is NaN.
    """
    from .training import TrainResult

    if not isinstance(result, TrainResult):
        raise TypeError(f"result is a {type(result).__name__}, must be a TrainResult.")
    check_choice("convention", convention, ("interp", "paper"))
    if relu is not None and not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu == {relu!r}, must be True, False or None.")
    wa_uni, wb_star = _check_target("wa_uni", wa_uni), _check_target("wb_star", wb_star)
    if len(result.w_tot) < 2:
        raise ValueError(f"result has {len(result.w_tot)} modality, must have at least 2 for t_A and t_B.")
    net = result.net
    if data is not None:
        if not isinstance(data, (Dataset, Moments)):
            raise TypeError(f"data is a {type(data).__name__}, must be a Dataset or Moments (or None).")
        D = data.in_dim
        if D != net.in_dim or (isinstance(data, Dataset) and data.in_dims != net.in_dims):
            got = data.in_dims if isinstance(data, Dataset) else (D,)
            raise ValueError(f"data has input dimensions {got}, must match the run's net.in_dims {net.in_dims}.")
    nan = np.nan
    if not result.usable:
        return Measurement(nan, nan, nan, nan, nan, nan, f"the run {result.status}: {result.message}")
    if convention == "paper":
        wb_star = "max"
    src = data if data is not None else result.moments
    if (wa_uni is None or wb_star is None) and src is None:
        raise ValueError("data == None and result.moments is None (a sample-path run, or one loaded from a "
                         "cache), must pass data (what the run trained on) or explicit wa_uni and wb_star.")
    derived = targets(src, net.in_dims) if (wa_uni is None or wb_star is None) else (None, None)
    factor = 2.0 if (net.slope == 0.0 if relu is None else bool(relu)) else 1.0
    ep = result.epochs.astype(float)
    after = ep >= 1 if convention == "paper" else np.ones(ep.shape, dtype=bool)
    sigs = (modality_signal(result.w_tot[0]), modality_signal(result.w_tot[1]))
    times, thrs, reasons = [], [], []
    for name, sig, target, der in (("A", sigs[0], wa_uni, derived[0]), ("B", sigs[1], wb_star, derived[1])):
        if target == "max":
            finite = sig[after & np.isfinite(sig)]
            thr = 0.5 * float(finite.max()) if finite.size else nan
        else:
            thr = 0.5 * factor * (der if target is None else target)
        thrs.append(thr)
        if not np.isfinite(thr) or thr == 0.0:
            times.append(nan)
            reasons.append(f"modality {name} has nothing to learn (its target weight is 0)" if thr == 0.0
                           else f"modality {name} has no finite weight to set its threshold")
            continue
        s, t_thr = (sig, thr) if thr > 0 else (-sig, -thr)
        t = crossing_time(ep, s, t_thr)
        if np.isfinite(t) and convention == "paper":
            t = nearest_time(ep, s, t_thr)
        if not np.isfinite(t):
            reasons.append(f"modality {name} never crossed its threshold {thr:.4g} upward (not learned in the run)")
        times.append(t)
    t_a, t_b = times
    ratio = nan
    if np.isfinite(t_a) and np.isfinite(t_b):
        if t_a > 0:
            ratio = t_b / t_a
        else:
            reasons.append("t_A = 0, so the ratio t_B/t_A is undefined")
    mis = measured_misattribution(ep, sigs[0], t_a, t_b, convention=convention)
    if not np.isfinite(mis) and not reasons:
        reasons.append("A's final weight is 0 or not finite, so the misattribution is undefined")
    return Measurement(float(t_a), float(t_b), float(ratio), float(mis), float(thrs[0]), float(thrs[1]),
                       "; ".join(reasons))


def balancedness(net, w):
    """The conserved quantities of theory.md §5 for a linear net, as matrices.

    For consecutive layers on a path, W_{l+1}ᵀW_{l+1} − W_l W_lᵀ; at the fusion interface
    W_{L_f+1}ᵀW_{L_f+1} − Σ_k F_k F_kᵀ; per modality before fusion F_kᵀF_k − W_k W_kᵀ.

    Parameters
    ----------
    net : FusionNet
    w : ndarray of shape (n_params,)

    Returns
    -------
    list of ndarray
        One square matrix per interface; all zero for an exactly balanced net.
    """
    w = net._check_w(w)
    out = []
    L, Lf = net.depth, net.fuse_depth
    for k in range(net.n_modalities):
        for layer in range(1, Lf):
            lo = net.blocks(w, modality=k, layer=layer)[0]
            hi = net.blocks(w, modality=k, layer=layer + 1)[0]
            out.append(hi.T @ hi - lo @ lo.T)
    if Lf < L:
        nxt = net.blocks(w, modality=-1, layer=Lf + 1)[0]
        out.append(nxt.T @ nxt - sum(f @ f.T for f in net.blocks(w, layer=Lf)))
    for layer in range(Lf + 1, L):
        lo = net.blocks(w, modality=-1, layer=layer)[0]
        hi = net.blocks(w, modality=-1, layer=layer + 1)[0]
        out.append(hi.T @ hi - lo @ lo.T)
    return out
