"""Serving the admission webhooks: the certificate (from the Secret, or a mounted directory), the
TLS context it is loaded into and reloaded on renewal, the caBundle of the configurations.

Sources of the serving certificate, in order:
- `--webhook-cert-dir`: a mounted Secret that cert-manager issues and renews (tls.crt, tls.key,
  ca.crt). Nothing is written to the cluster for it; cert-manager's CA injector sets the caBundle
  of the chart's configurations. Files are re-read every check: a rotated certificate is loaded.
- otherwise the Secret `--webhook-cert-secret` in the operator's namespace, made by the first
  replica that finds none (a 409 from a concurrent replica: it reads theirs), shared by all of them,
  and reissued with the same CA when it lacks a name or nears expiry (webhooks/certs.py `plan`;
  updates carry the resourceVersion read, a conflict re-reads).

Every replica re-reads its source every `--webhook-cert-check-interval` seconds and loads a changed
certificate into the running server's SSLContext (`load_cert_chain` on the context Kopf's server
was given): new connections get the new certificate, no restart. The key never touches a disk:
`load_cert_chain` takes file names, so the PEM goes to an anonymous in-memory file (memfd, named
by /proc/self/fd/N), rewritten in place on each load; the root filesystem may be read-only.

caBundle: locally (no `--webhook-service`) the operator writes both configurations whole, with a
url clientConfig, at start (act/setup.py `register_webhooks`), and again at every check where one
is missing or differs (deleted or edited by an admin: while they are gone nothing is stamped or
sealed, so the gap is closed within a check interval; nothing is written when both are right). In
a cluster the chart owns them and the operator only patches each webhook's caBundle where it
differs from ca.crt (nothing is written when it is right), at start and at every check, so a
reissued CA reaches them; with `--webhook-cert-dir` and a Service it does not touch them at all.

Port sharing: Kopf's server binds with SO_REUSEPORT, so two replicas on one machine share a port
(as behind a Service). That is right only when both present a certificate from the same CA: before
binding, a held port is probed with TLS and accepted only if its server's certificate verifies
against our CA; anything else (another modelgate against another cluster, another program) is
refused with a message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from modelgate.act import webhook_certs as store
from modelgate.webhooks import certs
from modelgate.webhooks.configuration import NAME, ca_bundle_patch

log = logging.getLogger("modelgate.webhooks")
ATTEMPTS = 5


class PortTaken(RuntimeError):
    """The webhook port is held by a server this replica must not share it with."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _PemFile:
    """A file name whose content can be replaced: an anonymous memfd on Linux, else a file in a
    private temporary directory."""

    def __init__(self, label: str) -> None:
        if hasattr(os, "memfd_create"):
            self._fd = os.memfd_create(f"modelgate-{label}", os.MFD_CLOEXEC)
            self.path = f"/proc/self/fd/{self._fd}"
        else:  # pragma: no cover - not Linux
            directory = tempfile.mkdtemp(prefix="modelgate-webhook-")
            self.path = str(Path(directory) / label)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def write(self, data: bytes) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


class ServingTLS:
    """The webhook server's SSLContext and the certificate loaded into it."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.cert = _PemFile("tls.crt")
        self.key = _PemFile("tls.key")
        self.bundle: certs.Bundle | None = None

    def load(self, bundle: certs.Bundle) -> bool:
        """Load `bundle`'s serving certificate; False when it is the one already loaded."""
        if self.bundle and (self.bundle.tls_crt, self.bundle.tls_key) == (bundle.tls_crt, bundle.tls_key):
            self.bundle = bundle
            return False
        # A half-rotated pair (cert-manager writing its files) must not reach the live context:
        # loaded into a scratch context first, it raises, and the running server keeps the old one.
        self.cert.write(bundle.tls_crt)
        self.key.write(bundle.tls_key)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert.path, self.key.path)
        except ssl.SSLError:
            if self.bundle is not None:
                self.cert.write(self.bundle.tls_crt)
                self.key.write(self.bundle.tls_key)
            raise
        self.context.load_cert_chain(self.cert.path, self.key.path)
        self.bundle = bundle
        return True


class Source(Protocol):
    async def current(self) -> certs.Bundle: ...


