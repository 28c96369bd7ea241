"""Layout checks of a rendered matplotlib figure, for the figure tests.

- :func:`text_overlaps`: pairs of visible, non-empty text artists whose boxes intersect;
- :func:`texts_outside`: text artists not entirely inside the figure;
- :func:`legends_over_data`: legends inside an axes that cover plotted points or lines;
- :func:`pdf_font_types`: the font types embedded in a PDF (Type 3 is what we reject).

Each returns a list of human-readable problems (empty: none), so a test can assert
``problems == []`` and show every problem at once.
"""
from __future__ import annotations

import re
import zlib

import numpy as np

__all__ = ["text_overlaps", "texts_outside", "legends_over_data", "pdf_font_types", "layout_problems"]

_TOL = 1.0   # pixels of grace: anti-aliased neighbours may touch


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _texts(fig):
    """The text artists that are actually drawn (tick labels only for ticks inside the view)."""
    from matplotlib.text import Text

    tick_texts, drawn_ticks = set(), set()
    for ax in fig.axes:
        for axis in ax._axis_map.values():
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_texts.update((id(tick.label1), id(tick.label2)))
            for tick in axis._update_ticks():
                drawn_ticks.update((id(tick.label1), id(tick.label2)))
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        if id(t) in tick_texts and id(t) not in drawn_ticks:
            continue
        out.append(t)
    return out


def _label(t):
    where = t.axes.get_title() or t.axes.get_label() if t.axes is not None else "figure"
    return f"{t.get_text()!r} ({where or 'axes'})"


def _shrunk(bb):
    return bb.x0 + _TOL, bb.y0 + _TOL, bb.x1 - _TOL, bb.y1 - _TOL


def text_overlaps(fig):
    """Pairs of text artists whose rendered boxes intersect."""
    r = _renderer(fig)
    texts = _texts(fig)
    boxes = [_shrunk(t.get_window_extent(r)) for t in texts]
    problems = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = boxes[i], boxes[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                problems.append(f"overlap: {_label(texts[i])} and {_label(texts[j])}")
    return problems


def texts_outside(fig):
    """Text artists whose box leaves the figure."""
    r = _renderer(fig)
    w, h = fig.canvas.get_width_height()
    problems = []
    for t in _texts(fig):
        x0, y0, x1, y1 = _shrunk(t.get_window_extent(r))
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            problems.append(f"outside the figure: {_label(t)}")
    return problems


def legends_over_data(fig, samples=400):
    """Legends placed inside an axes that cover any of its lines or markers."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    r = _renderer(fig)
    problems = []
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None or not leg.get_visible():
            continue
        box = leg.get_window_extent(r)
        for art in ax.get_children():
            if isinstance(art, Line2D) and art.get_visible():
                xy = np.column_stack(art.get_data()).astype(float)
                if len(xy) > 1 and art.get_linestyle() not in ("None", "", " "):
                    t = np.linspace(0, len(xy) - 1, max(samples, len(xy)))
                    xy = np.column_stack([np.interp(t, np.arange(len(xy)), xy[:, k]) for k in range(2)])
            elif isinstance(art, PathCollection) and art.get_visible():
                xy = np.asarray(art.get_offsets(), dtype=float)
            else:
                continue
            xy = xy[np.all(np.isfinite(xy), axis=1)]
            if not len(xy):
                continue
            pts = art.get_transform().transform(xy) if isinstance(art, Line2D) else ax.transData.transform(xy)
            inside = ((pts[:, 0] > box.x0 + _TOL) & (pts[:, 0] < box.x1 - _TOL)
                      & (pts[:, 1] > box.y0 + _TOL) & (pts[:, 1] < box.y1 - _TOL))
            in_axes = ax.get_window_extent(r).contains
            if any(inside[k] and in_axes(*pts[k]) for k in np.flatnonzero(inside)):
                problems.append(f"legend covers data: {art.get_label()!r} in axes {ax.get_title()!r}")
    return problems


def layout_problems(fig):
    """All layout problems of a figure."""
    return text_overlaps(fig) + texts_outside(fig) + legends_over_data(fig)


def pdf_font_types(pdf_bytes):
    """The /Subtype of every font a PDF embeds (e.g. {'TrueType'} or {'Type3'})."""
    types = set(re.findall(rb"/Subtype\s*/(Type3|Type1|TrueType|Type0|CIDFontType2|CIDFontType0)", pdf_bytes))
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf_bytes, flags=re.S):
        try:
            types |= set(re.findall(rb"/Subtype\s*/(Type3|Type1|TrueType|Type0)", zlib.decompress(stream)))
        except zlib.error:
            continue
    return {t.decode() for t in types}
