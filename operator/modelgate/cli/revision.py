"""`modelgate revision -f modeldeployment.yaml`: print the id of the revision a ModelDeployment asks
for, the value approvals and evaluations name in spec.model.revision.

Offline: it reads the manifest, not the cluster. Which serving fields are operational (not covered)
depends on the policies in force; without `--policy` it assumes the default (replicas and
resources), otherwise the intersection of the given policies' operationalFields, as the operator
computes it. The gate messages in the ModelDeployment's status always show the id the operator
expects. Bad input is reported on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import pydantic
import yaml

from modelgate.api.v1alpha1 import GovernancePolicy, ModelDeployment
from modelgate.decide.revision import requested_revision_id


class InputError(Exception):
    """The input cannot be read; the message says why."""


def _documents(path: str) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text() if path != "-" else sys.stdin.read()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise InputError(f"{path} is not valid YAML: {err}") from None
    if not all(isinstance(d, dict) for d in docs):
        raise InputError(f"{path}: every YAML document must be a Kubernetes object (a mapping)")
    return docs


def _parse(cls: type[ModelDeployment] | type[GovernancePolicy], doc: dict[str, Any], path: str) -> Any:
    try:
        return cls.model_validate(doc)
    except pydantic.ValidationError as err:
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()[:5])
        name = (doc.get("metadata") or {}).get("name", "?")
        raise InputError(f"{path}: {cls.__name__} {name} is invalid: {where}") from None


def revisions(files: Sequence[str], policy_files: Sequence[str]) -> list[tuple[str, str]]:
    """(name, revision id) of every ModelDeployment in `files`."""
    policies = []
    for path in policy_files:
        docs = [d for d in _documents(path) if d.get("kind") == "GovernancePolicy"]
        if not docs:  # an id computed without the policy the user meant would be silently wrong
            raise InputError(f"{path} holds no GovernancePolicy")
        policies += [_parse(GovernancePolicy, d, path) for d in docs]
    out = []
    for path in files:
        docs = [d for d in _documents(path) if d.get("kind") == "ModelDeployment"]
        if not docs:
            raise InputError(f"{path} holds no ModelDeployment")
        for d in docs:
            md = _parse(ModelDeployment, d, path)
            out.append((md.name, requested_revision_id(md, policies)))
    return out


def revision(files: Sequence[str], policy_files: Sequence[str], out: TextIO, err: TextIO) -> int:
    try:
        found = revisions(files, policy_files)
    except InputError as e:
        print(f"modelgate revision: {e}", file=err)
        return 2
    if len(found) == 1:
        print(found[0][1], file=out)
    else:
        for name, rev in found:
            print(f"{name}\t{rev}", file=out)
    return 0
