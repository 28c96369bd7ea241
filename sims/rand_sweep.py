"""Figure 7: random-statistics sweep, the general time ratio of late fusion against simulation.

Data (THEORY.md §3c): D = 20 inputs, A = the first 10 coordinates, B = the last 10;
Σ ~ InverseWishart(df = D + 2, scale = diag(2 I, I)), W* ~ U(−1, 1)^D, y = W* x (noiseless),
n = 8192 samples (:func:`linfusion.data.random_stats`). Candidate draws are made one after the
other from ``--seed`` and accepted, before any training, when their predicted ratio

    t_B/t_A = 1 + (‖Σ_yx,A‖ − ‖Σ_yx,B‖) / ‖Σ_yx,B − Σ_yx,A Σ_A⁻¹ Σ_AB‖      (§6.3, heuristic)

lies in [1, 20] (which also makes A the first-learned modality); the first 50 accepted draws
are trained (two-layer late fusion, width 100, init 'entry' 1e-9, lr 0.005, at most 20 000
epochs, stop at loss < 1e-4) and their measured t_B/t_A is plotted against the prediction,
with the y = x line. The vector formula assumes that B's phase-1 direction (Σ_yx,B) carries
over to its phase-2 direction (the residual), so the points form a cloud about the diagonal,
not a line.

Statistics (``--stats``): by default the prediction and the acceptance use the *empirical*
moments of the n samples each run trains on (THEORY.md §2: compare a run with theory on its
own statistics); ``population`` uses the drawn Σ and W* (they differ by ~2 % at n = 8192).

Measurement (THEORY.md §7), on ‖W_A^tot‖ and ‖W_B^tot‖: ``--convention paper`` (default) takes
the record closest to half of ‖Σ_yx,A Σ_A⁻¹‖ (A's plateau) and the record closest to half of
‖W_B^tot‖'s trajectory maximum; ``interp`` the interpolated first crossings of half of A's
plateau and half of ‖W_B‖ at M_*. Both thresholds come from the empirical moments of the run's
data. Runs whose final loss is ≥ 1e-3 (``--drop-loss``) are dropped and counted, as in the
paper: with lr 0.005, t_A is ~300–5000 epochs (median ~2000), so a budget of 20 000 epochs
cuts off the draws whose B is learned late: at seed 0, 13 of the 50 (predicted ratios
5.2–19.9), leaving Pearson r = 0.90. ``--epochs 60000`` keeps all 50 (r = 0.92) at about the
same cost, since the runs stop early at loss < 1e-4.

Each draw is one point of :func:`linfusion.sweep.run_sweep` (cached, resumable, parallel) with
the module-level :func:`build_draw`, which regenerates the accepted draw from its index; the
initial weights come from the sweep's own per-point seeds.
"""
from __future__ import annotations

import functools
import sys

import numpy as np

from linfusion import analysis
from linfusion.architecture import FusionNet
from linfusion.data import random_stats
from linfusion.sweep import run_sweep
from sims import _common as C
from sims.toy_sweep import add_sweep_args, convention_note, dropped_note, keep_mask, rename, sweep_options
from theory.fixed_points import late_fixed_point
from theory.two_layer import time_ratio

NAME = "rand_sweep"
#: --quick: a few draws on a narrower net (explicit options still win)
QUICK = dict(draws=3, width=20)
AXIS_MAX = 20.0     # the paper's axes: 0-20


# ---------------------------------------------------------------------- draws
def draw_data(seed, draw, dim, n):
    """Candidate ``draw`` of the data: the same arrays wherever it is regenerated.

    Candidates draw from child ``(draw,)`` of ``np.random.SeedSequence(seed)``; the sweep's
    per-point seeds (initial weights) have 5-element spawn keys, so the two never overlap.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(draw,)))
    return random_stats(dim, n, rng=rng)


def draw_stats(ds, stats):
    """(Σ, Σ_yx, <y²>) of a draw: the empirical moments of its samples, or the population's."""
    if stats == "empirical":
        mo = ds.moments()
        return mo.sxx, mo.syx, mo.syy
    syx = ds.w_star @ ds.sigma
    return ds.sigma, syx, float((syx @ ds.w_star.T).item())


