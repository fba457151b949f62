"""Shared fixtures and settings of the NusterDB Python test suite.

Randomness is always replayable:

* the ``rng`` fixture is a ``numpy.random.Generator`` whose seed is printed (pytest shows
  it with the output of a failing test) and taken from ``NUSTERDB_TEST_SEED`` when set;
* Hypothesis runs under the ``ci`` profile (``HYPOTHESIS_PROFILE`` picks another) and
  prints a ``@reproduce_failure`` blob on failure; ``NUSTERDB_TEST_SEED`` also forces
  Hypothesis' seed, so one variable replays a whole run.

Benchmarks (tests marked ``benchmark``) are skipped unless ``--benchmark-only`` or
``--benchmark-enable`` is given, so a plain ``pytest`` run stays fast.
"""

from __future__ import annotations

import os
import secrets
from typing import List, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

SEED_ENV = "NUSTERDB_TEST_SEED"

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=False,
    max_examples=200,
    print_blob=True,
    # CI machines are shared and slow at times; the data strategies are cheap anyway.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=30)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=5_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def env_seed() -> Optional[int]:
    """The seed given in ``NUSTERDB_TEST_SEED``, if any."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return None
    try:
        return int(raw, 0)
    except ValueError as exc:
        raise pytest.UsageError(f"{SEED_ENV} must be an integer, got {raw!r}") from exc


def new_seed() -> int:
    """``NUSTERDB_TEST_SEED`` if set, else a fresh 63-bit seed."""
    seed = env_seed()
    return secrets.randbits(63) if seed is None else seed


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before Hypothesis' own pytest_configure, which reads this option.
    seed = env_seed()
    if seed is not None and config.getoption("hypothesis_seed", default=None) is None:
        config.option.hypothesis_seed = str(seed)


def pytest_report_header(config: pytest.Config) -> str:
    seed = env_seed()
    how = f"{SEED_ENV}={seed}" if seed is not None else f"fresh per test (set {SEED_ENV})"
    return f"nusterdb test seed: {how}"


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Skips benchmarks unless they were asked for."""
    wanted = bool(config.getoption("benchmark_only", default=False)) or bool(
        config.getoption("benchmark_enable", default=False)
    )
    if wanted:
        return
    skip = pytest.mark.skip(reason="benchmark: run with --benchmark-only or --benchmark-enable")
    for item in items:
        if item.get_closest_marker("benchmark") is not None:
            item.add_marker(skip)


@pytest.fixture
def seed() -> int:
    """A replayable seed for this test, printed so a failure shows it."""
    s = new_seed()
    print(f"seed: {s}  (replay with {SEED_ENV}={s})")
    return s


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    """A seeded numpy Generator; its seed is printed (see ``seed``)."""
    return np.random.default_rng(seed)


# The HTTP server fixtures (server_fixtures.py), registered here so that every test module
# shares one session server.
from server_fixtures import auth_server, server, server_url  # noqa: E402, F401
