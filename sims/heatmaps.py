"""Figures 4 and 5: heatmaps of the late-fusion time ratio and of the misattribution over (ρ, r).

Theory only (no simulation). Left: the two-layer late-fusion time ratio on the toy data
(THEORY.md §6.3), t_B/t_A = 1 + (r² − 1)/(1 − ρ²) in the signed form
(:func:`theory.two_layer.time_ratio_toy`; ``--form norm`` gives 1 + (|Σyx_A| − |Σyx_B|)/(1 − ρ²),
which differs for ρ < −1/r), over ρ ∈ linspace(−0.92, 0.92, 100) (x) and r = σ_A/σ_B ∈
linspace(1, 3, 100) (y), on a logarithmic grey scale. Right: the misattribution on the
unimodal plateau, m = W_A^tot(t_uni) − W_A^tot(∞) = ρ/r (§6.4;
:func:`theory.two_layer.misattribution_toy`), on a diverging scale with symmetric limits
±0.92. Labelled contour lines help reading values off.

Expected: the ratio is 1 on r = 1, grows with r and |ρ| and is symmetric in ρ (signed form);
the misattribution is antisymmetric in ρ and largest at small r and large |ρ|. The summary
prints the landmarks of THEORY.md §8 (9.0 at r = 3, ρ = 0; 53.08 at r = 3, |ρ| = 0.92; 20.53
at r = 2, |ρ| = 0.92) read from the computed grid by bilinear interpolation, next to the
closed form at the exact point.

Run ``python -m sims.heatmaps`` (under a second).
"""
from __future__ import annotations

import sys

import numpy as np

from theory.two_layer import misattribution_toy, time_ratio_toy

from ._common import Timer, base_parser, figure, parse_quick, save, announce

NAME = "heatmaps"
#: (r, ρ, value in THEORY.md §8 for the signed form)
LANDMARKS = ((3.0, 0.0, 9.0), (3.0, 0.92, 53.08), (3.0, -0.92, 53.08), (2.0, 0.92, 20.53),
             (2.0, -0.92, 20.53))
RATIO_LEVELS = (1.5, 2, 3, 5, 10, 20, 40)
MIS_LEVELS = (-0.75, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 0.75)
QUICK = dict(n_rho=25, n_ratio=25)


def build_parser():
    """The command-line options (``python -m sims.heatmaps --help``)."""
    p = base_parser(NAME, __doc__.splitlines()[0])
    g = p.add_argument_group("grid (toy data, THEORY.md §3a; sigma_B = 1, W* = (1, 1))")
    g.add_argument("--rho-min", type=float, default=-0.92, help="smallest correlation rho (> -1)")
    g.add_argument("--rho-max", type=float, default=0.92, help="largest correlation rho (< 1)")
    g.add_argument("--n-rho", type=int, default=100, help="grid points in rho")
    g.add_argument("--ratio-min", type=float, default=1.0, help="smallest r = sigma_A/sigma_B (>= 1: A first)")
    g.add_argument("--ratio-max", type=float, default=3.0, help="largest r = sigma_A/sigma_B")
    g.add_argument("--n-ratio", type=int, default=100, help="grid points in r")
    g.add_argument("--form", default="signed", choices=("signed", "norm"),
                   help="time-ratio form: signed (what simulations follow) or norm (THEORY.md §6.3)")
    return p


def _check(args):
    for name in ("rho_min", "rho_max"):
        if not -1.0 < getattr(args, name) < 1.0:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)!r}: must lie in (-1, 1)")
    if not args.rho_min < args.rho_max:
        raise ValueError(f"--rho-min {args.rho_min!r}: must be < --rho-max ({args.rho_max!r})")
    if not 1.0 <= args.ratio_min < args.ratio_max:
        raise ValueError(f"--ratio-min {args.ratio_min!r}: must satisfy 1 <= ratio-min < ratio-max "
                         f"({args.ratio_max!r}); below 1 modality B would be learned first")
    for name in ("n_rho", "n_ratio"):
        if getattr(args, name) < 2:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 2")


def parse(argv=None):
    """Parsed and checked arguments; ``--quick`` changes the defaults in :data:`QUICK`."""
    return parse_quick(build_parser(), argv, QUICK, _check)


def run(args):
    """Nothing to simulate: the figures are theory only. Returns an empty dict."""
    return {}


def predict(args):
    """The two closed forms on the (ρ, r) grid.

    Returns
    -------
    dict of arrays
        ``rho`` (n_rho,), ``ratio`` (n_ratio,), ``time_ratio`` and ``misattribution`` of shape
        (n_ratio, n_rho) (rows: r, columns: ρ), ``landmarks`` (rows: r, ρ, closed form, read
        from the grid, THEORY.md table value or NaN).
    """
    rho = np.linspace(args.rho_min, args.rho_max, args.n_rho)
    ratio = np.linspace(args.ratio_min, args.ratio_max, args.n_ratio)
    rr, pp = np.meshgrid(ratio, rho, indexing="ij")
    t = time_ratio_toy(pp, rr, form=args.form)
    m = misattribution_toy(pp, rr)
    rows = []
    for r, p, table in LANDMARKS:
        if not (ratio[0] <= r <= ratio[-1] and rho[0] <= p <= rho[-1]):
            continue
        exact = float(time_ratio_toy(p, r, form=args.form))
        rows.append((r, p, exact, _bilinear(ratio, rho, t, r, p), table if args.form == "signed" else np.nan))
    return {"rho": rho, "ratio": ratio, "time_ratio": t, "misattribution": m,
            "landmarks": np.array(rows).reshape(-1, 5)}


