"""The `modelgate` command and the `kubectl modelgate` plugin: one parser, one implementation.

modelgate run [--namespace NS ...] [--allow-no-policy] [--liveness-port P] [--metrics-port P]
modelgate status [NAME] [-n NS | -A] [-o json|yaml|wide]
modelgate explain NAME                 why it is or is not serving, and who can change that
modelgate approve NAME --role R [--comment C] [--expires 30d] [--risk-level L]
modelgate reject NAME --role R --comment C
modelgate history NAME
modelgate report [NAME] [-o text|json|yaml] [--html FILE [--prometheus URL]]
modelgate wait NAME --for admitted|serving|ready|blocked [--timeout 5m]
modelgate revision -f MODELDEPLOYMENT.yaml [--policy POLICY.yaml ...]
modelgate audit [--within 30d] [-o text|json]
modelgate keys list|rotate|retire ID|export-trust [-n OPERATOR_NAMESPACE]
modelgate audit [-n NS] [--within 30d] [-o json]   # every model needing attention; exit 1 when overdue
modelgate report -n NS NAME --bundle FILE   # the signed evidence bundle
modelgate verify FILE --trust TRUST.json    # offline: no cluster access

`kubectl-modelgate` (installed with the package, so `kubectl modelgate ...` works) is the same
parser without `run`. Every command that talks to a cluster takes kubectl's connection flags
(cli/kube.py). Exit codes: 0 done, 1 failed (not found, refused, timed out), 2 usage. Errors are one
line on stderr; no traceback reaches a user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TextIO, TypeAlias

import urllib3
from kubernetes.client.exceptions import ApiException

from modelgate import config
from modelgate.api import selector
from modelgate.cli import keys
from modelgate.cli.approve import RISK_LEVELS, decide
from modelgate.cli.audit import audit
from modelgate.cli.explain import explain
from modelgate.cli.history import history
from modelgate.cli.kube import CliError, Session, add_connection_arguments, api_error, connect
from modelgate.cli.report import report
from modelgate.cli.status import status
from modelgate.cli.wait import wait
from modelgate.decide.explain import TARGETS

Command = Callable[[Session, argparse.Namespace, TextIO], int]


def main(argv: list[str] | None = None) -> int:
    """The `modelgate` console script."""
    return _run(argv, "modelgate", plugin=False)


def plugin_main(argv: list[str] | None = None) -> int:
    """The `kubectl-modelgate` console script: kubectl runs it for `kubectl modelgate ...`."""
    return _run(argv, "kubectl modelgate", plugin=True)


def _run(argv: list[str] | None, prog: str, *, plugin: bool) -> int:
    args: argparse.Namespace | None = None
    try:  # `run`'s defaults come from the environment: a bad one is a ConfigError here already
        args = build_parser(prog, plugin=plugin).parse_args(argv)
        return _dispatch(args)
    except config.ConfigError as e:
        for line in str(e).splitlines():
            print(f"{prog} run: {line}", file=sys.stderr)
        return 2
    except CliError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        # `audit` runs as a CronJob: 1 means "something is overdue", so not running at all is 2.
        return 2 if args is not None and args.command == "audit" else e.code
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if args is None or args.command == "run":
            raise  # the operator's own crash belongs in its log, with its traceback
        print(f"{prog}: error: {api_error(e, '')}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "revision":
        from modelgate.cli.revision import revision

        return revision(args.filename, args.policy, sys.stdout, sys.stderr)
    if args.command == "run":
        from modelgate.cli.run import run

        cfg = config.from_args(args)
        if wrong := selector.problem(cfg.selector):
            raise config.ConfigError(wrong)
        return run(cfg)
    if args.command == "verify":
        from modelgate.cli.verify import verify

        return verify(args.file, args.trust, sys.stdout, sys.stderr)
    command: Command = args.handler
    session = connect(args)
    try:
        return command(session, args, sys.stdout)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
        raise api_error(e, "", session) from e


def build_parser(prog: str, *, plugin: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Governance gates for ML models on Kubernetes: why a model serves or not, approve "
        "it, wait for it.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if not plugin:
        run_p = sub.add_parser("run", help="run the operator")
        config.add_run_arguments(run_p)
    _status(sub)
    _explain(sub)
    _approve(sub)
    _reject(sub)
    _history(sub)
    _report(sub)
    _wait(sub)
    _revision(sub)
    _keys(sub)
    _verify(sub)
    _audit(sub)
    return p


Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _cluster_command(sub: Sub, name: str, handler: Command, help: str, **kw: bool) -> argparse.ArgumentParser:
    c: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    add_connection_arguments(c, **kw)
    c.set_defaults(handler=handler)
    return c


def _model_command(
    sub: Sub, name: str, handler: Command, help: str, outputs: list[str], *, many: bool = False
) -> None:
    """A command about one ModelDeployment (or, with `many`, all in the namespace) with -o."""
    c = _cluster_command(sub, name, handler, help, all_namespaces=many)
    if many:
        c.add_argument("name", nargs="?", help="one ModelDeployment; default: all in the namespace")
    else:
        c.add_argument("name", help="the ModelDeployment")
    c.add_argument("-o", "--output", choices=outputs, help="output format")


def _status(sub: Sub) -> None:
    help = "print the governance status of ModelDeployments"
    _model_command(sub, "status", status, help, ["json", "yaml", "wide"], many=True)


def _explain(sub: Sub) -> None:
    help = (
        "why a model is or is not serving: each missing piece, the command that supplies it, who may run it"
    )
    _model_command(sub, "explain", explain, help, ["json", "yaml"])


def _evidence_arguments(c: argparse.ArgumentParser, *, comment_required: bool) -> None:
    c.add_argument("name", help="the ModelDeployment; the approval is for the digest it requests now")
    c.add_argument("--role", required=True, help="the role you decide in, as the GovernancePolicy names it")
    c.add_argument("--comment", required=comment_required, help="your reasoning, for the audit trail")
    c.add_argument("-o", "--output", choices=["json", "yaml"], help="print the created ModelApproval")


def _approve(sub: Sub) -> None:
    ap = _cluster_command(
        sub,
        "approve",
        lambda s, a, o: decide(s, a, o, "approved"),
        "approve what a ModelDeployment requests now, as yourself (the webhook stamps who you are)",
    )
    _evidence_arguments(ap, comment_required=False)
    ap.add_argument(
        "--expires", help="when the approval stops counting: a duration (30d) or an RFC 3339 time"
    )
    ap.add_argument(
        "--risk-level",
        choices=RISK_LEVELS,
        help="the risk level you confirm (policies with riskLevelConfirmation)",
    )


def _reject(sub: Sub) -> None:
    rj = _cluster_command(
        sub,
        "reject",
        lambda s, a, o: decide(s, a, o, "rejected"),
        "reject what a ModelDeployment requests now; it blocks until you delete the rejection",
    )
    _evidence_arguments(rj, comment_required=True)
    rj.set_defaults(expires=None)


def _history(sub: Sub) -> None:
    help = "the decisions the operator took about a model"
    _model_command(sub, "history", history, help, ["json", "yaml", "wide"])


def _report(sub: Sub) -> None:
    rp = _cluster_command(
        sub,
        "report",
        _report_command,
        "print the governance report (evidence, gates, revisions, history, events)",
    )
    rp.add_argument("name", nargs="?", help="one ModelDeployment; default: all in the namespace")
    rp.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text")
    rp.add_argument("--html", metavar="FILE", help="write one model's report as a static HTML page")
    rp.add_argument(
        "--prometheus",
        metavar="URL",
        default=os.environ.get("PROMETHEUS_URL") or None,
        help="Prometheus for --html's metric charts (default: $PROMETHEUS_URL)",
    )
    rp.add_argument("--bundle", metavar="FILE", help="write the signed evidence bundle of NAME to FILE")
    rp.add_argument(
        "--operator-namespace",
        default="modelgate-system",
        help="where the operator's signing keys are (--bundle; default: %(default)s)",
    )


def _report_command(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    """`modelgate report`'s own function (cli/report.py), whatever its flags, with kubectl's
    connection; its "not found" becomes the one-line error."""
    if args.bundle and args.html:
        raise CliError("--bundle and --html each write one file: give one of them", 2)
    if args.bundle:
        from modelgate.cli.bundle import write_bundle

        return write_bundle(session, args.name, args.bundle, args.operator_namespace, out)
    try:
        return report(args.name, session.namespace, args.output, out, args.html, args.prometheus)
    except LookupError as e:
        if type(e) is not LookupError:
            raise
        raise CliError(f"{e} (kubectl get modeldeployments -n {session.namespace} lists them)") from e


def _wait(sub: Sub) -> None:
    wt = _cluster_command(
        sub, "wait", wait, "wait until a model is admitted, serving, ready or blocked (exit 1 on timeout)"
    )
    wt.add_argument("name", help="the ModelDeployment")
    wt.add_argument("--for", dest="target", required=True, choices=TARGETS, help="the state to wait for")
    wt.add_argument("--timeout", default="5m", help="give up after this long (30s, 5m, 1h; default 5m)")


def _keys(sub: Sub) -> None:
    help = "list, rotate and retire the operator's signing keys; export the trust file"
    kp: argparse.ArgumentParser = sub.add_parser("keys", help=help, description=help)
    keys.add_arguments(kp, _keys_command)


def _keys_command(c: argparse.ArgumentParser) -> None:
    add_connection_arguments(c)
    c.set_defaults(handler=keys.run)


def _audit(sub: Sub) -> None:
    au = _cluster_command(
        sub,
        "audit",
        audit,
        "list every model that is NotCompliant, lapsed or due for recertification, serving on stale "
        "evidence, or quarantined; exit 1 when anything is overdue, 2 when the audit could not run",
    )
    au.add_argument(
        "--within",
        default=None,
        help="report approvals lapsing within this duration (30d); default: each policy's warnBefore",
    )
    au.add_argument("-o", "--output", choices=["text", "json"], default="text")


def _verify(sub: Sub) -> None:
    vp: argparse.ArgumentParser = sub.add_parser(
        "verify", help="check an evidence bundle against a trust file, offline (no cluster access)"
    )
    vp.add_argument("file", help="the bundle (modelgate report --bundle)")
    vp.add_argument("--trust", required=True, help="the trust file (modelgate keys export-trust)")


def _revision(sub: Sub) -> None:
    rv: argparse.ArgumentParser = sub.add_parser(
        "revision",
        help="print the revision id a ModelDeployment manifest asks for (what evidence names in "
        "spec.model.revision)",
    )
    rv.add_argument("-f", "--filename", action="append", required=True, help="manifest file, - for stdin")
    rv.add_argument(
        "--policy",
        action="append",
        default=[],
        help="GovernancePolicy manifests in force (their operationalFields); default: replicas, resources",
    )
