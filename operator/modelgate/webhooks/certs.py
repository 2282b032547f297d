"""TLS for the admission webhook server: a provided certificate in-cluster, or one made here.

For local runs the operator makes a throw-away CA and a serving certificate for the webhook host
(127.0.0.1 by default) with `cryptography`; the CA goes into the webhook configurations'
caBundle. (Kopf's own self-signed path needs oscrypto, which fails against OpenSSL 3.)

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
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class ServingCert:
    certfile: Path
    keyfile: Path
    ca_pem: bytes


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_self_signed(directory: Path, hosts: list[str], days: int = 365) -> ServingCert:
    """A CA and a serving certificate for `hosts`, written to `directory` (mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelgate-webhook-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for f in (certfile, keyfile):
        f.chmod(0o600)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (directory / "ca.crt").write_bytes(ca_pem)
    return ServingCert(certfile, keyfile, ca_pem)


def load_provided(directory: Path) -> ServingCert:
    """tls.crt, tls.key and ca.crt from a mounted Secret (cert-manager's layout)."""
    missing = [n for n in ("tls.crt", "tls.key", "ca.crt") if not (directory / n).exists()]
    if missing:
        raise FileNotFoundError(f"webhook certificate directory {directory} lacks {', '.join(missing)}")
    return ServingCert(directory / "tls.crt", directory / "tls.key", (directory / "ca.crt").read_bytes())


def client_verifying_context(client_ca: Path) -> ssl.SSLContext:
    """A TLS server context that requires a client certificate signed by `client_ca`, and only by
    it. The serving certificate is loaded into it by Kopf's WebhookServer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(client_ca))
    return ctx
