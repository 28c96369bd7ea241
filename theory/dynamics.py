"""Reduced learning dynamics of linear fusion networks: gradient-flow ODEs and exact GD maps.

The mathematical objects are trajectories of the end-to-end weights W^tot(t):

- **flow** (:func:`flow`): balanced rank-one gradient flow (THEORY.md §6.2-6.3). Late
  fusion evolves each modality's W_X (coupled only through g = Σ_yx − W Σ), early fusion
  one W; a depth-L rank-one balanced path obeys
  τ dW/dt = ‖W‖^{2−2/L} [g + (L − 1)(g·Ŵ)Ŵ] (L = 2: ‖W‖ g + (g·Ŵ)Ŵ).
- **scalar chain flow** (:func:`chain_flow`): the §6.6 ODE for per-modality pre-fusion
  scales u_X and the post-fusion scale v, W_X = v^{L−L_f} u_X^{L_f}.
- **exact maps at the simulation's learning rate** (§6.10): the rank-one two-layer map
  (:func:`rank_one_map`), the per-layer scalar-chain map (:func:`chain_map`; for many chains
  at once, crossing epochs only, :func:`chain_map_many`, with the same update rule) and the
  Gram-state map of any two-layer linear net (:func:`gram_map`), which reproduces full-batch
  gradient descent of the actual network from its actual weights. The flow runs 4-14 % early
  in t_A at lr = 0.04; the maps hit a simulation's crossing epochs.

Σ may be singular (symmetric positive semi-definite: fewer samples than inputs, THEORY.md
§6.8): the maps and flows use Σ only through g = Σ_yx − W Σ, and the thresholds come from
the minimum-norm fixed points of :mod:`theory.fixed_points` (Σ_yx Σ⁺). Early fusion from a
small init reaches that M_*; late fusion ends at another interpolant, so B's threshold is
then a convention (half of B's block of the minimum-norm M_*), not half its final value.

All integrations go through one ``solve_ivp`` wrapper. Every function returns a
:class:`Trajectory` on a given epoch grid (t/τ = lr · epoch, τ = 1/lr) with the loss, E_g
when population statistics are given, and the crossing epochs of each modality: the
first upward crossing of half the modality's value at the fixed point where late fusion
learns it (for K = 2: half of A's unimodal Σ_yx,A Σ_A⁻¹ and half of B's value at M_*;
THEORY.md §7), by event location for flows and linear interpolation between epochs for
maps. Output dimension is 1 throughout (``syx`` of shape (1, D) or (D,)).

Initial conditions: ``u0`` is the per-layer scale of a balanced rank-one network
(‖W_X^tot(0)‖ = u0^L per modality in late fusion, ‖W^tot(0)‖ = u0^L in early fusion;
the chain's u_X(0) = u0, v(0) = √K u0). Its direction is the growing one, Σ_yx,X, flipped
when that points against the modality's eventual weights (the sign flip of §6.3). Actual
two-layer weights give the effective seed s_X(0) = ‖a + b‖²/4 of §6.10 instead
(:func:`effective_seed`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from operator import mul

import numpy as np
from scipy.integrate import solve_ivp

from linfusion.validation import check_array, check_choice, check_int, check_scalar

from .fixed_points import _check_moments, _check_psd, _readonly, _slices, _subset_weights
from .two_layer import _ANTI_COS, _schedule

__all__ = ["Trajectory", "Seed", "ChainCrossings", "flow", "chain_flow", "rank_one_map", "chain_map",
           "chain_map_many", "gram_map", "effective_seed", "crossing_time"]

# Above this input dimension the Gram map runs on numpy arrays, below it on Python floats
# (numpy's per-call overhead dominates for the paper's 2-dimensional toy data).
_PY_MAX_DIM = 6

# Cap on log-coordinates before exp: rejected trial steps of the solver may overshoot; no
# trajectory of these ODEs comes near e^300.
_EXP_MAX = 300.0


# ---------------------------------------------------------------------------------------
# Records.
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Trajectory:
    """A predicted training trajectory on an epoch grid, ready to overlay on a simulation.

    Attributes
    ----------
    epochs : ndarray of shape (n,)
        Epoch grid (t/τ = lr · epoch).
    lr : float
        Learning rate; τ = 1/lr epochs.
    dims : tuple of int
        Input dimension of each modality.
    w_tot : ndarray of shape (n, D)
        End-to-end weights at each epoch (scalar output).
    loss : ndarray of shape (n,)
        Training loss ½ syy − W Σ_yxᵀ + ½ W Σ Wᵀ.
    e_g : ndarray of shape (n,) or None
        Generalisation error ½ (W − W*) Σ_pop (W − W*)ᵀ, when ``sigma_pop`` and ``w_star``
        were given.
    t_cross : tuple of (float or None)
        Per modality, the epoch of the first upward crossing of its threshold; None if it
        does not cross within the grid.
    thresholds : tuple of float
        Per modality, half its value at the fixed point where it is learned.
    crossing : str
        'norm' (‖W_X‖ is compared) or 'projection' (W_X projected on that value's direction).
    method : str
        'flow', 'chain_flow', 'rank_one_map', 'chain_map' or 'gram_map'.
    scales : ndarray of shape (n, n_scales) or None
        Scalar-chain state: for 'chain_flow' the columns u_1..u_K then v (no v when
        L_f = L); for 'chain_map' every layer scalar, modality by modality (layers 1..L_f),
        then the shared layers L_f+1..L. None for the other methods.
    """

    epochs: np.ndarray
    lr: float
    dims: tuple
    w_tot: np.ndarray
    loss: np.ndarray
    e_g: np.ndarray | None
    t_cross: tuple
    thresholds: tuple
    crossing: str
    method: str
    scales: np.ndarray | None = None

    @property
    def t_tau(self):
        """Time in units of τ, ndarray of shape (n,)."""
        return self.lr * self.epochs

    @property
    def t_a(self):
        """Crossing epoch of modality A (0), or None."""
        return self.t_cross[0]

    @property
    def t_b(self):
        """Crossing epoch of modality B (1), or None."""
        return self.t_cross[1]

    @property
    def t_a_tau(self):
        """t_A/τ, or None."""
        return None if self.t_a is None else self.t_a * self.lr

    @property
    def t_b_tau(self):
        """t_B/τ, or None."""
        return None if self.t_b is None else self.t_b * self.lr

    @property
    def ratio(self):
        """t_B/t_A, or None if either crossing is missing."""
        if self.t_a is None or self.t_b is None or self.t_a == 0:
            return None
        return self.t_b / self.t_a

    def block(self, k):
        """W^tot of modality ``k`` over time, ndarray of shape (n, d_k)."""
        k = check_int("k", k, lo=0, hi=len(self.dims) - 1)
        return self.w_tot[:, _slices(self.dims)[k]]

    @property
    def w_norms(self):
        """‖W_X^tot‖ of every modality over time, ndarray of shape (n, K)."""
        return np.stack([np.linalg.norm(self.block(k), axis=1) for k in range(len(self.dims))], axis=1)


@dataclass(frozen=True, eq=False)
class Seed:
    """Effective balanced rank-one initial condition of an actual two-layer network.

    Attributes
    ----------
    s : ndarray of shape (K,) (late fusion) or (1,) (early fusion)
        Effective seeds s_X(0) = ‖a(0) + b(0)‖²/4 = ‖W_X^tot(0)‖ of the growing mode.
    w_init : ndarray of shape (D,)
        The equivalent initial end-to-end weights s_X · d̂_X.
    """

    s: np.ndarray
    w_init: np.ndarray


# ---------------------------------------------------------------------------------------
# Setup shared by every entry point.
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Problem:
    sigma: np.ndarray      # (D, D)
    syx: np.ndarray        # (D,)
    syy: float
    dims: tuple
    slices: list
    epochs: np.ndarray     # (n,)
    lr: float
    targets: list          # per modality: its value where it is learned, (d_k,)
    thresholds: np.ndarray  # (K,)
    m_star: np.ndarray     # (D,)
    crossing: str
    sigma_pop: np.ndarray | None
    w_star: np.ndarray | None


def _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing, *, integer_epochs):
    check_choice("crossing", crossing, ("norm", "projection"))
    sigma, syx, dims, syy = _check_moments(sigma, syx, dims, syy, out_one=True)
    lr = check_scalar("lr", lr, lo=0.0, lo_open=True)
    epochs = check_array("epochs", epochs, ndim=1)
    if epochs.size == 0:
        raise ValueError("epochs has 0 entries, must have at least 1.")
    if epochs[0] < 0:
        raise ValueError(f"epochs[0] == {float(epochs[0])!r}, must be >= 0.")
    if epochs.size > 1 and not np.all(np.diff(epochs) > 0):
        raise ValueError("epochs is not strictly increasing, must be.")
    if epochs[-1] <= 0:
        raise ValueError(f"epochs[-1] == {float(epochs[-1])!r}, must be > 0.")
    if integer_epochs and not np.all(epochs == np.round(epochs)):
        bad = float(epochs[epochs != np.round(epochs)][0])
        raise ValueError(f"epochs contains {bad!r}, must hold whole epochs for a discrete map.")
    if (sigma_pop is None) != (w_star is None):
        raise ValueError("sigma_pop and w_star must be given together (both or neither) for E_g.")
    if sigma_pop is not None:
        sigma_pop = _check_psd("sigma_pop", sigma_pop, dim=sigma.shape[0])
        w_star = check_array("w_star", np.ravel(np.asarray(w_star, dtype=float)), shape=(sigma.shape[0],))
    targets, m_star = _targets(sigma, syx, dims)
    thresholds = np.array([0.5 * np.linalg.norm(t) for t in targets])
    return _Problem(sigma=sigma, syx=syx[0].copy(), syy=syy, dims=dims, slices=_slices(dims),
                    epochs=epochs, lr=lr, targets=targets, thresholds=thresholds, m_star=m_star,
                    crossing=crossing, sigma_pop=sigma_pop, w_star=w_star)


def _targets(sigma, syx, dims):
    """Each modality's block at the fixed point where late fusion learns it, and M_*'s W."""
    sl = _slices(dims)
    order, _, n_learned = _schedule(sigma, syx, dims, "signed")
    targets = [np.zeros(d) for d in dims]
    for j in range(n_learned):
        w_j = _subset_weights(sigma, syx, dims, tuple(sorted(order[:j + 1])))[0]
        targets[order[j]] = w_j[sl[order[j]]].copy()
    m_star = _subset_weights(sigma, syx, dims, tuple(range(len(dims))))[0].copy()
    return targets, m_star


def _unit(v):
    n = np.linalg.norm(v)
    return v / n if n > 0 else None


def _growing_direction(corr, target):
    """Unit direction of the mode that ends up learned: along corr, unless anti-parallel."""
    d = _unit(corr)
    t = _unit(target)
    if d is None:
        d = t
    elif t is not None and float(d @ t) < _ANTI_COS:
        d = -d
    if d is None:
        d = np.zeros(corr.shape)
        d[0] = 1.0
    return d


def _directions(prob, fusion):
    """Per group (modality for late, whole input for early) the seed direction."""
    if fusion == "late":
        return [_growing_direction(prob.syx[s], prob.targets[k]) for k, s in enumerate(prob.slices)]
    return [_growing_direction(prob.syx, prob.m_star)]


def _groups(prob, fusion):
    return prob.slices if fusion == "late" else [slice(0, prob.sigma.shape[0])]


def _one_init(**given):
    named = [k for k, v in given.items() if v is not None]
    if len(named) != 1:
        listed = ", ".join(given)
        raise ValueError(f"exactly one initial condition must be given ({listed}); got "
                         f"{', '.join(named) if named else 'none'}.")
    return named[0]


def _check_u0(u0):
    return check_scalar("u0", u0, lo=0.0, lo_open=True)


def _weights(prob, fusion, w1, w2):
    """Validated two-layer weights as lists per group: W1 (h, d_g), W2 as (h,)."""
    groups = _groups(prob, fusion)
    if fusion == "early":
        w1, w2 = [w1], [w2]
    elif (not isinstance(w1, (list, tuple)) or not isinstance(w2, (list, tuple))
          or len(w1) != len(groups) or len(w2) != len(groups)):
        raise ValueError(f"w1 and w2 must be sequences of {len(groups)} arrays (one per modality) "
                         "for late fusion.")
    out1, out2 = [], []
    for k, (a, b, g) in enumerate(zip(w1, w2, groups)):
        tag = "" if fusion == "early" else f"[{k}]"
        a = check_array(f"w1{tag}", a, ndim=2)
        if a.shape[1] != g.stop - g.start:
            raise ValueError(f"w1{tag} has shape {a.shape}, must have {g.stop - g.start} columns "
                             "(the modality's input dimension).")
        b = check_array(f"w2{tag}", b, ndim=(1, 2))
        if b.ndim == 2 and b.shape[0] != 1:
            raise ValueError(f"w2{tag} has shape {b.shape}, must have 1 row (scalar output).")
        b = b.ravel()
        if b.shape[0] != a.shape[0]:
            raise ValueError(f"w2{tag} has {b.shape[0]} hidden units, must match w1{tag} ({a.shape[0]}).")
        out1.append(a)
        out2.append(b)
    return out1, out2


def _seed(prob, fusion, w1, w2):
    dirs = _directions(prob, fusion)
    s = np.array([np.sum((a @ d + b) ** 2) / 4.0 for a, b, d in zip(w1, w2, dirs)])
    w_init = np.concatenate([s_k * d for s_k, d in zip(s, dirs)])
    return s, w_init, dirs


def effective_seed(sigma, syx, dims, w1, w2, fusion="late"):
    """Effective growing-mode seed of an actual two-layer network (THEORY.md §6.10).

    Near zero the update mixes a = W¹_X d̂_X (first layer along the growing input direction)
    and b = W²_Xᵀ; a + b grows and a − b shrinks, so after a short transient the net is
    rank one and balanced with ‖W_X^tot‖ = s_X(0) = ‖a(0) + b(0)‖²/4. d̂_X is the unit
    Σ_yx,X, negated when that points against the weights the modality ends up with (the
    "a − b" case of a negative initial correlation).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (1, D) or (D,)
    dims : tuple of int
    w1 : sequence of ndarray of shape (h_X, d_X) (late) or ndarray of shape (h, D) (early)
        First-layer weights.
    w2 : sequence of ndarray of shape (1, h_X) (late) or ndarray of shape (1, h) (early)
        Second-layer weights (the row block read by each modality's hidden units).
    fusion : {'late', 'early'}

    Returns
    -------
    Seed
    """
    check_choice("fusion", fusion, ("late", "early"))
    sigma, syx, dims, _ = _check_moments(sigma, syx, dims, out_one=True)
    targets, m_star = _targets(sigma, syx, dims)
    prob = _Problem(sigma=sigma, syx=syx[0].copy(), syy=0.0, dims=dims, slices=_slices(dims),
                    epochs=None, lr=None, targets=targets, thresholds=None, m_star=m_star,
                    crossing="norm", sigma_pop=None, w_star=None)
    w1, w2 = _weights(prob, fusion, w1, w2)
    s, w_init, _ = _seed(prob, fusion, w1, w2)
    return Seed(s=_readonly(s), w_init=_readonly(w_init))


def crossing_time(epochs, values, threshold):
    """Epoch of the first upward crossing of ``threshold``, linearly interpolated.

    Parameters
    ----------
    epochs : ndarray of shape (n,)
        Increasing times.
    values : ndarray of shape (n,)
        The curve.
    threshold : float

    Returns
    -------
    epoch : float or None
        The first t with values[k − 1] < threshold <= values[k], interpolated between
        epochs[k − 1] and epochs[k]; None if the curve never crosses upward.
    """
    epochs = check_array("epochs", epochs, ndim=1)
    values = check_array("values", values, shape=(epochs.shape[0],))
    threshold = check_scalar("threshold", threshold)
    return _first_up(epochs, values, threshold)


def _first_up(epochs, values, thr):
    hit = np.flatnonzero((values[:-1] < thr) & (values[1:] >= thr))
    if hit.size == 0:
        return None
    k = hit[0]
    v0, v1 = values[k], values[k + 1]
    return float(epochs[k] + (thr - v0) / (v1 - v0) * (epochs[k + 1] - epochs[k]))


def _progress(prob, w):
    """Per modality the crossing quantity of W, ndarray of shape (n, K) for w (n, D)."""
    cols = []
    for k, s in enumerate(prob.slices):
        if prob.crossing == "norm":
            cols.append(np.linalg.norm(w[:, s], axis=1))
        else:
            t = _unit(prob.targets[k])
            cols.append(w[:, s] @ t if t is not None else np.zeros(w.shape[0]))
    return np.stack(cols, axis=1)


def _finish(prob, w, t_cross, method, scales=None):
    loss = 0.5 * prob.syy - w @ prob.syx + 0.5 * np.einsum("nd,de,ne->n", w, prob.sigma, w)
    e_g = None
    if prob.sigma_pop is not None:
        d = w - prob.w_star
        e_g = _readonly(0.5 * np.einsum("nd,de,ne->n", d, prob.sigma_pop, d))
    return Trajectory(epochs=_readonly(prob.epochs), lr=prob.lr, dims=prob.dims, w_tot=_readonly(w),
                      loss=_readonly(loss), e_g=e_g, t_cross=tuple(t_cross),
                      thresholds=tuple(float(t) for t in prob.thresholds), crossing=prob.crossing,
                      method=method, scales=None if scales is None else _readonly(scales))


def _finish_map(prob, w_all, method, scales=None):
    """Trajectory from a map's per-epoch record w_all (n_steps + 1, D)."""
    steps = np.arange(w_all.shape[0], dtype=float)
    q = _progress(prob, w_all)
    t_cross = [(_first_up(steps, q[:, k], thr) if thr > 0 else None)
               for k, thr in enumerate(prob.thresholds)]
    idx = prob.epochs.astype(np.int64)
    return _finish(prob, w_all[idx], t_cross, method, None if scales is None else scales[idx])


# ---------------------------------------------------------------------------------------
# Gradient flow.
# ---------------------------------------------------------------------------------------

def _solve(rhs, y0, t_end, t_eval, events, rtol, atol, solver):
    """The one ``solve_ivp`` wrapper: integrate in units of τ, raise on failure."""
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
    t_cross = [None] * len(prob.dims)
    for k, t_ev in zip(owners, sol.t_events or []):
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

    Late fusion (THEORY.md §6.3): every modality's W_X follows
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
        Compare ‖W_X‖ (THEORY.md §7) or W_X projected on its target direction.
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


def _chain_setup(sigma, syx, syy, depth, fuse_depth, epochs, lr, sigma_pop, w_star, crossing,
                 integer_epochs):
    depth = check_int("depth", depth, lo=1)
    fuse_depth = check_int("fuse_depth", fuse_depth, lo=1, hi=depth, hi_name="depth")
    sigma = _check_psd("sigma", sigma)
    dims = (1,) * sigma.shape[0]
    if len(dims) < 2:
        raise ValueError(f"sigma has shape {sigma.shape}, must be at least (2, 2): the scalar chain "
                         "has one scalar input per modality.")
    prob = _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing,
                  integer_epochs=integer_epochs)
    signs = np.array([float(d[0]) for d in _directions(prob, "late")])
    return depth, fuse_depth, prob, signs


def chain_flow(sigma, syx, syy, depth, fuse_depth, epochs, lr, *, u0=None, u_init=None,
               sigma_pop=None, w_star=None, crossing="norm", rtol=1e-10, solver="LSODA"):
    """Integrate the balanced scalar-chain ODE of depth-L fusion at layer L_f (THEORY.md §6.6).

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
        u_X(0) = u0 and v(0) = √K u0 (balanced; the deep "init" of THEORY.md §5).
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


# ---------------------------------------------------------------------------------------
# Exact discrete-time maps at the simulation's learning rate (THEORY.md §6.10).
# ---------------------------------------------------------------------------------------

def _gram_python(sigma, syx, groups, w0, q0, n0, lr, wd, n_steps):
    """Gram-state map on Python floats (small D); returns W at every epoch, (n_steps + 1, D)."""
    dim = len(w0)
    s_cols = [[float(sigma[i, j]) for i in range(dim)] for j in range(dim)]  # column j of Σ
    syx = [float(x) for x in syx]
    w = [float(x) for x in w0]
    qs = [[[float(x) for x in row] for row in q] for q in q0]
    ns = [float(x) for x in n0]
    cols = [list(range(g.start, g.stop)) for g in groups]
    c = 1.0 - lr * wd
    c2, ce, e2 = c * c, c * lr, lr * lr
    out = np.empty((n_steps + 1, dim))
    out[0] = w
    rng = range(dim)
    for step in range(1, n_steps + 1):
        grad = [syx[j] - sum([w[i] * s_cols[j][i] for i in rng]) for j in rng]
        new_w = w[:]
        for gi, cl in enumerate(cols):
            q, n = qs[gi], ns[gi]
            gg = [grad[j] for j in cl]
            wg = [w[j] for j in cl]
            idx = range(len(cl))
            gq = [sum([gg[a] * q[a][b] for a in idx]) for b in idx]
            gw = sum([gg[a] * wg[a] for a in idx])
            gqg = sum([gg[a] * gq[a] for a in idx])
            for a in idx:
                new_w[cl[a]] = c2 * wg[a] + ce * (n * gg[a] + gq[a]) + e2 * gw * gg[a]
            qs[gi] = [[c2 * q[a][b] + ce * (gg[a] * wg[b] + wg[a] * gg[b]) + e2 * n * gg[a] * gg[b]
                       for b in idx] for a in idx]
            ns[gi] = c2 * n + 2.0 * ce * gw + e2 * gqg
        w = new_w
        out[step] = w
        if not step & 255 and not all(map(math.isfinite, w)):
            return out[:step + 1]
    return out


def _gram_scalar(sigma, syx, w0, q0, n0, lr, wd, n_steps):
    """Gram-state map when every modality is one scalar input (late fusion on the toy data).

    Same map as :func:`_gram_python` with 1×1 blocks, unrolled: this is the inner loop of
    toy sweeps.
    """
    n_mod = len(w0)
    s_cols = [[float(sigma[i, j]) for i in range(n_mod)] for j in range(n_mod)]
    syx = [float(x) for x in syx]
    w = [float(x) for x in w0]
    qs = [float(np.ravel(q)[0]) for q in q0]
    ns = [float(x) for x in n0]
    c = 1.0 - lr * wd
    c2, ce, e2 = c * c, c * lr, lr * lr
    ce2 = 2.0 * ce
    out = np.empty((n_steps + 1, n_mod))
    out[0] = w
    rng = range(n_mod)
    pairs = [(j, s_cols[j], syx[j]) for j in rng]
    for step in range(1, n_steps + 1):
        new_w = w[:]
        for j, col, s_j in pairs:
            g = s_j - sum(map(mul, w, col))
            q, n, wj = qs[j], ns[j], w[j]
            gw = g * wj
            new_w[j] = c2 * wj + ce * (n + q) * g + e2 * gw * g
            qs[j] = c2 * q + ce2 * gw + e2 * n * g * g
            ns[j] = c2 * n + ce2 * gw + e2 * q * g * g
        w = new_w
        out[step] = w
        if not step & 255 and not all(map(math.isfinite, w)):
            return out[:step + 1]
    return out


def _gram_numpy(sigma, syx, groups, w0, q0, n0, lr, wd, n_steps):
    """Gram-state map on arrays (any D): one (W_g, Q_g, N_g) per group, coupled through G."""
    w = np.array(w0, dtype=float)
    qs = [np.array(q, dtype=float) for q in q0]
    ns = [float(n) for n in n0]
    c = 1.0 - lr * wd
    c2, ce, e2 = c * c, c * lr, lr * lr
    out = np.empty((n_steps + 1, len(w0)))
    out[0] = w
    with np.errstate(all="ignore"):  # a diverging run is reported by _check_finite
        for step in range(1, n_steps + 1):
            grad = syx - w @ sigma
            new_w = np.empty_like(w)
            for j, g in enumerate(groups):
                g_g, w_g, q, n = grad[g], w[g], qs[j], ns[j]
                gq = g_g @ q
                gw = g_g @ w_g
                new_w[g] = c2 * w_g + ce * (n * g_g + gq) + (e2 * gw) * g_g
                # c²Q + cη(GᵀW + WᵀG) + η² N GᵀG written as c²Q + A + Aᵀ (Q stays symmetric)
                a = np.outer(g_g, ce * w_g + (0.5 * e2 * n) * g_g)
                qs[j] = c2 * q + a + a.T
                ns[j] = c2 * n + 2.0 * ce * gw + e2 * (gq @ g_g)
            w = new_w
            out[step] = w
            if not step & 255 and not np.all(np.isfinite(w)):
                return out[:step + 1]
    return out


def _gram_run(prob, groups, w0, q0, n0, wd, method):
    n_steps = int(prob.epochs[-1])
    if all(g.stop - g.start == 1 for g in groups):
        w_all = _gram_scalar(prob.sigma, prob.syx, w0, q0, n0, prob.lr, wd, n_steps)
    else:
        run = _gram_python if prob.sigma.shape[0] <= _PY_MAX_DIM else _gram_numpy
        w_all = run(prob.sigma, prob.syx, groups, w0, q0, n0, prob.lr, wd, n_steps)
    _check_finite(w_all, prob.lr, n_steps)
    return _finish_map(prob, w_all, method)


def _check_finite(w_all, lr, n_steps):
    bad = ~np.all(np.isfinite(w_all), axis=1)
    if np.any(bad) or w_all.shape[0] < n_steps + 1:
        step = int(np.flatnonzero(bad)[0]) if np.any(bad) else w_all.shape[0] - 1
        raise RuntimeError(f"the map diverged at epoch {step} (non-finite W_tot) with lr == {lr!r}; "
                           "use a learning rate under the stability bound (about 1/λ_max of the "
                           "Gram matrices).")


def _check_wd(weight_decay):
    return check_scalar("weight_decay", weight_decay, lo=0.0)


def gram_map(sigma, syx, syy, dims, epochs, lr, w1, w2, *, fusion="late", weight_decay=0.0,
             sigma_pop=None, w_star=None, crossing="norm"):
    """Exact full-batch GD of a two-layer linear net through its Gram state (THEORY.md §6.10).

    With G = Σ_yx − W^tot Σ, Q = W¹ᵀW¹ and N = W²W²ᵀ, one GD step maps

        W^tot ← c²W^tot + cη (N G + G Q) + η² G W^totᵀ G
        Q     ← c²Q + cη (Gᵀ W^tot + W^totᵀ G) + η² Gᵀ N G
        N     ← c²N + cη (W^tot Gᵀ + G W^totᵀ) + η² G Q Gᵀ

    with c = 1 − η λ (λ = ``weight_decay``, the gradient of ½λ‖θ‖² evaluated at the old
    weights, as in ``w ← w − η (∇L + λ w)``). Late fusion keeps one (W_X, Q_X, N_X) per
    modality, coupled only through G; early fusion keeps one. The trajectory equals the
    network's to rounding, whatever its width and number of samples, and whether or not Σ
    is singular (n < D samples).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
        Training input second moment, symmetric positive semi-definite.
    syx : ndarray of shape (1, D) or (D,)
    syy : float
    dims : tuple of int
    epochs : ndarray of shape (n,)
        Whole epochs, strictly increasing, last > 0.
    lr : float
    w1 : sequence of ndarray of shape (h_X, d_X) (late) or ndarray of shape (h, D) (early)
        Initial first-layer weights.
    w2 : sequence of ndarray of shape (1, h_X) (late) or ndarray of shape (1, h) (early)
        Initial second-layer weights.
    fusion : {'late', 'early'}
    weight_decay : float
        λ >= 0.
    sigma_pop, w_star : optional
        Population statistics for E_g.
    crossing : {'norm', 'projection'}

    Returns
    -------
    Trajectory

    Raises
    ------
    RuntimeError
        If W_tot becomes non-finite (lr above the stability bound).
    """
    check_choice("fusion", fusion, ("late", "early"))
    wd = _check_wd(weight_decay)
    prob = _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing, integer_epochs=True)
    w1, w2 = _weights(prob, fusion, w1, w2)
    groups = _groups(prob, fusion)
    w0 = np.concatenate([b @ a for a, b in zip(w1, w2)])
    q0 = [a.T @ a for a in w1]
    n0 = [float(b @ b) for b in w2]
    return _gram_run(prob, groups, w0, q0, n0, wd, "gram_map")


def rank_one_map(sigma, syx, syy, dims, epochs, lr, *, fusion="late", u0=None, w1=None, w2=None,
                 w_init=None, weight_decay=0.0, sigma_pop=None, w_star=None, crossing="norm"):
    """Exact GD map of a balanced rank-one two-layer net (THEORY.md §6.10).

    W¹_X = v_X p_Xᵀ, W²_X = q_X v_Xᵀ stays rank one under GD:
    p_X ← p_X + η q_X g_Xᵀ, q_X ← q_X + η g_X·p_X, W_X = q_X p_Xᵀ (scalar inputs, p = q = u:
    u ← u (1 + η g_X), W_X = u²). Iterated here through the equivalent Gram state
    (W = q pᵀ, Q = p pᵀ, N = q²), which is the same map. Early fusion shares one (p, q).

    Parameters
    ----------
    sigma : ndarray of shape (D, D)
    syx : ndarray of shape (1, D) or (D,)
    syy : float
    dims : tuple of int
    epochs : ndarray of shape (n,)
        Whole epochs.
    lr : float
    fusion : {'late', 'early'}
    u0 : float, optional
        p_X = u0 d̂_X, q_X = u0 (‖W_X(0)‖ = u0²).
    w1, w2 : optional
        Actual two-layer weights: start from their effective seeds p = q = √s_X
        (:func:`effective_seed`). Use :func:`gram_map` for the exact trajectory of those
        weights.
    w_init : ndarray of shape (D,), optional
        Initial end-to-end weights; each block becomes a balanced rank-one mode.
    weight_decay : float
    sigma_pop, w_star : optional
    crossing : {'norm', 'projection'}

    Returns
    -------
    Trajectory
    """
    check_choice("fusion", fusion, ("late", "early"))
    wd = _check_wd(weight_decay)
    prob = _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing, integer_epochs=True)
    groups = _groups(prob, fusion)
    how = _one_init(u0=u0, w1=w1 if w2 is None else w2, w_init=w_init)
    if how == "u0":
        u0 = _check_u0(u0)
        scales = [u0 * u0] * len(groups)
        dirs = _directions(prob, fusion)
    elif how == "w1":
        if w1 is None or w2 is None:
            raise ValueError("w1 and w2 must be given together.")
        s, _, dirs = _seed(prob, fusion, *_weights(prob, fusion, w1, w2))
        scales = list(s)
    else:
        w_i = check_array("w_init", np.ravel(np.asarray(w_init, dtype=float)), shape=(prob.sigma.shape[0],))
        scales = [float(np.linalg.norm(w_i[g])) for g in groups]
        if min(scales) == 0:
            raise ValueError("w_init has a zero block, must be nonzero: a zero mode never grows.")
        dirs = [w_i[g] / s_k for g, s_k in zip(groups, scales)]
    w0 = np.concatenate([s_k * d for s_k, d in zip(scales, dirs)])
    q0 = [s_k * np.outer(d, d) for s_k, d in zip(scales, dirs)]
    return _gram_run(prob, groups, w0, q0, list(scales), wd, "rank_one_map")


# ---------------------------------------------------------------------------------------
# The aligned rank-one chain map: one update rule for one chain or a batch of chains.
# ---------------------------------------------------------------------------------------
#
# The state is a list per modality of its pre-fusion scalars and a list of the shared
# scalars. Every entry is a Python float (one chain, chain_map) or an ndarray of shape (R,)
# (R chains, chain_map_many); the moments are floats (shared) or (R,) arrays (per chain).
# The rule uses only + − ×, so the same code runs on both, with the same rounding: a chain
# of a batch follows chain_map's trajectory bit for bit. (Python floats are ~5× faster
# than numpy arrays of one element, which matters for the 10⁴-10⁵ epochs of one chain.)

def _prod(xs):
    """x_0 · x_1 · …, left to right; 1.0 for no factor."""
    if not xs:
        return 1.0
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _others(xs):
    """For every entry, the product of the other entries: no division, exact at zeros.

    Entry l is (x_0 ⋯ x_{l−1}) · (x_{n−1} ⋯ x_{l+1}), from a prefix and a suffix product.
    """
    n = len(xs)
    if n == 1:
        return [1.0]
    left = [xs[0]]                      # left[i] = x_0 ⋯ x_i
    for x in xs[1:-1]:
        left.append(left[-1] * x)
    right = [xs[-1]]                    # right[i] = x_{n−1} ⋯ x_{n−1−i}
    for x in xs[-2:0:-1]:
        right.append(right[-1] * x)
    return [right[n - 2]] + [left[l - 1] * right[n - 2 - l] for l in range(1, n - 1)] + [left[n - 2]]


def _chain_states(pre, post, cols, syx, lr, n_steps):
    """Iterate the chain map; yield (step, W, pre, post) at steps 0..n_steps.

    One GD step adds η g_X ∂W_X/∂a to every scalar a, all at the old values, with
    W_X = Π post · Π pre_X and g = Σ_yx − W Σ:

        pre_X,l ← pre_X,l + η g_X (Π post) Π_{l' ≠ l} pre_X,l'
        post_j  ← post_j  + η (Σ_X g_X Π pre_X) Π_{j' ≠ j} post_j'

    ``cols[j][i]`` is Σ_ij (column j of Σ), ``syx[j]`` is Σ_yx,j. The consumer stops early
    by breaking out of the loop.
    """
    rng = range(len(pre))
    for step in range(n_steps + 1):
        c_all = _prod(post)
        p = [_prod(row) for row in pre]
        w = [c_all * p_k for p_k in p]
        yield step, w, pre, post
        if step == n_steps:
            return
        g = [s_j - _dot(w, col) for s_j, col in zip(syx, cols)]
        if post:
            h = lr * _dot(g, p)
            post = [c + h * o for c, o in zip(post, _others(post))]
        pre = [[a + f * o for a, o in zip(pre[k], _others(pre[k]))] for k, f in
               zip(rng, [lr * g_k * c_all for g_k in g])]


def _dot(xs, ys):
    out = xs[0] * ys[0]
    for x, y in zip(xs[1:], ys[1:]):
        out = out + x * y
    return out


def chain_map(sigma, syx, syy, depth, fuse_depth, epochs, lr, *, u0=None, layer_scales=None,
              sigma_pop=None, w_star=None, crossing="norm"):
    """Exact GD map of an aligned rank-one depth-L fusion chain, one scalar per layer (§6.10).

    Layers W_l = a_l v_l v_{l−1}ᵀ with aligned unit vectors reduce to scalars: per modality X
    the pre-fusion layers a_{X,1..L_f} (a_{X,L_f} is X's block of the fusion layer), then the
    shared layers c_{L_f+1..L}; W_X = Π c · Π_l a_{X,l}. One GD step on the loss adds
    η g_X ∂W_X/∂a to every scalar (all evaluated at the old values). Scalar inputs. The
    update is the one of :func:`chain_map_many`, which runs many chains at once and returns
    only their crossing epochs; a chain there follows this trajectory exactly.

    Parameters
    ----------
    sigma : ndarray of shape (K, K)
        Input second moment of K >= 2 scalar modalities (positive semi-definite).
    syx : ndarray of shape (1, K) or (K,)
    syy : float
    depth : int
        L >= 1.
    fuse_depth : int
        1 <= L_f <= L.
    epochs : ndarray of shape (n,)
        Whole epochs.
    lr : float
    u0 : float, optional
        Balanced start: every pre-fusion scalar u0 (the first one carries the sign of the
        modality's eventual weight), every shared scalar √K u0.
    layer_scales : tuple (pre, post), optional
        pre : ndarray of shape (K, L_f), post : ndarray of shape (L − L_f,). Used as given
        (signs included).
    sigma_pop, w_star : optional
    crossing : {'norm', 'projection'}

    Returns
    -------
    Trajectory

    Raises
    ------
    RuntimeError
        If W_tot becomes non-finite (lr above the stability bound).
    """
    big_l, l_f, prob, signs = _chain_setup(sigma, syx, syy, depth, fuse_depth, epochs, lr, sigma_pop,
                                           w_star, crossing, True)
    n_mod, m = len(prob.dims), big_l - l_f
    how = _one_init(u0=u0, layer_scales=layer_scales)
    if how == "u0":
        u0 = _check_u0(u0)
        pre = [[float(signs[k]) * u0] + [u0] * (l_f - 1) for k in range(n_mod)]
        post = [math.sqrt(n_mod) * u0] * m
    else:
        if not isinstance(layer_scales, (tuple, list)) or len(layer_scales) != 2:
            raise ValueError("layer_scales must be a pair (pre, post).")
        pre = check_array("layer_scales[0] (pre)", layer_scales[0], shape=(n_mod, l_f)).tolist()
        post = check_array("layer_scales[1] (post)", np.ravel(np.asarray(layer_scales[1], dtype=float)),
                           shape=(m,)).tolist()
    n_steps = int(prob.epochs[-1])
    rec_w, rec_s = [], []
    for step, w, pre_s, post_s in _chain_states(pre, post, prob.sigma.T.tolist(), prob.syx.tolist(),
                                                prob.lr, n_steps):
        rec_w.append(w)
        rec_s.append([x for row in pre_s for x in row] + post_s)
        if not step & 255 and not all(map(math.isfinite, w)):
            break
    out = np.array(rec_w)
    scales = np.array(rec_s).reshape(len(rec_s), n_mod * l_f + m)
    _check_finite(out, prob.lr, n_steps)
    return _finish_map(prob, out, "chain_map", scales=scales)


@dataclass(frozen=True, eq=False)
class ChainCrossings:
    """Crossing epochs of a batch of scalar chains (:func:`chain_map_many`).

    Attributes
    ----------
    t_cross : ndarray of shape (R, K)
        Per chain and modality, the epoch of the first upward crossing of its threshold
        (linearly interpolated, as :attr:`Trajectory.t_cross`); NaN if not within the
        epochs run.
    thresholds : ndarray of shape (R, K)
        The thresholds used.
    diverged : ndarray of shape (R,)
        True where W_tot became non-finite (lr above the stability bound).
    n_epochs : int
        Epochs iterated (all chains run together until the stop rule holds).
    """

    t_cross: np.ndarray
    thresholds: np.ndarray
    diverged: np.ndarray
    n_epochs: int

    @property
    def t_a(self):
        """Crossing epochs of modality A (0), ndarray of shape (R,)."""
        return self.t_cross[:, 0]

    @property
    def t_b(self):
        """Crossing epochs of modality B (1), ndarray of shape (R,)."""
        return self.t_cross[:, 1]

    @property
    def ratio(self):
        """t_B/t_A per chain, ndarray of shape (R,) (NaN where either is missing)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.t_b / self.t_a


def _batch(name, value, item_ndim, item_shape=None):
    """``value`` as a float array with one leading batch axis (size 1 if unbatched)."""
    arr = check_array(name, value)
    shape = arr.shape
    if arr.ndim == item_ndim:
        arr = arr[None]
    if arr.ndim != item_ndim + 1:
        raise ValueError(f"{name} has shape {shape}, must have {item_ndim} or {item_ndim + 1} "
                         "dimensions (one chain, or a leading axis of chains).")
    if item_shape is not None and arr.shape[1:] != tuple(item_shape):
        raise ValueError(f"{name} has shape {shape}, must be {tuple(item_shape)} or "
                         f"(R, {', '.join(str(d) for d in item_shape)}).")
    return arr


def _n_chains(**sizes):
    sizes = {k: v for k, v in sizes.items() if v != 1}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"the batch sizes ({listed}) must agree (or be 1, shared by every chain).")
    return next(iter(sizes.values()), 1)


def chain_map_many(sigma, syx, depth, fuse_depth, lr, max_epochs, *, u0=None, layer_scales=None,
                   thresholds=None, crossing="norm", stop=None):
    """Crossing epochs of many aligned rank-one chains under GD at rate lr (THEORY.md §6.10).

    The map of :func:`chain_map`, iterated for R chains at once (each with its own
    moments or sharing one, its own initial scalars), stopping when every chain has crossed
    (``stop``). A chain of the batch follows :func:`chain_map`'s trajectory bit for bit;
    only the crossing epochs are kept, so a sweep of hundreds of chains over 10⁵ epochs runs
    in seconds and little memory.

    Parameters
    ----------
    sigma : ndarray of shape (K, K) or (R, K, K)
        Input second moment of K >= 2 scalar modalities, shared or per chain (positive
        semi-definite).
    syx : ndarray of shape (K,) or (R, K)
        Input-output correlation, shared or per chain.
    depth : int
        L >= 1.
    fuse_depth : int
        1 <= L_f <= L.
    lr : float
    max_epochs : int
        Upper bound on the epochs iterated.
    u0 : float or ndarray of shape (R,), optional
        Balanced start per chain, as in :func:`chain_map` (the first pre-fusion scalar
        carries the sign of the modality's eventual weight).
    layer_scales : tuple (pre, post), optional
        pre : ndarray of shape (K, L_f) or (R, K, L_f); post : ndarray of shape (L − L_f,)
        or (R, L − L_f). Used as given (signs included).
    thresholds : ndarray of shape (K,) or (R, K), optional
        Threshold of every modality. Default: half its value at the fixed point where late
        fusion learns it, from each chain's moments (as :func:`chain_map`).
    crossing : {'norm', 'projection'}
        Compare |W_X|, or W_X times the sign of the modality's eventual weight.
    stop : int, optional
        Stop once every chain has crossed modality ``stop`` (or diverged). Default: once
        every chain has crossed every modality with a positive threshold.

    Returns
    -------
    ChainCrossings
    """
    check_choice("crossing", crossing, ("norm", "projection"))
    big_l = check_int("depth", depth, lo=1)
    l_f = check_int("fuse_depth", fuse_depth, lo=1, hi=big_l, hi_name="depth")
    lr = check_scalar("lr", lr, lo=0.0, lo_open=True)
    max_epochs = check_int("max_epochs", max_epochs, lo=0)
    m = big_l - l_f
    sig = _batch("sigma", sigma, 2)
    n_mod = sig.shape[1]
    if n_mod < 2 or sig.shape[2] != n_mod:
        raise ValueError(f"sigma has shape {np.shape(sigma)}, must be (K, K) or (R, K, K) with K >= 2: "
                         "the scalar chain has one scalar input per modality.")
    sy = _batch("syx", syx, 1, (n_mod,))
    if stop is not None:
        stop = check_int("stop", stop, lo=0, hi=n_mod - 1, hi_name="K - 1")
    how = _one_init(u0=u0, layer_scales=layer_scales)
    if how == "u0":
        u0s = check_array("u0", np.atleast_1d(np.asarray(u0, dtype=float)), ndim=1)
        if np.any(u0s <= 0):
            check_scalar("u0", float(u0s[u0s <= 0][0]), lo=0.0, lo_open=True)
        pre0 = post0 = None
        n_init = u0s.shape[0]
    else:
        if not isinstance(layer_scales, (tuple, list)) or len(layer_scales) != 2:
            raise ValueError("layer_scales must be a pair (pre, post).")
        pre0 = _batch("layer_scales[0] (pre)", layer_scales[0], 2, (n_mod, l_f))
        post0 = _batch("layer_scales[1] (post)", layer_scales[1], 1, (m,))
        n_init = _n_chains(pre=pre0.shape[0], post=post0.shape[0])
    thr = None if thresholds is None else _batch("thresholds", thresholds, 1, (n_mod,))
    n = _n_chains(sigma=sig.shape[0], syx=sy.shape[0], initial_condition=n_init,
                  thresholds=1 if thr is None else thr.shape[0])

    # Per set of moments: validation, default thresholds, sign of the eventual weights.
    n_mom = max(sig.shape[0], sy.shape[0])
    sig_b = np.broadcast_to(sig, (n_mom, n_mod, n_mod))
    sy_b = np.broadcast_to(sy, (n_mom, n_mod))
    dims = (1,) * n_mod
    half = np.empty((n_mom, n_mod))
    signs = np.empty((n_mom, n_mod))
    for r in range(n_mom):
        s_r, y_r, _, _ = _check_moments(sig_b[r], sy_b[r], dims, out_one=True)
        targets, _ = _targets(s_r, y_r, dims)
        half[r] = [0.5 * np.linalg.norm(t) for t in targets]
        signs[r] = [_growing_direction(y_r[0, k:k + 1], targets[k])[0] for k in range(n_mod)]
    thr = np.broadcast_to(half if thr is None else thr, (n, n_mod)).astype(float)
    signs = np.broadcast_to(signs, (n, n_mod))
    if how == "u0":
        u0s = np.broadcast_to(u0s, (n,))
        pre0 = np.empty((n, n_mod, l_f))
        pre0[:] = u0s[:, None, None]
        pre0[:, :, 0] *= signs
        post0 = np.broadcast_to(math.sqrt(n_mod) * u0s[:, None], (n, m))
    pre = [[np.array(np.broadcast_to(pre0[:, k, l], (n,))) for l in range(l_f)] for k in range(n_mod)]
    post = [np.array(np.broadcast_to(post0[:, j], (n,))) for j in range(m)]

    def entry(a):
        # a shared moment stays a float: cheaper, and broadcasts against the (R,) state
        return float(a[0]) if a.shape[0] == 1 else np.ascontiguousarray(a)
    cols = [[entry(sig[:, i, j]) for i in range(n_mod)] for j in range(n_mod)]
    syx_ = [entry(sy[:, j]) for j in range(n_mod)]

    watch = [stop] if stop is not None else list(range(n_mod))
    t = [np.full(n, np.nan) for _ in range(n_mod)]
    thr_k = [np.ascontiguousarray(thr[:, k]) for k in range(n_mod)]
    pos_k = [x > 0 for x in thr_k]                # as chain_map: no crossing of a threshold <= 0
    sgn_k = [np.ascontiguousarray(signs[:, k]) for k in range(n_mod)]
    diverged = np.zeros(n, dtype=bool)

    def still_open():
        # chains that have a watched modality left to cross, and have not diverged
        out = np.zeros(n, dtype=bool)
        for k in watch:
            out |= pos_k[k] & np.isnan(t[k])
        return out & ~diverged

    open_ = still_open()
    prev = [None] * n_mod
    step = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for step, w, _, _ in _chain_states(pre, post, cols, syx_, lr, max_epochs):
            for k in range(n_mod):
                q = np.abs(w[k]) if crossing == "norm" else w[k] * sgn_k[k]
                if prev[k] is not None:
                    hit = (q >= thr_k[k]) & (prev[k] < thr_k[k])
                    if hit.any():
                        hit &= pos_k[k] & np.isnan(t[k]) & np.isfinite(q)    # an overflow is no crossing
                        q0 = prev[k][hit]
                        t[k][hit] = (step - 1) + (thr_k[k][hit] - q0) / (q[hit] - q0)
                        open_ = still_open()
                prev[k] = q
            if not step & 255:
                diverged |= ~np.all(np.isfinite(w), axis=0)
                open_ = still_open()
            if not open_.any():
                break
    diverged |= ~np.all(np.isfinite(w), axis=0)
    t_cross = np.stack(t, axis=1)
    return ChainCrossings(t_cross=_readonly(t_cross), thresholds=_readonly(thr),
                          diverged=_readonly_bool(diverged), n_epochs=int(step))


def _readonly_bool(arr):
    arr = np.array(arr, dtype=bool)
    arr.setflags(write=False)
    return arr
