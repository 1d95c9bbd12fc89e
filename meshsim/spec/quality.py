"""Quality rules of a product's tables: the promises a product keeps (see ``docs/QUALITY.md``).

A rule is a mapping with exactly one kind key, as sources are::

    quality:                                   # on a table
      - unique: [l_orderkey, l_linenumber]
      - row_count: {min: 1}
      - references: sales.orders
        columns: [l_orderkey]
        to: [o_orderkey]
      - freshness: 24h                         # the table's last commit, or `column`'s newest value
      - sql: SELECT * FROM sales.lineitem WHERE l_receiptdate < l_shipdate
        name: received_after_shipped
        severity: warn
    columns:
      - name: o_orderstatus
        quality: [not_null, {accepted_values: [F, O, P]}]   # on a column: the column is implied

``severity: error`` (the default) blocks a new version from becoming visible; ``warn`` records
the result. Cross-file rules (columns that exist, a referenced table that exists) are checked by
:mod:`meshsim.spec.lint`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

_NAME = r"^[a-z][a-z0-9_]*$"
_TABLE = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
_DURATION = re.compile(r"^(\d+)\s*(m|h|d)$")

Severity = Literal["error", "warn"]


def _scalar(value: Any) -> Any:
    """A rule's literal: a number, a text, a boolean, or a YAML date or timestamp (as ISO
    text, as a quoted one would be); anything else is one clear error, not one per type."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None:
        raise ValueError("null is not a value to compare with (a NULL never fails these rules)")
    if not isinstance(value, str | int | float | bool):
        raise ValueError(
            f"{value!r} is not a value: a bound or accepted value is a number, a date or a text"
        )
    return value


Scalar = Annotated[str | int | float | bool, BeforeValidator(_scalar)]


def _bound(value: Any) -> Any:
    return None if value is None else _scalar(value)


Bound = Annotated[str | int | float | bool | None, BeforeValidator(_bound)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Annotated[str, Field(pattern=_NAME, max_length=63)] | None = Field(
        default=None, description="a name for reports; derived from the kind and columns if unset"
    )
    severity: Severity = "error"
    description: str = ""


class NotNull(_Rule):
    not_null: bool | list[str] = Field(
        description="true on a column; the columns it covers on a table"
    )


class Unique(_Rule):
    unique: bool | list[str] = Field(
        description="true on a column; the columns whose combination is unique on a table"
    )


class AcceptedValues(_Rule):
    accepted_values: list[Scalar] = Field(min_length=1)
    column: str | None = Field(default=None, description="implied on a column")


class Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: Bound = None
    max: Bound = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        return self


class Range(_Rule):
    range: Bounds
    column: str | None = Field(default=None, description="implied on a column")


class Regex(_Rule):
    regex: str = Field(
        min_length=1,
        description="an RE2 pattern (DuckDB's) every non-null value must match; the lint "
        "compiles it on DuckDB",
    )
    column: str | None = Field(default=None, description="implied on a column")


class RowCount(_Rule):
    row_count: Bounds


class Freshness(_Rule):
    freshness: str = Field(description="the largest age allowed: 30m, 24h or 7d")
    column: str | None = Field(
        default=None,
        description="a date or timestamp column whose newest value counts; the table's last "
        "commit if unset",
    )

    @model_validator(mode="after")
    def _duration(self) -> Freshness:
        match = _DURATION.match(self.freshness)
        if not match:
            raise ValueError(f"freshness '{self.freshness}' must look like 30m, 24h or 7d")
        if int(match.group(1)) == 0:
            raise ValueError(
                f"freshness '{self.freshness}' allows no age at all: give more than 0 "
                f"(30m, 24h or 7d)"
            )
        return self


class References(_Rule):
    references: Annotated[str, Field(pattern=_TABLE)] = Field(
        description="the table (domain.table) whose keys these columns must match"
    )
    columns: list[str] = Field(default_factory=list, description="implied on a column")
    to: list[str] = Field(
        default_factory=list, description="the referenced columns; the same names if unset"
    )


class CustomSql(_Rule):
    sql: str = Field(min_length=1, max_length=100_000, description="a query of the failing rows")


_RULE_KEYS = {
    "not_null": "NotNull",
    "unique": "Unique",
    "accepted_values": "AcceptedValues",
    "range": "Range",
    "regex": "Regex",
    "row_count": "RowCount",
    "freshness": "Freshness",
    "references": "References",
    "sql": "CustomSql",
}
RULE_KINDS = tuple(_RULE_KEYS)


def _rule_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    kinds = [_RULE_KEYS[key] for key in value if key in _RULE_KEYS]
    return kinds[0] if len(kinds) == 1 else None


def _shorthand(value: Any) -> Any:
    """``not_null`` and ``unique`` written alone on a column mean ``{not_null: true}``."""
    return {value: True} if isinstance(value, str) and value in ("not_null", "unique") else value


_AnyRule = Annotated[
    Annotated[NotNull, Tag("NotNull")]
    | Annotated[Unique, Tag("Unique")]
    | Annotated[AcceptedValues, Tag("AcceptedValues")]
    | Annotated[Range, Tag("Range")]
    | Annotated[Regex, Tag("Regex")]
    | Annotated[RowCount, Tag("RowCount")]
    | Annotated[Freshness, Tag("Freshness")]
    | Annotated[References, Tag("References")]
    | Annotated[CustomSql, Tag("CustomSql")],
    Discriminator(
        _rule_kind,
        custom_error_type="rule_kind",
        custom_error_message="a quality rule needs exactly one of " + ", ".join(_RULE_KEYS),
    ),
]
QualityRule = Annotated[_AnyRule, BeforeValidator(_shorthand)]


def rule_kind(rule: BaseModel) -> str:
    """The kind key of a rule (``not_null``, ``unique``, ...)."""
    names = {model: key for key, model in _RULE_KEYS.items()}
    return names[type(rule).__name__]
