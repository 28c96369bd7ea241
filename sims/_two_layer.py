"""One two-layer linear fusion network on the toy data: its run, its theory and its figure.

The shared code of :mod:`sims.late_fusion` and :mod:`sims.early_fusion` (figure 2, theory.md
§10), also used by :mod:`sims.phase_portrait` (figure 3) and :mod:`sims.superficial`
(figure 8). One network is trained by full-batch gradient descent on the toy data of
theory.md §3a; the fusion layer (``'late'``: L_f = 2, ``'early'``: L_f = 1) is the only
difference between the two figure-2 experiments.

Theory drawn over the run, all from the run's own empirical statistics and its own initial
weights (theory.md §2, §6.10):

- the exact Gram-state map at the run's learning rate (:func:`theory.dynamics.gram_map`):
  *the* theory curve, which reproduces full-batch gradient descent of this very network;
- the balanced rank-one gradient-flow ODE (:func:`theory.dynamics.flow`) from the run's
  effective seed: the lr → 0 limit, drawn thin and dotted; it runs a few percent early in
  t_A at lr 0.04, a discrete-step effect (theory.md §6.10);
- the leading-order times (:func:`theory.two_layer.late_times`; §6.2's heuristic for early
  fusion) and the fixed points of :mod:`theory.fixed_points`.

Randomness: ``np.random.SeedSequence(seed)`` has two children, the data (0) and the initial
weights (1), so :func:`predict` rebuilds the run's data and initial weights without training.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linfusion import FusionNet, train
from linfusion.analysis import measure
from linfusion.architecture import default_scale
from linfusion.data import toy
from theory.dynamics import effective_seed, flow, gram_map
from theory.fixed_points import late_fixed_points
from theory.two_layer import late_times, time_ratio_toy, toy_stats

from . import _style as S
from ._config import integers, option
from ._options import Descent, Init, Seeded, ToyData, Width

__all__ = ["FUSE_DEPTH", "ToyRun", "check_a_first", "Config", "layer_weights", "setup", "simulate", "predict",
           "summary", "outputs", "plot_loss", "plot_weights", "plot_units", "trajectory_figure", "map_error",
           "CONVENTION"]

#: fusion layer of each two-layer variant
FUSE_DEPTH = {"late": 2, "early": 1}

#: the measurement convention, stated in the summary and the saved record
CONVENTION = ("t_A, t_B: first upward crossing of ½ W_A(M_A) and ½ W_B(M_*), linearly interpolated "
              "(convention 'interp', theory.md §7)")

_DIMS = (1, 1)


@dataclass(frozen=True)
class ToyRun(Seeded, ToyData, Descent, Init, Width):
    """The options of every two-layer linear experiment on the toy data (theory.md §3a).

    :class:`Config` (figure 2) and the configurations of :mod:`sims.phase_portrait` and
    :mod:`sims.superficial` derive from it.
    """

    QUICK = {"n": 2048, "width": 20}


def check_a_first(cfg):
    """Modality A (variance r²) must be the first-learned one, |Σyx_A| >= |Σyx_B| (theory.md §6.3)."""
    try:
        time_ratio_toy(cfg.rho, cfg.ratio)
    except ValueError as exc:
        raise ValueError(f"ratio == {cfg.ratio!r} with rho == {cfg.rho!r}: {exc}") from None


@dataclass(frozen=True)
class Config(ToyRun):
    """One two-layer linear fusion network on the toy data (theory.md §3a, §6.1-6.3).

    Modality A (x_A, variance r²) must be the first-learned one, |Σyx_A| >= |Σyx_B|.
    """

    snapshots: tuple[int, ...] | None = option(
        None, "epochs at which to draw the hidden units, comma separated", check=integers(lo=0),
        group="figure", none_means="halfway to t_A, mid-plateau (late) or t_A (early), and the end")

    def validate(self):
        check_a_first(self)
        if self.snapshots is not None and max(self.snapshots) > self.epochs:
            raise ValueError(f"snapshots == {self.snapshots!r}, must lie in [0, epochs ({self.epochs})].")


# --------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class Setup:
    """A run before training: network, data, empirical moments, initial weights, fixed points."""

    fusion: str
    net: FusionNet
    data: object
    sxx: np.ndarray
    syx: np.ndarray
    syy: float
    w0: np.ndarray
    fixed: tuple    # late fusion's (M_0, M_A, M_B, M_*) on the empirical statistics


def setup(cfg, fusion, w_star=(1.0, 1.0)):
    """Data and initial weights of the run, from ``cfg.seed`` (no training).

    Parameters
    ----------
    cfg : Config
    fusion : {'late', 'early'}
    w_star : tuple of 2 float
        Teacher weights (w_A*, w_B*).

    Returns
    -------
    Setup
    """
    data_ss, init_ss = np.random.SeedSequence(cfg.seed).spawn(2)
    data = toy(cfg.rho, cfg.ratio, cfg.n, cfg.noise, w_star=w_star, rng=data_ss)
    mo = data.moments()
    net = FusionNet(_DIMS, 1, cfg.width, 2, FUSE_DEPTH[fusion])
    # the balanced scheme aligns with the least-squares solution, as linfusion.train does
    align = np.linalg.solve(mo.sxx, mo.syx.T).T if cfg.init == "balanced" else None
    w0 = net.init(cfg.init, cfg.scale, init_ss, align=align)
    fixed = late_fixed_points(mo.sxx, mo.syx, mo.syy, _DIMS)
    return Setup(fusion, net, data, mo.sxx, mo.syx, mo.syy, w0, fixed)


def layer_weights(net, w):
    """(W¹, W²) of a two-layer network in the form :func:`theory.dynamics.gram_map` takes.

    Late fusion (L_f = 2): one first- and one second-layer block per modality (lists);
    early fusion (L_f = 1): the first layer's blocks side by side and the second layer.
    """
    if net.fuse_depth == 1:
        return np.hstack(net.blocks(w, layer=1)), net.blocks(w, layer=2)[0]
    return ([net.blocks(w, modality=k, layer=1)[0] for k in range(net.n_modalities)],
            [net.blocks(w, modality=k, layer=2)[0] for k in range(net.n_modalities)])


def _theory_weights(s, w):
    """First- and second-layer weights in the form theory.dynamics expects."""
    return layer_weights(s.net, w)


def _units(s, w):
    """Each hidden unit's first-layer weights in the (x_A, x_B) plane, shape (n_units, 2).

    Late fusion: A's units lie on the x_A axis, B's on the x_B axis. Early fusion: every unit
    sees both inputs.
    """
    u = s.net.unpack(w)
    a, b = u["W1_0"][:, 0], u["W1_1"][:, 0]
    if s.fusion == "early":
        return np.stack([a, b], axis=1)
    zero = np.zeros_like(a)
    return np.concatenate([np.stack([a, zero], axis=1), np.stack([zero, b], axis=1)])


def _unit_branch(s):
    """Branch of each unit of :func:`_units`: 0 (A), 1 (B) or -1 (shared, early fusion)."""
    h = s.net.width
    if s.fusion == "early":
        return np.full(h, -1)
    return np.concatenate([np.zeros(h, dtype=int), np.ones(h, dtype=int)])


def _train(s, cfg, w0, epochs, record_every):
    return train(s.net, s.data, lr=cfg.lr, epochs=epochs, w0=w0, weight_decay=cfg.weight_decay,
                 record_every=record_every, tol=cfg.tol)


def simulate(cfg, fusion, w_star=(1.0, 1.0), snapshots=True):
    """Train the run and measure it.

    Parameters
    ----------
    cfg : Config
    fusion : {'late', 'early'}
    w_star : tuple of 2 float
    snapshots : bool
        Also record the hidden units' first-layer weights at ``cfg.snapshots`` epochs.

    Returns
    -------
    dict
        ``epochs`` (n_rec,), ``loss`` (n_rec,), ``loss_rel`` = loss/L(0), ``w_tot``
        (n_rec, 2); ``t_a``, ``t_b``, ``ratio`` (measured, 'interp', NaN when not reached);
        ``plateau_epoch``, ``plateau_loss_rel``, ``plateau_w_a`` (late fusion: the record
        nearest (t_A + t_B)/2); ``w_final`` (2,); ``status``, ``usable`` (bool), ``message``,
        ``path``; with ``snapshots``: ``snap_epochs`` (n_snap,), ``units`` (n_snap, n_units, 2),
        ``unit_branch`` (n_units,).
    """
    s = setup(cfg, fusion, w_star)
    res = _train(s, cfg, s.w0, cfg.epochs, cfg.record_every)
    w_tot = res.w_tot_all[:, 0, :]
    usable = res.status in ("completed", "converged")
    sim = dict(epochs=res.epochs, loss=res.loss, loss_rel=res.loss / s.fixed[0].loss, w_tot=w_tot,
               status=res.status, usable=usable, message=res.message, path=res.path, w_final=w_tot[-1].copy(),
               t_a=np.nan, t_b=np.nan, ratio=np.nan, plateau_epoch=np.nan, plateau_loss_rel=np.nan,
               plateau_w_a=np.nan)
    if not usable:
        return sim
    m = measure(res, wa_uni=s.fixed[1].block(0)[0, 0], wb_star=s.fixed[3].block(1)[0, 0], convention="interp")
    sim.update(t_a=m["t_a"], t_b=m["t_b"], ratio=m["ratio"])
    if fusion == "late" and np.isfinite(m["t_a"]) and np.isfinite(m["t_b"]):
        i = int(np.argmin(np.abs(res.epochs - 0.5 * (m["t_a"] + m["t_b"]))))
        sim.update(plateau_epoch=float(res.epochs[i]), plateau_loss_rel=float(sim["loss_rel"][i]),
                   plateau_w_a=float(w_tot[i, 0]))
    if snapshots:
        epochs = _snapshot_epochs(cfg, fusion, m["t_a"], m["t_b"], res.final_epoch)
        units, w, done = [], s.w0, 0
        for e in epochs:
            if e > done:    # gradient descent is a Markov chain: continue from the last snapshot
                w = _train(s, cfg, w, e - done, e - done).w
                done = e
            units.append(_units(s, w))
        sim.update(snap_epochs=np.array(epochs), units=np.array(units), unit_branch=_unit_branch(s))
    return sim


def _snapshot_epochs(cfg, fusion, t_a, t_b, last):
    if cfg.snapshots is not None:
        return sorted({min(int(e), last) for e in cfg.snapshots})
    if not np.isfinite(t_a):
        return sorted({last // 4, last // 2, last})
    second = 0.5 * (t_a + t_b) if fusion == "late" and np.isfinite(t_b) else t_a
    return sorted({int(round(0.5 * t_a)), min(int(round(second)), last), last})


# --------------------------------------------------------------------------- theory
def predict(cfg, fusion, w_star=(1.0, 1.0)):
    """Theory for the run: the exact map and the rank-one ODE from its initial weights.

    Parameters
    ----------
    cfg : Config
    fusion : {'late', 'early'}
    w_star : tuple of 2 float

    Returns
    -------
    dict
        ``epochs`` (n,) = 0..epochs; ``map_w_tot`` (n, 2), ``map_loss_rel`` (n,), ``map_t_a``,
        ``map_t_b``, ``map_ratio`` (the exact Gram map; NaN if it diverged); ``ode_w_tot``
        (n, 2), ``ode_loss_rel``, ``ode_t_a``, ``ode_t_b``, ``ode_ratio`` (gradient flow from
        the run's seed); ``lo_t_a``, ``lo_t_b``, ``lo_ratio`` (leading order); ``seed``
        (effective seed per mode); fixed points on the empirical statistics: ``m_w`` (4, 2)
        and ``m_loss_rel`` (4,) for (M_0, M_A, M_B, M_*), ``wa_uni``, ``plateau_loss_rel``;
        population values ``pop_wa_uni``, ``pop_plateau_loss_rel``, ``pop_m_loss_rel`` (4,)
        and ``pop_ratio``; ``sigma`` (2, 2) and ``syx`` (2,), the empirical statistics;
        ``w_star`` (2,), the teacher. Crossings never reached are NaN.
    """
    s = setup(cfg, fusion, w_star)
    grid = np.arange(cfg.epochs + 1, dtype=float)
    w1, w2 = _theory_weights(s, s.w0)
    l0 = s.fixed[0].loss
    ode = flow(s.sxx, s.syx, s.syy, _DIMS, grid, cfg.lr, fusion=fusion, w1=w1, w2=w2)
    seed = effective_seed(s.sxx, s.syx, _DIMS, w1, w2, fusion=fusion).s
    pred = dict(epochs=grid, ode_w_tot=ode.w_tot, ode_loss_rel=ode.loss / l0,
                ode_t_a=_nan(ode.t_a), ode_t_b=_nan(ode.t_b), ode_ratio=_nan(ode.ratio), seed=seed,
                sigma=s.sxx, syx=s.syx[0], w_star=s.data.w_star[0],
                m_w=np.array([p.w_tot[0] for p in s.fixed]),
                m_loss_rel=np.array([p.loss for p in s.fixed]) / l0,
                wa_uni=s.fixed[1].block(0)[0, 0], plateau_loss_rel=s.fixed[1].loss / l0)
    try:
        exact = gram_map(s.sxx, s.syx, s.syy, _DIMS, grid, cfg.lr, w1, w2, fusion=fusion,
                         weight_decay=cfg.weight_decay)
        pred.update(map_w_tot=exact.w_tot, map_loss_rel=exact.loss / l0, map_t_a=_nan(exact.t_a),
                    map_t_b=_nan(exact.t_b), map_ratio=_nan(exact.ratio))
    except RuntimeError:    # the map diverges exactly when the run does; the run reports it
        pred.update(map_w_tot=np.full((grid.size, 2), np.nan), map_loss_rel=np.full(grid.size, np.nan),
                    map_t_a=np.nan, map_t_b=np.nan, map_ratio=np.nan)
    if fusion == "late":
        try:
            lo = late_times(s.sxx, s.syx, _DIMS, np.sqrt(seed[0]), lr=cfg.lr)
            pred.update(lo_t_a=lo.t_a, lo_t_b=lo.t_b, lo_ratio=lo.ratio)
        except ValueError:  # B first on these statistics: the A-then-B formula does not apply
            pred.update(lo_t_a=np.nan, lo_t_b=np.nan, lo_ratio=np.nan)
    else:
        # theory.md §6.2 (heuristic): one transition at (τ/‖Σyx‖) ln(1/u0), ‖W(0)‖ = u0² = seed
        t = np.log(1.0 / np.sqrt(seed[0])) / np.linalg.norm(s.syx) / cfg.lr
        pred.update(lo_t_a=t, lo_t_b=t, lo_ratio=1.0)
    pop = late_fixed_points(*toy_stats(cfg.rho, cfg.ratio, w_star), _DIMS)
    pop_loss = np.array([p.loss for p in pop]) + 0.5 * cfg.noise ** 2
    pred.update(pop_wa_uni=pop[1].block(0)[0, 0], pop_m_loss_rel=pop_loss / pop_loss[0],
                pop_plateau_loss_rel=pop_loss[1] / pop_loss[0])
    try:
        pred["pop_ratio"] = time_ratio_toy(cfg.rho, cfg.ratio, w_star=w_star) if fusion == "late" else 1.0
    except ValueError:
        pred["pop_ratio"] = np.nan
    return pred


def _nan(x):
    return np.nan if x is None else float(x)


def map_error(sim, pred):
    """Largest |W_tot(simulation) − W_tot(exact Gram map)| over the recorded epochs."""
    idx = sim["epochs"].astype(int)
    return float(np.max(np.abs(sim["w_tot"] - pred["map_w_tot"][idx])))


# --------------------------------------------------------------------------- output
def outputs(sim, pred):
    """The arrays (``sim_*``, ``pred_*``) and the summary record of a run."""
    arrays = {}
    for prefix, d in (("sim_", sim), ("pred_", pred)):
        for k, v in d.items():
            if not isinstance(v, str) and v is not None:
                arrays[prefix + k] = np.asarray(v)
    record = {k: sim[k] for k in ("status", "t_a", "t_b", "ratio", "plateau_loss_rel", "plateau_w_a")}
    record.update({k: pred[k] for k in ("map_t_a", "map_t_b", "map_ratio", "ode_t_a", "ode_t_b", "ode_ratio",
                                        "lo_t_a", "lo_t_b", "lo_ratio", "pop_ratio")})
    if sim["usable"]:
        record["map_max_abs_error"] = map_error(sim, pred)
    record["convention"] = CONVENTION
    return {"arrays": arrays, "record": record}


def _f(x, fmt="{:.1f}"):
    return "not reached" if x is None or not np.isfinite(x) else fmt.format(x)


def summary(cfg, sim, pred, fusion):
    """Measured against predicted numbers of a two-layer run, as printed lines."""
    scale = cfg.scale if cfg.scale is not None else default_scale(cfg.init)
    head = (f"{fusion} fusion, two-layer linear: r = {cfg.ratio:g}, rho = {cfg.rho:g}, n = {cfg.n}, "
            f"width {cfg.width}, init {cfg.init} {scale:g}, "
            f"lr {cfg.lr:g}, {int(sim['epochs'][-1])} epochs ({sim['path']} path)")
    lines = [head, f"  run {sim['message']}"]
    if not sim["usable"]:
        return "\n".join(lines)
    rows = [("", "measured", "exact map", "flow (lr→0)", "leading ord.")]
    for name, key, fmt in (("t_A [epochs]", "t_a", "{:.1f}"), ("t_B [epochs]", "t_b", "{:.1f}"),
                           ("t_B/t_A", "ratio", "{:.3f}")):
        rows.append((name, _f(sim[key], fmt), _f(pred["map_" + key], fmt), _f(pred["ode_" + key], fmt),
                     _f(pred["lo_" + key], fmt)))
    lines += ["  " + f"{r[0]:<14}" + "".join(f"{c:>14}" for c in r[1:]) for r in rows]
    lines.append(f"  exact map: the Gram-state map at lr {cfg.lr:g} from this run's weights (max |ΔW_tot| = "
                 f"{map_error(sim, pred):.1e}); flow: the gradient-flow ODE from the run's effective seed, "
                 "the lr → 0 limit (theory.md §6.10)")
    if fusion == "late":
        lines.append(f"  population time ratio 1 + (r² − 1)/(1 − ρ²) (signed, theory.md §6.3): "
                     f"{_f(pred['pop_ratio'], '{:.3f}')}")
        lines.append(f"  plateau loss L/L(0) at epoch {_f(sim['plateau_epoch'], '{:.0f}')}: "
                     f"{_f(sim['plateau_loss_rel'], '{:.4f}')}   L(M_A)/L(M_0) = "
                     f"{pred['plateau_loss_rel']:.4f} (population {pred['pop_plateau_loss_rel']:.4f})")
        lines.append(f"  W_A on the plateau: {_f(sim['plateau_w_a'], '{:.4f}')}   Σyx_A/Σ_A = "
                     f"{pred['wa_uni']:.4f} (population 1 + ρ/r = {pred['pop_wa_uni']:.4f})")
    else:
        lines.append("  one transition, no plateau (early fusion has only M_0 and M_*)")
    m_star = pred["m_w"][3]
    lines.append(f"  final W_tot = ({sim['w_final'][0]:.5f}, {sim['w_final'][1]:.5f});  "
                 f"M_* = ({m_star[0]:.5f}, {m_star[1]:.5f})")
    lines.append(f"  {CONVENTION}")
    if cfg.weight_decay > 0:
        lines.append("  (the flow ignores weight decay; the exact map includes it)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figure
_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii")


def _snapshot_marks(ax, sim):
    """(i), (ii), ... above the panel at the snapshot epochs."""
    if "snap_epochs" not in sim:
        return
    from matplotlib.font_manager import FontProperties

    span = float(sim["epochs"][-1]) or 1.0
    fontsize = FontProperties(size="small").get_size_in_points()
    lift, last = 0, -np.inf
    for k, e in enumerate(sim["snap_epochs"]):
        ax.axvline(e, color=S.COLORS["level"], linewidth=0.6, linestyle=":", zorder=0)
        lift = lift + 1.1 * fontsize if (e - last) / span < 0.1 else 0   # stack labels of close snapshots
        last = e
        ax.annotate(f"({_ROMAN[k % len(_ROMAN)]})", (e, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(0, 2 + lift), textcoords="offset points", ha="center", va="bottom",
                    fontsize="small", annotation_clip=False)


def plot_loss(ax, sim, pred, *, level=True):
    """Loss/L(0) over epochs: simulation, the exact map (dashed) and the plateau level."""
    ax.plot(sim["epochs"], sim["loss_rel"], label="loss, simulation", **S.sim_kw(S.COLORS["loss"]))
    ax.plot(pred["epochs"], pred["map_loss_rel"], label="loss, exact map", **S.theory_kw(S.COLORS["loss"]))
    ax.plot(pred["epochs"], pred["ode_loss_rel"], label="loss, gradient flow", color=S.COLORS["loss"],
            linestyle=":", linewidth=1.0)
    if level:
        ax.axhline(pred["plateau_loss_rel"], color=S.COLORS["level"], linewidth=0.8, linestyle=(0, (1, 2)))
        ax.annotate(r"$L(M_A)/L(M_0)$", (1.0, pred["plateau_loss_rel"]), xycoords=("axes fraction", "data"),
                    xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom", fontsize="small",
                    color="0.3")
    ax.set_ylim(-0.03, 1.08)
    ax.set_xlim(0, pred["epochs"][-1])
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"loss / $L(0)$")


def plot_weights(ax, sim, pred, *, level=True):
    """W_A^tot and W_B^tot over epochs: simulation, the exact map (dashed, in colour), the flow (dotted)."""
    for k, (key, name) in enumerate((("a", S.W_A), ("b", S.W_B))):
        color = S.COLORS[key]
        ax.plot(sim["epochs"], sim["w_tot"][:, k], label=f"{name} simulation", **S.sim_kw(color))
        ax.plot(pred["epochs"], pred["map_w_tot"][:, k], label=f"{name} exact map", **S.theory_kw(color))
        ax.plot(pred["epochs"], pred["ode_w_tot"][:, k], color=color, linestyle=":", linewidth=1.0,
                label=f"{name} gradient flow")
    if level:
        ax.axhline(pred["wa_uni"], color=S.COLORS["level"], linewidth=0.8, linestyle=(0, (1, 2)))
        ax.annotate(r"$W_A(M_A)$", (1.0, pred["wa_uni"]), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize="small", color="0.3")
    top = max(1.15, 1.08 * float(np.nanmax(sim["w_tot"])), 1.12 * pred["wa_uni"])
    ax.set_ylim(min(-0.05, 1.1 * float(np.nanmin(sim["w_tot"]))), top)
    ax.set_xlim(0, pred["epochs"][-1])
    ax.set_xlabel("epoch")
    ax.set_ylabel("end-to-end weight")


def style_legend():
    """Legend handles that explain the colours (series) and the line styles (simulation, theory)."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], label="loss", **S.sim_kw(S.COLORS["loss"])),
            Line2D([], [], label=S.W_A, **S.sim_kw(S.COLORS["a"])),
            Line2D([], [], label=S.W_B, **S.sim_kw(S.COLORS["b"])),
            Line2D([], [], label="simulation: wide band", color="0.6", linewidth=2.8, alpha=0.55),
            Line2D([], [], label="exact map at lr: dashed", **S.theory_kw("black")),
            Line2D([], [], label="gradient flow (lr → 0):\ndotted", color="black", linestyle=":", linewidth=1.0)]


