"""Learning schedules of K modalities: colours, measurement and panels shared by two experiments.

Used by :mod:`sims.diagnose` (a user's data, theory.md §12) and :mod:`sims.many_modalities`
(K = 3 and 4 modalities, §6.3): one colour per modality, the first upward crossing of a
modality's progress through ½ (theory.md §7.1), and the panels that draw a staircase of
plateaus with the predicted times over the simulation in the house style.
"""
from __future__ import annotations

import numpy as np

from linfusion.analysis import crossing_time

from . import _style as S

__all__ = ["modality_colors", "crossings", "draw_progress", "draw_loss", "mark_times", "style_handles"]

_ORDER = ("blue", "vermillion", "purple", "orange", "sky", "yellow", "grey")


def modality_colors(k):
    """``k`` colours, one per modality: 0 blue and 1 vermillion (as A and B), then Okabe-Ito colours other than
    the loss (black) and held-out loss (green) ones."""
    return [S.OKABE_ITO[_ORDER[i % len(_ORDER)]] for i in range(k)]


def crossings(epochs, progress):
    """Per column of ``progress`` (n, K) its first upward crossing of ½, interpolated (NaN: none)."""
    ep = np.asarray(epochs, dtype=float)
    out = np.full(progress.shape[1], np.nan)
    for k in range(progress.shape[1]):
        col = progress[:, k]
        if ep.size > 1 and np.all(np.isfinite(col)):
            out[k] = crossing_time(ep, col, 0.5)
    return out


def draw_progress(ax, names, colors, *, sim=None, theory=None, theory_label="exact map"):
    """Each modality's progress over epochs: simulation (wide band) and theory (dashed, same colour).

    ``sim`` and ``theory`` are (epochs (n,), progress (n, K)) or None.
    """
    for k, (name, color) in enumerate(zip(names, colors)):
        if sim is not None:
            ax.plot(sim[0], sim[1][:, k], **S.sim_kw(color), label=f"{name}, simulation")
        if theory is not None:
            ax.plot(theory[0], theory[1][:, k], **S.theory_kw(color), label=f"{name}, {theory_label}")
    ax.axhline(0.5, color=S.COLORS["level"], linewidth=0.6, linestyle=":", zorder=0)
    ax.set_xlabel("epoch")


def draw_loss(ax, *, sim=None, theory=None, levels=(), level_labels=()):
    """Loss over its initial value: simulation (band), theory (dashed) and the plateau levels (dotted)."""
    if sim is not None:
        ax.plot(sim[0], sim[1], **S.sim_kw(S.COLORS["loss"]), label="simulation")
    if theory is not None:
        ax.plot(theory[0], theory[1], **S.theory_kw(S.COLORS["loss"]), label="exact map")
    for level, text in zip(levels, level_labels):
        ax.axhline(level, color=S.COLORS["level"], linewidth=0.7, linestyle=(0, (1, 2)), zorder=0)
        if text:
            ax.annotate(text, (1.0, level), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                        textcoords="offset points", ha="right", va="bottom", fontsize="x-small", color="0.3")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"loss / $L(0)$")


def mark_times(ax, times, colors, y=0.5, marker="v", label=None):
    """Hollow markers at the predicted times (one per modality, in its colour), at height ``y``."""
    first = True
    for t, color in zip(times, colors):
        if np.isfinite(t):
            ax.plot([t], [y], linestyle="none", marker=marker, markersize=6, markerfacecolor="none",
                    markeredgecolor=color, markeredgewidth=1.3, label=label if first else None, zorder=5)
            first = False


def style_handles(names, colors, *, theory_label="exact map at lr: dashed", marker_label=None, marker="v",
                  simulation=True):
    """Legend handles: one per modality (its colour), then the line kinds (no simulation: theory only)."""
    from matplotlib.lines import Line2D

    out = [Line2D([], [], label=name, **S.sim_kw(color)) for name, color in zip(names, colors)]
    if simulation:
        out.append(Line2D([], [], label="simulation: wide band", color="0.6", linewidth=2.8, alpha=0.55))
    out.append(Line2D([], [], label=theory_label, **S.theory_kw("black")))
    if marker_label:
        out.append(Line2D([], [], linestyle="none", marker=marker, markerfacecolor="none", markeredgecolor="black",
                          label=marker_label))
    return out