def predicted_ratio(sigma, syx, dims):
    """The §6.3 time ratio, or NaN when B would be learned first or never."""
    try:
        return time_ratio(sigma, syx, dims)
    except ValueError:
        return np.nan


@functools.lru_cache(maxsize=8)
def select_draws(seed, count, dim, n, lo, hi, stats, max_candidates):
    """Draw candidates until ``count`` have a predicted ratio in [lo, hi].

    Returns
    -------
    draws : tuple of int
        Accepted candidate indices, in order.
    predicted : tuple of float
        Their predicted ratios (with ``stats``).
    other : tuple of float
        Their predicted ratios with the other statistics (population ↔ empirical).
    rejected : int
        Candidates drawn and rejected before the last accepted one.

    Raises
    ------
    ValueError
        Fewer than ``count`` accepted among ``max_candidates``.
    """
    dims = (dim // 2, dim // 2)
    other_stats = "population" if stats == "empirical" else "empirical"
    draws, predicted, other = [], [], []
    for k in range(max_candidates):
        ds = draw_data(seed, k, dim, n)
        ratio = predicted_ratio(*draw_stats(ds, stats)[:2], dims)
        if lo <= ratio <= hi:       # False for NaN (B first, or never learned)
            draws.append(k)
            predicted.append(ratio)
            other.append(predicted_ratio(*draw_stats(ds, other_stats)[:2], dims))
            if len(draws) == count:
                return tuple(draws), tuple(predicted), tuple(other), k + 1 - count
    raise ValueError(f"--max-candidates {max_candidates}: only {len(draws)} of {count} draws had a predicted "
                     f"ratio in [{lo:g}, {hi:g}]; raise --max-candidates or widen the range")


def build_draw(config, rng):
    """Sweep build function: the late-fusion net and the accepted draw named by ``config``.

    The data come from the draw's own seed (``draw_seed``, ``draw``), not from ``rng``: the
    draw was accepted on its predicted ratio before training, and must be the same data here.
    """
    ds = draw_data(config["draw_seed"], config["draw"], config["dim"], config["n"])
    return FusionNet.late(ds.in_dims, width=config["width"]), ds


def measure_draw(result, config, convention="paper"):
    """t_A, t_B, t_B/t_A on ‖W_A^tot‖, ‖W_B^tot‖ with thresholds from the run's own moments."""
    ds = draw_data(config["draw_seed"], config["draw"], config["dim"], config["n"])
    sigma, syx, syy = draw_stats(ds, "empirical")
    dims = ds.in_dims
    wa_uni = float(np.linalg.norm(late_fixed_point(sigma, syx, syy, dims, (0,)).block(0)))
    wb_star = float(np.linalg.norm(late_fixed_point(sigma, syx, syy, dims, (0, 1)).block(1)))
    return rename(analysis.measure(result, wa_uni=wa_uni, wb_star=wb_star, convention=convention))


# ---------------------------------------------------------------------- options
def build_parser():
    p = C.base_parser(NAME, __doc__.splitlines()[0], workers=True)
    g = p.add_argument_group("sweep")
    g.add_argument("--draws", type=int, default=50, help="accepted draws to train")
    g.add_argument("--lo", type=float, default=1.0, help="accept draws whose predicted ratio is >= lo")
    g.add_argument("--hi", type=float, default=20.0, help="accept draws whose predicted ratio is <= hi")
    g.add_argument("--stats", choices=("empirical", "population"), default="empirical",
                   help="statistics of the prediction and the acceptance")
    g.add_argument("--max-candidates", type=int, default=10000, help="give up after this many candidates")
    add_sweep_args(g)
    g = p.add_argument_group("data and training")
    g.add_argument("--dim", type=int, default=20, help="input dimension D (A: first half, B: second half)")
    g.add_argument("--n", type=int, default=8192, help="number of samples")
    g.add_argument("--lr", type=float, default=0.005, help="learning rate (tau = 1/lr epochs)")
    g.add_argument("--epochs", type=int, default=20000, help="maximum number of epochs")
    g.add_argument("--tol", type=float, default=1e-4, help="stop once the loss is below tol")
    g.add_argument("--init", choices=("entry", "layer", "balanced"), default="entry",
                   help="initialisation scheme")
    g.add_argument("--scale", type=float, default=1e-9, help="initialisation scale u0")
    g.add_argument("--width", type=int, default=100, help="hidden width h")
    g.add_argument("--record-every", type=int, default=1, help="record loss and W_tot every k epochs")
    return p


def check(args):
    """Reject impossible settings."""
    for name in ("draws", "max_candidates", "n", "width", "record_every", "epochs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    if args.dim < 2 or args.dim % 2:
        raise ValueError(f"--dim {args.dim}: must be even and >= 2 (two halves, one per modality)")
    if not 1.0 <= args.lo <= args.hi:
        raise ValueError(f"--lo {args.lo!r} --hi {args.hi!r}: need 1 <= lo <= hi (A is learned first, "
                         "so the ratio is >= 1)")
    if not args.tol >= 0:
        raise ValueError(f"--tol {args.tol!r}: must be >= 0")
    if not args.drop_loss > 0:
        raise ValueError(f"--drop-loss {args.drop_loss!r}: must be > 0")
    if args.threads is not None and args.threads < 1:       # --workers: checked by finish_args
        raise ValueError(f"--threads {args.threads}: must be >= 1")
    selection(args)      # too few acceptable draws is an impossible setting: argparse's error


def selection(args):
    """The accepted draws of these options (cached: run and predict both ask)."""
    return select_draws(args.seed, args.draws, args.dim, args.n, args.lo, args.hi, args.stats,
                        args.max_candidates)


# ---------------------------------------------------------------------- run, predict, plot
def run(args):
    """Train every accepted draw (through the cache) and measure its time ratio."""
    draws = selection(args)[0]
    points = [dict(draw=k, draw_seed=args.seed, dim=args.dim, n=args.n, width=args.width, lr=args.lr,
                   epochs=args.epochs, tol=args.tol, init=args.init, scale=args.scale,
                   record_every=args.record_every) for k in draws]
    res = run_sweep(points, build=build_draw,
                    measure=functools.partial(measure_draw, convention=args.convention), **sweep_options(args))
    col = res.column
    kept, counts = keep_mask([row["status"] for row in res.table], col("final_loss"), col("time_ratio"),
                             args.drop_loss)
    sim = {name: col(name) for name in ("draw", "t_a", "t_b", "time_ratio", "final_loss", "final_epoch")}
    sim.update(kept=kept, n_cached=res.n_cached, n_computed=res.n_computed,
               rows=[{**row, "kept": bool(k)} for row, k in zip(res.table, kept)],
               **{f"n_{k}": v for k, v in counts.items()})
    return sim


def predict(args):
    """Predicted ratios of the accepted draws, and how many candidates were rejected."""
    draws, predicted, other, rejected = selection(args)
    return dict(draw=np.array(draws), predicted=np.array(predicted), predicted_other=np.array(other),
                n_rejected=rejected)


def agreement(sim, pred):
    """Pearson and Spearman correlations and relative errors over the kept runs."""
    from scipy.stats import pearsonr, spearmanr
    k = sim["kept"]
    x, y = pred["predicted"][k], sim["time_ratio"][k]
    if x.size < 3:
        return dict(pearson=np.nan, spearman=np.nan, mean_rel_error=np.nan, mean_abs_rel_error=np.nan, kept=x.size)
    rel = y / x - 1.0
    return dict(pearson=float(pearsonr(x, y)[0]), spearman=float(spearmanr(x, y)[0]),
                mean_rel_error=float(rel.mean()), mean_abs_rel_error=float(np.abs(rel).mean()), kept=int(x.size))


def plot(sim, pred, args):
    """Measured against predicted t_B/t_A, with the y = x line; axes 0–20."""
    fig, axes = C.figure(1, 1, width=4.6, height=4.4)
    ax = axes[0, 0]
    k = sim["kept"]
    x, y = pred["predicted"][k], sim["time_ratio"][k]
    top = max(AXIS_MAX, args.hi)
    inside = y <= top
    ax.plot([0, top], [0, top], **C.THEORY_STYLE, label="y = x (theory §6.3)")
    ax.scatter(x[inside], y[inside], s=22, color=C.COLORS["late"], alpha=0.85, label="simulation (one draw each)")
    if (~inside).any():
        ax.scatter(x[~inside], np.full((~inside).sum(), top), marker="^", s=30, color=C.COLORS["late"],
                   label=f"measured > {top:g} (at the edge)", clip_on=False)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel(f"predicted $t_B/t_A$ ({args.stats} statistics)")
    ax.set_ylabel("simulated $t_B/t_A$")
    st = agreement(sim, pred)
    # upper left, under the legend: above the diagonal at small predicted ratios stays empty
    ax.text(0.03, 0.86, f"Pearson r = {st['pearson']:.3f}\nSpearman ρ = {st['spearman']:.3f}\n"
                        f"mean (sim − th.)/th. = {100 * st['mean_rel_error']:+.1f} %\n"
                        f"{st['kept']} runs kept\n{dropped_note(sim, args.drop_loss)}\n"
                        f"{pred['n_rejected']} candidate draws rejected",
            transform=ax.transAxes, ha="left", va="top", fontsize=7.5,
            bbox=dict(boxstyle="round", facecolor="white", edgecolor="0.7"))
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"Late fusion on random statistics (D = {args.dim})\n{convention_note(args.convention)}",
                 fontsize=8)
    return fig


def main(argv=None):
    """Select the draws, train them, compare with theory, save and print the summary; return 0."""
    args = C.parse_quick(build_parser(), argv, QUICK, check)
    with C.Timer() as timer:
        sim = run(args)
    pred = predict(args)
    fig = plot(sim, pred, args)
    st = agreement(sim, pred)
    other = "population" if args.stats == "empirical" else "empirical"
    rows = [{**row, "time_ratio_theory": p, f"time_ratio_theory_{other}": q}
            for row, p, q in zip(sim["rows"], pred["predicted"], pred["predicted_other"])]
    arrays = {k: v for k, v in sim.items() if k != "rows"}
    arrays.update(pred)
    arrays.update({f"agreement_{k}": v for k, v in st.items()})
    C.save(args.out, NAME, fig=fig, formats=args.formats, arrays=arrays, config=args, table=rows)
    C.show_or_close(fig, args)
    print("| draw | predicted | simulated | final loss | kept |\n|---|---|---|---|---|")
    for d, p, s, fl, kk in zip(sim["draw"], pred["predicted"], sim["time_ratio"], sim["final_loss"], sim["kept"]):
        print(f"| {int(d)} | {p:.3f} | {s:.3f} | {fl:.2e} | {'yes' if kk else 'no'} |")
    n = len(sim["kept"])
    print(f"\ndraws: {n} accepted, {pred['n_rejected']} rejected (predicted ratio outside "
          f"[{args.lo:g}, {args.hi:g}] or B first); points {sim['n_cached']} from cache, {sim['n_computed']} computed")
    print(dropped_note(sim, args.drop_loss))
    print(f"kept {st['kept']}: Pearson r = {st['pearson']:.3f}, Spearman rho = {st['spearman']:.3f}, mean relative "
          f"error (sim - theory)/theory = {100 * st['mean_rel_error']:+.1f} % "
          f"(mean |.| {100 * st['mean_abs_rel_error']:.1f} %), {args.convention} convention")
    print(f"wall time {timer.seconds:.1f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    # Import under the package name so that build_draw and measure_draw (sent to workers, named
    # in cache keys) are sims.rand_sweep.*, the same as from Python, not __main__.*.
    from sims.rand_sweep import main as _main
    sys.exit(_main())
