"""Figure 2 (late fusion): two-layer late fusion learns one modality, pauses, then the other.

A two-layer linear late-fusion network (L = 2, L_f = 2: one hidden branch per modality, summed
at the output) is trained by full-batch gradient descent on the toy data (theory.md §3a;
r = 2, ρ = 0, n = 8192, width 100, per-entry init 1e-9, lr 0.04, 1000 epochs). It learns in
two drops with a unimodal plateau at M_A (loss L(M_A)/L(M_0) = 0.2 / 0.107 / 0.25 for
ρ = 0 / 0.5 / −0.5; W_A = 1 + ρ/r there), time ratio t_B/t_A = 1 + (r² − 1)/(1 − ρ²)
(4 at ρ = 0, 5 at ρ = ±0.5) (theory.md §6.1, §6.3).

Top: loss/L(0) and W_A^tot, W_B^tot over epochs (wide bands), the exact Gram-state map at the
run's learning rate from this run's own weights (dashed, in the series' colour; it equals
the simulation to rounding) and the gradient-flow ODE (dotted, the lr → 0 limit). Bottom:
every hidden unit's first-layer weights in the (x_A, x_B) plane at the epochs (i), (ii),
(iii) marked above; A-branch units lie on the x_A axis, B-branch units on the x_B axis.

Run ``python -m sims.late_fusion`` (add ``--rho 0.5`` or ``--rho -0.5`` for the variants).
From Python: ``late_fusion.run(late_fusion.Config(rho=0.5))``.
"""
from __future__ import annotations

import sys

from . import _two_layer
from ._cli import entry_point

NAME, KIND = "late_fusion", "run"
main = entry_point(NAME)
run, predict, plot, summary, outputs = _two_layer.protocol("late")
Config = _two_layer.Config

if __name__ == "__main__":
    sys.exit(main())
