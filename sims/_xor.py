"""Hidden-unit features on the XOR + linear data, shared by :mod:`sims.xor` and :mod:`sims.single`.

The data (theory.md §3d): x_A ~ N(0, σ_A²) (the linear modality), x_B ∈ {(±1, ±1)}, and
y = x_A − x_B1·x_B2. Without biases the XOR part is exactly
½(relu(x_B1 − x_B2) + relu(x_B2 − x_B1) − relu(x_B1 + x_B2) − relu(−x_B1 − x_B2)): four
perpendicular features toward (±1, ±1) (:data:`XOR_DIRECTIONS`).
"""
from __future__ import annotations

import numpy as np

from . import _style as S

__all__ = ["XOR_DIRECTIONS", "unit_weights", "count_directions", "feature_panel", "output_panel"]

#: the four XOR features, unit vectors toward (±1, ±1)
XOR_DIRECTIONS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) / np.sqrt(2.0)


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


def feature_panel(ax, units_b, units_a, vmax):
    """The units' XOR-plane weights, scaled by the largest unit norm, coloured by their x_A weight.

    Every panel shows its own scale in the axis labels (``w_B1 / 0.031``): the units of
    different runs differ by orders of magnitude, and a plot in raw units would hide it.
    The four XOR directions are drawn dashed. Returns the scatter (for a colour bar).
    """
    norms = np.linalg.norm(units_b, axis=1)
    scale = float(norms.max()) if norms.size and norms.max() > 0 else 1.0
    pts = units_b / scale
    for d in XOR_DIRECTIONS:
        ax.plot([0, 1.3 * d[0]], [0, 1.3 * d[1]], **S.theory_kw("black", linewidth=0.8))
    sc = ax.scatter(pts[:, 0], pts[:, 1], c=units_a, cmap="coolwarm", vmin=-vmax, vmax=vmax, s=16,
                    edgecolors="black", linewidths=0.3, zorder=3)
    ax.set_xlim(-1.15, 1.15)
    ax.set_ylim(-1.15, 1.15)
    ax.set_aspect("equal")
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])
    ax.set_xlabel(f"$w_{{B1}}\\,/\\,{_number(scale)}$")
    ax.set_ylabel(f"$w_{{B2}}\\,/\\,{_number(scale)}$")
    return sc


def _number(x):
    """A positive number for mathtext, two significant digits: 0.31, 4.2, 3.1\\times 10^{-5}."""
    if 1e-2 <= x < 1e3:
        return f"{x:.2g}"
    mant, exp = f"{x:.1e}".split("e")
    return f"{mant}\\times 10^{{{int(exp)}}}"


def output_panel(ax, sim, cfg):
    """The network's output over the input plane (XOR plane at x_A = 0, or the toy (x_A, x_B) plane)."""
    px, py, out = sim["plane_x"], sim["plane_y"], sim["plane_out"]
    vmax = max(float(np.max(np.abs(out))), 1e-300)
    cs = ax.contourf(px, py, out, levels=21, cmap="coolwarm", vmin=-vmax, vmax=vmax)
    ax.figure.colorbar(cs, ax=ax, shrink=0.8, label=r"network output $\hat y$")
    if cfg.data == "xor":
        corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)
        for c in corners:
            ax.plot(*c, "o", mfc="none", mec="black", ms=9)
            ax.annotate(f"{-c[0] * c[1]:+g}".replace("-", "−"), c, xytext=(0, 8), textcoords="offset points", ha="center",
                        fontsize="small")
        ax.plot([], [], "o", mfc="none", mec="black", label=r"XOR corners, target $-x_{B1}x_{B2}$")
        ax.set_xlabel(r"$x_{B1}$")
        ax.set_ylabel(r"$x_{B2}$")
        ax.set_title(r"output over the XOR plane, $x_A = 0$")
    else:
        ga, gb = np.meshgrid(px, py)
        ax.contour(px, py, ga + gb, levels=9, colors="black", linestyles="--", linewidths=0.7)
        ax.plot([], [], color="black", linestyle="--", linewidth=0.7, label=r"teacher $y = x_A + x_B$")
        ax.set_xlabel(r"$x_A$")
        ax.set_ylabel(r"$x_B$")
        ax.set_title("output over the input plane")
