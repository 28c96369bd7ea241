"""Figure 7: random-statistics sweep, the general time ratio of late fusion against simulation.

What the original's ``--sweep rand_sweep`` does: it draws data sets one after the other,
predicts each one's time ratio, redraws when the prediction lies outside [1, 20], trains
the others, and keeps drawing until ``--repeat`` runs have *converged* (final loss < 1e-3);
runs that did not converge are replaced by new draws. Every converged run is plotted,
simulated t_B/t_A against the prediction, with the y = x line.

Data (theory.md §3c): D = 20 inputs, A = the first 10 coordinates, B = the last 10;
Σ ~ InverseWishart(df = D + 2, scale = diag(2 I, I)), W* ~ U(−1, 1)^D, y = W* x (noiseless),
n = 8192 samples (:func:`linfusion.data.random_stats`). Two-layer late fusion, width 100,
init 'entry' 1e-9, lr 0.005, at most 20 000 epochs, stop at the first state whose loss is
< 1e-4.

The prediction (theory.md §6.3, heuristic for vector modalities)

    t_B/t_A = 1 + (‖Σ_yx,A‖ − s_B) / ‖Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB‖

with the statistics of ``--stats``:

- ``original`` (default; the original's ``lag_twolayer``): the *empirical* Σ_yx of the n
  samples with the *population* Σ_A and Σ_AB of the draw, s_B = ‖Σ_yx,B‖ (norm form);
- ``empirical``: every moment from the samples, signed form (theory.md §6.3);
- ``population``: every moment from the drawn Σ and W*, signed form.

The draws accepted and the x axis depend on it (one draw: 18.55 with ``original``, 17.32
all-empirical). A's plateau ‖Σ_yx,A Σ_A⁻¹‖, whose half is A's threshold, comes from the
same statistics (the original passes ``lag_twolayer``'s plateau to its ``time_half``).

Measurement (``--convention``, theory.md §7; see :mod:`sims._sweeps`): ``paper`` (default,
the original's read-out on ‖W_A^tot‖, ‖W_B^tot‖, and its keep rule on the loss before the
final state) or ``interp``.

Reproducible from ``--seed``, bit for bit on any number of workers: candidate k draws its
data from ``SeedSequence(seed, spawn_key=(k,))``; its initial weights from the sweep's
per-point seed. Candidates are trained in rounds through :func:`linfusion.sweep.run_sweep`
(cached, resumable, parallel), and the plotted runs are the first ``--draws`` converged
candidates in candidate order, exactly those the original's one-at-a-time loop would take.
``--max-attempts`` caps the candidates drawn (window rejections and trained runs).

From Python: ``rand_sweep.run(rand_sweep.Config.quick())``.
"""
from __future__ import annotations

import functools
import math
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from linfusion.architecture import FusionNet
from linfusion.data import random_stats
from linfusion.sweep import run_sweep
from theory.two_layer import time_ratio

from . import _style as S
from ._cli import entry_point
from ._config import choice, integer, option, real
from ._options import Descent, Init, Seeded, Width
from ._sweeps import USABLE, Measured, as_int, convention_note, readout, sweep_kwargs

NAME = "rand_sweep"
KIND = "sweep"
main = entry_point(NAME)
AXIS_MAX = 20.0     # the original's axes: 0-20
STATS = ("original", "empirical", "population")
STATS_TEXT = {"original": "the original's: empirical Σyx, population Σ_A, Σ_AB, norm form",
              "empirical": "empirical moments, signed form", "population": "population moments, signed form"}


