"""Reduced learning dynamics of linear fusion networks: gradient-flow ODEs and exact GD maps.

The mathematical objects are trajectories of the end-to-end weights W^tot(t), by method
family (one module each, in the spirit of ``scipy.integrate._ivp``):

- :mod:`~theory.dynamics.flows`: the balanced rank-one gradient flow (:func:`flow`,
  theory.md §6.2-6.3) and the scalar-chain flow of depth-L fusion (:func:`chain_flow`,
  §6.6), through one ``solve_ivp`` wrapper;
- :mod:`~theory.dynamics.maps`: the exact discrete-time maps of two-layer nets at the
  simulation's learning rate (§6.10): the Gram-state map of any two-layer linear net from
  its actual weights (:func:`gram_map`) and the rank-one map (:func:`rank_one_map`), one
  update rule for both, with optional per-block learning rates and OGM-GE modulation;
  :func:`effective_seed` gives an actual net's balanced rank-one seed;
- :mod:`~theory.dynamics.chains`: the exact map of aligned rank-one depth-L chains, one
  scalar per layer (:func:`chain_map`; many chains at once, crossing epochs only:
  :func:`chain_map_many`, with the same update rule);
- :mod:`~theory.dynamics.records`: :class:`Trajectory`, :class:`Seed`, :class:`ChainCrossings`.

The maps reproduce full-batch gradient descent of the network to rounding; the flows are
their η → 0 limits and run 4-14 % early in t_A at lr = 0.04.

Σ may be singular (symmetric positive semi-definite: fewer samples than inputs, theory.md
§6.8): the maps and flows use Σ only through g = Σ_yx − W Σ, and the thresholds come from
the minimum-norm fixed points of :mod:`theory.fixed_points` (Σ_yx Σ⁺). Early fusion from a
small init reaches that M_*; late fusion ends at another interpolant, so B's threshold is
then a convention (half of B's block of the minimum-norm M_*), not half its final value.

Every function returns a :class:`Trajectory` on a given epoch grid (t/τ = lr · epoch,
τ = 1/lr) with the loss, E_g when population statistics are given, and the crossing epochs
of each modality: the first upward crossing of half the modality's value at the fixed
point where late fusion learns it (for K = 2: half of A's unimodal Σ_yx,A Σ_A⁻¹ and half of
B's value at M_*; theory.md §7), by event location for flows and linear interpolation
between epochs for maps (:func:`linfusion.analysis.crossing_time`); NaN when a modality
does not cross. Output dimension is 1 throughout (``syx`` of shape (1, D) or (D,)).

Initial conditions: ``u0`` is the per-layer scale of a balanced rank-one network
(‖W_X^tot(0)‖ = u0^L per modality in late fusion, ‖W^tot(0)‖ = u0^L in early fusion;
the chain's u_X(0) = u0, v(0) = √K u0). Its direction is the growing one, Σ_yx,X, flipped
when that points against the modality's eventual weights (the sign flip of §6.3). Actual
two-layer weights give the effective seed s_X(0) = ‖a + b‖²/4 of §6.10 instead
(:func:`effective_seed`).
"""
from .chains import chain_map, chain_map_many
from .flows import chain_flow, flow
from .maps import effective_seed, gram_map, rank_one_map
from .records import ChainCrossings, Seed, Trajectory

__all__ = ["Trajectory", "Seed", "ChainCrossings", "flow", "chain_flow", "rank_one_map", "gram_map",
           "effective_seed", "chain_map", "chain_map_many"]
