"""The deep-fusion sweeps (figures 10-12): t_B/t_A against ρ, r or u0 for every fusion layer.

The shared run, theory, figure and files of :mod:`sims.rho_sweep`, :mod:`sims.ratio_sweep`
and :mod:`sims.init_sweep`; each of those is an :class:`Axis` and a ``Config`` (the fixed
parameters and ``values``, the swept one). The paper's settings (theory.md §7.3): depth
L = 4, width 100, linear; toy data r = 2, ρ = 0, n = 8192 (but for the swept one); init 0.1
(per-layer Frobenius norm, scheme 'layer'); lr 0.04; L_f = 4, 3, 2, 1; 5 repeats per point,
up to 100 000 epochs with early stopping at loss < 1e-4. The figure: one panel per init
scheme, t_B/t_A on a log axis; simulation as markers (runs: dots, means: markers joined by
a line), the closed form dashed and the chain map's means as crosses, all in the L_f's
colour (:func:`sims._style.fusion_color`). ``--init-scheme balanced`` (or ``both``) uses the
rank-one balanced initialisation, under which the simulation meets the chain.

Every (init scheme, L_f, swept value, repeat) is
one point of :func:`linfusion.sweep.run_sweep` (cached, in worker processes); a run is
measured in the worker by :func:`measure_point` (:func:`sims._deep.measure_run`, NaN with a
reason for a run that is not usable). Theory (:func:`predict`): the closed form of
theory.md §6.6 at u0 = init, and the exact chain map (theory.md §6.10) from each run's own
initial layer scales (see :mod:`sims._deep`), batched through
:func:`theory.dynamics.chain_map_many`, stopped once every chain has crossed B, so that a
180-run sweep is predicted in seconds.

Runs that are not usable (diverged, stalled), or that end above the keep loss (the
original's rule, theory.md §7.3), stay in the table with their status and are left out of
the means; the figure and the summary count them. When no run at all is usable there is
nothing to draw: :func:`plot` returns None and the command exits with status 1 (the table,
the arrays and the record are still written).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from linfusion.sweep import build as sweep_build
from linfusion.sweep import run_sweep

from . import _deep as D
from . import _style as S
from ._config import integer, option, real, reals
from ._options import Seeded

__all__ = ["Axis", "Sweep", "SCHEME_MARKERS", "measure_point", "moments_of", "run", "predict", "plot",
           "summary", "outputs"]

#: simulation markers of the two initialisation schemes
SCHEME_MARKERS = {"layer": "o", "balanced": "s"}
_SCHEME_TEXT = {"layer": "random 'layer' init (the paper's)", "balanced": "rank-one 'balanced' init"}
_SWEEP = "sweep"


@dataclass(frozen=True)
class Axis:
    """The swept variable of one deep-fusion sweep.

    Attributes
    ----------
    key : str
        Configuration key that is swept ('rho', 'ratio' or 'scale').
    name : str
        Module name (``python -m sims.<name>``).
    figure : int
        The paper's figure number (theory.md §10).
    theory : tuple (start, stop, num)
        Grid of the closed-form curve (widened to cover the swept values).
    label : str
        x-axis label (mathtext).
    math : str
        The swept quantity in mathtext, for the title.
    symbol : str
        Short plain-text name in summaries and tables.
    """

    key: str
    name: str
    figure: int
    theory: tuple
    label: str
    math: str
    symbol: str

    def grid(self, values=()):
        """The closed-form curve's grid, ndarray of shape (num,), covering ``values``."""
        lo, hi, num = self.theory
        return np.linspace(min([lo, *values]), max([hi, *values]), num)


