"""theory: closed forms and reduced dynamics of unimodal bias in multimodal linear networks.

Zhang, Latham & Saxe, "Understanding Unimodal Bias in Multimodal Deep Linear Networks"
(ICML 2024); the formulas are those of ``docs/theory.md``. Everything here takes second
moments, scalars and arrays and returns floats, arrays or small frozen records:

- :mod:`theory.fixed_points`: fixed points of late and early fusion, their losses, and
  late fusion's learning path (K >= 2 modalities, any positive semi-definite covariance;
  minimum-norm points when it is singular).
- :mod:`theory.two_layer`: two-layer late fusion: time ratio, leading-order times,
  K-modality schedule, predicted misattribution, superficial-preference regions.
- :mod:`theory.deep`: the balanced scalar chain's closed-form times for depth L and
  fusion layer L_f.
- :mod:`theory.dynamics`: the reduced ODEs (one ``solve_ivp`` wrapper) and the exact
  discrete-time maps (Gram state, rank-one, scalar chain) at a simulation's learning rate.
- :mod:`theory.mitigation`: remedies against unimodal bias: OGM-GE scores and coefficients,
  per-block learning rates (leading-order times, the equalising rate ratio), the modified
  moments of expected modality dropout and unimodal auxiliary losses. The exact maps take
  ``lr_scales`` and ``ogm_alpha``.
- :mod:`theory.prediction`: :func:`predict`, the exact map's trajectory of a training run
  (a :class:`linfusion.TrainResult` and its data) on the run's epochs, shaped like the run.
- :mod:`theory.diagnosis`: :func:`diagnose`, the front door for a user's data (K >= 2
  modalities): strengths, learning order and times, time ratio per fusion depth,
  misattribution, superficial preference, held-out deficit and advice, as one report
  (:class:`Diagnosis`); ``confirm=True`` also trains the networks.

Conventions. Modality 0 is A, the first-learned one. Times are in units of τ = 1/lr
(``*_tau``) or in epochs. A number that is missing, not reached or undefined (a modality
that never crosses its threshold, a time in epochs without a learning rate) is NaN, never
None. Measurements on a trajectory (crossing times, E_g, the measured misattribution)
live in :mod:`linfusion.analysis` and are used here, not redefined:
:func:`linfusion.analysis.crossing_time`, :func:`linfusion.analysis.generalization_error`.
``import theory`` loads neither numba, ``scipy.integrate`` nor matplotlib.
"""
from . import deep, diagnosis, dynamics, fixed_points, mitigation, prediction, two_layer
from .deep import (DeepTimes, deep_lag, deep_t_a, deep_time_ratio, deep_time_ratio_vector,
                   deep_times, deep_times_vector)
from .dynamics import (ChainCrossings, Seed, Trajectory, chain_flow, chain_map, chain_map_many,
                       effective_seed, flow, gram_map, rank_one_map)
from .fixed_points import (FixedPoint, early_fixed_points, late_fixed_point, late_fixed_points,
                           late_learning_path, quadratic_loss, residual_correlation)
from .two_layer import (LateTimes, LearningSchedule, contribution_threshold, late_schedule,
                        late_times, predicted_misattribution, predicted_misattribution_toy,
                        preference_region, prioritisation_threshold, time_ratio, time_ratio_toy,
                        toy_stats)
from .mitigation import (auxiliary_moments, auxiliary_schedule, dropout_moments, effective_lr_scales,
                         equalising_lr_ratio, late_schedule_lrs, ogm_coefficients, ogm_scores, time_ratio_lrs)
from .prediction import Prediction, predict
from .diagnosis import Diagnosis, diagnose

__all__ = [
    "fixed_points", "two_layer", "deep", "dynamics", "prediction", "Prediction", "predict",
    "FixedPoint", "residual_correlation", "quadratic_loss",
    "late_fixed_point", "late_fixed_points", "late_learning_path", "early_fixed_points",
    "toy_stats", "time_ratio", "time_ratio_toy", "LateTimes", "late_times", "LearningSchedule",
    "late_schedule", "predicted_misattribution", "predicted_misattribution_toy",
    "prioritisation_threshold", "contribution_threshold", "preference_region",
    "DeepTimes", "deep_t_a", "deep_lag", "deep_time_ratio", "deep_times",
    "deep_time_ratio_vector", "deep_times_vector",
    "Trajectory", "Seed", "ChainCrossings", "flow", "chain_flow", "rank_one_map", "chain_map",
    "chain_map_many", "gram_map", "effective_seed",
    "mitigation", "ogm_scores", "ogm_coefficients", "effective_lr_scales", "late_schedule_lrs",
    "time_ratio_lrs", "equalising_lr_ratio", "dropout_moments", "auxiliary_moments", "auxiliary_schedule",
    "diagnosis", "Diagnosis", "diagnose",
]