@dataclass(frozen=True)
class Config(Measured, Seeded, Descent, Init, Width):
    """The random-statistics sweep of figure 7 (theory.md §3c, §6.3)."""

    QUICK = {"width": 20}

    draws: int = option(50, "converged runs to plot (the original's --repeat)", check=integer(lo=1),
                        group="sweep", quick=3)
    lo: float = option(1.0, "redraw when the predicted ratio is below lo", check=real(1.0), group="sweep")
    hi: float = option(20.0, "redraw when the predicted ratio is above hi", check=real(1.0), group="sweep")
    stats: str = option("original", "statistics of the prediction: original (empirical Σyx with population "
                        "Σ_A, Σ_AB, norm form, the original's lag_twolayer), empirical or population (signed "
                        "form)", choices=STATS, check=choice(*STATS), group="sweep")
    max_attempts: int | None = option(None, "give up after drawing this many candidates (rejected or trained)",
                                      check=integer(lo=1), group="sweep", none_means="20 × --draws")
    dim: int = option(20, "input dimension D (A: first half, B: second half)", check=integer(lo=2), group="data")
    n: int = option(8192, "samples per draw", check=integer(lo=2), group="data")
    lr: float = option(0.005, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True),
                       group="network and training")
    epochs: int = option(20000, "maximum number of epochs", check=integer(lo=1), group="network and training")

    def validate(self):
        super().validate()
        if self.dim % 2:
            raise ValueError(f"dim == {self.dim}, must be even (two halves, one per modality).")
        if self.hi < self.lo:
            raise ValueError(f"lo == {self.lo!r} and hi == {self.hi!r}: need lo <= hi.")


    @property
    def attempt_cap(self):
        """The most candidates drawn: ``max_attempts``, or 20 × ``draws`` when unset."""
        return self.max_attempts if self.max_attempts is not None else 20 * self.draws


# ---------------------------------------------------------------------- candidates
def candidate(seed, k, dim, n):
    """Candidate ``k``'s data set: the same arrays wherever it is regenerated.

    Drawn from ``SeedSequence(seed, spawn_key=(k,))``; the sweep's per-point seeds (initial
    weights) have 5-element spawn keys, so the two never overlap.
    """
    return random_stats(dim, n, rng=np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,))))


def statistics(ds, stats):
    """(Σ, Σ_yx, <y²>, form) of a draw for the prediction (see the module docstring)."""
    if stats == "population":
        syx = ds.w_star @ ds.sigma
        return ds.sigma, syx, float((syx @ ds.w_star.T).item()), "signed"
    mo = ds.moments()
    if stats == "empirical":
        return mo.sxx, mo.syx, mo.syy, "signed"
    return ds.sigma, mo.syx, mo.syy, "norm"


def prediction(ds, stats):
    """The predicted ratio (NaN when B would be learned first, or never) and A's plateau ‖Σyx_A Σ_A⁻¹‖."""
    sigma, syx, _, form = statistics(ds, stats)
    half = ds.in_dims[0]
    plateau = float(np.linalg.norm(np.linalg.solve(sigma[:half, :half], syx[:, :half].T)))
    try:
        return float(time_ratio(sigma, syx, ds.in_dims, form=form)), plateau
    except ValueError:
        return np.nan, plateau


def build_draw(config, rng):
    """Sweep build function: the late-fusion net and candidate ``config['draw']``'s data.

    The data come from the candidate's own seed, not from ``rng``: the candidate was screened
    on its predicted ratio before training and must be the same data here.
    """
    ds = candidate(config["draw_seed"], config["draw"], config["dim"], config["n"])
    return FusionNet.late(ds.in_dims, width=config["width"]), ds


def measure_draw(result, config, convention="paper", stats="original"):
    """t_A, t_B, t_B/t_A on ‖W_A^tot‖, ‖W_B^tot‖ and the keep-rule loss (runs in the workers).

    A's threshold: half of A's plateau ‖Σ_yx,A Σ_A⁻¹‖ with the prediction's statistics; B's:
    half of ‖W_B‖'s maximum ('paper') or of its norm at M_* ('interp').
    """
    ds = candidate(config["draw_seed"], config["draw"], config["dim"], config["n"])
    sigma, syx, _, _ = statistics(ds, stats)
    plateau = prediction(ds, stats)[1]
    half = ds.in_dims[0]
    wb_star = float(np.linalg.norm(np.linalg.solve(sigma, syx.T)[half:]))   # B's block of M_* = Σyx Σ⁻¹
    return readout(result, convention, wa_uni=plateau, wb_star=wb_star)


def point(cfg, k):
    """The sweep point of candidate ``k``."""
    return dict(draw=k, draw_seed=cfg.seed, dim=cfg.dim, n=cfg.n, width=cfg.width, lr=cfg.lr, epochs=cfg.epochs,
                tol=cfg.tol, init=cfg.init, scale=cfg.scale_value, weight_decay=cfg.weight_decay,
                record_every=cfg.record_every)


