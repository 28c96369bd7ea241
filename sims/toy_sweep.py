"""Figure 6: toy sweep of two-layer late fusion, time ratio t_B/t_A and misattribution against ρ.

What the original's ``--sweep toy_sweep`` trains: for r = σ_A/σ_B ∈ {3, 2, 1.5, 1} and
ρ ∈ linspace(−0.9, 0.9, 9), the linear net (slope 1) *and* the ReLU net (slope 0), 5
repeats each, 360 runs; every run draws its own n = 8192 samples of the toy data
(theory.md §3a) and its own initial weights, as the original (a fresh draw per run). Two-layer
late fusion, width 100, per-entry init 1e-9, lr 0.04, full-batch gradient descent, stop at
the first state whose loss is < 1e-4, at most 40 000 epochs.

Left: the time ratio t_B/t_A (log axis), the mean over each point's kept runs (markers, as
the original; bars: ± one standard deviation), over the flow formula
1 + (r² − 1)/(1 − ρ²) (theory.md §6.3; dashed, in the series' colour) and the exact
rank-one gradient-descent map at the runs' learning rate (theory.md §6.10; dotted). The
flow formula runs 5–23 % above the linear runs where Σ_yx,A = r² + ρr is large (a mode grows
by (1 + ηs)² per step, not e^{2ηs}); the map has no such error. Right: the misattribution
(W_A(t_mid) − W_A(end))/W_A(end) on the unimodal plateau against ρ/r (theory.md §6.4), for
r ≠ 1 (undefined at r = 1, where no modality is first: NaN in the table).

Measurement (``--convention``, theory.md §7): ``paper`` (default, the original's read-out:
``time_half`` indices, the misattribution index, the keep rule on the loss before the final
state; see :mod:`sims._sweeps`) or ``interp``. A's threshold is half of the population plateau
1 + ρ/r (doubled for ReLU nets, whose unpacked W_tot converges to 2×, theory.md §6.9), half
of A's maximum at r = 1. Runs whose last recorded loss is ≥ 1e-3 (``--drop-loss``) and runs
that are not usable (diverged, stalled) stay in the table with their status, are left out of
the means and are counted on the figure and in the summary.

Cost: the linear runs take the moment path (about 1 µs per epoch); the ReLU runs dominate.
Every run goes through :func:`linfusion.sweep.run_sweep`: cached under ``<out>/cache``,
resumable, parallel (``--workers``, ``--scheduler``), seeded per point from ``--seed`` and the
point's configuration, bit for bit the same on any number of workers.

From Python: ``toy_sweep.run(toy_sweep.Config.quick())``.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

import numpy as np

from linfusion.sweep import run_sweep
from theory.dynamics import rank_one_map
from theory.fixed_points import late_fixed_point
from theory.two_layer import time_ratio_toy, toy_stats

from . import _style as S
from ._cli import entry_point
from ._config import integer, option, reals
from ._options import Descent, Init, Seeded, Width
from ._sweeps import (Measured, as_int, convention_note, dropped_note, keep_mask, readout, sweep_kwargs)

from theory.two_layer import predicted_misattribution_toy

NAME = "toy_sweep"
KIND = "sweep"
main = entry_point(NAME)
#: leaky-ReLU slope of each variant
VARIANTS = {"linear": 1.0, "relu": 0.0}
THEORY_RHO_MAX = 0.92   # range of the theory curves (the original's)
MAP_POINTS = 37         # ρ values of the (slower) discrete-map curve
PAPER_RHOS = (-0.9, -0.675, -0.45, -0.225, 0.0, 0.225, 0.45, 0.675, 0.9)   # linspace(-0.9, 0.9, 9)


@dataclass(frozen=True)
class Config(Measured, Seeded, Descent, Init, Width):
    """The toy sweep of figure 6 (theory.md §6.3, §6.4): r × ρ × {linear, ReLU} × repeats."""

    QUICK = {"width": 20}

    ratios: tuple[float, ...] = option((3.0, 2.0, 1.5, 1.0), "r = σ_A/σ_B values, each >= 1 (A is learned first)",
                                       check=reals(1.0), group="sweep", quick=(2.0, 1.0))
    rhos: tuple[float, ...] = option(PAPER_RHOS, "correlations ρ, each in (-1, 1)",
                                     check=reals(-1.0, 1.0, lo_open=True, hi_open=True), group="sweep",
                                     quick=(-0.5, 0.0, 0.5))
    repeats: int = option(5, "runs per point and variant (each its own data and initial weights)",
                          check=integer(lo=1), group="sweep", quick=1)
    linear: bool = option(True, "train the linear nets (open circles)", group="sweep")
    relu: bool = option(True, "train the ReLU nets (crosses)", group="sweep")
    n: int = option(8192, "samples of every run, linear and ReLU (the original's)", check=integer(lo=2),
                    group="data")
    epochs: int = option(40000, "maximum number of epochs", check=integer(lo=1), group="network and training")

    def validate(self):
        super().validate()
        if not (self.linear or self.relu):
            raise ValueError("linear == False and relu == False: nothing to train; keep at least one variant.")

    @property
    def variants(self):
        """The variants trained, in the original's order (linear, then ReLU)."""
        return [v for v in VARIANTS if getattr(self, v)]



