#!/usr/bin/env python3
"""A local Kubernetes control plane from upstream binaries, on loopback only.

    python hack/cluster.py up      # start (or reuse) etcd, kube-apiserver, controller-manager,
                                   # scheduler and kwok; create fake nodes; write the kubeconfig
    python hack/cluster.py down    # stop every process it started and remove its state
    python hack/cluster.py status  # exit 0 when the control plane answers /readyz; prints the
                                   # kubeconfig path (stdout) and the webhook client CA (stderr)
    python hack/cluster.py stop|start|restart COMPONENT
                                   # one of etcd, kube-apiserver, kube-controller-manager,
                                   # kube-scheduler (or without "kube-"), kwok, with the same
                                   # flags and data (fault tests); start and restart return once
                                   # it answers again

The binaries come from hack/build.sh (built from Go modules, cached). Certificates are made with
`cryptography`. State lives in .cache/cluster/ (kubeconfig, PKI, etcd data, logs, pids).
kwok turns the Node objects created here into Ready nodes and moves pods scheduled on them through
Pending -> Running -> Ready with pod IPs, so Deployments become Available and Services get endpoints.

The API server calls admission webhooks with a client certificate of its own (an AdmissionConfiguration
whose kubeConfigFile has a `*` user), signed by a CA made only for it: webhook-client-ca.crt in the
state folder. `modelgate run --webhook-client-ca` with that file accepts only the API server's calls.

Every failure ends in one line on stderr naming what is wrong and how to fix it, and a start that
fails stops whatever it had started.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hack.procs import (
    HackError,
    alive,
    check_ports,
    healthy,
    http_ok,
    load_pids,
    log,
    service_main,
    start,
    start_again,
    stop_all,
    stop_one,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MODELGATE_CLUSTER_DIR", ROOT / ".cache" / "cluster"))
OFFSET = int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0"))
BASE_PORTS = {
    "etcd-client": 23790,
    "etcd-peer": 23800,
    "kube-apiserver": 26443,
    "kube-controller-manager": 20257,
    "kube-scheduler": 20259,
    "kwok": 20247,
}
"""Each component's port at offset 0 (tests/unit/test_port_plan.py checks the test runs' offsets)."""
PORTS = {name: port + OFFSET for name, port in BASE_PORTS.items()}
NODES = int(os.environ.get("MODELGATE_CLUSTER_NODES", "2"))
NODE_PODS = os.environ.get("MODELGATE_CLUSTER_NODE_PODS", "110")
AUDIT = os.environ.get("MODELGATE_CLUSTER_AUDIT") == "1"
"""Write an API audit log (metadata only) to logs/audit.log: benchmarks count requests with it."""
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""
START_TIMEOUT = 120.0
WEBHOOK_CLIENT_CA = STATE / "webhook-client-ca.crt"


PREFIX = "cluster"


# --- PKI -------------------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server_names: list[str] | None = None,
    client: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
        b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names:
        sans: list[x509.GeneralName] = []
        for n in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(signer, hashes.SHA256())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert(_name("modelgate-local-ca"), ca_key, None, ca=True)
    srv_key = _key()
    srv = _cert(
        _name("kube-apiserver"),
        srv_key,
        (ca, ca_key),
        server_names=[
            "127.0.0.1",
            "localhost",
            "10.96.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    admin_key = _key()
    admin = _cert(_name("modelgate-admin", "system:masters"), admin_key, (ca, ca_key), client=True)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    files = {
        "ca.crt": ca.public_bytes(pem),
        "ca.key": _pem_key(ca_key),
        "apiserver.crt": srv.public_bytes(pem),
        "apiserver.key": _pem_key(srv_key),
        "admin.crt": admin.public_bytes(pem),
        "admin.key": _pem_key(admin_key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    wh_ca_key = _key()
    wh_ca = _cert(_name("modelgate-webhook-client-ca"), wh_ca_key, None, ca=True)
    wh_key = _key()
    wh = _cert(_name("kube-apiserver-webhook-client"), wh_key, (wh_ca, wh_ca_key), client=True)
    files["webhook-client.crt"] = wh.public_bytes(pem)
    files["webhook-client.key"] = _pem_key(wh_key)
    for name, data in files.items():
        (pki / name).write_bytes(data)
        (pki / name).chmod(0o600)
    WEBHOOK_CLIENT_CA.write_bytes(wh_ca.public_bytes(pem))  # public: the operator reads it


def admission_flags(pki: Path) -> list[str]:
    """kube-apiserver presents pki/webhook-client.crt to every admission webhook (user `*`)."""

    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    kubeconfig = STATE / "webhook-client.kubeconfig"
    user = {
        "client-certificate-data": b64("webhook-client.crt"),
        "client-key-data": b64("webhook-client.key"),
    }
    kubeconfig.write_text(
        json.dumps({"apiVersion": "v1", "kind": "Config", "users": [{"name": "*", "user": user}]}, indent=2)
    )
    kubeconfig.chmod(0o600)
    plugin = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig),
    }
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {"name": name, "configuration": plugin}
            for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")
        ],
    }
    path = STATE / "admission-config.json"
    path.write_text(json.dumps(config, indent=2))
    return [f"--admission-control-config-file={path}"]


def write_kubeconfig(path: Path, pki: Path, server: str) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "modelgate-local",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": "modelgate-admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [
            {"name": "modelgate-local", "context": {"cluster": "modelgate-local", "user": "modelgate-admin"}}
        ],
        "current-context": "modelgate-local",
    }
    path.write_text(json.dumps(cfg, indent=2))
    path.chmod(0o600)


# --- processes -------------------------------------------------------------------------------------


def build_binaries() -> Path:
    """hack/build.sh's bin folder, or $MODELGATE_BIN_DIR (binaries built or downloaded elsewhere)."""
    given = os.environ.get("MODELGATE_BIN_DIR")
    if given:
        names = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
        missing = [b for b in names if not (Path(given) / b).exists()]
        if missing:
            raise HackError(f"MODELGATE_BIN_DIR={given} lacks {', '.join(missing)}")
        return Path(given)
    res = subprocess.run(["bash", str(ROOT / "hack" / "build.sh")], stdout=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise HackError("building the control plane failed (see the lines above)")
    return Path(res.stdout.strip().splitlines()[-1])


def https_ok(url: str, pki: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
        return bool(r.status == 200)


def kubectl(bin_dir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "kubectl"), "--kubeconfig", str(STATE / "kubeconfig"), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


def node_manifest(i: int) -> dict[str, object]:
    name = f"kwok-node-{i}"
    res = {"cpu": "1000", "memory": "4096Gi", "pods": NODE_PODS}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"allocatable": res, "capacity": res},
    }


