"""The test run's port plan: every port of every worker's control planes (tests/support/clusters.py
OFFSETS, hack/cluster.py's base ports) and Prometheus servers is used by one of them only. A clash
shows up only when pytest-xdist happens to put two files on the wrong workers: worker 3's
'control' control plane once put its etcd on worker 0's Prometheus port."""

from __future__ import annotations

from collections import defaultdict

from hack.cluster import BASE_PORTS

from tests.support import workers
from tests.support.clusters import OFFSETS


def planned_ports(offsets: dict[str, int]) -> dict[int, list[str]]:
    owners: dict[int, list[str]] = defaultdict(list)
    for n in range(workers.WORKERS):
        for cluster, offset in offsets.items():
            for component, base in BASE_PORTS.items():
                owners[base + n * workers.SPACING + offset].append(f"gw{n} {cluster} {component}")
        owners[workers.PROMETHEUS_PORT + n].append(f"gw{n} Prometheus")
    owners[workers.SCRATCH_PROMETHEUS_PORT].append("tests/hack/test_local_env.py's Prometheus")
    return owners


def clashes(owners: dict[int, list[str]]) -> dict[int, list[str]]:
    return {port: names for port, names in owners.items() if len(names) > 1}


def test_no_two_planned_servers_share_a_port() -> None:
    assert clashes(planned_ports(OFFSETS)) == {}


def test_every_planned_port_is_below_the_ephemeral_range() -> None:
    # Free ports (operators, webhooks, exporters) are picked from 32768 up (Linux's default range).
    assert max(planned_ports(OFFSETS)) < 32768


def test_the_old_control_offset_is_found_to_clash_with_a_prometheus() -> None:
    found = clashes(planned_ports({**OFFSETS, "control": 800}))
    assert {port: sorted(names) for port, names in found.items()} == {
        29090: ["gw0 Prometheus", "gw3 control etcd-client"]
    }
