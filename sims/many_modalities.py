"""Figure 17 (gallery): three and four modalities, learned one after another, a staircase of plateaus.

theory.md §6.1, §6.3 (the K-modality schedule), §6.6, §6.10, §10 item 17. K = 3 and K = 4
scalar modalities with distinct strengths and correlations: x ~ N(0, Σ) with standard
deviations σ_k and a few correlations, y = Σ_k x_k / σ_k (every modality removes the same loss
on its own when uncorrelated, but grows at the rate σ_k: the strongest is learned first),
n = 8192 samples. Two networks per K, trained by full-batch gradient descent (lr 0.04):

- **late fusion**, two layers, width 100, per-entry init 1e-9 (the paper's): the loss drops in
  K steps, one per modality, with a plateau at the fixed point of the modalities learned so far;
- **intermediate fusion**, depth 4 fused at layer 3, started balanced at 0.1 (``init='balanced'``):
  the same staircase, compressed (theory.md §6.7).

Each panel: the training loss over L(0) (black) and every modality's progress W_k / W_k(M_S)
towards its value at the fixed point where it is learned (in its colour; it is learned when it
crosses ½, theory.md §7.1). Simulation is a wide band; the exact map from the run's own initial
weights (:func:`theory.predict`: the Gram map for two layers, the chain map for the balanced deep
net; theory.md §6.10) is dashed on top of it. The hollow markers are the independent
predictions: the leading-order closed form of the K-modality schedule
(:func:`theory.two_layer.late_schedule`, effective init u0 = scale·√(width/2)) for late fusion,
the balanced scalar chain's gradient-flow ODE (:func:`theory.dynamics.chain_flow`) for
intermediate fusion (there is no closed form for K > 2).

Run ``python -m sims.many_modalities``; ``--quick`` for n = 2048, width 20.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from linfusion import FusionNet, train
from linfusion.architecture import default_scale
from linfusion.data import from_arrays
from theory import prediction as _prediction
from theory.dynamics import chain_flow
from theory.fixed_points import late_fixed_point
from theory.two_layer import late_schedule

from . import _schedule as SCH
from . import _style as S
from ._cli import entry_point
from ._config import integer, option, real
from ._options import Seeded, Width

NAME = "many_modalities"
KIND = "run"
main = entry_point(NAME)

_DATA = "data"
_TRAIN = "network and training"

#: the two data sets: standard deviations σ_k and the nonzero correlations (i, j, ρ_ij)
SETTINGS = {
    3: {"std": (2.0, 1.0, 0.5), "corr": ((0, 1, 0.3), (1, 2, -0.2))},
    4: {"std": (2.0, 1.3, 0.85, 0.55), "corr": ((0, 1, 0.3), (1, 2, 0.1), (2, 3, 0.25))},
}
KINDS = ("late", "intermediate")


@dataclass(frozen=True)
class Config(Seeded, Width):
    """K = 3 and 4 modalities, late and intermediate fusion (theory.md §6.3, §6.6)."""

    n: int = option(8192, "number of samples of each data set", check=integer(lo=16), group=_DATA)
    lr: float = option(0.04, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True), group=_TRAIN)
    scale: float | None = option(None, "per-entry init scale of the two-layer late-fusion nets (> 0)",
                                 check=real(0.0, lo_open=True), group=_TRAIN, none_means="the library's: 1e-9")
    depth: int = option(4, "depth L of the intermediate-fusion nets", check=integer(lo=3, hi=8), group=_TRAIN)
    fuse_depth: int = option(3, "fusion layer L_f of the intermediate-fusion nets, 1 < L_f < L",
                             check=integer(lo=2), group=_TRAIN)
    deep_scale: float | None = option(None, "balanced init scale of the intermediate-fusion nets, in (0, 1)",
                                      check=real(0.0, 1.0, lo_open=True, hi_open=True), group=_TRAIN,
                                      none_means="the library's: 0.1")

    QUICK = {"n": 2048, "width": 20}

    def validate(self):
        if not self.fuse_depth < self.depth:
            raise ValueError(f"fuse_depth == {self.fuse_depth}, must be < depth ({self.depth}) for intermediate "
                             "fusion.")
        u0 = (self.scale if self.scale is not None else default_scale("entry")) * math.sqrt(self.width / 2)
        if not u0 < 1:
            raise ValueError(f"scale == {self.scale!r} with width {self.width} gives u0 = scale·√(width/2) = "
                             f"{u0:.3g}, must be < 1 (a small init).")


# --------------------------------------------------------------------------- data and theory
def population(k):
    """Σ (K, K) and the teacher w (K,) of the K-modality data."""
    s = SETTINGS[k]
    std = np.array(s["std"])
    corr = np.eye(k)
    for i, j, rho in s["corr"]:
        corr[i, j] = corr[j, i] = rho
    return corr * np.outer(std, std), 1.0 / std


def _data(k, n, seed):
    sigma, w = population(k)
    x = np.random.default_rng(seed).standard_normal((n, k)) @ np.linalg.cholesky(sigma).T
    return from_arrays([x[:, j] for j in range(k)], x @ w, sigma=sigma, w_star=w)


def _targets(mo, k):
    """Each modality's value at the fixed point where the late-fusion schedule learns it, and the order."""
    order = late_schedule(mo.sxx, mo.syx, mo.syy, (1,) * k, 0.5).order
    target = np.zeros(k)
    for j, m in enumerate(order):
        target[m] = late_fixed_point(mo.sxx, mo.syx, mo.syy, (1,) * k, order[:j + 1]).block(m)[0, 0]
    return target, order


