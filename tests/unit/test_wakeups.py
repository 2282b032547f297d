"""Who a change of evidence wakes: every ModelDeployment of the model (all evidence counts), and
every one referencing the object by name (its reference gate)."""

from __future__ import annotations

import asyncio

from modelgate.runtime.wakeups import Wakeups, evidence_ref


def woken(wakeups: Wakeups, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {k for k in keys if wakeups.register(k).is_set()}


def test_evidence_of_a_digest_wakes_every_deployment_deciding_on_it_in_the_namespace() -> None:
    async def scenario() -> set[tuple[str, str]]:
        wakeups = Wakeups()
        keys = [
            ("ns", "fraud"),
            ("ns", "fraud-canary"),
            ("ns", "fraud-v2"),
            ("ns", "churn"),
            ("other", "fraud"),
        ]
        decides_on = {
            ("ns", "fraud"): ("fraud", "sha256:1"),
            ("ns", "fraud-canary"): ("fraud", "sha256:1"),
            ("ns", "fraud-v2"): ("fraud", "sha256:2"),
            ("ns", "churn"): ("churn", "sha256:1"),
            ("other", "fraud"): ("fraud", "sha256:1"),
        }
        for key in keys:
            wakeups.register(key)
            wakeups.set_refs(key, {evidence_ref(key[0], *decides_on[key])})
        wakeups.poke_evidence("ns", "fraud", "sha256:1")
        return woken(wakeups, keys)

    assert asyncio.run(scenario()) == {("ns", "fraud"), ("ns", "fraud-canary")}


def test_a_referenced_name_still_wakes_its_referrer() -> None:
    async def scenario() -> set[tuple[str, str]]:
        wakeups = Wakeups()
        key = ("ns", "fraud")
        wakeups.register(key)
        wakeups.set_refs(key, {("ModelApproval", "ns", "eb"), evidence_ref("ns", "fraud", "sha256:1")})
        wakeups.poke_ref("ModelApproval", "ns", "eb")
        return woken(wakeups, [key])

    assert asyncio.run(scenario()) == {("ns", "fraud")}
