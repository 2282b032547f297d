"""Operator settings: our own annotation prefix and finalizer, Event reporting, watch timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import kopf
import kubernetes

from modelgate.act import keys
from modelgate.act import kube as act_kube
from modelgate.api.v1alpha1 import MetricTemplate
from modelgate.config import OperatorConfig
from modelgate.observe.kube import load_kube_config
from modelgate.observe.monitor import Monitor
from modelgate.observe.prometheus import PrometheusConfig, PrometheusSource
from modelgate.runtime.leader import Elector, Timings
from modelgate.runtime.leading import Leadership
from modelgate.runtime.policyreports import Reporter
from modelgate.runtime.reconcile import Collaborators
from modelgate.webhooks import server

PREFIX = "modelgate.io"
KOPF_FINALIZER = "modelgate.io/kopf"
"""Kopf's own finalizer, which no modelgate handler requires, so Kopf never adds it. It must not be
modelgate's FINALIZER: Kopf removes its finalizer from every object no handler of its needs it for,
and modelgate's is removed by modelgate's code once a model is retired (runtime/retire.py)."""


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf's diff-base ("last-handled-configuration") is for create/update handlers, and modelgate
    has none: its reconcile loop is level-based and reads the whole object. Every event is reported
    as a no-change: no annotation is written (one patch and one trip through the admission webhook
    saved per ModelDeployment and per spec change), and no essence is built. Kopf's own `build`
    deep-copies the whole body, managedFields and status included, on every watch event of every
    watched kind: at 1,000 models that was an eighth of the operator's CPU (bench/admission)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup(id="configure")
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **kwargs: Any) -> None:
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.reporting_component = "modelgate"
    settings.posting.level = 20  # INFO and above may be posted; modelgate posts its own (act/audit.py)
    # A per-object worker (its queue, its last event's body, its loggers) idles 5 s by default before
    # it exits; in an admission burst that keeps thousands alive at once, most of the peak memory.
    # Events for one object come in bursts well under a second apart (our writes, the
    # controller-manager's), so a short idle time costs few worker restarts.
    settings.queueing.idle_timeout = 0.5
    # Kopf lists each kind whole before it watches; at 10,000 models one ModelDeployment list is
    # hundreds of MB of parsed JSON at once. Pages of 500 keep one page alive at a time.
    settings.watching.chunk_size = 500
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    cfg: OperatorConfig = memo["config"]
    try:
        found = await asyncio.to_thread(keys.ensure, act_kube.client(), cfg.operator_namespace)
    except keys.SealKeyLost as e:
        raise kopf.PermanentError(str(e)) from e  # `modelgate run` exits with this one line
    memo["keys"] = keys.KeyStore(act_kube.client, cfg.operator_namespace, found)
    memo["keys_task"] = asyncio.create_task(_refresh_keys(memo), name="modelgate-keys")
    source = PrometheusSource(PrometheusConfig.from_env(cfg.prometheus_url)) if cfg.prometheus_url else None
    templates: dict[str, MetricTemplate] = memo["templates"]
    memo["monitor"] = Monitor(source, memo["wakeups"], lambda: templates)  # the leader runs it
    memo["policy_reports"] = Reporter()  # handlers/policyreports.py; the leader writes
    if cfg.webhook_port:
        await _serve_webhooks(settings, memo, cfg, logger)
    await _lead(memo, kwargs)


async def _refresh_keys(memo: kopf.Memo) -> None:
    """Re-read the keys every REFRESH seconds: a rotation reaches every replica without a restart.
    When the current key changed, the leader re-seals the live evidence with it at once (else an
    approval would be re-sealed only at its next watch event, and `keys retire` of the old key
    would keep refusing)."""
    from modelgate.handlers.indexes import seal_all

    store: keys.KeyStore = memo["keys"]
    sealed_with = store.keys.current  # becoming the leader re-seals everything anyway (_lead)
    while True:
        await asyncio.sleep(keys.REFRESH)
        try:
            await asyncio.to_thread(store.reload)
            if store.keys.current != sealed_with and memo["leadership"].leading:
                await seal_all(memo)
            sealed_with = store.keys.current
        except Exception as e:  # the API server away: keep the keys known, try again
            keys.log.warning("could not read the signing keys or re-seal with them: %s", e)


async def _lead(memo: kopf.Memo, indices: dict[str, Any]) -> None:
    """Lead from now on (no --leader-elect), or start the elector (runtime/leader.py)."""
    from modelgate.handlers.indexes import seal_all, write_policy_statuses

    cfg: OperatorConfig = memo["config"]
    leadership: Leadership = memo["leadership"]
    leadership.bind(Collaborators.of(memo), memo["stop_operator"])
    leadership.on_lead.append(lambda: write_policy_statuses(memo, indices["policies"]))
    # The sweep lists and checks every piece of evidence (15 s over 20,000): beside the start, not
    # before it, or Kopf would start watching only after it.
    leadership.on_lead.append(lambda: leadership.spawn(seal_all(memo), "modelgate-seal-sweep"))
    reporter: Reporter = memo["policy_reports"]
    leadership.tasks.append(lambda: reporter.run(lambda: leadership.indexes))
    if not cfg.leader_elect:
        await leadership.started()
        return
    elector = Elector(
        cfg.identity,
        cfg.operator_namespace,
        cfg.leader_election_id,
        Timings(cfg.lease_duration, cfg.renew_deadline, cfg.retry_period),
        on_started=leadership.started,
        on_lost=leadership.lost,
    )
    memo["elector"] = elector
    memo["elector_task"] = asyncio.create_task(elector.run(), name="modelgate-elector")


async def _serve_webhooks(
    settings: kopf.OperatorSettings, memo: kopf.Memo, cfg: OperatorConfig, logger: Any
) -> None:
    """The webhook server and its certificate (webhooks/server.py); every replica serves them."""
    await server.serve(settings, cfg, logger)


@kopf.on.cleanup(id="stop-keys-refresh")
async def stop_background(memo: kopf.Memo, **_: Any) -> None:
    """Stop the keys' refresh (the webhook certificate's stops with the webhook server)."""
    task = memo.get("keys_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@kopf.on.cleanup(id="stop-leading")
async def stop_leading(memo: kopf.Memo, **_: Any) -> None:
    """A graceful stop: the loops finish their passes, the leader's tasks stop, then the Lease is
    released (so the next replica takes over at once). After a lost leadership all that is done."""
    leadership: Leadership = memo["leadership"]
    elector: Elector | None = memo.get("elector")
    task = memo.get("elector_task")
    if elector is not None and task is not None and not elector.leading:
        task.cancel()  # still trying to acquire (or it lost, and has stopped everything)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if leadership.lost_reason is not None:
        return
    await leadership.stop()
    if elector is not None and task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await elector.release()


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Identified(kopf.ConnectionInfo):
    """Kopf's connection with our user agent (replica identity included; see act/kube.py), so the
    API server's audit log tells which replica each of Kopf's requests came from."""

    user_agent: str = ""

    def as_http_headers(self) -> dict[str, str]:
        headers = super().as_http_headers()
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        return headers


@kopf.on.login(id="login")
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Authenticate Kopf exactly like our kubernetes client: the --kubeconfig given, else in-cluster."""
    cfg: OperatorConfig = memo["config"]
    load_kube_config(cfg.kubeconfig)
    conf = kubernetes.client.Configuration.get_default_copy()
    header = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix("authorization")
    scheme, _sep, token = (header or "").rpartition(" ")
    return _Identified(
        user_agent=f"{act_kube.client().user_agent} kopf",
        server=conf.host,
        ca_path=conf.ssl_ca_cert,
        insecure=not conf.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=conf.cert_file,
        private_key_path=conf.key_file,
    )