@dataclass(frozen=True)
class Sweep(Seeded, D.Samples, D.DeepNet):
    """Fields every deep-fusion sweep has; each sweep adds its fixed parameters and ``values``."""

    init_scheme: str = option("layer", "layer: random, the paper's deep scheme; balanced: rank-one, exactly "
                              "balanced and aligned (the network is then its scalar chain); both: one panel each",
                              choices=("layer", "balanced", "both"), group="network and training")
    repeats: int = option(5, "runs per point", check=integer(lo=1), quick=1, group=_SWEEP)
    drop_loss: float = option(1e-3, "leave out of the means runs whose final loss exceeds noise²/2 by this much "
                              "(the original: 1e-3, theory.md §7.3)", check=real(0.0, lo_open=True), group=_SWEEP)

    @property
    def schemes(self):
        """The initialisation schemes run: one, or both for 'both'."""
        return ["layer", "balanced"] if self.init_scheme == "both" else [self.init_scheme]


# ------------------------------------------------------------------ simulation
def _point(cfg, axis, scheme, fuse_depth, x, repeat):
    point = dict(arch="deep", depth=cfg.depth, fuse_depth=fuse_depth, width=cfg.width, data="toy",
                 n=cfg.n, noise=cfg.noise, lr=cfg.lr, epochs=cfg.epochs, tol=cfg.tol, init=scheme,
                 record_every=cfg.record_every, repeat=repeat, rho=getattr(cfg, "rho", None),
                 ratio=getattr(cfg, "ratio", None), scale=D.scale_of(cfg, scheme))
    point[axis.key] = float(x)
    return point


def measure_point(result, config, *, convention):
    """t_A, t_B, ratio and thresholds of one run (:func:`sims._deep.measure_run`) and its chain scalars.

    Runs in the sweep's workers; never raises on a run's outcome. The thresholds are the
    population values of the toy data: half of W_A^uni = w_A* + w_B* ρ/r for A; for B half
    of its trajectory maximum ('paper') or half of w_B* ('interp'). The initial top singular
    values are ``init_sv_a_<l>``, ``init_sv_b_<l>`` (pre-fusion layers l = 1..L_f of A and B)
    and ``init_sv_shared_<l>`` (l = L_f+1..L); NaN, like the times, for a run that is not
    usable.
    """
    wa_uni, wb_star = D.toy_targets(config["rho"], config["ratio"], config.get("w_star", (1.0, 1.0)))
    row = D.measure_run(result, wa_uni=wa_uni, wb_star=wb_star, convention=convention)
    row["measure_note"] = row.pop("note")
    lf, depth = config["fuse_depth"], config["depth"]
    if row["measure_note"]:
        pre, post = np.full((2, lf), np.nan), np.full(depth - lf, np.nan)
    else:
        pre, post = D.chain_scales(result.net, result.w0)
    for k, name in enumerate("ab"):
        row.update({f"init_sv_{name}_{layer}": float(v) for layer, v in enumerate(pre[k], start=1)})
    row.update({f"init_sv_shared_{layer}": float(v) for layer, v in enumerate(post, start=lf + 1)})
    return row