def _panel(cfg, k, kind, data, seed):
    """Train one network and predict it; a dict of arrays and times."""
    mo = data.moments()
    target, order = _targets(mo, k)
    l0 = 0.5 * mo.syy
    scale = cfg.scale if cfg.scale is not None else default_scale("entry")
    deep_scale = cfg.deep_scale if cfg.deep_scale is not None else default_scale("balanced")
    if kind == "late":
        u0 = scale * math.sqrt(cfg.width / 2)
        closed = np.array(late_schedule(mo.sxx, mo.syx, mo.syy, (1,) * k, u0, lr=cfg.lr).t)
        closed[~np.isfinite(closed)] = np.nan
        net = FusionNet.late((1,) * k, width=cfg.width)
        init = dict(init="entry", scale=scale)
    else:
        grid = np.array([0.0, 200_000.0])          # crossings by event location; no dense output
        flow = chain_flow(mo.sxx, mo.syx, mo.syy, cfg.depth, cfg.fuse_depth, grid, cfg.lr, u0=deep_scale,
                          crossing="projection")
        closed = np.array(flow.t_cross)
        net = FusionNet((1,) * k, 1, cfg.width, cfg.depth, cfg.fuse_depth)
        init = dict(init="balanced", scale=deep_scale)
    epochs = int(math.ceil(1.3 * np.nanmax(closed))) + 100 if np.any(np.isfinite(closed)) else 20_000
    run = train(net, data, lr=cfg.lr, epochs=epochs, rng=seed, **init)
    w = run.w_tot_all[:, 0, :]
    out = dict(k=k, kind=kind, status=run.status, message=run.message, epochs=np.asarray(run.epochs, dtype=float),
               loss=run.loss / l0, progress=w / target, order=order, closed=closed,
               t_sim=np.full(k, np.nan), t_map=np.full(k, np.nan), map_loss=None, map_progress=None)
    if run.usable:
        out["t_sim"] = SCH.crossings(out["epochs"], out["progress"])
        pred = _prediction.predict(run, data)
        pw = pred.w_tot_all[:, 0, :]
        out.update(map_loss=pred.loss / l0, map_progress=pw / target, t_map=SCH.crossings(pred.epochs, pw / target),
                   map_method=pred.method)
    out["levels"] = [late_fixed_point(mo.sxx, mo.syx, mo.syy, (1,) * k, order[:j + 1]).loss / l0
                     for j in range(k - 1)]
    return out


def run(cfg, execution=None):
    """Train the four networks and predict each from its own weights; a dict of panels keyed (K, kind).

    Randomness: ``SeedSequence(seed)`` has one child per K, whose three children draw the data and
    the two networks' initial weights.
    """
    panels = {}
    for k, ss in zip(sorted(SETTINGS), np.random.SeedSequence(cfg.seed).spawn(len(SETTINGS))):
        data_ss, *init_ss = ss.spawn(3)
        data = _data(k, cfg.n, data_ss)
        for kind, init in zip(KINDS, init_ss):
            panels[(k, kind)] = _panel(cfg, k, kind, data, init)
    return panels


def predict(cfg, result):
    """The predictions are made in :func:`run`, next to each network (they start from its own weights)."""
    return result


def _dev(a, b):
    return "n/a" if not (np.isfinite(a) and np.isfinite(b)) else f"{(a - b) / b:+.1%}"


def _label(k, kind, cfg):
    return ("late fusion, L = 2" if kind == "late" else
            f"intermediate fusion, L = {cfg.depth}, L_f = {cfg.fuse_depth}")


def _title(k, kind, cfg):
    return (f"K = {k}, late fusion (L = 2)" if kind == "late" else
            f"K = {k}, $L_f$ = {cfg.fuse_depth} of L = {cfg.depth}")


def _sorted(panels):
    return sorted(panels.items(), key=lambda item: (item[0][0], KINDS.index(item[0][1])))


