#!/usr/bin/env python3
"""`make demo`: the example scenario on the local control plane, told step by step.

    python hack/demo.py        # run the story; the operator keeps running afterwards
    python hack/demo.py down   # stop the operator, Prometheus and the control plane

1. The local control plane and Prometheus start; CRDs, RBAC and the governance policy are applied.
2. The operator starts (webhooks included) and keeps running in the background.
3. alice (fraud-team) applies fraud-detector v1: Blocked, the gates name what is missing.
4. bob (ethics board) and carol (model risk) approve, the pipeline submits an evaluation: v1 is
   admitted and serves Ready pods on kwok nodes.
5. alice swaps the serving image under v1's approved digest: a new revision (RevisionMismatch),
   Blocked, while the reviewed v1 keeps serving; she puts the reviewed image back.
6. alice starts her own pod with the serving pods' labels: the ValidatingAdmissionPolicy refuses it.
7. alice applies v2: it waits, Blocked, while v1 keeps serving.
8. v2's approvals and evaluation arrive: v2 is admitted and serves.
9. The traffic simulator drifts v2: PSI crosses its threshold, and after failureLimit failed checks
   the operator rolls back to v1 (the last known good revision).
10. fraud-screener (onDrift: quarantine) serves, drifts, and is quarantined: its Service has no
    endpoints, its pods are kept and labelled.
11. alice deletes fraud-screener and applies it again: the ModelRecord keeps the quarantine, the
    re-created model stays Blocked (ApprovalPredatesQuarantine) and the pods stay kept.
12. Recertification: fraud-explainer (limited risk) serves on an ethics-board approval with a maxAge
    (45 s, a demo value; 180d in real life): RecertificationDue turns True 25 s before it lapses,
    then the approval lapses and the model is suspended; `modelgate audit` lists it (exit 1); bob
    approves again and it serves.
The main steps print `modelgate status` as a cluster admin would read it; alice's walk-arounds print
the refusal or the condition that stops them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from hack import launch
from hack.launch import PROBE_ARGS, client_ca_args, install_args, probe_answered, probe_input

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".cache" / "demo"
KUBECONFIG = ROOT / ".cache" / "cluster" / "kubeconfig"
EX = ROOT / "examples"
NS = "fraud-prod"
PY = sys.executable
INTERVAL = "5s"
PROM_TARGETS = ROOT / ".cache" / "prometheus" / "targets"


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def run(*argv: str, input: str | None = None) -> str:
    res = subprocess.run(argv, input=input, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"demo: {' '.join(argv[:4])} ... failed: {res.stderr.strip()}")
    return res.stdout


def kubectl(*args: str, input: str | None = None) -> str:
    return run(str(ROOT / "hack" / "kubectl"), *args, input=input)


ALICE = ("--as=alice", "--as-group=fraud-team")
AUDITOR = ("--as=dave", "--as-group=auditors")


def apply_as(
    path: Path, user: str | None = None, groups: tuple[str, ...] = (), stamp_now: bool = False
) -> None:
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    for d in docs:
        if stamp_now and d["kind"] == "ModelEvaluation":  # a fresh evaluation, within the policy's maxAge
            d["spec"]["evaluatedAt"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if d["kind"] == "ModelDeployment" and d["spec"].get("monitoring"):
            d["spec"]["monitoring"]["interval"] = INTERVAL  # the examples say 1m; a demo has no time
    who = [f"--as={user}", *(f"--as-group={g}" for g in groups)] if user else []
    out = kubectl("apply", *who, "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
    print("   " + out.strip().replace("\n", "\n   ") + (f"   (as {user})" if user else ""))


def supply_evidence(folder: Path) -> None:
    """The reviewers approve and the pipeline submits the evaluation, each as themselves."""
    apply_as(folder / "approval-ethics-board.yaml", "bob", ("ethics-board",))
    apply_as(folder / "approval-model-risk.yaml", "carol", ("model-risk",))
    apply_as(folder / "evaluation.yaml", "pipeline", ("ml-pipeline",), stamp_now=True)


def wait_phase(
    phase: str,
    version: str,
    timeout: float = 120,
    name: str = "fraud-detector",
    known_good: bool = False,
    reason: str | None = None,
) -> None:
    """Wait for the phase; with known_good also for the revision to have passed a monitoring check,
    with reason for the Admitted condition to give that reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = json.loads(kubectl("get", "mdep", name, "-n", NS, "-o", "json"))
        st = obj.get("status") or {}
        good = [g["version"] for g in st.get("knownGood") or []]
        admitted = {c["type"]: c for c in st.get("conditions") or []}.get("Admitted") or {}
        if (
            st.get("phase") == phase
            and obj["spec"]["model"]["version"] == version
            and st.get("observedGeneration") == obj["metadata"]["generation"]
            and (not known_good or version in good)
            and (reason is None or admitted.get("reason") == reason)
        ):
            return
        time.sleep(0.5)
    sys.exit(f"demo: {name} {version} did not reach {phase} in {timeout:.0f}s; see {STATE}/operator.log")