# ---------------------------------------------------------------------- the sweep's points
def points(cfg):
    """The runs of the sweep, in the original's loop order: r, ρ, variant (linear first), repeat."""
    out = []
    for r in cfg.ratios:
        for rho in cfg.rhos:
            for variant in cfg.variants:
                for rep in range(cfg.repeats):
                    out.append(dict(arch="late", depth=2, width=cfg.width, slope=VARIANTS[variant], data="toy",
                                    ratio=float(r), rho=float(rho), n=cfg.n, noise=0.0, lr=cfg.lr,
                                    epochs=cfg.epochs, tol=cfg.tol, init=cfg.init, scale=cfg.scale_value,
                                    weight_decay=cfg.weight_decay, record_every=cfg.record_every, repeat=rep))
    return out


def measure_toy(result, config, convention="paper"):
    """t_A, t_B, t_B/t_A, misattribution and keep-rule loss of one toy run (runs in the workers).

    A's threshold: half of the population plateau W_A(M_A) = 1 + ρ/r of the run's (ρ, r, W*)
    (half of A's maximum at r = 1, as the original); B's: half of B's maximum ('paper') or of
    its value at M_* ('interp'); both doubled for ReLU nets. Misattribution is NaN at r = 1.
    """
    sigma, syx, syy = toy_stats(config["rho"], config["ratio"], tuple(config["w_star"]))
    wa_uni = float(late_fixed_point(sigma, syx, syy, (1, 1), (0,)).block(0)[0, 0])
    wb_star = float(late_fixed_point(sigma, syx, syy, (1, 1), (0, 1)).block(1)[0, 0])
    first = config["ratio"] != 1.0
    out = readout(result, convention, wa_uni=wa_uni, wb_star=wb_star, relu=config["slope"] != 1.0,
                  a_from_max=not first)
    if not first:
        out["misattribution"] = np.nan      # no modality is learned first
    return out


# ---------------------------------------------------------------------- run, predict
_PER_RUN = ("t_a", "t_b", "time_ratio", "misattribution", "keep_loss", "final_loss", "final_epoch")


def run(cfg, execution=None):
    """Train every run of the sweep (through the cache) and measure it.

    Returns
    -------
    dict
        Per-run arrays (``ratio``, ``rho``, ``repeat``, ``relu`` (bool), ``status``, ``t_a``,
        ``t_b``, ``time_ratio``, ``misattribution``, ``keep_loss``, ``final_loss``,
        ``final_epoch``, ``kept``), the drop ``counts``, ``n_cached``, ``n_computed`` and
        ``rows`` (the sweep's table).
    """
    res = run_sweep(points(cfg), measure=functools.partial(measure_toy, convention=cfg.convention),
                    **sweep_kwargs(execution, cfg.seed))
    col = res.column
    status = [row["status"] for row in res.table]
    kept, counts = keep_mask(status, col("keep_loss"), col("time_ratio"), cfg.drop_loss)
    sim = {name: col(name).astype(float) for name in _PER_RUN}
    sim.update(ratio=col("ratio").astype(float), rho=col("rho").astype(float), repeat=col("repeat").astype(int),
               relu=col("slope") != 1.0, status=np.array(status), kept=kept, counts=counts,
               n_cached=res.n_cached, n_computed=res.n_computed, rows=res.table)
    return sim


