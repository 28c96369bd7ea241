"""Gradient-flow ODEs of linear fusion networks, through one ``solve_ivp`` wrapper.

- **flow** (:func:`flow`): balanced rank-one gradient flow (theory.md §6.2-6.3). Late
  fusion evolves each modality's W_X (coupled only through g = Σ_yx − W Σ), early fusion
  one W; a depth-L rank-one balanced path obeys
  τ dW/dt = ‖W‖^{2−2/L} [g + (L − 1)(g·Ŵ)Ŵ] (L = 2: ‖W‖ [g + (g·Ŵ)Ŵ]).
- **scalar chain flow** (:func:`chain_flow`): the §6.6 ODE for per-modality pre-fusion
  scales u_X and the post-fusion scale v, W_X = v^{L−L_f} u_X^{L_f}.

Both are the η → 0 limits of the exact maps of :mod:`theory.dynamics.maps` and
:mod:`theory.dynamics.chains`: at lr = 0.04 the flow runs 4-14 % early in t_A.
Integration is in units of τ (t/τ = lr · epoch); the crossing epochs come from event
location (direction +1, the rule of :func:`linfusion.analysis.crossing_time`): a modality
that starts at or above its threshold and never dips below it, or never reaches it, gets NaN. ``scipy.integrate`` is imported on the first call,
not with the package.
"""
from __future__ import annotations

import numpy as np

from linfusion.validation import check_array, check_choice, check_int, check_scalar

from .._checks import _check_u0, _one_init
from ._problem import _chain_setup, _directions, _finish, _groups, _seed, _setup, _unit, _weights

__all__ = ["flow", "chain_flow"]

# Cap on log-coordinates before exp: rejected trial steps of the solver may overshoot; no
# trajectory of these ODEs comes near e^300.
_EXP_MAX = 300.0


def _solve(rhs, y0, t_end, t_eval, events, rtol, atol, solver):
    """The one ``solve_ivp`` wrapper: integrate in units of τ, raise on failure."""
    from scipy.integrate import solve_ivp   # here, not at import: `import theory` loads no integrator
    sol = solve_ivp(rhs, (0.0, t_end), y0, method=solver, t_eval=t_eval, events=events or None,
                    rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"solve_ivp ({solver}) failed: {sol.message}")
    return sol


def _crossing_events(prob, w_of_y, log_norm=None):
    """Event functions (direction +1) for every modality with a positive threshold.

    ``log_norm(y, k)``, when the state holds it, gives ln‖W_k‖ without building W (cheap,
    and smooth across the many decades of a small init).
    """
    events, owners = [], []
    for k, thr in enumerate(prob.thresholds):
        if thr <= 0:
            continue
        s = prob.slices[k]
        t_hat = _unit(prob.targets[k])
        if prob.crossing == "norm" and log_norm is not None:
            def ev(t, y, k=k, log_thr=np.log(thr)):
                return log_norm(y, k) - log_thr
        elif prob.crossing == "norm":
            def ev(t, y, s=s, thr=thr):
                return float(np.linalg.norm(w_of_y(y)[s])) - thr
        else:
            def ev(t, y, s=s, thr=thr, t_hat=t_hat):
                return float(w_of_y(y)[s] @ t_hat) - thr
        ev.direction = 1.0
        ev.terminal = False
        events.append(ev)
        owners.append(k)
    return events, owners


def _run_flow(prob, rhs, y0, w_of_y, w_of_ys, rtol, atol, solver, method, scales_of_ys=None,
              log_norm=None):
    events, owners = _crossing_events(prob, w_of_y, log_norm)
    sol = _solve(rhs, y0, prob.lr * prob.epochs[-1], prob.lr * prob.epochs, events, rtol, atol, solver)
    t_cross = [np.nan] * len(prob.dims)
    for k, ev, t_ev in zip(owners, events, sol.t_events or []):
        if len(t_ev):
            t_cross[k] = float(t_ev[0] / prob.lr)
    scales = None if scales_of_ys is None else scales_of_ys(sol.y)
    return _finish(prob, w_of_ys(sol.y), t_cross, method, scales)


