"""Two-layer late fusion: unimodal phase, time ratio, misattribution, superficial preference.

The mathematical objects are the leading-order (u0 → 0) timing of the sequential
log-growth of each modality's mode in two-layer linear late fusion (theory.md §6.3), the
weights on the unimodal plateau (§6.4) and the regions of superficial modality preference
(§6.5). Times are counted from the start, in units of τ = 1/lr epochs (``*_tau``) and, when
the learning rate is given, in epochs.

Toy data (§3a): x_A, x_B scalar with standard deviations ``ratio`` = r = σ_A/σ_B and 1,
correlation ``rho``, y = w_A* x_A + w_B* x_B. Modality A is the first-learned one (by
default r >= 1 and W* = (1, 1)).

Signed versus norm time ratio (§6.3). When Σ_yx,B points against B's phase-2 direction
(the residual Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB; toy: ρ < −1/r, where Σ_yx,B = 1 + ρr < 0), B's
phase-1 growth is spent on a wrong-sign mode. The right-sign mode decays at the same rate
and must regrow after t_A, so B's head start counts negatively:
t_B/t_A = 1 + (‖Σ_yx,A‖ + ‖Σ_yx,B‖)/‖res‖ ("signed", what simulations follow), not
1 + (‖Σ_yx,A‖ − ‖Σ_yx,B‖)/‖res‖ ("norm"). For vector modalities only an exactly
anti-parallel Σ_yx,B is special: a mode at any other angle rotates into the residual
direction in O(1) time and keeps its head start, so both forms coincide there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion.validation import check_array, check_choice, check_scalar

from ._checks import (_as_output, _check_dims, _check_lr, _check_moments, _check_psd, _check_ratio,
                      _check_rho, _check_u0, _check_w_star_toy, _readonly, _require_pd, _slices,
                      _two_modalities)
from .fixed_points import _fixed_point, _subset_weights

__all__ = ["toy_stats", "time_ratio", "time_ratio_toy", "LateTimes", "late_times",
           "LearningSchedule", "late_schedule", "predicted_misattribution",
           "predicted_misattribution_toy", "prioritisation_threshold", "contribution_threshold",
           "preference_region"]

# Cosine below which two directions count as anti-parallel (the signed case of §6.3).
_ANTI_COS = -1.0 + 1e-9


def toy_stats(rho, ratio, w_star=(1.0, 1.0)):
    """Population second moments of the toy data (theory.md §3a).

    Parameters
    ----------
    rho : float
        Correlation of x_A and x_B, |rho| < 1.
    ratio : float
        r = σ_A/σ_B > 0 with σ_B = 1.
    w_star : sequence of 2 floats
        Teacher weights (w_A*, w_B*); y = w_A* x_A + w_B* x_B, noiseless.

    Returns
    -------
    sigma : ndarray of shape (2, 2)
        [[r², ρr], [ρr, 1]].
    syx : ndarray of shape (1, 2)
        [[w_A* r² + w_B* ρr, w_B* + w_A* ρr]].
    syy : float
        <y²> = w_A*² r² + w_B*² + 2 w_A* w_B* ρr.
    """
    rho = check_scalar("rho", rho, lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
    r = check_scalar("ratio", ratio, lo=0.0, lo_open=True)
    wa, wb = _check_w_star_toy(w_star)
    sigma = np.array([[r * r, rho * r], [rho * r, 1.0]])
    syx = np.array([[wa * r * r + wb * rho * r, wb + wa * rho * r]])
    syy = float(wa * wa * r * r + wb * wb + 2.0 * wa * wb * rho * r)
    return sigma, syx, syy


def _ratio_parts(sigma, syx, dims, form):
    """‖Σyx_A‖, B's signed phase-1 strength, ‖res_B‖ for the A-then-B time ratio."""
    sl_a, sl_b = _slices(dims)
    _require_pd(sigma, sl_a, "the time ratio")
    s_a, s_b = syx[:, sl_a], syx[:, sl_b]
    res = s_b - s_a @ np.linalg.solve(sigma[sl_a, sl_a], sigma[sl_a, sl_b])
    n_a, n_b, n_res = (float(np.linalg.norm(m)) for m in (s_a, s_b, res))
    if n_b > n_a * (1.0 + 1e-12):
        raise ValueError(f"syx has ‖Σyx_A‖ = {n_a:.6g} < ‖Σyx_B‖ = {n_b:.6g}; modality A (the first "
                         "block) must be learned first: swap A and B.")
    if n_res <= 1e-14 * max(1.0, n_a):
        raise ValueError("syx and sigma give B a zero residual correlation ‖Σyx_B − Σyx_A Σ_A⁻¹ Σ_AB‖ "
                         "at M_A, must be > 0: B is never learned and the time ratio is infinite.")
    signed_b = n_b
    if form == "signed" and n_b > 0 and np.sum(s_b * res) / (n_b * n_res) < _ANTI_COS:
        signed_b = -n_b
    return n_a, signed_b, n_res


