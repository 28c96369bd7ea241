"""Figure 8: superficial modality preference, the first-learned modality is not the more useful one.

THEORY.md §6.5 (toy data, ρ = 0, general W* = (w_A*, w_B*)): late fusion learns A first iff
w_A*/w_B* > 1/r² (prioritisation) and A removes more loss than B iff w_A*/w_B* > 1/r
(contribution). Between the two curves the first-learned modality contributes less.

(a) The (σ_A/σ_B, w_A*/w_B*) plane with 1/r² (solid), 1/r (dashed), the region between them
shaded, and the chosen setting marked. (b) A two-layer linear late-fusion network trained on
toy data inside the region (r = 2, W* = (0.375, 1), n = 8192, width 100, init 1e-9, lr 0.04):
loss/L(0) over epochs (colour) with the rank-one ODE from the run's own seed (black dashes)
and dotted levels L(M_A)/L(M_0) = 0.64 and L(M_B)/L(M_0) = 0.36 (:mod:`theory.fixed_points`).
Expected: A is learned first, and its drop (0.36 of L(0)) is the smaller one.

Run ``python -m sims.superficial``.
"""
from __future__ import annotations

import sys
import textwrap

import numpy as np

from theory.two_layer import contribution_threshold, preference_region, prioritisation_threshold

from . import _two_layer
from ._common import COLORS, THEORY_STYLE, Timer, fail, figure, save, announce

NAME = "superficial"


def build_parser():
    """The command-line options (``python -m sims.superficial --help``)."""
    p = _two_layer.parser(NAME, __doc__.splitlines()[0], epochs=800)
    p.add_argument("--w-ratio", type=float, default=0.375,
                   help="w_A*/w_B* of the teacher (w_B* = 1); inside (1/r², 1/r) the preference is superficial")
    return p


def _check(args):
    if args.rho != 0.0:
        raise ValueError(f"--rho {args.rho}: the preference regions of THEORY.md §6.5 are derived at "
                         "rho = 0, must be 0.")
    if not args.w_ratio >= 0.0:
        raise ValueError(f"--w-ratio {args.w_ratio}: must be >= 0.")


def _w_star(args):
    return (args.w_ratio, 1.0)


def run(args):
    """Train the late-fusion network on toy data with W* = (w_ratio, 1); see :func:`sims._two_layer.simulate`.

    Adds ``first`` (0 if A crossed its threshold first, 1 if B did, -1 if neither) and the
    measured loss drops ``drop_first``, ``drop_second`` (fractions of L(0): from the start to
    the plateau and from the plateau to the end).
    """
    sim = _two_layer.simulate(args, "late", _w_star(args), snapshots=False)
    if sim["diverged"]:
        return sim
    t = np.array([sim["t_a"], sim["t_b"]])
    t = np.where(np.isfinite(t), t, np.inf)
    sim["first"] = int(np.argmin(t)) if np.isfinite(t.min()) else -1
    # the plateau record (mid-way between the two crossings) splits the two drops
    sim["drop_first"] = 1.0 - sim["plateau_loss_rel"]
    sim["drop_second"] = sim["plateau_loss_rel"] - sim["loss_rel"][-1]
    return sim


def predict(args):
    """Preference thresholds, fixed-point loss levels and the rank-one ODE of the run.

    Adds to :func:`sims._two_layer.predict`: ``prioritisation`` = 1/r², ``contribution`` = 1/r,
    ``first`` (0: A, 1: B, by the larger |Σyx|), predicted drops ``drop_first``,
    ``drop_second`` on the empirical statistics, and the region's description ``region``.
    """
    pred = _two_layer.predict(args, "late", _w_star(args))
    pred["prioritisation"] = prioritisation_threshold(args.ratio)
    pred["contribution"] = contribution_threshold(args.ratio)
    pred["region"] = preference_region(args.ratio, args.w_ratio)
    first = int(np.argmax(np.abs(pred["syx"])))
    loss = pred["m_loss_rel"]     # M_0, M_A, M_B, M_*
    pred["first"] = first
    pred["drop_first"] = 1.0 - loss[1 + first]
    pred["drop_second"] = loss[1 + first] - loss[3]
    return pred


