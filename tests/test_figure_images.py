"""Figure regression images: the key figures at their quick settings, drawn in the 'paper'
style, compared pixel by pixel with the images in ``tests/baseline_images/``.

A change to a figure's layout, palette, labels or data shows up here as an RMS difference
above the tolerance, with the new and the difference image kept under pytest's temporary
directory. Rendering depends on the matplotlib and FreeType versions, so the comparison runs
only with the versions the baselines were drawn with (recorded in ``versions.json``) and
skips otherwise. After an intended change, redraw the baselines and look at them::

    python tests/test_figure_images.py
"""
from __future__ import annotations

import importlib
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import figtest  # noqa: E402

BASELINES = HERE / "baseline_images"
FIGURES = ("late_fusion", "early_fusion", "fusion_depth", "heatmaps", "superficial", "rho_sweep")
DPI = 100
TOLERANCE = 3.0  # RMS over 0..255 grey levels: sub-pixel shifts pass, a moved label or line does not


def _versions():
    import matplotlib.ft2font

    return {"matplotlib": matplotlib.__version__, "freetype": matplotlib.ft2font.__freetype_version__}


def _draw(name, path):
    """Draw ``sims.<name>``'s quick figure in the 'paper' style to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    from sims import _style

    module = importlib.import_module(f"sims.{name}")
    cfg, result, prediction = figtest.quick_run(module)
    _style.use("paper")
    try:
        fig = module.plot(cfg, result, prediction)
        fig.savefig(path, format="png", dpi=DPI)
        plt.close(fig)
    finally:
        _style.use("screen")


@pytest.mark.parametrize("name", FIGURES)
def test_figure_matches_baseline(name, tmp_path):
    from matplotlib.testing.compare import compare_images

    recorded = json.loads((BASELINES / "versions.json").read_text())
    if recorded != _versions():
        pytest.skip(f"baselines drawn with {recorded}, this environment has {_versions()}")
    actual = tmp_path / f"{name}.png"
    _draw(name, actual)
    diff = compare_images(str(BASELINES / f"{name}.png"), str(actual), tol=TOLERANCE)
    assert diff is None, diff


def test_comparison_detects_a_changed_figure(tmp_path):
    """The comparison is able to fail: a baseline against another figure's image differs."""
    from matplotlib.testing.compare import compare_images

    diff = compare_images(str(BASELINES / "late_fusion.png"), str(BASELINES / "early_fusion.png"),
                          tol=TOLERANCE)
    assert diff is not None


def main():
    BASELINES.mkdir(exist_ok=True)
    for name in FIGURES:
        _draw(name, BASELINES / f"{name}.png")
        print(f"drew {BASELINES / name}.png")
    (BASELINES / "versions.json").write_text(json.dumps(_versions(), indent=1) + "\n")


if __name__ == "__main__":
    main()
