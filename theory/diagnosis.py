"""Diagnose a user's data: which modality a fusion network learns first, for how long it ignores the rest.

:func:`diagnose` takes per-modality arrays and a target (K >= 2 modalities, any input
dimensions) and returns a :class:`Diagnosis` built from the data's second moments alone
(theory.md §12): each modality's strength, the order and times at which two-layer late
fusion learns them, the time ratio of every fusion layer of a depth-L network, the
misattribution on each plateau, whether the preference is superficial, the generalisation
deficit on a held-out split, and a recommendation. ``confirm=True`` trains the networks
(:func:`linfusion.train`, imported only then) and attaches what they did.

What each number is, and its status (theory.md §1 "Status of a result"):

- **Strength** (exact): ‖Σ_yx,m‖, the phase-1 growth rate; ½ Σ_yx,m Σ_m⁻¹ Σ_yx,mᵀ, the loss
  the modality removes on its own; L(M_{all∖m}) − L(M_*), the loss added by leaving it out.
- **Late fusion, two layers, closed form** (leading order in u0, gradient flow):
  :func:`theory.two_layer.late_schedule` (theory.md §6.3) at the effective scale
  u0 = scale·√(width/2) of the per-entry init (§5, §6.10).
- **Late fusion, two layers, at the learning rate** (exact for the balanced rank-one network
  of that scale, §6.10): the rank-one map iterated until every modality is learned. It
  includes the discrete-step slowing of §6.10 that the closed form leaves out.
- **Fusion depth** (exact for a network started balanced and aligned, ``init='balanced'``):
  the aligned-chain map with vector modalities (:mod:`theory._vector_chain`; with scalar
  modalities it is :func:`theory.dynamics.chain_map`), for every L_f of depth L, any K. For
  K = 2 the closed form :func:`theory.deep.deep_time_ratio_vector` (heuristic, §6.6) is given
  next to it; for K > 2 there is no closed form.
- **Misattribution on each plateau** (exact, a difference of fixed points, §6.4, §12.4):
  W_m(M_S) − W_m(M_*) of every learned modality, relative to its final weight.
- **Superficial preference** (§6.5, §12.4): the first-learned modality is not the one that
  removes the most loss on its own (and, second reading, on leaving it out).
- **Held-out split** (exact): the test loss at every fixed point of the path.
- **Advice**: per-modality learning-rate multipliers m_k = ‖Σ_yx,first‖/‖Σ_yx,k‖ on both layers
  of branch k (:func:`theory.mitigation.late_schedule_lrs`, leading order, §11.1; for K = 2
  the ratio of :func:`theory.mitigation.equalising_lr_ratio`).

±1 classification targets trained with the logistic loss (theory.md §12.1): near zero weights
the logistic gradient is ¼(2Σ_yx − WΣ), the squared loss's on the target 2y at a quarter of the
rate. Every time is computed on that quadratic expansion (τ doubled against the squared loss):
the order and the first time carry over (heuristic); later times hold only roughly, since the
logistic loss saturates once the predictions are O(1); the fixed points, plateau levels and
misattribution are those of the squared loss on the ±1 labels, not of the logistic loss.
"""
from __future__ import annotations

import math

import numpy as np

from linfusion.architecture import default_scale
from linfusion.data import from_arrays
from linfusion.validation import check_int, check_rng, check_scalar

from . import _diagnosis_input as _inp
from ._checks import _readonly, _slices
from ._vector_chain import vector_chain
from .deep import deep_times_vector
from .dynamics._problem import _directions, _problem
from .fixed_points import _fixed_point, _subset_weights
from .mitigation import late_schedule_lrs
from ._diagnosis_report import (Advice, Confirmation, DepthTimes, Diagnosis, HeldOut, LateFusion,
                                ModalityStrength, Plateau, Preference, SimulatedRun, _fmt_t, progress)
from .two_layer import late_schedule