class DirSource:
    """A mounted Secret (cert-manager): read, never written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def current(self) -> certs.Bundle:
        return await asyncio.to_thread(certs.read_dir, self.directory)


class SecretSource:
    """The shared Secret: made when absent, its serving certificate reissued when `plan` says so."""

    def __init__(
        self, namespace: str, name: str, needed: list[str], now: Callable[[], dt.datetime] = _now
    ) -> None:
        self.namespace, self.name, self.needed, self.now = namespace, name, needed, now

    async def current(self) -> certs.Bundle:
        where = f"{self.namespace}/{self.name}"
        for _ in range(ATTEMPTS):
            stored = await store.read_secret(self.namespace, self.name)
            data = stored.data if stored else None
            try:
                p = certs.plan(data, self.needed, self.now())
            except certs.CertSecretInvalid as e:
                raise certs.CertSecretInvalid(
                    f"webhook certificate Secret {where}: {e}; the operator does not replace a CA it "
                    f"cannot read. Delete the Secret (kubectl -n {self.namespace} delete secret "
                    f"{self.name}) and it makes a new CA and certificate, or put a valid one there"
                ) from None
            if p.action == "keep":
                assert data is not None
                return certs.Bundle.from_data(data)
            new = await asyncio.to_thread(certs.carry_out, p, data, self.now())
            if stored is None:
                written = await store.create_secret(self.namespace, self.name, new.data())
            else:
                written = await store.update_secret(
                    self.namespace, self.name, new.data(), stored.resource_version
                )
            if written:
                verb = {"create": "Created", "new-ca": "Replaced the CA of", "reissue": "Reissued"}[p.action]
                log.info(
                    f"{verb} the webhook certificate in Secret {where}; reason={p.reason!r} "
                    f"sans={','.join(p.sans)} {certs.describe(new.tls_crt)}"
                )
                return new
            # 409: another replica wrote it meanwhile; read theirs and decide again
        raise RuntimeError(f"webhook certificate Secret {where} kept changing in {ATTEMPTS} attempts")


async def inject_ca_bundle(ca_pem: bytes) -> None:
    """Set caBundle of each webhook in both configurations `modelgate.io` where it differs."""
    for kind in store.KINDS:
        stored = await store.read_configuration(kind, NAME)
        if stored is None:
            log.warning(f"Found no {kind} {NAME} to inject the CA bundle into; will look again")
            continue
        ops = ca_bundle_patch(stored, ca_pem)
        if ops:
            await store.patch_configuration(kind, NAME, ops)
            log.info(f"Injected the CA bundle into {kind} {NAME}; webhooks={len(ops) // 2}")


def _bound(addr: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((addr, port))
        except OSError:
            return True
    return False


def port_problem(addr: str, port: int, ca_pem: bytes) -> str:
    """Why this replica must not share `addr:port`; empty when it is free, or when the server
    holding it presents a certificate signed by our CA (another replica, same Secret)."""
    if not _bound(addr, port):
        return ""
    host = "127.0.0.1" if addr in ("0.0.0.0", "") else addr
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # the chain is what matters; the names are the holder's business
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3  # the server's certificate arrives before ours is asked
    ctx.load_verify_locations(cadata=ca_pem.decode())
    try:
        with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
            tls.getpeercert()
    except ssl.SSLCertVerificationError:
        return "it is held by a server whose certificate our CA did not sign (another modelgate?)"
    except OSError as e:
        return f"it is held, and its holder did not complete a TLS handshake ({e})"
    return ""


async def refresh(
    tls: ServingTLS,
    source: Source,
    keep: Callable[[certs.Bundle], Awaitable[None]] | None,
    interval: float,
) -> None:
    """Every `interval` seconds: re-read the certificate, load it if it changed, and `keep` the
    configurations right for it (their caBundle; locally, the whole configurations)."""
    while True:
        await asyncio.sleep(interval)
        try:
            bundle = await source.current()
            if tls.load(bundle):
                log.info(f"Loaded a new webhook serving certificate; {certs.describe(bundle.tls_crt)}")
            if keep is not None:
                await keep(bundle)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error(f"Failed to refresh the webhook certificate; will retry; error={e}")


def describe_source(source: Any) -> str:
    if isinstance(source, DirSource):
        return f"cert_dir={source.directory}"
    return f"cert_secret={source.namespace}/{source.name}"
