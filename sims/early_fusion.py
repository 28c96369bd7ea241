"""Figure 2 (early fusion): two-layer early-fusion trajectories and hidden units, theory over simulation.

A two-layer linear early-fusion network (L = 2, L_f = 1: every hidden unit sees both
modalities) is trained by full-batch gradient descent on the toy data (THEORY.md §3a;
r = 2, ρ = 0, n = 8192, width 100, per-entry init 1e-9, lr 0.04, 1000 epochs). Early fusion
has only the fixed points M_0 and M_*: both modalities are learned in one transition, with
no unimodal plateau, and t_B/t_A is close to 1 (THEORY.md §6.2). While the weights are
small every hidden unit's first-layer vector aligns with Σyx ((4, 1) at r = 2, ρ = 0), not
with W* = (1, 1); the units turn towards W* during the transition.

Same layout and code path as :mod:`sims.late_fusion` (:mod:`sims._two_layer`), with the
early-fusion ODE (:func:`theory.dynamics.flow` with ``fusion='early'``) from the run's seed.

Run ``python -m sims.early_fusion``.
"""
from __future__ import annotations

import sys

from . import _two_layer

NAME = "early_fusion"
FUSION = "early"


def build_parser():
    """The command-line options (``python -m sims.early_fusion --help``)."""
    return _two_layer.parser(NAME, __doc__.splitlines()[0], snapshots=True)


def run(args):
    """Train the early-fusion network and measure it; see :func:`sims._two_layer.simulate`."""
    return _two_layer.simulate(args, FUSION)


def predict(args):
    """ODE, exact map, leading-order time and fixed points; see :func:`sims._two_layer.predict`."""
    return _two_layer.predict(args, FUSION)


def plot(sim, pred, args):
    """The figure: trajectories with theory, and hidden-unit snapshots."""
    return _two_layer.trajectory_figure(sim, pred, args, FUSION)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    return _two_layer.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
