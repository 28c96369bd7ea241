"""Figure 8: superficial modality preference, the first-learned modality is not the more useful one.

theory.md §6.5 (toy data, ρ = 0, general W* = (w_A*, w_B*)): late fusion learns A first iff
w_A*/w_B* > 1/r² (prioritisation) and A removes more loss than B iff w_A*/w_B* > 1/r
(contribution). Between the two curves the first-learned modality contributes less.

(a) The (σ_A/σ_B, w_A*/w_B*) plane with 1/r² (solid), 1/r (dashed), the region between them
shaded, and the chosen setting marked. (b) A two-layer linear late-fusion network trained on
toy data inside the region (r = 2, W* = (0.375, 1), n = 8192, width 100, init 1e-9, lr 0.04,
800 epochs): loss/L(0) over epochs (wide band), the exact Gram-state map at the run's
learning rate from the run's own weights (dashed: the theory curve), the gradient-flow ODE
from the run's effective seed (dotted, the lr → 0 limit), and the levels
L(M_A)/L(M_0) = 0.64 and L(M_B)/L(M_0) = 0.36 of :mod:`theory.fixed_points` (population
values; the run's empirical ones are drawn). Expected: A is learned first, and its drop
(0.36 of L(0)) is the smaller one.

Run ``python -m sims.superficial``. From Python: ``superficial.run(superficial.Config())``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from theory.two_layer import contribution_threshold, preference_region, prioritisation_threshold

from . import _style as S
from . import _two_layer
from ._cli import entry_point
from ._config import integer, option, real

NAME = "superficial"
KIND = "run"
main = entry_point(NAME)
_FIRST = {0: "A", 1: "B", -1: "neither"}


@dataclass(frozen=True)
class Config(_two_layer.ToyRun):
    """Late fusion on toy data with the teacher W* = (w_ratio, 1), at ρ = 0 (theory.md §6.5)."""

    epochs: int = option(800, "maximum number of epochs", check=integer(lo=1), group="network and training")
    w_ratio: float = option(0.375, "w_A*/w_B* of the teacher (w_B* = 1); inside (1/r², 1/r) the preference is "
                            "superficial", check=real(0.0), group="data")

    def validate(self):
        if self.rho != 0.0:
            raise ValueError(f"rho == {self.rho!r}, must be 0: the preference regions of theory.md §6.5 are "
                             "derived at rho = 0.")


def _w_star(cfg):
    return (cfg.w_ratio, 1.0)


def run(cfg, execution=None):
    """Train the late-fusion network on toy data with W* = (w_ratio, 1); see :func:`sims._two_layer.simulate`.

    Adds ``first`` (0 if A crossed its threshold first, 1 if B did, -1 if neither) and the
    measured loss drops ``drop_first``, ``drop_second`` (fractions of L(0): from the start to
    the plateau and from the plateau to the end; NaN for a run that is not usable).
    """
    sim = _two_layer.simulate(cfg, "late", _w_star(cfg), snapshots=False)
    sim.update(first=-1, drop_first=np.nan, drop_second=np.nan)
    if not sim["usable"]:
        return sim
    t = np.array([sim["t_a"], sim["t_b"]])
    t = np.where(np.isfinite(t), t, np.inf)
    sim["first"] = int(np.argmin(t)) if np.isfinite(t.min()) else -1
    # the plateau record (mid-way between the two crossings) splits the two drops
    sim["drop_first"] = 1.0 - sim["plateau_loss_rel"]
    sim["drop_second"] = sim["plateau_loss_rel"] - sim["loss_rel"][-1]
    return sim


def predict(cfg, result=None):
    """Preference thresholds, fixed-point loss levels, the exact map and the flow of the run.

    Adds to :func:`sims._two_layer.predict`: ``prioritisation`` = 1/r², ``contribution`` = 1/r,
    ``first`` (0: A, 1: B, by the larger |Σyx|), predicted drops ``drop_first``,
    ``drop_second`` on the empirical statistics, and the region's description ``region``.
    """
    pred = _two_layer.predict(cfg, "late", _w_star(cfg))
    pred["prioritisation"] = prioritisation_threshold(cfg.ratio)
    pred["contribution"] = contribution_threshold(cfg.ratio)
    pred["region"] = preference_region(cfg.ratio, cfg.w_ratio)
    first = int(np.argmax(np.abs(pred["syx"])))
    loss = pred["m_loss_rel"]     # M_0, M_A, M_B, M_*
    pred["first"] = first
    pred["drop_first"] = 1.0 - loss[1 + first]
    pred["drop_second"] = loss[1 + first] - loss[3]
    return pred


# ---------------------------------------------------------------------- figure
def _regions(ax, cfg):
    r = np.linspace(0.05, 3.0, 400)
    prio, contrib = prioritisation_threshold(r), contribution_threshold(r)
    ax.fill_between(r, prio, contrib, color=S.OKABE_ITO["yellow"], alpha=0.45, linewidth=0,
                    label="first learned, helps less")
    ax.plot(r, prio, color="black", linestyle="-", linewidth=1.2, label=r"$1/r^2$: A learned first above")
    ax.plot(r, contrib, color="black", linestyle="--", linewidth=1.2, label=r"$1/r$: A helps more above")
    ax.scatter([cfg.ratio], [cfg.w_ratio], marker="*", s=120, color=S.OKABE_ITO["vermillion"], zorder=5,
               label="setting of (b)")
    ax.text(2.2, 2.2, "A first,\nA helps more", ha="center", va="center", fontsize="small")
    ax.text(0.55, 0.4, "B first,\nB helps\nmore", ha="center", va="center", fontsize="small")
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 3)
    ax.set_xlabel(r"$r = \sigma_A/\sigma_B$")
    ax.set_ylabel(r"$w_A^*/w_B^*$")
    ax.set_title(r"(a) preference regions, $\rho = 0$")


def _drops(ax, sim, pred, x_end):
    """The two loss drops as arrows after t_B, where the curve has settled, each with its size.

    A label sits at the height (a quarter, half or three quarters of its drop) farthest from
    the fixed-point levels, so that it never sits on a reference line.
    """
    t_b = sim["t_b"] if np.isfinite(sim["t_b"]) else sim["plateau_epoch"]
    x = t_b + 0.45 * (x_end - t_b)
    levels = np.asarray(pred["m_loss_rel"][1:3])
    plateau = 1.0 - sim["drop_first"]
    for lo, hi, text in ((sim["loss_rel"][0], plateau, "1st"), (plateau, sim["loss_rel"][-1], "2nd")):
        ax.annotate("", xy=(x, hi), xytext=(x, lo),
                    arrowprops=dict(arrowstyle="<->", color="0.2", shrinkA=0, shrinkB=0))
        heights = hi + np.array([0.25, 0.5, 0.75]) * (lo - hi)
        y = heights[int(np.argmax([np.min(np.abs(levels - h)) for h in heights]))]
        ax.annotate(f"{text} drop: {lo - hi:.2f}", (x, y), xytext=(4, 0), textcoords="offset points",
                    va="center", ha="left", fontsize="small")


def _loss_panel(ax, cfg, sim, pred):
    ep = sim["epochs"]
    color = S.COLORS["loss"]
    ax.plot(ep, sim["loss_rel"], label="loss, simulation", **S.sim_kw(color))
    ax.plot(pred["epochs"], pred["map_loss_rel"], label="exact map at lr (theory)", **S.theory_kw(color))
    ax.plot(pred["epochs"], pred["ode_loss_rel"], color=color, linestyle=":", linewidth=1.0,
            label="gradient flow (lr → 0)")
    x_end = float(max(ep[-1], pred["epochs"][-1]))
    for k, name in ((1, "A"), (2, "B")):
        level = pred["m_loss_rel"][k]
        ax.axhline(level, color=S.COLORS["level"], linestyle=(0, (1, 2)), linewidth=0.8)
        # labels outside the axes, at the level's height: nothing inside to collide with
        ax.annotate(f"$L(M_{name})$", (1.0, level), xycoords=("axes fraction", "data"), xytext=(3, 0),
                    textcoords="offset points", ha="left", va="center", fontsize="small", color="0.3")
    for key, name in (("t_a", "A"), ("t_b", "B")):
        if np.isfinite(sim[key]):
            ax.axvline(sim[key], color=S.COLORS[key[-1]], linewidth=1.0, label=f"measured $t_{name}$")
    if np.isfinite(sim["drop_first"]):
        _drops(ax, sim, pred, x_end)
    ax.set_xlim(0, x_end)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"loss / $L(0)$")
    ax.set_title(f"(b) late fusion, $W^*$ = ({cfg.w_ratio:g}, 1)")


def plot(cfg, result, prediction):
    """(a) the preference regions; (b) the loss curve of the run with the fixed-point levels."""
    if not result["usable"]:
        return None
    fig, axes = S.figure(1, 2, width=3.6, height=3.2)
    _regions(axes[0, 0], cfg)
    _loss_panel(axes[0, 1], cfg, result, prediction)
    handles, labels = [], []
    for ax in axes[0]:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    S.title(fig, f"Superficial modality preference, r = {cfg.ratio:g}")
    return fig


# ---------------------------------------------------------------------- outputs
def outputs(cfg, result, prediction):
    """Arrays (``sim_*``, ``pred_*``) and the record: region, first modality, the two drops."""
    out = _two_layer.outputs(result, prediction)
    out["record"].update(region=prediction["region"], first_measured=_FIRST[result["first"]],
                         first_predicted=_FIRST[prediction["first"]],
                         drop_first=result["drop_first"], drop_second=result["drop_second"],
                         drop_first_predicted=prediction["drop_first"],
                         drop_second_predicted=prediction["drop_second"])
    return out


def summary(cfg, result, prediction):
    """Printed lines: the region, which modality came first, the two drops, the times."""
    sim, pred = result, prediction
    f_ = _two_layer._f
    lines = [f"superficial preference: r = {cfg.ratio:g}, w_A*/w_B* = {cfg.w_ratio:g} "
             f"(1/r² = {pred['prioritisation']:.4g}, 1/r = {pred['contribution']:.4g}): {pred['region']}",
             f"  run {sim['message']}"]
    if not sim["usable"]:
        return "\n".join(lines)
    lines += [f"  learned first: measured {_FIRST[sim['first']]}, predicted {_FIRST[pred['first']]}",
              f"  first drop (fraction of L(0)): measured {f_(sim['drop_first'], '{:.4f}')}, predicted "
              f"{pred['drop_first']:.4f} (population {1.0 - pred['pop_m_loss_rel'][1 + pred['first']]:.4f})",
              f"  second drop: measured {f_(sim['drop_second'], '{:.4f}')}, predicted {pred['drop_second']:.4f}",
              f"  levels L(M_A)/L(M_0) = {pred['m_loss_rel'][1]:.4f} (population {pred['pop_m_loss_rel'][1]:.4f}), "
              f"L(M_B)/L(M_0) = {pred['m_loss_rel'][2]:.4f} (population {pred['pop_m_loss_rel'][2]:.4f})",
              f"  t_A {f_(sim['t_a'])} (exact map {f_(pred['map_t_a'])}, flow {f_(pred['ode_t_a'])}), "
              f"t_B {f_(sim['t_b'])} (exact map {f_(pred['map_t_b'])}, flow {f_(pred['ode_t_b'])}); "
              f"t_B/t_A {f_(sim['ratio'], '{:.3f}')} (flow {f_(pred['ode_ratio'], '{:.3f}')}, population "
              f"{f_(pred['pop_ratio'], '{:.3f}')})",
              f"  exact Gram map against the simulation: max |ΔW_tot| = {_two_layer.map_error(sim, pred):.2e}",
              f"  {_two_layer.CONVENTION}"]
    return "\n".join(lines)



if __name__ == "__main__":
    sys.exit(main())
