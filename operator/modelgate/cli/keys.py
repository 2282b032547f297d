"""`modelgate keys`: the operator's signing keys (act/keys.py).

    modelgate keys list                       # ids, dates, which one signs
    modelgate keys rotate                     # a new key; new seals use it
    modelgate keys retire ID                  # refuses while live objects depend on ID
    modelgate keys export-trust > trust.json  # the public keys, for `modelgate verify`

`-n` names the operator's namespace (default modelgate-system). `export-trust` reads only the
ConfigMap modelgate-trust (the auditor role may); `list` also reads which keys the Secret holds;
`rotate` and `retire` write both (an admin's rights).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException

from modelgate.act import keys
from modelgate.cli.kube import CliError, Session, api_error
from modelgate.decide.seal import SealError

DEFAULT_NAMESPACE = "modelgate-system"


def add_arguments(kp: argparse.ArgumentParser, connect: Callable[[argparse.ArgumentParser], None]) -> None:
    """The keys subcommands, each with kubectl's connection flags (`connect`); `-n` names the
    operator's namespace."""
    ks = kp.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    for name, help in (
        ("list", "the keys: id, created, retired, whether it signs new seals"),
        ("rotate", "make a new key; new seals use it, old seals keep verifying"),
        ("retire", "retire a key (refused while live objects depend on it)"),
        ("export-trust", "print the trust file (the public keys) for `modelgate verify`"),
    ):
        c = ks.add_parser(
            name, help=help, description=f"{help}. -n: the operator's namespace ({DEFAULT_NAMESPACE})"
        )
        connect(c)
        if name == "retire":
            c.add_argument("key_id", help="the key to retire (modelgate keys list shows them)")


def run(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    namespace = args.namespace or DEFAULT_NAMESPACE
    try:
        return _run(args.keys_command, getattr(args, "key_id", ""), session.api, namespace, out)
    except (keys.KeyCommandError, SealError) as e:
        raise CliError(f"keys {args.keys_command}: {e}") from e
    except ApiException as e:
        if e.status == 403:
            raise CliError(
                f"keys {args.keys_command}: forbidden (403): rotate and retire need an admin's rights in "
                f"namespace {namespace}; export-trust needs get on ConfigMap {keys.CONFIGMAP} (the "
                "modelgate-auditor role)"
            ) from e
        raise api_error(e, "", session) from e


def _run(command: str, key_id: str, client: Any, ns: str, out: TextIO) -> int:
    now = dt.datetime.now(dt.UTC)
    if command == "export-trust":
        trust = keys.read_published(client, ns)
        if not trust.keys:
            raise keys.KeyCommandError(
                f"ConfigMap {ns}/{keys.CONFIGMAP} lists no key: is the operator installed in {ns} (-n)?"
            )
        out.write(json.dumps(trust.to_json(), indent=2, sort_keys=True) + "\n")
        return 0
    if command == "rotate":
        signer = keys.rotate(client, ns, now)
        out.write(
            f"key {signer.key_id} made; new seals use it once the operator has read it (within "
            f"{int(keys.REFRESH)} s), and it re-seals the live approvals and evaluations with it\n"
        )
        return 0
    if command == "retire":
        gone = keys.retire(client, ns, key_id, now)
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
