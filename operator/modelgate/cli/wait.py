"""`modelgate wait NAME --for admitted|serving|ready|blocked --timeout 5m`: block until the model's
current generation reaches a state, so a CI pipeline can gate on it.

It reads the ModelDeployment once, then follows a watch on that one object (a field selector on its
name) from the resourceVersion read, re-reading when the watch expires (410 Gone) and reconnecting
until the deadline: no polling. On a terminal it keeps one progress line up to date (phase, gates
satisfied, what blocks); otherwise it prints a line each time that changes. Exit 0 when the state is
reached; 1 on timeout (the blocking reason on stderr) or when the model is deleted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any, TextIO

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate.api.v1alpha1 import GROUP, VERSION, parse_duration
from modelgate.cli.explain import typed
from modelgate.cli.kube import CliError, Session, api_error
from modelgate.cli.status import PLURAL, get_model
from modelgate.decide.explain import Target, blocking_reason, progress, reached

WATCH_CHUNK = 60
"""Seconds one watch request stays open before it is renewed (well under API server limits)."""


def timeout_seconds(text: str) -> float:
    """--timeout: a duration (30s, 5m, 1h) or plain seconds."""
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text).total_seconds()
    except ValueError:
        raise CliError(f"--timeout {text}: want a duration such as 30s, 5m or 1h", code=2) from None


class Progress:
    """One line rewritten in place on a terminal; a new line per change elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.tty, self.last = out, out.isatty(), ""

    def show(self, line: str) -> None:
        if line == self.last:
            return
        self.last = line
        if self.tty:
            width = shutil.get_terminal_size((120, 24)).columns - 1
            self.out.write("\r\x1b[K" + (line if len(line) <= width else line[: width - 1] + "…"))
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def end(self, line: str) -> None:
        self.out.write(("\r\x1b[K" if self.tty else "") + line + "\n")
        self.out.flush()


def wait(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    target: Target = args.target
    budget = timeout_seconds(args.timeout)
    deadline = time.monotonic() + budget
    what = f"ModelDeployment {session.namespace}/{args.name}"
    bar = Progress(out)
    obj = get_model(session, args.name)
    while True:
        md = typed(obj)
        bar.show(progress(md))
        if reached(md, target):
            bar.end(f"{what} is {target} (phase {md.status.phase if md.status else '-'})")
            return 0
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if bar.tty:
                out.write("\n")
            print(
                f"timed out after {args.timeout} waiting for {what} to be {target}: {blocking_reason(md)}",
                file=sys.stderr,
            )
            return 1
        obj = _next_version(session, args.name, obj, remaining, what)


def _next_version(
    session: Session, name: str, obj: dict[str, Any], remaining: float, what: str
) -> dict[str, Any]:
    """The object after its next change, or as it is when the watch ends without one."""
    watch: Any = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    try:
        for event in watch.stream(
            session.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            session.namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=obj["metadata"]["resourceVersion"],
            timeout_seconds=max(1, min(WATCH_CHUNK, int(remaining + 0.999))),
            _request_timeout=min(WATCH_CHUNK, remaining) + 10,
        ):
            if event["type"] == "DELETED":
                raise CliError(f"{what} was deleted while waiting")
            if event["type"] in ("ADDED", "MODIFIED"):
                watch.stop()
                return dict(event["object"])
    except ApiException as e:
        if e.status == 410:  # the resourceVersion is too old: start again from what is there now
            return get_model(session, name)
        raise api_error(e, what, session) from e
    except CliError:
        raise
    except Exception as e:
        if "timed out" in str(e).lower():  # the client-side read timeout: the watch simply ended
            return obj
        raise api_error(e, what, session) from e
    return obj