# ---------------------------------------------------------------------- run
def run(cfg, execution=None):
    """Draw, screen and train candidates until ``cfg.draws`` runs have converged (or the cap).

    Returns
    -------
    dict
        ``cand_draw``, ``cand_predicted`` (every candidate drawn, in order), per trained
        candidate ``draw``, ``predicted``, ``status``, ``t_a``, ``t_b``, ``time_ratio``,
        ``keep_loss``, ``final_loss``, ``final_epoch``, ``converged`` (the keep rule) and
        ``plotted`` (the first ``draws`` converged ones), ``rows`` (the sweep's rows),
        ``counts`` (``attempts``, ``rejected``, ``not_converged``, ``unusable``,
        ``unmeasured``, ``plotted``, ``unused``: sequential-equivalent, up to the last
        plotted candidate), ``capped`` (bool), ``n_cached``, ``n_computed``.
    """
    measure = functools.partial(measure_draw, convention=cfg.convention, stats=cfg.stats)
    kw = sweep_kwargs(execution, cfg.seed)
    cand_pred = []                  # predicted ratio of candidate k (NaN: B first or never)
    window = []                     # candidates inside [lo, hi], in order
    rows = {}                       # candidate -> sweep row
    n_cached = n_computed = 0

    def converged_in_order():
        out = []
        for k in window:
            if k not in rows:
                break
            if _converged(rows[k], cfg.drop_loss):
                out.append(k)
        return out

    while True:
        done = converged_in_order()
        pending = [k for k in window if k not in rows]
        if len(done) >= cfg.draws and not pending:
            break
        trained = [k for k in window if k in rows]
        rate = len(done) / len(trained) if trained else 1.0
        need = cfg.draws - len(done)
        want = min(4 * need + 8, math.ceil(need / max(rate, 0.25)))
        batch = list(pending)
        while len(batch) < want and len(cand_pred) < cfg.attempt_cap:
            k = len(cand_pred)
            p = prediction(candidate(cfg.seed, k, cfg.dim, cfg.n), cfg.stats)[0]
            cand_pred.append(p)
            if cfg.lo <= p <= cfg.hi:       # False for NaN
                window.append(k)
                batch.append(k)
        if not batch:
            break                           # the cap is reached
        res = run_sweep([point(cfg, k) for k in batch], build=build_draw, measure=measure, **kw)
        n_cached += res.n_cached
        n_computed += res.n_computed
        for k, row in zip(batch, res.table):
            rows[k] = row
    return _collect(cfg, cand_pred, window, rows, n_cached, n_computed)


def _converged(row, drop_loss):
    return row["status"] in USABLE and row["keep_loss"] < drop_loss


def _collect(cfg, cand_pred, window, rows, n_cached, n_computed):
    trained = [k for k in window if k in rows]
    plotted, last = [], None
    for k in trained:
        if len(plotted) < cfg.draws and _converged(rows[k], cfg.drop_loss):
            plotted.append(k)
            last = k
    capped = len(plotted) < cfg.draws
    horizon = len(cand_pred) if capped else last + 1      # candidates the original's loop would draw
    used = [k for k in trained if k < horizon]
    col = {name: np.array([rows[k][name] for k in trained], dtype=float)
           for name in ("t_a", "t_b", "time_ratio", "keep_loss", "final_loss", "final_epoch")}
    status = [rows[k]["status"] for k in trained]
    counts = dict(attempts=horizon, rejected=sum(1 for k in range(horizon) if k not in window),
                  trained=len(used), plotted=len(plotted),
                  not_converged=sum(1 for k in used if not _converged(rows[k], cfg.drop_loss)
                                    and rows[k]["status"] in USABLE),
                  unusable=sum(1 for k in used if rows[k]["status"] not in USABLE),
                  unmeasured=sum(1 for k in plotted if not np.isfinite(rows[k]["time_ratio"])),
                  unused=len(trained) - len(used))
    sim = dict(cand_draw=np.arange(len(cand_pred)), cand_predicted=np.array(cand_pred, dtype=float),
               draw=np.array(trained, dtype=int), predicted=np.array([cand_pred[k] for k in trained]),
               status=np.array(status, dtype=str), converged=np.array([_converged(rows[k], cfg.drop_loss)
                                                                       for k in trained], dtype=bool),
               plotted=np.isin(trained, plotted), counts=counts,
               capped=capped, rows=[rows[k] for k in trained], n_cached=n_cached, n_computed=n_computed, **col)
    if capped:
        warnings.warn(f"rand_sweep: only {len(plotted)} of {cfg.draws} runs converged within --max-attempts "
                      f"{cfg.attempt_cap} candidates ({counts['rejected']} rejected for the predicted ratio, "
                      f"{counts['not_converged']} did not converge); raise --max-attempts or --epochs.")
    return sim


