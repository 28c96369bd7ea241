"""Figure 16 (gallery): the mitigation lab, each remedy against unimodal bias over its strength.

theory.md §11, §10 item 16. Toy data (theory.md §3a: r = σ_A/σ_B, ρ over a grid, n samples,
y = x_A + x_B) and two networks trained by full-batch gradient descent on the moment path
(:mod:`linfusion.mitigation`): two-layer late fusion (per-entry init, the paper's) and deep
late fusion (L = 4, L_f = 4, balanced start). Four remedies, each over its strength, every run
of one ρ from the same initial weights:

- **rates**: every layer of B's branch learns at c·lr (theory.md §11.1);
- **ogm**: OGM-GE modulation of strength α (regression scores, theory.md §11.2);
- **dropout**: expected dropout of modality A with probability p (theory.md §11.3);
- **aux**: unimodal auxiliary losses of weight λ on both branches (theory.md §11.4).

Measured per run: t_A, t_B (first upward crossing of half A's unimodal weight and half B's weight at
M_*, both of the moments the run trains on, theory.md §7.1), t_B/t_A, the misattribution on the
plateau (§6.4) and the final generalisation error E_g (population Σ and W*). Predicted: the exact
map from each run's own initial weights (:func:`theory.predict` with the run's ``lr_scales`` /
``ogm_alpha``, on its modified moments for dropout and auxiliary losses; the chain map for the deep
net, which has no OGM map) and the leading-order closed forms where they exist
(:func:`theory.mitigation.time_ratio_lrs`, :func:`theory.time_ratio` and
:func:`theory.deep_time_ratio_vector` on the modified moments, :func:`theory.mitigation.auxiliary_schedule`).
On the multi data of theory.md §3b (D = 100, n = 70 < D) every remedy is also applied to two-layer late
fusion and its final E_g compared with early fusion's (the generalisation deficit of late fusion,
§6.8), simulation against the exact map. The summary lists, per network, ρ and remedy, the smallest strength that brings t_B/t_A to
``--removed-below`` or less (the unimodal phase removed) and what it costs (t_A against no remedy,
final E_g).

Run ``python -m sims.mitigation``; ``--quick`` for two ρ, three strengths, small widths.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from linfusion import FusionNet, Mitigation, train_many
from linfusion.analysis import crossing_time, generalization_error, measured_misattribution, targets
from linfusion.architecture import default_scale
from linfusion.data import multi, toy
from theory import deep_time_ratio_vector, time_ratio
from theory.prediction import predict as exact_map
from theory import mitigation as TM

from . import _style as S
from ._cli import entry_point
from ._config import integer, option, real, reals
from ._options import Seeded, Width

NAME = "mitigation"
KIND = "run"
main = entry_point(NAME)

_DATA, _TRAIN, _LAB = "data", "network and training", "remedies"
REMEDIES = ("rates", "ogm", "dropout", "aux")
NETS = ("two-layer", "deep")
_XLABEL = {"rates": r"rate factor $c$ of B's branch", "ogm": r"OGM-GE strength $\alpha$",
           "dropout": r"dropout probability $p_A$", "aux": r"auxiliary weight $\lambda$"}
_TITLE = {"rates": "per-block rates", "ogm": "OGM-GE", "dropout": "expected dropout of A", "aux": "auxiliary losses"}


@dataclass(frozen=True)
class Config(Seeded, Width):
    """Each remedy over its strength, toy data, two-layer and deep late fusion (theory.md §11)."""

    ratio: float = option(2.0, "r = σ_A/σ_B (> 0)", check=real(0.0, lo_open=True), group=_DATA)
    rhos: tuple = option((-0.25, 0.0, 0.25, 0.5), "correlations ρ in (-1, 1)",
                         check=reals(-1.0, 1.0, lo_open=True, hi_open=True), quick=(0.0, 0.5), group=_DATA)
    n: int = option(8192, "number of samples of each data set", check=integer(lo=16), quick=2048, group=_DATA)
    lr: float = option(0.04, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True), group=_TRAIN)
    epochs: int = option(8000, "epochs of every run", check=integer(lo=10), quick=4000, group=_TRAIN)
    scale: float | None = option(None, "per-entry init scale of the two-layer nets (> 0)",
                                 check=real(0.0, lo_open=True), group=_TRAIN, none_means="the library's: 1e-9")
    depth: int = option(4, "depth L of the deep nets (fused at layer L: late fusion)", check=integer(lo=3, hi=8),
                        group=_TRAIN)
    deep_width: int = option(50, "hidden width of the deep nets", check=integer(lo=1), quick=10, group=_TRAIN)
    deep_scale: float | None = option(None, "balanced init scale of the deep nets, in (0, 1)",
                                      check=real(0.0, 1.0, lo_open=True, hi_open=True), group=_TRAIN,
                                      none_means="the library's: 0.1")
    rates: tuple = option((1.0, 1.5, 2.0, 3.0, 4.0, 6.0), "rate factors c of B's branch (every layer)",
                          check=reals(0.0, lo_open=True), quick=(1.0, 2.0, 4.0), group=_LAB)
    ogm: tuple = option((0.0, 0.05, 0.1, 0.2, 0.5, 1.0), "OGM-GE strengths α", check=reals(0.0),
                        quick=(0.0, 0.1, 0.5), group=_LAB)
    dropout: tuple = option((0.0, 0.2, 0.4, 0.6, 0.8), "dropout probabilities p_A of modality A",
                            check=reals(0.0, 1.0, hi_open=True), quick=(0.0, 0.4, 0.8), group=_LAB)
    rescale: bool = option(True, "rescale kept inputs by 1/(1 - p) (inverted dropout)", group=_LAB)
    aux: tuple = option((0.0, 0.5, 1.0, 1.5, 2.0), "auxiliary-loss weights λ (above ~3 the deep net at lr 0.04 "
                        "oscillates at the edge of stability)", check=reals(0.0),
                        quick=(0.0, 0.5, 1.5), group=_LAB)
    multi_n: int = option(70, "samples of the multi data (D = 100, theory.md §3b) for the generalisation deficit of "
                          "late fusion, two-layer late against early fusion (0: skip)", check=integer(lo=0),
                          group=_DATA)
    multi_epochs: int = option(1200, "epochs of the multi-data runs", check=integer(lo=10), quick=600,
                               group=_TRAIN)
    removed_below: float = option(1.1, "t_B/t_A at or below which the unimodal phase counts as removed",
                                  check=real(1.0), group=_LAB)

    QUICK = {"width": 20}

    def validate(self):
        u0 = (self.scale if self.scale is not None else default_scale("entry")) * math.sqrt(self.width / 2)
        if not u0 < 1:
            raise ValueError(f"scale == {self.scale!r} with width {self.width} gives u0 = scale·√(width/2) = "
                             f"{u0:.3g}, must be < 1 (a small init).")


# --------------------------------------------------------------------------- runs
def _mitigation(remedy, s, depth, rescale):
    if remedy == "rates":
        return Mitigation(lr_scales={f"W{layer}_1": s for layer in range(1, depth + 1)})
    if remedy == "ogm":
        return Mitigation(ogm_alpha=s)
    if remedy == "dropout":
        return Mitigation(dropout=(s, 0.0), dropout_rescale=rescale)
    return Mitigation(aux_weight=s)


def _closed(kind, remedy, s, mo, cfg, u0):
    """Leading-order t_B/t_A (NaN where there is no closed form)."""
    dims = (1, 1)
    try:
        if remedy == "rates":
            return TM.time_ratio_lrs(mo.sxx, mo.syx, dims, {"W1_1": s, "W2_1": s}) if kind == "two-layer" else np.nan
        if remedy == "ogm":
            return np.nan
        if remedy == "dropout":
            sig, syx, _ = TM.dropout_moments(mo.sxx, mo.syx, mo.syy, dims, (s, 0.0), cfg.rescale)
        else:
            if kind == "two-layer":
                t = TM.auxiliary_schedule(mo.sxx, mo.syx, mo.syy, dims, s, u0).t_tau
                return float(t[1] / t[0])
            sig, syx, _ = TM.auxiliary_moments(mo.sxx, mo.syx, mo.syy, dims, s)
        if kind == "two-layer":
            return time_ratio(sig, syx, dims)
        return deep_time_ratio_vector(cfg.depth, cfg.depth, sig, syx, dims, u0)
    except ValueError:          # statistics outside a closed form's range (e.g. anti-parallel B)
        return np.nan


def _plateau_misattribution(ep, w_a, t_a, t_b, removed_below):
    """theory.md §6.4's misattribution, NaN without a unimodal phase (t_B/t_A <= removed_below, or B first)."""
    if not (np.isfinite(t_a) and np.isfinite(t_b)) or t_b <= removed_below * t_a:
        return np.nan
    return measured_misattribution(ep, w_a, t_a, t_b)