def time_ratio(sigma, syx, dims, form="signed"):
    """Leading-order late-fusion time ratio t_B/t_A for general inputs (theory.md §6.3).

        t_B/t_A = 1 + (‖Σ_yx,A‖ − s_B) / ‖Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB‖

    with s_B = ‖Σ_yx,B‖ ("norm"), or s_B = −‖Σ_yx,B‖ when Σ_yx,B is anti-parallel to B's
    residual ("signed", the default; see the module docstring). Independent of u0 and, in
    gradient flow, of lr. Heuristic for vector modalities (assumes B's phase-1 direction
    carries over to the residual direction).

    The original code's rand_sweep prediction (``lag_twolayer`` in its sweep.py) is this
    function with mixed inputs: the population Σ, the empirical Σ_yx and ``form='norm'``.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Input second moment, positive semi-definite with Σ_A positive definite (the
        formula inverts Σ_A).
    syx : ndarray of shape (out, D) or (D,)
        Input-output correlation.
    dims : tuple of 2 ints
        (d_A, d_B); A is the first block and must have ‖Σ_yx,A‖ >= ‖Σ_yx,B‖.
    form : {'signed', 'norm'}

    Returns
    -------
    ratio : float
        >= 1; exactly 1 when ‖Σ_yx,A‖ = ‖Σ_yx,B‖ (same direction).

    Raises
    ------
    ValueError
        B has the larger correlation, B's residual is 0 (never learned), or Σ_A is singular.
    """
    check_choice("form", form, ("signed", "norm"))
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims)
    _two_modalities(dims)
    n_a, signed_b, n_res = _ratio_parts(sigma, syx, dims, form)
    return 1.0 + (n_a - signed_b) / n_res


def time_ratio_toy(rho, ratio, form="signed", w_star=(1.0, 1.0)):
    """Late-fusion time ratio on the toy data, vectorised over ``rho`` and ``ratio``.

    With W* = (1, 1) the signed form is 1 + (r² − 1)/(1 − ρ²): symmetric in ρ, 1 at r = 1,
    diverging as |ρ| → 1. The norm form 1 + (|Σ_yx,A| − |Σ_yx,B|)/(1 − ρ²) differs only for
    ρ < −1/r, where Σ_yx,B = 1 + ρr < 0; simulations follow the signed form (module
    docstring). General W*: 1 + (|Σ_yx,A| − s_B)/|w_B*(1 − ρ²)| with s_B the signed (or
    absolute) Σ_yx,B relative to the sign of w_B*.

    Parameters
    ----------
    rho : float or ndarray
        Correlation, |rho| < 1.
    ratio : float or ndarray
        r = σ_A/σ_B > 0 (broadcast against ``rho``); A must be learned first
        (|Σ_yx,A| >= |Σ_yx,B|; r >= 1 when W* = (1, 1)).
    form : {'signed', 'norm'}
    w_star : sequence of 2 floats
        (w_A*, w_B*), with w_B* != 0.

    Returns
    -------
    ratio : float or ndarray of the broadcast shape
    """
    check_choice("form", form, ("signed", "norm"))
    rho = _check_rho(rho)
    r = _check_ratio(ratio)
    wa, wb = _check_w_star_toy(w_star)
    if wb == 0.0:
        raise ValueError(f"w_star == ({float(wa)!r}, 0.0), w_B* must be != 0: B's residual 1 − ρ² is "
                         "multiplied by w_B*, so B is never learned and the time ratio is infinite.")
    rho, r = np.broadcast_arrays(rho, r)
    s_a = wa * r * r + wb * rho * r
    s_b = wb + wa * rho * r
    res = wb * (1.0 - rho * rho)
    bad = np.abs(s_b) > np.abs(s_a) * (1.0 + 1e-12)
    if np.any(bad):
        i = np.flatnonzero(bad)[0]
        raise ValueError(f"ratio == {float(r.flat[i])!r} with rho == {float(rho.flat[i])!r} and w_star == "
                         f"({float(wa)!r}, {float(wb)!r}) "
                         f"gives |Σyx_A| = {abs(s_a.flat[i]):.6g} < |Σyx_B| = {abs(s_b.flat[i]):.6g}; "
                         "modality A must be learned first: swap A and B.")
    signed_b = s_b * np.sign(res) if form == "signed" else np.abs(s_b)
    return _as_output(1.0 + (np.abs(s_a) - signed_b) / np.abs(res))


