"""Figure 2 generalised: one fusion network of any depth, fusion layer, activation, loss and data.

The original code's ``--sweep single`` for every configuration the specialised figure modules
do not cover (``python -m sims`` sends them here): a shallow net (L = 1), deep or intermediate
fusion (any L, L_f), leaky-ReLU nets, biases, weight decay, the exponential and logistic
losses, and the toy, "multi" and XOR + linear data sets (theory.md §3a, §3b, §3d). One
network ``FusionNet((d_A, d_B), 1, width, depth, fuse_depth, slope, bias)`` is trained by
full-batch gradient descent (:func:`linfusion.train`) from the scheme ``--init`` at scale
``--scale`` (``entry``: every weight N(0, scale²), the paper's two-layer nets; ``layer``:
per-layer Frobenius norm, the paper's deep nets, theory.md §5). Without ``--scale`` the
library's default scale of the scheme is used (1e-9 for entry, 0.1 otherwise).

Panels: the training loss over epochs; each modality's end-to-end weights W_A^tot, W_B^tot
(the signed scalar for the toy data's scalar modalities, the Frobenius norm otherwise,
:func:`linfusion.analysis.modality_signal`); the generalisation error E_g with the population
Σ and W* when the data set has them (toy, multi) and the network is linear; with
``--features`` the hidden units' first-layer weights (toy: the (x_A, x_B) plane with the Σyx
direction, along which early-fusion units align while small, §6.2; XOR: the (x_B1, x_B2)
plane coloured by each unit's x_A weight, with the four XOR directions); with ``--contour``
the network's output over the input plane (toy: (x_A, x_B), with the teacher's contours;
XOR: (x_B1, x_B2) at x_A = 0, with the corners' XOR targets).

Theory, where it holds exactly, i.e. for linear networks with the squared loss and no
biases. Two-layer nets (L = 2, late or early fusion): the exact Gram-state map at the run's
learning rate from the run's own initial weights (:func:`theory.dynamics.gram_map`, with
weight decay; dashed in each series' colour: the theory curve, equal to the simulation to
rounding). Every linear net: the fixed points of theory.md §6.1 on the run's *empirical* moments
(:mod:`theory.fixed_points`): loss levels L(M_0), L(M_*) and, when the modalities are fused
after the first layer (L_f >= 2, so that each modality's path can be switched off alone),
the unimodal plateau L(M_A) and W_A(M_A) = Σyx_A Σ_A⁻¹; the end values W(M_*); their E_g
(grey dotted levels, labelled beside the panel).
The summary prints the measured t_A, t_B (first upward crossing of ½ W_A(M_A) and ½ W_B(M_*),
interpolated: convention 'interp', theory.md §7) against the closed-form time ratio
(:func:`theory.deep.deep_time_ratio_vector` at u0 = scale: §6.3 for L_f = L, §6.6 otherwise;
1 for L_f = 1). With weight decay the fixed points move (ridge); the levels drawn ignore it.

ReLU networks (slope 0): W^tot is bookkeeping (the product of the weight matrices, ignoring
φ); on a linear target it converges to ≈ 2× the linear coefficients, and the times double
(theory.md §6.9), so t_A, t_B are measured at doubled thresholds; no levels are drawn.

Exponential and logistic losses are margin losses on labels ±1: the network is trained on
sign(y) of the chosen data (y = 0 counts as +1), without population statistics, so no E_g
and no theory is drawn.

Randomness: ``np.random.SeedSequence(seed)`` has two children, the data (0) and the initial
weights (1). At n < D (multi data) the empirical Σ is singular; the fixed points are then
the minimum-norm least-squares solutions (:mod:`theory.fixed_points` accepts a
positive semi-definite Σ).

Run ``python -m sims.single --depth 4 --fuse-depth 2 --init layer --scale 0.1 --epochs 8000``
(intermediate fusion), ``python -m sims.single --slope 0`` (ReLU late fusion), ``python -m
sims.single --data xor --slope 0 --fuse-depth 1 --features --contour`` (XOR, early fusion).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from linfusion import FusionNet, train
from linfusion.analysis import generalization_error, measure, modality_signal
from linfusion.architecture import default_scale
from linfusion.data import from_arrays, multi, toy, xor_linear
from linfusion.training import LOSSES
from theory.deep import deep_time_ratio_vector
from theory.dynamics import gram_map
from theory.fixed_points import early_fixed_points, late_fixed_points

from . import _style as S
from ._cli import entry_point
from ._config import choice, integer, option, real
from ._options import Descent, Init, Seeded, ToyData, Width
from ._two_layer import layer_weights
from ._xor import feature_panel, output_panel, unit_weights

NAME = "single"
KIND = "run"
main = entry_point(NAME)
DATA = ("toy", "multi", "xor")
CONVENTION = ("t_A, t_B: first upward crossing of ½W_A(M_A), ½W_B(M_*) of the empirical moments "
              "(×2 for ReLU, theory.md §6.9), interpolated (theory.md §7, 'interp')")
_POINT_NAMES = {(): "M_0", (0,): "M_A", (1,): "M_B", (0, 1): "M_*"}
_USABLE = ("completed", "converged")
_LEVEL = dict(color=S.COLORS["level"], linestyle=(0, (1, 2)), linewidth=0.9)
_NET = "network and training"


@dataclass(frozen=True)
class Config(Seeded, ToyData, Descent, Init, Width):
    """One fusion network of any depth, fusion layer, activation, loss and data set."""

    QUICK = {"n": 512, "width": 20}

    data: str = option("toy", "toy: theory.md §3a; multi: §3b (A = first half, variance 3); xor: XOR + linear, "
                       "§3d", choices=DATA, check=choice(*DATA), group="data")
    dim: int = option(100, "multi: total input dimension D (even)", check=integer(lo=2), group="data")
    sigma_a: float = option(1.0, "xor: standard deviation of the linear modality x_A (not its variance)",
                            check=real(0.0, lo_open=True), group="data")
    depth: int = option(2, "total depth L", check=integer(lo=1), group=_NET)
    fuse_depth: int | None = option(None, "fusion layer L_f, 1 <= L_f <= depth (1: early fusion). Deep nets as "
                                    "in the paper: --depth 4 --init layer --scale 0.1", check=integer(lo=1),
                                    group=_NET, none_means="the depth (late fusion)")
    slope: float = option(1.0, "leaky-ReLU slope, in [0, 1] (1 linear, 0 ReLU)", check=real(0.0, 1.0), group=_NET)
    bias: bool = option(False, "give every layer a bias", group=_NET)
    loss: str = option("mse", "loss: mse (squared, ½<(y − ŷ)²>), exponential or logistic (margin losses, trained "
                       "on sign(y))", choices=LOSSES, check=choice(*LOSSES), group=_NET)
    features: bool = option(False, "draw the hidden units' first-layer weights at the end (toy or xor data, "
                            "depth >= 2)", group="extra panels")
    contour: bool = option(False, "draw the network's output over the input plane at the end (toy or xor data)",
                           group="extra panels")

    def validate(self):
        if self.fuse_depth is not None and self.fuse_depth > self.depth:
            raise ValueError(f"fuse_depth == {self.fuse_depth}, must lie in 1..depth ({self.depth}).")
        if self.data == "multi" and self.dim % 2:
            raise ValueError(f"dim == {self.dim}, must be even (two halves, one per modality).")
        if self.data == "xor" and self.n % 4:
            raise ValueError(f"n == {self.n}, must be a multiple of 4 with data 'xor' (each XOR corner n/4 times).")
        for name in ("features", "contour"):
            if getattr(self, name) and self.data == "multi":
                raise ValueError(f"{name} == True with data 'multi', needs a two-dimensional input plane: data "
                                 "'toy' or 'xor'.")
        if self.features and self.depth < 2:
            raise ValueError(f"features == True with depth {self.depth}: a one-layer net has no hidden units.")

    @property
    def fusion_layer(self):
        """L_f: ``fuse_depth``, or the depth (late fusion) when it is not given."""
        return self.depth if self.fuse_depth is None else self.fuse_depth

    @property
    def linear_theory(self):
        """True when the fixed points and the exact map hold: linear, no bias, squared loss."""
        return self.slope == 1.0 and not self.bias and self.loss == "mse"

    @property
    def init_scale(self):
        """The initialisation scale used: ``scale``, or the library's default for ``init``."""
        return default_scale(self.init) if self.scale is None else self.scale


