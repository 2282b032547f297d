"""Kopf registrations only: thin handlers that gather, call a pure decision, and act.

Importing this package registers every handler with Kopf's default registry.
"""

from modelgate.handlers import deployments, indexes, startup

__all__ = ["deployments", "indexes", "startup"]