__all__ = ["diagnose", "check_inputs", "Diagnosis", "ModalityStrength", "Plateau", "LateFusion", "DepthTimes",
           "Preference", "HeldOut", "Advice", "SimulatedRun", "Confirmation"]

#: A unimodal phase t_last/t_first below this counts as "no unimodal phase" in the advice.
RATIO_OK = 1.5


# ---------------------------------------------------------------------------------------
# The diagnosis.
# ---------------------------------------------------------------------------------------

def _quad_loss(w, sigma, syx, syy):
    return float(0.5 * syy - w @ syx + 0.5 * w @ sigma @ w)


def _never_nan(t):
    t = np.array(t, dtype=float)
    t[~np.isfinite(t)] = np.nan
    return t


def _ratio(t):
    """t_last/t_first over the modalities (NaN if one is missing)."""
    t = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t)) or np.min(t) <= 0:
        return np.nan
    return float(np.max(t) / np.min(t))


def _order_of(t):
    t = np.asarray(t, dtype=float)
    keys = np.where(np.isfinite(t), t, np.inf)
    return tuple(int(k) for k in np.argsort(keys, kind="stable"))


def _strengths(sigma, syx, syy, dims, names, n):
    sl = _slices(dims)
    l0 = 0.5 * syy
    full = _fixed_point(sigma, syx[None], syy, dims, tuple(range(len(dims))))
    out = []
    for k, s in enumerate(sl):
        alone = 0.5 * float(syx[s] @ np.linalg.solve(sigma[s, s], syx[s]))
        rest = tuple(j for j in range(len(dims)) if j != k)
        removal = _fixed_point(sigma, syx[None], syy, dims, rest).loss - full.loss
        out.append(ModalityStrength(name=names[k], dim=dims[k], corr=float(np.linalg.norm(syx[s])),
                                    alone=alone / l0, removal=removal / l0, chance=dims[k] / n))
    return tuple(out), full


def _test_stats(prep, dims):
    if prep.xs_test is None:
        return None
    x = np.concatenate(prep.xs_test, axis=1)
    y = prep.y_test
    n = y.shape[0]
    return dict(x=x, y=y, sigma=x.T @ x / n, syx=y @ x / n, syy=float(y @ y / n), n=n)


def _test_loss(w, test):
    return _quad_loss(w, test["sigma"], test["syx"], test["syy"]) / (0.5 * test["syy"])


def _accuracy(w, test):
    pred = np.sign(test["x"] @ w)
    if not np.any(pred):
        return np.nan
    return float(np.mean(pred == test["y"]))


def _train_epochs(t, classification, max_epochs, fallback):
    """Epochs of the two-layer run that confirms the times ``t``: 1.3× (2× for the logistic loss) the last, + 100."""
    t = np.asarray(t, dtype=float)
    finite = t[np.isfinite(t)]
    top = finite.max() if finite.size else fallback
    return int(min(max_epochs, math.ceil((2.0 if classification else 1.3) * top) + 100))


def _learning_scales(sigma, syx, dims, order, n_learned):
    """Per modality: the direction along which it grows when it is learned, and the saturation amplitude.

    Modality k, learned while S (the modalities before it) sits at M_S, grows along
    ĝ_k = g_k(M_S)/‖g_k(M_S)‖; that growth saturates at the amplitude a*_k = ‖g_k‖ / (ĝ_kᵀ C_k ĝ_k),
    C_k = Σ_kk − Σ_kS Σ_SS⁻¹ Σ_Sk (the curvature along ĝ_k with S re-fitted). For scalar
    modalities a*_k is the modality's value at the fixed point where it is learned (theory.md §7.1);
    for vector modalities it stays O(1) when Σ_k is ill-conditioned, where that value does not.
    """
    sl = _slices(dims)
    along = [np.eye(d)[0] for d in dims]
    amp = np.zeros(len(dims))
    for j in range(n_learned):
        k = order[j]
        learned = tuple(sorted(order[:j]))
        w_s = _subset_weights(sigma, syx[None], dims, learned)[0]
        g_k = (syx - w_s @ sigma)[sl[k]]
        norm = float(np.linalg.norm(g_k))
        if norm == 0.0:
            continue
        e = g_k / norm
        curv = sigma[sl[k], sl[k]]
        if learned:
            cols = np.concatenate([np.arange(sl[i].start, sl[i].stop) for i in learned])
            cross = sigma[np.ix_(cols, np.arange(sl[k].start, sl[k].stop))]
            curv = curv - cross.T @ np.linalg.solve(sigma[np.ix_(cols, cols)], cross)
        along[k] = e
        amp[k] = norm / float(e @ curv @ e)
    return along, amp