def map_ratio(rho, ratio, lr, u0, max_epochs):
    """t_B/t_A of the exact rank-one gradient-descent map at rate ``lr`` (theory.md §6.10).

    Returns
    -------
    float
        NaN if B is not learned within ``max_epochs``; 1 at r = 1 (no modality first).
    """
    if ratio == 1.0:
        return 1.0
    sigma, syx, syy = toy_stats(rho, ratio)
    # epochs to cover t_B: A crosses after ~ln(1/u0²)/(2 ln(1 + lr Σ_yx,A)), B within twice
    # the flow ratio of that (the map's ratio is below the flow's)
    t_a = np.log(1.0 / u0 ** 2) / (2.0 * np.log1p(lr * syx[0, 0]))
    n_epochs = int(min(max_epochs, 2.0 * time_ratio_toy(rho, ratio) * t_a + 200))
    traj = rank_one_map(sigma, syx, syy, (1, 1), np.arange(n_epochs + 1), lr, u0=u0)
    return np.nan if traj.ratio is None else float(traj.ratio)


def predict(cfg, result=None):
    """Theory over ρ ∈ ±0.92 and at the sweep's points.

    The signed flow formula 1 + (r² − 1)/(1 − ρ²) and ρ/r; the exact rank-one map at the
    sweep's lr for the linear nets (lr/2 for the ReLU nets, whose units see half the data, a
    heuristic), from u0 = scale·√(width/2), the expected effective seed of the per-entry
    init (the ratio depends on it only through O(1) transients).
    """
    rho_curve = np.linspace(-THEORY_RHO_MAX, THEORY_RHO_MAX, 100)
    rho_map = np.linspace(-THEORY_RHO_MAX, THEORY_RHO_MAX, MAP_POINTS)
    ratios, rhos = np.array(cfg.ratios), np.array(cfg.rhos)
    u0 = cfg.scale_value * np.sqrt(cfg.width / 2.0)

    def maps(rho_values, lr):
        return np.array([[map_ratio(rho, r, lr, u0, cfg.epochs) for rho in rho_values] for r in ratios])

    m_curve = np.array(predicted_misattribution_toy(rho_curve[None, :], ratios[:, None]), dtype=float)
    m_points = np.array(predicted_misattribution_toy(rhos[None, :], ratios[:, None]), dtype=float)
    m_curve[ratios == 1.0] = np.nan     # undefined at r = 1
    m_points[ratios == 1.0] = np.nan
    pred = dict(rho_curve=rho_curve, ratios=ratios, rhos=rhos, rho_map=rho_map,
                ratio_curve=time_ratio_toy(rho_curve[None, :], ratios[:, None], form="signed"),
                ratio_points=time_ratio_toy(rhos[None, :], ratios[:, None], form="signed"),
                m_curve=m_curve, m_points=m_points)
    if cfg.linear:
        pred.update(map_curve=maps(rho_map, cfg.lr), map_points=maps(rhos, cfg.lr))
    if cfg.relu:
        pred.update(map_points_relu=maps(rhos, cfg.lr / 2.0))
    return pred


# ---------------------------------------------------------------------- per-point means
def point_means(cfg, sim, pred):
    """Per (variant, r, ρ): runs, kept, mean ± std of the kept runs, and the theory there."""
    out = []
    for variant in cfg.variants:
        relu = variant == "relu"
        maps = pred.get("map_points_relu" if relu else "map_points")
        for i, r in enumerate(pred["ratios"]):
            for j, rho in enumerate(pred["rhos"]):
                sel = (sim["relu"] == relu) & (sim["ratio"] == r) & (sim["rho"] == rho)
                k = sel & sim["kept"]
                tr, m = sim["time_ratio"][k], sim["misattribution"][k]
                theory, gd_map = float(pred["ratio_points"][i, j]), float(maps[i, j])
                mean = float(tr.mean()) if tr.size else np.nan
                m_mean = float(m.mean()) if m.size and r != 1.0 else np.nan
                out.append(dict(
                    variant=variant, sigma_ratio=float(r), rho=float(rho), runs=int(sel.sum()), kept=int(k.sum()),
                    time_ratio_mean=mean, time_ratio_std=float(tr.std()) if tr.size else np.nan,
                    time_ratio_theory=theory, time_ratio_map=gd_map,
                    rel_error_theory=mean / theory - 1.0, rel_error_map=mean / gd_map - 1.0,
                    misattribution_mean=m_mean,
                    misattribution_std=float(m.std()) if m.size and r != 1.0 else np.nan,
                    misattribution_theory=float(pred["m_points"][i, j])))
    return out


def _statuses(sim):
    return [s for s in sim["status"] if s not in ("completed", "converged")]


