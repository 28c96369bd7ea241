"""Mitigations of unimodal bias in linear fusion: what each remedy does to the dynamics.

Per-block learning rates, OGM-GE gradient modulation, expected modality dropout and
unimodal auxiliary losses, for linear late fusion (two-layer, toy and general statistics)
and the deep scalar chain. Three kinds of result, each with its status:

**Exact maps** (:mod:`theory.dynamics`, at the run's learning rate; exact: they equal the
network's gradient descent to rounding).
:func:`theory.dynamics.gram_map` and :func:`theory.dynamics.rank_one_map` take
``lr_scales`` (rate η1 = lr·s on W¹_k and η2 = lr·s' on W²_k, per modality branch; the
closed map is W ← c1c2 W + c1η2 G Q + c2η1 N G + η1η2 (G Wᵀ) G,
Q ← c1² Q + c1η1 (GᵀW + WᵀG) + η1² N GᵀG, N ← c2² N + c2η2 (W Gᵀ + G Wᵀ) + η2² G Q Gᵀ
with c_i = 1 − η_i λ, derived in :mod:`theory.dynamics.maps`) and ``ogm_alpha`` (the
coefficient :func:`ogm_coefficients` of the current state multiplies both rates of the
dominant branch at every step). :func:`theory.dynamics.chain_map` and
:func:`theory.dynamics.chain_map_many` take per-layer ``lr_scales`` (deep fusion).

**Modified moments** (exact for linear nets). Expected modality dropout and unimodal
auxiliary losses change only the second moments the loss sees, so every result of the
package applies to them unchanged: :func:`dropout_moments` and :func:`auxiliary_moments`
return (Σ', Σ_yx', syy'); then ``late_fixed_points(Σ', Σ_yx', syy', dims)`` are the fixed
points (exact), ``gram_map(Σ', Σ_yx', syy', ...)`` the exact expected-dropout or
auxiliary-loss run, ``time_ratio(Σ', Σ_yx', dims)`` and ``late_schedule(...)`` the
leading-order times; :func:`auxiliary_schedule` is that schedule for auxiliary losses.

**Closed forms** (leading order in 1/ln(1/u0), gradient-flow time, like
:func:`theory.two_layer.time_ratio`; heuristic for vector modalities). In the balanced
rank-one picture a branch whose two layers learn at η1 = m1·lr and η2 = m2·lr grows like
exp(2 √(m1 m2) ‖g‖ t/τ) (the growing eigenvalue of [[0, η1 g], [η2 g, 0]]), so a
modality's growth rate scales with its effective rate m = √(m1 m2)
(:func:`effective_lr_scales`). With κ = m_B/m_A and A learned first,

    t_B/t_A = 1 + (‖Σ_yx,A‖ − κ s_B) / (κ ‖Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB‖)

(s_B as in :func:`theory.two_layer.time_ratio`; :func:`time_ratio_lrs`, any order and K
through :func:`late_schedule_lrs`), and the unimodal phase disappears (t_A = t_B) at
κ* = ‖Σ_yx,A‖ / ‖Σ_yx,B‖ (:func:`equalising_lr_ratio`). Only simulation answers for
stochastic dropout (its fluctuations), the Gaussian enhancement noise of OGM-GE, ReLU
networks, and the OGM-modulated times (the maps give them exactly, no closed form here).
"""
from __future__ import annotations

import numpy as np

from linfusion import mitigation as _engine_mitigation
from linfusion.validation import check_array, check_choice, check_int, check_scalar

from ._checks import (_check_block_scales, _check_dims, _check_lr, _check_moments, _check_u0, _readonly,
                      _slices, _two_modalities)
from ._modulation import _coefficients, _scores
from .two_layer import _ratio_parts, _schedule, _schedule_record

__all__ = ["ogm_scores", "ogm_coefficients", "effective_lr_scales", "late_schedule_lrs", "time_ratio_lrs",
           "equalising_lr_ratio", "dropout_moments", "auxiliary_moments", "auxiliary_schedule"]


# ---------------------------------------------------------------------------------------
# OGM-GE modulation.
# ---------------------------------------------------------------------------------------