def _late(sigma, syx, syy, dyn, dims, scale, width, lr_dyn, lr, max_epochs, test, classification):
    """Two-layer late fusion: closed-form schedule, the rank-one map, plateaus."""
    sig_d, syx_d, syy_d = dyn
    n_mod = len(dims)
    u0 = scale * math.sqrt(width / 2.0)
    sched = late_schedule(sig_d, syx_d[None], syy_d, dims, u0, lr=lr_dyn)
    t_closed = _never_nan(sched.t)
    prob = _problem(sig_d, syx_d[None], syy_d, dims)
    dirs = _directions(prob, "late")
    along, amp = _learning_scales(sig_d, syx_d, dims, sched.order, len(sched.path) - 1)
    thresholds = 0.5 * amp
    finite = t_closed[np.isfinite(t_closed)]
    budget = int(min(max_epochs, math.ceil(3.0 * (finite.max() if finite.size else 1000.0)) + 1000))
    first = vector_chain(sig_d, syx_d, _slices(dims), 2, 2, lr_dyn, u0, dirs, along, thresholds, budget, syy=syy_d)
    # the trajectory to the end of the training run that would confirm it
    span = _train_epochs(first.t_cross, classification, max_epochs, fallback=budget)
    run = vector_chain(sig_d, syx_d, _slices(dims), 2, 2, lr_dyn, u0, dirs, along, thresholds, span,
                       min_epochs=span, record=True, syy=syy_d)
    t_map = run.t_cross.copy()
    d = run.w - prob.m_star
    l_min = max(0.0, 0.5 * (syy_d - float(prob.m_star @ syx_d)))
    curve_loss = (l_min + 0.5 * np.einsum("nd,de,ne->n", d, sig_d, d)) / (0.5 * syy_d)
    # plateaus on the *statics* (the data's own moments)
    full = _fixed_point(sigma, syx[None], syy, dims, tuple(range(n_mod)))
    w_star = full.w_tot[0]
    sl = _slices(dims)
    plateaus = []
    n_learned = len(sched.path) - 1
    for j in range(1, min(n_learned, n_mod - 1) + 1):
        learned = tuple(sched.order[:j])
        point = _fixed_point(sigma, syx[None], syy, dims, tuple(sorted(learned)))
        w_s = point.w_tot[0]
        mis, mis_n = np.full(n_mod, np.nan), np.full(n_mod, np.nan)
        for k in learned:
            final = w_star[sl[k]]
            f2 = float(final @ final)
            if f2 > 0:
                diff = w_s[sl[k]] - final
                mis[k] = float(diff @ final) / f2
                mis_n[k] = float(np.linalg.norm(diff)) / math.sqrt(f2)
        nxt = sched.order[j]
        plateaus.append(Plateau(
            learned=learned, start=float(t_closed[learned[-1]]), end=float(t_closed[nxt]),
            start_map=float(t_map[learned[-1]]), end_map=float(t_map[nxt]),
            loss=point.loss / (0.5 * syy), misattribution=_readonly(mis), misattribution_norm=_readonly(mis_n),
            test_loss=_test_loss(w_s, test) if test else np.nan,
            test_accuracy=_accuracy(w_s, test) if test and classification else np.nan))
    early = math.log(1.0 / u0) / (float(np.linalg.norm(syx_d)) * lr_dyn)
    late = LateFusion(order=tuple(sched.order), t=_readonly(t_closed), order_map=_order_of(t_map),
                      t_map=_readonly(t_map), early=early, u0=u0, scale=scale, width=width, lr=lr,
                      plateaus=tuple(plateaus), curve_epochs=_readonly(np.arange(run.w.shape[0], dtype=float)),
                      curve_loss=_readonly(curve_loss), curve_progress=_readonly(progress(run.w, along, amp, dims)),
                      along=tuple(_readonly(a) for a in along), scales=_readonly(amp),
                      thresholds=_readonly(thresholds), diverged=bool(run.diverged or first.diverged),
                      run_epochs=span)
    return late, prob, dirs, full