def summary(cfg, panels, _pred):
    """Simulated against predicted times per panel."""
    scale = cfg.scale if cfg.scale is not None else default_scale("entry")
    deep = cfg.deep_scale if cfg.deep_scale is not None else default_scale("balanced")
    lines = [f"K = 3 and 4 scalar modalities, n = {cfg.n}, width {cfg.width}, lr {cfg.lr:g}; late fusion from the "
             f"per-entry init {scale:g}, intermediate fusion from the balanced start {deep:g}",
             "times: first upward crossing of ½ W_k(M_S) (interpolated, theory.md §7.1), in epochs"]
    bad = 0
    for (k, kind), p in _sorted(panels):
        lines.append(f"K = {k}, {_label(k, kind, cfg)} ({p['status']}):")
        if p["status"] not in ("completed", "converged"):
            lines.append(f"  {p['message']}")
            bad += 1
            continue
        other = "closed form" if kind == "late" else "flow ODE"
        lines.append(f"  {'modality':<9}{'simulation':>11}{'exact map':>11}{other:>12}{'deviation':>11}")
        for m in p["order"]:
            lines.append(f"  {'x' + str(m + 1):<9}{p['t_sim'][m]:>11.1f}{p['t_map'][m]:>11.1f}{p['closed'][m]:>12.1f}"
                         f"{_dev(p['t_sim'][m], p['closed'][m]):>11}")
        sim_order = tuple(int(i) for i in np.argsort(p["t_sim"]))
        lines.append(f"  order: simulation {'→'.join('x' + str(m + 1) for m in sim_order)}, predicted "
                     f"{'→'.join('x' + str(m + 1) for m in p['order'])}")
    if bad:
        lines.append(f"{bad} of {len(panels)} runs not usable (not drawn)")
    return "\n".join(lines)


def outputs(cfg, panels, _pred):
    arrays, table, record = {}, [], {}
    for (k, kind), p in _sorted(panels):
        tag = f"k{k}_{kind}"
        arrays[f"{tag}_epochs"] = p["epochs"]
        arrays[f"{tag}_loss_rel"] = p["loss"]
        arrays[f"{tag}_progress"] = p["progress"]
        if p["map_loss"] is not None:
            arrays[f"{tag}_map_loss_rel"] = p["map_loss"]
            arrays[f"{tag}_map_progress"] = p["map_progress"]
        for m in range(k):
            table.append({"modalities": k, "fusion": kind, "modality": m + 1, "status": p["status"],
                          "t_sim_epochs": float(p["t_sim"][m]), "t_map_epochs": float(p["t_map"][m]),
                          "t_predicted_epochs": float(p["closed"][m]),
                          "predicted_by": "closed form" if kind == "late" else "chain flow ODE"})
        record[tag] = {"status": p["status"], "order": [int(m) + 1 for m in p["order"]],
                       "t_sim_epochs": p["t_sim"], "t_map_epochs": p["t_map"], "t_predicted_epochs": p["closed"]}
    record["settings"] = {str(k): {"std": list(v["std"]), "corr": [list(c) for c in v["corr"]]}
                          for k, v in SETTINGS.items()}
    return {"arrays": arrays, "table": table, "record": record}


# --------------------------------------------------------------------------- figure
def plot(cfg, panels, _pred):
    """2 × 2 panels: K = 3, 4 (rows) × late, intermediate fusion (columns)."""
    usable = {key: p for key, p in panels.items() if p["status"] in ("completed", "converged")}
    if not usable:
        return None
    fig, axes = S.figure(2, 2, width=3.3, height=2.5)
    for row, k in enumerate(sorted(SETTINGS)):
        names = [f"x{m + 1}" for m in range(k)]
        colors = SCH.modality_colors(k)
        for col, kind in enumerate(KINDS):
            ax = axes[row, col]
            p = panels[(k, kind)]
            ax.set_title(_title(k, kind, cfg), fontsize="medium")
            if (k, kind) not in usable:
                ax.set_axis_off()
                continue
            SCH.draw_loss(ax, sim=(p["epochs"], p["loss"]), theory=(p["epochs"], p["map_loss"]),
                          levels=p["levels"])
            SCH.draw_progress(ax, names, colors, sim=(p["epochs"], p["progress"]),
                              theory=(p["epochs"], p["map_progress"]))
            SCH.mark_times(ax, p["closed"], colors, marker="v" if kind == "late" else "D")
            ax.set_ylim(-0.05, 1.3)
            ax.set_xlim(0, p["epochs"][-1])
            ax.set_ylabel(r"loss / $L(0)$,  $W_k / W_k(M_S)$" if col == 0 else "")
            if row == 0:
                ax.set_xlabel("")
    from matplotlib.lines import Line2D

    names = [f"x{m + 1}" for m in range(max(SETTINGS))]
    handles = SCH.style_handles(names, SCH.modality_colors(len(names)), theory_label="exact map, own weights: dashed",
                                marker_label="closed form (late)", marker="v")
    handles.insert(len(names), Line2D([], [], label="training loss", **S.sim_kw(S.COLORS["loss"])))
    handles.append(Line2D([], [], linestyle="none", marker="D", markerfacecolor="none", markeredgecolor="black",
                          label="flow ODE (intermediate)"))
    bad = len(panels) - len(usable)
    if bad:
        handles.append(Line2D([], [], linestyle="none", label=f"{bad} of {len(panels)} runs not usable"))
    fig.legend(handles=handles, loc="outside right center")
    S.title(fig, "Many modalities: a staircase of plateaus, one per modality")
    return fig



if __name__ == "__main__":
    sys.exit(main())
