"""Only callers with a certificate from the webhook client CA get through the webhook server's TLS,
and a lost seal key is refused with one line saying what to do.

The handshakes run in memory (ssl.MemoryBIO pairs): real OpenSSL, no sockets.
"""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from modelgate.act.keys import seal_key_lost_message
from modelgate.webhooks import certs

Pair = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _issue(cn: str, issuer: Pair | None, *, ca: bool) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("webhook.test")]), critical=False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(directory: Path, name: str, pair: Pair) -> tuple[Path, Path]:
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(pair[0].public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        pair[1].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return crt, key


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> None:
    """A full TLS handshake plus one record each way, in memory; raises ssl.SSLError if refused."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="webhook.test")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for side, obj in (("c", c), ("s", s)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    # TLS 1.3 reports a refused client certificate on the first read after the handshake.
    c.write(b"ping")
    s_in.write(c_out.read())
    assert s.read(4) == b"ping"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    serving_ca = _issue("serving-ca", None, ca=True)
    client_ca = _issue("webhook-client-ca", None, ca=True)
    other_ca = _issue("someone-elses-ca", None, ca=True)
    files = {
        "serving_ca": _write(tmp_path, "serving-ca", serving_ca)[0],
        "client_ca": _write(tmp_path, "client-ca", client_ca)[0],
    }
    files["server_crt"], files["server_key"] = _write(
        tmp_path, "server", _issue("webhook.test", serving_ca, ca=False)
    )
    files["client_crt"], files["client_key"] = _write(
        tmp_path, "apiserver", _issue("apiserver", client_ca, ca=False)
    )
    files["other_crt"], files["other_key"] = _write(
        tmp_path, "other", _issue("apiserver", other_ca, ca=False)
    )
    return files


def server_ctx(pki: dict[str, Path]) -> ssl.SSLContext:
    ctx = certs.client_verifying_context(pki["client_ca"])
    ctx.load_cert_chain(pki["server_crt"], pki["server_key"])  # what Kopf's WebhookServer adds
    return ctx


def client_ctx(pki: dict[str, Path], who: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["serving_ca"]))
    if who:
        ctx.load_cert_chain(pki[f"{who}_crt"], pki[f"{who}_key"])
    return ctx


def test_the_api_servers_certificate_gets_through(pki: dict[str, Path]) -> None:
    handshake(server_ctx(pki), client_ctx(pki, "client"))


@pytest.mark.parametrize("who", [None, "other"], ids=["no-certificate", "certificate-of-another-ca"])
def test_any_other_caller_is_refused_in_the_handshake(pki: dict[str, Path], who: str | None) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(server_ctx(pki), client_ctx(pki, who))


def test_the_lost_seal_key_message_names_the_secret_the_count_and_the_ways_out() -> None:
    msg = seal_key_lost_message("modelgate-system", {"modelapprovals": 3, "modelevaluations": 0})
    assert "\n" not in msg
    assert msg.startswith(
        "signing key Secret modelgate-system/modelgate-signing-keys is missing while 3 sealed objects"
    )
    assert "(3 modelapprovals)" in msg
    assert "Restore the Secret from backup" in msg
    assert "modelgate keys rotate -n modelgate-system" in msg