def _measure(run, mit, data, removed_below):
    """Simulated and exact-map numbers of one run (a dict; NaN where undefined)."""
    nan, sigma, w_star = np.nan, data.sigma, data.w_star
    out = dict(status=run.status, t_a=nan, t_b=nan, t_a_map=nan, t_b_map=nan, mis=nan, mis_map=nan,
               eg=nan, eg_map=nan, eg_fixed=nan, w=None, w_map=None)
    mo = run.moments
    wa_uni, wb_star = targets(mo, (1, 1))
    thr = (0.5 * float(np.ravel(wa_uni)[0]), 0.5 * float(np.ravel(wb_star)[0]))
    m_star = np.linalg.solve(mo.sxx, mo.syx.ravel())
    out["eg_fixed"] = float(generalization_error(m_star[None, :], sigma, w_star))
    if not run.usable:
        return out
    ep = np.asarray(run.epochs, dtype=float)
    w = run.w_tot_all[:, 0, :]
    out.update(w=w, eg=float(run.eg[-1]))
    out["t_a"], out["t_b"] = (crossing_time(ep, w[:, k], thr[k]) for k in range(2))
    out["mis"] = _plateau_misattribution(ep, w[:, 0], out["t_a"], out["t_b"], removed_below)
    if mit.ogm_alpha > 0.0 and run.net.depth > 2:
        return out                                   # no OGM map for the deep chain
    pred = exact_map(run, data)             # with the run's remedies (run.mitigation)
    wm = pred.w_tot_all[:, 0, :]
    out.update(w_map=wm, eg_map=float(generalization_error(wm[-1][None, :], sigma, w_star)))
    out["t_a_map"], out["t_b_map"] = (crossing_time(ep, wm[:, k], thr[k]) for k in range(2))
    out["mis_map"] = _plateau_misattribution(ep, wm[:, 0], out["t_a_map"], out["t_b_map"], removed_below)
    return out