def _deep_closed(depth, fuse_depth, dyn, dims, u0, lr_dyn):
    """K = 2: the scalar-chain closed form (heuristic) with the first-learned modality first."""
    sig_d, syx_d, _ = dyn
    if len(dims) != 2:
        return np.nan, np.nan
    sl = _slices(dims)
    first = 0 if np.linalg.norm(syx_d[sl[0]]) >= np.linalg.norm(syx_d[sl[1]]) else 1
    perm = np.concatenate([np.arange(sl[first].start, sl[first].stop),
                           np.arange(sl[1 - first].start, sl[1 - first].stop)])
    try:
        dt = deep_times_vector(depth, fuse_depth, sig_d[np.ix_(perm, perm)], syx_d[perm][None],
                               (dims[first], dims[1 - first]), u0, lr=lr_dyn)
    except (ValueError, RuntimeError):
        return np.nan, np.nan
    return float(dt.ratio), float(dt.t_a)


def _depths(depth, dyn, dims, u0, lr_dyn, dirs, late, max_epochs):
    """Every fusion layer of depth L: the exact aligned-chain map (and the K = 2 closed form)."""
    sig_d, syx_d, _ = dyn
    # budget: the late chain's leading-order t_A times the two-layer schedule's spread, with a wide
    # margin (deep branches turn slowly, theory.md §12.3: 2.6× the two-layer spread on the diabetes data)
    w_a = max(float(np.linalg.norm(syx_d[s])) for s in _slices(dims))
    t_a = (math.log(1.0 / u0) if depth == 2 else u0 ** (2 - depth) / (depth - 2)) / (w_a * lr_dyn)
    spread = _ratio(late.t) if np.isfinite(_ratio(late.t)) else 10.0
    budget = int(min(max_epochs, math.ceil(10.0 * t_a * spread) + 2000))
    out = []
    for l_f in range(1, depth + 1):
        run = vector_chain(sig_d, syx_d, _slices(dims), depth, l_f, lr_dyn, u0, dirs, late.along,
                           late.thresholds, budget, settle=0.3, extra=100, syy=dyn[2])
        t = run.t_cross
        ratio_closed, t_first_closed = _deep_closed(depth, l_f, dyn, dims, u0, lr_dyn)
        out.append(DepthTimes(fuse_depth=l_f, t=_readonly(t), ratio=_ratio(t[late.thresholds > 0]),
                              ratio_closed=ratio_closed, t_first_closed=t_first_closed, diverged=run.diverged))
    return tuple(out)


def _preference(strengths, first):
    alone = np.array([s.alone for s in strengths])
    removal = np.array([s.removal for s in strengths])
    best_alone, best_removal = int(np.argmax(alone)), int(np.argmax(removal))
    tol = 1e-12
    return Preference(first=int(first), best_alone=best_alone, best_removal=best_removal,
                      superficial=bool(alone[first] < alone[best_alone] * (1 - tol)),
                      superficial_removal=bool(removal[first] < removal[best_removal] * (1 - tol)))


