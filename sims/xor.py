"""Figure 14: two-layer ReLU early versus late fusion on XOR + linear data, and the features they form.

Data (theory.md §3d, :func:`linfusion.data.xor_linear`): modality A is one Gaussian scalar
x_A ~ N(0, σ_A²) (the linear modality; ``--sigma-a`` is its *standard deviation*, where the
original code's ``--var_lin`` was ambiguous), modality B the XOR pair x_B ∈ {(±1, ±1)} with
each corner n/4 times, and y = x_A − x_B1·x_B2. The XOR part has no linear correlation with
any input, so no linear network can learn it. Networks: two-layer ReLU (slope 0, no biases),
width 100, lr 0.04, n = 512, full-batch gradient descent, early fusion (every hidden unit
sees (x_A, x_B1, x_B2)) against late fusion (one ReLU branch per modality, summed at the
output). Without biases, the XOR part is exactly ½(relu(x_B1 − x_B2) + relu(x_B2 − x_B1)
− relu(x_B1 + x_B2) − relu(−x_B1 − x_B2)): four perpendicular features toward (±1, ±1).

Initialisation: the paper's two-layer scheme, every weight N(0, u0²) with u0 = 1e-9
('entry'). A small init is what makes the phenomenon visible: units first align with the
only linear correlation, x_A; in early fusion every unit sees x_A, so (at σ_A ≳ 1.5) all of
them commit to the linear part, their activation pattern stops depending on x_B, and the XOR
gradient vanishes: the network stalls at the linear-only solution (L/L(0) = 1/(1 + σ_A²)).
Late fusion's B branch never sees x_A and forms the four XOR features. In a check at n = 512
(3-5 seeds per cell, 3000-8000 epochs), early fusion at σ_A ∈ {2, 3} ended at the linear-only
level in all 16 runs with u0 = 1e-9, failed to learn the whole task in 4 of 6 with u0 = 1e-6,
and learned it in all 10 runs with each of u0 = 1e-4, 0.01 and 0.1, where the random init
already holds XOR-plane components; at 0.1 even late fusion's features were no longer four
clean directions (5-8). The price of u0 = 1e-9 is time: escaping from ~u0² takes ∝ ln(1/u0), and
late fusion at σ_A = 0.5 (where x_A is the weaker signal) needs ~4500 epochs, hence 6000.

Panels: (top) training loss / L(0) for σ_A = 1, 2, 3, with the linear-only and XOR-only
fixed-point levels (grey dashes and dots); (middle) every hidden unit's first-layer weights on
(x_B1, x_B2) at the end of training, divided by the panel's largest unit norm (the axis labels
give it: early fusion's XOR-plane weights can be orders of magnitude smaller than late
fusion's), coloured by its x_A weight (late fusion's B units have none), with the four XOR
directions (black dashes); (bottom) a sweep over σ_A (through
:mod:`linfusion.sweep`, with progress bar, cache and resume): the fraction of runs that learn
the whole task (final loss < ``--learned-threshold`` × L(0), L(0) = ½(σ_A² + 1), the
population value), every run's final loss, and the number of distinct feature directions
(units whose XOR-plane weight norm exceeds ``--min-norm`` × the largest, their angles merged
when closer than ``--merge-angle`` degrees, single linkage around the circle).

Run ``python -m sims.xor`` (about a minute on 2 idle cores; the sweep is cached). A sweep
of at most 8 points runs in this process unless ``--workers`` or ``--scheduler`` is given.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
import numpy as np

from linfusion.architecture import default_scale
from linfusion.sweep import grid, run_sweep

from . import _style as S
from ._cli import Execution
from ._cli import entry_point
from ._config import choice, integer, option, real, reals
from ._options import Seeded
from ._xor import XOR_DIRECTIONS, count_directions, feature_panel, unit_weights

__all__ = ["Config", "run", "predict", "plot", "summary", "outputs", "count_directions", "unit_weights",
           "XOR_DIRECTIONS", "initial_loss", "configs"]

NAME = "xor"
KIND = "sweep"
main = entry_point(NAME)
ARCHS = ("early", "late")
#: display floor of the final-loss scatter (late fusion reaches rounding level, ~1e-30)
LOSS_FLOOR = 1e-12
#: a sweep this small runs in this process (worker processes would cost more than they save)
SMALL_SWEEP = 8
_USABLE = ("completed", "converged")
_DATA = "data (XOR + linear, theory.md §3d)"
_TRAIN = "network and training (two-layer ReLU, no biases)"
_SWEEP = "sweep over σ_A and analysis"
_STD = reals(0.0, lo_open=True)


@dataclass(frozen=True)
class Config(Seeded):
    """Two-layer ReLU early and late fusion on XOR + linear data, and a sweep over σ_A."""

    QUICK = {"n": 64, "width": 20, "epochs": 1500, "scale": 1e-4, "sigma_a": (1.0, 3.0),
             "sweep_sigma": (1.0, 3.0), "repeats": 2, "record_every": 10}

    sigma_a: tuple[float, ...] = option((1.0, 2.0, 3.0), "standard deviations of the linear modality x_A for "
                                        "the loss and feature panels", check=_STD, group=_DATA)
    n: int = option(512, "number of samples (a multiple of 4)", check=integer(lo=4), group=_DATA)
    width: int = option(100, "hidden width h (per branch in late fusion)", check=integer(lo=1), group=_TRAIN)
    slope: float = option(0.0, "leaky-ReLU slope, in [0, 1) (0: ReLU; 1 would be linear, which cannot learn XOR)",
                          check=real(0.0, 1.0, hi_open=True), group=_TRAIN)
    lr: float = option(0.04, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True), group=_TRAIN)
    epochs: int = option(6000, "number of epochs", check=integer(lo=1), group=_TRAIN)
    init: str = option("entry", "initialisation scheme: entry (N(0, scale²) per weight) or layer (Frobenius "
                       "norm per layer)", choices=("entry", "layer"), check=choice("entry", "layer"), group=_TRAIN)
    scale: float | None = option(None, "initialisation scale u0 (> 0; see the module docstring)",
                                 check=real(0.0, lo_open=True), group=_TRAIN,
                                 none_means="the library's: 1e-9 for entry, 0.1 for layer")
    record_every: int = option(10, "record the loss every k epochs", check=integer(lo=1), group=_TRAIN)
    sweep_sigma: tuple[float, ...] = option((0.5, 1.0, 1.5, 2.0, 2.5, 3.0), "standard deviations of x_A in the "
                                            "sweep, comma separated (empty: no sweep)",
                                            check=reals(0.0, lo_open=True, min_len=0), group=_SWEEP)
    repeats: int = option(8, "seeds per (architecture, σ_A)", check=integer(lo=1), group=_SWEEP)
    learned_threshold: float = option(1e-2, "a run learns the whole task when its final loss < this × L(0)",
                                      check=real(0.0, 1.0, lo_open=True, hi_open=True), group=_SWEEP)
    min_norm: float = option(0.1, "units counted as features: XOR-plane weight norm > this × the largest",
                             check=real(0.0, 1.0, hi_open=True), group=_SWEEP)
    merge_angle: float = option(15.0, "feature directions closer than this (degrees) count as one",
                                check=real(0.0, 180.0, lo_open=True, hi_open=True), group=_SWEEP)

    def validate(self):
        if self.n % 4:
            raise ValueError(f"n == {self.n}, must be a multiple of 4 (each XOR corner n/4 times).")


def initial_loss(sigma_a):
    """Population L(0) = ½⟨y²⟩ = ½(σ_A² + 1) (the XOR part has variance 1)."""
    return 0.5 * (sigma_a * sigma_a + 1.0)


# ---------------------------------------------------------------------- experiment
def configs(cfg):
    """The sweep's points: every (architecture, σ_A, repeat), plus repeat 0 at each panel σ_A."""
    common = dict(data="xor_linear", n=cfg.n, width=cfg.width, depth=2, slope=cfg.slope, bias=False,
                  lr=cfg.lr, epochs=cfg.epochs, init=cfg.init, scale=cfg.scale, record_every=cfg.record_every)
    points = grid(arch=list(ARCHS), sigma_a=list(cfg.sweep_sigma), repeat=list(range(cfg.repeats)),
                  **common) if cfg.sweep_sigma else []
    extra = [s for s in cfg.sigma_a if s not in cfg.sweep_sigma]
    if extra:
        points += grid(arch=list(ARCHS), sigma_a=extra, repeat=0, **common)
    return points


