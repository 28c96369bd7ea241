"""Figure 11: deep fusion time ratio t_B/t_A against σ_A/σ_B, for every fusion layer.

Swept: r = σ_A/σ_B ∈ linspace(1.2, 2.8, 5) at ρ = 0 (theory.md §6.6-6.7, §10). The other
settings (the paper's: depth 4, width 100, init 0.1 'layer', lr 0.04, L_f = 4..1, 5 repeats,
up to 100 000 epochs), the theory drawn and the handling of diverged runs are those of every
deep sweep: see :mod:`sims._deep_sweep`.

Exit status: 0 with a figure; 1 when no run is usable, for example when every run diverges
at ``--lr 5`` (no figure; the table, arrays and record are written and the summary counts the
runs by outcome); 2 for a usage error.

Expected: increasing in r and ordered by L_f; intermediate L_f below the closed form with
the random 'layer' init (theory.md §9.4); L_f = 1 at ≈ 1.

Original command: ``python main.py --mode deep_fusion --init 0.1 --plot_weight --epoch
100000 --sweep ratio_sweep --repeat 5``; here ``python -m sims.ratio_sweep``.
From Python: ``ratio_sweep.run(ratio_sweep.Config.quick())``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from . import _deep, _deep_sweep
from ._cli import main as _main
from ._config import option, reals

NAME = "ratio_sweep"
KIND = "sweep"
AXIS = _deep_sweep.Axis("ratio", NAME, 11, (1.0, 3.0, 100), r"$\sigma_A/\sigma_B$", r"$\sigma_A/\sigma_B$", "r")


@dataclass(frozen=True)
class Config(_deep_sweep.Sweep, _deep.Rho, _deep.Scale):
    """Figure 11: the deep-fusion sweep over r = σ_A/σ_B (theory.md §6.6-6.7)."""

    values: tuple[float, ...] = option(tuple(float(v) for v in np.round(np.linspace(1.2, 2.8, 5), 12)),
                                       "ratios r = σ_A/σ_B to sweep, comma separated, each >= 1 (A is learned "
                                       "first)", check=reals(1.0), quick=(1.5, 2.5), group="sweep")


run, predict, plot, summary, outputs = _deep_sweep.protocol(AXIS)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    return _main(NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
