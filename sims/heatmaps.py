"""Figures 4 and 5: heatmaps of the late-fusion time ratio and of the misattribution over (ρ, r).

Theory only (no simulation). Left: the two-layer late-fusion time ratio on the toy data
(theory.md §6.3), t_B/t_A = 1 + (r² − 1)/(1 − ρ²) in the signed form
(:func:`theory.two_layer.time_ratio_toy`; ``--form norm`` gives 1 + (|Σyx_A| − |Σyx_B|)/(1 − ρ²),
which differs for ρ < −1/r), over ρ ∈ linspace(−0.92, 0.92, 100) (x) and r = σ_A/σ_B ∈
linspace(1, 3, 100) (y), on a logarithmic grey scale. Right: the misattribution on the
unimodal plateau, m = W_A^tot(t_uni) − W_A^tot(∞) = ρ/r (§6.4;
:func:`theory.two_layer.predicted_misattribution_toy`), on a diverging scale with symmetric limits
±0.92. Labelled contour lines help reading values off.

Expected: the ratio is 1 on r = 1, grows with r and |ρ| and is symmetric in ρ (signed form);
the misattribution is antisymmetric in ρ and largest at small r and large |ρ|. The summary
prints the landmarks of theory.md §8 (9.0 at r = 3, ρ = 0; 53.08 at r = 3, |ρ| = 0.92; 20.53
at r = 2, |ρ| = 0.92) read from the computed grid by bilinear interpolation, next to the
closed form at the exact point.

Run ``python -m sims.heatmaps`` (under a second). From Python:
``heatmaps.predict(heatmaps.Config(n_rho=50))``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from theory.two_layer import time_ratio_toy

from theory.two_layer import predicted_misattribution_toy

from . import _style as S
from ._cli import entry_point
from ._config import Config as _Base
from ._config import choice, integer, option, real

NAME = "heatmaps"
KIND = "theory"
main = entry_point(NAME)
#: (r, ρ, value in theory.md §8 for the signed form)
LANDMARKS = ((3.0, 0.0, 9.0), (3.0, 0.92, 53.08), (3.0, -0.92, 53.08), (2.0, 0.92, 20.53),
             (2.0, -0.92, 20.53))
RATIO_LEVELS = (1.5, 2, 3, 5, 10, 20, 40)
MIS_LEVELS = (-0.75, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 0.75)
_GRID = "grid (toy data, theory.md §3a; σ_B = 1, W* = (1, 1))"
_OPEN = real(-1.0, 1.0, lo_open=True, hi_open=True)


@dataclass(frozen=True)
class Config(_Base):
    """The (ρ, r) grid of the two closed forms (theory only: nothing is trained)."""

    QUICK = {"n_rho": 25, "n_ratio": 25}

    rho_min: float = option(-0.92, "smallest correlation ρ, in (-1, 1)", check=_OPEN, group=_GRID)
    rho_max: float = option(0.92, "largest correlation ρ, in (-1, 1)", check=_OPEN, group=_GRID)
    n_rho: int = option(100, "grid points in ρ", check=integer(lo=2, hi=4000), group=_GRID)
    ratio_min: float = option(1.0, "smallest r = σ_A/σ_B (>= 1: A is learned first)", check=real(1.0),
                              group=_GRID)
    ratio_max: float = option(3.0, "largest r = σ_A/σ_B", check=real(1.0, lo_open=True), group=_GRID)
    n_ratio: int = option(100, "grid points in r", check=integer(lo=2, hi=4000), group=_GRID)
    form: str = option("signed", "time-ratio form: signed (what simulations follow) or norm (theory.md §6.3)",
                       choices=("signed", "norm"), check=choice("signed", "norm"), group=_GRID)

    def validate(self):
        if not self.rho_min < self.rho_max:
            raise ValueError(f"rho_min == {self.rho_min!r}, must be < rho_max ({self.rho_max!r}).")
        if not self.ratio_min < self.ratio_max:
            raise ValueError(f"ratio_min == {self.ratio_min!r}, must be < ratio_max ({self.ratio_max!r}).")


def run(cfg, execution=None):
    """Nothing to simulate: the figures are theory only. Returns an empty dict."""
    return {}


def predict(cfg, result=None):
    """The two closed forms on the (ρ, r) grid.

    Returns
    -------
    dict of arrays
        ``rho`` (n_rho,), ``ratio`` (n_ratio,), ``time_ratio`` and ``misattribution`` of shape
        (n_ratio, n_rho) (rows: r, columns: ρ), ``landmarks`` (rows: r, ρ, closed form, read
        from the grid, theory.md §8 table value or NaN).
    """
    rho = np.linspace(cfg.rho_min, cfg.rho_max, cfg.n_rho)
    ratio = np.linspace(cfg.ratio_min, cfg.ratio_max, cfg.n_ratio)
    rr, pp = np.meshgrid(ratio, rho, indexing="ij")
    t = time_ratio_toy(pp, rr, form=cfg.form)
    m = predicted_misattribution_toy(pp, rr)
    rows = []
    for r, p, table in LANDMARKS:
        if not (ratio[0] <= r <= ratio[-1] and rho[0] <= p <= rho[-1]):
            continue
        exact = float(time_ratio_toy(p, r, form=cfg.form))
        rows.append((r, p, exact, _bilinear(ratio, rho, t, r, p), table if cfg.form == "signed" else np.nan))
    return {"rho": rho, "ratio": ratio, "time_ratio": t, "misattribution": m,
            "landmarks": np.array(rows).reshape(-1, 5)}


def _bilinear(ratio, rho, values, r, p):
    """``values`` (rows: ratio, columns: rho) at (r, p), interpolated linearly in both."""
    from scipy.interpolate import RegularGridInterpolator
    return float(RegularGridInterpolator((ratio, rho), values)([[r, p]])[0])


def _labelled_contours(ax, x, y, z, levels, start, end, margin=0.05, **kw):
    """Contour lines of ``z`` at ``levels``, each labelled once where it comes nearest a probe.

    The probe is the segment ``start`` → ``end`` in axes fractions, chosen to cross the
    family of lines, so the labels spread out instead of crowding where the lines converge
    (matplotlib's default placement). Points within ``margin`` of the frame are avoided so
    that no label is cut by it; a line with no such point is not drawn (it could not be read).
    """
    cs = ax.contour(x, y, z, levels=levels, **kw)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    a, b = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    d = b - a
    positions, kept = [], []
    for level, segs in zip(cs.levels, cs.allsegs):
        segs = [seg for seg in segs if len(seg)]
        if not segs:
            continue
        pts = np.concatenate(segs)
        frac = np.column_stack([(pts[:, 0] - x0) / (x1 - x0), (pts[:, 1] - y0) / (y1 - y0)])
        inside = np.all((frac > margin) & (frac < 1 - margin), axis=1)
        if not np.any(inside):
            continue
        frac, pts = frac[inside], pts[inside]
        u = np.clip((frac - a) @ d / (d @ d), 0.0, 1.0)
        dist = np.linalg.norm(frac - (a + u[:, None] * d), axis=1)
        positions.append(tuple(pts[int(np.argmin(dist))]))
        kept.append(float(level))
    if len(kept) < len(cs.levels):
        cs.remove()
        if not kept:
            return
        cs = ax.contour(x, y, z, levels=kept, **kw)
    ax.clabel(cs, levels=kept, manual=positions, fmt="%g", fontsize="small")


def plot(cfg, result, prediction):
    """Time ratio (log grey scale) and misattribution (diverging) over (ρ, r)."""
    from matplotlib.colors import LogNorm
    pred = prediction
    rho, ratio = pred["rho"], pred["ratio"]
    fig, axes = S.figure(1, 2, width=3.5, height=3.0)
    ax_t, ax_m = axes[0]
    t = pred["time_ratio"]
    mesh = ax_t.pcolormesh(rho, ratio, t, cmap="Greys", shading="nearest", rasterized=True,
                           norm=LogNorm(vmin=max(1.0, float(t.min())), vmax=float(t.max())))
    cb = fig.colorbar(mesh, ax=ax_t)
    ticks = [v for v in (1, 2, 3, 5, 10, 20, 50, 100) if t.min() <= v <= t.max()]
    cb.set_ticks(ticks, labels=[f"{v:g}" for v in ticks])
    cb.minorticks_off()
    cb.set_label(r"$t_B/t_A$ (log scale)")
    levels = [v for v in RATIO_LEVELS if t.min() < v < t.max()]
    if levels:
        _labelled_contours(ax_t, rho, ratio, t, levels, (0.5, 0.08), (0.97, 0.92),
                           colors=S.OKABE_ITO["orange"], linewidths=1.0)
    ax_t.set_title(r"time ratio $1 + (r^2-1)/(1-\rho^2)$" if cfg.form == "signed" else
                   r"time ratio, norm form")
    lim = 0.92
    mesh = ax_m.pcolormesh(rho, ratio, pred["misattribution"], cmap="RdBu_r", shading="nearest",
                           vmin=-lim, vmax=lim, rasterized=True)
    cb = fig.colorbar(mesh, ax=ax_m)
    cb.set_label(r"$W_A^{\rm tot}(t_{\rm uni}) - W_A^{\rm tot}(\infty)$")
    m = pred["misattribution"]
    levels = [v for v in MIS_LEVELS if m.min() < v < m.max()]
    if levels:
        _labelled_contours(ax_m, rho, ratio, m, levels, (0.03, 0.1), (0.97, 0.1), colors="black",
                           linewidths=0.8)
    ax_m.set_title(r"misattribution $\rho / r$")
    for ax in (ax_t, ax_m):
        ax.set_xlabel(r"correlation $\rho$")
        ax.set_ylabel(r"$r = \sigma_A/\sigma_B$")
    S.title(fig, "Two-layer late fusion on the toy data: theory")
    return fig


def outputs(cfg, result, prediction):
    """The grids (``pred_*``) and the landmarks as the record."""
    rows = [dict(ratio=r, rho=p, closed_form=exact, from_grid=grid, table=table)
            for r, p, exact, grid, table in prediction["landmarks"]]
    return {"arrays": {f"pred_{k}": v for k, v in prediction.items()},
            "record": {"landmarks": rows, "form": cfg.form,
                       "assumptions": "two-layer linear late fusion, toy data, u0 -> 0, gradient flow "
                                      "(theory.md §6.3-6.4)"}}


def summary(cfg, result, prediction):
    """The printed summary: landmarks (closed form, read from the grid, theory.md §8 table)."""
    pred = prediction
    lines = [f"{NAME}: {cfg.n_rho} x {cfg.n_ratio} grid, rho in [{cfg.rho_min:g}, {cfg.rho_max:g}], "
             f"r in [{cfg.ratio_min:g}, {cfg.ratio_max:g}], {cfg.form} form (two-layer linear late fusion, "
             "toy data, u0 -> 0, gradient flow; theory.md §6.3-6.4)",
             f"  {'r':>4} {'rho':>6} | {'closed form':>11} {'from grid':>10} {'table §8':>10}"]
    for r, p, exact, grid, table in pred["landmarks"]:
        shown = f"{table:10.2f}" if np.isfinite(table) else f"{'(signed)':>10}"
        lines.append(f"  {r:4g} {p:6.2f} | {exact:11.2f} {grid:10.2f} {shown}")
    t, m = pred["time_ratio"], pred["misattribution"]
    lines.append(f"  time ratio range [{t.min():.3g}, {t.max():.3g}]; misattribution range "
                 f"[{m.min():.3g}, {m.max():.3g}]")
    return "\n".join(lines)



if __name__ == "__main__":
    sys.exit(main())