def _strengths(cfg, remedy):
    return {"rates": cfg.rates, "ogm": cfg.ogm, "dropout": cfg.dropout, "aux": cfg.aux}[remedy]


def run(cfg, execution=None):
    """Train every (network, ρ, remedy, strength); a list of row dicts with their trajectories.

    Randomness: ``SeedSequence(seed)`` has one child per ρ, whose three children draw the data and
    the initial weights of the two networks (shared by every remedy and strength of that ρ).
    """
    rows = []
    scale = cfg.scale if cfg.scale is not None else default_scale("entry")
    deep_scale = cfg.deep_scale if cfg.deep_scale is not None else default_scale("balanced")
    for rho, ss in zip(cfg.rhos, np.random.SeedSequence(cfg.seed).spawn(len(cfg.rhos))):
        data_ss, *init_ss = ss.spawn(3)
        data = toy(rho=rho, ratio=cfg.ratio, n=cfg.n, rng=data_ss)
        mo = data.moments()
        for kind, iss in zip(NETS, init_ss):
            if kind == "two-layer":
                net, u0 = FusionNet.late(width=cfg.width), scale * math.sqrt(cfg.width / 2)
                w0 = net.init("entry", scale, iss)
            else:
                net, u0 = FusionNet((1, 1), 1, cfg.deep_width, cfg.depth, cfg.depth), deep_scale
                w0 = net.init("balanced", deep_scale, iss, align=np.linalg.solve(mo.sxx, mo.syx.ravel())[None, :])
            jobs = [(remedy, float(s)) for remedy in REMEDIES for s in _strengths(cfg, remedy)]
            mits = [_mitigation(remedy, s, net.depth, cfg.rescale) for remedy, s in jobs]
            results = train_many(net, data, lr=cfg.lr, epochs=cfg.epochs, w0=np.repeat(w0[None, :], len(jobs), 0),
                                 mitigation=mits, path="moment")
            for (remedy, s), mit, res in zip(jobs, mits, results):
                row = dict(net=kind, rho=float(rho), remedy=remedy, strength=s, message=res.message,
                           epochs=np.asarray(res.epochs, dtype=float),
                           ratio_closed=_closed(kind, remedy, s, mo, cfg, u0))
                row.update(_measure(res, mit, data, cfg.removed_below))
                rows.append(row)
    if cfg.multi_n:
        rows += _deficit(cfg, np.random.SeedSequence(cfg.seed).spawn(len(cfg.rhos) + 1)[-1], scale)
    return rows


