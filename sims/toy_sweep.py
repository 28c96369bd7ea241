"""Figure 6: toy sweep of two-layer late fusion, time ratio t_B/t_A and misattribution against ρ.

Two-layer late-fusion networks (width 100, init 'entry' 1e-9, lr 0.04, full-batch gradient
descent) learn the toy data of THEORY.md §3a for r = σ_A/σ_B ∈ {3, 2, 1.5, 1} and
ρ ∈ linspace(−0.9, 0.9, 9), 5 repeats each, linear and ReLU. Every run stops once its loss is
below 1e-4 (at most 40 000 epochs). The left panel shows the measured time ratio t_B/t_A
(log axis) over the signed theory 1 + (r² − 1)/(1 − ρ²) (gradient flow, THEORY.md §6.3, table
§8; dashed) and over the exact rank-one gradient-descent map at the runs' learning rate
(§6.10; dotted). The flow formula is 5–23 % above the linear runs where Σ_yx,A = r² + ρr is
large (r = 3, ρ > 0): a mode grows by (1 + ηs)² per step, not e^{2ηs}, which slows the fast
modality A most (§9.3). The map has no such error and meets the linear runs within a few %.
The right panel shows the misattribution (W_A(t_mid) − W_A(end))/W_A(end) on the unimodal
plateau over ρ/r (§6.4), for r ≠ 1.

Measurement (THEORY.md §7), ``--convention``:

- ``paper`` (default, as the paper's figure): t_A is the recorded epoch whose W_A^tot is
  closest to half of A's unimodal value 1 + ρ/r, t_B the epoch closest to half of
  W_B^tot's trajectory maximum, misattribution at t_mid = ⌊(t_A + t_B)/2⌋;
- ``interp``: first upward crossings, linearly interpolated, of half of 1 + ρ/r and half
  of B's weight at M_* (= 1), misattribution where W_A changes least between t_A and t_B.

ReLU nets double both thresholds (their unpacked W^tot converges to 2×, §6.9). At r = 1 no
modality is first, and A's threshold is half of its trajectory maximum. A's threshold uses
the population plateau 1 + ρ/r (as the paper); the run's empirical Σyx_A/Σ_A differs by
O(1/√n) ≈ 1 %, which moves t_A by < 0.1 epoch and the ratio by < 0.05 % (checked on
four runs; the crossing is steep). As in the
paper, runs whose final loss is ≥ 1e-3 (``--drop-loss``) are dropped and counted.

Cost. Linear runs take the moment path (~1 µs per epoch; the linear half alone is the
toolkit's benchmark sweep, ``python -m sims.toy_sweep --no-relu --workers 2 --force``, a few
seconds). ReLU runs take the sample path, whose cost grows with the number of samples (~1 ms
per epoch at n = 8192 on 2 cores), so the ReLU runs default to ``--relu-n 2048``: the full
sweep then takes ~1.5 minutes on 2 idle cores (measured: 93 s; ~10 minutes when other
processes load the cores), about 4× that at n = 8192. Checked at r = 2,
ρ ∈ {−0.675, 0, 0.675}, 5 seeds: the ReLU ratios at n = 2048 are 0–5 % below those at
n = 8192 (6.16/6.49, 3.79/3.94, 6.09/6.07), with about twice the seed-to-seed spread
(finite-sample statistics); ``--relu-n 8192`` is the paper's setting. With ``--workers 1`` the
run is in this process with numba's threads; on a busy machine ``--threads 1`` is much faster
there (the sample path synchronises its threads twice per epoch).

Every run goes through :func:`linfusion.sweep.run_sweep`: cached under ``<out>/cache``,
resumable, parallel (``--workers``, ``--scheduler``), seeded per point from ``--seed`` and the
point's configuration, so adding or removing ratios, ρ values or variants keeps the other
points' numbers (and their cache).
"""
from __future__ import annotations

import argparse
import functools
import sys

import numpy as np

from linfusion import analysis
from linfusion.sweep import run_sweep
from sims import _common as C
from theory.dynamics import rank_one_map
from theory.fixed_points import late_fixed_point
from theory.two_layer import misattribution_toy, time_ratio_toy, toy_stats

