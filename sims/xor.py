"""Figure 14: two-layer ReLU early versus late fusion on XOR + linear data, and the features they form.

Data (THEORY.md §3d, :func:`linfusion.data.xor_linear`): modality A is one Gaussian scalar
x_A ~ N(0, σ_A²) (the linear modality; ``--sigma-a`` is its *standard deviation*, where the
original code's ``--var_lin`` was ambiguous), modality B the XOR pair x_B ∈ {(±1, ±1)} with
each corner n/4 times, and y = x_A − x_B1·x_B2. The XOR part has no linear correlation with
any input, so no linear network can learn it. Networks: two-layer ReLU (slope 0, no biases),
width 100, lr 0.04, n = 512, full-batch gradient descent, early fusion (every hidden unit
sees (x_A, x_B1, x_B2)) against late fusion (one ReLU branch per modality, summed at the
output). Without biases, the XOR part is exactly ½(relu(x_B1 − x_B2) + relu(x_B2 − x_B1)
− relu(x_B1 + x_B2) − relu(−x_B1 − x_B2)): four perpendicular features toward (±1, ±1).

Initialisation: the paper's two-layer scheme, every weight N(0, u0²) with u0 = 1e-9
('entry'). A small init is what makes the phenomenon visible: units first align with the
only linear correlation, x_A; in early fusion every unit sees x_A, so (at σ_A ≳ 1.5) all of
them commit to the linear part, their activation pattern stops depending on x_B, and the XOR
gradient vanishes: the network stalls at the linear-only solution (L/L(0) = 1/(1 + σ_A²)).
Late fusion's B branch never sees x_A and forms the four XOR features. In a check at n = 512
(3-5 seeds per cell, 3000-8000 epochs), early fusion at σ_A ∈ {2, 3} ended at the linear-only
level in all 16 runs with u0 = 1e-9, failed to learn the whole task in 4 of 6 with u0 = 1e-6,
and learned it in all 10 runs with each of u0 = 1e-4, 0.01 and 0.1, where the random init
already holds XOR-plane components; at 0.1 even late fusion's features were no longer four
clean directions (5-8). The price of u0 = 1e-9 is time: escaping from ~u0² takes ∝ ln(1/u0), and
late fusion at σ_A = 0.5 (where x_A is the weaker signal) needs ~4500 epochs, hence 6000.

Panels: (top) training loss / L(0) for σ_A = 1, 2, 3, with the linear-only and XOR-only
fixed-point levels (black dashes); (middle) every hidden unit's first-layer weights on
(x_B1, x_B2) at the end of training, coloured by its x_A weight (late fusion's B units have
none), with the four XOR directions (black dashes); (bottom) a sweep over σ_A (through
:mod:`linfusion.sweep`, with progress bar, cache and resume): the fraction of runs that learn
the whole task (final loss < ``--learned-threshold`` × L(0), L(0) = ½(σ_A² + 1), the
population value), every run's final loss, and the number of distinct feature directions
(units whose XOR-plane weight norm exceeds ``--min-norm`` × the largest, their angles merged
when closer than ``--merge-angle`` degrees, single linkage around the circle).

Run ``python -m sims.xor`` (about a minute on 2 idle cores; the sweep is cached).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from linfusion.sweep import grid, run_sweep

from ._common import COLORS, THEORY_STYLE, Timer, base_parser, figure, parse_quick, save, announce

NAME = "xor"
ARCHS = ("early", "late")
XOR_DIRECTIONS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) / np.sqrt(2.0)
#: display floor of the final-loss scatter (late fusion reaches rounding level, ~1e-30)
LOSS_FLOOR = 1e-12
QUICK = dict(n=64, width=20, epochs=1500, scale=1e-4, sigma_a="1,3", sweep_sigma="1,3", repeats=2,
             record_every=10)


# ---------------------------------------------------------------------- command line
def _floats(text, option):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{option} {text!r}: must be comma-separated numbers") from None
    if not values or min(values) <= 0:
        raise ValueError(f"--{option} {text!r}: must list standard deviations > 0")
    return values


def build_parser():
    """The command-line options (``python -m sims.xor --help``)."""
    p = base_parser(NAME, __doc__.splitlines()[0], workers=True)
    g = p.add_argument_group("data (XOR + linear, THEORY.md §3d)")
    g.add_argument("--sigma-a", default="1,2,3",
                   help="standard deviations of the linear modality x_A for the loss and feature panels")
    g.add_argument("--n", type=int, default=512, help="number of samples (a multiple of 4)")
    g = p.add_argument_group("network and training (two-layer ReLU, no biases)")
    g.add_argument("--width", type=int, default=100, help="hidden width h (per branch in late fusion)")
    g.add_argument("--slope", type=float, default=0.0, help="leaky-ReLU slope (0: ReLU)")
    g.add_argument("--lr", type=float, default=0.04, help="learning rate")
    g.add_argument("--epochs", type=int, default=6000, help="number of epochs")
    g.add_argument("--init", default="entry", choices=("entry", "layer"), help="initialisation scheme")
    g.add_argument("--scale", type=float, default=1e-9, help="initialisation scale u0 (see the module docstring)")
    g.add_argument("--record-every", type=int, default=10, help="record the loss every k epochs")
    g = p.add_argument_group("sweep over sigma_A and analysis")
    g.add_argument("--sweep-sigma", default="0.5,1,1.5,2,2.5,3",
                   help="standard deviations of x_A in the sweep (empty string: no sweep)")
    g.add_argument("--repeats", type=int, default=8, help="seeds per (architecture, sigma_A)")
    g.add_argument("--learned-threshold", type=float, default=1e-2,
                   help="a run learns the whole task when its final loss < this x L(0)")
    g.add_argument("--min-norm", type=float, default=0.1,
                   help="units counted as features: XOR-plane weight norm > this x the largest")
    g.add_argument("--merge-angle", type=float, default=15.0,
                   help="feature directions closer than this (degrees) count as one")
    return p


def _check(args):
    if args.quick and args.workers is None and args.scheduler is None:
        args.workers = 1            # a few small runs: worker processes would cost more than they save
    args.panel_sigma = _floats(args.sigma_a, "sigma-a")
    args.sweep_values = _floats(args.sweep_sigma, "sweep-sigma") if args.sweep_sigma.strip() else []
    if args.n < 4 or args.n % 4:
        raise ValueError(f"--n {args.n}: must be a positive multiple of 4 (each XOR corner n/4 times)")
    if args.width < 1:
        raise ValueError(f"--width {args.width}: must be >= 1")
    if not 0.0 <= args.slope < 1.0:
        raise ValueError(f"--slope {args.slope!r}: must lie in [0, 1) (1 would be a linear network, "
                         "which cannot learn XOR)")
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats}: must be >= 1")
    if args.record_every < 1:
        raise ValueError(f"--record-every {args.record_every}: must be >= 1")
    if not 0 < args.learned_threshold < 1:
        raise ValueError(f"--learned-threshold {args.learned_threshold!r}: must lie in (0, 1)")
    if not 0 <= args.min_norm < 1:
        raise ValueError(f"--min-norm {args.min_norm!r}: must lie in [0, 1)")
    if not 0 < args.merge_angle < 180:
        raise ValueError(f"--merge-angle {args.merge_angle!r}: must lie in (0, 180) degrees")


def parse(argv=None):
    """Parsed and checked arguments; ``--quick`` changes the defaults in :data:`QUICK`."""
    return parse_quick(build_parser(), argv, QUICK, _check)


# ---------------------------------------------------------------------- analysis
def unit_weights(net, w):
    """First-layer weights of the units that see x_B: (XOR-plane part (h, 2), x_A part (h,)).

    Early fusion: every unit, its weights on (x_B1, x_B2) and on x_A. Late fusion: the B
    branch, whose units have no x_A input (zeros).
    """
    w_b = net.blocks(w, modality=1, layer=1)[0]
    if net.fuse_depth == 1:
        return w_b.copy(), net.blocks(w, modality=0, layer=1)[0][:, 0].copy()
    return w_b.copy(), np.zeros(w_b.shape[0])


def count_directions(units, min_norm=0.1, merge_angle=15.0):
    """Number of distinct directions among the units' XOR-plane weight vectors.

    Units whose norm exceeds ``min_norm`` × the largest norm count; their angles are sorted
    around the circle and split wherever two neighbours are more than ``merge_angle``
    degrees apart (single linkage), so a cluster may be wider than ``merge_angle``.

    Parameters
    ----------
    units : ndarray of shape (h, 2)
    min_norm, merge_angle : float

    Returns
    -------
    int
        0 when every unit is zero.
    """
    norms = np.linalg.norm(units, axis=1)
    if not np.any(norms > 0):
        return 0
    keep = norms > min_norm * norms.max()
    angles = np.sort(np.degrees(np.arctan2(units[keep, 1], units[keep, 0])) % 360.0)
    gaps = np.diff(np.concatenate([angles, angles[:1] + 360.0]))
    return max(1, int(np.sum(gaps > merge_angle)))


def initial_loss(sigma_a):
    """Population L(0) = ½⟨y²⟩ = ½(σ_A² + 1) (the XOR part has variance 1)."""
    return 0.5 * (sigma_a * sigma_a + 1.0)


# ---------------------------------------------------------------------- experiment
def configs(args):
    """The sweep's points: every (architecture, σ_A, repeat), plus repeat 0 at each panel σ_A."""
    common = dict(data="xor_linear", n=args.n, width=args.width, depth=2, slope=args.slope, bias=False,
                  lr=args.lr, epochs=args.epochs, init=args.init, scale=args.scale,
                  record_every=args.record_every)
    points = grid(arch=list(ARCHS), sigma_a=list(args.sweep_values), repeat=list(range(args.repeats)),
                  **common) if args.sweep_values else []
    extra = [s for s in args.panel_sigma if not (s in args.sweep_values)]
    if extra:
        points += grid(arch=list(ARCHS), sigma_a=extra, repeat=0, **common)
    return points


