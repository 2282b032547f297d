"""`modelgate keys`: the operator's signing keys (act/keys.py).

    modelgate keys list                       # ids, dates, which one signs
    modelgate keys rotate                     # a new key; new seals use it
    modelgate keys retire ID                  # refuses while live objects depend on ID
    modelgate keys export-trust > trust.json  # the public keys, for `modelgate verify`

`export-trust` reads only the ConfigMap modelgate-trust (the auditor role may); `list` also reads
which keys the Secret holds; `rotate` and `retire` write both (an admin's rights).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException

from modelgate.act import keys
from modelgate.decide.seal import SealError

DEFAULT_NAMESPACE = "modelgate-system"


def add_arguments(sub: Any) -> None:
    kp = sub.add_parser(
        "keys", help="list, rotate and retire the operator's signing keys; export the trust file"
    )
    kp.add_argument(
        "-n", "--namespace", default=DEFAULT_NAMESPACE, help="the operator's namespace (default: %(default)s)"
    )
    kp.add_argument("--kubeconfig", default=None)
    kp.add_argument("--context", default=None)
    ks = kp.add_subparsers(dest="keys_command", required=True)
    ks.add_parser("list", help="the keys: id, created, retired, whether it signs new seals")
    ks.add_parser("rotate", help="make a new key; new seals use it, old seals keep verifying")
    rt = ks.add_parser("retire", help="retire a key (refused while live objects depend on it)")
    rt.add_argument("key_id")
    ks.add_parser("export-trust", help="print the trust file (the public keys) for `modelgate verify`")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from modelgate.cli.kubeapi import KubeError, api_client

    try:
        client = api_client(args.kubeconfig, args.context)
        return _run(args, client, out)
    except keys.KeyCommandError as e:
        err.write(f"modelgate keys {args.keys_command}: {e}\n")
        return 1
    except (KubeError, SealError) as e:
        err.write(f"modelgate keys {args.keys_command}: {e}\n")
        return 1
    except ApiException as e:
        err.write(f"modelgate keys {args.keys_command}: {_api_error(e, args.namespace)}\n")
        return 1


def _api_error(e: ApiException, namespace: str) -> str:
    if e.status == 403:
        return (
            f"forbidden: {_message(e)} (rotate and retire need the rights of an admin of namespace "
            f"{namespace}; export-trust needs get on ConfigMap {keys.CONFIGMAP})"
        )
    return f"the API server answered {e.status} {e.reason}: {_message(e)}"


def _message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason)


def _run(args: argparse.Namespace, client: Any, out: TextIO) -> int:
    ns, now = args.namespace, dt.datetime.now(dt.UTC)
    if args.keys_command == "export-trust":
        trust = keys.read_published(client, ns)
        if not trust.keys:
            raise keys.KeyCommandError(
                f"ConfigMap {ns}/{keys.CONFIGMAP} lists no key: is the operator installed in {ns} (-n)?"
            )
        out.write(json.dumps(trust.to_json(), indent=2, sort_keys=True) + "\n")
        return 0
    if args.keys_command == "rotate":
        signer = keys.rotate(client, ns, now)
        out.write(
            f"key {signer.key_id} made; new seals use it once the operator has read it (within "
            f"{int(keys.REFRESH)} s), and it re-seals the live approvals and evaluations with it\n"
        )
        return 0
    if args.keys_command == "retire":
        gone = keys.retire(client, ns, args.key_id, now)
        out.write(f"key {gone.key_id} retired at {now:%Y-%m-%dT%H:%M:%SZ}\n")
        return 0
    held = keys.read(client, ns)
    out.write(f"{'KEY':<18} {'CREATED':<21} {'RETIRED':<21} STATE\n")
    for kid, key in sorted(held.published.keys.items(), key=lambda kv: kv[1].created_at):
        state = (
            "retired"
            if key.retired_at
            else "signs"
            if kid == held.current
            else "verifies"
            if kid in {s.key_id for s in held.signers}
            else "published only"
        )
        when = f"{key.retired_at:%Y-%m-%dT%H:%M:%SZ}" if key.retired_at else "-"
        out.write(f"{kid:<18} {key.created_at:%Y-%m-%dT%H:%M:%SZ}   {when:<21} {state}\n")
    return 0
