"""The `modelgate` command: `run` the operator, `status` of models.

modelgate run [--namespace NS ...] [--allow-no-policy] [--liveness-port P] [--metrics-port P]
modelgate status [-n NS | -A] [NAME]
modelgate revision -f MODELDEPLOYMENT.yaml [--policy POLICY.yaml ...]
modelgate audit [--within 30d] [-o text|json]
modelgate keys list|rotate|retire ID|export-trust [-n OPERATOR_NAMESPACE]
"""

from __future__ import annotations

import argparse
import sys

from modelgate import config


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except config.ConfigError as e:
        for line in str(e).splitlines():
            print(f"modelgate run: {line}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(prog="modelgate", description="Governance gates for ML models on Kubernetes.")
    sub = p.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the operator")
    config.add_run_arguments(run_p)
    st = sub.add_parser("status", help="print the governance status of ModelDeployments")
    st.add_argument("name", nargs="?", help="one ModelDeployment; default: all in the namespace")
    st.add_argument("-n", "--namespace", default="default")
    st.add_argument("-A", "--all-namespaces", action="store_true")
    st.add_argument("--kubeconfig", default=None)
    rp = sub.add_parser(
        "report", help="print the governance report (evidence, gates, revisions, history, events)"
    )
    rp.add_argument("name", nargs="?", help="one ModelDeployment; default: all in the namespace")
    rp.add_argument("-n", "--namespace", default="default")
    rp.add_argument("-o", "--output", choices=["text", "json"], default="text")
    rp.add_argument("--kubeconfig", default=None)
    rv = sub.add_parser(
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
    au = sub.add_parser(
        "audit",
        help="list every model that is NotCompliant, lapsed or due for recertification, serving on stale "
        "evidence, or quarantined; exit 1 when anything is overdue",
    )
    au.add_argument(
        "--within",
        default=None,
        help="report approvals lapsing within this duration (30d); default: each policy's warnBefore",
    )
    au.add_argument("-n", "--namespace", default=None, help="one namespace; default: the whole cluster")
    au.add_argument("-o", "--output", choices=["text", "json"], default="text")
    au.add_argument("--kubeconfig", default=None)
    from modelgate.cli import keys

    keys.add_arguments(sub)
    args = p.parse_args(argv)
    if args.command == "keys":
        return keys.run(args, sys.stdout, sys.stderr)
    if args.command == "revision":
        from modelgate.cli.revision import revision

        return revision(args.filename, args.policy, sys.stdout, sys.stderr)
    if args.command == "audit":
        from modelgate.cli.audit import audit

        return audit(
            args.within, args.output, args.kubeconfig, sys.stdout, sys.stderr, namespace=args.namespace
        )
    if args.command == "run":
        from modelgate.cli.run import run

        return run(config.from_args(args))
    if args.command == "report":
        from modelgate.cli.report import report

        return report(args.name, args.namespace, args.output, args.kubeconfig, sys.stdout)
    from modelgate.cli.status import status

    return status(args.name, None if args.all_namespaces else args.namespace, args.kubeconfig, sys.stdout)
