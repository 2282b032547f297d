"""Direct requests to the kube-apiserver, for tests that send many objects (fuzzing): one HTTPS
session instead of a kubectl process per object, answers as the API server's Status.

The credentials are the kubeconfig's (read with the kubernetes client's loader); requests as other
users go through impersonation headers, the way `kubectl --as --as-group` sends them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client, config  # type: ignore[import-untyped]


@dataclass(frozen=True)
class Answer:
    code: int
    body: dict[str, Any]

    @property
    def message(self) -> str:
        """A Status's message (refusals), or "" for a stored object."""
        return str(self.body.get("message", "")) if self.body.get("kind") == "Status" else ""


class Api:
    def __init__(self, kubeconfig: Path) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.host = cfg.host.rstrip("/")
        self.pool = urllib3.PoolManager(
            cert_file=cfg.cert_file, key_file=cfg.key_file, ca_certs=cfg.ssl_ca_cert, maxsize=4
        )

    def url(self, api_version: str, plural: str, namespace: str | None, name: str = "") -> str:
        base = f"{self.host}/apis/{api_version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{where}/{plural}" + (f"/{name}" if name else "")

    def create(
        self,
        obj: Any,
        *,
        plural: str,
        namespace: str | None,
        api_version: str = "modelgate.io/v1alpha1",
        dry_run: bool = False,
        strict: bool = True,
        as_user: str | None = None,
        as_groups: tuple[str, ...] = (),
        data: bytes | None = None,
    ) -> Answer:
        """POST `obj` (or raw `data`); strict field validation refuses unknown fields by name."""
        params = {"fieldValidation": "Strict" if strict else "Ignore"}
        if dry_run:
            params["dryRun"] = "All"
        headers = urllib3.HTTPHeaderDict({"Content-Type": "application/json"})
        if as_user:
            headers["Impersonate-User"] = as_user
            for group in as_groups:
                headers.add("Impersonate-Group", group)
        url = f"{self.url(api_version, plural, namespace)}?{urlencode(params)}"
        body = data if data is not None else json.dumps(obj).encode()
        return self._answer(self.pool.request("POST", url, body=body, headers=headers, timeout=30))

    def get(self, plural: str, namespace: str | None, name: str = "") -> Answer:
        url = self.url("modelgate.io/v1alpha1", plural, namespace, name)
        return self._answer(self.pool.request("GET", url, timeout=30))

    @staticmethod
    def _answer(res: urllib3.BaseHTTPResponse) -> Answer:
        return Answer(res.status, json.loads(res.data) if res.data else {})
