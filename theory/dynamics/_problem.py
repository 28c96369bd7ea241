"""Setup and finishing shared by the flows, maps and chains of :mod:`theory.dynamics`.

A ``_Problem`` holds the validated moments, the epoch grid and the crossing thresholds;
``_finish`` turns a stack of end-to-end weights into a :class:`Trajectory` (loss, E_g and
the crossing epochs). Crossing thresholds: per modality, half its value at the fixed point
where late fusion learns it (for K = 2: half of A's unimodal Σ_yx,A Σ_A⁻¹ and half of B's
value at M_*; theory.md §7). Growing directions: Σ_yx,X, flipped when that points against
the modality's eventual weights (the sign flip of §6.3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion.analysis import crossing_time, generalization_error
from linfusion.validation import check_array, check_choice

from .._checks import (_check_depths, _check_epochs, _check_lr, _check_moments, _check_psd, _readonly,
                       _slices)
from ..fixed_points import _subset_weights
from ..two_layer import _ANTI_COS, _schedule
from .records import Trajectory


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
    lr = _check_lr(lr)
    epochs = _check_epochs(epochs, integer=integer_epochs)
    if (sigma_pop is None) != (w_star is None):
        raise ValueError("sigma_pop and w_star must be given together (both or neither) for E_g.")
    if sigma_pop is not None:
        sigma_pop = _check_psd("sigma_pop", sigma_pop, dim=sigma.shape[0])
        w_star = check_array("w_star", np.ravel(np.asarray(w_star, dtype=float)), shape=(sigma.shape[0],))
    return _problem(sigma, syx, syy, dims, epochs, lr, crossing, sigma_pop, w_star)


def _problem(sigma, syx, syy, dims, epochs=None, lr=None, crossing="norm", sigma_pop=None, w_star=None):
    """A _Problem from validated inputs."""
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
    """Effective seeds s_X = ‖a + b‖²/4, the equivalent W_init and the seed directions."""
    dirs = _directions(prob, fusion)
    s = np.array([np.sum((a @ d + b) ** 2) / 4.0 for a, b, d in zip(w1, w2, dirs)])
    w_init = np.concatenate([s_k * d for s_k, d in zip(s, dirs)])
    return s, w_init, dirs


def _chain_setup(sigma, syx, syy, depth, fuse_depth, epochs, lr, sigma_pop, w_star, crossing,
                 integer_epochs):
    """Validated scalar-chain problem: (L, L_f, problem, sign of each modality's eventual weight)."""
    depth, fuse_depth = _check_depths(depth, fuse_depth)
    sigma = _check_psd("sigma", sigma)
    dims = (1,) * sigma.shape[0]
    if len(dims) < 2:
        raise ValueError(f"sigma has shape {sigma.shape}, must be at least (2, 2): the scalar chain "
                         "has one scalar input per modality.")
    prob = _setup(sigma, syx, syy, dims, epochs, lr, sigma_pop, w_star, crossing,
                  integer_epochs=integer_epochs)
    signs = np.array([float(d[0]) for d in _directions(prob, "late")])
    return depth, fuse_depth, prob, signs


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
    """The Trajectory of end-to-end weights ``w`` (n, D) on the problem's epochs.

    The loss ½ syy − W Σ_yxᵀ + ½ W Σ Wᵀ is evaluated as L_min + ½ (W − M_*) Σ (W − M_*)ᵀ
    (equal, since M_* Σ = Σ_yx), with L_min = ½ (syy − M_* Σ_yxᵀ) clipped at 0 (a noiseless
    fit's L_min is a rounding residue of either sign): accurate to the last digits near the
    minimum and never negative, as the engine reports it.
    """
    l_min = max(0.0, 0.5 * (prob.syy - float(prob.m_star @ prob.syx)))
    d = w - prob.m_star
    loss = l_min + 0.5 * np.einsum("nd,de,ne->n", d, prob.sigma, d)
    e_g = None
    if prob.sigma_pop is not None:
        e_g = _readonly(generalization_error(w[:, None, :], prob.sigma_pop, prob.w_star[None, :]))
    return Trajectory(epochs=_readonly(prob.epochs), lr=prob.lr, dims=prob.dims, w_tot=_readonly(w),
                      loss=_readonly(loss), e_g=e_g, t_cross=tuple(float(t) for t in t_cross),
                      thresholds=tuple(float(t) for t in prob.thresholds), crossing=prob.crossing,
                      method=method, scales=None if scales is None else _readonly(scales))


def _finish_map(prob, w_all, method, scales=None):
    """Trajectory from a map's per-epoch record w_all (n_steps + 1, D)."""
    steps = np.arange(w_all.shape[0], dtype=float)
    q = _progress(prob, w_all)
    t_cross = [(crossing_time(steps, q[:, k], thr) if thr > 0 else np.nan)
               for k, thr in enumerate(prob.thresholds)]
    idx = prob.epochs.astype(np.int64)
    return _finish(prob, w_all[idx], t_cross, method, None if scales is None else scales[idx])


def _check_finite(w_all, lr, n_steps):
    """Raise if a map's record (n_steps + 1, D) diverged or stopped early."""
    bad = ~np.all(np.isfinite(w_all), axis=1)
    if np.any(bad) or w_all.shape[0] < n_steps + 1:
        step = int(np.flatnonzero(bad)[0]) if np.any(bad) else w_all.shape[0] - 1
        raise RuntimeError(f"the map diverged at epoch {step} (non-finite W_tot) with lr == {lr!r}; "
                           "use a learning rate under the stability bound (about 1/λ_max of the "
                           "Gram matrices).")
