"""Figure 10: deep fusion time ratio t_B/t_A against the correlation ρ, for every fusion layer.

THEORY.md §6.6-6.7, §9.4, §10 item 10. Depth L = 4, width 100, linear; toy data r = 2,
ρ ∈ linspace(−0.9, 0.9, 9), n = 8192; init 0.1 (per-layer Frobenius norm); lr 0.04; L_f =
4, 3, 2, 1; 5 repeats per point, up to 100 000 epochs with early stopping at loss < 1e-4
(runs whose final loss stays >= 1e-3 are dropped, as in the paper). Simulation (colour)
against the closed-form scalar-chain ratio (:func:`theory.deep.deep_time_ratio` at u0 =
init, black dashes) and the exact chain map started from each run's own initial layer
scales (black crosses; see :mod:`sims._deep`). ``--init-scheme balanced`` (or ``both``)
uses the rank-one balanced initialisation, under which simulation meets the chain.

Expected: ordered by L_f; L_f = L symmetric in ρ and close to theory; intermediate L_f
asymmetric (negative ρ larger) and, with the random 'layer' init, below the closed form
(the effective aligned init is smaller than init, §9.4); L_f = 1 at ≈ 1.

Original command: ``python main.py --mode deep_fusion --init 0.1 --plot_weight --epoch
100000 --sweep rho_sweep --repeat 5``; here ``python -m sims.rho_sweep``.
"""
from . import _deep

AXIS = _deep.AXES["rho"]


def run(args):
    """Simulate the sweep (arrays only); see :func:`sims._deep.run`."""
    return _deep.run(args, AXIS)


def predict(args, sim=None):
    """Closed-form curves, and with ``sim`` the chain map from each run's seed; see :func:`sims._deep.predict`."""
    return _deep.predict(args, AXIS, sim)


def plot(sim, pred, args):
    """The figure; see :func:`sims._deep.plot`."""
    return _deep.plot(sim, pred, args, AXIS)


def main(argv=None):
    """Run, predict, plot, save and print the summary; returns 0."""
    return _deep.main(AXIS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
