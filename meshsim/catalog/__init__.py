"""The central catalog: publish, discover, request, approve, revoke, audit.

See :class:`Catalog`. State lives in ``<workspace>/governance/catalog.db`` (SQLite, WAL).
"""

from meshsim.catalog.catalog import Catalog, parse_expiry
from meshsim.catalog.models import ProductDetails, PublishedVersion, Request
from meshsim.catalog.publish import PublishGateError, gate_problems

__all__ = [
    "Catalog",
    "ProductDetails",
    "PublishGateError",
    "PublishedVersion",
    "Request",
    "gate_problems",
    "parse_expiry",
]
