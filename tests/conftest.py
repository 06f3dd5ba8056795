"""Shared test setup: hypothesis profiles and per-test isolation of fastnn's global state."""
import os

import pytest
from hypothesis import HealthCheck, settings

import fastnn

# "ci" (the default): few, derandomized examples so the suite is fast and repeatable.
# HYPOTHESIS_PROFILE=dev explores more, with fresh random examples each run.
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolate_global_state():
    """Every test starts from the same random seed with grad mode on, and leaves grad mode on."""
    fastnn.manual_seed(0)
    fastnn.set_grad_enabled(True)
    yield
    fastnn.set_grad_enabled(True)