def moments_of(config, seed, index):
    """The empirical moments of a sweep point's data, rebuilt from the sweep's seed contract.

    :func:`linfusion.sweep.run_sweep` (``seed_by='index'``) draws point ``index``'s data from
    ``SeedSequence(seed, spawn_key=(index, 0))`` with the default build.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 0)))
    _, ds = sweep_build(config, rng)
    mo = ds.moments()
    return mo.sxx, mo.syx[0]


def run(cfg, axis, execution=None):
    """Simulate every (init scheme, L_f, swept value, repeat) through the sweep engine.

    Each scheme is one :func:`linfusion.sweep.run_sweep` call with the same seed, so its
    cache is reused whichever schemes are selected.

    Parameters
    ----------
    cfg : Config of the sweep
    axis : Axis
    execution : sims._cli.Execution, optional
        Workers, cache, scheduler, progress bar (default: all cores, no cache).

    Returns
    -------
    dict of ndarray
        Per run (shape (N,)): ``scheme``, ``fuse_depth``, ``x`` (the swept value), ``repeat``,
        ``status``, ``note`` (why a run's numbers are NaN), ``kept`` (usable, measured and
        below the keep loss), ``t_a_epochs``, ``t_b_epochs``, ``time_ratio``, ``thr_a``,
        ``thr_b``, ``final_epoch``, ``final_loss``; the initial top singular values
        ``init_sv_pre`` (N, 2, L) and ``init_sv_shared`` (N, L) (NaN-padded, layer l at index
        l − 1); the data moments ``sxx`` (N, 2, 2) and ``syx`` (N, 2); ``seed`` (the root
        seed), ``n_cached`` and ``n_computed``.
    """
    from ._cli import Execution

    ex = execution if execution is not None else Execution(cache=None)
    measure = functools.partial(measure_point, convention=cfg.convention)
    rows, moments, n_cached, n_computed, seed = [], [], 0, 0, cfg.seed
    for scheme in cfg.schemes:
        points = [_point(cfg, axis, scheme, lf, x, rep) for lf in cfg.lf_list
                  for x in cfg.values for rep in range(cfg.repeats)]
        res = run_sweep(points, seed=cfg.seed, measure=measure, workers=ex.workers, cache_dir=ex.cache,
                        force=ex.force, scheduler=ex.scheduler, progress=ex.progress)
        rows += res.table
        moments += [moments_of(p, res.seed, i) for i, p in enumerate(points)]
        n_cached, n_computed, seed = n_cached + res.n_cached, n_computed + res.n_computed, res.seed
    n, big_l = len(rows), cfg.depth
    col = {k: np.array([r.get(k, np.nan) for r in rows], dtype=float)
           for k in ("t_a_epochs", "t_b_epochs", "time_ratio", "thr_a", "thr_b", "final_epoch", "final_loss")}
    status = np.array([r["status"] for r in rows])
    kept = (np.isin(status, D.USABLE) & np.isfinite(col["time_ratio"])
            & (col["final_loss"] - 0.5 * cfg.noise ** 2 < cfg.drop_loss))
    pre = np.full((n, 2, big_l), np.nan)
    shared = np.full((n, big_l), np.nan)
    for i, r in enumerate(rows):
        lf = r["fuse_depth"]
        for k, name in enumerate("ab"):
            pre[i, k, :lf] = [r.get(f"init_sv_{name}_{layer}", np.nan) for layer in range(1, lf + 1)]
        shared[i, lf:] = [r.get(f"init_sv_shared_{layer}", np.nan) for layer in range(lf + 1, big_l + 1)]
    return dict(scheme=np.array([r["init"] for r in rows]), fuse_depth=np.array([r["fuse_depth"] for r in rows]),
                x=np.array([r[axis.key] for r in rows], dtype=float), repeat=np.array([r["repeat"] for r in rows]),
                status=status, note=np.array([r.get("measure_note") or r.get("note") or "" for r in rows]),
                kept=kept, init_sv_pre=pre, init_sv_shared=shared,
                sxx=np.array([m[0] for m in moments]), syx=np.array([m[1] for m in moments]),
                seed=np.array(seed), n_cached=np.array(n_cached), n_computed=np.array(n_computed), **col)


# ------------------------------------------------------------------ theory
def _fixed(cfg, axis, x):
    """(ratio, rho, u0) of the theory at swept value(s) x."""
    vals = {"ratio": getattr(cfg, "ratio", None), "rho": getattr(cfg, "rho", None), "scale": D.scale_of(cfg)}
    vals[axis.key] = x
    return vals["ratio"], vals["rho"], vals["scale"]


def predict(cfg, axis, result=None):
    """Closed-form curves, and (with ``result``) the chain map from each run's initial scalars.

    Returns
    -------
    dict
        ``grid`` (n_grid,), ``curve`` (n_fuse, n_grid): :func:`theory.deep.deep_time_ratio`
        at u0 = init; ``fuse_depths`` (n_fuse,); with ``result`` also, per run (N,),
        ``closed_ratio`` (the same at the run's swept value) and ``chain_t_a_epochs``,
        ``chain_t_b_epochs``, ``chain_ratio`` (:func:`sims._deep.chain_times`; NaN for runs
        that are not usable).
    """
    from theory.deep import deep_time_ratio

    grid = axis.grid(cfg.values)
    r, rho, u0 = _fixed(cfg, axis, grid)
    curve = np.array([deep_time_ratio(cfg.depth, lf, r, rho, u0) for lf in cfg.lf_list])
    out = dict(grid=grid, curve=curve, fuse_depths=np.array(cfg.lf_list))
    if result is None:
        return out
    n = len(result["x"])
    closed = np.empty(n)
    times = np.full((n, 2), np.nan)
    measured = (np.isfinite(result["thr_a"]) & np.isfinite(result["thr_b"])
                & np.all(np.isfinite(result["init_sv_pre"][:, :, 0]), axis=1))
    for lf in np.unique(result["fuse_depth"]):
        lf = int(lf)
        rows = np.flatnonzero(result["fuse_depth"] == lf)
        r, rho, u0 = _fixed(cfg, axis, result["x"][rows])
        closed[rows] = deep_time_ratio(cfg.depth, lf, r, rho, u0)
        sel = rows[measured[rows]]
        if not sel.size:
            continue
        pre = result["init_sv_pre"][sel, :, :lf].copy()
        pre[:, :, 0] *= D.chain_signs(result["sxx"][sel], result["syx"][sel])
        times[sel] = D.chain_times(result["sxx"][sel], result["syx"][sel], pre, result["init_sv_shared"][sel, lf:],
                                   cfg.lr, result["thr_a"][sel], result["thr_b"][sel], cfg.epochs,
                                   convention=cfg.convention)
    out.update(closed_ratio=closed, chain_t_a_epochs=times[:, 0], chain_t_b_epochs=times[:, 1],
               chain_ratio=times[:, 1] / times[:, 0])
    return out


# ------------------------------------------------------------------ figure
def _means(result, values, sel_base, key):
    out = []
    for x in values:
        sel = sel_base & np.isclose(result["x"], x)
        out.append(np.mean(key[sel]) if sel.any() else np.nan)
    return np.array(out)


def _plain_log_ticks(ax):
    """Label a log axis with plain numbers (1, 1.5, 2, 3, 4, 5, 7, 10, ...) instead of powers of ten."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    lo, hi = ax.get_ylim()
    ticks = [v * 10.0 ** e for e in range(-1, 4) for v in (1, 1.5, 2, 3, 4, 5, 7)]
    ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _legend_handles(cfg, schemes):
    from matplotlib.lines import Line2D

    grey = "0.35"
    handles = [Line2D([], [], color=S.fusion_color(lf, cfg.depth), linewidth=2.4, label=D.fusion_label(lf, cfg.depth))
               for lf in cfg.lf_list]
    handles += [Line2D([], [], color=grey, marker=SCHEME_MARKERS[s], markersize=5, linewidth=1.0,
                       label=f"simulation, {s} init:\nmean (line), runs (dots)") for s in schemes]
    handles += [Line2D([], [], label="theory: closed form\n(theory.md §6.6) at $u_0$ = init", **S.theory_kw(grey)),
                Line2D([], [], color=grey, marker="x", linestyle="none", markersize=6, markeredgewidth=1.3,
                       label="theory: chain map from each\nrun's initial layer scales\n(theory.md §6.10), mean")]
    return handles


def plot(cfg, axis, result, pred):
    """One panel per initialisation scheme: t_B/t_A against the swept value, log y-axis.

    Returns None when no run is usable (nothing to draw).
    """
    from matplotlib.ticker import MaxNLocator

    if not result["kept"].any():
        return None
    schemes = list(dict.fromkeys(result["scheme"].tolist()))
    n = len(schemes)
    fig, axes = S.figure(1, n, width=(3.2 * n + 2.2) / n, height=3.0, sharey=True)   # + the legend's width
    values = np.array(sorted(set(result["x"].tolist())))
    for ax, scheme in zip(axes[0], schemes):
        mine = result["scheme"] == scheme
        for j, lf in enumerate(cfg.lf_list):
            color = S.fusion_color(lf, cfg.depth)
            ok = mine & (result["fuse_depth"] == lf) & result["kept"]
            ax.plot(result["x"][ok], result["time_ratio"][ok], SCHEME_MARKERS[scheme], color=color, alpha=0.35,
                    markersize=3.5, markeredgewidth=0)
            ax.plot(values, _means(result, values, ok, result["time_ratio"]), "-" + SCHEME_MARKERS[scheme],
                    color=color, markersize=5, linewidth=1.0)
            ax.plot(pred["grid"], pred["curve"][j], **S.theory_kw(color))
            ax.plot(values, _means(result, values, ok, pred["chain_ratio"]), "x", color=color, markersize=6,
                    markeredgewidth=1.3)
        bad = D.unused_counts(result["status"][mine], result["kept"][mine])
        bad = {("above keep loss" if why.startswith("above") else why): n for why, n in bad.items()}
        ax.set_title(f"{scheme} init: {int(np.sum(mine & result['kept']))} of {int(mine.sum())} runs used"
                     + (f"\nnot used: {', '.join(f'{n} {why}' for why, n in bad.items())}" if bad else ""),
                     fontsize="medium")
        ax.set_yscale("log")
        ax.set_xlabel(axis.label)
        ax.xaxis.set_major_locator(MaxNLocator(5))
    for ax in axes[0]:
        _plain_log_ticks(ax)
    axes[0, 0].set_ylabel(r"time ratio $t_B/t_A$")
    fig.legend(handles=_legend_handles(cfg, schemes), loc="outside right center")
    S.title(fig, f"Deep fusion, $L = {cfg.depth}$: time ratio against {axis.math}")
    return fig


# ------------------------------------------------------------------ summary and files
def _fixed_text(cfg, axis):
    parts = {"rho": f"ρ = {getattr(cfg, 'rho', 0):g}", "ratio": f"r = {getattr(cfg, 'ratio', 0):g}",
             "scale": f"u0 = {D.scale_of(cfg):g}"}
    parts.pop(axis.key)
    return ", ".join(parts.values())


def provenance(cfg, axis):
    """One line of what was run (settings, conventions), for the summary and the record."""
    return (f"depth L = {cfg.depth}, width {cfg.width}, {_fixed_text(cfg, axis)}, n = {cfg.n}, noise {cfg.noise:g}, "
            f"lr {cfg.lr:g}, up to {cfg.epochs} epochs (tol {cfg.tol:g}), {cfg.repeats} repeat(s); "
            f"keep: final loss < noise²/2 + {cfg.drop_loss:g}")


def summary(cfg, axis, result, pred):
    """The sweep as printed lines: counts of runs by outcome, then mean ratios per point."""
    lines = [f"Figure {axis.figure} ({axis.name}): t_B/t_A against {axis.symbol}; {provenance(cfg, axis)}",
             f"  {D.convention_text(cfg.convention)}",
             f"  points: {len(result['x'])} ({int(result['n_cached'])} from cache, {int(result['n_computed'])} "
             f"computed)"]
    for scheme in dict.fromkeys(result["scheme"].tolist()):
        mine = result["scheme"] == scheme
        lines.append(f"[{scheme} init] {D.count_text(result['status'][mine], result['kept'][mine])}")
        bad = np.flatnonzero(mine & ~np.isin(result["status"], D.USABLE))
        if bad.size:
            lines.append(f"  e.g. L_f = {result['fuse_depth'][bad[0]]}, {axis.symbol} = {result['x'][bad[0]]:g}: "
                         f"{result['note'][bad[0]]}")
        if not (mine & result["kept"]).any():
            continue
        lines.append("  mean t_B/t_A: simulation / chain map from the runs' initial layer scales / closed form "
                     "at u0 = init")
        lines.append(f"  {axis.symbol:>6} " + " ".join(f"{'L_f=' + str(lf):>22}" for lf in cfg.lf_list))
        for x in sorted(set(result["x"][mine].tolist())):
            cells = []
            for lf in cfg.lf_list:
                sel = mine & (result["fuse_depth"] == lf) & np.isclose(result["x"], x)
                ok = sel & result["kept"]
                if ok.any():
                    cells.append(f"{np.mean(result['time_ratio'][ok]):6.3f}/{np.mean(pred['chain_ratio'][ok]):6.3f}"
                                 f"/{np.mean(pred['closed_ratio'][sel]):6.3f}")
                else:
                    cells.append("no run used")
            lines.append(f"  {x:6.3f} " + " ".join(f"{c:>22}" for c in cells))
        epochs = result["final_epoch"][mine]
        lines.append(f"  epochs per run: median {np.median(epochs):.0f}, max {np.max(epochs):.0f}, "
                     f"total {np.sum(epochs):.0f}")
    if not result["kept"].any():
        lines.append("no run is usable: no figure (exit status 1); the table and arrays keep every run's status")
    return "\n".join(lines)


def table(cfg, axis, result, pred):
    """One tidy row per run: configuration, status, measured and predicted times, initial scales."""
    rows = []
    for i in range(len(result["x"])):
        lf = int(result["fuse_depth"][i])
        row = {"seed": int(result["seed"]), "init_scheme": str(result["scheme"][i]), "depth": cfg.depth,
               "fuse_depth": lf, "width": cfg.width}
        fixed = {"rho": getattr(cfg, "rho", None), "ratio": getattr(cfg, "ratio", None), "scale": D.scale_of(cfg)}
        fixed[axis.key] = float(result["x"][i])
        row.update(fixed)
        row.update(n=cfg.n, noise=cfg.noise, lr=cfg.lr, repeat=int(result["repeat"][i]),
                   status=str(result["status"][i]), kept=bool(result["kept"][i]), note=str(result["note"][i]),
                   final_epoch=int(result["final_epoch"][i]), final_loss=float(result["final_loss"][i]))
        for k in ("t_a_epochs", "t_b_epochs", "time_ratio", "thr_a", "thr_b"):
            row[k] = float(result[k][i])
        row.update(chain_t_a_epochs=float(pred["chain_t_a_epochs"][i]),
                   chain_t_b_epochs=float(pred["chain_t_b_epochs"][i]), chain_ratio=float(pred["chain_ratio"][i]),
                   closed_ratio=float(pred["closed_ratio"][i]))
        for k, name in enumerate("ab"):
            row.update({f"init_sv_{name}_{layer}": float(result["init_sv_pre"][i, k, layer - 1])
                        for layer in range(1, cfg.depth + 1)})
        row.update({f"init_sv_shared_{layer}": float(result["init_sv_shared"][i, layer - 1])
                    for layer in range(1, cfg.depth + 1)})
        rows.append(row)
    return rows


def outputs(cfg, axis, result, pred):
    """The arrays (simulation, ``pred_*``), the tidy table and the summary record."""
    arrays = dict(result)
    arrays.update({f"pred_{k}": v for k, v in pred.items()})
    record = {"figure": axis.figure, "axis": axis.key, "settings": provenance(cfg, axis),
              "convention": D.convention_text(cfg.convention), "init_scale": D.scale_of(cfg),
              "runs": {str(s): D.status_counts(result["status"][result["scheme"] == s])
                       for s in dict.fromkeys(result["scheme"].tolist())},
              "runs_used": int(result["kept"].sum()), "n_cached": int(result["n_cached"]),
              "n_computed": int(result["n_computed"])}
    return {"arrays": arrays, "table": table(cfg, axis, result, pred), "record": record}


def protocol(axis):
    """The module protocol of one sweep (``run``, ``predict``, ``plot``, ``summary``, ``outputs``) for ``axis``."""

    def run_(cfg, execution=None):
        return run(cfg, axis, execution)

    def predict_(cfg, result=None):
        return predict(cfg, axis, result)

    def plot_(cfg, result, prediction):
        return plot(cfg, axis, result, prediction)

    def summary_(cfg, result, prediction):
        return summary(cfg, axis, result, prediction)

    def outputs_(cfg, result, prediction):
        return outputs(cfg, axis, result, prediction)

    out = []
    for fn, base in ((run_, run), (predict_, predict), (plot_, plot), (summary_, summary), (outputs_, outputs)):
        fn.__name__ = fn.__qualname__ = base.__name__
        fn.__module__ = f"sims.{axis.name}"
        fn.__doc__ = f"{base.__doc__.splitlines()[0]} (figure {axis.figure}, over {axis.symbol}; see " \
                     f":func:`sims._deep_sweep.{base.__name__}`)."
        out.append(fn)
    return tuple(out)


# ---------------------------------------------------------------------- the three sweeps
RHO = Axis("rho", "rho_sweep", 10, (-0.92, 0.92, 100), r"correlation $\rho$ of $x_A$ and $x_B$",
           r"$\rho$", "ρ")


@dataclass(frozen=True)
class RhoSweep(Sweep, D.Ratio, D.Scale):
    """Figure 10: the deep-fusion sweep over ρ (theory.md §6.6-6.7)."""

    values: tuple[float, ...] = option(tuple(float(v) for v in np.round(np.linspace(-0.9, 0.9, 9), 12)),
                                       "correlations ρ to sweep, comma separated, each in (-1, 1)",
                                       check=reals(-1.0, 1.0, lo_open=True, hi_open=True),
                                       quick=(-0.6, 0.0, 0.6), group="sweep")


RATIO = Axis("ratio", "ratio_sweep", 11, (1.0, 3.0, 100), r"$\sigma_A/\sigma_B$", r"$\sigma_A/\sigma_B$", "r")


@dataclass(frozen=True)
class RatioSweep(Sweep, D.Rho, D.Scale):
    """Figure 11: the deep-fusion sweep over r = σ_A/σ_B (theory.md §6.6-6.7)."""

    values: tuple[float, ...] = option(tuple(float(v) for v in np.round(np.linspace(1.2, 2.8, 5), 12)),
                                       "ratios r = σ_A/σ_B to sweep, comma separated, each >= 1 (A is learned "
                                       "first)", check=reals(1.0), quick=(1.5, 2.5), group="sweep")


INIT = Axis("scale", "init_sweep", 12, (0.01, 0.2, 100), r"init scale $u_0$ (per-layer Frobenius norm)",
            r"$u_0$", "u0")


@dataclass(frozen=True)
class InitSweep(Sweep, D.Rho, D.Ratio):
    """Figure 12: the deep-fusion sweep over the init scale u0 (theory.md §6.6-6.7)."""

    values: tuple[float, ...] = option(tuple(float(v) for v in np.round(np.linspace(0.03, 0.18, 5), 12)),
                                       "init scales u0 to sweep, comma separated, each in (0, 1)",
                                       check=reals(0.0, 1.0, lo_open=True, hi_open=True), quick=(0.1, 0.18),
                                       group="sweep")


_MODULES = {"rho_sweep": (RHO, RhoSweep), "ratio_sweep": (RATIO, RatioSweep), "init_sweep": (INIT, InitSweep)}


def module(name):
    """(Config, run, predict, plot, summary, outputs) of the sweep module ``name``."""
    axis, config = _MODULES[name]
    return (config,) + protocol(axis)