NAME = "toy_sweep"
#: leaky-ReLU slope of each variant
VARIANTS = {"linear": 1.0, "relu": 0.0}
#: marker of each variant (the paper's: open circles linear, crosses ReLU)
MARKERS = {"linear": dict(marker="o", facecolors="none"), "relu": dict(marker="x")}
RHO_MAX = 0.9           # sweep range of ρ for a count given to --rhos
THEORY_RHO_MAX = 0.92   # range of the theory curves
MAP_POINTS = 37         # ρ values of the (slower) discrete-map curve
#: --quick: a small sweep (explicit options still win)
QUICK = dict(ratios="2,1", rhos="-0.5,0,0.5", repeats=1, relu_n=256)
#: the discrete-map prediction (theory too, so black; dotted to tell it from the flow formula)
MAP_STYLE = dict(C.THEORY_STYLE, linestyle=":")


# ---------------------------------------------------------------------- options
def parse_floats(text, option):
    """A comma-separated list of floats; ValueError naming ``option`` otherwise."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} {text!r}: must be a comma-separated list of numbers") from None
    if not values:
        raise ValueError(f"{option} {text!r}: must hold at least one number")
    if not all(np.isfinite(values)):
        raise ValueError(f"{option} {text!r}: every value must be finite")
    return values


def parse_rhos(text):
    """``--rhos``: a count k (linspace(−0.9, 0.9, k), k >= 2) or a comma-separated list."""
    text = str(text).strip()
    if text.lstrip("+").isdigit():
        count = int(text)
        if count < 2:
            raise ValueError(f"--rhos {text!r}: a count must be >= 2 (linspace(-0.9, 0.9, count)); "
                             "give one value as a list, e.g. '0.0,'")
        return np.linspace(-RHO_MAX, RHO_MAX, count).tolist()
    rhos = parse_floats(text, "--rhos")
    if any(not -1.0 < r < 1.0 for r in rhos):
        raise ValueError(f"--rhos {text!r}: every rho must lie in (-1, 1)")
    return rhos


def add_sweep_args(p):
    """Options shared by the sweeps' execution (besides base_parser's --workers etc.)."""
    p.add_argument("--convention", choices=("paper", "interp"), default="paper",
                   help="measurement convention (THEORY.md §7): paper = nearest record to half the "
                        "plateau / half B's maximum; interp = interpolated first crossing of half the "
                        "known end points")
    p.add_argument("--drop-loss", type=float, default=1e-3,
                   help="drop runs whose final loss is >= this (the paper's rule)")
    p.add_argument("--threads", type=int, default=None,
                   help="numba threads per worker (default: cores // workers; numba's default with "
                        "--workers 1). 1 is fastest on a busy machine: the sample path synchronises "
                        "its threads every epoch")


def sweep_options(args):
    """run_sweep's execution keywords from the shared sweep options."""
    from pathlib import Path
    cache = Path(args.cache) if args.cache else Path(args.out) / "cache"
    return dict(seed=args.seed, workers=args.workers, threads=args.threads, cache_dir=cache,
                force=args.force, scheduler=args.scheduler, seed_by="config")


def build_parser():
    p = C.base_parser(NAME, __doc__.splitlines()[0], workers=True)
    g = p.add_argument_group("sweep")
    g.add_argument("--ratios", default="3,2,1.5,1",
                   help="r = sigma_A/sigma_B values, comma separated, each >= 1")
    g.add_argument("--rhos", default="9",
                   help="a count k for linspace(-0.9, 0.9, k) or a comma-separated list of rho "
                        "(write --rhos=-0.5,0,0.5 when the list starts with a minus sign)")
    g.add_argument("--repeats", type=int, default=5, help="seeds per point")
    g.add_argument("--linear", action=argparse.BooleanOptionalAction, default=True,
                   help="train the linear nets (open circles)")
    g.add_argument("--relu", action=argparse.BooleanOptionalAction, default=True,
                   help="train the ReLU nets (crosses)")
    add_sweep_args(g)
    g = p.add_argument_group("data and training")
    g.add_argument("--n", type=int, default=8192, help="samples of the linear runs")
    g.add_argument("--relu-n", type=int, default=2048,
                   help="samples of the ReLU runs (the sample path's cost grows with it)")
    g.add_argument("--lr", type=float, default=0.04, help="learning rate (tau = 1/lr epochs)")
    g.add_argument("--epochs", type=int, default=40000, help="maximum number of epochs")
    g.add_argument("--tol", type=float, default=1e-4, help="stop once the loss is below tol")
    g.add_argument("--init", choices=("entry", "layer", "balanced"), default="entry",
                   help="initialisation scheme")
    g.add_argument("--scale", type=float, default=1e-9, help="initialisation scale u0")
    g.add_argument("--width", type=int, default=100, help="hidden width h")
    g.add_argument("--record-every", type=int, default=1, help="record loss and W_tot every k epochs")
    return p


