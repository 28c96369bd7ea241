"""Figure 3: phase portraits of two-layer late and early fusion in the (W_A^tot, W_B^tot) plane.

The vector field is the balanced rank-one gradient flow of theory.md §6.2-6.3 evaluated on a
grid, τ dW_X/dt = ‖W_X‖ [g_X + (g_X·Ŵ_X) Ŵ_X] per modality for late fusion (scalar inputs:
2|W_X| g_X; toy r = 2, ρ = 0: 2((4 − 4x)x, (1 − y)y)) and τ dW/dt = ‖W‖ [g + (g·Ŵ) Ŵ] on the
whole W for early fusion, with g = Σyx − W Σ from the data's empirical statistics (so any
--rho / --ratio works). Fixed points from :mod:`theory.fixed_points`: M_0 (open circle),
M_A and M_B (crosses; late fusion only), M_* (filled).

Over the field, for each fusion: the simulated trajectory of an actual two-layer network
(toy data, width 100, init 1e-9, lr 0.04, 1000 epochs; wide band, a dot every τ epochs), the
exact Gram-state map at the run's learning rate from the run's own initial weights (dashed,
in the run's colour: the theory curve, equal to the simulation to rounding) and the
gradient-flow ODE from the run's effective seed (dotted: the lr → 0 limit, theory.md §6.10).
Expected: the late path goes M_0 → M_A and turns there towards M_*; the early path curves
straight from M_0 to M_*.

Run ``python -m sims.phase_portrait``. From Python:
``phase_portrait.run(phase_portrait.Config(rho=0.5))``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from linfusion.architecture import default_scale

from . import _style as S
from . import _two_layer
from ._cli import entry_point
from ._config import integer, option

NAME = "phase_portrait"
KIND = "run"
main = entry_point(NAME)
FUSIONS = ("late", "early")
_POINTS = ("$M_0$", "$M_A$", "$M_B$", "$M_*$")


@dataclass(frozen=True)
class Config(_two_layer.ToyRun):
    """Late and early fusion on the same toy data, drawn in the (W_A^tot, W_B^tot) plane.

    Modality A (variance r²) must be the first-learned one, |Σyx_A| >= |Σyx_B|.
    """

    grid: int = option(13, "arrows per axis of the vector field", check=integer(lo=2, hi=200), group="figure")

    def validate(self):
        _two_layer.check_a_first(self)


def run(cfg, execution=None):
    """Train a late- and an early-fusion network on the same data.

    Returns
    -------
    dict of str -> dict
        ``'late'`` and ``'early'``: :func:`sims._two_layer.simulate` of each (no unit snapshots).
    """
    return {f: _two_layer.simulate(cfg, f, snapshots=False) for f in FUSIONS}


def field(sigma, syx, w_a, w_b, fusion):
    """τ dW/dt of the balanced rank-one two-layer gradient flow at W = (w_a, w_b).

    Each group of weights G (one per modality for late fusion, all of W for early fusion)
    moves as ‖W_G‖ g_G + (g_G·W_G) W_G/‖W_G‖ (theory.md §6.2-6.3), g = Σyx − W Σ.

    Parameters
    ----------
    sigma : ndarray of shape (2, 2)
    syx : ndarray of shape (2,)
    w_a, w_b : ndarray of shape (...)
    fusion : {'late', 'early'}

    Returns
    -------
    ndarray of shape (..., 2)
    """
    w = np.stack([w_a, w_b], axis=-1)
    g = syx - w @ sigma
    groups = [[0], [1]] if fusion == "late" else [[0, 1]]
    out = np.zeros_like(w)
    for cols in groups:
        wg, gg = w[..., cols], g[..., cols]
        norm = np.linalg.norm(wg, axis=-1, keepdims=True)
        safe = np.where(norm > 0, norm, 1.0)    # the field vanishes at W_G = 0
        out[..., cols] = norm * gg + np.sum(gg * wg, axis=-1, keepdims=True) * wg / safe
    return out


def predict(cfg, result=None):
    """Field on a grid, fixed points, exact maps and ODE paths of both fusions.

    Returns
    -------
    dict of str -> dict
        ``'late'``, ``'early'``: :func:`sims._two_layer.predict` plus ``field`` (grid, grid, 2);
        ``'grid'``: dict with ``w_a``, ``w_b`` (grid, grid) and ``lims`` (2,).
    """
    pred = {f: _two_layer.predict(cfg, f) for f in FUSIONS}
    paths = np.concatenate([pred[f]["ode_w_tot"] for f in FUSIONS])
    m_w = pred["late"]["m_w"]
    lo = min(0.0, float(m_w.min()), float(paths.min()))
    hi = max(1.2 * float(m_w.max()), 1.05 * float(paths.max()))
    if lo < 0:
        lo -= 0.1 * (hi - lo)
    axis = np.linspace(lo, hi, cfg.grid)
    w_a, w_b = np.meshgrid(axis, axis)
    for f in FUSIONS:
        pred[f]["field"] = field(pred[f]["sigma"], pred[f]["syx"], w_a, w_b, f)
    pred["grid"] = dict(w_a=w_a, w_b=w_b, lims=np.array([lo, hi]))
    return pred


def closest_approach(w_tot, point):
    """Smallest distance of a trajectory (n, 2) to a point (2,); NaN for an empty or non-finite one."""
    d = np.linalg.norm(np.asarray(w_tot) - point, axis=1)
    d = d[np.isfinite(d)]
    return float(np.min(d)) if d.size else np.nan


# ---------------------------------------------------------------------- figure
_MARKERS = {0: dict(marker="o", facecolor="none"), 1: dict(marker="x"), 2: dict(marker="x"), 3: dict(marker="o")}


def _legend_handles(tau):
    from matplotlib.lines import Line2D

    grey = "0.35"
    return [Line2D([], [], label=f"simulation, a dot every τ = {tau:g} epochs", marker=".", markersize=5,
                   **S.sim_kw(grey)),
            Line2D([], [], label="exact map at lr (theory)", **S.theory_kw(grey)),
            Line2D([], [], label="gradient flow (lr → 0)", color=grey, linestyle=":", linewidth=1.2),
            Line2D([], [], label=r"arrows: $\tau\,dW/dt$ of the flow", color="0.6", marker=r"$\rightarrow$",
                   markersize=9, linestyle="none"),
            Line2D([], [], label="$M_0$", color="black", marker="o", markerfacecolor="none", linestyle="none"),
            Line2D([], [], label="$M_A$, $M_B$", color="black", marker="x", linestyle="none"),
            Line2D([], [], label="$M_*$", color="black", marker="o", linestyle="none")]


def plot(cfg, result, prediction):
    """Two panels, late and early fusion: field, fixed points, simulation, exact map and flow paths."""
    sim, pred = result, prediction
    if not all(sim[f]["usable"] for f in FUSIONS):
        return None
    fig, axes = S.figure(1, 2, width=3.4, height=3.6)
    grid = pred["grid"]
    lo, hi = grid["lims"]
    spacing = (hi - lo) / (cfg.grid - 1)
    biggest = max(float(np.max(np.linalg.norm(pred[f]["field"], axis=-1))) for f in FUSIONS)
    scale = biggest / (1.1 * spacing) if biggest > 0 else 1.0     # one arrow scale for both panels
    tau = 1.0 / cfg.lr
    names = {"late": r"late fusion ($L_f = 2$)", "early": r"early fusion ($L_f = 1$)"}
    for ax, f in zip(axes[0], FUSIONS):
        p, s = pred[f], sim[f]
        color = S.COLORS[f]
        ax.quiver(grid["w_a"], grid["w_b"], p["field"][..., 0], p["field"][..., 1], color="0.7",
                  angles="xy", scale_units="xy", scale=scale, width=0.004, zorder=1)
        step = max(1, int(s["epochs"][1] - s["epochs"][0])) if len(s["epochs"]) > 1 else 1
        every = max(1, int(round(tau / step)))
        ax.plot(s["w_tot"][:, 0], s["w_tot"][:, 1], marker=".", markersize=5, markevery=every, zorder=2,
                **S.sim_kw(color))
        ax.plot(p["map_w_tot"][:, 0], p["map_w_tot"][:, 1], zorder=3, **S.theory_kw(color))
        ax.plot(p["ode_w_tot"][:, 0], p["ode_w_tot"][:, 1], color=color, linestyle=":", linewidth=1.2, zorder=3)
        shown = (0, 1, 2, 3) if f == "late" else (0, 3)
        for k in shown:
            ax.scatter(p["m_w"][k, 0], p["m_w"][k, 1], s=45, color="black", linewidths=1.3, zorder=5,
                       **_MARKERS[k])
            # M_B below its marker: it can coincide with M_0 (Σyx_B = 0 at ρ = −1/r)
            ax.annotate(_POINTS[k], p["m_w"][k], xytext=(5, -11 if k in (1, 2) else 4), textcoords="offset points",
                        zorder=6)
        ax.set_xlim(lo - 0.5 * spacing, hi + 0.5 * spacing)
        ax.set_ylim(lo - 0.5 * spacing, hi + 0.5 * spacing)
        ax.set_aspect("equal")
        ax.set_xlabel(S.W_A)
        ax.set_ylabel(S.W_B)
        ax.set_title(names[f], color=color)
    fig.legend(handles=_legend_handles(tau), loc="outside lower center", ncols=3)
    S.title(fig, f"Phase portraits, toy data r = {cfg.ratio:g}, ρ = {cfg.rho:g}")
    return fig


# ---------------------------------------------------------------------- outputs
def outputs(cfg, result, prediction):
    """Arrays (``late_*``, ``early_*``, ``grid_*``) and the record of both runs."""
    arrays, record = {}, {}
    for f in FUSIONS:
        out = _two_layer.outputs(result[f], prediction[f])
        arrays.update({f"{f}_{k}": v for k, v in out["arrays"].items()})
        record[f] = {k: v for k, v in out["record"].items() if k != "convention"}
    arrays.update({f"grid_{k}": v for k, v in prediction["grid"].items()})
    m_a = prediction["late"]["m_w"][1]
    for f in FUSIONS:
        record[f]["closest_approach_m_a"] = closest_approach(result[f]["w_tot"], m_a)
    record["convention"] = _two_layer.CONVENTION
    return {"arrays": arrays, "record": record}


def summary(cfg, result, prediction):
    """Printed lines: times and how close each simulated path comes to M_A."""
    sim, pred = result, prediction
    scale = cfg.scale if cfg.scale is not None else default_scale(cfg.init)
    lines = [f"phase portraits, two-layer linear: r = {cfg.ratio:g}, rho = {cfg.rho:g}, n = {cfg.n}, "
             f"width {cfg.width}, init {cfg.init} {scale:g}, lr {cfg.lr:g}, {cfg.epochs} epochs"]
    m_a, m_star = pred["late"]["m_w"][1], pred["late"]["m_w"][3]
    f_ = _two_layer._f
    for f in FUSIONS:
        s, p = sim[f], pred[f]
        if not s["usable"]:
            lines.append(f"  {f:<5}: run {s['message']}")
            continue
        lines.append(f"  {f:<5}: t_A {f_(s['t_a'])} (exact map {f_(p['map_t_a'])}, flow {f_(p['ode_t_a'])}), "
                     f"t_B {f_(s['t_b'])} (map {f_(p['map_t_b'])}, flow {f_(p['ode_t_b'])}), t_B/t_A "
                     f"{f_(s['ratio'], '{:.3f}')} (flow {f_(p['ode_ratio'], '{:.3f}')}); closest approach to M_A "
                     f"{closest_approach(s['w_tot'], m_a):.3f} (flow {closest_approach(p['ode_w_tot'], m_a):.3f}); "
                     f"final distance to M_* {np.linalg.norm(s['w_final'] - m_star):.1e}; exact map vs "
                     f"simulation {_two_layer.map_error(s, p):.1e}")
    lines.append(f"  {_two_layer.CONVENTION}")
    return "\n".join(lines)



if __name__ == "__main__":
    sys.exit(main())