def _rank_one_flow(prob, groups, depth, w_init, rtol, solver, per_modality):
    """Balanced rank-one flow per group, in log-polar coordinates (ln‖W_g‖, direction).

    d ln‖W‖/dt = L ‖W‖^{1−2/L} (g·Ŵ) and dŴ/dt = ‖W‖^{1−2/L} (g − (g·Ŵ)Ŵ): the norm
    spans many decades from a small init, the direction stays O(1). Scalar groups have a
    fixed direction (±1) and keep only ln|W|.
    """
    n_g = len(groups)
    sigma, syx = prob.sigma, prob.syx
    expo = 1.0 - 2.0 / depth
    starts = np.array([g.start for g in groups])
    group_of = np.repeat(np.arange(n_g), [g.stop - g.start for g in groups])
    norms = np.array([np.linalg.norm(w_init[g]) for g in groups])
    if np.any(norms == 0):
        j = int(np.flatnonzero(norms == 0)[0])
        raise ValueError(f"w_init block {j} is zero, must be nonzero: a zero mode never grows.")
    if len(group_of) == n_g:  # every group is one scalar input
        sgn = np.sign(w_init)

        def w_of_y(y):
            return sgn * np.exp(np.minimum(y, _EXP_MAX))

        def w_of_ys(ys):
            return (sgn[:, None] * np.exp(np.minimum(ys, _EXP_MAX))).T

        def rhs(t, y):
            w = sgn * np.exp(np.minimum(y, _EXP_MAX))
            return depth * np.exp(expo * np.minimum(y, _EXP_MAX)) * (syx - w @ sigma) * sgn

        y0 = np.log(norms)
    else:
        def split(y):
            # Works on a state (n_state,) or a stack of states (n_state, n).
            d = y[n_g:]
            d = d / np.sqrt(np.add.reduceat(d * d, starts, axis=0))[group_of]
            return np.exp(np.minimum(y[:n_g], _EXP_MAX))[group_of] * d, d

        def w_of_y(y):
            return split(y)[0]

        def w_of_ys(ys):
            return split(ys)[0].T

        def rhs(t, y):
            w, d = split(y)
            grad = syx - w @ sigma
            gd = np.add.reduceat(grad * d, starts)
            c = np.exp(expo * np.minimum(y[:n_g], _EXP_MAX))
            return np.concatenate([depth * c * gd, c[group_of] * (grad - gd[group_of] * d)])

        y0 = np.concatenate([np.log(norms), w_init / norms[group_of]])
    def log_norm(y, k):
        return y[k]

    return _run_flow(prob, rhs, y0, w_of_y, w_of_ys, rtol, 1e-12, solver, "flow",
                     log_norm=log_norm if per_modality else None)