def _deficit(cfg, ss, scale):
    """Final E_g of two-layer late fusion under every remedy against early fusion's, on the multi data."""
    data_ss, late_ss, early_ss = ss.spawn(3)
    data = multi(n=cfg.multi_n, rng=data_ss)
    dims = data.in_dims
    late, early = FusionNet.late(dims, width=cfg.width), FusionNet.early(dims, width=cfg.width)
    base = train_many(early, data, lr=cfg.lr, epochs=cfg.multi_epochs, w0=early.init("entry", scale, early_ss)[None, :])[0]
    eg_early = float(base.eg[-1]) if base.usable else np.nan
    jobs = [(remedy, float(s)) for remedy in REMEDIES for s in _strengths(cfg, remedy)]
    mits = [_mitigation(remedy, s, 2, cfg.rescale) for remedy, s in jobs]
    w0 = late.init("entry", scale, late_ss)
    results = train_many(late, data, lr=cfg.lr, epochs=cfg.multi_epochs, w0=np.repeat(w0[None, :], len(jobs), 0),
                         mitigation=mits, path="moment")
    rows = []
    for (remedy, s), res in zip(jobs, results):
        nan = np.nan
        row = dict(net="multi", rho=nan, remedy=remedy, strength=s, message=res.message, status=res.status,
                   epochs=np.asarray(res.epochs, dtype=float), ratio_closed=nan, t_a=nan, t_b=nan, t_a_map=nan,
                   t_b_map=nan, mis=nan, mis_map=nan, eg=nan, eg_map=nan, eg_fixed=nan, w=None, w_map=None,
                   eg_early=eg_early)
        if res.usable:
            row.update(eg=float(res.eg[-1]), eg_map=float(exact_map(res, data).eg[-1]))
        rows.append(row)
    return rows


def predict(cfg, result):
    """The predictions are made in :func:`run`, next to each network (they start from its own weights)."""
    return result


# --------------------------------------------------------------------------- tables
def _ratio(a, b):
    return float(b / a) if np.isfinite(a) and np.isfinite(b) and a > 0 else np.nan


def _summary_rows(cfg, rows):
    """Per (network, ρ, remedy): the smallest strength that removes the phase, and its cost."""
    out = []
    for kind in NETS:
        for rho in cfg.rhos:
            base = next((r for r in rows if r["net"] == kind and r["rho"] == rho and r["remedy"] == "rates"
                         and r["strength"] == 1.0), None)
            for remedy in REMEDIES:
                group = [r for r in rows if r["net"] == kind and r["rho"] == rho and r["remedy"] == remedy]
                group.sort(key=lambda r: r["strength"])
                zero = next((r for r in group if r["strength"] == (1.0 if remedy == "rates" else 0.0)), base)
                hit = next((r for r in group if _ratio(r["t_a"], r["t_b"]) <= cfg.removed_below), None)
                t_a0 = zero["t_a"] if zero else np.nan
                out.append({"net": kind, "rho": rho, "remedy": remedy,
                            "ratio_without": _ratio(zero["t_a"], zero["t_b"]) if zero else np.nan,
                            "strength_removing": hit["strength"] if hit else np.nan,
                            "ratio_at_that": _ratio(hit["t_a"], hit["t_b"]) if hit else np.nan,
                            "t_a_cost": (hit["t_a"] / t_a0) if hit and np.isfinite(t_a0) else np.nan,
                            "eg_final_at_that": hit["eg"] if hit else np.nan,
                            "eg_final_without": zero["eg"] if zero else np.nan,
                            "not_usable": sum(r["status"] not in ("completed", "converged") for r in group)})
    return out


