"""How the CLI reaches a cluster the way kubectl does, and how it fails in one line.

`modelgate status|explain|approve|reject|history|report|wait` and the kubectl plugin share these
connection flags: `--kubeconfig` (else KUBECONFIG, else ~/.kube/config, else the in-cluster
ServiceAccount), `--context`, `-n/--namespace` (else the context's namespace, else `default`) and
`--as`/`--as-group`. The plugin must take `--as` itself: kubectl stops looking for a plugin at the
first flag, so `kubectl --as bob modelgate ...` finds none and users write `kubectl modelgate ...
--as bob`.

Every failure a user can cause or meet (no kubeconfig, an unknown context, an API server that does
not answer, 401, 403, an unknown object) becomes a `CliError`: one line naming the problem and the
next step, printed on stderr by main.py, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTClientObject
from kubernetes.config.config_exception import ConfigException

_UNREADABLE = (OSError, ConfigException, yaml.YAMLError, ValueError, TypeError, AttributeError, KeyError)
"""What the kubeconfig loader raises for a file it cannot read or make sense of."""


class CliError(Exception):
    """A failure the user can act on; its text is the one line printed on stderr."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_connection_arguments(p: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    """kubectl's flags for where and as whom (a subset: the ones the CLI honours)."""
    p.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's namespace)")
    if all_namespaces:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("--kubeconfig", help="path to the kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="the kubeconfig context to use (default: its current context)")
    p.add_argument("--as", dest="as_user", metavar="USER", help="impersonate this user")
    p.add_argument(
        "--as-group",
        dest="as_groups",
        action="append",
        default=[],
        metavar="GROUP",
        help="impersonate this group (repeatable)",
    )


@dataclass(frozen=True)
class Session:
    """A connected client and the namespace commands act in."""

    api: Any
    """The kubernetes ApiClient (also installed as the default, for code that builds its own APIs)."""
    namespace: str
    server: str

    @property
    def custom(self) -> Any:
        return kubernetes.client.CustomObjectsApi(self.api)

    @property
    def core(self) -> Any:
        return kubernetes.client.CoreV1Api(self.api)


def connect(args: argparse.Namespace) -> Session:
    """Load the kubeconfig (or the in-cluster config) as kubectl would, and resolve the namespace."""
    cfg = kubernetes.client.Configuration()
    path = _kubeconfig_path(args.kubeconfig)
    namespace = _in_cluster(cfg) if path is None else _from_kubeconfig(path, args.context, cfg)
    api = kubernetes.client.ApiClient(cfg)
    if args.as_user or args.as_groups:
        if not args.as_user:
            raise CliError("--as-group needs --as: impersonating groups requires a user", code=2)
        api.rest_client = _Impersonating(cfg, args.as_user, tuple(args.as_groups))
    kubernetes.client.ApiClient.set_default(api)  # type: ignore[no-untyped-call]
    return Session(api=api, namespace=args.namespace or namespace or "default", server=cfg.host)


def _kubeconfig_path(flag: str | None) -> Path | None:
    """The kubeconfig to read, None for in-cluster; a named file that is missing is an error."""
    if flag:
        if not Path(flag).is_file():
            raise CliError(
                f"kubeconfig {flag} (--kubeconfig) does not exist: pass the path of a kubeconfig file"
            )
        return Path(flag)
    env = os.environ.get("KUBECONFIG")
    if env:
        existing = [p for p in env.split(os.pathsep) if p and Path(p).is_file()]
        if not existing:
            raise CliError(
                f"kubeconfig {env} (KUBECONFIG) does not exist: point KUBECONFIG at a kubeconfig file "
                "or pass --kubeconfig"
            )
        return Path(existing[0])
    home = Path.home() / ".kube" / "config"
    if home.is_file():
        return home
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise CliError(
        "no kubeconfig: ~/.kube/config does not exist, KUBECONFIG is not set and this is not a pod; "
        "pass --kubeconfig or set KUBECONFIG"
    )


def _from_kubeconfig(path: Path, context: str | None, cfg: Any) -> str | None:
    """Configure `cfg` from the kubeconfig; the chosen context's namespace, if it names one."""
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(str(path))  # type: ignore[no-untyped-call]
    except _UNREADABLE as e:
        raise CliError(f"kubeconfig {path} could not be read ({_first_line(e)}): fix or replace it") from e
    if context and context not in [c["name"] for c in contexts]:
        names = ", ".join(c["name"] for c in contexts) or "none"
        raise CliError(f"context {context} is not in kubeconfig {path} (its contexts: {names})", code=2)
    if not context and not current:
        raise CliError(f"kubeconfig {path} has no current context: pass --context or set one")
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, client_configuration=cfg, persist_config=False
        )
    except _UNREADABLE as e:
        raise CliError(f"kubeconfig {path} could not be used ({_first_line(e)}): fix or replace it") from e
    chosen = next((c for c in contexts if c["name"] == context), None) if context else current
    return ((chosen or {}).get("context") or {}).get("namespace")