def plot_units(ax, units, branch, syx, w_star, fusion):
    """One snapshot of the hidden units' first-layer weights, with the Σyx and W* directions."""
    lim = 1.2 * float(np.max(np.abs(units))) or 1.0
    if fusion == "late":
        for k, name in ((0, "A"), (1, "B")):
            sel = branch == k
            ax.scatter(units[sel, 0], units[sel, 1], s=10, color=S.COLORS["ab"[k]], alpha=0.7, linewidths=0,
                       label=f"{name}-branch units")
    else:
        ax.scatter(units[:, 0], units[:, 1], s=10, color=S.COLORS["early"], alpha=0.7, linewidths=0,
                   label="hidden units")
    for vec, color, name in ((syx, "black", r"$\Sigma_{yx}$"), (w_star, S.COLORS["level"], r"$W^*$")):
        d = np.asarray(vec, dtype=float) / np.linalg.norm(vec)
        ax.plot([-lim * d[0], lim * d[0]], [-lim * d[1], lim * d[1]], linestyle=":", linewidth=0.8,
                color=color, label=f"{name} direction")
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(3, symmetric=True))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1g}" if v else "0"))
    ax.set_xlabel(r"weight on $x_A$")
    ax.set_ylabel(r"weight on $x_B$")


_PHASE = {"growth": "growth", "plateau": "plateau", "transition": "transition", "end": "end"}


