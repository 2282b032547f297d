"""Start the admission webhook server: certificate, port check, Kopf's server, the configurations.

The order matters: the certificate first (the Secret, made or reissued as needed; webhooks/tls.py),
then the port (shared only with a server of the same CA), then Kopf's server on our SSLContext, then
the configurations' caBundle (written whole locally, patched in a cluster), and last the task that
re-reads the certificate every check interval and reloads it without a restart, which runs beside
the server on its thread (webhooks/thread.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import kopf

from modelgate.act import setup
from modelgate.config import OperatorConfig
from modelgate.webhooks import certs, tls
from modelgate.webhooks.configuration import NAME, Endpoint, configurations
from modelgate.webhooks.thread import ThreadedWebhookServer

NEVER = 10 * 365 * 24 * 3600.0
log = logging.getLogger("modelgate.webhooks")


def _source(cfg: OperatorConfig) -> tls.Source:
    if cfg.webhook_cert_dir:
        return tls.DirSource(Path(cfg.webhook_cert_dir))
    needed = certs.needed_sans(cfg.webhook_host, cfg.webhook_service)
    return tls.SecretSource(cfg.operator_namespace, cfg.webhook_cert_secret, needed)


def _keeper(cfg: OperatorConfig) -> Callable[[certs.Bundle], Awaitable[None]] | None:
    """What keeps the configurations right for a certificate, at start and at every check: locally
    both whole configurations (restored when deleted or edited); in a cluster the caBundle of the
    chart's; nothing with cert-manager, whose CA injector does that."""
    if not cfg.webhook_service:
        url = f"https://{cfg.webhook_host}:{cfg.webhook_port}"

        started = False

        async def register(bundle: certs.Bundle) -> None:
            nonlocal started
            written = await setup.register_webhooks(configurations(Endpoint(bundle.ca_crt, url=url)))
            if started:  # at start writing them is the plan; later someone removed or edited them
                for kind, was in written:
                    log.warning(f"Restored the admission webhook configuration {kind} {NAME}; it was {was}")
            started = True

        return register
    if not cfg.webhook_cert_dir:
        return lambda bundle: tls.inject_ca_bundle(bundle.ca_crt)
    return None


async def serve(settings: kopf.OperatorSettings, cfg: OperatorConfig, logger: Any) -> None:
    """Configure Kopf's webhook server (on a thread of its own, with the certificate refresh beside
    it: webhooks/thread.py) and the configurations."""
    source = _source(cfg)
    try:
        bundle = await source.current()
    except certs.CertSecretInvalid as e:
        raise kopf.PermanentError(str(e)) from e  # `modelgate run` exits with this one line
    client_ca = Path(cfg.webhook_client_ca) if cfg.webhook_client_ca else None
    serving = tls.ServingTLS(certs.server_context(client_ca))
    serving.load(bundle)
    addr = "0.0.0.0" if cfg.webhook_service else cfg.webhook_host
    problem = await asyncio.to_thread(tls.port_problem, addr, cfg.webhook_port, bundle.ca_crt)
    if problem:
        taken = tls.PortTaken(
            f"webhook port {addr}:{cfg.webhook_port} cannot be shared: {problem}; "
            "stop it or pass --webhook-port"
        )
        raise kopf.PermanentError(str(taken)) from taken
    keep = _keeper(cfg)
    # Kopf loads the chain from these names into our context when its server starts; they always
    # hold the certificate loaded last. Every request body is checked before Kopf reads it
    # (webhooks/review.py).
    settings.admission.server = ThreadedWebhookServer(
        addr=addr,
        port=cfg.webhook_port,
        certfile=serving.cert.path,
        pkeyfile=serving.key.path,
        cadata=bundle.ca_crt,
        context=serving.context,
        # Kopf would restart its server (a gap in serving) when it sees the files change; the
        # refresh task loads a new certificate into the running context instead.
        file_check_interval=NEVER,
        alongside=lambda: tls.refresh(serving, source, keep, cfg.webhook_cert_check_interval),
    )
    settings.admission.managed = None  # we register our own configurations: short timeouts, Fail
    if keep is not None:
        await keep(bundle)
    where = f"server={addr}:{cfg.webhook_port} {tls.describe_source(source)} {certs.describe(bundle.tls_crt)}"
    if cfg.webhook_client_ca:
        logger.info(f"Registered admission webhooks; {where} client_ca={cfg.webhook_client_ca}")
    else:
        logger.warning(
            f"Started admission webhooks without --webhook-client-ca; {where}: "
            "any caller that reaches this port gets identities stamped and seals made for the userInfo "
            "it claims. Give the API server a webhook client certificate (docs/webhook-authentication.md) "
            "or restrict ingress with the chart's networkPolicy values"
        )
