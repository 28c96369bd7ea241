"""The original code's flags, and the declarative table that maps them onto the experiment modules.

:data:`FLAGS` is the original ``config.py`` (names, types, defaults, choices). :data:`ROUTES`
is the table: each route says which original commands it takes (``--sweep``, ``--mode`` and
a few values), the experiment module and figure, and for each original flag the module's
field it sets and how its value converts (:class:`To`); fields every command of the route
sets (``fixed``), flags that must keep their original default (``keep``), and flags that
mean nothing there, with the reason (``unused``). :mod:`sims._translate` applies it and
generates the mapping text of ``python -m sims --help`` and ``docs/original_commands.md``
from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

__all__ = ["FLAGS", "ROUTES", "SWEEP_MODE", "SIZE_FLAGS", "FISSION", "TWO_LAYER", "Flag", "To", "Route",
           "TranslationError"]


# ---------------------------------------------------------------------- the original flags (config.py)
@dataclass(frozen=True)
class Flag:
    """One flag of the original ``config.py``."""

    type: type
    default: object
    help: str
    choices: tuple | None = None


MODES = ("shallow", "early_fusion", "late_fusion", "deep_fusion", "fission")
SWEEPS = ("single", "depth_single", "toy_sweep", "rand_sweep", "rho_sweep", "ratio_sweep", "init_sweep",
          "xor_sweep")

#: the original flags, in config.py's order (``--mode fission`` is a choice so that it can be refused)
FLAGS = {
    "loss": Flag(str, "mse", "exponential / logistic: margin losses, trained on sign(y)",
                 ("mse", "exponential", "logistic")),
    "epoch": Flag(int, 1000, "number of epochs (sweeps: the maximum; they stop at loss < 1e-4)"),
    "lr": Flag(float, 0.04, "learning rate"),
    "reg": Flag(float, 0.0, "weight decay"),
    "init": Flag(float, 1e-9, "initialisation scale (two-layer: per-entry std; deep_fusion: per-layer norm)"),
    "hid_width": Flag(int, 100, "hidden width"),
    "relu": Flag(float, 1.0, "leaky-ReLU negative slope: 1 linear, 0 ReLU"),
    "bias": Flag(bool, False, "biases in every layer"),
    "data": Flag(str, "toy", "toy (theory.md §3a), multi (§3b; rand_sweep: random covariances, §3c), xor (§3d)",
                 ("toy", "multi", "xor")),
    "dataset_size": Flag(int, 8192, "number of samples"),
    "rho": Flag(float, 0.0, "toy: correlation of x_A and x_B"),
    "ratio": Flag(float, 2.0, "toy: sigma_A / sigma_B"),
    "var_lin": Flag(float, 1.0, "xor: VARIANCE of the linear modality (passed on as sigma_a = sqrt(var_lin))"),
    "in_dim": Flag(int, 20, "multi: total input dimension D"),
    "noise": Flag(float, 0.0, "label-noise standard deviation"),
    "mode": Flag(str, "shallow", "network: shallow, early_fusion, late_fusion, deep_fusion (fission: refused)",
                 MODES),
    "depth": Flag(int, 4, "deep_fusion: total depth L"),
    "fuse_depth": Flag(int, 2, "deep_fusion --sweep single: fusion layer L_f"),
    "sweep": Flag(str, "single", "a single run or one of the paper's sweeps (mapping below)", SWEEPS),
    "repeat": Flag(int, 1, "runs per sweep point (rand_sweep: converged draws)"),
    "plot_weight": Flag(bool, False, "end-to-end weights (the modules always draw them)"),
    "plot_Eg": Flag(bool, False, "generalisation error panel"),
    "vis_feat": Flag(bool, False, "hidden-unit features"),
    "vis_contour": Flag(bool, False, "network output over the input plane (implies --vis_feat)"),
}

#: flags that set the size of the work: --quick replaces them with the module's quick setting
SIZE_FLAGS = ("epoch", "repeat", "dataset_size", "hid_width", "in_dim")

FISSION = ("--mode fission (the original's one-input, two-output 'fission' network) is not supported by this "
           "toolkit, which covers the fusion networks of the paper: --mode shallow, early_fusion, late_fusion or "
           "deep_fusion")


class TranslationError(ValueError):
    """An original command this toolkit cannot run as asked (the message names the flag)."""


# ---------------------------------------------------------------------- the table's vocabulary
def _same(value):
    return value


def _sqrt(value):
    return float(format(math.sqrt(value), ".12g"))


def _one(value):
    return (value,)


def _sqrt_one(value):
    return (_sqrt(value),)


@dataclass(frozen=True)
class To:
    """Where an original flag goes in a module.

    Attributes
    ----------
    field : str or None
        The module's field; None: honoured without a field (e.g. a panel always drawn).
    convert : callable
        Original value -> field value.
    how : str
        The conversion in words, for the generated text (e.g. ``sqrt(var_lin)``).
    when : callable, optional
        Condition on the original flags; when it fails the flag is not used here.
    when_text : str
        The condition in words.
    unless : str
        Why the flag is not used when ``when`` fails.
    """

    field: str | None
    convert: Callable = _same
    how: str = ""
    when: Callable | None = None
    when_text: str = ""
    unless: str = ""


def _t(field_name, how="", convert=_same, when=None, when_text="", unless=""):
    return To(field_name, convert, how, when, when_text, unless)


#: flag -> field shared by most routes
COMMON = {"epoch": _t("epochs"), "lr": _t("lr"), "reg": _t("weight_decay"), "init": _t("scale"),
          "hid_width": _t("width"), "relu": _t("slope"), "dataset_size": _t("n"), "in_dim": _t("dim"),
          "rho": _t("rho"), "ratio": _t("ratio"), "noise": _t("noise"), "depth": _t("depth"),
          "fuse_depth": _t("fuse_depth"), "repeat": _t("repeats"), "loss": _t("loss"), "bias": _t("bias")}
_PANEL = _t(None)


def _pick(*names, **overrides):
    out = {name: COMMON[name] for name in names}
    out.update(overrides)
    return out


@dataclass(frozen=True)
class Route:
    """One line of the table: which original commands go to which module, and how.

    Attributes
    ----------
    module : str
        ``sims.<module>``.
    figure : str
        The paper's figure (theory.md §10).
    when : str
        The commands it takes, in words.
    applies : callable
        Original flags -> bool.
    flags : mapping
        Original flag -> :class:`To`.
    fixed : mapping
        Fields every command of the route sets, with their value (always written out).
    derive : callable, optional
        Original flags -> fields that depend on several flags; ``derive_text`` says how.
    keep : tuple of str
        Flags that must keep the original's default (the module cannot honour another
        value); ``keep_why`` says why.
    unused : mapping
        Flag -> why it means nothing here (a note when given).
    out : callable, optional
        Original flags -> output folder under the module's ``results/<module>``.
    notes : callable, optional
        Original flags -> notes printed with the command.
    trains : str
        What one command trains, in words (``{repeat}`` and other flags are filled in).
    """

    module: str
    figure: str
    when: str
    applies: Callable
    flags: Mapping
    fixed: Mapping = field(default_factory=dict)
    derive: Callable | None = None
    derive_text: str = ""
    keep: tuple = ()
    keep_why: str = ""
    unused: Mapping = field(default_factory=dict)
    out: Callable | None = None
    notes: Callable | None = None
    trains: str = ""


# ---------------------------------------------------------------------- routing conditions
TWO_LAYER = ("early_fusion", "late_fusion")


def _linear(a):
    return a.relu == 1.0 and not a.bias and a.loss == "mse"


def _a_first(a):
    """Whether modality A (variance ratio²) is learned first on the toy data: |Σyx_A| >= |Σyx_B|."""
    return abs(a.ratio * a.ratio + a.rho * a.ratio) >= abs(1.0 + a.rho * a.ratio)


def _figure2(a):
    return a.sweep == "single" and a.mode in TWO_LAYER and a.data == "toy" and _linear(a) and _a_first(a)


def _figure13(a):
    return a.sweep == "single" and a.mode in TWO_LAYER and a.data == "multi" and _linear(a) and a.reg == 0


def _figure14(a):
    return (a.sweep == "single" and a.mode in TWO_LAYER and a.data == "xor" and a.relu < 1.0 and not a.bias
            and a.loss == "mse" and a.reg == 0 and not a.vis_contour)


def _toy(a):
    return a.data == "toy"


def _multi(a):
    return a.data == "multi"


def _xor(a):
    return a.data == "xor"


def _depth_of(a):
    return {"shallow": (1, 1), "early_fusion": (2, 1), "late_fusion": (2, 2),
            "deep_fusion": (a.depth, a.fuse_depth)}[a.mode]


def _single_derive(a):
    depth, fuse = _depth_of(a)
    out = {"depth": depth, "fuse_depth": fuse}
    if a.mode == "deep_fusion":
        out["init"] = "layer"         # the original's deep nets fix each layer's norm (theory.md §5)
    if (a.vis_feat or a.vis_contour) and _plane(a):
        out["features"] = True
        if a.vis_contour:
            out["contour"] = True
    return out


def _plane(a):
    return a.data != "multi" and _depth_of(a)[0] >= 2


def _hidden(a):
    return _depth_of(a)[0] >= 2


_SWEPT = "swept (r in 3, 2, 1.5, 1; rho in linspace(-0.9, 0.9, 9))"
_TWO_LAYER_UNUSED = {"plot_Eg": "the figure-2 modules draw no E_g panel (python -m sims.single draws one)",
                     "in_dim": "not a parameter of the toy data", "var_lin": "not a parameter of the toy data",
                     "depth": "the two-layer modes fix the depth", "fuse_depth": "the two-layer modes fix the depth",
                     "repeat": "a single run", "vis_feat": "the figure-2 modules always draw the hidden units",
                     "vis_contour": "a linear net's output is a plane"}
_DEEP_KEEP = ("relu", "bias", "loss", "reg")


def _deep_route(sweep, module, figure, swept, values, trains):
    flags = _pick("rho", "ratio", "dataset_size", "noise", "depth", "hid_width", "init", "lr", "epoch", "repeat",
                  plot_weight=_PANEL)
    del flags[swept]
    return Route(module, figure, f"--sweep {sweep} (--mode deep_fusion)", lambda a: a.sweep == sweep,
                 flags, fixed={"convention": "paper"}, keep=_DEEP_KEEP,
                 keep_why=f"sims.{module} trains linear bias-free nets with the squared loss",
                 unused={swept: f"swept ({values})", "fuse_depth": "every fusion layer L_f = depth, ..., 1 is run",
                         "data": "the deep experiments use the toy data", "in_dim": "not a parameter of the toy data",
                         "var_lin": "not a parameter of the toy data"},
                 trains=trains)


#: the table, in the order routes are tried
ROUTES = (
    Route("early_fusion", "2, early fusion", "--sweep single --mode early_fusion, toy data, linear, mse, no bias, "
          "A first", lambda a: _figure2(a) and a.mode == "early_fusion",
          _pick("rho", "ratio", "dataset_size", "noise", "lr", "epoch", "init", "hid_width", "reg",
                relu=_PANEL, bias=_PANEL, loss=_PANEL, data=_PANEL, plot_weight=_PANEL),
          unused=_TWO_LAYER_UNUSED, trains="one two-layer early-fusion linear net"),
    Route("late_fusion", "2, late fusion", "--sweep single --mode late_fusion, toy data, linear, mse, no bias, "
          "A first", lambda a: _figure2(a) and a.mode == "late_fusion",
          _pick("rho", "ratio", "dataset_size", "noise", "lr", "epoch", "init", "hid_width", "reg",
                relu=_PANEL, bias=_PANEL, loss=_PANEL, data=_PANEL, plot_weight=_PANEL),
          unused=_TWO_LAYER_UNUSED, trains="one two-layer late-fusion linear net"),
    Route("generalization", "13", "--sweep single --mode early_fusion|late_fusion --data multi, linear, mse, "
          "no bias, no --reg", _figure13,
          _pick("in_dim", "noise", "lr", "epoch", "init", "hid_width",
                dataset_size=_t("n_values", "(one value)", _one), relu=_PANEL, bias=_PANEL, loss=_PANEL, reg=_PANEL,
                data=_PANEL, plot_weight=_PANEL, plot_Eg=_PANEL),
          unused={"rho": "not a parameter of the multi data", "ratio": "not a parameter of the multi data",
                  "var_lin": "not a parameter of the multi data", "depth": "two layers",
                  "fuse_depth": "two layers", "repeat": "a single run per network",
                  "vis_feat": "no input plane with --data multi", "vis_contour": "no input plane with --data multi"},
          out=lambda a: f"n{a.dataset_size}",
          notes=lambda a: [f"sims.generalization draws early and late fusion side by side (you asked for {a.mode})"],
          trains="early and late two-layer linear nets on the same draw"),
    Route("xor", "14", "--sweep single --mode early_fusion|late_fusion --data xor, --relu < 1, mse, no bias, no "
          "--reg, no --vis_contour", _figure14,
          _pick("dataset_size", "hid_width", "lr", "epoch", "init", relu=_t("slope"),
                var_lin=_t("sigma_a", "sqrt(var_lin), one value: var_lin is a variance", _sqrt_one),
                bias=_PANEL, loss=_PANEL, reg=_PANEL, data=_PANEL, plot_weight=_PANEL, vis_feat=_PANEL),
          fixed={"sweep_sigma": ()},
          unused={"noise": "the XOR + linear data are noiseless", "rho": "not a parameter of the xor data",
                  "ratio": "not a parameter of the xor data", "in_dim": "not a parameter of the xor data",
                  "depth": "two layers", "fuse_depth": "two layers", "repeat": "a single run per network",
                  "plot_Eg": "no E_g for the XOR data"},
          out=lambda a: f"var_lin{a.var_lin:g}",
          notes=lambda a: [f"sims.xor draws early and late fusion side by side (you asked for {a.mode}); "
                           f"sigma_A = sqrt(var_lin) = {math.sqrt(a.var_lin):.6g} (var_lin read as a variance)"],
          trains="early and late two-layer ReLU nets on one XOR + linear draw, no sigma_A sweep"),
    Route("single", "2 generalised: one run", "any other --sweep single (shallow, deep_fusion, ReLU toy runs, "
          "biases, exponential or logistic losses, weight decay on multi, linear XOR, --vis_contour, B first)",
          lambda a: a.sweep == "single",
          _pick("dataset_size", "loss", "lr", "epoch", "init", "reg", "bias",
                data=_t("data"),
                rho=_t("rho", when=_toy, when_text="toy data", unless="not a parameter of this data"),
                ratio=_t("ratio", when=_toy, when_text="toy data", unless="not a parameter of this data"),
                in_dim=_t("dim", when=_multi, when_text="multi data", unless="not a parameter of this data"),
                var_lin=_t("sigma_a", "sqrt(var_lin), var_lin is a variance", _sqrt, when=_xor, when_text="xor data",
                           unless="not a parameter of this data"),
                noise=_t("noise", when=lambda a: not _xor(a), when_text="toy or multi data",
                        unless="the XOR + linear data are noiseless"),
                hid_width=_t("width", when=_hidden, when_text="two layers or more", unless="a one-layer net has no hidden layer"),
                relu=_t("slope", when=_hidden, when_text="two layers or more", unless="a one-layer net has no activation"),
                depth=_t(None, when=lambda a: a.mode == "deep_fusion", unless="--mode fixes the depth"),
                fuse_depth=_t(None, when=lambda a: a.mode == "deep_fusion", unless="--mode fixes the depth"),
                vis_feat=_t(None, when=_plane, unless="needs a hidden layer and a two-dimensional input plane"),
                vis_contour=_t(None, when=_plane, unless="needs a hidden layer and a two-dimensional input plane"),
                plot_Eg=_t(None, when=lambda a: a.data != "xor" and _linear(a),
                           unless="E_g needs a linear, bias-free net trained with mse on the toy or multi data"),
                plot_weight=_PANEL),
          derive=_single_derive,
          derive_text="--mode -> depth, fuse_depth (shallow 1/1, early_fusion 2/1, late_fusion 2/2, deep_fusion "
                      "--depth/--fuse_depth with init 'layer'); --vis_feat -> features; --vis_contour -> features "
                      "and contour",
          unused={"repeat": "a single run"},
          out=lambda a: f"{a.mode}_{a.data}", trains="one network"),
    Route("fusion_depth", "9", "--sweep depth_single (--mode deep_fusion)", lambda a: a.sweep == "depth_single",
          _pick("rho", "ratio", "dataset_size", "noise", "depth", "hid_width", "init", "lr", "epoch",
                plot_weight=_PANEL),
          fixed={"convention": "paper"}, keep=_DEEP_KEEP,
          keep_why="sims.fusion_depth trains linear bias-free nets with the squared loss",
          unused={"fuse_depth": "every fusion layer L_f = depth, ..., 1 is run",
                  "data": "the deep experiments use the toy data", "repeat": "one run per fusion layer",
                  "in_dim": "not a parameter of the toy data", "var_lin": "not a parameter of the toy data"},
          trains="one deep linear net per fusion layer L_f = depth..1 on one draw"),
    Route("toy_sweep", "6", "--sweep toy_sweep (--mode late_fusion)", lambda a: a.sweep == "toy_sweep",
          _pick("dataset_size", "lr", "epoch", "init", "hid_width", "repeat", "reg", plot_weight=_PANEL),
          fixed={"convention": "paper"}, keep=("bias", "loss", "noise"),
          keep_why="sims.toy_sweep trains noiseless, bias-free nets with the squared loss",
          unused={"relu": "the original's toy_sweep trains the linear and the ReLU nets whatever --relu says "
                          "(it sets relu to 1, then 0)", "rho": _SWEPT, "ratio": _SWEPT,
                  "data": "the sweep uses the toy data", "in_dim": "not a parameter of the toy data",
                  "var_lin": "not a parameter of the toy data", "depth": "two layers", "fuse_depth": "two layers"},
          trains="the linear and the ReLU nets at r in {{3, 2, 1.5, 1}} x 9 rho x {repeat} repeats, {dataset_size} "
                 "samples each; --relu has no effect (the original sets it to 1, then 0)"),
    Route("rand_sweep", "7", "--sweep rand_sweep (--mode late_fusion; the README adds --data multi)",
          lambda a: a.sweep == "rand_sweep",
          _pick("in_dim", "dataset_size", "lr", "epoch", "init", "hid_width", "reg",
                repeat=_t("draws", "converged runs"), plot_weight=_PANEL,
                data=_t(None, when=lambda a: a.data == "multi",
                        unless="the sweep draws random covariances (the original's --data multi)")),
          fixed={"stats": "original", "convention": "paper"}, keep=("relu", "bias", "loss", "noise"),
          keep_why="sims.rand_sweep trains noiseless linear bias-free nets with the squared loss",
          unused={"rho": "not a parameter of the random-covariance data",
                  "ratio": "not a parameter of the random-covariance data",
                  "var_lin": "not a parameter of the random-covariance data", "depth": "two layers",
                  "fuse_depth": "two layers"},
          trains="linear nets on random covariances until {repeat} runs converged (final loss < 1e-3), draws "
                 "whose predicted ratio is outside [1, 20] redrawn"),
    _deep_route("rho_sweep", "rho_sweep", "10", "rho", "linspace(-0.9, 0.9, 9)",
                "deep linear nets, L_f = 4..1 x 9 rho x {repeat} repeats"),
    _deep_route("ratio_sweep", "ratio_sweep", "11", "ratio", "linspace(1.2, 2.8, 5)",
                "deep linear nets, L_f = 4..1 x 5 r x {repeat} repeats"),
    _deep_route("init_sweep", "init_sweep", "12", "init", "linspace(0.03, 0.18, 5)",
                "deep linear nets, L_f = 4..1 x 5 init scales x {repeat} repeats"),
    Route("xor", "14", "--sweep xor_sweep", lambda a: a.sweep == "xor_sweep",
          _pick("dataset_size", "hid_width", "lr", "epoch", "init", "repeat",
                relu=_t("slope", when=lambda a: a.relu < 1.0, when_text="--relu < 1",
                        unless="a linear net cannot learn XOR; sims.xor trains ReLU nets (slope 0)"),
                var_lin=_t("sigma_a", "sqrt(var_lin), one value", _sqrt_one, when=lambda a: "var_lin" in a.explicit,
                           when_text="given", unless="swept"),
                data=_PANEL, plot_weight=_PANEL, vis_feat=_PANEL),
          keep=("bias", "loss", "reg"), keep_why="sims.xor trains bias-free two-layer nets with the squared loss",
          unused={"noise": "the XOR + linear data are noiseless", "mode": "sims.xor compares early and late fusion",
                  "rho": "not a parameter of the xor data", "ratio": "not a parameter of the xor data",
                  "in_dim": "not a parameter of the xor data", "depth": "two layers", "fuse_depth": "two layers"},
          trains="early and late ReLU nets over its sigma_A sweep"),
)

#: the mode a sweep was written for (the original's sweeps assume it)
SWEEP_MODE = {"toy_sweep": "late_fusion", "rand_sweep": "late_fusion", "depth_single": "deep_fusion",
              "rho_sweep": "deep_fusion", "ratio_sweep": "deep_fusion", "init_sweep": "deep_fusion"}
