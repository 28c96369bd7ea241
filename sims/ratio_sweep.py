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

from . import _deep_sweep
from ._cli import entry_point

NAME, KIND = "ratio_sweep", "sweep"
main = entry_point(NAME)
Config, run, predict, plot, summary, outputs = _deep_sweep.module(NAME)

if __name__ == "__main__":
    sys.exit(main())