def run(args):
    """Train every point through :func:`linfusion.sweep.run_sweep` and analyse the final weights.

    Seeds are derived from each point's configuration (``seed_by='config'``), so the panel
    runs (repeat 0 at each ``--sigma-a``) are the same runs whether or not the sweep
    contains them.

    Returns
    -------
    dict
        Arrays: ``panel_sigma``, per panel index i and architecture
        ``panel{i}_{arch}_{epochs,loss_rel,units_b,units_a}``; ``sweep_sigma``, per
        architecture ``sweep_{arch}_{loss_rel,learned,n_dirs}`` of shape (n_sigma, repeats)
        and ``sweep_{arch}_frac_learned``; ``n_diverged``. Key ``table`` (not an array): the
        sweep's rows with the added columns ``loss_rel``, ``learned_all``, ``n_directions``.
    """
    points = configs(args)
    cache = Path(args.cache) if args.cache else Path(args.out) / "cache"
    res = run_sweep(points, seed=args.seed, workers=args.workers, cache_dir=cache, force=args.force,
                    keep_trajectories=True, scheduler=args.scheduler, seed_by="config")
    table = []
    by_point = {}
    for row, tr in zip(res.table, res.trajectories):
        row = dict(row)
        sigma_a = row["sigma_a"]
        l0 = initial_loss(sigma_a)
        units_b, units_a = unit_weights(tr.net, tr.w)
        diverged = bool(row["diverged"])
        row["loss_rel"] = np.nan if diverged else float(tr.loss[-1] / l0)
        row["learned_all"] = (not diverged) and row["loss_rel"] < args.learned_threshold
        row["n_directions"] = -1 if diverged else count_directions(units_b, args.min_norm, args.merge_angle)
        table.append(row)
        by_point[(row["arch"], sigma_a, row["repeat"])] = (row, tr, units_b, units_a)
    sim = {"panel_sigma": np.array(args.panel_sigma), "table": table,
           "n_diverged": int(sum(r["diverged"] for r in table))}
    for i, s in enumerate(args.panel_sigma):
        for arch in ARCHS:
            row, tr, units_b, units_a = by_point[(arch, s, 0)]
            ok = np.isfinite(tr.loss)
            sim[f"panel{i}_{arch}_epochs"] = tr.epochs[ok]
            sim[f"panel{i}_{arch}_loss_rel"] = tr.loss[ok] / initial_loss(s)
            sim[f"panel{i}_{arch}_units_b"] = units_b
            sim[f"panel{i}_{arch}_units_a"] = units_a
            sim[f"panel{i}_{arch}_n_dirs"] = row["n_directions"]
            sim[f"panel{i}_{arch}_diverged"] = row["diverged"]
    if args.sweep_values:
        sim["sweep_sigma"] = np.array(args.sweep_values)
        for arch in ARCHS:
            rows = [[by_point[(arch, s, r)][0] for r in range(args.repeats)] for s in args.sweep_values]
            sim[f"sweep_{arch}_loss_rel"] = np.array([[x["loss_rel"] for x in rr] for rr in rows])
            sim[f"sweep_{arch}_learned"] = np.array([[x["learned_all"] for x in rr] for rr in rows])
            sim[f"sweep_{arch}_n_dirs"] = np.array([[x["n_directions"] for x in rr] for rr in rows])
            valid = np.array([[not x["diverged"] for x in rr] for rr in rows])
            n_valid = np.sum(valid, axis=1)           # diverged runs count neither way
            sim[f"sweep_{arch}_frac_learned"] = np.where(
                n_valid > 0, np.sum(sim[f"sweep_{arch}_learned"], axis=1) / np.maximum(1, n_valid), np.nan)
    return sim


