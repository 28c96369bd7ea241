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

from . import _deep_sweep
from ._cli import entry_point

NAME, KIND = "init_sweep", "sweep"
main = entry_point(NAME)
Config, run, predict, plot, summary, outputs = _deep_sweep.module(NAME)

if __name__ == "__main__":
    sys.exit(main())