def _advice(dyn, dims, names, late, depths, pref, strengths, u0, lr_dyn, dirs, classification):
    sig_d, syx_d, syy_d = dyn
    sl = _slices(dims)
    corr = np.array([np.linalg.norm(syx_d[s]) for s in sl])
    first = late.order[0]
    mult = corr[first] / corr
    scales = {f"W{layer}_{k}": float(mult[k]) for k in range(len(dims)) for layer in (1, 2)}
    flipped = [k for k, s in enumerate(sl) if float(dirs[k] @ syx_d[s]) < 0]
    t_eq = _never_nan(late_schedule_lrs(sig_d, syx_d[None], syy_d, dims, u0, scales, lr=lr_dyn).t)
    ratios = [d.ratio for d in depths]
    ok = [d.fuse_depth for d in depths if np.isfinite(d.ratio) and d.ratio < RATIO_OK]
    fuse = max(ok) if ok else 1
    lines = []
    late_ratio = _ratio(late.t_map)
    n_f = names[first]
    if late.diverged:
        lines.append(f"Lower the learning rate: gradient descent at lr {late.lr:g} diverges on these data "
                     "(the times below that depend on it are NaN).")
    elif np.isfinite(late_ratio) and late_ratio < RATIO_OK:
        lines.append(f"The modalities are learned within {late_ratio:.2f}× of each other by two-layer late fusion: "
                     "little unimodal phase, nothing to fix.")
    elif np.isfinite(late_ratio):
        last = late.order_map[-1]
        lines.append(f"Two-layer late fusion learns {n_f} at epoch {_fmt_t(late.t_map[first])} but {names[last]} only "
                     f"at epoch {_fmt_t(late.t_map[last])} ({late_ratio:.1f}× later); in between it predicts without "
                     f"the modalities not yet learned.")
    else:
        lines.append(f"Two-layer late fusion learns {n_f} first; some modality is not learned within the epochs "
                     "iterated.")
    depth = depths[-1].fuse_depth
    shown = ", ".join(f"{r:.2f} (L_f = {d.fuse_depth})" if np.isfinite(r) else
                      f"{'diverges' if d.diverged else 'not reached'} (L_f = {d.fuse_depth})"
                      for d, r in zip(depths, ratios))
    lines.append(f"Fusion depth (depth {depth}): t_last/t_first = {shown}. Earlier fusion shortens the unimodal "
                 f"phase; the latest fusion layer with a ratio under {RATIO_OK} is L_f = {fuse}.")
    phase = not (np.isfinite(late_ratio) and late_ratio < RATIO_OK)
    if late.diverged:
        pass
    elif phase and not flipped:
        rest = ", ".join(f"{names[k]} × {mult[k]:.3g}" for k in range(len(dims)) if k != first)
        lines.append(f"Per-modality learning rates (both layers of a branch): {rest} ({n_f} × 1) equalise the "
                     "phase-1 growth rates, so that every modality is learned together at leading order "
                     f"(theory.md §11.1); keep lr × {mult.max():.3g} below the stability bound.")
    elif phase:
        lines.append("No per-modality learning rate equalises the times: the correlation of "
                     f"{', '.join(names[k] for k in flipped)} points against its eventual weights, so its useful "
                     "mode decays while the others are learned (theory.md §6.3, §11.1).")
    if pref.superficial:
        lines.append(f"Superficial preference: {n_f} is learned first but {names[pref.best_alone]} removes more loss "
                     f"on its own ({strengths[pref.best_alone].alone:.1%} against {strengths[first].alone:.1%} of "
                     f"L(0)); stopping on the first plateau keeps the less useful predictor.")
    big = [(p, k) for p in late.plateaus for k in p.learned
           if np.isfinite(p.misattribution[k]) and abs(p.misattribution[k]) >= 0.1]
    if big:
        p, k = max(big, key=lambda pk: abs(pk[0].misattribution[pk[1]]))
        lines.append(f"Misattribution: on the plateau where {', '.join(names[j] for j in p.learned)} "
                     f"{'is' if len(p.learned) == 1 else 'are'} learned, {names[k]}'s weight is "
                     f"{p.misattribution[k]:+.0%} of its final value (it carries the correlated part of what the "
                     "others will explain): do not read it as its importance before the others are learned.")
    weak = [s.name for s in strengths if s.alone < 2.0 * s.chance]
    if weak:
        lines.append(f"{', '.join(weak)}: the loss removed on its own is below twice the chance level d/n; its "
                     "signal may be noise of the sample.")
    return Advice(lr_multipliers=_readonly(mult), lr_scales=scales, t_equalised=_readonly(t_eq),
                  equalisable=not flipped, fuse_depth=int(fuse), lines=tuple(lines))


