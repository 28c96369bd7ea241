"""The example notebook (docs/example.ipynb) and the README snippet run from top to bottom.

Its code cells are extracted and executed in order in one namespace (no Jupyter needed);
the checks after the run assert what the notebook claims in its text.
"""
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "example.ipynb"


def test_example_notebook_runs_and_says_true_things(monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    nb = json.loads(NOTEBOOK.read_text())
    ns = {"__name__": "__notebook__"}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}#{cell['id']}", "exec"), ns)
    run, pred, m = ns["run"], ns["pred"], ns["m"]
    assert run.usable
    assert np.max(np.abs(pred.w_tot_all - run.w_tot_all)) < 1e-10          # "equals the simulation to rounding"
    assert m.ratio == pytest.approx(ns["theory"].time_ratio_toy(0.5, 2.0), rel=0.15)
    assert m.misattribution == pytest.approx(0.5 / 2.0, abs=0.05)           # theory.md §6.4: ρ/r
    assert len(ns["result"]) == 6 and set(ns["result"].column("status")) <= {"completed", "converged"}
    import matplotlib.pyplot as plt
    plt.close("all")


README = NOTEBOOK.parents[1] / "README.md"


def test_readme_snippet_runs_and_the_prediction_overlays_the_run(monkeypatch, tmp_path):
    """The README's 'From Python' snippet runs as written; its prediction equals the run."""
    import re

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    text = README.read_text()
    section = text.split("## From Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README: no python block under 'From Python'"
    ns = {"__name__": "__readme__"}
    exec(compile(blocks[0], "README.md#from-python", "exec"), ns)
    run, pred = ns["run"], ns["pred"]
    assert run.usable
    assert np.max(np.abs(pred.w_tot_all - run.w_tot_all)) < 1e-10
    import matplotlib.pyplot as plt
    assert len(plt.gca().lines) == 4                                         # W_A, W_B: simulation and prediction
    plt.close("all")


def test_readme_mitigation_snippet_removes_the_unimodal_phase(monkeypatch, tmp_path):
    """The mitigation lab's README snippet, run after the 'From Python' one: the equalising rate
    ratio brings t_B/t_A to within 10 % of 1 (theory.md §11.1)."""
    import re

    import linfusion as lf

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    text = README.read_text()
    blocks = []
    for title in ("## From Python", "## The mitigation lab"):
        section = text.split(title, 1)[1].split("\n## ", 1)[0]
        blocks += re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    assert len(blocks) == 2
    ns = {"__name__": "__readme__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md#block{i}", "exec"), ns)
    run = ns["run"]
    assert run.usable and run.mitigation is not None
    m = lf.analysis.measure(run, ns["data"])
    assert m.ratio == pytest.approx(1.0, abs=0.1)
    import matplotlib.pyplot as plt
    plt.close("all")
