"""Figure 12: deep fusion time ratio t_B/t_A against the init scale u0, for every fusion layer.

Swept: the init scale u0 ∈ linspace(0.03, 0.18, 5) (per-layer Frobenius norm) at r = 2, ρ =
0 (theory.md §6.6-6.7, §10). The other settings (the paper's: depth 4, width 100, init 0.1
'layer', lr 0.04, L_f = 4..1, 5 repeats, up to 100 000 epochs), the theory drawn and the
handling of diverged runs are those of every deep sweep: see :mod:`sims._deep_sweep`.

Exit status: 0 with a figure; 1 when no run is usable, for example when every run diverges
at ``--lr 5`` (no figure; the table, arrays and record are written and the summary counts the
runs by outcome); 2 for a usage error.

Expected: L_f = L flat at 1 + (r² − 1) = 4; intermediate L_f rising with u0 (and, with the
random 'layer' init, below the closed form, theory.md §9.4); L_f = 1 at ≈ 1.

Original command: ``python main.py --mode deep_fusion --plot_weight --epoch 100000
--sweep init_sweep --repeat 5``; here ``python -m sims.init_sweep``.
From Python: ``init_sweep.run(init_sweep.Config.quick())``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from . import _deep, _deep_sweep
from ._cli import main as _main
from ._config import option, reals

NAME = "init_sweep"
KIND = "sweep"
AXIS = _deep_sweep.Axis("scale", NAME, 12, (0.01, 0.2, 100), r"init scale $u_0$ (per-layer Frobenius norm)",
                        r"$u_0$", "u0")


@dataclass(frozen=True)
class Config(_deep_sweep.Sweep, _deep.Rho, _deep.Ratio):
    """Figure 12: the deep-fusion sweep over the init scale u0 (theory.md §6.6-6.7)."""

    values: tuple[float, ...] = option(tuple(float(v) for v in np.round(np.linspace(0.03, 0.18, 5), 12)),
                                       "init scales u0 to sweep, comma separated, each in (0, 1)",
                                       check=reals(0.0, 1.0, lo_open=True, hi_open=True), quick=(0.1, 0.18),
                                       group="sweep")


run, predict, plot, summary, outputs = _deep_sweep.protocol(AXIS)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    return _main(NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
