"""Measurements on training trajectories: the quantities the paper reads off its runs.

Times are in epochs (record k = weights after k updates; t/τ = lr·k). Two conventions
(THEORY.md §7):

- ``'interp'`` (recommended): the first upward crossing of a threshold, linearly
  interpolated between records; thresholds from known end points (half of A's unimodal
  weight W_A^uni, half of B's weight at M_*).
- ``'paper'``: the recorded epoch whose value is *closest* to the threshold
  (argmin |W − thr|), with B's threshold half of its trajectory maximum; misattribution
  at t_mid = ⌊(t_A + t_B)/2⌋.

By convention modality 0 is A (first learned) and modality 1 is B.
"""
from __future__ import annotations

import numpy as np

from .validation import check_array, check_choice, check_scalar

__all__ = ["modality_signal", "crossing_time", "nearest_time", "generalization_error",
           "misattribution", "measure", "balancedness"]


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


def _check_traj(epochs, values):
    epochs = check_array("epochs", epochs, ndim=1)
    values = check_array("values", values, ndim=1, finite=False)
    if epochs.shape != values.shape:
        raise ValueError(f"values has shape {values.shape}, must match epochs {epochs.shape}.")
    if epochs.size == 0:
        raise ValueError("epochs is empty, must hold at least one record.")
    return epochs, values


def crossing_time(epochs, values, threshold):
    """First upward crossing of ``threshold``, linearly interpolated between records.

    Parameters
    ----------
    epochs : ndarray of shape (n_rec,)
    values : ndarray of shape (n_rec,)
    threshold : float

    Returns
    -------
    float
        The epoch (fractional) at which ``values`` first reaches ``threshold``; the first
        record's epoch if it starts above; NaN if it never does (documented special value:
        the run was too short for this modality to be learned).
    """
    epochs, values = _check_traj(epochs, values)
    thr = check_scalar("threshold", threshold)
    above = np.flatnonzero(values >= thr)
    if above.size == 0:
        return np.nan
    i = int(above[0])
    if i == 0:
        return float(epochs[0])
    v0, v1 = values[i - 1], values[i]
    return float(epochs[i - 1] + (thr - v0) / (v1 - v0) * (epochs[i] - epochs[i - 1]))


def nearest_time(epochs, values, threshold):
    """The paper's convention: the recorded epoch whose value is closest to ``threshold``."""
    epochs, values = _check_traj(epochs, values)
    thr = check_scalar("threshold", threshold)
    return float(epochs[int(np.nanargmin(np.abs(values - thr)))])


def generalization_error(w_tot, sigma, w_star):
    """E_g = ½ Σ_o (W_tot − W*)[o] Σ (W_tot − W*)[o]ᵀ with population statistics.

    Parameters
    ----------
    w_tot : ndarray of shape (..., out_dim, D)
    sigma : ndarray of shape (D, D)
    w_star : ndarray of shape (out_dim, D)

    Returns
    -------
    ndarray of shape (...)
    """
    w_tot = np.asarray(w_tot, dtype=float)
    sigma = check_array("sigma", sigma, ndim=2)
    w_star = check_array("w_star", np.atleast_2d(w_star), ndim=2)
    if w_tot.shape[-2:] != w_star.shape:
        raise ValueError(f"w_tot has trailing shape {w_tot.shape[-2:]}, must match w_star {w_star.shape}.")
    d = w_tot - w_star
    return 0.5 * np.einsum("...od,de,...oe->...", d, sigma, d)


def misattribution(epochs, w_a, t_a, t_b, *, convention="interp"):
    """Relative over-credit of modality A on the unimodal plateau.

    (W_A(t_plateau) − W_A(t_end)) / W_A(t_end), positive when A is over-credited. On the
    toy data it equals ρ/r (THEORY.md §6.4).

    Parameters
    ----------
    epochs, w_a : ndarray of shape (n_rec,)
        A's signal (see :func:`modality_signal`).
    t_a, t_b : float
        Times at which A and B are learned.
    convention : {'interp', 'paper'}
        ``'paper'``: the record nearest t_mid = ⌊(t_A + t_B)/2⌋. ``'interp'``: the record
        between t_A and t_B where A's weight changes least (the plateau).

    Returns
    -------
    float
        NaN when t_a or t_b is NaN (a modality was not learned).
    """
    epochs, w_a = _check_traj(epochs, w_a)
    check_choice("convention", convention, ("interp", "paper"))
    if not (np.isfinite(t_a) and np.isfinite(t_b)):
        return np.nan
    end = w_a[-1]
    if convention == "paper":
        i = int(np.argmin(np.abs(epochs - np.floor(0.5 * (t_a + t_b)))))
    else:
        inside = np.flatnonzero((epochs >= t_a) & (epochs <= t_b))
        if inside.size < 3:
            i = int(np.argmin(np.abs(epochs - 0.5 * (t_a + t_b))))
        else:
            slope = np.abs(np.gradient(w_a[inside], epochs[inside]))
            i = int(inside[np.argmin(slope)])
    return float((w_a[i] - end) / end)


def measure(result, *, wa_uni=None, wb_star=None, convention="interp", relu=False):
    """t_A, t_B, time ratio and misattribution of a two-modality run.

    Parameters
    ----------
    result : TrainResult
        A run with at least two modalities (A = modality 0, B = modality 1).
    wa_uni : float, optional
        A's unimodal end-to-end weight (signal of Σyx_A Σ_A⁻¹); the A threshold is half of
        it. If None, half of A's trajectory maximum (the paper's choice at r = 1).
    wb_star : float, optional
        B's weight at M_*; ``'interp'`` uses half of it, else half of B's maximum.
    convention : {'interp', 'paper'}
    relu : bool
        Double the thresholds: a ReLU net's unpacked W_tot converges to 2× (THEORY §6.9).

    Returns
    -------
    dict
        ``t_a``, ``t_b``, ``ratio`` (t_B/t_A), ``misattribution``, ``thr_a``, ``thr_b``.
    """
    check_choice("convention", convention, ("interp", "paper"))
    if len(result.w_tot) < 2:
        raise ValueError(f"result has {len(result.w_tot)} modality, must have at least 2 for t_A and t_B.")
    ep = result.epochs.astype(float)
    sa, sb = modality_signal(result.w_tot[0]), modality_signal(result.w_tot[1])
    k = 2.0 if relu else 1.0
    thr_a = 0.5 * k * wa_uni if wa_uni is not None else 0.5 * np.nanmax(sa)
    if convention == "paper" or wb_star is None:
        thr_b = 0.5 * np.nanmax(sb)
    else:
        thr_b = 0.5 * k * wb_star
    if convention == "paper":
        t_a, t_b = nearest_time(ep, sa, thr_a), nearest_time(ep, sb, thr_b)
    else:
        t_a, t_b = crossing_time(ep, sa, thr_a), crossing_time(ep, sb, thr_b)
    ratio = t_b / t_a if (np.isfinite(t_a) and np.isfinite(t_b) and t_a > 0) else np.nan
    return dict(t_a=t_a, t_b=t_b, ratio=ratio,
                misattribution=misattribution(ep, sa, t_a, t_b, convention=convention),
                thr_a=float(thr_a), thr_b=float(thr_b))


def balancedness(net, w):
    """The conserved quantities of THEORY.md §5 for a linear net, as matrices.

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