# --- commands --------------------------------------------------------------------------------------


def apiserver_ready() -> bool:
    return https_ok(f"https://127.0.0.1:{PORTS['kube-apiserver']}/readyz", STATE / "pki")


def up() -> None:
    pids = load_pids(STATE)
    if healthy(pids, apiserver_ready):
        log(PREFIX, f"reusing the running control plane; kubeconfig {STATE / 'kubeconfig'}")
        return
    if pids:
        log(PREFIX, "found a partial control plane; stopping it first")
        down()
    check_ports(PORTS, "MODELGATE_CLUSTER_PORT_OFFSET")
    bin_dir = build_binaries()
    started = time.monotonic()
    STATE.mkdir(parents=True, exist_ok=True)
    pids = {}
    try:
        _start_components(bin_dir, pids)
    except BaseException:
        stop_all(pids)
        shutil.rmtree(STATE, ignore_errors=True)
        raise
    log(
        PREFIX, f"control plane ready in {time.monotonic() - started:.1f}s; kubeconfig {STATE / 'kubeconfig'}"
    )


def audit_flags() -> list[str]:
    if not AUDIT:
        return []
    (STATE / "audit-policy.yaml").write_text(AUDIT_POLICY)
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    return [
        f"--audit-policy-file={STATE / 'audit-policy.yaml'}",
        f"--audit-log-path={STATE / 'logs' / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-mode=batch",
        "--audit-log-maxsize=1024",
    ]