# ---------------------------------------------------------------------- data and network
def dataset(cfg):
    """The training set of the run, from child 0 of ``SeedSequence(cfg.seed)``.

    With the exponential or logistic loss the targets are sign(y) (labels ±1) and the
    population statistics are dropped.
    """
    rng = np.random.SeedSequence(cfg.seed).spawn(2)[0]
    if cfg.data == "toy":
        ds = toy(cfg.rho, cfg.ratio, cfg.n, cfg.noise, rng=rng)
    elif cfg.data == "multi":
        ds = multi(cfg.dim, cfg.n, cfg.noise, rng=rng)
    else:
        ds = xor_linear(cfg.sigma_a, cfg.n, rng=rng)
    if cfg.loss != "mse":
        ds = from_arrays(ds.xs, np.where(ds.y >= 0.0, 1.0, -1.0))
    return ds


def network(cfg, ds):
    """The FusionNet of the run."""
    return FusionNet(ds.in_dims, 1, cfg.width, cfg.depth, cfg.fusion_layer, cfg.slope, cfg.bias)




def _signal(block):
    """modality_signal of one (out, d_k) block: the signed scalar or the norm."""
    return float(modality_signal(np.asarray(block)[None])[0])


# ---------------------------------------------------------------------- simulation
def _plane(cfg):
    """Grid of the contour panel: its two axes and the inputs per modality, shape (m, d_k)."""
    if cfg.data == "xor":
        u = np.linspace(-1.6, 1.6, 81)
        g1, g2 = np.meshgrid(u, u)
        xs = [np.zeros((g1.size, 1)), np.stack([g1.ravel(), g2.ravel()], axis=1)]
        return u, u, xs
    a = np.linspace(-3.0 * cfg.ratio, 3.0 * cfg.ratio, 81)
    b = np.linspace(-3.0, 3.0, 81)
    ga, gb = np.meshgrid(a, b)
    return a, b, [ga.ravel()[:, None], gb.ravel()[:, None]]