def summary(cfg, rows, _pred):
    lines = [f"toy data r = {cfg.ratio:g}, n = {cfg.n}, lr {cfg.lr:g}, {cfg.epochs} epochs; two-layer late fusion "
             f"(width {cfg.width}, per-entry init) and deep late fusion (L = L_f = {cfg.depth}, width "
             f"{cfg.deep_width}, balanced start); every run of one ρ from the same initial weights",
             f"phase removed: simulated t_B/t_A <= {cfg.removed_below:g}; cost: t_A against no remedy, final E_g",
             f"{'net':<10}{'rho':>6} {'remedy':<8}{'t_B/t_A':>9}{'removed at':>12}{'t_B/t_A':>9}{'t_A cost':>10}"
             f"{'E_g':>10}{'E_g (none)':>12}"]
    for s in _summary_rows(cfg, rows):
        lines.append(f"{s['net']:<10}{s['rho']:>6.2f} {s['remedy']:<8}{s['ratio_without']:>9.3f}"
                     f"{s['strength_removing']:>12.3g}{s['ratio_at_that']:>9.3f}{s['t_a_cost']:>10.3f}"
                     f"{s['eg_final_at_that']:>10.2e}{s['eg_final_without']:>12.2e}")
    dev = [abs(_ratio(r["t_a"], r["t_b"]) / _ratio(r["t_a_map"], r["t_b_map"]) - 1) for r in rows
           if np.isfinite(_ratio(r["t_a_map"], r["t_b_map"])) and np.isfinite(_ratio(r["t_a"], r["t_b"]))]
    if dev:
        lines.append(f"exact map from each run's own weights: t_B/t_A within {max(dev):.2e} (relative) in "
                     f"{len(dev)} runs")
    for kind in NETS:
        for remedy in REMEDIES:
            closed = [abs(_ratio(r["t_a"], r["t_b"]) / r["ratio_closed"] - 1) for r in rows
                      if r["net"] == kind and r["remedy"] == remedy and np.isfinite(r["ratio_closed"])
                      and np.isfinite(_ratio(r["t_a"], r["t_b"]))]
            if closed:
                lines.append(f"closed form, {kind} {remedy} (leading order): t_B/t_A within {max(closed):.1%} in "
                             f"{len(closed)} runs, median {np.median(closed):.1%}")
    deficit = [r for r in rows if r["net"] == "multi" and np.isfinite(r["eg"])]
    if deficit:
        lines.append(f"multi data, n = {cfg.multi_n} (theory.md §6.8): final E_g of early fusion "
                     f"{deficit[0]['eg_early']:.4f}; late fusion's deficit E_g(late) - E_g(early):")
        for remedy in REMEDIES:
            group = sorted((r for r in deficit if r["remedy"] == remedy), key=lambda r: r["strength"])
            lines.append(f"  {remedy:<8}" + ", ".join(f"{r['strength']:g}: {r['eg'] - r['eg_early']:+.4f}"
                                                    for r in group))
        dev = max(abs(r["eg_map"] / r["eg"] - 1) for r in deficit)
        lines.append(f"  exact map from each run's own weights: final E_g within {dev:.1e} (relative)")
    bad = sum(r["status"] not in ("completed", "converged") for r in rows)
    if bad:
        lines.append(f"{bad} of {len(rows)} runs not usable (kept in the table, not drawn)")
    return "\n".join(lines)


def outputs(cfg, rows, _pred):
    table, arrays = [], {}
    for i, r in enumerate(rows):
        table.append({"net": r["net"], "rho": r["rho"], "remedy": r["remedy"], "strength": r["strength"],
                      "status": r["status"], "t_a_epochs": r["t_a"], "t_b_epochs": r["t_b"],
                      "ratio_sim": _ratio(r["t_a"], r["t_b"]), "t_a_map_epochs": r["t_a_map"],
                      "t_b_map_epochs": r["t_b_map"], "ratio_map": _ratio(r["t_a_map"], r["t_b_map"]),
                      "ratio_closed": r["ratio_closed"], "misattribution_sim": r["mis"],
                      "misattribution_map": r["mis_map"], "eg_final_sim": r["eg"], "eg_final_map": r["eg_map"],
                      "eg_fixed_point": r["eg_fixed"], "eg_early_fusion_final": r.get("eg_early", np.nan),
                      "phase_removed": bool(_ratio(r["t_a"], r["t_b"]) <= cfg.removed_below)})
        if r["w"] is not None:
            arrays[f"run{i}_w_tot"] = r["w"]
    arrays["epochs"] = rows[0]["epochs"] if rows else np.zeros(0)
    return {"arrays": arrays, "table": table, "record": {"summary": _summary_rows(cfg, rows)}}


# --------------------------------------------------------------------------- figure
_ROWS = (("ratio", r"$t_B/t_A$", "two-layer"), ("mis", "misattribution", "two-layer"),
         ("eg", r"final $E_g$", "two-layer"), ("ratio", r"$t_B/t_A$", "deep"),
         ("deficit", r"$E_g$(late) $-$ $E_g$(early)", "multi"))