def conditions(name: str, *types: str) -> None:
    """The conditions that tell why: a walk-around shows up here, not in a log."""
    st = json.loads(kubectl("get", "mdep", name, "-n", NS, "-o", "json"))["status"]
    for c in st["conditions"]:
        if c["type"] in types:
            print(f"   {c['type']:<9} {c['status']:<6} {c['reason']}: {c['message']}")


def refused(what: str, *args: str, input: str | None = None) -> None:
    """Run a kubectl command that must be refused, and show the refusal."""
    res = subprocess.run([str(ROOT / "hack" / "kubectl"), *args], input=input, capture_output=True, text=True)
    if res.returncode == 0:
        sys.exit(f"demo: {what} was accepted: {res.stdout.strip()}")
    print(f"   refused: {res.stderr.strip()}")


def status(name: str = "fraud-detector") -> None:
    print(run(PY, "-m", "modelgate", "status", "-n", NS, name, "--kubeconfig", str(KUBECONFIG)))


def wait_condition(name: str, ctype: str, status: str, reason: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = json.loads(kubectl("get", "mdep", name, "-n", NS, "-o", "json")).get("status") or {}
        cond = {c["type"]: c for c in st.get("conditions") or []}.get(ctype) or {}
        if (cond.get("status"), cond.get("reason")) == (status, reason):
            return
        time.sleep(0.5)
    sys.exit(
        f"demo: {name} {ctype} did not become {status} ({reason}) in {timeout:.0f}s; see {STATE}/operator.log"
    )


def recertification() -> None:
    """Step 12: an approval ages out under maxAge, the model is suspended, then recertified."""
    folder = EX / "06-recertification"
    say(
        "Recertification: limited-risk models need an ethics-board approval younger than maxAge "
        "(45s here, a demo value; 180d in real life), with a warning 25s ahead"
    )
    apply_as(folder / "governancepolicy.yaml")
    apply_as(folder / "modeldeployment.yaml", "alice", ("fraud-team",))
    supply_evidence(folder)
    wait_phase("Serving", "v1", name="fraud-explainer")
    wait_condition("fraud-explainer", "RecertificationDue", "True", "RecertificationDue")
    print("   The warning window opened: RecertificationDue is True, one Warning Event, still serving")
    status("fraud-explainer")
    say("The approval lapses: onRevocation: suspend scales fraud-explainer to zero")
    wait_phase("Blocked", "v1", name="fraud-explainer", reason="ApprovalLapsed")
    conditions("fraud-explainer", "Admitted", "RecertificationDue")
    print("   modelgate audit, what a CronJob would run (exit 1: something is overdue):")
    res = subprocess.run(
        [PY, "-m", "modelgate", "audit", "-n", NS, "--kubeconfig", str(KUBECONFIG)],
        capture_output=True,
        text=True,
    )
    print("   " + res.stdout.strip().replace("\n", "\n   ") + f"\n   (exit status {res.returncode})")
    say("bob (ethics-board) reviews it again: a new approval recertifies it and it serves")
    apply_as(folder / "recertification-ethics-board.yaml", "bob", ("ethics-board",))
    wait_phase("Serving", "v1", name="fraud-explainer")
    conditions("fraud-explainer", "Admitted", "RecertificationDue")


def start_simulator() -> int:
    """The reference exporter under simulated traffic for the three model revisions, scraped by
    Prometheus; returns its port. Drift is switched with POST /drift."""
    pidfile = STATE / "simulator.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
    models = [f"{NS}/fraud-detector/v1", f"{NS}/fraud-detector/v2", f"{NS}/fraud-screener/v1"]
    proc = subprocess.Popen(
        [PY, str(ROOT / "hack" / "simulator.py"), "--port", "0", "--models", ",".join(models)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        sys.exit(f"demo: the simulator did not start: {line}")
    pidfile.write_text(str(proc.pid))
    port = int(line.split("port=")[1].split()[0])
    PROM_TARGETS.mkdir(parents=True, exist_ok=True)
    (PROM_TARGETS / "demo.json").write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"]}]))
    print(f"   simulator on 127.0.0.1:{port} (pid {proc.pid}) serving {', '.join(models)}")
    return port


def drift(port: int, model: str, version: str) -> None:
    url = f"http://127.0.0.1:{port}/drift?model={model}&version={version}&on=1"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5):
        pass


def start_operator() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    pidfile = STATE / "operator.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pidfile.read_text()), signal.SIGTERM)
    proc = launch.start_operator(
        KUBECONFIG,
        STATE / "operator.log",
        "--prometheus-url",
        f"http://127.0.0.1:{os.environ.get('MODELGATE_PROMETHEUS_PORT', '29090')}",  # hack/prometheus.py's
        *client_ca_args(KUBECONFIG),
        liveness_port=18081,
        metrics_port=18082,
        append=True,
        detach=True,
    )
    pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"demo: the operator exited; see {STATE}/operator.log")
        res = subprocess.run(
            [str(ROOT / "hack" / "kubectl"), *PROBE_ARGS],
            input=probe_input(),
            capture_output=True,
            text=True,
        )
        if probe_answered(res.returncode, res.stdout):
            print(f"   operator running, pid {proc.pid}, log {STATE / 'operator.log'}")
            return
        time.sleep(0.5)
    sys.exit(f"demo: the operator's webhooks did not answer in 60s; see {STATE}/operator.log")


def down() -> None:
    pidfile = STATE / "operator.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pidfile.read_text()), signal.SIGTERM)
        pidfile.unlink()
    sim = STATE / "simulator.pid"
    if sim.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(sim.read_text()), signal.SIGTERM)
        sim.unlink()
    subprocess.run([PY, str(ROOT / "hack" / "prometheus.py"), "down"])
    subprocess.run([PY, str(ROOT / "hack" / "cluster.py"), "down"])