def ogm_scores(sigma, syx, dims, w_tot):
    """Each modality's OGM score for regression: the loss reduction its contribution alone achieves.

    s_k = Σ_yx,k W_kᵀ − ½ W_k Σ_kk W_kᵀ = L(0) − L(W restricted to block k), for scalar
    output. (The original OGM-GE scores classification by the summed softmax probability
    of the true class; this is its regression analogue.)

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (1, D) or (D,)
    dims : tuple of int
        K >= 2 modality dimensions.
    w_tot : ndarray of shape (1, D) or (D,)
        End-to-end weights.

    Returns
    -------
    scores : ndarray of shape (K,)
    """
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims, out_one=True)
    w = check_array("w_tot", np.ravel(np.asarray(w_tot, dtype=float)), shape=(sigma.shape[0],))
    return _scores(sigma, syx[0], _slices(dims), w)


def ogm_coefficients(scores, alpha):
    """OGM-GE coefficients of every modality from its score.

    The dominant modality d (largest score, lowest index on ties) has the discrepancy ratio
    rho = s_d / mean_{j≠d} s_j (for K = 2 the ratio to the other modality); its coefficient
    is 1 − tanh(α rho) when rho > 1 and every other coefficient is 1. Regression scores can
    be <= 0: when the others' mean is <= 0 < s_d, rho = +inf (coefficient 0 for α > 0);
    when s_d <= 0 nothing is modulated; α = 0 never modulates.

    Parameters
    ----------
    scores : ndarray of shape (K,)
        K >= 2 finite scores (:func:`ogm_scores`).
    alpha : float
        α >= 0.

    Returns
    -------
    coefficients : ndarray of shape (K,)
        In (0, 1] for the dominant modality (0 only at rho = inf), 1 for the others.
    """
    s = check_array("scores", scores, ndim=1)
    if s.shape[0] < 2:
        raise ValueError(f"scores has {s.shape[0]} entries, must have at least 2 (one per modality).")
    alpha = check_scalar("alpha", alpha, lo=0.0)
    return np.array(_coefficients(s.tolist(), alpha))


# ---------------------------------------------------------------------------------------
# Per-block learning rates: leading-order closed forms.
# ---------------------------------------------------------------------------------------

def effective_lr_scales(lr_scales, n_modalities):
    """Each late-fusion branch's effective learning-rate scale m_k = √(m1_k m2_k).

    Parameters
    ----------
    lr_scales : dict or None
        Scales of the blocks 'W1_k' and 'W2_k' (default 1), as :func:`theory.dynamics.gram_map`.
    n_modalities : int
        K >= 2.

    Returns
    -------
    m : ndarray of shape (K,)
    """
    n_mod = check_int("n_modalities", n_modalities, lo=2)
    names = [f"W{layer}_{k}" for k in range(n_mod) for layer in (1, 2)]
    scale = _check_block_scales(lr_scales, names)
    return np.array([np.sqrt(scale[f"W1_{k}"] * scale[f"W2_{k}"]) for k in range(n_mod)])


def late_schedule_lrs(sigma, syx, syy, dims, u0, lr_scales, lr=None, form="signed"):
    """Leading-order order and times of two-layer late fusion with per-block learning rates.

    :func:`theory.two_layer.late_schedule` with every modality's growth rate 2‖g_X‖
    multiplied by its effective scale m_X = √(m1_X m2_X) (module docstring). Times are in
    units of τ = 1/lr of the base rate. Status: leading order (heuristic for vectors).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
    dims : tuple of int
        K >= 2 modality dimensions.
    u0 : float
        0 < u0 < 1 (‖W_X^tot(0)‖ = u0²).
    lr_scales : dict or None
        Block scales 'W1_k', 'W2_k'.
    lr : float, optional
        Base learning rate, for times in epochs.
    form : {'signed', 'norm'}

    Returns
    -------
    LearningSchedule
    """
    check_choice("form", form, ("signed", "norm"))
    u0 = _check_u0(u0, below_one=True)
    lr = _check_lr(lr, allow_none=True)
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    m = effective_lr_scales(lr_scales, len(dims))
    return _schedule_record(sigma, syx, syy, dims, u0, lr, form, speed=m)


