"""Shared test configuration: hypothesis profiles and the tests directory on sys.path.

Profiles (select with ``HYPOTHESIS_PROFILE=<name>``):

- ``default``: derandomised, so the suite is deterministic and its run time stable; no
  deadline, because the first example of a session may include numba compilation.
- ``explore``: random (not derandomised) examples, for hunting bugs by hand; tests keep
  their own ``max_examples``.
"""
import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))      # `import reference` from any test module

settings.register_profile("default", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, derandomize=False, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
