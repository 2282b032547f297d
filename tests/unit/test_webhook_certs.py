"""The webhook certificate Secret's decisions: keep, make, reissue (names, expiry, damage), new CA;
and the caBundle patch that touches nothing but caBundle."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509

from modelgate.webhooks import certs
from modelgate.webhooks.configuration import Endpoint, ca_bundle_patch, configurations

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
LOCAL = ["127.0.0.1"]


def _bundle(sans: list[str] = LOCAL, lifetime: dt.timedelta = 365 * DAY) -> certs.Bundle:
    ca_crt, ca_key = certs.make_ca(T0)
    return certs.issue(ca_crt, ca_key, sans, T0, lifetime=lifetime, not_before=T0)


BUNDLE = _bundle()
OTHER = _bundle()


def _with(**changes: bytes) -> dict[str, bytes]:
    data = BUNDLE.data()
    data.update({k.replace("_", "."): v for k, v in changes.items()})
    return data


@pytest.mark.parametrize(
    ("data", "needed", "now", "action", "reason"),
    [
        (None, LOCAL, T0, "create", "no certificate Secret"),
        (BUNDLE.data(), LOCAL, T0, "keep", ""),
        (BUNDLE.data(), LOCAL, T0 + 300 * DAY, "keep", ""),
        (BUNDLE.data(), LOCAL, T0 + 336 * DAY, "reissue", "tls.crt expires at 2027-01-01"),
        (BUNDLE.data(), LOCAL, T0 + 400 * DAY, "reissue", "tls.crt expires at"),
        (BUNDLE.data(), ["127.0.0.1", "10.0.0.7"], T0, "reissue", "tls.crt lacks the names 10.0.0.7"),
        (_with(tls_crt=b"garbage"), LOCAL, T0, "reissue", "tls.crt is not a PEM certificate"),
        (_with(tls_crt=b""), LOCAL, T0, "reissue", "tls.crt is not a PEM certificate"),
        (_with(tls_key=b"garbage"), LOCAL, T0, "reissue", "tls.key is not a PEM EC private key"),
        (_with(tls_key=OTHER.tls_key), LOCAL, T0, "reissue", "tls.key does not belong to tls.crt"),
        (
            _with(tls_crt=OTHER.tls_crt, tls_key=OTHER.tls_key),
            LOCAL,
            T0,
            "reissue",
            "tls.crt is not signed by ca.crt",
        ),
        (BUNDLE.data(), LOCAL, T0 + 3630 * DAY, "new-ca", "ca.crt expires at"),
    ],
    ids=[
        "absent",
        "fresh",
        "outside the renewal window",
        "inside the 30-day window",
        "expired",
        "a name missing",
        "garbage tls.crt",
        "empty tls.crt",
        "garbage tls.key",
        "a key of another certificate",
        "a certificate of another CA",
        "the CA near its end",
    ],
)
def test_plan_decides_from_the_secret_the_names_and_now(
    data: dict[str, bytes] | None, needed: list[str], now: dt.datetime, action: str, reason: str
) -> None:
    p = certs.plan(data, needed, now)
    assert p.action == action
    assert p.reason.startswith(reason), p.reason


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ({"ca.crt": b"garbage"}, "ca.crt is not a PEM certificate"),
        ({"ca.key": b"garbage"}, "ca.key is not a PEM EC private key"),
        ({"ca.key": OTHER.ca_key}, "ca.key does not belong to ca.crt"),
        ({"ca.crt": b""}, "ca.crt is not a PEM certificate"),
        ({"ca.key": b""}, "ca.key is missing, .* cert-manager\\? then pass --webhook-cert-dir"),
    ],
)
def test_a_ca_that_does_not_parse_is_refused_not_replaced(damage: dict[str, bytes], message: str) -> None:
    with pytest.raises(certs.CertSecretInvalid, match=message):
        certs.plan({**BUNDLE.data(), **damage}, LOCAL, T0)


def test_a_reissue_keeps_the_names_it_had_and_adds_the_missing_ones() -> None:
    """Two replicas needing different names do not take turns removing each other's."""
    svc = certs.service_sans("modelgate-system/modelgate-webhook")
    p = certs.plan(BUNDLE.data(), svc, T0)
    assert p.action == "reissue"
    assert p.sans == ("127.0.0.1", *svc)