def _usable(row):
    return row.get("status") in _USABLE


def run(cfg, execution=None):
    """Train every point through :func:`linfusion.sweep.run_sweep` and analyse the final weights.

    Seeds are derived from each point's configuration (``seed_by='config'``), so the panel
    runs (repeat 0 at each ``sigma_a``) are the same runs whether or not the sweep contains
    them. A sweep of at most :data:`SMALL_SWEEP` points runs in this process unless
    ``execution`` asks for workers or a scheduler.

    Returns
    -------
    dict
        Arrays: ``panel_sigma``, per panel index i and architecture
        ``panel{i}_{arch}_{epochs,loss_rel,units_b,units_a,n_dirs,status}``; ``sweep_sigma``, per
        architecture ``sweep_{arch}_{loss_rel,learned,n_dirs}`` of shape (n_sigma, repeats)
        and ``sweep_{arch}_frac_learned`` (over usable runs); ``n_unusable``. Key ``table``
        (not an array): the sweep's rows with the added columns ``loss_rel``, ``learned_all``,
        ``n_directions`` (NaN for a run that is not usable).
    """
    execution = execution or Execution()
    points = configs(cfg)
    workers = execution.workers
    if workers is None and execution.scheduler is None and len(points) <= SMALL_SWEEP:
        workers = 1
    res = run_sweep(points, seed=cfg.seed, workers=workers, cache_dir=execution.cache, force=execution.force,
                    keep_trajectories=True, scheduler=execution.scheduler, seed_by="config",
                    progress=execution.progress)
    table, by_point = [], {}
    for row, tr in zip(res.table, res.trajectories):
        row = dict(row)
        ok = _usable(row)
        units_b, units_a = unit_weights(tr.net, tr.w)
        row["loss_rel"] = float(tr.loss[-1] / initial_loss(row["sigma_a"])) if ok else np.nan
        row["learned_all"] = bool(ok and row["loss_rel"] < cfg.learned_threshold)
        row["n_directions"] = count_directions(units_b, cfg.min_norm, cfg.merge_angle) if ok else np.nan
        table.append(row)
        by_point[(row["arch"], row["sigma_a"], row["repeat"])] = (row, tr, units_b, units_a)
    sim = {"panel_sigma": np.array(cfg.sigma_a), "table": table,
           "n_unusable": int(sum(not _usable(r) for r in table))}
    for i, s in enumerate(cfg.sigma_a):
        for arch in ARCHS:
            row, tr, units_b, units_a = by_point[(arch, s, 0)]
            finite = np.isfinite(tr.loss)
            sim[f"panel{i}_{arch}_epochs"] = tr.epochs[finite]
            sim[f"panel{i}_{arch}_loss_rel"] = tr.loss[finite] / initial_loss(s)
            sim[f"panel{i}_{arch}_units_b"] = units_b
            sim[f"panel{i}_{arch}_units_a"] = units_a
            sim[f"panel{i}_{arch}_n_dirs"] = row["n_directions"]
            sim[f"panel{i}_{arch}_status"] = np.array(row.get("status", ""))
    if cfg.sweep_sigma:
        sim["sweep_sigma"] = np.array(cfg.sweep_sigma)
        for arch in ARCHS:
            rows = [[by_point[(arch, s, r)][0] for r in range(cfg.repeats)] for s in cfg.sweep_sigma]
            sim[f"sweep_{arch}_loss_rel"] = np.array([[x["loss_rel"] for x in rr] for rr in rows])
            sim[f"sweep_{arch}_learned"] = np.array([[x["learned_all"] for x in rr] for rr in rows])
            sim[f"sweep_{arch}_n_dirs"] = np.array([[x["n_directions"] for x in rr] for rr in rows], dtype=float)
            valid = np.array([[_usable(x) for x in rr] for rr in rows])
            n_valid = np.sum(valid, axis=1)           # unusable runs count neither way
            sim[f"sweep_{arch}_frac_learned"] = np.where(
                n_valid > 0, np.sum(sim[f"sweep_{arch}_learned"], axis=1) / np.maximum(1, n_valid), np.nan)
    return sim