def _features(net, w, cfg):
    """First-layer weights of the hidden units in the input plane, and a colour value per unit.

    Toy data: rows (weight on x_A, weight on x_B); with L_f >= 2 the A-branch units lie on
    the x_A axis and the B-branch units on the x_B axis; colour = branch (0 A, 1 B, -1 shared).
    XOR data: the (x_B1, x_B2) weights of the units that see x_B, coloured by their x_A weight.
    """
    if cfg.data == "xor":
        return unit_weights(net, w)
    a = net.blocks(w, modality=0, layer=1)[0][:, 0]
    b = net.blocks(w, modality=1, layer=1)[0][:, 0]
    if net.fuse_depth == 1:
        return np.stack([a, b], axis=1), np.full(a.size, -1.0)
    zero = np.zeros_like(a)
    units = np.concatenate([np.stack([a, zero], axis=1), np.stack([zero, b], axis=1)])
    return units, np.concatenate([np.zeros(a.size), np.ones(b.size)])


def run(cfg, execution=None):
    """Train the network and measure it.

    t_A and t_B are measured (theory.md §7, 'interp') for linear and ReLU nets with the squared
    loss and no bias on the toy and multi data: first upward crossings of ½W_A(M_A) and
    ½W_B(M_*) on the empirical moments, doubled for ReLU (§6.9).

    Returns
    -------
    dict
        ``epochs``, ``loss``, ``w_a``, ``w_b`` (signals, n_rec), ``w_tot`` (n_rec, D), ``eg``
        (n_rec; linear nets with population statistics only), ``status``, ``usable``,
        ``message``, ``path``, ``w0``, ``w`` (initial and final weights); ``t_a``, ``t_b``,
        ``ratio`` (NaN when not measured or not reached), ``plateau_epoch``, ``plateau_loss``
        (the record nearest (t_A + t_B)/2); with ``features`` ``units`` (n_units, 2) and
        ``unit_color`` (n_units,); with ``contour`` ``plane_x`` (81,), ``plane_y`` (81,),
        ``plane_out`` (81, 81).
    """
    ds = dataset(cfg)
    net = network(cfg, ds)
    init_rng = np.random.SeedSequence(cfg.seed).spawn(2)[1]
    res = train(net, ds, lr=cfg.lr, epochs=cfg.epochs, init=cfg.init, scale=cfg.scale, rng=init_rng,
                loss=cfg.loss, weight_decay=cfg.weight_decay, record_every=cfg.record_every, tol=cfg.tol)
    usable = res.status in _USABLE
    sim = dict(epochs=res.epochs, loss=res.loss, w_a=modality_signal(res.w_tot[0]),
               w_b=modality_signal(res.w_tot[1]), w_tot=res.w_tot_all[:, 0, :], status=res.status, usable=usable,
               message=res.message, path=res.path, w0=res.w0, w=res.w,
               t_a=np.nan, t_b=np.nan, ratio=np.nan, plateau_epoch=np.nan, plateau_loss=np.nan)
    if not usable:
        return sim
    if res.eg is not None and cfg.slope == 1.0 and not cfg.bias:
        sim["eg"] = res.eg
    if cfg.loss == "mse" and cfg.data != "xor" and cfg.depth >= 2 and not cfg.bias and cfg.slope in (0.0, 1.0):
        # thresholds from the known end points (theory.md §7): ½W_A(M_A) and ½W_B(M_*) of the
        # empirical moments, doubled for ReLU, whose W_tot converges to ≈ 2x on a linear target (§6.9)
        mo = ds.moments()
        m_a, m_star = late_fixed_points(mo.sxx, mo.syx, mo.syy, ds.in_dims)[1::2]
        m = measure(res, wa_uni=_signal(m_a.block(0)), wb_star=_signal(m_star.block(1)), convention="interp",
                    relu=cfg.slope == 0.0)
        sim.update(t_a=m["t_a"], t_b=m["t_b"], ratio=m["ratio"])
        if np.isfinite(m["t_a"]) and np.isfinite(m["t_b"]):
            i = int(np.argmin(np.abs(res.epochs - 0.5 * (m["t_a"] + m["t_b"]))))
            sim.update(plateau_epoch=float(res.epochs[i]), plateau_loss=float(res.loss[i]))
    if cfg.features:
        sim["units"], sim["unit_color"] = _features(net, res.w, cfg)
    if cfg.contour:
        px, py, xs = _plane(cfg)
        sim.update(plane_x=px, plane_y=py, plane_out=net.forward(res.w, xs)[:, 0].reshape(py.size, px.size))
    return sim