@dataclass(frozen=True)
class LateTimes:
    """Leading-order times at which two-layer late fusion learns A and B.

    Attributes
    ----------
    t_a_tau, t_b_tau : float
        t_A/τ and t_B/τ.
    ratio : float
        t_B/t_A.
    lr : float
        Learning rate (τ = 1/lr epochs); NaN when not given.
    t_a, t_b : float
        The same times in epochs; NaN when ``lr`` is not given.
    """

    t_a_tau: float
    t_b_tau: float
    ratio: float
    lr: float
    t_a: float
    t_b: float


def late_times(sigma, syx, dims, u0, lr=None, form="signed"):
    """Leading-order t_A and t_B of two-layer late fusion (theory.md §6.3).

    t_A = (τ/‖Σ_yx,A‖) ln(1/u0) and t_B = t_A · :func:`time_ratio`. Here u0 is the scale
    of a balanced rank-one mode, ‖W_X^tot(0)‖ = u0²; for the paper's per-entry init of a
    width-h net the effective scale differs by an O(h) factor that enters only through
    ln(1/u0) (use :func:`theory.dynamics.effective_seed` to get it from actual weights).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    dims : tuple of 2 ints
    u0 : float
        Initial scale, 0 < u0 < 1.
    lr : float, optional
        Learning rate; gives the times in epochs as well.
    form : {'signed', 'norm'}

    Returns
    -------
    LateTimes
    """
    check_choice("form", form, ("signed", "norm"))
    u0 = _check_u0(u0, below_one=True)
    lr = _check_lr(lr, allow_none=True)
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims)
    _two_modalities(dims)
    n_a, signed_b, n_res = _ratio_parts(sigma, syx, dims, form)
    ratio = 1.0 + (n_a - signed_b) / n_res
    t_a = np.log(1.0 / u0) / n_a
    t_b = ratio * t_a
    lr = np.nan if lr is None else lr
    return LateTimes(t_a_tau=float(t_a), t_b_tau=float(t_b), ratio=float(ratio), lr=lr,
                     t_a=float(t_a / lr), t_b=float(t_b / lr))


@dataclass(frozen=True, eq=False)
class LearningSchedule:
    """Order and leading-order times at which late fusion learns K modalities.

    Attributes
    ----------
    order : tuple of int
        Modalities in the order they are learned.
    t_tau : ndarray of shape (K,)
        Time at which each modality (indexed by modality, not by order) is learned, in
        units of τ; ``inf`` for a modality that is never needed (zero residual once the
        others are learned).
    t : ndarray of shape (K,)
        The same in epochs; NaN without ``lr``.
    path : tuple of FixedPoint
        Fixed points visited, M_0 first; one more learned modality per step (it stops
        early if the remaining modalities are never learned).
    u0 : float
    lr : float
        NaN when not given.
    """

    order: tuple
    t_tau: np.ndarray
    t: np.ndarray
    path: tuple
    u0: float
    lr: float


