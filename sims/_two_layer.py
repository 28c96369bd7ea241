"""One two-layer linear fusion network on the toy data: its run, its theory and its figure.

The shared code path of :mod:`sims.late_fusion` and :mod:`sims.early_fusion` (THEORY.md §10
figure 2), also used by :mod:`sims.phase_portrait` (figure 3) and :mod:`sims.superficial`
(figure 8). One network is trained by full-batch gradient descent on the toy data of
THEORY.md §3a; the fusion layer (``'late'``: L_f = 2, ``'early'``: L_f = 1) is the only
difference between the two figure-2 experiments.

Theory drawn over the run, all from the run's own empirical statistics and its own initial
weights (THEORY.md §2, §6.10):

- the balanced rank-one gradient-flow ODE (:func:`theory.dynamics.flow`) started from the
  run's effective seed: the curves and predicted t_A, t_B on the figure;
- the exact Gram-state map (:func:`theory.dynamics.gram_map`), a check that must reproduce
  the simulation to rounding (printed, not drawn: it would hide the simulation);
- the leading-order times (:func:`theory.two_layer.late_times`; §6.2's heuristic for early
  fusion) and the fixed points of :mod:`theory.fixed_points`.

Randomness: ``np.random.SeedSequence(seed)`` has two children, the data (0) and the initial
weights (1), so :func:`predict` rebuilds the run's data and initial weights without training.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from linfusion import FusionNet, train
from linfusion.analysis import measure
from linfusion.data import toy
from theory.dynamics import effective_seed, flow, gram_map
from theory.fixed_points import late_fixed_points
from theory.two_layer import late_times, time_ratio_toy, toy_stats

from ._common import (COLORS, THEORY_STYLE, Timer, add_toy_args, add_train_args, base_parser, fail,
                      finish_args, save, announce)

__all__ = ["FUSE_DEPTH", "QUICK", "parser", "parse", "setup", "simulate", "predict", "summary",
           "plot_trajectories", "plot_units", "trajectory_figure", "arrays", "map_error", "main",
           "CONVENTION"]

#: fusion layer of each two-layer variant
FUSE_DEPTH = {"late": 2, "early": 1}

#: what --quick changes (options given explicitly still win)
QUICK = {"n": 2048, "width": 20}

#: the measurement convention, stated on every plot
CONVENTION = ("t_A, t_B: first upward crossing of ½ W_A(M_A) and ½ W_B(M_*), linearly "
              "interpolated (convention 'interp', THEORY §7)")

_DIMS = (1, 1)


# --------------------------------------------------------------------------- options
def parser(name, description, *, epochs=1000, rho=0.0, snapshots=False):
    """Options of a two-layer toy experiment: output, toy data, network and training.

    Parameters
    ----------
    name, description : str
        Experiment name (``python -m sims.<name>``) and the --help text.
    epochs : int
        Default number of epochs.
    rho : float
        Default correlation.
    snapshots : bool
        Add ``--snapshots`` (epochs at which the hidden units are drawn).
    """
    p = base_parser(name, description)
    add_toy_args(p, rho=rho)
    add_train_args(p, epochs=epochs)
    if snapshots:
        p.add_argument("--snapshots", default="auto",
                       help="epochs at which to draw the hidden units, comma separated; 'auto': "
                            "halfway to t_A, mid-plateau (late) or t_A (early), and the end")
    return p


def parse(p, argv, check=None, quick=None):
    """Parse ``argv`` with :func:`sims._common.finish_args` after the two-layer checks.

    ``--quick`` changes the defaults in ``quick`` (default :data:`QUICK`); options given
    explicitly keep their values. ``check(args)`` may add experiment-specific rules.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if "--quick" in argv:
        p.set_defaults(**(QUICK if quick is None else quick))

    def full_check(args):
        _check_two_layer(args)
        if check is not None:
            check(args)

    return finish_args(p, argv, full_check)