def predict(cfg, result=None):
    """Reference levels (theory.md §3d, §6.9): the fixed points where one part is learned.

    Returns
    -------
    dict of arrays
        ``sigma`` grid and, relative to L(0) = ½(σ_A² + 1), ``linear_only`` = 1/(1 + σ_A²)
        (x_A fitted, XOR not) and ``xor_only`` = σ_A²/(1 + σ_A²); ``n_xor_directions`` = 4.
    """
    values = list(cfg.sigma_a) + list(cfg.sweep_sigma)
    sigma = np.linspace(min(values) * 0.9, max(values) * 1.1, 200)
    return {"sigma": sigma, "linear_only": 1.0 / (1.0 + sigma ** 2),
            "xor_only": sigma ** 2 / (1.0 + sigma ** 2), "n_xor_directions": 4}


# ---------------------------------------------------------------------- figure
_LINEAR, _XOR, _THRESHOLD, _FOUR = (0, (4, 2)), (0, (1, 1.5)), "-", (0, (6, 2, 1, 2))


def _directions(count):
    if not np.isfinite(count):
        return "not usable"
    count = int(count)
    return f"{count} direction" + ("" if count == 1 else "s")


def _usable_panel(sim, i, arch):
    return str(sim[f"panel{i}_{arch}_status"]) in _USABLE