def flow(sigma, syx, syy, dims, epochs, lr, *, fusion="late", depth=2, u0=None, w1=None, w2=None,
         w_init=None, sigma_pop=None, w_star=None, crossing="norm", rtol=1e-10, solver="LSODA"):
    """Integrate the balanced rank-one gradient flow of late or early fusion.

    Late fusion (theory.md §6.3): every modality's W_X follows
    τ dW_X/dt = ‖W_X‖^{2−2/L} [g_X + (L − 1)(g_X·Ŵ_X)Ŵ_X], coupled only through
    g = Σ_yx − W Σ (scalar inputs, L = 2: τ dW_X/dt = 2|W_X| g_X). Early fusion (§6.2): one
    W over all inputs with the same law. Integrated in log-norm/direction coordinates so
    that inits like 1e-18 need no special tolerance.

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Input second moment (training statistics), positive semi-definite.
    syx : ndarray of shape (1, D) or (D,)
        Input-output correlation.
    syy : float
        <y²>.
    dims : tuple of int
        K >= 2 modality dimensions.
    epochs : ndarray of shape (n,)
        Strictly increasing epoch grid, last > 0; t/τ = lr · epoch.
    lr : float
        Learning rate (τ = 1/lr).
    fusion : {'late', 'early'}
    depth : int
        Depth L >= 2 of each (late) path or of the (early) network.
    u0 : float, optional
        Per-layer scale of a balanced rank-one init: ‖W_X(0)‖ = u0^L.
    w1, w2 : optional
        Actual two-layer weights (depth 2 only), see :func:`effective_seed`.
    w_init : ndarray of shape (D,), optional
        Initial end-to-end weights of a balanced rank-one network (every block nonzero).
    sigma_pop : ndarray of shape (D, D), optional
        Population second moment, with ``w_star`` (D,), for E_g.
    w_star : ndarray of shape (D,) or (1, D), optional
    crossing : {'norm', 'projection'}
        Compare ‖W_X‖ (theory.md §7) or W_X projected on its target direction.
    rtol : float
        Relative tolerance of the solver.
    solver : str
        ``solve_ivp`` method.

    Returns
    -------
    Trajectory

    Raises
    ------
    RuntimeError
        If the solver fails (with its message).
    """
    check_choice("fusion", fusion, ("late", "early"))
    depth = check_int("depth", depth, lo=2)
    rtol = check_scalar("rtol", rtol, lo=1e-14, hi=1e-2)
    prob = _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing, integer_epochs=False)
    how = _one_init(u0=u0, w1=w1 if w2 is None else w2, w_init=w_init)
    groups = _groups(prob, fusion)
    if how == "u0":
        u0 = _check_u0(u0)
        w0 = np.concatenate([u0 ** depth * d for d in _directions(prob, fusion)])
    elif how == "w1":
        if depth != 2:
            raise ValueError(f"depth == {depth}, must be 2 when starting from weights w1, w2 "
                             "(the effective seed is defined for two-layer nets).")
        if w1 is None or w2 is None:
            raise ValueError("w1 and w2 must be given together.")
        w0 = _seed(prob, fusion, *_weights(prob, fusion, w1, w2))[1]
    else:
        w0 = check_array("w_init", np.ravel(np.asarray(w_init, dtype=float)), shape=(prob.sigma.shape[0],))
    return _rank_one_flow(prob, groups, depth, w0, rtol, solver, per_modality=fusion == "late")