@pytest.mark.parametrize(("action", "same_ca"), [("reissue", True), ("new-ca", False), ("create", False)])
def test_carrying_out_a_plan_gives_a_secret_that_is_then_kept(action: str, same_ca: bool) -> None:
    data = None if action == "create" else BUNDLE.data()
    now = T0 + 3630 * DAY if action == "new-ca" else T0
    p = certs.Plan(action, "test", ("127.0.0.1", "modelgate-webhook.modelgate-system.svc"))  # type: ignore[arg-type]
    new = certs.carry_out(p, data, now)
    assert (new.ca_crt == BUNDLE.ca_crt) is same_ca
    assert (new.ca_key == BUNDLE.ca_key) is same_ca
    assert certs.plan(new.data(), list(p.sans), now).action == "keep"
    cert = x509.load_pem_x509_certificate(new.tls_crt)
    assert cert.not_valid_after_utc - now == dt.timedelta(days=certs.SERVING_DAYS)


@pytest.mark.parametrize(
    ("lifetime", "window"),
    [
        (365 * DAY, 30 * DAY),
        (60 * DAY, 20 * DAY),
        (dt.timedelta(seconds=30), dt.timedelta(seconds=10)),
        (3650 * DAY, 30 * DAY),
    ],
)
def test_the_renewal_window_is_a_third_of_the_lifetime_at_most_30_days(
    lifetime: dt.timedelta, window: dt.timedelta
) -> None:
    cert = x509.load_pem_x509_certificate(_bundle(lifetime=lifetime).tls_crt)
    assert certs.renewal_window(cert) == window


@pytest.mark.parametrize(
    ("host", "service", "names"),
    [
        ("127.0.0.1", None, ["127.0.0.1"]),
        (
            "127.0.0.1",
            "modelgate-system/modelgate-webhook",
            [
                "127.0.0.1",
                "modelgate-webhook",
                "modelgate-webhook.modelgate-system",
                "modelgate-webhook.modelgate-system.svc",
                "modelgate-webhook.modelgate-system.svc.cluster.local",
            ],
        ),
        ("webhooks.example.com", None, ["webhooks.example.com"]),
    ],
)
def test_the_names_a_replica_needs(host: str, service: str | None, names: list[str]) -> None:
    assert certs.needed_sans(host, service) == names


def test_issued_certificates_carry_ip_and_dns_names() -> None:
    b = certs.issue(BUNDLE.ca_crt, BUNDLE.ca_key, ["127.0.0.1", "svc.ns.svc"], T0)
    assert certs.sans_of(x509.load_pem_x509_certificate(b.tls_crt)) == ["127.0.0.1", "svc.ns.svc"]


def _stored(ca: bytes) -> list[dict[str, Any]]:
    return configurations(Endpoint(ca, service_namespace="modelgate-system", service_name="modelgate"))


def _set_ca(i: int, ca: bytes | None) -> Callable[[dict[str, Any]], None]:
    def change(cfg: dict[str, Any]) -> None:
        if ca is None:
            del cfg["webhooks"][i]["clientConfig"]["caBundle"]
        else:
            cfg["webhooks"][i]["clientConfig"]["caBundle"] = base64.b64encode(ca).decode()

    return change


@pytest.mark.parametrize(
    ("change", "patched"),
    [
        (lambda cfg: None, []),
        (_set_ca(1, OTHER.ca_crt), [1]),
        (_set_ca(0, None), [0]),
        (lambda cfg: [_set_ca(i, b"old")(cfg) for i in range(len(cfg["webhooks"]))], [0, 1, 2]),
    ],
    ids=["right: no write", "one wrong", "one missing", "all wrong"],
)
def test_the_ca_bundle_patch_touches_only_wrong_ca_bundles(
    change: Callable[[dict[str, Any]], None], patched: list[int]
) -> None:
    cfg = _stored(BUNDLE.ca_crt)[0]  # the mutating one: three webhooks
    change(cfg)
    ops = ca_bundle_patch(cfg, BUNDLE.ca_crt)
    want = base64.b64encode(BUNDLE.ca_crt).decode()
    expected = []
    for i in patched:
        expected.append({"op": "test", "path": f"/webhooks/{i}/name", "value": cfg["webhooks"][i]["name"]})
        expected.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": want})
    assert ops == expected