def time_ratio_lrs(sigma, syx, dims, lr_scales, form="signed"):
    """Leading-order t_B/t_A of two-layer late fusion with per-block learning rates.

    With κ = m_B/m_A (:func:`effective_lr_scales`) and A learned first,
    t_B/t_A = 1 + (‖Σ_yx,A‖ − κ s_B) / (κ ‖Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB‖); when the rates make
    B first (κ s_B > ‖Σ_yx,A‖) the ratio is < 1, from the mirrored schedule. Independent
    of u0; κ = 1 gives :func:`theory.two_layer.time_ratio`. Status: leading order.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    dims : tuple of 2 ints
    lr_scales : dict or None
    form : {'signed', 'norm'}

    Returns
    -------
    ratio : float
        NaN if a modality is never learned (zero residual).
    """
    check_choice("form", form, ("signed", "norm"))
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims)
    _two_modalities(dims)
    m = effective_lr_scales(lr_scales, 2)
    _, times, _ = _schedule(sigma, syx, dims, form, m)
    if not np.all(np.isfinite(times)):
        return np.nan
    return float(times[1] / times[0])


def equalising_lr_ratio(sigma, syx, dims, form="signed"):
    """The ratio κ* = m_B/m_A of effective learning-rate scales that removes the unimodal phase.

    At κ* = ‖Σ_yx,A‖ / ‖Σ_yx,B‖ both modalities' modes grow at the same rate from M_0 and
    reach O(1) together: t_A = t_B at leading order (:func:`time_ratio_lrs` = 1). Scaling
    both of B's layers by c gives κ = c; scaling one layer gives κ = √c (so c = κ*²).
    Status: leading order; for vector modalities heuristic (B's mode grows along Σ_yx,B).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    dims : tuple of 2 ints
    form : {'signed', 'norm'}
        'signed' (default) refuses statistics where Σ_yx,B points against B's residual at
        M_A (toy: ρ < −1/r): B's right-sign mode then decays while A is learned, and no
        rate ratio makes the two cross together. 'norm' returns the ratio regardless.

    Returns
    -------
    kappa : float
    """
    check_choice("form", form, ("signed", "norm"))
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims)
    _two_modalities(dims)
    sl_a, sl_b = _slices(dims)
    n_a, n_b = float(np.linalg.norm(syx[:, sl_a])), float(np.linalg.norm(syx[:, sl_b]))
    if n_b == 0.0 or n_a == 0.0:
        raise ValueError(f"syx has ‖Σyx_A‖ = {n_a:.6g} and ‖Σyx_B‖ = {n_b:.6g}, both must be > 0: a modality "
                         "without correlation does not grow from a small init at any rate.")
    if form == "signed" and n_b <= n_a * (1.0 + 1e-12):
        _, signed_b, _ = _ratio_parts(sigma, syx, dims, "signed")
        if signed_b < 0:
            raise ValueError("syx gives Σyx_B anti-parallel to B's residual at M_A, must not be for form "
                             "'signed': B's right-sign mode decays while A is learned, so no learning-rate "
                             "ratio equalises t_A and t_B (use form='norm' for the ratio of norms).")
    return n_a / n_b


# ---------------------------------------------------------------------------------------
# Modified moments.
# ---------------------------------------------------------------------------------------

def _check_per_modality(name, value, n_mod, **rule):
    arr = np.atleast_1d(np.asarray(value, dtype=float)) if not isinstance(value, str) else None
    if arr is None or arr.ndim != 1 or arr.shape[0] not in (1, n_mod):
        raise ValueError(f"{name} == {value!r}, must be a number or a sequence of {n_mod} (one per modality).")
    for v in arr:
        check_scalar(name, float(v), **rule)
    return np.broadcast_to(arr, (n_mod,)).astype(float)