def _schedule(sigma, syx, dims, form, speed=None):
    """Sequential log-growth matching; times in units of τ ln(1/u0).

    Each unlearned modality X carries the log-size of its growing mode in units of
    ln(1/u0), starting at −2 (‖W_X‖ = u0²) and learned on reaching 0. With S learned the
    network sits at M_S, where X's mode grows at rate 2 m_X ‖g_X‖ per τ (m_X = ``speed[X]``,
    the modality's effective learning-rate multiplier, 1 by default). In the signed form a
    second (opposite-sign) mode decays at the same rate and takes over when the residual
    direction flips (anti-parallel), which is §6.3's mechanism for ρ < −1/r.
    """
    sl = _slices(dims)
    n_mod = len(dims)
    speed = np.ones(n_mod) if speed is None else np.asarray(speed, dtype=float)
    ell = np.full(n_mod, -2.0)
    anti = np.full(n_mod, -2.0)
    direction = [None] * n_mod
    times = np.full(n_mod, np.inf)
    learned, now = [], 0.0
    while len(learned) < n_mod:
        w_s = _subset_weights(sigma, syx, dims, tuple(sorted(learned)))
        g = syx - w_s @ sigma
        rest = [k for k in range(n_mod) if k not in learned]
        rate = np.zeros(n_mod)
        for k in rest:
            g_k = g[:, sl[k]]
            n_k = float(np.linalg.norm(g_k))
            if n_k <= 1e-14 * max(1.0, float(np.linalg.norm(syx))):
                continue
            e_k = g_k / n_k
            if direction[k] is not None:
                cos = float(np.sum(direction[k] * e_k))
                if form == "signed" and cos < _ANTI_COS:
                    ell[k], anti[k] = anti[k], ell[k]
                elif cos < 1.0 - 1e-9:
                    anti[k] = ell[k]  # a rotated mode seeds both signs along the new direction
            direction[k] = e_k
            rate[k] = 2.0 * speed[k] * n_k
        wait = {k: (0.0 if ell[k] >= 0.0 else (-ell[k] / rate[k] if rate[k] > 0 else np.inf))
                for k in rest}
        nxt = min(rest, key=lambda k: (wait[k], k))
        step = wait[nxt]
        if not np.isfinite(step):
            break
        now += step
        for k in rest:
            ell[k] += rate[k] * step
            anti[k] -= rate[k] * step
        learned.append(nxt)
        times[nxt] = now
    order = tuple(learned) + tuple(k for k in range(n_mod) if k not in learned)
    return order, times, len(learned)


def late_schedule(sigma, syx, syy, dims, u0, lr=None, form="signed"):
    """Order and times in which two-layer late fusion learns K modalities (leading order).

    Generalises §6.3's log-growth matching: every unlearned modality's mode grows like
    exp(2‖g_X‖ t/τ) from ‖W_X‖ = u0², where g_X is its residual correlation at the fixed
    point of the modalities learned so far; a modality is learned when its mode reaches
    O(1), which moves the network to the next fixed point and changes the others' rates.
    For K = 2 this gives t_A = τ ln(1/u0)/‖Σ_yx,A‖ and t_B = t_A · :func:`time_ratio`.
    The order can differ from the greedy :func:`theory.fixed_points.late_learning_path`
    for K >= 3, because a modality keeps the growth it made in earlier stages.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (out, D) or (D,)
    syy : float
        <|y|²>, for the losses of the fixed points on the path.
    dims : tuple of int
        K >= 2 modality dimensions.
    u0 : float
        Initial scale, 0 < u0 < 1 (‖W_X^tot(0)‖ = u0²).
    lr : float, optional
        Learning rate, for times in epochs.
    form : {'signed', 'norm'}
        How a flip of a modality's residual direction is counted (module docstring).

    Returns
    -------
    LearningSchedule
    """
    check_choice("form", form, ("signed", "norm"))
    u0 = _check_u0(u0, below_one=True)
    lr = _check_lr(lr, allow_none=True)
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy)
    return _schedule_record(sigma, syx, syy, dims, u0, lr, form)


def _schedule_record(sigma, syx, syy, dims, u0, lr, form, speed=None):
    """:class:`LearningSchedule` from validated inputs (``speed``: see :func:`_schedule`)."""
    order, times, n_learned = _schedule(sigma, syx, dims, form, speed)
    t_tau = times * np.log(1.0 / u0)
    path = [_fixed_point(sigma, syx, syy, dims, ())]
    for j in range(n_learned):
        path.append(_fixed_point(sigma, syx, syy, dims, tuple(sorted(order[:j + 1]))))
    lr = np.nan if lr is None else lr
    return LearningSchedule(order=order, t_tau=_readonly(t_tau), t=_readonly(t_tau / lr),
                            path=tuple(path), u0=u0, lr=lr)


