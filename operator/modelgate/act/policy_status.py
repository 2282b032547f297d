"""Act: write a GovernancePolicy's status (its Valid condition) through the status subresource.

The condition is decided by decide/policy.py (`policy_status`); this only writes it, in a worker
thread like every other write (the Kubernetes client is synchronous).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kubernetes

from modelgate.act.kube import client
from modelgate.api.v1alpha1 import GROUP, VERSION

PLURAL = "governancepolicies"


def _patch(name: str, status: Mapping[str, Any]) -> None:
    api: Any = kubernetes.client.CustomObjectsApi(client())
    api.patch_cluster_custom_object_status(
        GROUP, VERSION, PLURAL, name, {"status": dict(status)}, field_manager="modelgate"
    )


async def write_policy_status(name: str, status: Mapping[str, Any]) -> None:
    await asyncio.get_running_loop().run_in_executor(None, _patch, name, status)
