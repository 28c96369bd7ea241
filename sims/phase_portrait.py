"""Figure 3: phase portraits of two-layer late and early fusion in the (W_A^tot, W_B^tot) plane.

The vector field is the balanced rank-one gradient flow of THEORY.md §6.2-6.3 evaluated on a
grid, τ dW_X/dt = ‖W_X‖ g_X + (g_X·Ŵ_X) Ŵ_X per modality for late fusion (scalar inputs:
2|W_X| g_X; toy r = 2, ρ = 0: 2((4 − 4x)x, (1 − y)y)) and τ dW/dt = ‖W‖ g + (g·Ŵ) Ŵ on the
whole W for early fusion, with g = Σyx − W Σ from the data's empirical statistics (so any
--rho / --ratio works). Fixed points from :mod:`theory.fixed_points`: M_0 (open circle),
M_A and M_B (crosses; late fusion only), M_* (filled). The theory path (black dashes) is the
ODE (:func:`theory.dynamics.flow`) from the simulated network's own effective seed; the
simulated trajectory (colour, a dot every τ epochs) is an actual two-layer network (toy data,
width 100, init 1e-9, lr 0.04, 1000 epochs). Expected: the late path goes M_0 → M_A and turns
there towards M_*; the early path curves straight from M_0 to M_*.

Run ``python -m sims.phase_portrait``.
"""
from __future__ import annotations

import sys

import numpy as np

from . import _two_layer
from ._common import COLORS, THEORY_STYLE, Timer, fail, figure, save, announce

NAME = "phase_portrait"
FUSIONS = ("late", "early")


def build_parser():
    """The command-line options (``python -m sims.phase_portrait --help``)."""
    p = _two_layer.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=13, help="arrows per axis of the vector field")
    return p


def _check(args):
    _two_layer.check_a_first(args)
    if args.grid < 2:
        raise ValueError(f"--grid {args.grid}: must be >= 2.")


def run(args):
    """Train a late- and an early-fusion network on the same data.

    Returns
    -------
    dict of str -> dict
        ``'late'`` and ``'early'``: :func:`sims._two_layer.simulate` of each (no unit snapshots).
    """
    return {f: _two_layer.simulate(args, f, snapshots=False) for f in FUSIONS}


