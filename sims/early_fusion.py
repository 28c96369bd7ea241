"""Figure 2 (early fusion): two-layer early fusion learns both modalities in one transition.

A two-layer linear early-fusion network (L = 2, L_f = 1: every hidden unit sees both
modalities) is trained by full-batch gradient descent on the toy data (theory.md §3a;
r = 2, ρ = 0, n = 8192, width 100, per-entry init 1e-9, lr 0.04, 1000 epochs). Early fusion
has only the fixed points M_0 and M_*: both modalities are learned in one transition, with
no unimodal plateau, and t_B/t_A is close to 1 (theory.md §6.2). While the weights are
small every hidden unit's first-layer vector aligns with Σyx ((4, 1) at r = 2, ρ = 0), not
with W* = (1, 1); the units turn towards W* during the transition.

Same layout and code as :mod:`sims.late_fusion` (:mod:`sims._two_layer`): the exact map at
the run's learning rate (dashed) and the early-fusion gradient flow from the run's seed
(dotted) over the simulation.

Run ``python -m sims.early_fusion``.
"""
from __future__ import annotations

import sys

from . import _two_layer
from ._cli import entry_point

NAME, KIND = "early_fusion", "run"
main = entry_point(NAME)
run, predict, plot, summary, outputs = _two_layer.protocol("early")
Config = _two_layer.Config

if __name__ == "__main__":
    sys.exit(main())
