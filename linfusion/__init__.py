"""linfusion: fusion networks of any depth and fusion layer, trained exactly and fast.

The engine of the toolkit that reproduces Zhang, Latham & Saxe, "Understanding Unimodal
Bias in Multimodal Deep Linear Networks" (ICML 2024): the network family
(:class:`FusionNet`), the paper's data sets (:mod:`linfusion.data`), compiled full-batch
gradient descent (:func:`train`, :func:`train_many`) and the paper's measurements
(:mod:`linfusion.analysis`). By convention modality 0 is A, the first-learned one.
"""
from . import analysis, data
from ._engine import set_threads
from .architecture import FusionNet
from .training import TrainResult, loss_and_grad, stability_bound, train, train_many

__version__ = "0.1.0"

__all__ = ["FusionNet", "TrainResult", "train", "train_many", "loss_and_grad", "stability_bound",
           "set_threads", "data", "analysis", "__version__"]