def _legend_handles(cfg, has_sweep):
    from matplotlib.lines import Line2D

    level = S.COLORS["level"]
    out = [Line2D([], [], label="early fusion", **S.sim_kw(S.COLORS["early"])),
           Line2D([], [], label="late fusion", **S.sim_kw(S.COLORS["late"])),
           Line2D([], [], label="linear part only (theory)", color=level, linestyle=_LINEAR),
           Line2D([], [], label="XOR part only (theory)", color=level, linestyle=_XOR),
           Line2D([], [], label=f"'learned': loss < {cfg.learned_threshold:g} L(0)", color="0.75",
                  linestyle=_THRESHOLD, linewidth=0.8),
           Line2D([], [], label="XOR directions (±1, ±1)", **S.theory_kw("black", linewidth=0.8))]
    if has_sweep:
        out.append(Line2D([], [], label="four XOR directions", color=level, linestyle=_FOUR))
    return out


def _loss_panel(ax, sim, cfg, i, s):
    for arch in ARCHS:
        ax.plot(sim[f"panel{i}_{arch}_epochs"], sim[f"panel{i}_{arch}_loss_rel"], **S.sim_kw(S.COLORS[arch]))
    level = S.COLORS["level"]
    ax.axhline(1.0 / (1.0 + s * s), color=level, linestyle=_LINEAR, linewidth=1.1)
    ax.axhline(s * s / (1.0 + s * s), color=level, linestyle=_XOR, linewidth=1.1)
    ax.axhline(cfg.learned_threshold, color="0.75", linewidth=0.8, linestyle=_THRESHOLD)
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1e-8, ax.get_ylim()[0]))
    ax.set_title(rf"$\sigma_A = {s:g}$")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"loss / $L(0)$")