def _start_components(bin_dir: Path, pids: dict[str, int]) -> None:
    pki = STATE / "pki"
    make_pki(pki)
    api = f"https://127.0.0.1:{PORTS['kube-apiserver']}"
    write_kubeconfig(STATE / "kubeconfig", pki, api)
    kubeconfig = str(STATE / "kubeconfig")
    etcd_url = f"http://127.0.0.1:{PORTS['etcd-client']}"
    peer_url = f"http://127.0.0.1:{PORTS['etcd-peer']}"
    start(
        STATE,
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=local",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=local={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
            "--quota-backend-bytes=4294967296",
        ],
        pids,
    )
    wait_for(STATE, "etcd /health", lambda: http_ok(f"{etcd_url}/health"), pids, START_TIMEOUT)
    start(
        STATE,
        "kube-apiserver",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={PORTS['kube-apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            "--enable-priority-and-fairness=false",
            # Close the open watches at SIGTERM and exit: with the default (0) it holds them until
            # SIGKILL, 15 s later (a stop, restart or down with any client watching).
            "--shutdown-watch-termination-grace-period=2s",
            "--v=1",
            *admission_flags(pki),
            *audit_flags(),
        ],
        pids,
    )
    wait_for(STATE, "kube-apiserver /readyz", lambda: https_ok(f"{api}/readyz", pki), pids, START_TIMEOUT)
    start(
        STATE,
        "kube-controller-manager",
        [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS['kube-controller-manager']}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--controllers=*,-node-ipam-controller",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ],
        pids,
    )
    start(
        STATE,
        "kube-scheduler",
        [
            str(bin_dir / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS['kube-scheduler']}",
            "--leader-elect=false",
            "--v=1",
        ],
        pids,
    )
    start(
        STATE,
        "kwok",
        [
            str(bin_dir / "kwok"),
            f"--kubeconfig={kubeconfig}",
            f"--config={ROOT / 'hack' / 'kwok' / 'stages.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.1/16",
            f"--server-address=127.0.0.1:{PORTS['kwok']}",
        ],
        pids,
    )
    nodes = "\n---\n".join(json.dumps(node_manifest(i)) for i in range(NODES))
    res = kubectl(bin_dir, "apply", "-f", "-", input=nodes)
    if res.returncode != 0:
        raise HackError(f"creating fake nodes failed: {res.stderr.strip()}")

    def nodes_ready() -> bool:
        out = kubectl(
            bin_dir,
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}",
        )
        return out.returncode == 0 and out.stdout.split() == ["True"] * NODES

    wait_for(STATE, f"{NODES} Ready nodes", nodes_ready, pids, START_TIMEOUT)
    wait_for(
        STATE,
        "the default service account",
        lambda: kubectl(bin_dir, "get", "serviceaccount", "default", "-n", "default").returncode == 0,
        pids,
        START_TIMEOUT,
    )


def down() -> None:
    pids = load_pids(STATE)
    stop_all(pids)
    if STATE.exists():
        shutil.rmtree(STATE, ignore_errors=True)
    log(
        PREFIX,
        f"stopped {len(pids)} processes and removed {STATE}" if pids else "no control plane was running",
    )


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def _answers(name: str) -> bool:
    """Whether component `name` answers its health endpoint (the controller-manager and scheduler
    serve /healthz to anyone on their secure ports, with a self-signed certificate)."""
    if name == "etcd":
        return http_ok(f"http://127.0.0.1:{PORTS['etcd-client']}/health")
    if name == "kube-apiserver":
        return apiserver_ready()
    if name == "kwok":
        return http_ok(f"http://127.0.0.1:{PORTS['kwok']}/healthz")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"https://127.0.0.1:{PORTS[name]}/healthz", context=ctx, timeout=2) as r:
        return bool(r.status == 200)


def component(command: str, name: str) -> None:
    """stop, start or restart one component of the running control plane; start and restart
    return once it answers its health endpoint."""
    if not load_pids(STATE):
        raise HackError("the local control plane is not running; start it with `make cluster-up`")
    started = time.monotonic()
    if command in ("stop", "restart"):
        stop_one(STATE, name, f"python hack/cluster.py start {name}")
        log(PREFIX, f"stopped {name}")
        if command == "stop":
            return
    pids = start_again(STATE, name)
    wait_for(STATE, f"{name} to answer", lambda: _answers(name), {name: pids[name]}, START_TIMEOUT)
    log(PREFIX, f"{command}ed {name} in {time.monotonic() - started:.1f}s")


def status() -> int:
    pids = load_pids(STATE)
    if healthy(pids, apiserver_ready):
        print(STATE / "kubeconfig")
        if WEBHOOK_CLIENT_CA.exists():
            log(PREFIX, f"webhook client CA {WEBHOOK_CLIENT_CA} (modelgate run --webhook-client-ca)")
        return 0
    stopped = [name for name, pid in pids.items() if not alive(pid)]
    if stopped and len(stopped) < len(pids):
        log(PREFIX, f"stopped: {', '.join(stopped)}; start each with `python hack/cluster.py start NAME`")
        return 1
    log(PREFIX, "the local control plane is not running; start it with `make cluster-up`")
    return 1


if __name__ == "__main__":
    sys.exit(service_main(__doc__, PREFIX, up, down, status, component, COMPONENTS))
