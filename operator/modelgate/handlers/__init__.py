"""Kopf registrations only: thin handlers that gather, call a pure decision, and act.

Importing this package registers every handler with Kopf's default registry.
"""

from modelgate.handlers import deployments, indexes, startup
from modelgate.webhooks import handlers as admission

__all__ = ["admission", "deployments", "indexes", "startup"]