def dropout_moments(sigma, syx, syy, dims, p, rescale=True):
    """Second moments of the expected loss under independent modality dropout.

    Each sample's modality k is dropped (x_k → 0) with probability p_k, independently of the
    other modalities, of the samples and of the epochs, and kept otherwise, multiplied by
    1/(1 − p_k) when ``rescale`` (inverted dropout; E[x̃_k] = x_k). With a_k = E[m̃_k]
    (1 if rescale, else 1 − p_k) and b_k = E[m̃_k²] (1/(1 − p_k), else 1 − p_k), the
    expected squared loss of any linear network is the quadratic loss of W^tot with

        Σ'_kl = a_k a_l Σ_kl (k ≠ l),   Σ'_kk = b_k Σ_kk,   Σ_yx,k' = a_k Σ_yx,k,   syy' = syy.

    Its gradient is the expected gradient, so gradient descent on these moments is the
    exact "expected dropout" run (and :func:`theory.dynamics.gram_map` on them its exact
    map); the fixed points and times follow from the usual functions. The loss on these
    moments is the expected training loss under dropout, not the loss without it. Exact
    for linear networks (masking an input block and masking its branch's contribution
    coincide); for ReLU nets and for the fluctuations of sampled masks only simulation
    answers.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
    dims : tuple of int
        K >= 2 modality dimensions.
    p : float or sequence of K floats
        Dropout probability of each modality, 0 <= p_k < 1.
    rescale : bool
        Multiply kept inputs by 1/(1 − p_k).

    Returns
    -------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D)
    syy : float
    """
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    p = _check_per_modality("p", p, len(dims), lo=0.0, hi=1.0, hi_open=True)
    if not isinstance(rescale, (bool, np.bool_)):
        raise TypeError(f"rescale == {rescale!r}, must be True or False.")
    sig, syx, syy = _engine_mitigation.dropout_moments(sigma, syx, syy, dims, p, rescale)
    return _readonly(sig), _readonly(syx), syy


def auxiliary_moments(sigma, syx, syy, dims, weight):
    """Second moments of the loss with unimodal auxiliary losses of weight λ.

    Every modality's branch also predicts y on its own with its contribution to the fused
    output, ŷ_k = W_k^tot x_k, and the loss adds λ_k · ½ <(y − ŷ_k)²>. The total is the
    quadratic loss of W^tot with

        Σ' = Σ + blockdiag(λ_k Σ_kk),   Σ_yx,k' = (1 + λ_k) Σ_yx,k,   syy' = (1 + Σ_k λ_k) syy,

    exact for linear networks. A's unimodal fixed point is unchanged (Σ_yx,A Σ_A⁻¹); B's
    residual at M_A becomes res_B + λ_B Σ_yx,B, which shortens B's wait; M_* moves towards
    the unimodal solutions. If a separate auxiliary head reads the branch (a parameter not
    shared with the fused output), the dynamics is not a function of W^tot and only
    simulation answers.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
    dims : tuple of int
        K >= 2 modality dimensions.
    weight : float or sequence of K floats
        λ_k >= 0.

    Returns
    -------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D)
    syy : float
    """
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    lam = _check_per_modality("weight", weight, len(dims), lo=0.0)
    sig, syx, syy = _engine_mitigation.auxiliary_moments(sigma, syx, syy, dims, lam)
    return _readonly(sig), _readonly(syx), syy


def auxiliary_schedule(sigma, syx, syy, dims, weight, u0, lr=None, form="signed"):
    """Leading-order time at which each branch is learned under unimodal auxiliary losses.

    :func:`theory.two_layer.late_schedule` on :func:`auxiliary_moments`. From M_0 every
    mode grows at (1 + λ_k)‖Σ_yx,k‖; after A is learned B's rate is ‖res_B + λ_B Σ_yx,B‖
    (res_B = Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB). For K = 2, A first: t_A = τ ln(1/u0) / ((1 + λ_A)‖Σ_yx,A‖)
    and t_B/t_A = 1 + ((1 + λ_A)‖Σ_yx,A‖ − (1 + λ_B) s_B) / ‖res_B + λ_B Σ_yx,B‖ (s_B = ±‖Σ_yx,B‖
    as in :func:`theory.two_layer.time_ratio`); as λ → ∞ each branch approaches its own
    unimodal time τ ln(1/u0) / ((1 + λ)‖Σ_yx,k‖).
    Status: leading order (heuristic for vectors).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
    dims : tuple of int
    weight : float or sequence of K floats
        λ_k >= 0.
    u0 : float
        0 < u0 < 1.
    lr : float, optional
    form : {'signed', 'norm'}

    Returns
    -------
    LearningSchedule
        Its fixed points are those of the auxiliary-loss moments.
    """
    check_choice("form", form, ("signed", "norm"))
    u0 = _check_u0(u0, below_one=True)
    lr = _check_lr(lr, allow_none=True)
    sig, sy, yy = auxiliary_moments(sigma, syx, syy, dims, weight)
    dims = _check_dims(dims, sig.shape[0])
    return _schedule_record(sig, sy, yy, dims, u0, lr, form)
