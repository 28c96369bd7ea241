"""linfusion: fusion networks of any depth and fusion layer, trained exactly and fast.

The engine of the toolkit that reproduces Zhang, Latham & Saxe, "Understanding Unimodal
Bias in Multimodal Deep Linear Networks" (ICML 2024): the network family
(:class:`FusionNet`), the paper's data sets (:mod:`linfusion.data`), compiled full-batch
gradient descent (:func:`train`, :func:`train_many`, in the module
:mod:`linfusion.training`), the paper's measurements (:mod:`linfusion.analysis`) and sweeps
(:mod:`linfusion.sweep`, imported on first use). By convention modality 0 is A, the
first-learned one.

``import linfusion`` loads neither numba (the kernels compile or load on the first
training call) nor scipy.integrate, matplotlib or the optional table packages.
"""
from . import analysis, data, mitigation, training
from ._engine import set_threads
from .architecture import FusionNet
from .mitigation import Mitigation
from .training import STATUSES, TrainResult, loss_and_grad, stability_bound, train, train_many

__version__ = "0.1.0"

__all__ = ["FusionNet", "Mitigation", "TrainResult", "STATUSES", "train", "train_many", "loss_and_grad", "stability_bound",
           "set_threads", "data", "analysis", "training", "mitigation", "sweep", "__version__"]


def __getattr__(name):
    """``linfusion.sweep`` on first use (it imports multiprocessing and the executors)."""
    if name == "sweep":
        import importlib
        return importlib.import_module(".sweep", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