def _check_two_layer(args):
    if args.depth != 2:
        raise ValueError(f"--depth {args.depth}: this experiment is the two-layer network of THEORY.md "
                         "§6.2-6.3, must be 2 (deep fusion has its own experiments).")
    if args.slope != 1.0:
        raise ValueError(f"--slope {args.slope}: the theory drawn here (rank-one ODE, exact Gram map) "
                         "holds for linear networks, must be 1.")
    if args.bias:
        raise ValueError("--bias: the theory drawn here holds for networks without biases; drop --bias.")
    if args.loss != "mse":
        raise ValueError(f"--loss {args.loss}: the theory drawn here holds for the squared loss, must be mse.")
    for opt, value, lo in (("--width", args.width, 1), ("--n", args.n, 2),
                           ("--record-every", args.record_every, 1)):
        if value < lo:
            raise ValueError(f"{opt} {value}: must be >= {lo}.")
    for opt, value in (("--noise", args.noise), ("--weight-decay", args.weight_decay), ("--tol", args.tol)):
        if not value >= 0:
            raise ValueError(f"{opt} {value!r}: must be >= 0.")
    if getattr(args, "snapshots", "auto") != "auto":
        try:
            snaps = [int(s) for s in args.snapshots.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"--snapshots {args.snapshots!r}: must be 'auto' or comma-separated "
                             "whole epochs.") from None
        if not snaps or min(snaps) < 0 or max(snaps) > args.epochs:
            raise ValueError(f"--snapshots {args.snapshots!r}: must list epochs in [0, --epochs "
                             f"({args.epochs})].")


def check_a_first(args):
    """Modality A (the larger variance) must be learned first: |Σyx_A| >= |Σyx_B|."""
    try:
        time_ratio_toy(args.rho, args.ratio)
    except ValueError as exc:
        raise ValueError(f"--ratio {args.ratio} with --rho {args.rho}: {exc}") from None


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


def setup(args, fusion, w_star=(1.0, 1.0)):
    """Data and initial weights of the run, from ``args.seed`` (no training).

    Parameters
    ----------
    args : argparse.Namespace
    fusion : {'late', 'early'}
    w_star : tuple of 2 float
        Teacher weights (w_A*, w_B*).

    Returns
    -------
    Setup
    """
    data_ss, init_ss = np.random.SeedSequence(args.seed).spawn(2)
    data = toy(args.rho, args.ratio, args.n, args.noise, w_star=w_star, rng=data_ss)
    mo = data.moments()
    net = FusionNet(_DIMS, 1, args.width, 2, FUSE_DEPTH[fusion])
    # the balanced scheme aligns with the least-squares solution, as linfusion.train does
    align = np.linalg.solve(mo.sxx, mo.syx.T).T if args.init == "balanced" else None
    w0 = net.init(args.init, args.scale, init_ss, align=align)
    fixed = late_fixed_points(mo.sxx, mo.syx, mo.syy, _DIMS)
    return Setup(fusion, net, data, mo.sxx, mo.syx, mo.syy, w0, fixed)


def _theory_weights(s, w):
    """First- and second-layer weights in the form theory.dynamics expects."""
    u = s.net.unpack(w)
    if s.fusion == "late":
        return [u["W1_0"], u["W1_1"]], [u["W2_0"], u["W2_1"]]
    return np.hstack([u["W1_0"], u["W1_1"]]), u["W2"]


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


def _train(s, args, w0, epochs, record_every):
    return train(s.net, s.data, lr=args.lr, epochs=epochs, w0=w0, loss=args.loss,
                 weight_decay=args.weight_decay, record_every=record_every, tol=args.tol)


