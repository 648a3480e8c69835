"""Hypothesis profiles of the unit tests, chosen by HYPOTHESIS_PROFILE (default ``ci``).

``ci`` (``make test``, ``make unit``, CI): each property test's own count (Hypothesis's 100 where
a test sets none). ``fuzz`` (``make fuzz``): at least 10,000 examples and no deadline. A test's own
``@settings(max_examples=...)`` overrides any profile, so those tests ask
``test_fuzz_targets.examples(n)`` for their count: ``n`` under ci, at least 10,000 under fuzz.
"""

from __future__ import annotations

import os

from action_runs import run_action  # noqa: F401 - a fixture for every unit test
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=100, print_blob=True)
settings.register_profile(
    "fuzz",
    max_examples=10_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