def _methods(classification, n_mod):
    time_note = (" Classification: computed on the logistic loss's small-weight quadratic expansion (heuristic "
                 "beyond the first phase, theory.md §12.1).") if classification else ""
    return {
        "strength": ("exact: ‖Σyx_m‖, ½ Σyx_m Σ_m⁻¹ Σyx_mᵀ and L(M_{all∖m}) − L(M_*) on the moments "
                     "(theory.md §12.2)"),
        "late.t": ("leading order (u0 → 0, gradient flow): theory.two_layer.late_schedule (theory.md §6.3)"
                   + time_note),
        "late.t_map": "exact for the balanced rank-one two-layer net of scale u0 at lr: the rank-one map "
                      "(theory.md §6.10)" + time_note,
        "late.early": "heuristic: (τ/‖Σyx‖) ln(1/u0), one transition (theory.md §6.2)",
        "depths.t": "exact for a net started balanced and aligned (init='balanced'): the aligned-chain map with "
                    "vector modalities, any K (theory.md §12.3)" + time_note,
        "depths.ratio_closed": ("heuristic: theory.deep.deep_time_ratio_vector (theory.md §6.6)" if n_mod == 2
                                else "none for K > 2 (NaN)"),
        "plateaus.misattribution": ("exact: W_m(M_S) − W_m(M_*), a difference of fixed points "
                                    "(theory.md §6.4, §12.4)"),
        "preference": "exact comparison of unimodal loss reductions (theory.md §6.5, §12.4)",
        "held_out": "exact: held-out quadratic loss at the fixed points (theory.md §12.5)",
        "advice.t_equalised": "leading order: theory.mitigation.late_schedule_lrs (theory.md §11.1)",
        "thresholds": "a modality is learned when W_m^tot·ĝ_m first reaches a*_m/2: half the amplitude at which "
                      "its growth along its learning direction saturates; for scalar modalities half its value at "
                      "the fixed point where late fusion learns it (theory.md §7.1, §12.2)",
    }


def _checked(xs, y, names, columns, xs_test, y_test, task, preprocess):
    prep = _inp.prepare(xs, y, names=names, columns=columns, xs_test=xs_test, y_test=y_test, task=task,
                        preprocess=preprocess)
    data = from_arrays(list(prep.xs), prep.y)
    mo = data.moments()
    _inp.check_covariances(mo.sxx, mo.syx, float(mo.syy), data.in_dims, prep.names, prep.columns, data.n_samples)
    return prep, data


def check_inputs(xs, y, *, names=None, columns=None, xs_test=None, y_test=None, task="auto",
                 preprocess="standardize"):
    """Every input check of :func:`diagnose`, without the analysis (cheap: moments and eigenvalues).

    Parameters
    ----------
    xs, y, names, columns, xs_test, y_test, task, preprocess :
        As :func:`diagnose`.

    Returns
    -------
    task : str
        'regression' or 'classification', as :func:`diagnose` will treat the target.

    Raises
    ------
    ValueError, TypeError
        As :func:`diagnose`, naming the input.
    """
    return _checked(xs, y, names, columns, xs_test, y_test, task, preprocess)[0].task


