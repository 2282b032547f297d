"""Who a change of evidence wakes: every ModelDeployment of the model (all evidence counts), and
every one referencing the object by name (its reference gate)."""

from __future__ import annotations

import asyncio

from modelgate.observe.wakeups import Wakeups


def woken(wakeups: Wakeups, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {k for k in keys if wakeups.register(k).is_set()}


def test_evidence_of_a_model_wakes_every_deployment_of_that_model_in_the_namespace() -> None:
    async def scenario() -> set[tuple[str, str]]:
        wakeups = Wakeups()
        keys = [("ns", "fraud"), ("ns", "fraud-canary"), ("ns", "churn"), ("other", "fraud")]
        models = {
            ("ns", "fraud"): "fraud",
            ("ns", "fraud-canary"): "fraud",
            ("ns", "churn"): "churn",
            ("other", "fraud"): "fraud",
        }
        for key in keys:
            wakeups.register(key)
            wakeups.set_refs(key, {("Model", key[0], models[key])})
        wakeups.poke_model("ns", "fraud")
        return woken(wakeups, keys)

    assert asyncio.run(scenario()) == {("ns", "fraud"), ("ns", "fraud-canary")}


def test_a_referenced_name_still_wakes_its_referrer() -> None:
    async def scenario() -> set[tuple[str, str]]:
        wakeups = Wakeups()
        key = ("ns", "fraud")
        wakeups.register(key)
        wakeups.set_refs(key, {("ModelApproval", "ns", "eb"), ("Model", "ns", "fraud")})
        wakeups.poke_ref("ModelApproval", "ns", "eb")
        return woken(wakeups, [key])

    assert asyncio.run(scenario()) == {("ns", "fraud")}
