"""Figure 13: under- versus over-parameterised generalisation of two-layer early and late fusion.

Two-layer linear early and late fusion (width 100, per-entry init 1e-9, lr 0.04, 1200 epochs)
train on the "multi" data of theory.md §3b: D = 100 inputs, A = the first 50 coordinates
(variance 3, learned first), B = the last 50 (variance 1), W* = 0.1 everywhere, label noise
0.5, with n = 70 (over-parameterised, n < D) and n = 700 (under-parameterised) samples. One
data draw per n is shared by early and late fusion.

Plotted against epoch for each n: the generalisation error
E_g = ½ (W^tot − W*) Σ (W^tot − W*)ᵀ with the *population* Σ and W* (no label noise), the
training loss, and the norms ‖W_A^tot‖, ‖W_B^tot‖ of each network. Expected (theory.md §6.8):

- n = 700: early and late fusion end at the same E_g (the unique least-squares solution);
  late fusion has a long plateau near the unimodal fixed point M_A, whose E_g is
  ½ W_B* Σ_B W_B*ᵀ = 0.25 in the population limit (a little higher at finite n: the A-only fit
  on this draw, from :func:`theory.fixed_points.late_fixed_point` on the empirical moments).
- n = 70: late fusion first fits the data with A alone and then interpolates the rest with
  B; it ends with ‖W_A^tot‖ > ‖W_B^tot‖ (the truth has them equal), its E_g has two local
  minima, and both its best (early-stopping) and final E_g are worse than early fusion's.

Theory: the exact Gram-state map (:func:`theory.dynamics.gram_map`, theory.md §6.10) iterated
from each run's own initial weights at the run's learning rate reproduces the simulated
trajectory to rounding (dashed, in each run's colour, on the wide band of the simulation);
the balanced rank-one gradient flow from the run's effective seed (:func:`theory.dynamics.flow`,
dotted in the run's colour) is the lr → 0 picture (slightly early: discrete steps, §6.10). At n < D the empirical Σ is
singular (rank n); the theory takes it as it is: the maps and flows need no Σ⁻¹, and the fixed
points are the minimum-norm least-squares solutions (M_* = Σ_yx Σ⁺, the point early fusion
reaches; late fusion ends elsewhere on the affine set of interpolants).

Run ``python -m sims.generalization`` (paper scale, about 15 s). From Python:
``generalization.run(generalization.Config(n_values=(70,)))``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

import linfusion
import theory
from linfusion import FusionNet
from linfusion.analysis import generalization_error
from linfusion.architecture import default_scale
from linfusion.data import multi

from . import _style as S
from ._two_layer import layer_weights
from ._cli import entry_point
from ._config import choice, integer, integers, option, real
from ._options import Init, Seeded, Width

NAME = "generalization"
KIND = "run"
main = entry_point(NAME)
ARCHS = ("early", "late")
#: a local minimum of E_g counts when it is this fraction of the curve's range deep
PROMINENCE = 1e-3
_DATA = "data (multi, theory.md §3b)"
_TRAIN = "network and training"
_USABLE = ("completed", "converged")


@dataclass(frozen=True)
class Config(Seeded, Init, Width):
    """Two-layer linear early and late fusion on the "multi" data, one data draw per n."""

    QUICK = {"dim": 20, "n_values": (14, 140), "epochs": 3000, "width": 20}

    dim: int = option(100, "input dimension D (even; A = the first half)", check=integer(lo=2), group=_DATA)
    n_values: tuple[int, ...] = option((70, 700), "numbers of samples, comma separated (one fixed data draw each)",
                                       check=integers(lo=2), group=_DATA)
    noise: float = option(0.5, "label-noise standard deviation", check=real(0.0), group=_DATA)
    lr: float = option(0.04, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True), group=_TRAIN)
    epochs: int = option(1200, "number of epochs", check=integer(lo=1), group=_TRAIN)
    init: str = option("entry", "initialisation scheme: entry (N(0, scale²) per weight) or layer (Frobenius "
                       "norm per layer)", choices=("entry", "layer"), check=choice("entry", "layer"), group=_TRAIN)
    flow: bool = option(True, "also compute and draw the gradient-flow ODE (--no-flow: skip it)", group="figure")

    def validate(self):
        if self.dim % 2:
            raise ValueError(f"dim == {self.dim}, must be even (two halves, one per modality).")
        if len(set(self.n_values)) != len(self.n_values):
            raise ValueError(f"n_values == {self.n_values!r}, must be distinct.")


# ---------------------------------------------------------------------- shared set-up
def draws(cfg):
    """The data set and the initial weights of every run, all derived from ``cfg.seed``.

    Run and theory both call this, so the theory starts from exactly the simulated weights.

    Returns
    -------
    dict
        ``draws[n] = (dataset, {arch: (net, w0)})``; the data of size n come from
        ``SeedSequence([seed, n])``'s child 0, early and late initial weights from its
        children 1 and 2 (so adding an n does not change the others).
    """
    out = {}
    for n in cfg.n_values:
        seq_data, *seq_init = np.random.SeedSequence([cfg.seed, n]).spawn(1 + len(ARCHS))
        ds = multi(cfg.dim, n, cfg.noise, rng=seq_data)
        runs = {}
        for arch, seq in zip(ARCHS, seq_init):
            net = FusionNet(ds.in_dims, 1, cfg.width, 2, 1 if arch == "early" else 2)
            runs[arch] = (net, net.init(cfg.init, cfg.scale, np.random.default_rng(seq)))
        out[n] = (ds, runs)
    return out


def training_moments(ds):
    """Empirical (Σ, Σyx, <y²>) for the theory, and the rank of Σ.

    With n < D the empirical Σ has rank n < D. The theory accepts it unchanged (positive
    semi-definite): the Gram-state map and the flow need no Σ⁻¹, and fixed points and
    crossing thresholds are the minimum-norm least-squares solutions.
    """
    mo = ds.moments()
    return mo.sxx, mo.syx, mo.syy, int(np.linalg.matrix_rank(mo.sxx, hermitian=True))


def local_minima(eg):
    """Indices of the local minima of an E_g curve at least PROMINENCE of its range deep."""
    from scipy.signal import find_peaks
    eg = np.asarray(eg, dtype=float)
    if eg.size < 3 or not np.all(np.isfinite(eg)):
        return np.zeros(0, dtype=int)
    span = float(np.max(eg) - np.min(eg))
    idx, _ = find_peaks(-eg, prominence=PROMINENCE * span if span > 0 else 1.0)
    return idx


def _key(n, arch, what):
    return f"n{n}_{arch}_{what}"


def _usable(sim, n, arch):
    return str(sim[_key(n, arch, "status")]) in _USABLE


# ---------------------------------------------------------------------- experiment
def run(cfg, execution=None):
    """Train early and late fusion on one data draw per n (moment path, exact).

    Returns
    -------
    dict of arrays
        Per n and architecture (keys ``n{n}_{arch}_...``): ``epochs``, ``loss``, ``eg``,
        ``norm_a``, ``norm_b`` (‖W_A^tot‖, ‖W_B^tot‖ per epoch), ``w_tot`` (n_rec, D), ``status``
        and ``message``; ``n_values``.
    """
    sim = {"n_values": np.array(cfg.n_values)}
    for n, (ds, runs) in draws(cfg).items():
        for arch, (net, w0) in runs.items():
            res = linfusion.train(net, ds, lr=cfg.lr, epochs=cfg.epochs, w0=w0)
            sim[_key(n, arch, "epochs")] = res.epochs
            sim[_key(n, arch, "loss")] = res.loss
            sim[_key(n, arch, "eg")] = res.eg
            sim[_key(n, arch, "norm_a")] = np.linalg.norm(res.w_tot[0][:, 0, :], axis=1)
            sim[_key(n, arch, "norm_b")] = np.linalg.norm(res.w_tot[1][:, 0, :], axis=1)
            sim[_key(n, arch, "w_tot")] = res.w_tot_all[:, 0]
            sim[_key(n, arch, "status")] = np.array(res.status)
            sim[_key(n, arch, "message")] = np.array(res.message)
    return sim


def predict(cfg, result=None):
    """The exact Gram-state map and the flow ODE of every run, and the E_g of M_A.

    Returns
    -------
    dict of arrays
        ``eg_ma_pop`` (population M_A: ½ W_B* Σ_B W_B*ᵀ); per n ``n{n}_eg_ma`` (M_A of this
        draw's empirical moments, E_g with the population Σ), ``n{n}_loss_ma``,
        ``n{n}_rank`` (rank of the empirical Σ), ``n{n}_w_ma`` (W^tot at M_A); per n and architecture
        ``..._map_{loss,eg,norm_a,norm_b}`` (every epoch; NaN where the map diverges, as the
        run then does) and, with ``cfg.flow``, ``..._flow_eg``.
    """
    pred = {}
    half = cfg.dim // 2
    dims = (half, half)
    grid = np.arange(cfg.epochs + 1)
    for n, (ds, runs) in draws(cfg).items():
        sxx, syx, syy, rank = training_moments(ds)
        pred[f"n{n}_rank"] = rank
        m_a = theory.late_fixed_point(sxx, syx, syy, dims, learned=(0,))
        pred[f"n{n}_eg_ma"] = float(generalization_error(m_a.w_tot, ds.sigma, ds.w_star))
        pred[f"n{n}_loss_ma"] = m_a.loss
        pred[f"n{n}_w_ma"] = m_a.w_tot[0]
        for arch, (net, w0) in runs.items():
            w1, w2 = layer_weights(net, w0)
            common = dict(fusion=arch, sigma_pop=ds.sigma, w_star=ds.w_star)
            try:
                tr = theory.gram_map(sxx, syx, syy, dims, grid, cfg.lr, w1, w2, **common)
                got = dict(map_loss=tr.loss, map_eg=tr.e_g, map_norm_a=tr.w_norms[:, 0], map_norm_b=tr.w_norms[:, 1])
            except RuntimeError:      # the map diverges exactly when the run does; the run reports it
                got = {k: np.full(grid.size, np.nan) for k in ("map_loss", "map_eg", "map_norm_a", "map_norm_b")}
            pred.update({_key(n, arch, k): v for k, v in got.items()})
            if cfg.flow:
                fl = theory.flow(sxx, syx, syy, dims, grid.astype(float), cfg.lr, w1=w1, w2=w2, **common)
                pred[_key(n, arch, "flow_eg")] = fl.e_g
        sigma_pop, w_star = ds.sigma, ds.w_star          # the same population for every n
    syx_pop = w_star @ sigma_pop
    syy_pop = float(np.sum(syx_pop * w_star)) + cfg.noise ** 2
    m_a_pop = theory.late_fixed_point(sigma_pop, syx_pop, syy_pop, dims, learned=(0,))
    pred["eg_ma_pop"] = float(generalization_error(m_a_pop.w_tot, sigma_pop, w_star))
    return pred


def table(cfg, sim, pred):
    """One row per run: final and best E_g (simulation, map, flow), minima and norms.

    A run that is not usable keeps its row, with its status and NaN measurements.
    """
    rows = []
    for n in cfg.n_values:
        for arch in ARCHS:
            ep, eg = sim[_key(n, arch, "epochs")], sim[_key(n, arch, "eg")]
            row = dict(n=n, arch=arch, status=str(sim[_key(n, arch, "status")]), eg_ma=float(pred[f"n{n}_eg_ma"]))
            if not _usable(sim, n, arch):
                rows.append(row)
                continue
            best = int(np.argmin(eg))
            row.update(final_eg=float(eg[-1]), best_eg=float(eg[best]), best_epoch=int(ep[best]),
                       n_local_minima=int(local_minima(eg).size),
                       final_norm_a=float(sim[_key(n, arch, "norm_a")][-1]),
                       final_norm_b=float(sim[_key(n, arch, "norm_b")][-1]),
                       final_loss=float(sim[_key(n, arch, "loss")][-1]))
            # closest approach to M_A: where the unimodal phase sits, and its E_g
            w_ma = pred[f"n{n}_w_ma"]
            dist = np.linalg.norm(sim[_key(n, arch, "w_tot")] - w_ma, axis=1) / np.linalg.norm(w_ma)
            near = int(np.argmin(dist))
            row.update(near_ma_epoch=int(ep[near]), near_ma_rel_dist=float(dist[near]),
                       near_ma_eg=float(eg[near]))
            m = pred[_key(n, arch, "map_eg")]
            row.update(map_final_eg=float(m[-1]), map_best_eg=float(np.min(m)), map_best_epoch=int(np.argmin(m)),
                       map_max_dev_eg=float(np.max(np.abs(m[ep.astype(int)] - eg))))
            f = pred.get(_key(n, arch, "flow_eg"))
            if f is not None:
                row.update(flow_best_eg=float(np.min(f)), flow_best_epoch=int(np.argmin(f)))
            rows.append(row)
    return rows


def checks(rows, cfg):
    """The expected facts of theory.md §6.8 as (statement, holds) pairs, for the n's given."""
    by = {(r["n"], r["arch"]): r for r in rows}
    out = []
    for n in cfg.n_values:
        e, l = by[(n, "early")], by[(n, "late")]
        if e["status"] not in _USABLE or l["status"] not in _USABLE:
            continue
        if n > cfg.dim:
            rel = abs(e["final_eg"] - l["final_eg"]) / e["final_eg"]
            out.append((f"n={n} > D: same final E_g early vs late (rel. diff {rel:.1e} < 1e-2)", rel < 1e-2))
        else:
            out.append((f"n={n} < D: late ends with |W_A| > |W_B| ({l['final_norm_a']:.3f} > "
                        f"{l['final_norm_b']:.3f})", l["final_norm_a"] > l["final_norm_b"]))
            out.append((f"n={n} < D: late best E_g worse than early ({l['best_eg']:.4f} > {e['best_eg']:.4f})",
                        l["best_eg"] > e["best_eg"]))
            out.append((f"n={n} < D: late final E_g worse than early ({l['final_eg']:.4f} > "
                        f"{e['final_eg']:.4f})", l["final_eg"] > e["final_eg"]))
            out.append((f"n={n} < D: late E_g has two local minima (found {l['n_local_minima']})",
                        l["n_local_minima"] >= 2))
    return out


# ---------------------------------------------------------------------- figure
_FLOW = dict(linestyle=":", linewidth=1.2)
_POP, _DRAW = (0, (1, 3)), (0, (5, 2, 1, 2))


def _legend_handles(cfg):
    from matplotlib.lines import Line2D

    grey = "0.35"
    return [Line2D([], [], label="early fusion", **S.sim_kw(S.COLORS["early"])),
            Line2D([], [], label="late fusion", **S.sim_kw(S.COLORS["late"])),
            Line2D([], [], label=r"$\|W_A^{\rm tot}\|$", **S.sim_kw(S.COLORS["a"])),
            Line2D([], [], label=r"$\|W_B^{\rm tot}\|$", **S.sim_kw(S.COLORS["b"])),
            Line2D([], [], label="simulation: wide band", **S.sim_kw(grey)),
            Line2D([], [], label="exact map at lr: dashed", **S.theory_kw(grey))]     \
        + ([Line2D([], [], label="gradient flow (lr → 0):\ndotted", color=grey, **_FLOW)] if cfg.flow else []) \
        + [Line2D([], [], label="population:\n" + r"$E_g(M_A)$; $\|W_A^*\| = \|W_B^*\|$", color=S.COLORS["level"],
                  linestyle=_POP),
           Line2D([], [], label=r"$E_g(M_A)$, this draw", color=S.COLORS["level"], linestyle=_DRAW),
           Line2D([], [], label="best (early stopping)", marker="*", color="white", markeredgecolor="black",
                  markersize=9, linestyle="none"),
           Line2D([], [], label="local minima", marker="o", markerfacecolor="none", markeredgecolor="black",
                  linestyle="none")]


def _eg_panel(ax, sim, pred, n):
    for arch in ARCHS:
        color = S.COLORS[arch]
        ep, eg = sim[_key(n, arch, "epochs")], sim[_key(n, arch, "eg")]
        ax.plot(ep, eg, **S.sim_kw(color))
        lm = local_minima(eg)
        ax.plot(ep[lm], eg[lm], "o", markerfacecolor="none", markeredgecolor=color, markersize=6, zorder=4)
        best = int(np.argmin(eg))
        ax.plot(ep[best], eg[best], "*", color=color, markeredgecolor="black", markersize=10, zorder=5)
        m = pred[_key(n, arch, "map_eg")]
        ax.plot(np.arange(len(m)), m, **S.theory_kw(color))
        if _key(n, arch, "flow_eg") in pred:
            f = pred[_key(n, arch, "flow_eg")]
            ax.plot(np.arange(len(f)), f, color=color, **_FLOW)
    ax.axhline(pred["eg_ma_pop"], color=S.COLORS["level"], linestyle=_POP, linewidth=1.0)
    ax.axhline(pred[f"n{n}_eg_ma"], color=S.COLORS["level"], linestyle=_DRAW, linewidth=1.0)
    ax.set_yscale("log")
    ax.set_ylabel(r"$E_g$")


def plot(cfg, result, prediction):
    """E_g, training loss and the modality norms against epoch, one column per n."""
    sim, pred = result, prediction
    if not all(_usable(sim, n, a) for n in cfg.n_values for a in ARCHS):
        return None
    n_values = list(cfg.n_values)
    fig, axes = S.figure(4, len(n_values), width=3.2, height=1.75, sharex=True)
    w_norm = 0.1 * np.sqrt(cfg.dim // 2)         # ‖W_A*‖ = ‖W_B*‖
    for j, n in enumerate(n_values):
        ax_eg, ax_loss, ax_early, ax_late = axes[:, j]
        regime = "over-param." if n < cfg.dim else "under-param."
        ax_eg.set_title(f"n = {n} {'<' if n < cfg.dim else '≥'} D = {cfg.dim}: {regime}")
        _eg_panel(ax_eg, sim, pred, n)
        for arch in ARCHS:
            color = S.COLORS[arch]
            ep = sim[_key(n, arch, "epochs")]
            ax_loss.plot(ep, sim[_key(n, arch, "loss")], **S.sim_kw(color))
            m = pred[_key(n, arch, "map_loss")]
            ax_loss.plot(np.arange(len(m)), m, **S.theory_kw(color))
            ax_norm = ax_early if arch == "early" else ax_late
            for key, what in (("a", "norm_a"), ("b", "norm_b")):
                ax_norm.plot(ep, sim[_key(n, arch, what)], **S.sim_kw(S.COLORS[key]))
                m = pred[_key(n, arch, "map_" + what)]
                ax_norm.plot(np.arange(len(m)), m, **S.theory_kw(S.COLORS[key]))
            ax_norm.axhline(w_norm, color=S.COLORS["level"], linestyle=_POP, linewidth=1.0)
            ax_norm.set_ylabel(f"{arch}: " + r"$\|W^{\rm tot}\|$")
        ax_loss.set_yscale("log")
        top = max(float(np.max(sim[_key(n, a, "loss")])) for a in ARCHS)
        ax_loss.set_ylim(max(ax_loss.get_ylim()[0], 1e-12 * top), None)   # rounding-level tails add nothing
        ax_loss.set_ylabel("training loss")
        ax_late.set_xlabel("epoch")
        ax_late.set_xlim(0, cfg.epochs)
    fig.legend(handles=_legend_handles(cfg), loc="outside right center")
    S.title(fig, f"Generalisation of two-layer early and late fusion, D = {cfg.dim}")
    return fig


# ---------------------------------------------------------------------- outputs
def outputs(cfg, result, prediction):
    """Arrays (``sim_*``, ``pred_*``), the table (one row per run) and the record."""
    rows = table(cfg, result, prediction)
    arrays = {**{f"sim_{k}": v for k, v in result.items()}, **{f"pred_{k}": v for k, v in prediction.items()}}
    record = {"runs": rows, "eg_ma_pop": prediction["eg_ma_pop"],
              "checks": [dict(statement=t, holds=bool(ok)) for t, ok in checks(rows, cfg)],
              "e_g": "½ (W_tot − W*) Σ (W_tot − W*)ᵀ with the population Σ and W* (no label noise)"}
    return {"arrays": arrays, "table": rows, "record": record}


def summary(cfg, result, prediction):
    """The printed summary: a table per run, M_A levels, the expected facts."""
    sim, pred = result, prediction
    rows = table(cfg, sim, pred)
    scale = cfg.scale if cfg.scale is not None else default_scale(cfg.init)
    lines = [f"{NAME}: D = {cfg.dim}, noise {cfg.noise:g}, width {cfg.width}, init {cfg.init} "
             f"{scale:g}, lr {cfg.lr:g}, {cfg.epochs} epochs, seed {cfg.seed}",
             f"  {'n':>5} {'arch':>5} | {'final E_g':>9} {'map':>9} | {'best E_g':>9} {'epoch':>5} "
             f"{'map ep':>6} {'flow ep':>7} | {'#min':>4} | {'|W_A|':>6} {'|W_B|':>6} | {'loss':>8}"]
    bad = []
    for r in rows:
        if r["status"] not in _USABLE:
            bad.append(r)
            lines.append(f"  {r['n']:>5} {r['arch']:>5} | {r['status']}: {sim[_key(r['n'], r['arch'], 'message')]}")
            continue
        flow_ep = f"{r['flow_best_epoch']:7d}" if "flow_best_epoch" in r else f"{'-':>7}"
        lines.append(f"  {r['n']:>5} {r['arch']:>5} | {r['final_eg']:9.4f} {r['map_final_eg']:9.4f} | "
                     f"{r['best_eg']:9.4f} {r['best_epoch']:5d} {r['map_best_epoch']:6d} "
                     f"{flow_ep} | {r['n_local_minima']:4d} | "
                     f"{r['final_norm_a']:6.3f} {r['final_norm_b']:6.3f} | {r['final_loss']:8.2e}")
    if bad:
        lines.append(f"  {len(bad)} of {len(rows)} runs not usable ({', '.join(sorted({r['status'] for r in bad}))}): "
                     "no figure")
        return "\n".join(lines)
    dev = max(r["map_max_dev_eg"] for r in rows)
    lines.append(f"  exact map vs simulation: max |ΔE_g| = {dev:.1e} over all runs and epochs")
    for r in rows:
        if r["arch"] == "late":
            lines.append(f"  n={r['n']} late fusion's closest approach to M_A (epoch {r['near_ma_epoch']}, "
                         f"|W - W_MA|/|W_MA| = {r['near_ma_rel_dist']:.3f}): E_g {r['near_ma_eg']:.4f} "
                         f"vs E_g(M_A) {r['eg_ma']:.4f}")
    lines.append(f"  E_g at M_A: population {pred['eg_ma_pop']:.4f}; this draw: "
                 + ", ".join(f"n={n}: {pred[f'n{n}_eg_ma']:.4f}"
                             + (f" (Σ of rank {pred[f'n{n}_rank']} < D)" if pred[f"n{n}_rank"] < cfg.dim else "")
                             for n in cfg.n_values))
    for text, ok in checks(rows, cfg):
        lines.append(f"  [{'yes' if ok else 'NO '}] {text}")
    lines.append("  E_g = ½ (W_tot − W*) Σ (W_tot − W*)ᵀ with the population Σ and W* (no label noise)")
    return "\n".join(lines)



if __name__ == "__main__":
    sys.exit(main())