def plot(sim, pred, args):
    """(a) the preference regions; (b) the loss curve of the run with the fixed-point levels."""
    fig, axes = figure(1, 2, width=5.0, height=4.0)
    ax = axes[0, 0]
    r = np.linspace(0.05, 3.0, 400)
    prio, contrib = prioritisation_threshold(r), contribution_threshold(r)
    ax.fill_between(r, prio, contrib, color="tab:olive", alpha=0.25, linewidth=0,
                    label="first-learned modality contributes less")
    ax.plot(r, prio, color="black", linestyle="-", label="$1/r^2$: prioritisation (A first above)")
    ax.plot(r, contrib, color="black", linestyle="--", label="$1/r$: contribution (A helps more above)")
    ax.scatter([args.ratio], [args.w_ratio], marker="*", s=160, color="tab:red", zorder=5,
               label=f"panel (b): r = {args.ratio:g}, $w_A^*/w_B^*$ = {args.w_ratio:g}")
    ax.text(1.9, 1.2, "A first, A helps more", ha="center", fontsize=8)
    ax.text(0.45, 0.5, "B first,\nB helps more", ha="center", fontsize=8)
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 3)
    ax.set_xlabel(r"$r = \sigma_A/\sigma_B$")
    ax.set_ylabel(r"$w_A^*/w_B^*$")
    ax.set_title(f"(a) preference regions (ρ = 0, THEORY §6.5)\nsetting: {pred['region']}", fontsize=8)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9)

    ax = axes[0, 1]
    ep = sim["epochs"]
    ax.plot(ep, sim["loss_rel"], color=COLORS["late"], linewidth=3.0, alpha=0.6, label="simulation: loss / L(0)")
    ax.plot(pred["epochs"], pred["ode_loss_rel"], **THEORY_STYLE, label="theory: ODE (run's seed)")
    x_end = max(ep[-1], pred["epochs"][-1])
    for k, name in ((1, "A"), (2, "B")):
        level = pred["m_loss_rel"][k]
        ax.axhline(level, color="0.3", linestyle=":", linewidth=1.0)
        ax.text(0.01 * x_end, level, f"$L(M_{name})/L(M_0)$ = {level:.3f} (population "
                f"{pred['pop_m_loss_rel'][k]:.2f})", ha="left", va="bottom", fontsize=7)
    for key, col, name in (("t_a", COLORS["a"], "A"), ("t_b", COLORS["b"], "B")):
        if np.isfinite(sim[key]):
            ax.axvline(sim[key], color=col, linewidth=1.0, label=f"measured $t_{name}$")
    if np.isfinite(sim["drop_first"]):
        x = sim["plateau_epoch"]
        for lo, hi, text in ((sim["loss_rel"][0], 1.0 - sim["drop_first"], "1st drop"),
                             (1.0 - sim["drop_first"], sim["loss_rel"][-1], "2nd drop")):
            ax.annotate("", xy=(x, hi), xytext=(x, lo), arrowprops=dict(arrowstyle="<->", color="0.2"))
            ax.text(x, 0.5 * (lo + hi), f" {text}: {lo - hi:.2f}", fontsize=8, va="center")
    ax.set_xlim(0, x_end)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel(f"epoch  (τ = {1.0 / args.lr:g} epochs)")
    ax.set_ylabel("loss / L(0)")
    ax.set_title(f"(b) late fusion, r = {args.ratio:g}, W* = ({args.w_ratio:g}, 1), n = {args.n}, "
                 f"width {args.width}, init {args.init} {args.scale:g}, lr {args.lr:g}\n"
                 + textwrap.fill(_two_layer.CONVENTION, 90), fontsize=7)
    ax.legend(loc="lower left", fontsize=7, framealpha=0.9)
    return fig


def summary(sim, pred, args, seconds):
    """Printed lines: the region, which modality came first, the two drops, the times."""
    name = {0: "A", 1: "B", -1: "neither"}
    lines = [f"superficial preference: r = {args.ratio:g}, w_A*/w_B* = {args.w_ratio:g} "
             f"(1/r² = {pred['prioritisation']:.4g}, 1/r = {pred['contribution']:.4g}): {pred['region']}",
             f"  run {sim['message']}",
             f"  learned first: measured {name[sim['first']]}, predicted {name[pred['first']]}",
             f"  first drop (fraction of L(0)): measured {sim['drop_first']:.4f}, predicted "
             f"{pred['drop_first']:.4f} (population {1.0 - pred['pop_m_loss_rel'][1 + pred['first']]:.4f})",
             f"  second drop: measured {sim['drop_second']:.4f}, predicted {pred['drop_second']:.4f}",
             f"  t_A {sim['t_a']:.1f} (ODE {pred['ode_t_a']:.1f}, exact map {pred['map_t_a']:.1f}), "
             f"t_B {sim['t_b']:.1f} (ODE {pred['ode_t_b']:.1f}, exact map {pred['map_t_b']:.1f}); "
             f"t_B/t_A {sim['ratio']:.3f} (ODE {pred['ode_ratio']:.3f}, population "
             f"{pred.get('pop_ratio', np.nan):.3f})",
             f"  exact Gram map against the simulation: max |ΔW_tot| = {_two_layer.map_error(sim, pred):.2e}",
             f"  wall time {seconds:.2f} s"]
    return "\n".join(lines)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    args = _two_layer.parse(build_parser(), argv, _check)
    with Timer() as timer:
        sim = run(args)
        if sim["diverged"]:
            return fail(f"late fusion run {sim['message']}")
        pred = predict(args)
        fig = plot(sim, pred, args)
        written = save(args.out, NAME, fig=fig, formats=args.formats, arrays=_two_layer.arrays(sim, pred),
                       config=args)
    announce(summary(sim, pred, args, timer.seconds), written, fig, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