def predict(args):
    """Reference levels (THEORY.md §3d, §6.9): the fixed points where one part is learned.

    Returns
    -------
    dict of arrays
        ``sigma`` grid and, relative to L(0) = ½(σ_A² + 1), ``linear_only`` = 1/(1 + σ_A²)
        (x_A fitted, XOR not) and ``xor_only`` = σ_A²/(1 + σ_A²); ``n_xor_directions`` = 4.
    """
    values = args.panel_sigma + list(args.sweep_values)
    sigma = np.linspace(min(values) * 0.9, max(values) * 1.1, 200)
    return {"sigma": sigma, "linear_only": 1.0 / (1.0 + sigma ** 2),
            "xor_only": sigma ** 2 / (1.0 + sigma ** 2), "n_xor_directions": 4}


# ---------------------------------------------------------------------- figure
def _directions(count):
    return f"{count} direction" + ("" if count == 1 else "s")


def _feature_panel(ax, units_b, units_a, title, vmax):
    lim = 1.15 * max(float(np.max(np.abs(units_b))), 1e-300)
    for d in XOR_DIRECTIONS:
        ax.plot([0, 2 * lim * d[0]], [0, 2 * lim * d[1]], **{**THEORY_STYLE, "linewidth": 0.8})
    ax.scatter(units_b[:, 0], units_b[:, 1], c=units_a, cmap="coolwarm", vmin=-vmax, vmax=vmax,
               s=18, edgecolors="black", linewidths=0.3, zorder=3)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8.5)
    ax.set_xlabel("weight on $x_{B1}$")
    ax.set_ylabel("weight on $x_{B2}$")