def _values(r, what):
    if what == "ratio":
        return _ratio(r["t_a"], r["t_b"]), _ratio(r["t_a_map"], r["t_b_map"]), r["ratio_closed"]
    if what == "mis":
        return r["mis"], r["mis_map"], np.nan
    if what == "deficit":
        return r["eg"] - r["eg_early"], r["eg_map"] - r["eg_early"], np.nan
    return r["eg"], r["eg_map"], r["eg_fixed"]


def plot(cfg, rows, _pred):
    """Rows: two-layer t_B/t_A, misattribution, final E_g, deep t_B/t_A; columns: the four remedies."""
    usable = [r for r in rows if r["status"] in ("completed", "converged")]
    if not usable:
        return None
    from matplotlib.lines import Line2D

    colors = S.ordered_colors(len(cfg.rhos))
    panels = [p for p in _ROWS if any(r["net"] == p[2] for r in rows)]
    fig, axes = S.figure(len(panels), len(REMEDIES), width=2.6, height=1.9, sharex="col")
    for i, (what, ylabel, kind) in enumerate(panels):
        for j, remedy in enumerate(REMEDIES):
            ax = axes[i, j]
            series = [(None, S.COLORS["loss"])] if kind == "multi" else list(zip(cfg.rhos, colors))
            for rho, color in series:
                group = sorted((r for r in usable if r["net"] == kind and (rho is None or r["rho"] == rho)
                                and r["remedy"] == remedy), key=lambda r: r["strength"])
                if not group:
                    continue
                x = np.array([r["strength"] for r in group])
                sim, ex, cl = (np.array(v) for v in zip(*(_values(r, what) for r in group)))
                ax.plot(x, sim, linestyle="none", marker="o", markersize=6, color=color, alpha=0.6)
                ax.plot(x, ex, **S.theory_kw(color))
                if np.any(np.isfinite(cl)):
                    ax.plot(x, cl, linestyle="none", marker="v", markersize=5, markerfacecolor="none",
                            markeredgecolor=color)
            if what in ("ratio", "deficit"):
                ax.axhline(1.0 if what == "ratio" else 0.0, color=S.COLORS["level"], linewidth=0.6, linestyle=":",
                           zorder=0)
            if what == "eg":          # E_g spans 0 (rounding, ~1e-30) to O(1): linear below 1e-4
                top = max([1e-3] + [v for r in usable if r["net"] == kind and r["remedy"] == remedy
                                    for v in _values(r, what) if np.isfinite(v)])
                ax.set_yscale("symlog", linthresh=1e-4)
                ax.set_ylim(-1e-5, 2.0 * top)
            if i == 0:
                ax.set_title(_TITLE[remedy], fontsize="medium")
            ax.set_xlabel(_XLABEL[remedy] if i == len(panels) - 1 else "")
            where = f"multi, n = {cfg.multi_n}" if kind == "multi" else kind
            ax.set_ylabel(f"{ylabel}\n({where})" if j == 0 else "")
    handles = [Line2D([], [], linestyle="none", marker="o", color=c, alpha=0.6, label=f"ρ = {rho:g}")
               for rho, c in zip(cfg.rhos, colors)]
    if any(r["net"] == "multi" for r in rows):
        handles.append(Line2D([], [], linestyle="none", marker="o", color=S.COLORS["loss"], alpha=0.6,
                              label="multi data (D = 100)"))
    handles += [Line2D([], [], linestyle="none", marker="o", color="0.3", alpha=0.6, label="simulation"),
                Line2D([], [], label="exact map, own weights", **S.theory_kw("0.3")),
                Line2D([], [], linestyle="none", marker="v", markerfacecolor="none", markeredgecolor="0.3",
                       label="closed form ($t_B/t_A$: leading order;\n$E_g$: at the fixed point $M_*$)")]
    bad = len(rows) - len(usable)
    if bad:
        handles.append(Line2D([], [], linestyle="none", label=f"{bad} of {len(rows)} runs not usable"))
    fig.legend(handles=handles, loc="outside right center")
    S.title(fig, f"Mitigation lab: each remedy over its strength (r = {cfg.ratio:g})")
    return fig


if __name__ == "__main__":
    sys.exit(main())