def chain_flow(sigma, syx, syy, depth, fuse_depth, epochs, lr, *, u0=None, u_init=None,
               sigma_pop=None, w_star=None, crossing="norm", rtol=1e-10, solver="LSODA"):
    """Integrate the balanced scalar-chain ODE of depth-L fusion at layer L_f (theory.md §6.6).

        τ du_X/dt = v^{L−L_f} u_X^{L_f−1} g_X,   τ dv/dt = v^{L−L_f−1} Σ_X u_X^{L_f} g_X,

    W_X = v^{L−L_f} u_X^{L_f} (times the sign of the modality's eventual weight), scalar
    inputs. No v for L_f = L. This is the more accurate theory curve that
    :mod:`theory.deep`'s closed forms approximate.

    Parameters
    ----------
    sigma : ndarray of shape (K, K)
        Input second moment of K >= 2 scalar modalities.
    syx : ndarray of shape (1, K) or (K,)
    syy : float
    depth : int
        Total depth L >= 1.
    fuse_depth : int
        Fusion layer, 1 <= L_f <= L.
    epochs : ndarray of shape (n,)
    lr : float
    u0 : float, optional
        u_X(0) = u0 and v(0) = √K u0 (balanced; the deep "init" of theory.md §5).
    u_init : sequence of floats, optional
        (u_1, ..., u_K[, v]): explicit initial scales (v > 0 needed iff L_f < L); u_X != 0
        (its sign is the sign of W_X) unless L_f = 1.
    sigma_pop, w_star : optional
        Population statistics for E_g.
    crossing : {'norm', 'projection'}
    rtol : float
    solver : str

    Returns
    -------
    Trajectory
    """
    rtol = check_scalar("rtol", rtol, lo=1e-14, hi=1e-2)
    big_l, l_f, prob, signs = _chain_setup(sigma, syx, syy, depth, fuse_depth, epochs, lr, sigma_pop,
                                           w_star, crossing, False)
    n_mod, m = len(prob.dims), big_l - l_f
    how = _one_init(u0=u0, u_init=u_init)
    if how == "u0":
        u0 = _check_u0(u0)
        u = signs * u0
        v = np.sqrt(n_mod) * u0
    else:
        u, v = _check_u_init(u_init, n_mod, m)
    sigma_, syx_ = prob.sigma, prob.syx
    # For L_f >= 2, u_X cannot cross 0 (du ∝ u^{L_f-1}): log-magnitude coordinates, the sign
    # of W_X carried by one layer. For L_f = 1 the fusion layer is linear in u: keep u signed.
    log_u = l_f >= 2
    if log_u:
        if np.any(u == 0):
            raise ValueError("u_init has a zero scale u_X, must be nonzero for fuse_depth >= 2 "
                             "(a zero path never grows).")
        sgn = np.sign(u)
        y0 = np.log(np.abs(u))
    else:
        sgn = np.ones(n_mod)
        y0 = np.array(u, dtype=float)
    if m:
        y0 = np.concatenate([y0, [np.log(v)]])

    def w_parts(y):
        # Works on a state (n_state,) or a stack of states (n_state, n).
        vm = np.exp(np.minimum(m * y[n_mod], _EXP_MAX)) if m else 1.0
        if log_u:
            uu = np.exp(np.minimum(y[:n_mod], _EXP_MAX))
            return vm * sgn_col(y) * uu ** l_f, uu, vm
        return vm * y[:n_mod], y[:n_mod], vm

    def sgn_col(y):
        return sgn if y.ndim == 1 else sgn[:, None]

    def w_of_y(y):
        return w_parts(y)[0]

    def w_of_ys(ys):
        return w_parts(ys)[0].T

    def scales_of_ys(ys):
        uu = sgn[:, None] * np.exp(ys[:n_mod]) if log_u else ys[:n_mod]
        return np.vstack([uu, np.exp(ys[n_mod:])]).T

    def rhs(t, y):
        w, uu, vm = w_parts(y)
        g = syx_ - w @ sigma_
        dy = np.empty_like(y)
        dy[:n_mod] = w * g / (uu * uu) if log_u else vm * g
        if m:
            dy[n_mod] = (w @ g) * np.exp(-2.0 * y[n_mod])
        return dy

    # Linear u (L_f = 1) starts at the init's scale: the absolute tolerance must be below it.
    atol = np.full(y0.shape, 1e-12)
    if not log_u:
        atol[:n_mod] = 1e-12 * min(1.0, max(float(np.max(np.abs(u))), 1e-300))
    def log_norm(y, k):
        return (m * y[n_mod] if m else 0.0) + l_f * y[k]

    return _run_flow(prob, rhs, y0, w_of_y, w_of_ys, rtol, atol, solver, "chain_flow", scales_of_ys,
                     log_norm=log_norm if log_u else None)


def _check_u_init(u_init, n_mod, m):
    arr = check_array("u_init", u_init, ndim=1)
    want = n_mod + (1 if m else 0)
    if arr.shape[0] != want:
        raise ValueError(f"u_init has {arr.shape[0]} entries, must have {want} "
                         f"({n_mod} scales u_X{' and v' if m else ''}).")
    v = 1.0
    if m:
        v = check_scalar("u_init[-1] (v)", float(arr[-1]), lo=0.0, lo_open=True)
    return arr[:n_mod].copy(), v


