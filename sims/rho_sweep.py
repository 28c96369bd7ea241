"""Figure 10: deep fusion time ratio t_B/t_A against the correlation ρ, for every fusion layer.

Swept: ρ ∈ linspace(−0.9, 0.9, 9) at r = 2 (theory.md §6.6-6.7, §10). The other settings
(the paper's: depth 4, width 100, init 0.1 'layer', lr 0.04, L_f = 4..1, 5 repeats, up to
100 000 epochs), the theory drawn and the handling of diverged runs are those of every deep
sweep: see :mod:`sims._deep_sweep`.

Exit status: 0 with a figure; 1 when no run is usable, for example when every run diverges
at ``--lr 5`` (no figure; the table, arrays and record are written and the summary counts the
runs by outcome); 2 for a usage error.

Expected: ordered by L_f; L_f = L symmetric in ρ and close to theory; intermediate L_f
asymmetric (negative ρ larger) and, with the random 'layer' init, below the closed form
(the effective aligned init is smaller than init, theory.md §9.4); L_f = 1 at ≈ 1.

Original command: ``python main.py --mode deep_fusion --init 0.1 --plot_weight --epoch
100000 --sweep rho_sweep --repeat 5``; here ``python -m sims.rho_sweep``.
From Python: ``rho_sweep.run(rho_sweep.Config.quick())``.
"""
from __future__ import annotations

import sys

from . import _deep_sweep
from ._cli import entry_point

NAME, KIND = "rho_sweep", "sweep"
main = entry_point(NAME)
Config, run, predict, plot, summary, outputs = _deep_sweep.module(NAME)

if __name__ == "__main__":
    sys.exit(main())