# ---------------------------------------------------------------------- theory
def _time_ratio(cfg, mo, dims):
    """Closed-form t_B/t_A (NaN where no A-then-B formula applies)."""
    if cfg.depth < 2:
        return np.nan
    if cfg.fusion_layer == 1:
        return 1.0                          # early fusion: one transition (§6.2, §6.6)
    scale = cfg.init_scale
    if not (cfg.fusion_layer == cfg.depth or scale < 1.0):
        return np.nan
    u0 = scale if scale < 1.0 else 0.5     # L_f = L: independent of u0 (§6.6)
    try:
        return deep_time_ratio_vector(cfg.depth, cfg.fusion_layer, mo.sxx, mo.syx, dims, u0)
    except ValueError:                      # B first on these statistics: no A-then-B ratio
        return np.nan


def _exact_map(cfg, ds, mo, result):
    """The Gram-state map of a two-layer linear run from its own initial weights, or {}."""
    if not (cfg.linear_theory and cfg.depth == 2 and result is not None and "w0" in result):
        return {}
    net = network(cfg, ds)
    w1, w2 = layer_weights(net, result["w0"])
    grid = np.arange(int(result["epochs"][-1]) + 1)
    if grid[-1] < 1:
        return {}
    try:
        tr = gram_map(mo.sxx, mo.syx, mo.syy, ds.in_dims, grid, cfg.lr, w1, w2,
                      fusion="early" if cfg.fusion_layer == 1 else "late", weight_decay=cfg.weight_decay,
                      sigma_pop=ds.sigma, w_star=ds.w_star)
    except RuntimeError:                    # diverges exactly when the run does; the run reports it
        return {}
    out = dict(map_epochs=grid, map_loss=tr.loss, map_w_a=modality_signal(tr.block(0)[:, None, :]),
               map_w_b=modality_signal(tr.block(1)[:, None, :]))
    if tr.e_g is not None:
        out["map_eg"] = tr.e_g
    return out