def diagnose(xs, y, *, names=None, columns=None, xs_test=None, y_test=None, task="auto",
             preprocess="standardize", width=100, scale=None, lr=0.04, depth=4, deep_scale=None, confirm=False,
             max_epochs=200_000, rng=0):
    """Diagnose unimodal bias on a data set from its second moments (theory.md §12).

    Parameters
    ----------
    xs : sequence of K >= 2 array_like of shape (n, d_k) or (n,)
        The inputs of each modality.
    y : array_like of shape (n,) or (n, 1)
        The target: real values (regression, squared loss) or exactly ±1 (classification,
        logistic loss; see the module docstring for what the theory covers there).
    names : sequence of K str, optional
        Modality names (default 'modality k').
    columns : sequence of K sequences of str, optional
        Column labels of each modality, used in messages.
    xs_test, y_test : optional
        A held-out split, same modalities and columns; preprocessed with the training split's
        means and scales.
    task : {'auto', 'regression', 'classification'}
        'auto': classification when y holds exactly the two values −1 and +1.
    preprocess : {'standardize', 'center', 'none'}
        'standardize': every input column (and a regression target) centred and scaled to unit
        variance; 'center': centred only; 'none': as given (uncentred moments, what a bias-free
        network sees). Scaling a modality scales its phase-1 rate: use the preprocessing of the
        network you will train (theory.md §12.1). The report states it.
    width : int
        Hidden width of the two-layer late-fusion network (the effective init is
        scale·√(width/2), theory.md §5).
    scale : float, optional
        Per-entry init scale of the two-layer network; default 1e-9 (the paper's).
    lr : float
        Learning rate (τ = 1/lr epochs); default 0.04 (the paper's).
    depth : int
        Depth L >= 2 of the fusion-depth table (default 4, the paper's deep nets).
    deep_scale : float, optional
        Per-layer scale of the balanced start of the depth-L networks; default 0.1.
    confirm : bool
        Also train the networks (:func:`linfusion.train`) and attach what they did: two-layer
        late fusion from the per-entry init and, for regression, the depth-L network of every
        fusion layer started balanced (the moment path: seconds).
    max_epochs : int
        Upper bound on the epochs of every map and training run.
    rng : int, Generator or SeedSequence, optional
        Seed of the trained networks' initial weights (``confirm``).

    Returns
    -------
    Diagnosis

    Raises
    ------
    ValueError, TypeError
        Before any work, naming the input: mismatched rows, missing or extra columns in the
        held-out split, a constant target, labels other than ±1 for classification, constant
        input columns (with centring), a singular input covariance (per modality or jointly),
        a modality with no signal, or an out-of-range option.
    """
    width = check_int("width", width, lo=1)
    scale = default_scale("entry") if scale is None else check_scalar("scale", scale, lo=0.0, lo_open=True)
    lr = check_scalar("lr", lr, lo=0.0, lo_open=True)
    depth = check_int("depth", depth, lo=2)
    deep_scale = (default_scale("balanced") if deep_scale is None
                  else check_scalar("deep_scale", deep_scale, lo=0.0, hi=1.0, lo_open=True, hi_open=True))
    if not isinstance(confirm, (bool, np.bool_)):
        raise TypeError(f"confirm == {confirm!r}, must be True or False.")
    max_epochs = check_int("max_epochs", max_epochs, lo=1)
    check_rng("rng", rng)
    if not scale * math.sqrt(width / 2.0) < 1.0:
        raise ValueError(f"scale == {scale!r} with width == {width} gives the effective init u0 = scale·√(width/2) "
                         f"= {scale * math.sqrt(width / 2.0):.3g}, must be < 1 (the theory is for a small init).")
    prep, data = _checked(xs, y, names, columns, xs_test, y_test, task, preprocess)
    mo = data.moments()
    dims = data.in_dims
    sigma, syx, syy = mo.sxx, mo.syx[0], float(mo.syy)
    classification = prep.task == "classification"
    if classification:   # logistic ≈ squared loss on 2y at lr/4 near zero weights (theory.md §12.1)
        dyn, lr_dyn = (sigma, 2.0 * syx, 4.0 * syy), lr / 4.0
    else:
        dyn, lr_dyn = (sigma, syx, syy), lr
    test = _test_stats(prep, dims)
    strengths, _ = _strengths(sigma, syx, syy, dims, prep.names, data.n_samples)
    late, prob, dirs, full = _late(sigma, syx, syy, dyn, dims, scale, width, lr_dyn, lr, max_epochs, test,
                                   classification)
    depths = _depths(depth, dyn, dims, deep_scale, lr_dyn, dirs, late, max_epochs)
    pref = _preference(strengths, late.order[0])
    held = None
    if test is not None:
        w_end = full.w_tot[0]
        end = _test_loss(w_end, test)
        worst = max((p.test_loss for p in late.plateaus), default=np.nan)
        held = HeldOut(n=test["n"], loss_end=end, accuracy_end=_accuracy(w_end, test) if classification else np.nan,
                       deficit=float(worst - end))
    advice = _advice(dyn, dims, prep.names, late, depths, pref, strengths, late.u0, lr_dyn, dirs, classification)
    notes = _notes(prep, late, depths, classification, dims, max_epochs)
    confirmation = None
    if confirm:
        from ._diagnosis_confirm import run as _confirm
        confirmation = _confirm(data, prep, test, dims, dyn, late, depths, width, scale, lr, depth, deep_scale,
                                prob, dirs, classification, max_epochs, rng)
    return Diagnosis(names=prep.names, dims=dims, n_samples=data.n_samples, task=prep.task,
                     loss="logistic" if classification else "mse", preprocess=prep.description,
                     sigma=_readonly(sigma), syx=_readonly(syx), syy=syy, strengths=strengths, late=late,
                     depth=depth, deep_scale=deep_scale, depths=depths, preference=pref, held_out=held,
                     advice=advice, confirmation=confirmation, notes=notes,
                     methods=_methods(classification, len(dims)))


