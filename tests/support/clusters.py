"""A second local control plane for tests that must not share the session's cluster.

The session cluster (tests/conftest.py `cluster`) has one operator running against it for the whole
session, with webhook configurations named `modelgate.io`. Tests that run operators of their own (two
replicas electing a leader) or install the chart (whose webhook configurations would clash with the
session operator's) start a control plane of their own: another state directory under .cache/ and
another port offset, torn down afterwards unless MODELGATE_KEEP_CLUSTER is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hack.launch import install_args

from tests.support import workers
from tests.support.kube import Cluster, Kubectl

ROOT = Path(__file__).resolve().parent.parent.parent

# Each control plane's port offset, one place so that two never meet: tests/unit/test_port_plan.py
# checks every port of every worker's control planes and Prometheus servers against every other.
# Below 6000 (plus workers.SPACING per worker) they stay under the kernel's ephemeral range, where
# free ports are picked. bench/common.py adds 1000 to all of them.
OFFSETS = {
    "chart": 100,
    "ha": 200,
    "certs": 300,
    "faults": 400,
    "edges": 500,
    "fuzz": 600,
    "bench-failover": 700,
    "scratch": 900,  # tests/hack/test_local_env.py
    "scratch-components": 950,  # tests/hack/test_cluster_components.py
    "control": 1000,  # at 800, worker 3's etcd took worker 0's Prometheus port (29090)
    "shard": 1100,
}


def built_bin() -> Path:
    """hack/build.sh's bin folder (a no-op when the build is cached)."""
    out = subprocess.run(["bash", str(ROOT / "hack" / "build.sh")], stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise AssertionError("hack/build.sh failed: the local control plane could not be built (see stderr)")
    return Path(out.stdout.strip().splitlines()[-1])


def _env(name: str, offset: int) -> dict[str, str]:
    base = int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0"))
    return {
        **os.environ,
        "MODELGATE_CLUSTER_DIR": str(ROOT / ".cache" / f"cluster-{name}{workers.suffix()}"),
        "MODELGATE_CLUSTER_PORT_OFFSET": str(base + offset),
    }


@contextmanager
def own_cluster(name: str, *, install: bool = True) -> Iterator[Cluster]:
    """A fresh local control plane `name` on the session's ports plus OFFSETS[name], with the CRDs,
    the install manifests and the test users applied (as in the session cluster). `install=False`
    applies only the test users: for `helm install` of the chart, which brings the rest."""
    bin_dir = built_bin()
    env = _env(name, OFFSETS[name])
    script = [sys.executable, str(ROOT / "hack" / "cluster.py")]
    up = subprocess.run([*script, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stderr.write(up.stdout)
    if up.returncode != 0:
        last = up.stdout.strip().splitlines()[-1:] or ["(no output)"]
        raise AssertionError(f"the control plane {name!r} did not start: {last[0]}")
    kube = Kubectl(str(bin_dir / "kubectl"), Path(env["MODELGATE_CLUSTER_DIR"]) / "kubeconfig")
    try:
        if install:
            kube("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
            kube("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
            kube("apply", *install_args())
        kube("apply", "-f", str(ROOT / "tests" / "support" / "test-users.yaml"))
        yield Cluster(kubeconfig=kube.kubeconfig, kubectl=kube, local=True)
    finally:
        if not os.environ.get("MODELGATE_KEEP_CLUSTER"):
            subprocess.run([*script, "down"], env=env)


@contextmanager
def audited_cluster(name: str) -> Iterator[Cluster]:
    """`own_cluster(name)` whose API server writes an audit log (logs/audit.log beside the
    kubeconfig): the user agents in it tell which replica wrote what."""
    saved = os.environ.get("MODELGATE_CLUSTER_AUDIT")
    os.environ["MODELGATE_CLUSTER_AUDIT"] = "1"
    try:
        with own_cluster(name) as cluster:
            yield cluster
    finally:
        if saved is None:
            os.environ.pop("MODELGATE_CLUSTER_AUDIT", None)
        else:
            os.environ["MODELGATE_CLUSTER_AUDIT"] = saved
