"""Fixtures of the fault suite (issue 13): a control plane of its own, a seeded RNG, the long flag.

- `faults_cluster`: the control plane "faults" (tests/support/clusters.py), started once per module
  and torn down after it: faults must never hit the session cluster other tests share.
- `rng`: a `random.Random` whose seed is printed (shown with a failure's captured output) and taken
  from MODELGATE_FAULTS_SEED when set, so that a failing run can be replayed exactly.
- `LONG`: MODELGATE_FAULTS_LONG=1 (`make faults`) runs the long variants; `make test` the short ones.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from tests.support.clusters import own_cluster
from tests.support.kube import Cluster

LONG = os.environ.get("MODELGATE_FAULTS_LONG") == "1"
"""Run the long variants (`make faults`)."""


def seed() -> int:
    """MODELGATE_FAULTS_SEED, or a fresh random seed."""
    given = os.environ.get("MODELGATE_FAULTS_SEED")
    if given is None:
        return random.SystemRandom().randrange(2**32)
    try:
        return int(given)
    except ValueError:
        raise pytest.UsageError(f"MODELGATE_FAULTS_SEED must be an integer, not {given!r}") from None


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    value = seed()
    print(f"{request.node.nodeid}: MODELGATE_FAULTS_SEED={value} MODELGATE_FAULTS_LONG={int(LONG)}")
    request.node.user_properties.append(("MODELGATE_FAULTS_SEED", value))
    return random.Random(value)


@pytest.fixture(scope="module")
def faults_cluster() -> Iterator[Cluster]:
    with own_cluster("faults") as cluster:
        yield cluster