def _notes(prep, late, depths, classification, dims, max_epochs):
    notes = []
    if classification:
        notes.append("±1 labels, logistic loss: the moment theory is for the squared loss. Near zero weights the "
                     "logistic gradient is that of the squared loss on the target 2y at a quarter of the rate, so "
                     "the learning order and the first time carry over with τ doubled (heuristic); later times hold "
                     "only roughly (the logistic loss saturates), and the plateau levels, misattribution and "
                     "preference are those of the squared loss on the labels, not of the logistic loss "
                     "(theory.md §12.1).")
    never = [prep.names[k] for k in range(len(dims)) if not np.isfinite(late.t[k])]
    if never:
        notes.append(f"{', '.join(never)}: never needed by late fusion (zero residual once the others are learned).")
    if late.diverged:
        notes.append(f"The rank-one map diverges at lr {late.lr:g}: the learning rate is above the stability bound of "
                     "gradient descent on these data (linfusion.stability_bound); its times are NaN.")
    missing = [prep.names[k] for k in range(len(dims)) if np.isfinite(late.t[k]) and not np.isfinite(late.t_map[k])]
    if missing and not late.diverged:
        notes.append(f"{', '.join(missing)}: not learned by the rank-one map within {max_epochs} epochs.")
    blown = [d.fuse_depth for d in depths if d.diverged]
    if blown:
        notes.append(f"Fusion depth: the map diverges at lr {late.lr:g} for L_f = {', '.join(map(str, blown))}.")
    slow = [d.fuse_depth for d in depths if not np.isfinite(d.ratio) and not d.diverged]
    if slow:
        notes.append(f"Fusion depth: at L_f = {', '.join(map(str, slow))} some modality is not learned within the "
                     f"epochs iterated (at most {max_epochs}).")
    if any(d > 1 for d in dims):
        notes.append("Vector modalities: the closed-form times are leading order and assume each modality's mode "
                     "turns from Σyx_m to its residual direction without cost (heuristic, theory.md §6.3); the maps "
                     "are exact for the balanced networks they describe.")
    return tuple(notes)