def plot(sim, pred, args):
    """Loss curves, feature planes and (with a sweep) the σ_A sweep."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    panels = list(args.panel_sigma)
    has_sweep = "sweep_sigma" in sim
    ncols = max(3 if has_sweep else 1, len(panels))
    nrows = 4 if has_sweep else 3
    fig, axes = figure(nrows, ncols, width=3.5, height=3.0)
    for ax in axes.ravel():
        ax.set_visible(False)
    vmax = max([float(np.max(np.abs(sim[f"panel{i}_{a}_units_a"]))) for a in ARCHS for i in range(len(panels))
                if not sim[f"panel{i}_{a}_diverged"]] + [1e-300])
    for i, s in enumerate(panels):
        ax = axes[0, i]
        ax.set_visible(True)
        for arch in ARCHS:
            tag = f"{arch} fusion" + (" (diverged)" if sim[f"panel{i}_{arch}_diverged"] else "")
            ax.plot(sim[f"panel{i}_{arch}_epochs"], sim[f"panel{i}_{arch}_loss_rel"], color=COLORS[arch],
                    lw=2, label=tag)
        ax.axhline(1.0 / (1.0 + s * s), **THEORY_STYLE, label="linear part only")
        ax.axhline(s * s / (1.0 + s * s), **{**THEORY_STYLE, "linestyle": (0, (1, 2))}, label="XOR part only")
        ax.axhline(args.learned_threshold, color="grey", lw=0.8, ls="-", label="'learned' threshold")
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(1e-8, ax.get_ylim()[0]))
        ax.set_title(f"$\\sigma_A$ = {s:g} (std of $x_A$)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss / L(0)")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7, loc="lower left")
        for k, arch in enumerate(ARCHS):
            ax = axes[1 + k, i]
            ax.set_visible(True)
            if sim[f"panel{i}_{arch}_diverged"]:
                ax.set_title(f"{arch} fusion, $\\sigma_A$ = {s:g}", fontsize=8.5)
                ax.text(0.5, 0.5, "diverged: features not shown", ha="center", transform=ax.transAxes)
                continue
            title = f"{arch} fusion, $\\sigma_A$ = {s:g}: {_directions(sim[f'panel{i}_{arch}_n_dirs'])}"
            _feature_panel(ax, sim[f"panel{i}_{arch}_units_b"], sim[f"panel{i}_{arch}_units_a"], title, vmax)
    cmap = ScalarMappable(Normalize(-vmax, vmax), "coolwarm")
    fig.colorbar(cmap, ax=axes[1:3, :len(panels)].ravel().tolist(), shrink=0.6, label="unit's weight on $x_A$")
    if has_sweep:
        _sweep_panels(axes[3], sim, pred, args)
    fig.suptitle("Two-layer ReLU nets on y = x_A − x_B1·x_B2 (n = %d, width %d, lr %g, init %s %g, %d epochs). "
                 "Colour: simulation; black dashes: fixed-point levels\nand the four XOR directions (±1, ±1). "
                 "Features: first-layer weights at the end of training (late fusion:\nthe B branch, "
                 "whose units have no $x_A$ input); directions counted among units with norm > %g × max, merged within %g°."
                 % (args.n, args.width, args.lr, args.init, args.scale, args.epochs, args.min_norm,
                    args.merge_angle), fontsize=8.5)
    return fig


def _sweep_panels(axes, sim, pred, args):
    sigma = sim["sweep_sigma"]
    ax_frac, ax_loss, ax_dirs = axes[:3]
    for ax in (ax_frac, ax_loss, ax_dirs):
        ax.set_visible(True)
        ax.set_xlabel(r"$\sigma_A$ (std of the linear modality)")
        ax.grid(alpha=0.3)
    rng = np.random.default_rng(0)                    # horizontal jitter of the scatter only
    for k, arch in enumerate(ARCHS):
        color, shift = COLORS[arch], (k - 0.5) * 0.06
        ax_frac.plot(sigma, sim[f"sweep_{arch}_frac_learned"], "o-", color=color, label=f"{arch} fusion")
        loss = sim[f"sweep_{arch}_loss_rel"]
        dirs = sim[f"sweep_{arch}_n_dirs"]
        x = sigma[:, None] + shift + 0.02 * rng.standard_normal(loss.shape)
        ok = np.isfinite(loss)
        ax_loss.scatter(x[ok], np.maximum(loss[ok], LOSS_FLOOR), s=14, color=color, alpha=0.7,
                        label=f"{arch} fusion")
        ok = dirs >= 0
        ax_dirs.scatter(x[ok], dirs[ok], s=14, color=color, alpha=0.7, label=f"{arch} fusion")
    ax_frac.set_ylim(-0.05, 1.05)
    ax_frac.set_ylabel("fraction learning the whole task")
    ax_frac.set_title(f"final loss < {args.learned_threshold:g} L(0), {args.repeats} seeds", fontsize=9)
    ax_frac.legend(fontsize=7)
    ax_loss.plot(pred["sigma"], pred["linear_only"], **THEORY_STYLE, label="linear part only")
    ax_loss.axhline(args.learned_threshold, color="grey", lw=0.8, label="'learned' threshold")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("final loss / L(0)")
    ax_loss.set_title(f"every run (shown clipped at {LOSS_FLOOR:g})", fontsize=9)
    ax_loss.legend(fontsize=7)
    ax_dirs.axhline(pred["n_xor_directions"], **THEORY_STYLE, label="four XOR directions")
    ax_dirs.set_ylabel("distinct feature directions")
    ax_dirs.set_title("XOR-plane features at the end", fontsize=9)
    ax_dirs.legend(fontsize=7)


# ---------------------------------------------------------------------- entry point
def report(sim, args, seconds):
    """The printed summary: per panel run and per swept σ_A, loss, success and directions."""
    lines = [f"{NAME}: n {args.n}, width {args.width}, slope {args.slope:g}, lr {args.lr:g}, init {args.init} "
             f"{args.scale:g}, {args.epochs} epochs, seed {args.seed}"]
    for i, s in enumerate(args.panel_sigma):
        parts = []
        for arch in ARCHS:
            loss = sim[f"panel{i}_{arch}_loss_rel"]
            if sim[f"panel{i}_{arch}_diverged"]:
                parts.append(f"{arch}: DIVERGED after epoch {sim[f'panel{i}_{arch}_epochs'][-1]}")
                continue
            parts.append(f"{arch}: final L/L(0) {loss[-1]:.1e}, {_directions(sim[f'panel{i}_{arch}_n_dirs'])}")
        lines.append(f"  sigma_A = {s:g} (linear-only level {1 / (1 + s * s):.3f}): " + "; ".join(parts))
    if "sweep_sigma" in sim:
        lines.append(f"  sweep ({args.repeats} seeds; learned = final loss < {args.learned_threshold:g} L(0); "
                     "directions: median [min-max]):")
        lines.append(f"  {'sigma_A':>7} | {'early learned':>13} {'dirs':>10} | {'late learned':>12} {'dirs':>10}")
        for j, s in enumerate(sim["sweep_sigma"]):
            cells = []
            for arch in ARCHS:
                d = sim[f"sweep_{arch}_n_dirs"][j]
                d = d[d >= 0]
                frac = sim[f"sweep_{arch}_frac_learned"][j]
                dirs = f"{np.median(d):g} [{d.min()}-{d.max()}]" if d.size else "-"
                cells.append(f"{frac:13.2f} {dirs:>10}" if arch == "early" else f"{frac:12.2f} {dirs:>10}")
            lines.append(f"  {s:7g} | {cells[0]} | {cells[1]}")
    if sim["n_diverged"]:
        lines.append(f"  WARNING: {sim['n_diverged']} run(s) diverged (excluded from the sweep statistics)")
    lines.append(f"  wall time {seconds:.1f} s")
    return "\n".join(lines)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    args = parse(argv)
    with Timer() as timer:
        sim = run(args)
        pred = predict(args)
        fig = plot(sim, pred, args)
        arrays = {**{f"sim_{k}": v for k, v in sim.items() if k != "table"},
                  **{f"pred_{k}": v for k, v in pred.items()}}
        written = save(args.out, NAME, fig=fig, formats=args.formats, arrays=arrays, config=args,
                       table=sim["table"])
    announce(report(sim, args, timer.seconds), written, fig, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
