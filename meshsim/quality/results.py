"""What a check run found: one :class:`RuleResult` per rule, gathered in a :class:`CheckRun`.

These are the typed results every consumer of a check reads: ``meshsim check`` renders them,
the gates decide on them, the catalog stores them (without samples), and an OpenLineage
emitter can turn a :class:`CheckRun` into a run event with data quality assertions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["passed", "failed", "error"]
#: what ran the rules: a check, or the gate of a build, a write or a publish
Trigger = Literal["check", "build", "write", "publish"]
#: what a sample value is replaced by when the viewer may not see it
HIDDEN = "<hidden>"


class RuleResult(BaseModel):
    """One rule checked on one table version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product: str
    table: str
    rule: str
    kind: str
    severity: Literal["error", "warn"]
    status: Status
    version: int = Field(description="the Delta version of the table that was checked")
    checked_at: datetime
    failing_rows: int | None = Field(
        default=None, description="rows that break a row rule (None for a row count, freshness)"
    )
    observed: str | None = Field(
        default=None, description="the value a row count or freshness rule measured"
    )
    sample_columns: list[str] = Field(default_factory=list)
    samples: list[list[str | None]] = Field(
        default_factory=list, description="a few failing keys, values as text, hidden ones <hidden>"
    )
    hidden_columns: list[str] = Field(
        default_factory=list, description="sample columns whose values the viewer may not see"
    )
    message: str = Field(default="", description="why it failed, or why it could not run")

    @property
    def blocks(self) -> bool:
        """Whether this result stops a new version: an ``error`` rule that failed or could
        not run (its promise is not shown to hold)."""
        return self.severity == "error" and self.status != "passed"

    def summary(self) -> str:
        """One line: the rule, its table and version, and what it found."""
        found = (
            f"{self.failing_rows} failing row(s)"
            if self.failing_rows is not None and self.status == "failed"
            else self.message or self.status
        )
        return f"rule '{self.rule}' ({self.kind}) on {self.table} version {self.version}: {found}"


class CheckRun(BaseModel):
    """The rules of one or more products, checked together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: Trigger
    started_at: datetime
    viewer: str | None = Field(default=None, description="the consumer samples were shown to")
    products: list[str]
    results: list[RuleResult] = Field(default_factory=list)

    @property
    def blocking(self) -> list[RuleResult]:
        return [r for r in self.results if r.blocks]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def counts(self) -> dict[str, int]:
        found = {"passed": 0, "failed": 0, "error": 0}
        for result in self.results:
            found[result.status] += 1
        return found
