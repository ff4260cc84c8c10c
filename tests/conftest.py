"""Shared test set-up: hypothesis profiles and a seeded random generator.

Hypothesis profiles (choose with ``HYPOTHESIS_PROFILE=<name> pytest``):
- ``ci`` (default): few examples per property, no deadline (Numba compiles on first call);
- ``dev``: many more examples, for a thorough local run;
- ``debug``: verbose output, a handful of examples.
"""

from __future__ import annotations

import os
import zlib

# The parallel kernel builds only take over above config.PARALLEL_MIN elements (4M by default).
# Tests lower the threshold so that both builds of every kernel run on arrays of modest size.
# It must be set before tinygrad_edu is first imported (config reads it once).
os.environ.setdefault("TINYGRAD_EDU_PARALLEL_MIN", "32768")
# Likewise every size goes to the fused elementwise kernels (their serial build runs on the
# small test arrays, which in normal use numpy handles).
os.environ.setdefault("TINYGRAD_EDU_ELEMENTWISE_MIN", "0")

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, Verbosity, settings

settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    phases=(Phase.explicit, Phase.generate),  # no shrinking: the failing example is printed as is
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("debug", max_examples=10, deadline=None, verbosity=Verbosity.verbose)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A numpy Generator seeded from the test's name: every test gets its own fixed stream."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
