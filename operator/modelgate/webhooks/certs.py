"""TLS for the admission webhook server: a CA and a serving certificate, and when to reissue it.

The operator keeps a CA (10 years) and a serving certificate (1 year) in one Secret of its namespace
(`--webhook-cert-secret`, keys ca.crt, ca.key, tls.crt, tls.key; webhooks/tls.py reads and writes
it). Every replica serves with the same certificate, and the CA is the caBundle of both webhook
configurations. This module is the pure part: make a CA, issue a serving certificate from it, and
decide (`plan`) from the Secret's contents, the names this replica must answer for and `now`
whether the Secret is kept, made, or its serving certificate reissued with the same CA.

The serving certificate is reissued when it lacks a name this replica needs (the union of the names
it had and the needed ones, so that replicas with different names do not take turns), expires
within the renewal window (a third of its lifetime, at most 30 days), does not parse, or does not
belong to the CA or to its key: it is derived from the CA in the same Secret, so reissuing it loses
nothing. A CA that does not parse is refused (`CertSecretInvalid`): the operator did not write it,
and replacing someone's CA silently would be worse than a clear error. A CA inside its own renewal
window is replaced with a new one (and the configurations' caBundle with it).

Callers are authenticated by client certificate when a client CA is given (`--webhook-client-ca`):
the API server presents one from its AdmissionConfiguration's kubeConfigFile, and anyone else (a pod
POSTing a made-up AdmissionReview) fails the TLS handshake before a handler runs. The context trusts
that CA only: Kopf's default context (`create_default_context(CLIENT_AUTH)`) would also trust the
system's public CAs for client certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS: Final = 3650
SERVING_DAYS: Final = 365
MAX_RENEWAL_WINDOW: Final = dt.timedelta(days=30)
KEYS: Final = ("ca.crt", "ca.key", "tls.crt", "tls.key")
CA_NAME: Final = "modelgate-webhook-ca"


class CertSecretInvalid(ValueError):
    """The CA in the certificate Secret does not parse: the operator will not replace it by itself."""


@dataclass(frozen=True)
class Bundle:
    """PEM bytes of the CA, its key, the serving certificate and its key (the Secret's four keys)."""

    ca_crt: bytes
    ca_key: bytes
    tls_crt: bytes
    tls_key: bytes

    def data(self) -> dict[str, bytes]:
        return dict(zip(KEYS, (self.ca_crt, self.ca_key, self.tls_crt, self.tls_key), strict=True))

    @classmethod
    def from_data(cls, data: Mapping[str, bytes]) -> Bundle:
        return cls(*(data.get(k, b"") for k in KEYS))


@dataclass(frozen=True)
class Plan:
    """What to do with the Secret: keep it, make it (with a new CA), or reissue its serving
    certificate (`reason` says why; `sans` are the names of the new certificate)."""

    action: Literal["keep", "create", "new-ca", "reissue"]
    reason: str = ""
    sans: tuple[str, ...] = ()


def service_sans(service: str) -> list[str]:
    """The DNS names the API server may use for Service `namespace/name`."""
    ns, _sep, name = service.partition("/")
    return [name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]


def needed_sans(host: str, service: str | None) -> list[str]:
    """The names this replica's serving certificate must carry: the webhook host (the URL's, local)
    and, in a cluster, the Service's names."""
    return [host, *(service_sans(service) if service else [])]


def renewal_window(cert: x509.Certificate) -> dt.timedelta:
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return min(lifetime / 3, MAX_RENEWAL_WINDOW)


def sans_of(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in ext if isinstance(n, x509.DNSName | x509.IPAddress)]


def _load_cert(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _public(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _serving_problem(bundle: Bundle, ca: x509.Certificate, needed: Iterable[str], now: dt.datetime) -> str:
    """Why the serving certificate must be reissued; empty when it is fine."""
    cert, key = _load_cert(bundle.tls_crt), _load_key(bundle.tls_key)
    if cert is None:
        return "tls.crt is not a PEM certificate"
    if key is None:
        return "tls.key is not a PEM EC private key"
    if _public(key.public_key()) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return "tls.key does not belong to tls.crt"
    if not _signed_by(cert, ca):
        return "tls.crt is not signed by ca.crt"
    missing = [n for n in needed if n not in sans_of(cert)]
    if missing:
        return f"tls.crt lacks the names {', '.join(missing)}"
    if cert.not_valid_after_utc - now <= renewal_window(cert):
        return f"tls.crt expires at {cert.not_valid_after_utc.isoformat()}"
    return ""


def plan(data: Mapping[str, bytes] | None, needed: list[str], now: dt.datetime) -> Plan:
    """What to do with the certificate Secret's `data` (None: there is no Secret) for a replica
    that needs the names `needed`, at `now`. Raises CertSecretInvalid for a CA that does not parse."""
    if data is None:
        return Plan("create", "no certificate Secret", tuple(needed))
    bundle = Bundle.from_data(data)
    if bundle.ca_crt and not bundle.ca_key:
        raise CertSecretInvalid(
            "ca.key is missing, and without the CA's key no certificate can be renewed (a Secret "
            "issued by cert-manager? then pass --webhook-cert-dir with it mounted)"
        )
    ca, ca_key = _load_cert(bundle.ca_crt), _load_key(bundle.ca_key)
    if ca is None or ca_key is None:
        bad = "ca.crt is not a PEM certificate" if ca is None else "ca.key is not a PEM EC private key"
        raise CertSecretInvalid(bad)
    if _public(ca_key.public_key()) != ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise CertSecretInvalid("ca.key does not belong to ca.crt")
    old = _load_cert(bundle.tls_crt)
    sans = tuple(dict.fromkeys([*(sans_of(old) if old else []), *needed]))
    if ca.not_valid_after_utc - now <= renewal_window(ca):
        return Plan("new-ca", f"ca.crt expires at {ca.not_valid_after_utc.isoformat()}", sans)
    problem = _serving_problem(bundle, ca, needed, now)
    return Plan("reissue", problem, sans) if problem else Plan("keep")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_ca(now: dt.datetime, lifetime: dt.timedelta = dt.timedelta(days=CA_DAYS)) -> tuple[bytes, bytes]:
    """A new CA certificate and key (PEM), valid from a few minutes before `now` (clock skew)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def issue(
    ca_crt: bytes,
    ca_key: bytes,
    sans: Iterable[str],
    now: dt.datetime,
    lifetime: dt.timedelta = dt.timedelta(days=SERVING_DAYS),
    not_before: dt.datetime | None = None,
) -> Bundle:
    """A serving certificate for `sans` signed by the CA, valid from `not_before` (default: a few
    minutes before `now`) until `now + lifetime`."""
    ca = x509.load_pem_x509_certificate(ca_crt)
    signer = serialization.load_pem_private_key(ca_key, password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    names = list(dict.fromkeys(sans))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in names]), critical=False)
        .sign(signer, hashes.SHA256())
    )
    return Bundle(ca_crt, ca_key, cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def carry_out(p: Plan, data: Mapping[str, bytes] | None, now: dt.datetime) -> Bundle:
    """The Secret's new contents for a `create`, `new-ca` or `reissue` plan."""
    if p.action == "reissue" and data is not None:
        old = Bundle.from_data(data)
        return issue(old.ca_crt, old.ca_key, p.sans, now)
    ca_crt, ca_key = make_ca(now)
    return issue(ca_crt, ca_key, p.sans, now)


def describe(pem: bytes) -> str:
    """serial=… notAfter=… of a certificate, for log lines."""
    cert = x509.load_pem_x509_certificate(pem)
    return f"serial={cert.serial_number:x} notAfter={cert.not_valid_after_utc.isoformat()}"


def read_dir(directory: Path) -> Bundle:
    """tls.crt, tls.key and ca.crt from a mounted Secret (cert-manager's layout); no CA key."""
    missing = [n for n in ("tls.crt", "tls.key", "ca.crt") if not (directory / n).exists()]
    if missing:
        raise FileNotFoundError(f"webhook certificate directory {directory} lacks {', '.join(missing)}")
    return Bundle(
        (directory / "ca.crt").read_bytes(),
        b"",
        (directory / "tls.crt").read_bytes(),
        (directory / "tls.key").read_bytes(),
    )


def server_context(client_ca: Path | None) -> ssl.SSLContext:
    """The webhook server's TLS context, TLS 1.2 or later. With `client_ca` it requires a client
    certificate signed by that CA, and only by it. The serving certificate is loaded into it (and
    reloaded on renewal) by webhooks/tls.py."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(client_ca))
    return ctx


def client_verifying_context(client_ca: Path) -> ssl.SSLContext:
    """A TLS server context that requires a client certificate signed by `client_ca`, and only by it."""
    return server_context(client_ca)
