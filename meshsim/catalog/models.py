"""What the catalog returns: plain frozen records with stable field names (``as_row``)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

RequestState = Literal["pending", "approved", "rejected", "revoked", "expired"]
STATES: tuple[str, ...] = ("pending", "approved", "rejected", "revoked", "expired")

#: The principal recorded for decisions meshsim takes by itself.
AUTO_PRINCIPAL = "meshsim:auto-approval"
EXPIRY_PRINCIPAL = "meshsim:expiry"


def utcnow() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds: sorts as text in time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_stamp(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class PublishedVersion:
    product: str
    version: int
    published_at: datetime
    tables: dict[str, int]
    rows: dict[str, int | None]
    spec_fingerprint: str

    def as_row(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "version": self.version,
            "published_at": self.published_at,
            "tables": self.tables,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class Request:
    """A consumer's request for (part of) a product, and what became of it."""

    id: int
    consumer: str
    product: str
    reason: str
    state: RequestState
    tables: tuple[str, ...]
    columns: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    granted_tables: tuple[str, ...] = ()
    granted_columns: tuple[str, ...] = ()
    row_filter: str | None = None
    auto_approved: bool = False
    ended_by: str | None = None
    ended_at: datetime | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Request:
        """The request a catalog row holds; a row read before (the same columns and values)
        gives the same object, unparsed: a query's policies read every active request of
        its consumer after each catalog change."""
        return _request_of(tuple(row.keys()), tuple(row))

    @classmethod
    def _parse(cls, row: dict[str, Any]) -> Request:
        return cls(
            id=row["id"],
            consumer=row["consumer"],
            product=row["product"],
            reason=row["reason"],
            state=row["state"],
            tables=tuple(json.loads(row["tables"])),
            columns=tuple(json.loads(row["columns"])),
            created_at=datetime.fromisoformat(row["created_at"]),
            expires_at=parse_stamp(row["expires_at"]),
            decided_by=row["decided_by"],
            decided_at=parse_stamp(row["decided_at"]),
            comment=row["comment"],
            granted_tables=tuple(json.loads(row["granted_tables"] or "[]")),
            granted_columns=tuple(json.loads(row["granted_columns"] or "[]")),
            row_filter=row["row_filter"],
            auto_approved=bool(row["auto_approved"]),
            ended_by=row["ended_by"],
            ended_at=parse_stamp(row["ended_at"]),
        )

    def active(self, now: datetime) -> bool:
        """Approved and not past its expiry at ``now``."""
        return self.state == "approved" and (self.expires_at is None or self.expires_at > now)

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consumer": self.consumer,
            "product": self.product,
            "state": self.state,
            "tables": list(self.tables),
            "columns": list(self.columns),
            "reason": self.reason,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "comment": self.comment,
            "granted_tables": list(self.granted_tables),
            "granted_columns": list(self.granted_columns),
            "row_filter": self.row_filter,
            "auto_approved": self.auto_approved,
        }


@dataclass(frozen=True)
class ProductDetails:
    """Everything ``meshsim show`` prints about one product."""

    product: str
    domain: str
    owner: str | None
    owner_team: str | None
    description: str
    tags: dict[str, str]
    freshness_sla: str | None
    freshness: str
    versions: list[dict[str, Any]]
    columns: list[dict[str, Any]]
    subscribers: list[dict[str, Any]]
    as_consumer: str | None = None
    pending_requests: int = 0
    #: the latest result of each quality rule (meshsim.catalog.quality.latest_results)
    quality: list[dict[str, Any]] = field(default_factory=list)
    #: how many rows each list (versions, columns, quality, subscribers) has in all, when the
    #: details hold a page of each (``meshsim show --limit/--offset``); empty otherwise
    totals: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        from meshsim.reprs import details_text

        return details_text(self)

    def _repr_html_(self) -> str:
        from meshsim.reprs import details_html

        return details_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def as_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "domain": self.domain,
            "owner": self.owner,
            "owner_team": self.owner_team,
            "description": self.description,
            "tags": self.tags,
            "freshness_sla": self.freshness_sla,
            "freshness": self.freshness,
            "versions": self.versions,
            "columns": self.columns,
            "subscribers": self.subscribers,
            "as_consumer": self.as_consumer,
            "pending_requests": self.pending_requests,
            "quality": self.quality,
        }


@lru_cache(maxsize=16384)
def _request_of(names: tuple[str, ...], values: tuple[Any, ...]) -> Request:
    return Request._parse(dict(zip(names, values, strict=True)))