def check(args):
    """Parse the lists and reject impossible settings."""
    args.ratio_list = parse_floats(args.ratios, "--ratios")
    if any(r < 1.0 for r in args.ratio_list):
        raise ValueError(f"--ratios {args.ratios!r}: every r must be >= 1 (A, the larger-variance "
                         "modality, is the one learned first)")
    args.rho_list = parse_rhos(args.rhos)
    for name in ("repeats", "n", "relu_n", "width", "record_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    if not (args.linear or args.relu):
        raise ValueError("--no-linear with --no-relu: nothing to train, keep at least one variant")
    if not args.tol >= 0:
        raise ValueError(f"--tol {args.tol!r}: must be >= 0")
    if not args.drop_loss > 0:
        raise ValueError(f"--drop-loss {args.drop_loss!r}: must be > 0")
    if args.threads is not None and args.threads < 1:       # --workers: checked by finish_args
        raise ValueError(f"--threads {args.threads}: must be >= 1")
    args.variants = [v for v in VARIANTS if getattr(args, v)]


# ---------------------------------------------------------------------- measurement
def keep_mask(status, final_loss, values, drop_loss):
    """The runs a sweep keeps, and why the others were dropped.

    Parameters
    ----------
    status : sequence of str
        Training status of each run.
    final_loss, values : ndarray of shape (n_runs,)
        Final training loss and the measured quantity (NaN: a modality was never learned).
    drop_loss : float
        The paper's rule: drop runs whose final loss is >= drop_loss.

    Returns
    -------
    keep : ndarray of bool of shape (n_runs,)
    counts : dict
        ``diverged``, ``unconverged`` (final loss >= drop_loss) and ``unmeasured`` (a time
        could not be measured), each run counted under its first reason only.
    """
    diverged = np.array([s == "diverged" for s in status], dtype=bool)
    unconverged = ~diverged & ~(np.asarray(final_loss) < drop_loss)
    unmeasured = ~diverged & ~unconverged & ~np.isfinite(values)
    counts = dict(diverged=int(diverged.sum()), unconverged=int(unconverged.sum()),
                  unmeasured=int(unmeasured.sum()))
    return ~(diverged | unconverged | unmeasured), counts


def dropped_note(sim, drop_loss):
    """'k dropped (why)' from a run's drop counts, e.g. '3 dropped (final loss ≥ 0.001: 2, diverged: 1)'."""
    why = [(f"final loss ≥ {drop_loss:g}", sim["n_unconverged"]), ("diverged", sim["n_diverged"]),
           ("unmeasured", sim["n_unmeasured"])]
    total = sum(n for _, n in why)
    detail = ", ".join(f"{what}: {n}" for what, n in why if n)
    return f"{total} dropped ({detail})" if total else f"0 dropped (none had final loss ≥ {drop_loss:g} or diverged)"


def rename(measured):
    """analysis.measure's dict with ``ratio`` renamed (the config already has r = ``ratio``)."""
    out = dict(measured)
    out["time_ratio"] = out.pop("ratio")
    return out


def measure_toy(result, config, convention="paper"):
    """t_A, t_B, t_B/t_A and misattribution of one toy run (module-level: runs in workers).

    Thresholds from the population fixed points of the run's (ρ, r, W*): half of A's
    plateau W_A^uni and (interp) half of B's weight at M_*; at r = 1 half of A's trajectory
    maximum; doubled for ReLU nets.
    """
    sigma, syx, syy = toy_stats(config["rho"], config["ratio"], config["w_star"])
    wb_star = float(late_fixed_point(sigma, syx, syy, (1, 1), (0, 1)).block(1)[0, 0])
    wa_uni = None
    if config["ratio"] != 1.0:
        wa_uni = float(late_fixed_point(sigma, syx, syy, (1, 1), (0,)).block(0)[0, 0])
    return rename(analysis.measure(result, wa_uni=wa_uni, wb_star=wb_star, convention=convention,
                                   relu=config["slope"] != 1.0))


# ---------------------------------------------------------------------- run, predict, plot
def configs(args):
    """The sweep's points: variant, then r, then ρ, then repeat."""
    points = []
    for variant in args.variants:
        for r in args.ratio_list:
            for rho in args.rho_list:
                for rep in range(args.repeats):
                    points.append(dict(
                        arch="late", depth=2, width=args.width, slope=VARIANTS[variant], data="toy",
                        ratio=float(r), rho=float(rho), n=args.relu_n if variant == "relu" else args.n,
                        lr=args.lr, epochs=args.epochs, tol=args.tol, init=args.init, scale=args.scale,
                        record_every=args.record_every, repeat=rep))
    return points


def run(args):
    """Train every point of the sweep (through the cache) and measure it.

    Returns
    -------
    dict
        Per-run arrays (``ratio``, ``rho``, ``repeat``, ``relu``, ``t_a``, ``t_b``,
        ``time_ratio``, ``misattribution``, ``final_loss``, ``final_epoch``, ``kept``), the
        drop counts, ``n_cached``/``n_computed``, and ``rows`` (the tidy table).
    """
    res = run_sweep(configs(args), measure=functools.partial(measure_toy, convention=args.convention),
                    **sweep_options(args))
    col = res.column
    status = [row["status"] for row in res.table]
    kept, counts = keep_mask(status, col("final_loss"), col("time_ratio"), args.drop_loss)
    rows = [{**row, "variant": "linear" if row["slope"] == 1.0 else "relu", "kept": bool(k)}
            for row, k in zip(res.table, kept)]
    sim = {name: col(name) for name in ("ratio", "rho", "repeat", "t_a", "t_b", "time_ratio",
                                        "misattribution", "final_loss", "final_epoch")}
    sim.update(relu=col("slope") != 1.0, kept=kept, n_cached=res.n_cached, n_computed=res.n_computed,
               rows=rows, **{f"n_{k}": v for k, v in counts.items()})
    return sim


def map_ratio(rho, ratio, lr, u0, max_epochs):
    """t_B/t_A of the exact rank-one gradient-descent map at rate ``lr`` (THEORY.md §6.10).

    Gradient flow (the closed form) lets a mode grow by e^{2ηs} per epoch, gradient descent by
    (1 + ηs)²: A's fast mode (s = Σ_yx,A, up to 12 at r = 3) is slowed most, so the measured
    ratio runs below the flow formula by up to ~20 % at lr 0.04. The map has no such error.

    Returns
    -------
    float
        NaN if B is not learned within ``max_epochs``; 1 at r = 1 (no modality first).
    """
    if ratio == 1.0:
        return 1.0
    sigma, syx, syy = toy_stats(rho, ratio)
    # epochs to cover t_B: A crosses after ~ln(1/u0²)/(2 ln(1 + lr Σ_yx,A)), B within twice
    # the flow ratio of that (the map's ratio is below the flow's)
    t_a = np.log(1.0 / u0 ** 2) / (2.0 * np.log1p(lr * syx[0, 0]))
    n_epochs = int(min(max_epochs, 2.0 * time_ratio_toy(rho, ratio) * t_a + 200))
    traj = rank_one_map(sigma, syx, syy, (1, 1), np.arange(n_epochs + 1), lr, u0=u0)
    return np.nan if traj.ratio is None else float(traj.ratio)


def predict(args):
    """Theory: the signed flow formula and ρ/r over ρ ∈ ±0.92 and at the sweep's points, and the
    discrete map at the sweep's lr (linear nets; lr/2 for ReLU nets, whose units see half
    the data, a heuristic), started from u0 = scale·√(width/2), the expected effective seed of
    the per-entry init (the ratio depends on it only through O(1) transients)."""
    rho_curve = np.linspace(-THEORY_RHO_MAX, THEORY_RHO_MAX, 100)
    rho_map = np.linspace(-THEORY_RHO_MAX, THEORY_RHO_MAX, MAP_POINTS)
    ratios = np.array(args.ratio_list)
    rhos = np.array(args.rho_list)
    u0 = args.scale * np.sqrt(args.width / 2.0)

    def maps(rho_values, lr):
        return np.array([[map_ratio(rho, r, lr, u0, args.epochs) for rho in rho_values] for r in ratios])

    pred = dict(rho_curve=rho_curve, ratios=ratios, rhos=rhos, rho_map=rho_map,
                ratio_curve=time_ratio_toy(rho_curve[None, :], ratios[:, None], form="signed"),
                m_curve=misattribution_toy(rho_curve[None, :], ratios[:, None]),
                ratio_points=time_ratio_toy(rhos[None, :], ratios[:, None], form="signed"),
                m_points=misattribution_toy(rhos[None, :], ratios[:, None]))
    if args.linear:
        pred.update(map_curve=maps(rho_map, args.lr), map_points=maps(rhos, args.lr))
    if args.relu:
        pred.update(map_points_relu=maps(rhos, args.lr / 2.0))
    return pred


def summarize(sim, pred):
    """Per (r, ρ, variant): mean ± std of the kept runs' measurements against theory."""
    out = []
    for relu in (False, True):
        maps = pred.get("map_points_relu" if relu else "map_points")
        for i, r in enumerate(pred["ratios"]):
            for j, rho in enumerate(pred["rhos"]):
                sel = (sim["relu"] == relu) & (sim["ratio"] == r) & (sim["rho"] == rho)
                if not sel.any():
                    continue
                k = sel & sim["kept"]
                tr, m = sim["time_ratio"][k], sim["misattribution"][k]
                theory, gd_map = float(pred["ratio_points"][i, j]), float(maps[i, j])
                mean = float(tr.mean()) if tr.size else np.nan
                out.append(dict(
                    variant="relu" if relu else "linear", ratio=float(r), rho=float(rho),
                    runs=int(sel.sum()), kept=int(k.sum()),
                    time_ratio_mean=mean, time_ratio_std=float(tr.std()) if tr.size else np.nan,
                    time_ratio_theory=theory, rel_error=mean / theory - 1.0,
                    time_ratio_map=gd_map, rel_error_map=mean / gd_map - 1.0,
                    misattribution_mean=float(m.mean()) if m.size else np.nan,
                    misattribution_std=float(m.std()) if m.size else np.nan,
                    misattribution_theory=float(pred["m_points"][i, j])))
    return out


def format_table(summary):
    """The summary as a Markdown table."""
    lines = ["| r | ρ | variant | kept | t_B/t_A sim | flow theory | sim/flow − 1 | GD map | sim/map − 1 "
             "| misattr. sim | ρ/r |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        m = "—" if s["ratio"] == 1.0 else f"{s['misattribution_mean']:+.3f} ± {s['misattribution_std']:.3f}"
        mt = "—" if s["ratio"] == 1.0 else f"{s['misattribution_theory']:+.3f}"
        lines.append(f"| {s['ratio']:g} | {s['rho']:+.3f} | {s['variant']} | {s['kept']}/{s['runs']} | "
                     f"{s['time_ratio_mean']:.3f} ± {s['time_ratio_std']:.3f} | {s['time_ratio_theory']:.3f} | "
                     f"{100 * s['rel_error']:+.1f} % | {s['time_ratio_map']:.3f} | {100 * s['rel_error_map']:+.1f} % "
                     f"| {m} | {mt} |")
    return "\n".join(lines)


def ratio_colors(ratios):
    """One simulation colour per r (largest r darkest)."""
    import matplotlib
    cmap = matplotlib.colormaps["plasma"]
    order = np.argsort(-np.asarray(ratios))
    colors = {}
    for rank, i in enumerate(order):
        colors[float(ratios[i])] = cmap(0.82 * rank / max(1, len(ratios) - 1))
    return colors


def convention_note(convention):
    """The measurement convention, as stated on the figures."""
    if convention == "paper":
        return "paper convention: record nearest to half of A's plateau / half of B's maximum"
    return "interp convention: interpolated first crossing of half of A's plateau / half of B's M* value"


def plot(sim, pred, args):
    """Left: t_B/t_A against ρ (log); right: misattribution against ρ for r ≠ 1."""
    from matplotlib.lines import Line2D
    fig, axes = C.figure(1, 2, width=4.8, height=3.8)
    ax_t, ax_m = axes[0]
    colors = ratio_colors(pred["ratios"])
    dx = 0.012 * (np.ptp(pred["rhos"]) if pred["rhos"].size > 1 else 1.0)
    for i, r in enumerate(pred["ratios"]):
        for ax, curve in ((ax_t, pred["ratio_curve"][i]), (ax_m, pred["m_curve"][i])):
            if ax is ax_m and r == 1.0:
                continue
            ax.plot(pred["rho_curve"], curve, **C.THEORY_STYLE, zorder=1)
            if ax is ax_t and "map_curve" in pred and r != 1.0:
                ax.plot(pred["rho_map"], pred["map_curve"][i], **MAP_STYLE, zorder=1)
            ax.annotate(f"r={r:g}", (pred["rho_curve"][-1], curve[-1]), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=7, color=colors[float(r)])
        for relu, variant in ((False, "linear"), (True, "relu")):
            sel = sim["kept"] & (sim["ratio"] == r) & (sim["relu"] == relu)
            if not sel.any():
                continue
            x = sim["rho"][sel] + (dx if relu else -dx)
            style = dict(MARKERS[variant], s=22, linewidths=1.0, zorder=2)
            style["edgecolors" if variant == "linear" else "color"] = colors[float(r)]
            ax_t.scatter(x, sim["time_ratio"][sel], **style)
            if r != 1.0:
                ax_m.scatter(x, sim["misattribution"][sel], **style)
    ax_t.set_yscale("log")
    ax_t.set_xlabel("correlation ρ")
    ax_t.set_ylabel("time ratio $t_B/t_A$")
    ax_t.set_title("unimodal phase length")
    ax_m.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
    ax_m.set_xlabel("correlation ρ")
    ax_m.set_ylabel(r"misattribution $(W_A(t_{mid}) - W_A(end))/W_A(end)$")
    ax_m.set_title("misattribution on the plateau (r ≠ 1)")
    for ax in (ax_t, ax_m):
        ax.set_xlim(-1.0, 1.14)      # room for the r labels at the curves' right ends
    lo, hi = ax_t.get_ylim()
    ax_t.set_ylim(lo, hi * 4.0)      # room for the legend above the curves
    handles = [Line2D([], [], color=colors[float(r)], marker="s", linestyle="", label=f"r = {r:g}")
               for r in pred["ratios"]]
    if "linear" in args.variants:
        handles.append(Line2D([], [], marker="o", markerfacecolor="none", color="0.3", linestyle="",
                              label="linear (sim.)"))
    if "relu" in args.variants:
        handles.append(Line2D([], [], marker="x", color="0.3", linestyle="", label="ReLU (sim.)"))
    handles.append(Line2D([], [], **C.THEORY_STYLE, label="theory 1+(r²−1)/(1−ρ²)"))
    if "map_curve" in pred:
        handles.append(Line2D([], [], **MAP_STYLE, label=f"GD map at lr {args.lr:g} (linear)"))
    ax_t.legend(handles=handles,
                fontsize=7, loc="upper center", ncol=2, framealpha=0.9)
    ax_m.legend(handles=[Line2D([], [], **C.THEORY_STYLE, label="theory ρ/r")], fontsize=7,
                loc="upper left", framealpha=0.9)
    fig.suptitle(f"Two-layer late fusion, toy data: {int(sim['kept'].sum())} runs kept, "
                 f"{dropped_note(sim, args.drop_loss)}\n{convention_note(args.convention)}", fontsize=9)
    return fig


def main(argv=None):
    """Run the sweep, compare with theory, save and print the summary; return 0."""
    args = C.parse_quick(build_parser(), argv, QUICK, check)
    with C.Timer() as timer:
        sim = run(args)
    pred = predict(args)
    summary = summarize(sim, pred)
    fig = plot(sim, pred, args)
    rows = [{**row, "time_ratio_theory": float(time_ratio_toy(row["rho"], row["ratio"])),
             "misattribution_theory": float(misattribution_toy(row["rho"], row["ratio"]))}
            for row in sim["rows"]]
    arrays = {k: v for k, v in sim.items() if k != "rows"}
    arrays.update(pred)
    C.save(args.out, NAME, fig=fig, formats=args.formats, arrays=arrays, config=args, table=rows)
    C.save(args.out, f"{NAME}_summary", table=summary)
    C.show_or_close(fig, args)
    print(format_table(summary))
    print(f"\npoints: {len(sim['kept'])} ({sim['n_cached']} from cache, {sim['n_computed']} computed); "
          f"{dropped_note(sim, args.drop_loss)}")
    for variant in args.variants:
        for key, what in (("rel_error", "flow formula"), ("rel_error_map", "GD map")):
            errs = np.array([s[key] for s in summary if s["variant"] == variant and s["ratio"] != 1.0])
            errs = errs[np.isfinite(errs)]
            if errs.size:
                print(f"{variant}: t_B/t_A sim/{what} − 1 over r ≠ 1: mean {100 * errs.mean():+.1f} %, range "
                      f"{100 * errs.min():+.1f} % to {100 * errs.max():+.1f} % ({args.convention} convention)")
    print(f"wall time {timer.seconds:.1f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    # Import under the package name so that the functions sent to workers (and cache keys) are
    # sims.toy_sweep.*, the same as from Python, not __main__.*.
    from sims.toy_sweep import main as _main
    sys.exit(_main())
