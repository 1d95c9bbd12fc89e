"""Audit records: every query attempt, allowed, refused or failed, is appended to a sink.

The record keeps the consumer's own SQL text (never the rewritten SQL, which holds the mesh
key and file paths) and, for engine failures, only the DuckDB exception class name (the
message can echo data values).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

Decision = Literal["allowed", "refused", "error"]


@dataclass(frozen=True)
class AuditRecord:
    time: datetime
    consumer: str
    sql: str
    decision: Decision
    reason: str = ""
    tables: tuple[tuple[str, int], ...] = ()  # (table ref, version read)
    columns: tuple[str, ...] = ()  # domain.table.column named by the query
    policies: tuple[str, ...] = ()  # grant:/mask:/row_filter: names applied
    rows: int | None = None
    duration_ms: float = 0.0


class AuditSink(Protocol):
    def append(self, record: AuditRecord) -> None: ...


@dataclass
class MemoryAuditSink:
    """Keeps records in memory (tests, notebooks)."""

    records: list[AuditRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def append(self, record: AuditRecord) -> None:
        with self._lock:
            self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)
