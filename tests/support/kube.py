"""A thin kubectl wrapper and condition waits for tests against a real kube-apiserver.

Tests act the way users do (kubectl apply, get, delete, --as impersonation) and assert on what the
API server stores. Waits poll a condition with a generous deadline; they never sleep a fixed time.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Kubectl:
    """Runs the kubectl binary against one kubeconfig; text in, CompletedProcess out."""

    def __init__(self, binary: str, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [self.binary, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Any | None:
        """The object as a dict, or None when it does not exist."""
        ns = ["-n", namespace] if namespace else []
        res = self("get", kind, name, *ns, "-o", "json", "--ignore-not-found", check=False)
        if res.returncode != 0:
            raise AssertionError(f"kubectl get {kind} {name} failed: {res.stderr.strip()}")
        return json.loads(res.stdout) if res.stdout.strip() else None

    def apply(
        self,
        manifest: str | dict[str, Any],
        *extra: str,
        as_user: str | None = None,
        as_groups: tuple[str, ...] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """kubectl apply, optionally as another user (impersonation, as real users appear)."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        who = [f"--as={as_user}", *(f"--as-group={g}" for g in as_groups)] if as_user else []
        return self("apply", "-f", "-", *who, *extra, input=text, check=check)


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 90.0, interval: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except AssertionError as e:  # a transient kubectl failure is a value to report, not a crash
            last = e
        if last and not isinstance(last, AssertionError):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def create_test_namespace(kubectl: Kubectl, name: str) -> None:
    """A namespace labelled modelgate.io/test=<name> (test policies select it by that label), ready
    for pods once its default ServiceAccount exists."""
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, f"modelgate.io/test={name}")
    wait_until(
        f"the default service account in {name}", lambda: kubectl.get("serviceaccount", "default", name)
    )


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    """The metav1.Condition of `ctype` in obj.status.conditions, or None."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    kubectl: Kubectl
    local: bool
