"""The house style of every figure: palette, line conventions, styles, titles.

- **Palette**: Okabe & Ito's colour-blind-safe set. Modality A is blue, B vermillion, the
  loss black; ordered families (fusion layers L_f = 1..L, σ_A/σ_B values) take evenly
  spaced colours of the 'viridis' map, which stays ordered under every common colour
  vision deficiency.
- **Theory against simulation**: simulation is a solid, wide, semi-transparent line (or
  markers); theory is a thin dashed line *in its series' colour* (:func:`theory_kw`), so
  each prediction is tied to the run it predicts.
- **Styles** (``--style``): ``screen`` (default), ``paper`` (8 pt, no titles, 300 dpi) and
  ``talk`` (large text), shipped as matplotlib style files in ``sims/styles/``. All embed
  TrueType (Type 42) fonts in PDF and keep SVG text as text.
- Text uses mathtext (``$W_A^{tot}$``), never plain ``W_A^tot``.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["STYLES", "OKABE_ITO", "COLORS", "use", "current", "figure", "title", "theory_kw", "sim_kw",
           "ordered_colors", "fusion_color", "W_A", "W_B", "W_TOT"]

STYLES = ("screen", "paper", "talk")
_DIR = Path(__file__).resolve().parent / "styles"

#: Okabe & Ito (2008), colour-blind-safe
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
             "grey": "#7F7F7F"}
#: roles: modality A, modality B, loss, generalisation error, early and late fusion
COLORS = {"a": OKABE_ITO["blue"], "b": OKABE_ITO["vermillion"], "loss": OKABE_ITO["black"],
          "eg": OKABE_ITO["green"], "early": OKABE_ITO["orange"], "late": OKABE_ITO["purple"],
          "level": "0.45"}

W_A, W_B, W_TOT = r"$W_A^{\rm tot}$", r"$W_B^{\rm tot}$", r"$W^{\rm tot}$"

_state = {"style": "screen"}


def use(style="screen"):
    """Apply a house style (one of :data:`STYLES`) to matplotlib's global settings."""
    import matplotlib.pyplot as plt

    if style not in STYLES:
        raise ValueError(f"style == {style!r}, must be one of {', '.join(STYLES)}.")
    plt.rcdefaults()
    plt.style.use(str(_DIR / f"{style}.mplstyle"))
    _state["style"] = style


def current():
    """The style in use (``screen`` unless :func:`use` chose another)."""
    return _state["style"]


def figure(nrows=1, ncols=1, *, width=3.6, height=2.7, **kw):
    """A figure of ``nrows × ncols`` panels of width × height inches (scaled for 'talk')."""
    import matplotlib.pyplot as plt

    scale = 1.35 if current() == "talk" else 0.8 if current() == "paper" else 1.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * width * ncols, scale * height * nrows),
                             squeeze=False, layout="constrained", **kw)
    return fig, axes


def title(target, text):
    """A one-line title on a figure or axes; none in the 'paper' style (the caption says it)."""
    if current() == "paper" or not text:
        return
    if hasattr(target, "suptitle"):
        target.suptitle(text)
    else:
        target.set_title(text)


def theory_kw(color="black", **kw):
    """Line keywords of a theory curve: thin, dashed, in its series' colour."""
    return {"color": color, "linestyle": (0, (4, 2)), "linewidth": 1.1, **kw}


def sim_kw(color, **kw):
    """Line keywords of a simulated curve: wide, solid, semi-transparent."""
    return {"color": color, "linestyle": "-", "linewidth": 2.8, "alpha": 0.55, "solid_capstyle": "butt", **kw}


def ordered_colors(n, lo=0.05, hi=0.85):
    """``n`` colours of an ordered family (viridis, dark to light)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    if n == 1:
        return [cmap(lo)]
    return [cmap(lo + (hi - lo) * i / (n - 1)) for i in range(n)]


def fusion_color(fuse_depth, depth):
    """Colour of fusion layer L_f in a depth-L family: L_f = L darkest, L_f = 1 lightest."""
    return ordered_colors(depth)[depth - fuse_depth]