def _in_cluster(cfg: Any) -> str | None:
    try:
        loader = kubernetes.config.incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
            token_filename=kubernetes.config.incluster_config.SERVICE_TOKEN_FILENAME,
            cert_filename=kubernetes.config.incluster_config.SERVICE_CERT_FILENAME,
        )
        loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
    except ConfigException as e:
        raise CliError(
            f"no kubeconfig and the in-cluster config failed ({_first_line(e)}): pass --kubeconfig"
        ) from e
    ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return ns_file.read_text().strip() if ns_file.is_file() else None


class _Impersonating(RESTClientObject):
    """Sends kubectl's impersonation headers. Several Impersonate-Group headers are needed for
    several groups, which the generated client's header dict cannot carry, hence this layer."""

    def __init__(self, cfg: Any, user: str, groups: tuple[str, ...]) -> None:
        super().__init__(cfg)
        self._user, self._groups = user, groups

    def request(
        self,
        method: str,
        url: str,
        headers: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        merged = urllib3.HTTPHeaderDict(headers or {})
        merged["Impersonate-User"] = self._user
        for group in self._groups:
            merged.add("Impersonate-Group", group)
        return super().request(method, url, merged, body, post_params, _request_timeout)  # type: ignore[no-untyped-call]


def api_error(e: BaseException, what: str, session: Session | None = None) -> CliError:
    """One line for a failed API call about `what` ("ModelDeployment ns/name"), with the next step."""
    if isinstance(e, ApiException):
        status, message = e.status, _status_message(e)
        if status == 404 and what:
            return CliError(f"{what} not found{_hint_list(what)}")
        if status == 401:
            return CliError(
                f"the API server did not accept your credentials (401 Unauthorized): {message}; "
                "log in again or check the kubeconfig's user"
            )
        if status == 403:
            return CliError(
                f"forbidden (403): {message}; ask a cluster admin for the modelgate role you need "
                "(modelgate-auditor to read, modelgate-approver to approve)"
            )
        if status == 0 or status is None:
            return _unreachable(session, e.reason)
        return CliError(f"the API server refused the request ({status} {e.reason}): {message}")
    if isinstance(e, urllib3.exceptions.HTTPError | OSError):
        return _unreachable(session, e)
    return CliError(f"unexpected error ({type(e).__name__}: {_first_line(e)}); please report it")


def _unreachable(session: Session | None, cause: object) -> CliError:
    where = f" at {session.server}" if session else ""
    reason = _first_line(cause)
    if "refused" in reason.lower():
        reason = "connection refused"
    return CliError(
        f"cannot reach the API server{where} ({reason}): is the cluster up, and is this the right "
        "kubeconfig or --context? (kubectl cluster-info)"
    )


def _status_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason)


def _hint_list(what: str) -> str:
    kind, _, where = what.partition(" ")
    ns = where.split("/")[0] if "/" in where else ""
    if not kind or not ns:
        return ""
    return f" (kubectl get {kind.lower()}s -n {ns} lists them)"


def _first_line(e: object) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