def main(argv: list[str]) -> int:
    if argv[1:] == ["down"]:
        down()
        return 0
    say("Starting the local control plane (built from upstream Go modules) and Prometheus")
    run(PY, str(ROOT / "hack" / "cluster.py"), "up")
    run(PY, str(ROOT / "hack" / "prometheus.py"), "up")
    say("Installing the CRDs, the operator's namespace, the shipped roles, the policy and metric templates")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
    kubectl("apply", *install_args())
    for f in ("namespace.yaml", "governancepolicy.yaml", "people.yaml"):
        apply_as(EX / "01-governance" / f)
    apply_as(EX / "02-metric-templates")
    say("Starting the operator (admission webhooks on 127.0.0.1:9443) and the traffic simulator")
    start_operator()
    port = start_simulator()

    say("alice (fraud-team) applies fraud-detector v1 without its evidence: it must not serve")
    apply_as(EX / "03-first-model" / "modeldeployment.yaml", "alice", ("fraud-team",))
    wait_phase("Blocked", "v1")
    status()

    say("bob (ethics-board) and carol (model-risk) approve; the pipeline submits the evaluation")
    supply_evidence(EX / "03-first-model")
    wait_phase("Serving", "v1", known_good=True)
    status()
    print(
        kubectl("get", "deploy,pods,svc", "-n", NS, "-l", "modelgate.io/model=fraud-detector", "-o", "wide")
    )

    say("alice swaps the serving image under v1's approved digest: a new revision, it needs its own evidence")
    image = "registry.example/alice/sklearn-server@sha256:" + "a1" * 32
    swap = {"spec": {"serving": {"image": image}}}
    kubectl("patch", "mdep", "fraud-detector", "-n", NS, "--type=merge", "-p", json.dumps(swap), *ALICE)
    print(f"   spec.serving.image: {image}   (as alice)")
    wait_phase("Blocked", "v1", reason="RevisionMismatch")
    conditions("fraud-detector", "Admitted", "Ready")
    print(
        kubectl("get", "deploy", "fraud-detector", "-n", NS, "-o", "jsonpath=   still serving: {..image}\n")
    )
    say("alice puts the reviewed image back: the approved revision serves again")
    apply_as(EX / "03-first-model" / "modeldeployment.yaml", "alice", ("fraud-team",))
    wait_phase("Serving", "v1")

    say("alice (who may create pods in fraud-prod) starts a lookalike pod with the serving labels: refused")
    serving = json.loads(
        kubectl("get", "pods", "-n", NS, "-l", "modelgate.io/deployment=fraud-detector", "-o", "json")
    )
    labels = {k: v for k, v in serving["items"][0]["metadata"]["labels"].items() if k != "pod-template-hash"}
    lookalike = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fraud-detector-lookalike", "namespace": NS, "labels": labels},
        "spec": {"containers": [{"name": "model", "image": image}]},
    }
    print(f"   labels: {', '.join(f'{k}={v}' for k, v in labels.items())}")
    refused("the lookalike pod", "create", "-f", "-", *ALICE, input=json.dumps(lookalike))

    say("alice applies v2: it waits for its own evidence while v1 keeps serving")
    apply_as(EX / "04-second-version" / "modeldeployment.yaml", "alice", ("fraud-team",))
    wait_phase("Blocked", "v2")
    status()

    say("v2's approvals and evaluation arrive: v2 is admitted and rolls out")
    supply_evidence(EX / "04-second-version")
    wait_phase("Serving", "v2", known_good=True)
    status()

    say(
        f"Drift: the simulator shifts v2's traffic; PSI passes 0.25 and, after 3 failed checks "
        f"({INTERVAL} apart), the operator rolls back to v1"
    )
    drift(port, "fraud-detector", "v2")
    wait_phase("RolledBack", "v2")
    status()
    print(
        kubectl(
            "get",
            "deploy",
            "fraud-detector",
            "-n",
            NS,
            "-o",
            "jsonpath=   fraud-detector now serves {.spec.template.spec.containers[0].env[1].value}\n",
        )
    )

    say(
        "Fairness: alice applies v3, approved and 0.96 accurate overall, but 0.88 for region=LATAM "
        "against 0.97 for region=EU; the policy's maxGap is 0.05"
    )
    apply_as(EX / "07-fairness" / "modeldeployment.yaml", "alice", ("fraud-team",))
    supply_evidence(EX / "07-fairness")
    wait_phase("Blocked", "v3", reason="SliceGapExceeded")
    conditions("fraud-detector", "Evaluated", "Admitted")
    print(
        kubectl(
            "get", "deploy", "fraud-detector", "-n", NS, "-o", "jsonpath=   still serving: {..env[1].value}\n"
        )
    )

    say("Quarantine: fraud-screener says onDrift: quarantine; it serves, then drifts")
    apply_as(EX / "05-quarantine" / "modeldeployment.yaml", "alice", ("fraud-team",))
    supply_evidence(EX / "05-quarantine")
    wait_phase("Serving", "v1", name="fraud-screener", known_good=True)
    drift(port, "fraud-screener", "v1")
    wait_phase("Quarantined", "v1", name="fraud-screener")
    status("fraud-screener")
    print("   Service endpoints (none: traffic cut):")
    print(kubectl("get", "endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=fraud-screener"))
    print("   Pods kept for forensics:")
    print(
        kubectl(
            "get",
            "pods",
            "-n",
            NS,
            "-l",
            "modelgate.io/deployment=fraud-screener",
            "-L",
            "modelgate.io/quarantined",
        )
    )

    say("alice deletes fraud-screener and applies it again, to wipe the quarantine: it stays withdrawn")
    kubectl("delete", "mdep", "fraud-screener", "-n", NS, "--timeout=120s", *ALICE)
    print("   modeldeployment.modelgate.io/fraud-screener deleted   (as alice)")
    apply_as(EX / "05-quarantine" / "modeldeployment.yaml", "alice", ("fraud-team",))
    wait_phase("Blocked", "v1", name="fraud-screener", reason="ApprovalPredatesQuarantine")
    conditions("fraud-screener", "Admitted")
    print("   The pods are still kept, now owned by the ModelRecord for the retention:")
    print(kubectl("get", "pods,replicasets", "-n", NS, "-l", "modelgate.io/deployment=fraud-screener"))
    print("   The ModelRecords, as the auditor (dave, group auditors) reads them; alice cannot write them:")
    print(kubectl("get", "mrec", "-n", NS, *AUDITOR))

    recertification()

    print(kubectl("get", "mdep", "-n", NS))
    print(
        kubectl(
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            "involvedObject.kind=ModelDeployment",
            "--sort-by",
            ".lastTimestamp",
        )
    )
    say("Done. The operator keeps running; try: hack/kubectl get modelgate -A ; stop with: make demo-down")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
