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
from ._cli import main as _main

NAME = "early_fusion"
KIND = "run"
FUSION = "early"
Config = _two_layer.Config


def run(cfg, execution=None):
    """Train the early-fusion network and measure it; see :func:`sims._two_layer.simulate`."""
    return _two_layer.simulate(cfg, FUSION)


def predict(cfg, result=None):
    """Exact map, gradient flow, leading-order time and fixed points; see :func:`sims._two_layer.predict`."""
    return _two_layer.predict(cfg, FUSION)


def plot(cfg, result, prediction):
    """The figure: trajectories with theory, and hidden-unit snapshots."""
    return _two_layer.trajectory_figure(cfg, result, prediction, FUSION)


def summary(cfg, result, prediction):
    """Measured against predicted times and final weights."""
    return _two_layer.summary(cfg, result, prediction, FUSION)


def outputs(cfg, result, prediction):
    """Arrays and record to save."""
    return _two_layer.outputs(result, prediction)


def main(argv=None):
    """Run the experiment from the command line; returns the exit status."""
    return _main(NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