def simulate(args, fusion, w_star=(1.0, 1.0), snapshots=True):
    """Train the run and measure it.

    Parameters
    ----------
    args : argparse.Namespace
    fusion : {'late', 'early'}
    w_star : tuple of 2 float
    snapshots : bool
        Also record the hidden units' first-layer weights at ``args.snapshots`` epochs.

    Returns
    -------
    dict
        ``epochs`` (n_rec,), ``loss`` (n_rec,), ``loss_rel`` = loss/L(0), ``w_tot``
        (n_rec, 2); ``t_a``, ``t_b``, ``ratio`` (measured, 'interp', NaN when not reached);
        ``plateau_epoch``, ``plateau_loss_rel``, ``plateau_w_a`` (late fusion: the record
        nearest (t_first + t_second)/2); ``w_final`` (2,); ``diverged`` (bool), ``message``,
        ``path``; with ``snapshots``: ``snap_epochs`` (n_snap,), ``units`` (n_snap, n_units, 2),
        ``unit_branch`` (n_units,).
    """
    s = setup(args, fusion, w_star)
    res = _train(s, args, s.w0, args.epochs, args.record_every)
    w_tot = res.w_tot_all[:, 0, :]
    sim = dict(epochs=res.epochs, loss=res.loss, loss_rel=res.loss / s.fixed[0].loss, w_tot=w_tot,
               diverged=res.diverged, message=res.message, path=res.path)
    if res.diverged:
        return sim
    m = measure(res, wa_uni=s.fixed[1].block(0)[0, 0], wb_star=s.fixed[3].block(1)[0, 0],
                convention="interp")
    sim.update(t_a=m["t_a"], t_b=m["t_b"], ratio=m["ratio"], w_final=w_tot[-1].copy())
    sim.update(plateau_epoch=np.nan, plateau_loss_rel=np.nan, plateau_w_a=np.nan)
    if fusion == "late" and np.isfinite(m["t_a"]) and np.isfinite(m["t_b"]):
        i = int(np.argmin(np.abs(res.epochs - 0.5 * (m["t_a"] + m["t_b"]))))
        sim.update(plateau_epoch=float(res.epochs[i]), plateau_loss_rel=float(sim["loss_rel"][i]),
                   plateau_w_a=float(w_tot[i, 0]))
    if snapshots:
        epochs = _snapshot_epochs(args, fusion, m["t_a"], m["t_b"], res.final_epoch)
        units, w, done = [], s.w0, 0
        for e in epochs:
            if e > done:    # gradient descent is a Markov chain: continue from the last snapshot
                w = _train(s, args, w, e - done, e - done).w
                done = e
            units.append(_units(s, w))
        sim.update(snap_epochs=np.array(epochs), units=np.array(units), unit_branch=_unit_branch(s))
    return sim


