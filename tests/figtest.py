"""Helpers of the experiment tests: quick runs, their figures in every house style, usage errors.

- :func:`quick_run`: (config, result, prediction) of a module at its quick setting;
- :func:`figure_problems`: what :mod:`figcheck` finds wrong with the module's figure in one
  style (text overlaps, text outside the figure, legends over data, Type 3 fonts in its PDF);
- :func:`rows`: a loaded CSV table (a pandas DataFrame or a dict of column arrays) as row dicts;
- :func:`cli_error`: run a command line that must fail with a usage error, return its message.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import figcheck  # noqa: E402
from sims import _io, _style  # noqa: E402

STYLES = _style.STYLES


def quick_run(module, **given):
    """(config, result, prediction) of ``module`` at its quick setting (``given`` on top), in this process."""
    from sims._cli import Execution

    cfg = module.Config.quick(**given)
    result = module.run(cfg, Execution(workers=1, progress=False))
    return cfg, result, module.predict(cfg, result)


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
