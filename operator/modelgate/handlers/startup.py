"""Operator settings: our own annotation prefix and finalizer, Event reporting, watch timeouts."""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes

from modelgate.config import OperatorConfig
from modelgate.observe.kube import load_kube_config

PREFIX = "modelgate.io"


@kopf.on.startup(id="configure")
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "modelgate"
    settings.posting.level = 20  # INFO and above may be posted; we post deliberately via kopf.event
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10


@kopf.on.login(id="login")
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Authenticate Kopf exactly like our kubernetes client: the --kubeconfig given, else in-cluster."""
    cfg: OperatorConfig = memo["config"]
    load_kube_config(cfg.kubeconfig)
    conf = kubernetes.client.Configuration.get_default_copy()
    header = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix("authorization")
    scheme, _sep, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=conf.host,
        ca_path=conf.ssl_ca_cert,
        insecure=not conf.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=conf.cert_file,
        private_key_path=conf.key_file,
    )