def plot(cfg, result, prediction):
    """Loss curves and feature planes per panel σ_A (top) and, with a sweep, the σ_A sweep (bottom)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    import matplotlib.pyplot as plt

    sim = result
    panels = list(cfg.sigma_a)
    usable = [(i, a) for i in range(len(panels)) for a in ARCHS if _usable_panel(sim, i, a)]
    if not usable:
        return None
    has_sweep = "sweep_sigma" in sim
    k = len(panels)
    scale = 0.8 if S.current() == "paper" else 1.35 if S.current() == "talk" else 1.0
    width = max(3, k) * 2.7
    fig = plt.figure(figsize=(scale * width, scale * (3 * 2.55 + (2.6 if has_sweep else 0) + 0.9)),
                     layout="constrained")
    if has_sweep:
        top, bottom = fig.subfigures(2, 1, height_ratios=[3 * 2.55, 2.6])
    else:
        top, bottom = fig, None
    axes = np.atleast_2d(top.subplots(3, k, squeeze=False))
    vmax = max([float(np.max(np.abs(sim[f"panel{i}_{a}_units_a"]))) for i, a in usable] + [1e-300])
    for i, s in enumerate(panels):
        _loss_panel(axes[0, i], sim, cfg, i, s)
        for row, arch in enumerate(ARCHS, start=1):
            ax = axes[row, i]
            if not _usable_panel(sim, i, arch):
                ax.set_axis_off()
                ax.set_title(f"{arch}: {sim[f'panel{i}_{arch}_status']}")
                continue
            feature_panel(ax, sim[f"panel{i}_{arch}_units_b"], sim[f"panel{i}_{arch}_units_a"], vmax)
            ax.set_title(f"{arch}, " + rf"$\sigma_A = {s:g}$" + f": {_directions(sim[f'panel{i}_{arch}_n_dirs'])}")
    top.colorbar(ScalarMappable(Normalize(-vmax, vmax), "coolwarm"), ax=axes[1:3, :].ravel().tolist(),
                 shrink=0.7, label=r"unit's weight on $x_A$")
    if has_sweep:
        _sweep_panels(bottom.subplots(1, 3), sim, prediction, cfg)
    fig.legend(handles=_legend_handles(cfg, has_sweep), loc="outside lower center", ncols=4)
    S.title(fig, r"Two-layer ReLU nets on $y = x_A - x_{B1} x_{B2}$")
    return fig


def _sweep_panels(axes, sim, pred, cfg):
    sigma = sim["sweep_sigma"]
    ax_frac, ax_loss, ax_dirs = axes
    for ax in axes:
        ax.set_xlabel(r"$\sigma_A$")
    rng = np.random.default_rng(0)                    # horizontal jitter of the scatter only
    spread = 0.03 * (float(np.ptp(sigma)) or 1.0)
    for k, arch in enumerate(ARCHS):
        color, shift = S.COLORS[arch], (k - 0.5) * 2 * spread
        ax_frac.plot(sigma, sim[f"sweep_{arch}_frac_learned"], "o-", color=color)
        loss = sim[f"sweep_{arch}_loss_rel"]
        dirs = sim[f"sweep_{arch}_n_dirs"]
        x = sigma[:, None] + shift + 0.5 * spread * rng.standard_normal(loss.shape)
        ok = np.isfinite(loss)
        ax_loss.scatter(x[ok], np.maximum(loss[ok], LOSS_FLOOR), s=14, color=color, alpha=0.7)
        ok = np.isfinite(dirs)
        ax_dirs.scatter(x[ok], dirs[ok], s=14, color=color, alpha=0.7)
    ax_frac.set_ylim(-0.05, 1.05)
    ax_frac.set_ylabel("fraction learning all")
    unusable = sum(not _usable(r) for r in sim["table"])
    ax_frac.set_title(f"{cfg.repeats} seeds per point" + (f", {unusable} not usable" if unusable else ""))
    ax_loss.plot(pred["sigma"], pred["linear_only"], color=S.COLORS["level"], linestyle=_LINEAR, linewidth=1.1)
    ax_loss.axhline(cfg.learned_threshold, color="0.75", linewidth=0.8, linestyle=_THRESHOLD)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel(r"final loss / $L(0)$")
    ax_loss.set_title(f"every run (floor {LOSS_FLOOR:g})")
    ax_dirs.axhline(pred["n_xor_directions"], color=S.COLORS["level"], linestyle=_FOUR, linewidth=1.1)
    ax_dirs.set_ylabel("feature directions")
    ax_dirs.set_title("XOR-plane features at the end")


# ---------------------------------------------------------------------- outputs
def outputs(cfg, result, prediction):
    """Arrays (``sim_*``, ``pred_*``), the sweep's table and the record of panel runs and sweep."""
    arrays = {**{f"sim_{k}": v for k, v in result.items() if k != "table"},
              **{f"pred_{k}": v for k, v in prediction.items()}}
    record = {"n_unusable": result["n_unusable"], "panels": [], "sweep": []}
    for i, s in enumerate(cfg.sigma_a):
        for arch in ARCHS:
            loss = result[f"panel{i}_{arch}_loss_rel"]
            ok = _usable_panel(result, i, arch)
            record["panels"].append(dict(sigma_a=s, arch=arch, status=str(result[f"panel{i}_{arch}_status"]),
                                         final_loss_rel=float(loss[-1]) if ok else np.nan,
                                         n_directions=result[f"panel{i}_{arch}_n_dirs"]))
    if "sweep_sigma" in result:
        for j, s in enumerate(result["sweep_sigma"]):
            record["sweep"].append({"sigma_a": float(s), **{f"{a}_frac_learned": result[f"sweep_{a}_frac_learned"][j]
                                                           for a in ARCHS}})
    record["directions"] = (f"units with XOR-plane norm > {cfg.min_norm:g} x the largest, merged within "
                            f"{cfg.merge_angle:g} degrees")
    return {"arrays": arrays, "table": result["table"], "record": record}


