"""Pydantic models of the mesh spec files: ``mesh.yaml``, ``<domain>/domain.yaml`` and
``<domain>/products/<product>.yaml``.

Every model rejects unknown keys and is frozen. Cross-file rules (undefined consumers, unknown
columns in policies, unprotected PII...) live in :mod:`meshsim.spec.lint`, not here, so that
a user sees every problem of a layout at once.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from meshsim.spec.quality import QualityRule
from meshsim.spec.types import normalize_type

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
TableRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
ProductRef = TableRef
#: Longest column name meshsim accepts (Delta sets no limit; this keeps messages readable).
MAX_COLUMN_NAME = 255
#: Names meshsim gives its own columns and relations in governed SQL (``__meshsim_visible``).
RESERVED_PREFIX = "__meshsim"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_column_name(name: str) -> str:
    """A Delta column name: any text, non-empty, without control characters (Delta's own
    rule for tables with column mapping; names with spaces, dots, quotes or capitals are
    real and allowed). Raises ValueError naming the problem."""
    if not name:
        raise ValueError("a column name may not be empty")
    if len(name) > MAX_COLUMN_NAME:
        raise ValueError(
            f"column name '{name[:40]}...' is longer than {MAX_COLUMN_NAME} characters"
        )
    if name.lower().startswith(RESERVED_PREFIX):
        raise ValueError(
            f"column name '{name}' starts with '{RESERVED_PREFIX}', which meshsim reserves for "
            f"the names of its governed scans"
        )
    bad = _CONTROL.search(name)
    if bad:
        raise ValueError(f"column name {name!r} contains the control character {bad.group(0)!r}")
    return name


ColumnName = Annotated[
    str,
    AfterValidator(check_column_name),
    Field(description="any Delta column name: non-empty, no control characters"),
]


def split_column_ref(ref: str) -> tuple[str, str]:
    """``(domain.table, column)`` of a column reference. Domain and table names have no dots,
    so the column is everything after the second dot, exactly as written (case, spaces and
    dots included); one written in double quotes is a SQL quoted identifier (``""`` for a
    quote), for names that start with a quote or have spaces at either end.

    >>> split_column_ref("sales.events.Super Name")
    ('sales.events', 'Super Name')
    >>> split_column_ref('sales.events."a.b ""x"" "')
    ('sales.events', 'a.b "x" ')
    """
    parts = ref.split(".", 2)
    if (
        len(parts) != 3
        or not re.fullmatch(NAME_PATTERN, parts[0])
        or not re.fullmatch(NAME_PATTERN, parts[1])
    ):
        raise ValueError(
            f"'{ref}' is not a column reference: write domain.table.column (the column name "
            f"exactly, or in double quotes)"
        )
    column = parts[2]
    if len(column) >= 2 and column.startswith('"') and column.endswith('"'):
        inner = column[1:-1]
        if re.search(r'(?<!")"(?!")', inner.replace('""', "")):
            raise ValueError(f"'{ref}': a quote inside a quoted column name is written \"\"")
        column = inner.replace('""', '"')
    return f"{parts[0]}.{parts[1]}", check_column_name(column)


def column_ref(table_ref: str, column: str) -> str:
    """The canonical reference to ``column`` of ``table_ref``: the name as it is, or quoted
    where reading it back would otherwise change it.

    >>> column_ref("sales.events", "Super Name"), column_ref("sales.events", " padded")
    ('sales.events.Super Name', 'sales.events." padded"')
    """
    quoted = column != column.strip() or (column.startswith('"') and column.endswith('"'))
    return f"{table_ref}." + ('"' + column.replace('"', '""') + '"' if quoted else column)


def _column_ref(ref: str) -> str:
    return column_ref(*split_column_ref(ref))


#: ``domain.table.column``, stored unquoted (see :func:`split_column_ref`).
ColumnRef = Annotated[
    str,
    AfterValidator(_column_ref),
    Field(
        description="domain.table.column: the column name exactly after the second dot, or "
        'double-quoted ("Super Name")'
    ),
]
#: An operating-system user name (or a numeric uid, for a uid with no passwd entry).
OsUser = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*[$]?$", max_length=64)]
OsUsers = Annotated[list[OsUser], Field(min_length=1)]

_DURATION = re.compile(r"^(\d+)\s*(m|h|d)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- mesh.yaml ---------------------------------------------------------------------------


class TagKey(Strict):
    description: str = ""
    values: list[Name] = Field(min_length=1)


class Consumer(Strict):
    name: Name
    description: str = ""
    attributes: dict[Name, str] = Field(default_factory=dict)
    admin: bool = Field(
        default=False,
        description="A governance admin may query the audit log and decide any request. "
        "Data access still comes only from policies.",
    )
    os_users: OsUsers | None = Field(
        default=None,
        description="The operating-system users who may act as this consumer (--as, --by, "
        "Mesh.session); without it, anyone running meshsim may.",
    )


class ConsumerSelector(Strict):
    """Which consumers a policy applies to: names (``*`` for all), minus ``except``, and an
    optional attribute condition such as ``consumer.clearance = 'sensitive'``."""

    consumers: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    except_: list[Name] = Field(default_factory=list, alias="except")
    when: str | None = Field(
        default=None,
        description="SQL boolean over consumer attributes, e.g. consumer.region = 'EUROPE'",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Grant(ConsumerSelector):
    """Read access to a whole product, some tables, or some columns of one table."""

    name: Name | None = None
    all: bool = False
    product: ProductRef | None = None
    tables: list[TableRef] = Field(default_factory=list)
    columns: list[ColumnRef] = Field(default_factory=list)
    exclude_columns: list[ColumnRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_scope(self) -> Grant:
        scopes = [self.all, self.product is not None, bool(self.tables), bool(self.columns)]
        if sum(scopes) != 1:
            raise ValueError("a grant needs exactly one of 'all', 'product', 'tables', 'columns'")
        return self


class TagGrant(ConsumerSelector):
    """Lake Formation style: access to every table and column whose tags satisfy
    ``expression`` (``key=value`` terms joined by AND, values of one key joined by OR with
    ``key IN (a, b)``)."""

    name: Name | None = None
    expression: str = Field(min_length=3)


MaskFunction = Literal["redact", "nullify", "keyed_hash", "show_last", "year_only", "custom"]


class Mask(ConsumerSelector):
    """Replace a column's values at the scan. The first mask (in file order) that matches a
    consumer and a column wins."""

    name: Name
    function: MaskFunction
    columns: list[ColumnRef] = Field(default_factory=list)
    classification: Name | None = None
    tags: dict[Name, Name] = Field(default_factory=dict)
    n: int | None = Field(default=None, ge=1, le=64, description="digits kept by show_last")
    expression: str | None = Field(
        default=None, description="custom mask: SQL over the column ({column}) and consumer.*"
    )

    @model_validator(mode="after")
    def _check(self) -> Mask:
        if not (self.columns or self.classification or self.tags):
            raise ValueError("a mask needs 'columns', 'classification' or 'tags' to select columns")
        if self.function == "show_last" and self.n is None:
            raise ValueError("mask function 'show_last' needs 'n' (how many characters to keep)")
        if self.function == "custom" and not self.expression:
            raise ValueError("mask function 'custom' needs 'expression'")
        if self.function != "custom" and self.expression:
            raise ValueError("'expression' is only for mask function 'custom'")
        return self


class RowFilter(ConsumerSelector):
    """Rows of ``table`` a consumer sees: a SQL predicate over the table's columns and
    ``consumer.<attribute>``; it may look up other mesh tables (with the policy's rights)."""

    name: Name
    table: TableRef
    predicate: str = Field(min_length=1)


#: Any one policy of mesh.yaml (they share consumer selection; their other fields differ)
Policy = Grant | TagGrant | Mask | RowFilter


class Policies(Strict):
    grants: list[Grant] = Field(default_factory=list)
    tag_grants: list[TagGrant] = Field(default_factory=list)
    masks: list[Mask] = Field(default_factory=list)
    row_filters: list[RowFilter] = Field(default_factory=list)


class MeshFile(Strict):
    """``mesh.yaml``: the mesh, its tag taxonomy, consumers and governance policies."""

    name: Name
    description: str = ""
    tags: dict[Name, TagKey] = Field(default_factory=dict)
    classifications: list[Name] = Field(
        default_factory=lambda: ["public", "internal", "pii", "sensitive"]
    )
    consumers: list[Consumer] = Field(default_factory=list)
    policies: Policies = Field(default_factory=Policies)


# --- domain.yaml and products --------------------------------------------------------------


class UnmaskedWaiver(Strict):
    """An explicit, justified exception to the rule that PII is masked for non-admins: the
    named consumers may read the column's raw values (``meshsim validate`` checks the names
    and reports a waiver that waives nothing)."""

    consumers: list[Name] = Field(min_length=1)
    reason: str = Field(min_length=1, description="why these consumers need the raw values")


class Column(Strict):
    name: ColumnName
    type: str
    description: str = ""
    tags: dict[Name, Name] = Field(default_factory=dict)
    classification: Name | None = None
    nullable: bool = True
    quality: list[QualityRule] = Field(
        default_factory=list, description="quality rules of this column (meshsim.spec.quality)"
    )
    allow_unmasked: UnmaskedWaiver | None = Field(
        default=None, description="consumers that may read this PII column unmasked, and why"
    )

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return normalize_type(value)


class TpchSource(Strict):
    """Generate the table with tpchgen-cli (deterministic for a scale factor)."""

    tpch: Literal[
        "customer", "nation", "region", "orders", "lineitem", "part", "supplier", "partsupp"
    ]


class LocationSource(Strict):
    """An existing Delta table that another tool wrote; read in place, never copied. Without
    declared columns, its columns are the Delta schema's (see :mod:`meshsim.sources.registered`)."""

    location: str = Field(min_length=1)


_FILES = "a file, a folder (every file in it) or a glob, absolute or relative to the mesh folder"


class CsvSource(Strict):
    """CSV files loaded into the domain's own Delta table at build, read by DuckDB's
    ``read_csv`` with these of its options (the declared column types are passed as ``types``)."""

    csv: str = Field(min_length=1, description=_FILES)
    header: bool | None = None
    delim: str | None = Field(default=None, min_length=1, max_length=4)
    quote: str | None = Field(default=None, max_length=1)
    escape: str | None = Field(default=None, max_length=1)
    nullstr: str | None = None
    skip: int | None = Field(
        default=None, ge=0, description="rows before the header (0 unless set: never detected)"
    )
    comment: str | None = Field(default=None, max_length=1)
    dateformat: str | None = Field(default=None, min_length=1)
    timestampformat: str | None = Field(default=None, min_length=1)
    decimal_separator: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: Literal["utf-8", "utf-16", "latin-1"] | None = None
    compression: Literal["auto", "none", "gzip", "zstd"] | None = None
    normalize_names: bool | None = Field(
        default=None, description="header names as identifiers: 'Order ID' -> order_id"
    )
    names: list[Name] | None = Field(
        default=None, min_length=1, description="column names, for a file without a header"
    )


class ParquetSource(Strict):
    """Parquet files loaded into the domain's own Delta table at build (DuckDB's
    ``read_parquet``); declared types must hold the file's values without loss."""

    parquet: str = Field(min_length=1, description=_FILES)
    union_by_name: bool | None = None
    hive_partitioning: bool | None = None


class JsonSource(Strict):
    """JSON files (an array, or newline-delimited) loaded into the domain's own Delta table
    at build, read by DuckDB's ``read_json`` (the declared columns are passed as ``columns``)."""

    json_: str = Field(min_length=1, alias="json", description=_FILES)
    format: Literal["auto", "newline_delimited", "array", "unstructured"] | None = None
    dateformat: str | None = Field(default=None, min_length=1)
    timestampformat: str | None = Field(default=None, min_length=1)
    compression: Literal["auto", "none", "gzip", "zstd"] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SqlSource(Strict):
    """A derived product: a query over other mesh tables, run at build through governed SQL
    as the consumer named after the owning domain, materialised in the domain's account."""

    sql: str = Field(min_length=1, max_length=100_000)


#: The sources that load files (see :mod:`meshsim.sources.files`)
FileSource = CsvSource | ParquetSource | JsonSource

_SOURCE_KEYS = {
    "tpch": "TpchSource",
    "location": "LocationSource",
    "csv": "CsvSource",
    "parquet": "ParquetSource",
    "json": "JsonSource",
    "json_": "JsonSource",  # the field's name: a schema the catalog stored (model_dump) reads back
    "sql": "SqlSource",
}


def _source_kind(value: Any) -> str | None:
    """The source model a mapping is for, by its one kind key (so that an error names the
    keys of that kind, not of every kind)."""
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    kinds = [_SOURCE_KEYS[key] for key in value if key in _SOURCE_KEYS]
    return kinds[0] if len(kinds) == 1 else None


Source = Annotated[
    Annotated[TpchSource, Tag("TpchSource")]
    | Annotated[LocationSource, Tag("LocationSource")]
    | Annotated[CsvSource, Tag("CsvSource")]
    | Annotated[ParquetSource, Tag("ParquetSource")]
    | Annotated[JsonSource, Tag("JsonSource")]
    | Annotated[SqlSource, Tag("SqlSource")],
    Discriminator(
        _source_kind,
        custom_error_type="source_kind",
        custom_error_message="a source needs exactly one of " + ", ".join(_SOURCE_KEYS),
    ),
]


class Table(Strict):
    name: Name
    description: str = ""
    columns: list[Column] = Field(default_factory=list)
    partition_by: list[ColumnName] = Field(default_factory=list)
    primary_key: list[ColumnName] = Field(default_factory=list)
    sort_by: list[ColumnName] = Field(
        default_factory=list,
        description="columns the rows are written in order of (the primary key breaks ties), "
        "so that readers skip the Parquet row groups a range filter on them excludes",
    )
    tags: dict[Name, Name] = Field(default_factory=dict)
    source: Source | None = None
    column_mapping: bool = Field(
        default=False, description="write with Delta column mapping (physical names differ)"
    )
    quality: list[QualityRule] = Field(
        default_factory=list, description="quality rules of this table (meshsim.spec.quality)"
    )

    @model_validator(mode="after")
    def _names_differ_by_more_than_case(self) -> Table:
        seen: dict[str, str] = {}
        for column in self.columns:
            other = seen.setdefault(column.name.lower(), column.name)
            if other != column.name:
                raise ValueError(
                    f"columns '{other}' and '{column.name}' differ only by case; SQL names are "
                    f"case-insensitive, so a query could not tell them apart: rename one"
                )
        return self


class Production(Strict):
    method: Literal["generated", "external", "pipeline", "manual"] = "generated"
    schedule: str | None = None
    description: str = ""


class Product(Strict):
    name: Name
    description: str = ""
    owner: str | None = None
    owner_os_users: OsUsers | None = Field(
        default=None,
        description="The operating-system users who may decide requests as 'owner' (--by).",
    )
    tags: dict[Name, Name] = Field(default_factory=dict)
    version: str = Field(
        default="1.0.0",
        pattern=r"^\d+\.\d+\.\d+$",
        description="the product's contract version (major.minor.patch); a breaking change "
        "needs a new major version",
    )
    freshness_sla: str | None = Field(default=None, description="e.g. 24h, 30m, 7d")
    production: Production = Field(default_factory=Production)
    tables: list[Table] = Field(min_length=1)

    @model_validator(mode="after")
    def _owner_bound(self) -> Product:
        if self.owner_os_users and not self.owner:
            raise ValueError("'owner_os_users' binds the product's owner: set 'owner' too")
        return self

    @field_validator("freshness_sla")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION.match(value):
            raise ValueError(f"freshness_sla '{value}' must look like 30m, 24h or 7d")
        return value

    @property
    def freshness(self) -> timedelta | None:
        if self.freshness_sla is None:
            return None
        m = _DURATION.match(self.freshness_sla)
        assert m is not None
        amount, unit = int(m.group(1)), m.group(2)
        return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount)}.get(
            unit, timedelta(days=amount)
        )


class DomainFile(Strict):
    """``<domain>/domain.yaml``."""

    name: Name
    owner_team: str | None = None
    owner_os_users: OsUsers | None = Field(
        default=None,
        description="The operating-system users who may decide requests as 'owner_team' (--by).",
    )
    description: str = ""
    contact: str | None = None

    @model_validator(mode="after")
    def _owner_bound(self) -> DomainFile:
        if self.owner_os_users and not self.owner_team:
            raise ValueError("'owner_os_users' binds the domain's owner team: set 'owner_team' too")
        return self
