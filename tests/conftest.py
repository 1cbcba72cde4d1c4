"""Shared fixtures. Hypothesis profiles: `fast` (default) and `slow` (HYPOTHESIS_PROFILE=slow)."""

from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings

import pi_match

settings.register_profile(
    "fast", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "slow", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

DATA = pathlib.Path(__file__).parent / "data"
TEST_KEY_BYTES = bytes(range(32))


@pytest.fixture
def test_key() -> pi_match.Key:
    """The published test key of docs/FORMAT.md §7."""
    return pi_match.Key.from_bytes(TEST_KEY_BYTES)


@pytest.fixture
def other_key() -> pi_match.Key:
    return pi_match.Key.from_bytes(bytes(range(1, 33)))


@pytest.fixture
def data_dir() -> pathlib.Path:
    return DATA
