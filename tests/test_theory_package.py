"""The theory package as a whole: what importing it loads, and its public names."""
import subprocess
import sys

import theory


def test_import_theory_loads_no_numba_integrator_or_matplotlib():
    code = ("import sys, theory; "
            "print(sorted(m for m in ('numba', 'scipy.integrate', 'matplotlib', 'linfusion._kernels') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_one_vocabulary():
    # crossing_time and generalization_error live in linfusion.analysis only; the closed-form
    # misattribution says that it is a prediction.
    for name in ("crossing_time", "generalization_error", "misattribution", "misattribution_toy"):
        assert not hasattr(theory, name)
        assert name not in theory.__all__
    for name in theory.__all__:
        assert hasattr(theory, name), name