# ---------------------------------------------------------------------- theory, summary, files
def predict(cfg, result):
    """The prediction is made per candidate in :func:`run` (it selects them); here: agreement."""
    return agreement(result)


def agreement(sim):
    """Pearson and Spearman correlations and relative errors over the plotted runs."""
    from scipy.stats import pearsonr, spearmanr

    sel = sim["plotted"] & np.isfinite(sim["time_ratio"])
    x, y = sim["predicted"][sel], sim["time_ratio"][sel]
    if x.size < 3:
        return dict(pearson=np.nan, spearman=np.nan, mean_rel_error=np.nan, mean_abs_rel_error=np.nan,
                    n=int(x.size))
    rel = y / x - 1.0
    return dict(pearson=float(pearsonr(x, y)[0]), spearman=float(spearmanr(x, y)[0]),
                mean_rel_error=float(rel.mean()), mean_abs_rel_error=float(np.abs(rel).mean()), n=int(x.size))


def _counts_lines(cfg, c):
    return [f"{c['plotted']} of {cfg.draws} runs converged and plotted"
            + (" (the cap on attempts was reached)" if c["plotted"] < cfg.draws else ""),
            f"{c['attempts']} draws tried: {c['rejected']} rejected (predicted ratio outside "
            f"[{cfg.lo:g}, {cfg.hi:g}] or B first), {c['trained']} trained",
            f"{c['not_converged']} did not converge (loss ≥ {cfg.drop_loss:g})"
            + (f", {c['unusable']} not usable (diverged or stalled)" if c["unusable"] else "")]


def summary(cfg, sim, st):
    """The plotted runs against their predictions; the draw counts; the correlation."""
    c = sim["counts"]
    lines = [f"random-statistics sweep, two-layer late fusion: D = {cfg.dim}, n = {cfg.n}, width {cfg.width}, "
             f"init {cfg.init} {cfg.scale_value:g}, lr {cfg.lr:g}, ≤ {cfg.epochs} epochs, stop at loss < {cfg.tol:g}",
             f"prediction: {cfg.stats} statistics ({STATS_TEXT[cfg.stats]})"]
    lines += _counts_lines(cfg, c)
    if c["unused"]:
        lines.append(f"({c['unused']} more candidates were trained in the last round but not needed)")
    lines += ["", "| draw | predicted | simulated | loss kept by the rule | outcome |", "|---|---|---|---|---|"]
    for i, k in enumerate(sim["draw"]):
        outcome = "plotted" if sim["plotted"][i] else ("not converged" if not sim["converged"][i] else "unused")
        if sim["status"][i] not in USABLE:
            outcome = sim["status"][i]
        lines.append(f"| {k} | {sim['predicted'][i]:.3f} | {sim['time_ratio'][i]:.3f} | {sim['keep_loss'][i]:.2e} "
                     f"| {outcome} |")
    lines += ["", f"over the {st['n']} plotted runs: Pearson r = {st['pearson']:.3f}, Spearman ρ = "
                  f"{st['spearman']:.3f}, mean (sim − theory)/theory = {100 * st['mean_rel_error']:+.1f} % "
                  f"(mean |.| {100 * st['mean_abs_rel_error']:.1f} %)",
              f"points {sim['n_cached']} from cache, {sim['n_computed']} computed",
              convention_note(cfg.convention)]
    if sim["counts"]["unmeasured"]:
        lines.append(f"{sim['counts']['unmeasured']} plotted run(s) without a measurable ratio (t_A = 0)")
    return "\n".join(lines)


