"""Kopf registrations only: thin handlers that gather, call a pure decision, and act.

Importing this package registers every handler with Kopf's default registry; the admission
handlers (modelgate.webhooks.handlers) are imported by `modelgate run` only when webhooks are on,
since Kopf refuses admission handlers without a webhook server.
"""

from modelgate.handlers import deployments, indexes, policyreports, records, startup

__all__ = ["deployments", "indexes", "policyreports", "records", "startup"]