def _bilinear(ratio, rho, values, r, p):
    """``values`` (rows: ratio, columns: rho) at (r, p), interpolated linearly in both."""
    from scipy.interpolate import RegularGridInterpolator
    return float(RegularGridInterpolator((ratio, rho), values)([[r, p]])[0])


def plot(sim, pred, args):
    """Time ratio (log grey scale) and misattribution (diverging) over (ρ, r)."""
    from matplotlib.colors import LogNorm
    rho, ratio = pred["rho"], pred["ratio"]
    fig, axes = figure(1, 2, width=4.6, height=3.9)
    ax_t, ax_m = axes[0]
    t = pred["time_ratio"]
    mesh = ax_t.pcolormesh(rho, ratio, t, cmap="Greys", shading="nearest",
                           norm=LogNorm(vmin=max(1.0, float(t.min())), vmax=float(t.max())))
    cb = fig.colorbar(mesh, ax=ax_t)
    ticks = [v for v in (1, 2, 3, 5, 10, 20, 50, 100) if t.min() <= v <= t.max()]
    cb.set_ticks(ticks, labels=[f"{v:g}" for v in ticks])
    cb.minorticks_off()
    cb.set_label("$t_B / t_A$ (log scale)")
    levels = [v for v in RATIO_LEVELS if t.min() < v < t.max()]
    if levels:
        cs = ax_t.contour(rho, ratio, t, levels=levels, colors="tab:orange", linewidths=1.0)
        ax_t.clabel(cs, fmt="%g", fontsize=7)
    form = "signed" if args.form == "signed" else "norm"
    ax_t.set_title(f"Time ratio $1 + (r^2-1)/(1-\\rho^2)$ ({form} form)", fontsize=9)
    lim = 0.92
    mesh = ax_m.pcolormesh(rho, ratio, pred["misattribution"], cmap="RdBu_r", shading="nearest",
                           vmin=-lim, vmax=lim)
    cb = fig.colorbar(mesh, ax=ax_m)
    cb.set_label(r"$m = W_A^{tot}(t_{uni}) - W_A^{tot}(\infty)$")
    m = pred["misattribution"]
    levels = [v for v in MIS_LEVELS if m.min() < v < m.max()]
    if levels:
        cs = ax_m.contour(rho, ratio, m, levels=levels, colors="black", linewidths=0.8)
        ax_m.clabel(cs, fmt="%g", fontsize=7)
    ax_m.set_title(r"Misattribution $\rho\,\sigma_B/\sigma_A = \rho / r$", fontsize=9)
    for ax in (ax_t, ax_m):
        ax.set_xlabel(r"correlation $\rho$")
        ax.set_ylabel(r"$r = \sigma_A / \sigma_B$")
    fig.suptitle("Theory only (two-layer linear late fusion, toy data, $u_0 \\to 0$, gradient flow; "
                 "THEORY.md §6.3-6.4)", fontsize=9)
    return fig


def report(pred, args, seconds):
    """The printed summary: landmarks (closed form, read from the grid, THEORY table)."""
    lines = [f"{NAME}: {args.n_rho} x {args.n_ratio} grid, rho in [{args.rho_min:g}, {args.rho_max:g}], "
             f"r in [{args.ratio_min:g}, {args.ratio_max:g}], {args.form} form",
             f"  {'r':>4} {'rho':>6} | {'closed form':>11} {'from grid':>10} {'THEORY §8':>10}"]
    for r, p, exact, grid, table in pred["landmarks"]:
        shown = f"{table:10.2f}" if np.isfinite(table) else f"{'(signed)':>10}"
        lines.append(f"  {r:4g} {p:6.2f} | {exact:11.2f} {grid:10.2f} {shown}")
    t, m = pred["time_ratio"], pred["misattribution"]
    lines.append(f"  time ratio range [{t.min():.3g}, {t.max():.3g}]; misattribution range "
                 f"[{m.min():.3g}, {m.max():.3g}]")
    lines.append(f"  wall time {seconds:.2f} s")
    return "\n".join(lines)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    args = parse(argv)
    with Timer() as timer:
        sim = run(args)
        pred = predict(args)
        fig = plot(sim, pred, args)
        written = save(args.out, NAME, fig=fig, formats=args.formats,
                       arrays={f"pred_{k}": v for k, v in pred.items()}, config=args)
    announce(report(pred, args, timer.seconds), written, fig, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