def predict(cfg, result=None):
    """Fixed points on the run's empirical moments, the exact map and the closed-form time ratio.

    The fixed points and the exact map (two-layer nets) hold for linear nets with the squared
    loss and no bias (theory.md §6.1, §6.10); the time ratio also for ReLU nets on the toy and
    multi data, whose ratio is essentially the linear one (§6.9).

    Returns
    -------
    dict
        Empty when no theory applies. ``time_ratio``: closed form (NaN where it does not
        apply). Linear nets also: ``points`` (names, e.g. 'M_0', 'M_A', 'M_B', 'M_*' for
        L_f >= 2, 'M_0', 'M_*' for L_f = 1), ``level_loss``, ``level_w_a``, ``level_w_b``
        (signals of each point's blocks) and, with population statistics, ``level_eg``;
        ``wa_uni`` (signal of W_A(M_A), the unimodal plateau); two-layer linear nets given a
        ``result``: ``map_epochs``, ``map_loss``, ``map_w_a``, ``map_w_b`` (and ``map_eg``).
    """
    relu_linear_target = cfg.slope == 0.0 and cfg.data != "xor"
    if cfg.loss != "mse" or cfg.bias or not (cfg.linear_theory or relu_linear_target):
        return {}
    ds = dataset(cfg)
    mo = ds.moments()
    pred = dict(time_ratio=_time_ratio(cfg, mo, ds.in_dims))
    if not cfg.linear_theory:
        return pred
    late = late_fixed_points(mo.sxx, mo.syx, mo.syy, ds.in_dims)
    points = (late if cfg.fusion_layer >= 2 and cfg.depth >= 2
              else early_fixed_points(mo.sxx, mo.syx, mo.syy, ds.in_dims))
    pred.update(points=np.array([_POINT_NAMES[p.learned] for p in points]),
                level_loss=np.array([p.loss for p in points]),
                level_w_a=np.array([_signal(p.block(0)) for p in points]),
                level_w_b=np.array([_signal(p.block(1)) for p in points]),
                wa_uni=_signal(late[1].block(0)))
    if ds.sigma is not None and ds.w_star is not None:
        pred["level_eg"] = np.array([float(generalization_error(p.w_tot, ds.sigma, ds.w_star)) for p in points])
    pred.update(_exact_map(cfg, ds, mo, result))
    return pred


# ---------------------------------------------------------------------- figure
def describe(cfg):
    """One line naming the network, the data and the training."""
    L, Lf = cfg.depth, cfg.fusion_layer
    kind = ("shallow (L = 1)" if L == 1 else "early fusion" if Lf == 1
            else "late fusion" if Lf == L else "intermediate fusion")
    act = "linear" if cfg.slope == 1.0 else "ReLU" if cfg.slope == 0.0 else f"leaky ReLU {cfg.slope:g}"
    data = {"toy": f"toy r = {cfg.ratio:g}, ρ = {cfg.rho:g}", "multi": f"multi D = {cfg.dim}",
            "xor": f"XOR + linear σ_A = {cfg.sigma_a:g} (std)"}[cfg.data]
    extras = ", bias" * cfg.bias + (f", weight decay {cfg.weight_decay:g}" if cfg.weight_decay else "")
    noise = f", noise {cfg.noise:g}" if cfg.noise and cfg.data != "xor" else ""
    target = "" if cfg.loss == "mse" else f" on sign(y), {cfg.loss} loss"
    return (f"L = {L}, L_f = {Lf} ({kind}), {act}{extras}, width {cfg.width}; {data}, "
            f"n = {cfg.n}{noise}{target}; init {cfg.init} {cfg.init_scale:g}, lr {cfg.lr:g}")


def _title(cfg):
    """The figure's one-line title: the network and the data, in mathtext."""
    L, Lf = cfg.depth, cfg.fusion_layer
    kind = ("shallow net" if L == 1 else "early fusion" if Lf == 1 else "late fusion" if Lf == L
            else "intermediate fusion")
    act = "linear" if cfg.slope == 1.0 else "ReLU" if cfg.slope == 0.0 else "leaky ReLU"
    data = {"toy": rf"toy data $r = {cfg.ratio:g}$, $\rho = {cfg.rho:g}$", "multi": f"multi data $D = {cfg.dim}$",
            "xor": rf"XOR + linear, $\sigma_A = {cfg.sigma_a:g}$"}[cfg.data]
    return f"{act[0].upper() + act[1:]} {kind}, $L = {L}$, $L_f = {Lf}$; {data}"