def outputs(cfg, sim, st):
    """Arrays (.npz), one row per trained candidate (.csv), counts and agreement (.json)."""
    arrays = {k: v for k, v in sim.items() if k not in ("rows", "counts", "status")}
    arrays["status"] = sim["status"].astype(str)
    arrays.update({f"n_{k}": v for k, v in sim["counts"].items()})
    arrays.update({f"agreement_{k}": v for k, v in st.items()})
    table = []
    for i, row in enumerate(sim["rows"]):
        outcome = "plotted" if sim["plotted"][i] else ("not converged" if not sim["converged"][i] else "unused")
        table.append({"draw": int(sim["draw"][i]), "predicted_time_ratio": sim["predicted"][i],
                      "stats": cfg.stats, "outcome": outcome, "status": row["status"],
                      "t_a_epochs": sim["t_a"][i], "t_b_epochs": sim["t_b"][i], "time_ratio": sim["time_ratio"][i],
                      "keep_loss": sim["keep_loss"][i], "final_loss": sim["final_loss"][i],
                      "final_epoch": as_int(sim["final_epoch"][i]), "seed": int(row["seed"]), "dim": int(row["dim"]),
                      "n_samples": int(row["n"]), "width": int(row["width"]), "lr": float(row["lr"]),
                      "max_epochs": int(row["epochs"]), "tol": float(row["tol"]), "init": row["init"],
                      "init_scale": float(row["scale"]), "convention": cfg.convention, "cache_key": row["key"]})
    record = dict(counts=sim["counts"], capped=sim["capped"], agreement=st, stats=cfg.stats,
                  stats_text=STATS_TEXT[cfg.stats], convention=convention_note(cfg.convention),
                  n_cached=sim["n_cached"], n_computed=sim["n_computed"])
    return {"arrays": arrays, "table": table, "record": record}


_XLABEL = {"original": "predicted $t_B/t_A$ (the original's statistics:\n"
                       "empirical $\\Sigma_{yx}$, population $\\Sigma_A$, $\\Sigma_{AB}$, norm form)",
           "empirical": "predicted $t_B/t_A$\n(empirical statistics, signed form)",
           "population": "predicted $t_B/t_A$\n(population statistics, signed form)"}


def plot(cfg, sim, st):
    """Simulated against predicted t_B/t_A of every plotted run, with y = x; axes 0-20."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MultipleLocator

    sel = sim["plotted"] & np.isfinite(sim["time_ratio"])
    if not sel.any():
        return None
    fig, axes = S.figure(1, 1, width=5.4, height=3.4)
    ax = axes[0, 0]
    x, y = sim["predicted"][sel], sim["time_ratio"][sel]
    top = max(AXIS_MAX, cfg.hi)
    inside = y <= top
    color = S.COLORS["late"]
    marker = dict(linestyle="none", marker="o", markersize=4, color=color, alpha=0.8)
    ax.plot([0, top], [0, top], **S.theory_kw("black"), zorder=1)
    ax.plot(x[inside], y[inside], **marker, zorder=2)
    if (~inside).any():
        ax.plot(x[~inside], np.full((~inside).sum(), top), linestyle="none", marker="^", markersize=5, color=color,
                clip_on=False, zorder=3)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MultipleLocator(5 if top <= 40 else 10))
    ax.set_xlabel(_XLABEL[cfg.stats])
    ax.set_ylabel(r"simulated $t_B/t_A$")
    c = sim["counts"]
    blank = dict(linestyle="none", marker="none")
    handles = [Line2D([], [], **marker, label=f"simulation ({c['plotted']} runs)"),
               Line2D([], [], **S.theory_kw("black"), label="theory: y = x")]
    if (~inside).any():
        handles.append(Line2D([], [], linestyle="none", marker="^", markersize=5, color=color,
                              label=f"simulated > {top:g} (at the edge)"))
    lines = [f"Pearson r = {st['pearson']:.3f}", f"{c['attempts']} draws tried:",
             f"  {c['rejected']} predicted outside [{cfg.lo:g}, {cfg.hi:g}]",
             f"  {c['not_converged']} not converged (loss ≥ {cfg.drop_loss:g})"]
    if c["unusable"]:
        lines.append(f"  {c['unusable']} diverged or stalled")
    lines.append(f"  {c['plotted']} converged, plotted" + (f" (of {cfg.draws} asked)" if c["plotted"] < cfg.draws else ""))
    handles += [Line2D([], [], **blank, label=text) for text in lines]
    fig.legend(handles=handles, loc="outside right center", handlelength=1.5)
    S.title(fig, f"Late fusion on random statistics (D = {cfg.dim}): time ratio")
    return fig



if __name__ == "__main__":
    sys.exit(main())
