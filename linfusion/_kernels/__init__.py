"""Compiled full-batch gradient descent for the fusion-network family.

The only module that imports numba. Kernels do no validation, no I/O, no random draws and
no allocation inside the epoch loop; :mod:`linfusion._engine` prepares their arguments
(writable, C-contiguous arrays of one dtype, plain Python scalars) and reads the records.

Graph tables
------------
A network is a chain of *nodes* in topological order, fed by *edges*:

- ``nodes[j, N_COL]``: offset (in units) of the node's block in its buffer (the input
  buffer for input nodes, the buffer of computed units otherwise); ``N_UNITS``; ``N_BIAS``
  the offset of its bias in the flat weights, or -1; ``N_KIND`` one of ``KIND_INPUT``
  (filled by the caller), ``KIND_HIDDEN`` (leaky ReLU applied), ``KIND_OUTPUT``.
- ``edges[e, E_OFF]``: offset of the weight block W (``E_ROWS`` x ``E_COLS``, row-major)
  that maps node ``E_SRC`` into node ``E_DST``; ``E_BLAS`` 1 if the sample path computes
  this block's products with BLAS, 0 for the fused loops (the dispatch rule is
  :func:`linfusion._engine.blas_edges`).

Kernels (one compiled specialisation per dtype; R runs per call, each with its own data set
``sched.data_of[r]``, weights W[r] at epoch ``rec.k[r]``):

- ``train_moment(net: Net, sched: Schedule, data: MomentData, rec: Records, W (R, P) f64)``:
  linear nets, squared loss. With D > out the out rows of the identity are sent backward
  (the end-to-end map W_tot appears at the input nodes), then the output error
  G = W_tot Σxx − Σyx (out x D) is sent forward; with D <= out the D basis vectors are sent
  forward and Gᵀ backward. Either way the weight gradient is a sum of outer products over
  those rows: a cost independent of n and proportional to min(D, out) x parameters.
- ``train_gram(gnet: GramNet, sched, data: MomentData, rec, S (R, n_state) f64)``: two-layer
  linear nets through the exact map of (W_tot, W¹ᵀW¹, W²W²ᵀ) per block (theory.md §6.10).
- ``train_feature(net, sched, data: FeatureData, rec, W (R, P) f64)``: late-fusion
  leaky-ReLU nets without bias whose modalities are scalars: the rows are the 2K inputs ±1
  of one modality each, whose output error is the error moment of the feature relu(±x_k)
  (theory.md §6.11).
- ``train_sample(net, sched, data: SampleData, rec, W (R, P) f64 or f32)``: everything
  else; every epoch the (run, sample group) tasks run in parallel (:func:`_sample_tasks`,
  the engine's only parallel loop).

Serial kernels release the GIL; the engine spreads their runs over threads.

Layouts. The moment, feature and W_tot passes are *sample-major* (:func:`forward`,
:func:`backward`): a buffer of m rows (basis vectors, error rows, the 2K inputs) holds node j
as the contiguous (m, units) block at element ``m * nodes[j, N_COL]``, each row's units
contiguous. The sample path is *feature-major* (:func:`forward_fm`, :func:`backward_fm`):
a chunk of m samples holds node j as the (units, m) block at the same offset, so narrow
blocks run fused loops over samples and wide blocks are single BLAS products Z = W S.

Every loop's order depends only on shapes, and sums over samples run in a fixed order
(fixed chunks inside fixed sample groups, the groups summed in group order), so a run gives
the same bits whether it is trained alone, in parallel groups, on any number of threads, or
inside a batch. BLAS calls run single-threaded (the engine sets it), one per task.

Numba's cache index stores the argument types, namedtuple classes included: renaming or
removing a record class below makes an old cache index unreadable (numba then fails while
unpickling it); clear ``__pycache__`` after such a change.
"""
import os

# The sample path opens a parallel region every epoch. OpenMP's default busy-waiting makes
# it many times slower than one thread when other processes use the cores (measured:
# 21 ms against 3.3 ms per epoch); passive waiting costs little on an idle machine. Set
# before numba loads its OpenMP pool; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._base import (BLAS, E_BLAS, E_COLS, E_DST, E_OFF, E_ROWS, E_SRC, KIND_HIDDEN, KIND_INPUT,  # noqa: E402,F401
                    KIND_OUTPUT, LOSS_EXP, LOSS_LOGISTIC, LOSS_MSE, N_BIAS, N_COL, N_KIND, N_UNITS,
                    STATUS_COMPLETED, STATUS_CONVERGED, STATUS_DIVERGED, STATUS_PAUSED, FeatureData, GramNet,
                    MomentData, Net, Records, SampleData, Schedule, compile_for, get_threads, is_compiled,
                    max_threads, set_threads, signature_of)
from .feature import train_feature  # noqa: E402,F401
from .gram import train_gram  # noqa: E402,F401
from .moment import train_moment  # noqa: E402,F401
from .sample import train_sample  # noqa: E402,F401