def _level_labels(ax, pairs, *, log=False):
    """Dotted levels, each labelled beside the right edge of the axes (outside it, so never over a curve).

    Levels closer than a line of text share one label ('$M_0$ = $M_B$'), and the labels
    that remain are pushed apart to one text line each, so they never overprint.
    """
    if not pairs:
        return
    for _, value in pairs:
        ax.axhline(value, **_LEVEL)
    lo, hi = ax.get_ylim()
    to_frac = ((lambda v: (math.log10(max(v, 1e-300)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))
               if log else (lambda v: (v - lo) / (hi - lo)))
    pairs = [(name, value) for name, value in pairs if -1e-9 <= to_frac(value) <= 1 + 1e-9]   # in view only
    if not pairs:
        return
    fig = ax.figure
    from matplotlib.font_manager import FontProperties
    size = FontProperties(size="small").get_size_in_points()
    height_pt = fig.get_size_inches()[1] * 72.0 * ax.get_position().height * 0.8   # before the layout shrinks it
    gap = 1.25 * size / max(height_pt, 1.0)
    groups = []                                          # [names, value, frac]
    for name, value in sorted(pairs, key=lambda p: p[1]):
        frac = to_frac(value)
        if groups and abs(frac - groups[-1][2]) < 1e-3:
            groups[-1][0].append(name)
            continue
        groups.append([[name], value, frac])
    ys = [g[2] for g in groups]
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    overflow = ys[-1] - 1.0
    if overflow > 0:                                     # pushed above the top: move the stack down
        ys = [y - overflow for y in ys]
    big = max(abs(g[1]) for g in groups)
    for (names, value, _), y in zip(groups, ys):
        shown = "0" if abs(value) <= 1e-12 * big else f"{value:.4g}"     # a rounding residue
        text = " = ".join(f"${n}$" for n in names) + f": {shown}"
        ax.annotate(text, (1.0, y), xycoords="axes fraction", xytext=(3, 0), textcoords="offset points",
                    ha="left", va="center", fontsize="small", color="0.3", annotation_clip=False)


def _point_levels(pred, key, names):
    return [(p, v) for p, v in zip(pred["points"], pred[key]) if p in names]


def _times(ax, sim):
    for key in ("t_a", "t_b"):
        if np.isfinite(sim[key]):
            ax.axvline(sim[key], color=S.COLORS[key[-1]], linewidth=0.9, linestyle="-", alpha=0.8)


def _layout(fig, n):
    """Axes for ``n`` panels in rows of at most three, no empty slots: 4 → 2 + 2, 5 → 2 + 3."""
    rows = {1: [1], 2: [2], 3: [3], 4: [2, 2], 5: [2, 3]}[n]
    cols = math.lcm(*rows)
    gs = fig.add_gridspec(len(rows), cols)
    axes = []
    for r, k in enumerate(rows):
        span = cols // k
        axes += [fig.add_subplot(gs[r, j * span:(j + 1) * span]) for j in range(k)]
    return axes


def plot(cfg, result, prediction):
    """Loss, end-to-end weights, E_g and the optional feature and contour panels."""
    import matplotlib.pyplot as plt

    sim, pred = result, prediction
    if not sim["usable"]:
        return None
    panels = ["loss", "weights"] + ["eg"] * ("eg" in sim) + ["features"] * cfg.features + ["contour"] * cfg.contour
    rows = 1 if len(panels) <= 3 else 2
    per_row = 2 if len(panels) == 4 else min(3, len(panels))
    scale = 0.8 if S.current() == "paper" else 1.35 if S.current() == "talk" else 1.0
    fig = plt.figure(figsize=(scale * 3.6 * per_row, scale * (3.0 * rows + 0.8)), layout="constrained")
    ax_of = dict(zip(panels, _layout(fig, len(panels))))
    late_levels = ("M_0", "M_A", "M_*") if cfg.fusion_layer >= 2 and cfg.depth >= 2 else ("M_0", "M_*")
    handles = {}

    def keep(ax):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)

    ax = ax_of["loss"]
    ax.plot(sim["epochs"], sim["loss"], label="loss (simulation)", **S.sim_kw(S.COLORS["loss"]))
    if "map_loss" in pred:
        ax.plot(pred["map_epochs"], pred["map_loss"], label="exact map at lr (theory)", **S.theory_kw(S.COLORS["loss"]))
    if "points" in pred:
        ax.plot([], [], label="fixed points (theory)", **_LEVEL)
        _level_labels(ax, _point_levels(pred, "level_loss", late_levels))
    elif cfg.data == "xor" and cfg.loss == "mse":
        # one part fitted exactly, the other not at all: ½ var(XOR part) = ½, ½ var(x_A) = ½σ_A²
        ax.axhline(0.5, label="linear part only (population)", **{**_LEVEL, "linestyle": (0, (4, 2))})
        ax.axhline(0.5 * cfg.sigma_a ** 2, label="XOR part only (population)", **_LEVEL)
    _times(ax, sim)
    ax.set_xlabel("epoch")
    ax.set_ylabel({"mse": "loss", "exponential": "exponential loss", "logistic": "logistic loss"}[cfg.loss])
    keep(ax)

    ax = ax_of["weights"]
    ax.plot(sim["epochs"], sim["w_a"], label=S.W_A, **S.sim_kw(S.COLORS["a"]))
    ax.plot(sim["epochs"], sim["w_b"], label=S.W_B, **S.sim_kw(S.COLORS["b"]))
    if "map_w_a" in pred:
        ax.plot(pred["map_epochs"], pred["map_w_a"], **S.theory_kw(S.COLORS["a"]))
        ax.plot(pred["map_epochs"], pred["map_w_b"], **S.theory_kw(S.COLORS["b"]))
    if "points" in pred:
        pairs = [("W_A(M_A)", pred["wa_uni"])] if "M_A" in late_levels else []
        _level_labels(ax, pairs + [("W_A(M_*)", pred["level_w_a"][-1]), ("W_B(M_*)", pred["level_w_b"][-1])])
    _times(ax, sim)
    if np.isfinite(sim["t_a"]):
        ax.plot([], [], color="0.4", linewidth=0.9, label=r"measured $t_A$, $t_B$ (colour of the modality)")
    norm = sim["w_tot"].shape[1] != 2
    ax.set_xlabel("epoch")
    ax.set_ylabel((r"$\|W^{\rm tot}\|$ per modality" if norm else "end-to-end weight")
                  + (" (bookkeeping)" if cfg.slope != 1.0 else ""))
    keep(ax)

    if "eg" in ax_of:
        ax = ax_of["eg"]
        ax.plot(sim["epochs"], sim["eg"], label="$E_g$ (simulation)", **S.sim_kw(S.COLORS["eg"]))
        if "map_eg" in pred:
            ax.plot(pred["map_epochs"], pred["map_eg"], **S.theory_kw(S.COLORS["eg"]))
        ax.set_yscale("log")
        levels = _point_levels(pred, "level_eg", late_levels) if "level_eg" in pred else []
        values = [float(np.max(sim["eg"])), float(np.min(sim["eg"]))] + [v for _, v in levels]
        top = max(values)
        bottom = min(v for v in values if v > 0) / 1.5 if any(v > 0 for v in values) else 1e-12 * top
        ax.set_ylim(max(bottom, 1e-12 * top), 1.5 * top)        # rounding-level tails add nothing
        _level_labels(ax, levels, log=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(r"$E_g$ (population $\Sigma$, $W^*$)")
        keep(ax)

    if "features" in ax_of:
        _feature_panel(ax_of["features"], sim, cfg)
        keep(ax_of["features"])
    if "contour" in ax_of:
        output_panel(ax_of["contour"], sim, cfg)
        keep(ax_of["contour"])
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center", ncols=3)
    S.title(fig, _title(cfg))
    return fig


def _feature_panel(ax, sim, cfg):
    units, color = sim["units"], sim["unit_color"]
    if cfg.data == "xor":
        vmax = max(float(np.max(np.abs(color))), 1e-300)
        sc = feature_panel(ax, units, color, vmax)
        ax.figure.colorbar(sc, ax=ax, shrink=0.8, label=r"unit's weight on $x_A$")
        ax.plot([], [], **S.theory_kw("black", linewidth=0.8), label="XOR directions (±1, ±1)")
        ax.set_title(f"hidden units at epoch {int(sim['epochs'][-1])}")
        return
    lim = 1.15 * max(float(np.max(np.abs(units))), 1e-300)
    for value, c, label in ((0, S.COLORS["a"], "A-branch units"), (1, S.COLORS["b"], "B-branch units"),
                            (-1, S.COLORS["early"], "hidden units")):
        sel = color == value
        if np.any(sel):
            ax.scatter(units[sel, 0], units[sel, 1], s=12, color=c, alpha=0.7, linewidths=0, label=label)
    if cfg.fusion_layer == 1:
        syx = dataset(cfg).moments().syx[0]
        d = syx / np.linalg.norm(syx)
        ax.plot([-lim * d[0], lim * d[0]], [-lim * d[1], lim * d[1]], color="black", linestyle=":",
                linewidth=0.8, label=r"$\Sigma_{yx}$ direction")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.ticklabel_format(style="sci", scilimits=(-2, 3))
    ax.set_xlabel(r"weight on $x_A$")
    ax.set_ylabel(r"weight on $x_B$")
    ax.set_title(f"hidden units at epoch {int(sim['epochs'][-1])}")


# ---------------------------------------------------------------------- outputs
def _f(x, fmt="{:.4g}"):
    return "n/a" if x is None or not np.isfinite(x) else fmt.format(x)


def summary(cfg, result, prediction):
    """Measured against predicted numbers, as printed lines."""
    sim, pred = result, prediction
    lines = [f"{NAME}: {describe(cfg)}, {int(sim['epochs'][-1])} epochs ({sim['path']} path)",
             f"  run {sim['message']}"]
    if not sim["usable"]:
        return "\n".join(lines)
    if "points" in pred:
        names = list(pred["points"])
        star = names.index("M_*")
        lines.append(f"  final loss {sim['loss'][-1]:.4g}   L(M_*) = {pred['level_loss'][star]:.4g}   "
                     f"L(M_0) = {pred['level_loss'][0]:.4g}")
        lines.append(f"  final W_A, W_B = {sim['w_a'][-1]:.4f}, {sim['w_b'][-1]:.4f}   "
                     f"M_*: {pred['level_w_a'][star]:.4f}, {pred['level_w_b'][star]:.4f}")
        if "M_A" in names:
            i = names.index("M_A")
            lines.append(f"  plateau loss at epoch {_f(sim['plateau_epoch'], '{:.0f}')}: "
                         f"{_f(sim['plateau_loss'])}   L(M_A) = {pred['level_loss'][i]:.4g}")
        if "eg" in sim and "level_eg" in pred:
            lines.append(f"  final E_g {sim['eg'][-1]:.4g}   E_g(M_*) = {pred['level_eg'][star]:.4g}")
        if "map_loss" in pred:
            idx = sim["epochs"].astype(int)
            dev = float(np.max(np.abs(pred["map_loss"][idx] - sim["loss"])))
            lines.append(f"  exact Gram-state map at lr {cfg.lr:g} from the run's weights: max |Δloss| = {dev:.1e}")
        if cfg.weight_decay:
            lines.append("  (the fixed points ignore weight decay; the exact map includes it)")
    else:
        reason = ("ReLU/leaky net" if cfg.slope != 1.0 else "biases" if cfg.bias else f"{cfg.loss} loss")
        lines.append(f"  no fixed-point theory drawn ({reason}: theory.md §6.1 holds for linear nets, squared loss, "
                     "no bias)")
    if np.isfinite(sim["t_a"]) or np.isfinite(sim["t_b"]):
        theory = _f(pred.get("time_ratio", np.nan), "{:.3f}")
        lines.append(f"  t_A = {_f(sim['t_a'], '{:.1f}')}, t_B = {_f(sim['t_b'], '{:.1f}')} epochs; "
                     f"t_B/t_A = {_f(sim['ratio'], '{:.3f}')} measured ('interp'), {theory} closed form "
                     f"(§6.3/§6.6{', linear: ReLU ≈ linear, §6.9' if cfg.slope == 0.0 else ''})")
        lines.append(f"  {CONVENTION}")
    if cfg.slope == 0.0 and cfg.data != "xor":
        lines.append("  ReLU: W_tot is bookkeeping and converges to ≈ 2× the linear coefficients (theory.md §6.9)")
    return "\n".join(lines)


def outputs(cfg, result, prediction):
    """The arrays of ``result`` and ``prediction`` (prefixes sim_, pred_) and the record."""
    arrays = {f"sim_{k}": np.asarray(v) for k, v in result.items()}
    arrays.update({f"pred_{k}": np.asarray(v) for k, v in prediction.items()})
    record = {k: result[k] for k in ("status", "t_a", "t_b", "ratio", "plateau_epoch", "plateau_loss")}
    record.update(fuse_depth=cfg.fusion_layer, scale=cfg.init_scale, network=describe(cfg),
                  time_ratio_closed_form=prediction.get("time_ratio", np.nan),
                  final_loss=float(result["loss"][-1]) if result["usable"] else np.nan)
    if np.isfinite(result["t_a"]):
        record["convention"] = CONVENTION
    return {"arrays": arrays, "record": record}



if __name__ == "__main__":
    sys.exit(main())