def _snapshot_title(k, e, sim, fusion):
    t_a, t_b = sim["t_a"], sim["t_b"]
    phase = "end" if e == sim["epochs"][-1] else ""
    if not phase and np.isfinite(t_a) and e < 0.75 * t_a:
        phase = "growth"
    elif not phase and fusion == "late" and np.isfinite(t_b) and t_a <= e < 0.9 * t_b:
        phase = "plateau"
    elif not phase:
        phase = "transition"
    return f"({_ROMAN[k % len(_ROMAN)]}) epoch {int(e)}, {phase}"


def trajectory_figure(cfg, sim, pred, fusion):
    """Figure 2: loss and end-to-end weights (top), one unit scatter per snapshot (bottom)."""
    import matplotlib.pyplot as plt

    if not sim["usable"]:
        return None
    n_snap = len(sim["snap_epochs"])
    scale = 0.8 if S.current() == "paper" else 1.35 if S.current() == "talk" else 1.0
    fig = plt.figure(figsize=(scale * max(7.2, 2.4 * n_snap), scale * 5.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1.0])
    ax_loss, ax_w = top.subplots(1, 2)
    plot_loss(ax_loss, sim, pred, level=fusion == "late")
    plot_weights(ax_w, sim, pred, level=fusion == "late")
    for ax in (ax_loss, ax_w):
        _snapshot_marks(ax, sim)
    top.legend(handles=style_legend(), loc="outside right center")
    axes = bottom.subplots(1, n_snap)
    axes = np.atleast_1d(axes)
    for k, (ax, e) in enumerate(zip(axes, sim["snap_epochs"])):
        plot_units(ax, sim["units"][k], sim["unit_branch"], pred["syx"], pred["w_star"], fusion)
        ax.set_title(_snapshot_title(k, e, sim, fusion), fontsize="medium")
        if k:
            ax.set_ylabel("")
    handles, labels = axes[0].get_legend_handles_labels()
    bottom.legend(handles, labels, loc="outside right center")
    name = {"late": "Late fusion", "early": "Early fusion"}[fusion]
    S.title(fig, f"{name}, two layers: toy data r = {cfg.ratio:g}, ρ = {cfg.rho:g}")
    return fig


def protocol(fusion):
    """The module protocol of figure 2 (``run``, ``predict``, ``plot``, ``summary``, ``outputs``) for ``fusion``."""

    def run(cfg, execution=None):
        return simulate(cfg, fusion)

    def predict_(cfg, result=None):
        return predict(cfg, fusion)

    def plot(cfg, result, prediction):
        return trajectory_figure(cfg, result, prediction, fusion)

    def summary_(cfg, result, prediction):
        return summary(cfg, result, prediction, fusion)

    def outputs_(cfg, result, prediction):
        return outputs(result, prediction)

    docs = {"run": f"Train the {fusion}-fusion network and measure it (:func:`sims._two_layer.simulate`).",
            "predict": "Exact map, gradient flow, leading-order times and fixed points (:func:`sims._two_layer.predict`).",
            "plot": "The figure: trajectories with theory, and hidden-unit snapshots.",
            "summary": "Measured against predicted times, plateau and final weights.",
            "outputs": "Arrays and record to save."}
    fns = (run, predict_, plot, summary_, outputs_)
    for fn, name in zip(fns, docs):
        fn.__name__ = fn.__qualname__ = name
        fn.__module__ = f"sims.{fusion}_fusion"
        fn.__doc__ = docs[name]
    return fns