def predicted_misattribution(sigma, w_star, dims):
    """Misattribution of B's signal to A on the unimodal plateau (theory.md §6.4).

    For realizable targets y = W* x, A's plateau weights are
    Σ_yx,A Σ_A⁻¹ = W_A* + W_B* Σ_BA Σ_A⁻¹, so

        m = W_A^tot(plateau) − W_A^tot(∞) = W_B* Σ_BA Σ_A⁻¹ .

    m > 0 means A is over-credited. Toy data: m = ρ σ_B/σ_A = ρ/r. (The measurement on a
    trajectory is :func:`linfusion.analysis.measured_misattribution`.)

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Input second moment, positive semi-definite with Σ_A positive definite.
    w_star : ndarray of shape (out, D) or (D,)
        Teacher weights.
    dims : tuple of 2 ints
        (d_A, d_B).

    Returns
    -------
    m : ndarray of shape (out, d_A)
    """
    sigma = _check_psd("sigma", sigma)
    w_star = np.atleast_2d(check_array("w_star", w_star, ndim=(1, 2)))
    if w_star.shape[1] != sigma.shape[0]:
        raise ValueError(f"w_star has shape {w_star.shape}, must have {sigma.shape[0]} columns "
                         "(the size of sigma).")
    dims = _check_dims(dims, sigma.shape[0])
    _two_modalities(dims)
    sl_a, sl_b = _slices(dims)
    _require_pd(sigma, sl_a, "the misattribution")
    return w_star[:, sl_b] @ np.linalg.solve(sigma[sl_a, sl_a], sigma[sl_a, sl_b]).T


def predicted_misattribution_toy(rho, ratio):
    """Predicted toy misattribution m = ρ/r (W* = (1, 1)), vectorised.

    Parameters
    ----------
    rho : float or ndarray
        |rho| < 1.
    ratio : float or ndarray
        r = σ_A/σ_B > 0.

    Returns
    -------
    m : float or ndarray of the broadcast shape
    """
    rho = _check_rho(rho)
    r = _check_ratio(ratio)
    return _as_output(rho / r)


def prioritisation_threshold(ratio):
    """w_A*/w_B* above which A is learned first (toy, ρ = 0): 1/r² (theory.md §6.5).

    Parameters
    ----------
    ratio : float or ndarray
        r = σ_A/σ_B > 0.

    Returns
    -------
    threshold : float or ndarray
    """
    r = _check_ratio(ratio)
    return _as_output(1.0 / (r * r))


def contribution_threshold(ratio):
    """w_A*/w_B* above which A removes more loss than B (toy, ρ = 0): 1/r (theory.md §6.5).

    Parameters
    ----------
    ratio : float or ndarray
        r = σ_A/σ_B > 0.

    Returns
    -------
    threshold : float or ndarray
    """
    r = _check_ratio(ratio)
    return _as_output(1.0 / r)


def preference_region(ratio, w_ratio):
    """Classify a toy setting (ρ = 0) by which modality is learned first and which helps more.

    A is learned first iff w_A*/w_B* > 1/r² (prioritisation) and removes more loss iff
    w_A*/w_B* > 1/r (contribution). Between the two thresholds the first-learned modality
    contributes less: a *superficial* preference (A first for r > 1, B first in the mirror
    region 1/r < w_A*/w_B* < 1/r² for r < 1).

    Parameters
    ----------
    ratio : float
        r = σ_A/σ_B > 0.
    w_ratio : float
        w_A*/w_B* >= 0.

    Returns
    -------
    region : str
        ``"<first>, <contribution>"`` with first one of "A first", "B first",
        "A and B together" and contribution one of "A contributes more",
        "B contributes more", "A and B contribute equally"; " (superficial)" is appended
        when the first-learned modality contributes strictly less. For example
        ``"A first, B contributes more (superficial)"``.
    """
    r = check_scalar("ratio", ratio, lo=0.0, lo_open=True)
    w = check_scalar("w_ratio", w_ratio, lo=0.0)

    def compare(x, threshold):
        if np.isclose(x, threshold, rtol=1e-12, atol=0.0):
            return 0
        return 1 if x > threshold else -1

    first = compare(w, 1.0 / (r * r))
    contrib = compare(w, 1.0 / r)
    first_s = {1: "A first", -1: "B first", 0: "A and B together"}[first]
    contrib_s = {1: "A contributes more", -1: "B contributes more",
                 0: "A and B contribute equally"}[contrib]
    superficial = first != 0 and contrib == -first
    return f"{first_s}, {contrib_s}" + (" (superficial)" if superficial else "")
