"""Figure 2 (late fusion): two-layer late-fusion trajectories and hidden units, theory over simulation.

A two-layer linear late-fusion network (L = 2, L_f = 2: one hidden branch per modality, summed
at the output) is trained by full-batch gradient descent on the toy data (THEORY.md §3a;
r = 2, ρ = 0, n = 8192, width 100, per-entry init 1e-9, lr 0.04, 1000 epochs). It learns in
two drops with a unimodal plateau at M_A (loss L(M_A)/L(M_0) = 0.2 / 0.107 / 0.25 for
ρ = 0 / 0.5 / −0.5; W_A = 1 + ρ/r there), time ratio t_B/t_A = 1 + (r² − 1)/(1 − ρ²)
(4 at ρ = 0, 5 at ρ = ±0.5) (THEORY.md §6.1, §6.3).

Top panel: loss/L(0), W_A^tot and W_B^tot over epochs (colour), the balanced rank-one ODE
started from this run's own effective seed (black dashes, :func:`theory.dynamics.flow`),
measured and predicted t_A and t_B, and the plateau levels. Bottom panels: every hidden
unit's first-layer weights in the (x_A, x_B) plane at a few epochs, with the Σyx and W*
directions (A-branch units lie on the x_A axis, B-branch units on the x_B axis). The summary
also checks the exact Gram-state map (:func:`theory.dynamics.gram_map`) against the run.

Run ``python -m sims.late_fusion`` (add ``--rho 0.5`` or ``--rho -0.5`` for the variants).
"""
from __future__ import annotations

import sys

from . import _two_layer

NAME = "late_fusion"
FUSION = "late"


def build_parser():
    """The command-line options (``python -m sims.late_fusion --help``)."""
    return _two_layer.parser(NAME, __doc__.splitlines()[0], snapshots=True)


def run(args):
    """Train the late-fusion network and measure it; see :func:`sims._two_layer.simulate`."""
    return _two_layer.simulate(args, FUSION)


def predict(args):
    """ODE, exact map, leading-order times and fixed points; see :func:`sims._two_layer.predict`."""
    return _two_layer.predict(args, FUSION)


def plot(sim, pred, args):
    """The figure: trajectories with theory, and hidden-unit snapshots."""
    return _two_layer.trajectory_figure(sim, pred, args, FUSION)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    return _two_layer.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