def _snapshot_epochs(args, fusion, t_a, t_b, last):
    if args.snapshots != "auto":
        return sorted({min(int(e), last) for e in args.snapshots.split(",") if e.strip()})
    if not np.isfinite(t_a):
        return sorted({last // 4, last // 2, last})
    second = 0.5 * (t_a + t_b) if fusion == "late" and np.isfinite(t_b) else t_a
    return sorted({int(round(0.5 * t_a)), min(int(round(second)), last), last})


# --------------------------------------------------------------------------- theory
def predict(args, fusion, w_star=(1.0, 1.0)):
    """Theory for the run: the rank-one ODE and the exact map from its initial weights.

    Parameters
    ----------
    args : argparse.Namespace
    fusion : {'late', 'early'}
    w_star : tuple of 2 float

    Returns
    -------
    dict
        ``epochs`` (n,) = 0..epochs; ``ode_w_tot`` (n, 2), ``ode_loss_rel`` (n,),
        ``ode_t_a``, ``ode_t_b``, ``ode_ratio`` (NaN when not crossed); ``map_w_tot`` (n, 2),
        ``map_t_a``, ``map_t_b`` (exact Gram map; NaN arrays if it diverged); ``lo_t_a``,
        ``lo_t_b``, ``lo_ratio`` (leading order); ``seed`` (effective seed per mode);
        fixed points on the empirical statistics: ``m_w`` (4, 2) and ``m_loss_rel`` (4,) for
        (M_0, M_A, M_B, M_*), ``wa_uni``, ``plateau_loss_rel``; population values
        ``pop_wa_uni``, ``pop_plateau_loss_rel``, ``pop_m_loss_rel`` (4,) and (late)
        ``pop_ratio``; ``sigma`` (2, 2) and ``syx`` (2,), the empirical statistics;
        ``w_star`` (2,), the teacher.
    """
    s = setup(args, fusion, w_star)
    grid = np.arange(args.epochs + 1, dtype=float)
    w1, w2 = _theory_weights(s, s.w0)
    l0 = s.fixed[0].loss
    ode = flow(s.sxx, s.syx, s.syy, _DIMS, grid, args.lr, fusion=fusion, w1=w1, w2=w2)
    seed = effective_seed(s.sxx, s.syx, _DIMS, w1, w2, fusion=fusion).s
    pred = dict(epochs=grid, ode_w_tot=ode.w_tot, ode_loss_rel=ode.loss / l0,
                ode_t_a=_nan(ode.t_a), ode_t_b=_nan(ode.t_b), ode_ratio=_nan(ode.ratio), seed=seed,
                sigma=s.sxx, syx=s.syx[0], w_star=s.data.w_star[0],
                m_w=np.array([p.w_tot[0] for p in s.fixed]),
                m_loss_rel=np.array([p.loss / l0 for p in s.fixed]),
                wa_uni=s.fixed[1].block(0)[0, 0], plateau_loss_rel=s.fixed[1].loss / l0)
    try:
        exact = gram_map(s.sxx, s.syx, s.syy, _DIMS, grid, args.lr, w1, w2, fusion=fusion,
                         weight_decay=args.weight_decay)
        pred.update(map_w_tot=exact.w_tot, map_t_a=_nan(exact.t_a), map_t_b=_nan(exact.t_b))
    except RuntimeError:    # the map diverges exactly when the run does; the run reports it
        pred.update(map_w_tot=np.full((grid.size, 2), np.nan), map_t_a=np.nan, map_t_b=np.nan)
    if fusion == "late":
        try:
            lo = late_times(s.sxx, s.syx, _DIMS, np.sqrt(seed[0]), lr=args.lr)
            pred.update(lo_t_a=lo.t_a, lo_t_b=lo.t_b, lo_ratio=lo.ratio)
        except ValueError:  # B first on these statistics: the A-then-B formula does not apply
            pred.update(lo_t_a=np.nan, lo_t_b=np.nan, lo_ratio=np.nan)
    else:
        # §6.2 (heuristic): one transition at (τ/‖Σyx‖) ln(1/u0), ‖W(0)‖ = u0² = seed
        t = np.log(1.0 / np.sqrt(seed[0])) / np.linalg.norm(s.syx) / args.lr
        pred.update(lo_t_a=t, lo_t_b=t, lo_ratio=1.0)
    pop = late_fixed_points(*toy_stats(args.rho, args.ratio, w_star), _DIMS)
    pop_loss = np.array([p.loss for p in pop]) + 0.5 * args.noise ** 2
    pred.update(pop_wa_uni=pop[1].block(0)[0, 0], pop_m_loss_rel=pop_loss / pop_loss[0],
                pop_plateau_loss_rel=pop_loss[1] / pop_loss[0])
    if fusion == "late":
        try:
            pred["pop_ratio"] = time_ratio_toy(args.rho, args.ratio, w_star=w_star)
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
def arrays(sim, pred):
    """The numeric entries of ``sim`` and ``pred`` as one dict for ``.npz`` (prefixes sim_, pred_)."""
    out = {}
    for prefix, d in (("sim_", sim), ("pred_", pred)):
        for k, v in d.items():
            if not isinstance(v, str) and v is not None:
                out[prefix + k] = np.asarray(v)
    return out


def _f(x, fmt="{:.1f}"):
    return "not reached" if x is None or not np.isfinite(x) else fmt.format(x)


def summary(sim, pred, args, fusion, seconds):
    """Measured against predicted numbers of a two-layer run, as printed lines."""
    head = (f"{fusion} fusion, two-layer linear: r = {args.ratio:g}, rho = {args.rho:g}, n = {args.n}, "
            f"width {args.width}, init {args.init} {args.scale:g}, lr {args.lr:g}, "
            f"{int(sim['epochs'][-1])} epochs ({sim['path']} path)")
    rows = [("", "measured", "ODE (seed)", "leading ord.", "exact map")]
    for name, key, fmt in (("t_A [epochs]", "t_a", "{:.1f}"), ("t_B [epochs]", "t_b", "{:.1f}")):
        rows.append((name, _f(sim[key], fmt), _f(pred["ode_" + key], fmt), _f(pred["lo_" + key], fmt),
                     _f(pred["map_" + key], fmt)))
    map_ratio = pred["map_t_b"] / pred["map_t_a"]
    rows.append(("t_B/t_A", _f(sim["ratio"], "{:.3f}"), _f(pred["ode_ratio"], "{:.3f}"),
                 _f(pred["lo_ratio"], "{:.3f}"), _f(map_ratio, "{:.3f}")))
    lines = [head, f"  run {sim['message']}"]
    lines += ["  " + f"{r[0]:<14}" + "".join(f"{c:>14}" for c in r[1:]) for r in rows]
    if fusion == "late":
        lines.append(f"  population time ratio 1 + (r² − 1)/(1 − ρ²) (signed, THEORY §6.3): "
                     f"{_f(pred['pop_ratio'], '{:.3f}')}")
        lines.append(f"  plateau loss L/L(0) at epoch {_f(sim['plateau_epoch'], '{:.0f}')}: "
                     f"{_f(sim['plateau_loss_rel'], '{:.4f}')}   L(M_A)/L(M_0) = "
                     f"{pred['plateau_loss_rel']:.4f} (population {pred['pop_plateau_loss_rel']:.4f})")
        lines.append(f"  W_A on the plateau: {_f(sim['plateau_w_a'], '{:.4f}')}   Σyx_A/Σ_A = "
                     f"{pred['wa_uni']:.4f} (population 1 + ρ/r = {pred['pop_wa_uni']:.4f})")
    else:
        lines.append("  one transition, no plateau (early fusion has only M_0 and M_*)")
    w_star = pred["m_w"][3]
    lines.append(f"  final W_tot = ({sim['w_final'][0]:.5f}, {sim['w_final'][1]:.5f});  "
                 f"M_* = ({w_star[0]:.5f}, {w_star[1]:.5f})")
    lines.append(f"  exact Gram map against the simulation: max |ΔW_tot| = {map_error(sim, pred):.2e}")
    if args.weight_decay > 0:
        lines.append("  (the ODE ignores weight decay; the exact map includes it)")
    lines.append(f"  wall time {seconds:.2f} s")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figure
_FUSION_NAME = {"late": "Late fusion (L = 2, L_f = 2)", "early": "Early fusion (L = 2, L_f = 1)"}
_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii")


def plot_trajectories(ax, sim, pred, args, fusion, *, snaps=True):
    """Loss/L(0), W_A^tot, W_B^tot over epochs with the ODE dashed, the times and the levels."""
    ep = sim["epochs"]
    band = dict(linewidth=3.0, alpha=0.55)
    ax.plot(ep, sim["loss_rel"], color="0.35", label="loss / L(0)", **band)
    ax.plot(ep, sim["w_tot"][:, 0], color=COLORS["a"], label="$W_A^{tot}$", **band)
    ax.plot(ep, sim["w_tot"][:, 1], color=COLORS["b"], label="$W_B^{tot}$", **band)
    te = pred["epochs"]
    ax.plot(te, pred["ode_loss_rel"], **THEORY_STYLE, label="theory: rank-one ODE from this run's seed")
    ax.plot(te, pred["ode_w_tot"][:, 0], **THEORY_STYLE)
    ax.plot(te, pred["ode_w_tot"][:, 1], **THEORY_STYLE)
    vline = dict(linewidth=1.0, ymin=0.0, ymax=0.93)
    first = True
    for key, col in (("t_a", COLORS["a"]), ("t_b", COLORS["b"])):
        if np.isfinite(sim[key]):
            ax.axvline(sim[key], color=col, linestyle="-", label="measured $t_A$, $t_B$" if first else None,
                       **vline)
            first = False
    first = True
    for key in ("ode_t_a", "ode_t_b"):
        if np.isfinite(pred[key]):
            ax.axvline(pred[key], color="black", linestyle="--", label="ODE $t_A$, $t_B$" if first else None,
                       **vline)
            first = False
    x_end = max(ep[-1], te[-1])
    for level, text in ((pred["plateau_loss_rel"], r"$L(M_A)/L(M_0)$"),
                        (pred["wa_uni"], r"$W_A(M_A) = \Sigma_{yx,A}/\Sigma_A$")):
        ax.axhline(level, color="0.3", linestyle=":", linewidth=1.0)
        ax.text(x_end, level, f"{text} = {level:.3f}", ha="right", va="bottom", fontsize=7, color="0.2")
    if snaps and "snap_epochs" in sim:
        for k, e in enumerate(sim["snap_epochs"]):
            ax.annotate(f"({_ROMAN[k % len(_ROMAN)]})", (e, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, -2), textcoords="offset points", va="top", fontsize=8,
                        ha="right" if e > 0.97 * x_end else "left" if e < 0.03 * x_end else "center")
    ax.set_xlim(0, x_end)
    ax.set_ylim(-0.05, max(1.3, 1.1 * float(np.nanmax(sim["w_tot"])), 1.1 * pred["wa_uni"]))
    ax.set_xlabel("epoch  (τ = 1/lr = %g epochs)" % (1.0 / args.lr))
    ax.set_ylabel("loss / L(0),  end-to-end weight")
    ax.legend(loc="center right", fontsize=7, framealpha=0.9)


def plot_units(ax, units, branch, epoch, label, syx, w_star, fusion):
    """One snapshot of the hidden units' first-layer weights, with the Σyx and W* directions."""
    lim = 1.15 * float(np.max(np.abs(units))) or 1.0
    if fusion == "late":
        for k, name in ((0, "A"), (1, "B")):
            sel = branch == k
            ax.scatter(units[sel, 0], units[sel, 1], s=12, color=COLORS["ab"[k]], alpha=0.7,
                       label=f"{name}-branch units")
    else:
        ax.scatter(units[:, 0], units[:, 1], s=12, color=COLORS["early"], alpha=0.7, label="hidden units")
    for vec, style, name in ((syx, dict(color="black"), "Σyx"), (w_star, dict(color="0.55"), "W*")):
        d = np.asarray(vec, dtype=float) / np.linalg.norm(vec)
        ax.plot([-lim * d[0], lim * d[0]], [-lim * d[1], lim * d[1]], linestyle=":", linewidth=0.8, **style)
        ax.annotate("", xy=0.85 * lim * d, xytext=(0, 0),
                    arrowprops=dict(arrowstyle="->", linewidth=1.3, **style))
        ax.text(*(0.9 * lim * d), f" {name}", fontsize=8, **style)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.ticklabel_format(style="sci", scilimits=(-2, 3))
    ax.set_title(f"{label} epoch {epoch}", fontsize=9)
    ax.set_xlabel("first-layer weight on $x_A$")
    ax.set_ylabel("first-layer weight on $x_B$")


def snapshot_labels(sim, fusion):
    """Short descriptions of the snapshots (growth, plateau, transition), for the panel titles."""
    t_a, t_b = sim["t_a"], sim["t_b"]
    out = []
    for k, e in enumerate(sim["snap_epochs"]):
        tag = f"({_ROMAN[k % len(_ROMAN)]})"
        if np.isfinite(t_a) and e < 0.75 * t_a:
            tag += " growth,"
        elif fusion == "late" and np.isfinite(t_b) and t_a <= e < 0.9 * t_b:
            tag += " plateau,"
        elif np.isfinite(t_b) and e < 1.5 * t_b:
            tag += " transition,"
        out.append(tag)
    return out


def _zoom(ax, sim, pred):
    """Inset magnifying early fusion's single, short transition."""
    t_a, t_b = sim["t_a"], sim["t_b"]
    if not (np.isfinite(t_a) and np.isfinite(t_b)):
        return
    lo = 0.75 * t_a
    hi = t_b + 1.5 * (t_b - lo)
    ins = ax.inset_axes([0.3, 0.3, 0.33, 0.55])
    band = dict(linewidth=3.0, alpha=0.55)
    ins.plot(sim["epochs"], sim["loss_rel"], color="0.35", **band)
    ins.plot(sim["epochs"], sim["w_tot"][:, 0], color=COLORS["a"], **band)
    ins.plot(sim["epochs"], sim["w_tot"][:, 1], color=COLORS["b"], **band)
    for k in range(2):
        ins.plot(pred["epochs"], pred["ode_w_tot"][:, k], **THEORY_STYLE)
    ins.plot(pred["epochs"], pred["ode_loss_rel"], **THEORY_STYLE)
    for key, col in (("t_a", COLORS["a"]), ("t_b", COLORS["b"])):
        ins.axvline(sim[key], color=col, linewidth=1.0)
        if np.isfinite(pred["ode_" + key]):
            ins.axvline(pred["ode_" + key], color="black", linestyle="--", linewidth=1.0)
    ins.set_xlim(lo, hi)
    ins.set_ylim(-0.05, 1.1)
    ins.tick_params(labelsize=7)
    ins.set_title("zoom on the transition", fontsize=8)
    ax.indicate_inset_zoom(ins, edgecolor="0.5")


def trajectory_figure(sim, pred, args, fusion):
    """Figure 2 layout: trajectories on top, one unit scatter per snapshot below."""
    import matplotlib.pyplot as plt
    n_snap = len(sim["snap_epochs"])
    fig = plt.figure(figsize=(max(10.0, 3.4 * n_snap), 7.6), constrained_layout=True)
    axd = fig.subplot_mosaic([["traj"] * n_snap, [f"s{k}" for k in range(n_snap)]],
                             height_ratios=[1.25, 1.0])
    ax = axd["traj"]
    plot_trajectories(ax, sim, pred, args, fusion)
    if fusion == "early":
        _zoom(ax, sim, pred)
    ax.set_title(f"{_FUSION_NAME[fusion]}: toy data r = {args.ratio:g}, ρ = {args.rho:g}, n = {args.n}; "
                 f"width {args.width}, init {args.init} {args.scale:g}, lr {args.lr:g}\n{CONVENTION}",
                 fontsize=9)
    for k, (e, label) in enumerate(zip(sim["snap_epochs"], snapshot_labels(sim, fusion))):
        plot_units(axd[f"s{k}"], sim["units"][k], sim["unit_branch"], int(e), label, pred["syx"],
                   pred["w_star"], fusion)
    axd["s0"].legend(loc="lower left", fontsize=7)
    return fig


def main(module, argv=None):
    """The ``main`` of a figure-2 module (``module`` has NAME, FUSION, build_parser, run, predict, plot).

    Parse, simulate, predict, plot, save, print the summary; 0 on success, 1 (with a message
    on stderr) when the run diverged.
    """
    args = parse(module.build_parser(), argv, check_a_first)
    with Timer() as timer:
        sim = module.run(args)
        if sim["diverged"]:
            return fail(f"{module.FUSION} fusion run {sim['message']}")
        pred = module.predict(args)
        fig = module.plot(sim, pred, args)
        written = save(args.out, module.NAME, fig=fig, formats=args.formats, arrays=arrays(sim, pred),
                       config=args)
    announce(summary(sim, pred, args, module.FUSION, timer.seconds), written, fig, args)
    return 0
