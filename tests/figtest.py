"""Helpers of the experiment tests: run a module's figure in every house style and check it.

:func:`styled_figures` draws an experiment's figure from one (config, result, prediction)
in the screen, paper and talk styles; :func:`figure_problems` lists what
:mod:`figcheck` finds wrong with each (text overlaps, text outside the figure, legends over
data, Type 3 fonts in its PDF). :func:`rows` turns a loaded CSV table (a pandas DataFrame
or a dict of column arrays) into a list of row dicts, and :func:`cli_error` runs a module's
command line that must fail with a usage error and returns its message.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import figcheck  # noqa: E402
from sims import _io, _style  # noqa: E402

STYLES = _style.STYLES


def figure_problems(module, cfg, result, prediction, style):
    """Layout and font problems of ``module``'s figure in ``style`` (empty list: none)."""
    import matplotlib.pyplot as plt

    _style.use(style)
    try:
        fig = module.plot(cfg, result, prediction)
        assert fig is not None, f"{module.NAME}: plot returned None for a usable run"
        problems = figcheck.layout_problems(fig)
        fonts = figcheck.pdf_font_types(_io.figure_bytes(fig, "pdf"))
        if "Type3" in fonts or not fonts:
            problems.append(f"PDF fonts {sorted(fonts)}: must be embedded TrueType (Type 42), no Type 3")
        plt.close(fig)
    finally:
        _style.use("screen")
    return problems


def rows(table):
    """A loaded CSV table as a list of row dicts (pandas DataFrame or dict of columns)."""
    if hasattr(table, "to_dict"):
        return table.to_dict("records")
    names = list(table)
    return [dict(zip(names, values)) for values in zip(*(table[n] for n in names))]


def cli_error(module, argv, capsys):
    """Run ``module.main(argv)``, expect exit status 2 (a usage error), return stderr."""
    with pytest.raises(SystemExit) as exc:
        module.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err