def summary(cfg, result, prediction):
    """The printed summary: per panel run and per swept σ_A, loss, success and directions."""
    sim = result
    scale = cfg.scale if cfg.scale is not None else default_scale(cfg.init)
    lines = [f"{NAME}: n {cfg.n}, width {cfg.width}, slope {cfg.slope:g}, lr {cfg.lr:g}, init {cfg.init} "
             f"{scale:g}, {cfg.epochs} epochs, seed {cfg.seed}"]
    for i, s in enumerate(cfg.sigma_a):
        parts = []
        for arch in ARCHS:
            loss = sim[f"panel{i}_{arch}_loss_rel"]
            if not _usable_panel(sim, i, arch):
                last = sim[f"panel{i}_{arch}_epochs"]
                parts.append(f"{arch}: {str(sim[f'panel{i}_{arch}_status']).upper()}"
                             + (f" after epoch {int(last[-1])}" if last.size else ""))
                continue
            units = sim[f"panel{i}_{arch}_units_b"]
            norm = float(np.max(np.linalg.norm(units, axis=1))) if units.size else 0.0
            parts.append(f"{arch}: final L/L(0) {loss[-1]:.1e}, {_directions(sim[f'panel{i}_{arch}_n_dirs'])}, "
                         f"largest XOR-plane unit norm {norm:.2g}")
        lines.append(f"  sigma_A = {s:g} (linear-only level {1 / (1 + s * s):.3f}): " + "; ".join(parts))
    if "sweep_sigma" in sim:
        lines.append(f"  sweep ({cfg.repeats} seeds; learned = final loss < {cfg.learned_threshold:g} L(0); "
                     "directions: median [min-max]):")
        lines.append(f"  {'sigma_A':>7} | {'early learned':>13} {'dirs':>10} | {'late learned':>12} {'dirs':>10}")
        for j, s in enumerate(sim["sweep_sigma"]):
            cells = []
            for arch in ARCHS:
                d = sim[f"sweep_{arch}_n_dirs"][j]
                d = d[np.isfinite(d)].astype(int)
                frac = sim[f"sweep_{arch}_frac_learned"][j]
                dirs = f"{np.median(d):g} [{d.min()}-{d.max()}]" if d.size else "-"
                cells.append(f"{frac:13.2f} {dirs:>10}" if arch == "early" else f"{frac:12.2f} {dirs:>10}")
            lines.append(f"  {s:7g} | {cells[0]} | {cells[1]}")
    if sim["n_unusable"]:
        lines.append(f"  {sim['n_unusable']} run(s) not usable (diverged or stalled): kept in the table with "
                     "their status, left out of the sweep statistics")
    lines.append(f"  directions: units with XOR-plane norm > {cfg.min_norm:g} x the largest, merged within "
                 f"{cfg.merge_angle:g} degrees; feature panels are scaled by their largest unit norm")
    return "\n".join(lines)



if __name__ == "__main__":
    sys.exit(main())