def field(sigma, syx, w_a, w_b, fusion):
    """τ dW/dt of the balanced rank-one two-layer gradient flow at W = (w_a, w_b).

    Each group of weights G (one per modality for late fusion, all of W for early fusion)
    moves as ‖W_G‖ g_G + (g_G·W_G) W_G/‖W_G‖ (THEORY.md §6.2-6.3), g = Σyx − W Σ.

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


def predict(args):
    """Field on a grid, fixed points and ODE paths of both fusions.

    Returns
    -------
    dict of str -> dict
        ``'late'``, ``'early'``: :func:`sims._two_layer.predict` plus ``field`` (grid, grid, 2);
        ``'grid'``: dict with ``w_a``, ``w_b`` (grid, grid) and ``lims`` (2,).
    """
    pred = {f: _two_layer.predict(args, f) for f in FUSIONS}
    paths = np.concatenate([pred[f]["ode_w_tot"] for f in FUSIONS])
    m_w = pred["late"]["m_w"]
    lo = min(0.0, float(m_w.min()), float(paths.min()))
    hi = max(1.2 * float(m_w.max()), 1.05 * float(paths.max()))
    if lo < 0:
        lo -= 0.1 * (hi - lo)
    axis = np.linspace(lo, hi, args.grid)
    w_a, w_b = np.meshgrid(axis, axis)
    for f in FUSIONS:
        pred[f]["field"] = field(pred[f]["sigma"], pred[f]["syx"], w_a, w_b, f)
    pred["grid"] = dict(w_a=w_a, w_b=w_b, lims=np.array([lo, hi]))
    return pred


def closest_approach(w_tot, point):
    """Smallest distance of a trajectory (n, 2) to a point (2,)."""
    return float(np.min(np.linalg.norm(w_tot - point, axis=1)))


def plot(sim, pred, args):
    """Two panels, late and early fusion: field, fixed points, ODE path and simulated path."""
    fig, axes = figure(1, 2, width=5.0, height=5.0)
    grid = pred["grid"]
    lo, hi = grid["lims"]
    spacing = (hi - lo) / (args.grid - 1)
    biggest = max(float(np.max(np.linalg.norm(pred[f]["field"], axis=-1))) for f in FUSIONS)
    scale = biggest / (1.1 * spacing) if biggest > 0 else 1.0     # one arrow scale for both panels
    tau = 1.0 / args.lr
    names = {"late": "Late fusion (L_f = 2)", "early": "Early fusion (L_f = 1)"}
    for ax, f in zip(axes[0], FUSIONS):
        p, s = pred[f], sim[f]
        ax.quiver(grid["w_a"], grid["w_b"], p["field"][..., 0], p["field"][..., 1], color="0.6",
                  angles="xy", scale_units="xy", scale=scale, width=0.004)
        ax.plot(p["ode_w_tot"][:, 0], p["ode_w_tot"][:, 1], **THEORY_STYLE, zorder=3,
                label="theory: rank-one ODE from this run's seed")
        every = max(1, int(round(tau / max(1, s["epochs"][1] - s["epochs"][0]))))
        ax.plot(s["w_tot"][:, 0], s["w_tot"][:, 1], color=COLORS[f], linewidth=2.2, alpha=0.8,
                marker=".", markersize=4, markevery=every, zorder=2,
                label=f"simulation (width {args.width}), a dot every τ = {tau:g} epochs")
        m_w = p["m_w"]
        shown = (0, 1, 2, 3) if f == "late" else (0, 3)
        styles = {0: dict(marker="o", facecolor="none"), 1: dict(marker="x"), 2: dict(marker="x"),
                  3: dict(marker="o")}
        for k in shown:
            ax.scatter(m_w[k, 0], m_w[k, 1], s=70, color="black", linewidths=1.6, zorder=5, **styles[k])
            # M_B below its marker: it can coincide with M_0 (Σyx_B = 0 at ρ = −1/r)
            ax.annotate(("$M_0$", "$M_A$", "$M_B$", "$M_*$")[k], m_w[k], xytext=(6, -14 if k == 2 else 6),
                        textcoords="offset points", fontsize=10, zorder=6)
        ax.set_xlim(lo - 0.5 * spacing, hi + 0.5 * spacing)
        ax.set_ylim(lo - 0.5 * spacing, hi + 0.5 * spacing)
        ax.set_aspect("equal")
        ax.set_xlabel("$W_A^{tot}$")
        ax.set_ylabel("$W_B^{tot}$")
        ax.set_title(f"{names[f]}: arrows τ dW/dt (rank-one ODE)", fontsize=9)
        ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    fig.suptitle(f"Phase portraits, toy data r = {args.ratio:g}, ρ = {args.rho:g} (empirical statistics, "
                 f"n = {args.n}); init {args.init} {args.scale:g}, lr {args.lr:g}", fontsize=9)
    return fig


def _arrays(sim, pred):
    out = {}
    for f in FUSIONS:
        for k, v in _two_layer.arrays(sim[f], pred[f]).items():
            out[f"{f}_{k}"] = v
    for k, v in pred["grid"].items():
        out[f"grid_{k}"] = v
    return out


def summary(sim, pred, args, seconds):
    """Printed lines: times and how close each simulated path comes to M_A."""
    lines = [f"phase portraits, two-layer linear: r = {args.ratio:g}, rho = {args.rho:g}, n = {args.n}, "
             f"width {args.width}, init {args.init} {args.scale:g}, lr {args.lr:g}, {args.epochs} epochs"]
    m_a, m_star = pred["late"]["m_w"][1], pred["late"]["m_w"][3]
    for f in FUSIONS:
        s, p = sim[f], pred[f]
        lines.append(f"  {f:<5}: t_A {s['t_a']:.1f} (ODE {p['ode_t_a']:.1f}), t_B {s['t_b']:.1f} "
                     f"(ODE {p['ode_t_b']:.1f}), t_B/t_A {s['ratio']:.3f} (ODE {p['ode_ratio']:.3f}); "
                     f"closest approach to M_A {closest_approach(s['w_tot'], m_a):.3f} "
                     f"(ODE {closest_approach(p['ode_w_tot'], m_a):.3f}); final distance to M_* "
                     f"{np.linalg.norm(s['w_final'] - m_star):.1e}; exact map vs simulation "
                     f"{_two_layer.map_error(s, p):.1e}")
    lines.append(f"  wall time {seconds:.2f} s")
    return "\n".join(lines)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    args = _two_layer.parse(build_parser(), argv, _check)
    with Timer() as timer:
        sim = run(args)
        for f in FUSIONS:
            if sim[f]["diverged"]:
                return fail(f"{f} fusion run {sim[f]['message']}")
        pred = predict(args)
        fig = plot(sim, pred, args)
        written = save(args.out, NAME, fig=fig, formats=args.formats, arrays=_arrays(sim, pred), config=args)
    announce(summary(sim, pred, args, timer.seconds), written, fig, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
