"""The paper's experiments, one runnable module per figure, theory drawn over simulation.

Run ``python -m sims.<name> --help`` for any of them, or ``python -m sims`` with the
original code's flags (``--mode``, ``--sweep``, ...).
"""
