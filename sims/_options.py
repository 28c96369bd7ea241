"""The option groups experiments share, as configuration mixins.

An experiment's ``Config`` derives from the groups it needs (and :class:`sims._config.Config`
last); it redeclares a field to change its default. Each group checks its own fields; rules
between fields of several groups live in the experiment's ``validate``.
"""
from __future__ import annotations

from dataclasses import dataclass

from linfusion.architecture import INIT_SCHEMES

from ._config import Config, choice, integer, option, real

__all__ = ["Seeded", "ToyData", "Descent", "Init", "Width"]

_DATA = "data"
_TRAIN = "network and training"


@dataclass(frozen=True)
class Seeded(Config):
    """The master seed of an experiment's randomness (data and initial weights)."""

    seed: int = option(0, "master seed of the data and the initial weights", check=integer(lo=0),
                       group="experiment")


@dataclass(frozen=True)
class ToyData(Config):
    """The toy data of theory.md §3a: (x_A, x_B) ~ N(0, [[r², ρr], [ρr, 1]]), y = x_A + x_B + noise."""

    rho: float = option(0.0, "correlation ρ of x_A and x_B, in (-1, 1)",
                        check=real(-1.0, 1.0, lo_open=True, hi_open=True), group=_DATA)
    ratio: float = option(2.0, "r = σ_A/σ_B (> 0; A is the larger-variance modality)",
                          check=real(0.0, lo_open=True), group=_DATA)
    n: int = option(8192, "number of samples", check=integer(lo=2), group=_DATA)
    noise: float = option(0.0, "label-noise standard deviation", check=real(0.0), group=_DATA)


@dataclass(frozen=True)
class Descent(Config):
    """Full-batch gradient descent: learning rate, epochs, stopping, recording, weight decay."""

    lr: float = option(0.04, "learning rate (τ = 1/lr epochs)", check=real(0.0, lo_open=True), group=_TRAIN)
    epochs: int = option(1000, "maximum number of epochs", check=integer(lo=1), group=_TRAIN)
    tol: float = option(0.0, "stop once the loss is below tol (0: never)", check=real(0.0), group=_TRAIN)
    record_every: int = option(1, "record the loss and W_tot every k epochs", check=integer(lo=1), group=_TRAIN)
    weight_decay: float = option(0.0, "weight decay λ (adds λw to the gradient)", check=real(0.0), group=_TRAIN)


@dataclass(frozen=True)
class Init(Config):
    """The initialisation scheme and scale (theory.md §5)."""

    init: str = option("entry", "initialisation scheme: entry (N(0, scale²) per weight, the paper's two-layer "
                       "nets), layer (Frobenius norm per layer, its deep nets), balanced (rank-one, exactly "
                       "balanced)", choices=INIT_SCHEMES, check=choice(*INIT_SCHEMES), group=_TRAIN)
    scale: float | None = option(None, "initialisation scale u0 (> 0)", check=real(0.0, lo_open=True),
                                 group=_TRAIN, none_means="the library's: 1e-9 for entry, 0.1 otherwise")


@dataclass(frozen=True)
class Width(Config):
    """The hidden width of every layer (per branch before fusion)."""

    width: int = option(100, "hidden width h", check=integer(lo=1), group=_TRAIN)