def summary(cfg, sim, pred):
    """Per point: kept runs, mean ± std against the flow formula and the map; the counts."""
    means = point_means(cfg, sim, pred)
    n_lin = int((~sim["relu"]).sum())
    n_relu = int(sim["relu"].sum())
    lines = [f"toy sweep, two-layer late fusion: {len(sim['kept'])} runs ({n_lin} linear, {n_relu} ReLU) = "
             f"{len(cfg.ratios)} r × {len(cfg.rhos)} ρ × {len(cfg.variants)} variant(s) × {cfg.repeats} repeats; "
             f"n = {cfg.n} samples each, width {cfg.width}, init {cfg.init} {cfg.scale_value:g}, lr {cfg.lr:g}, "
             f"≤ {cfg.epochs} epochs, stop at loss < {cfg.tol:g}",
             f"kept {int(sim['kept'].sum())}; {dropped_note(sim['counts'], cfg.drop_loss, _statuses(sim))}; "
             f"points {sim['n_cached']} from cache, {sim['n_computed']} computed",
             "", "| r | ρ | variant | kept | t_B/t_A sim | flow formula | sim/flow − 1 | GD map | sim/map − 1 "
             "| misattr. sim | ρ/r |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in means:
        undefined = s["sigma_ratio"] == 1.0
        m = "—" if undefined else f"{s['misattribution_mean']:+.3f} ± {s['misattribution_std']:.3f}"
        mt = "—" if undefined else f"{s['misattribution_theory']:+.3f}"
        lines.append(f"| {s['sigma_ratio']:g} | {s['rho']:+.3f} | {s['variant']} | {s['kept']}/{s['runs']} | "
                     f"{s['time_ratio_mean']:.3f} ± {s['time_ratio_std']:.3f} | {s['time_ratio_theory']:.3f} | "
                     f"{100 * s['rel_error_theory']:+.1f} % | {s['time_ratio_map']:.3f} | "
                     f"{100 * s['rel_error_map']:+.1f} % | {m} | {mt} |")
    lines.append("")
    for variant in cfg.variants:
        for key, what in (("rel_error_theory", "flow formula"), ("rel_error_map", "GD map")):
            errs = np.array([s[key] for s in means if s["variant"] == variant and s["sigma_ratio"] != 1.0])
            errs = errs[np.isfinite(errs)]
            if errs.size:
                lines.append(f"{variant}: t_B/t_A sim/{what} − 1 over r ≠ 1: mean {100 * errs.mean():+.1f} %, "
                             f"range {100 * errs.min():+.1f} % to {100 * errs.max():+.1f} %")
    lines.append(convention_note(cfg.convention))
    if cfg.convention == "paper":
        lines.append("t_A, t_B are the original's indices (record − 1, in epochs); means over kept runs")
    if cfg.weight_decay > 0:
        lines.append(f"weight decay {cfg.weight_decay:g}: the theory lines assume none")
    return "\n".join(lines)


# ---------------------------------------------------------------------- files
def _table(cfg, sim, pred):
    """The tidy per-run table: one row per run, units in the names, NaN where undefined."""
    theory = {(float(r), float(rho)): (float(pred["ratio_points"][i, j]), float(pred["m_points"][i, j]))
              for i, r in enumerate(pred["ratios"]) for j, rho in enumerate(pred["rhos"])}
    rows = []
    for k, row in enumerate(sim["rows"]):
        tr_th, m_th = theory[(float(row["ratio"]), float(row["rho"]))]
        rows.append({
            "variant": "relu" if sim["relu"][k] else "linear", "sigma_ratio": float(row["ratio"]),
            "rho": float(row["rho"]), "repeat": int(row["repeat"]), "seed": int(row["seed"]),
            "slope": float(row["slope"]), "n_samples": int(row["n"]), "width": int(row["width"]),
            "lr": float(row["lr"]), "max_epochs": int(row["epochs"]), "tol": float(row["tol"]),
            "init": row["init"], "init_scale": float(row["scale"]), "status": row["status"],
            "kept": bool(sim["kept"][k]), "t_a_epochs": sim["t_a"][k], "t_b_epochs": sim["t_b"][k],
            "time_ratio": sim["time_ratio"][k], "misattribution": sim["misattribution"][k],
            "keep_loss": sim["keep_loss"][k], "final_loss": sim["final_loss"][k],
            "final_epoch": as_int(sim["final_epoch"][k]), "time_ratio_theory": tr_th, "misattribution_theory": m_th,
            "convention": cfg.convention, "cache_key": row["key"]})
    return rows


def outputs(cfg, sim, pred):
    """Per-run arrays and theory (.npz), the tidy table (.csv), per-point means and counts (.json)."""
    arrays = {k: v for k, v in sim.items() if k not in ("rows", "counts", "status")}
    arrays["status"] = sim["status"].astype(str)
    arrays.update({f"n_{k}": v for k, v in sim["counts"].items()})
    arrays.update(pred)
    record = dict(runs=len(sim["kept"]), kept=int(sim["kept"].sum()), counts=sim["counts"],
                  n_cached=sim["n_cached"], n_computed=sim["n_computed"],
                  convention=convention_note(cfg.convention), points=point_means(cfg, sim, pred))
    return {"arrays": arrays, "table": _table(cfg, sim, pred), "record": record}


# ---------------------------------------------------------------------- figure
_MARKERS = {"linear": dict(marker="o", markerfacecolor="none"), "relu": dict(marker="x")}


def plot(cfg, sim, pred):
    """Left: t_B/t_A against ρ (log); right: misattribution against ρ for r ≠ 1."""
    from matplotlib.lines import Line2D

    means = point_means(cfg, sim, pred)
    if not any(s["kept"] for s in means):
        return None
    fig, axes = S.figure(1, 2, width=3.4, height=2.9)
    ax_t, ax_m = axes[0]
    colors = S.ordered_colors(len(pred["ratios"]))
    order = np.argsort(-pred["ratios"])        # largest r darkest
    color = {float(pred["ratios"][i]): colors[rank] for rank, i in enumerate(order)}
    dx = 0.012 * (np.ptp(pred["rhos"]) if pred["rhos"].size > 1 else 1.0)
    for i, r in enumerate(pred["ratios"]):
        c = color[float(r)]
        ax_t.plot(pred["rho_curve"], pred["ratio_curve"][i], **S.theory_kw(c), zorder=1)
        if "map_curve" in pred and r != 1.0:
            ax_t.plot(pred["rho_map"], pred["map_curve"][i], color=c, linestyle=":", linewidth=1.0, zorder=1)
        if r != 1.0:
            ax_m.plot(pred["rho_curve"], pred["m_curve"][i], **S.theory_kw(c), zorder=1)
        for variant in cfg.variants:
            pts = [s for s in means if s["variant"] == variant and s["sigma_ratio"] == r and s["kept"]]
            if not pts:
                continue
            x = np.array([s["rho"] for s in pts]) + (dx if variant == "relu" else -dx)
            style = dict(_MARKERS[variant], color=c, markersize=4.5, linestyle="none", elinewidth=0.7,
                         capsize=0, zorder=2)
            ax_t.errorbar(x, [s["time_ratio_mean"] for s in pts], yerr=[s["time_ratio_std"] for s in pts], **style)
            if r != 1.0:
                ax_m.errorbar(x, [s["misattribution_mean"] for s in pts],
                              yerr=[s["misattribution_std"] for s in pts], **style)
    ax_t.set_yscale("log")
    ax_t.set_xlabel(r"correlation $\rho$")
    ax_t.set_ylabel(r"time ratio $t_B/t_A$")
    ax_m.axhline(0.0, color="0.85", linewidth=0.8, zorder=0)
    ax_m.set_xlabel(r"correlation $\rho$")
    ax_m.set_ylabel(r"misattribution $W_A(t_{\rm mid})/W_A(\infty) - 1$")
    for ax in (ax_t, ax_m):
        ax.set_xlim(-1.0, 1.0)
    handles = [Line2D([], [], color=color[float(r)], linewidth=2.5, label=f"$r = {r:g}$") for r in pred["ratios"]]
    if cfg.linear:
        handles.append(Line2D([], [], color="0.3", linestyle="none", **_MARKERS["linear"], label="linear net"))
    if cfg.relu:
        handles.append(Line2D([], [], color="0.3", linestyle="none", **_MARKERS["relu"], label="ReLU net"))
    handles.append(Line2D([], [], **S.theory_kw("0.3"), label="theory: flow formula\n" r"$1 + (r^2-1)/(1-\rho^2)$, $\rho/r$"))
    if "map_curve" in pred:
        handles.append(Line2D([], [], color="0.3", linestyle=":", linewidth=1.0,
                              label=f"exact GD map at lr {cfg.lr:g}\n(linear)"))
    kept = int(sim["kept"].sum())
    note = dropped_note(sim["counts"], cfg.drop_loss, _statuses(sim)).replace(" (", "\n(")
    fig.legend(handles=handles, loc="outside right center",
               title=f"mean of kept runs ± sd\n{kept} of {len(sim['kept'])} runs kept\n{note}")
    S.title(fig, "Two-layer late fusion on toy data: time ratio and misattribution against ρ")
    return fig



if __name__ == "__main__":
    sys.exit(main())
