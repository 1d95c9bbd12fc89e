"""Run a product's rules on DuckDB over exact Delta snapshots.

Each table is read at the version the caller names (:class:`Reader`): the published one for
``meshsim check``, the candidate one a build or a write is about to publish. A rule on the
domain's own tables reads them directly, as their owner (all rows, unmasked). Custom SQL and a
reference to another domain's table read through the governed layer as the consumer named
after the owning domain, with the policies of ``mesh.yaml`` (as a derived product is built,
:mod:`meshsim.sources.derived`): the keys a domain may not read count as missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError
from meshsim.quality import compile as rules_sql
from meshsim.quality.bound import BoundRule, bound_rules, governed
from meshsim.quality.results import CheckRun, RuleResult, Trigger
from meshsim.spec.quality import CustomSql, Freshness, References, RowCount, Unique

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from meshsim.query.session import GovernedEngine
    from meshsim.spec.loader import MeshSpec, ProductSpec, TableSpec
    from meshsim.storage.snapshot import Snapshot

SAMPLE_LIMIT = 5
_DURATION = re.compile(r"^(\d+)\s*(m|h|d)$")


@dataclass
class Reader:
    """Where the rules read tables: their locations, the version each is checked at (None:
    not built), and a governed engine reading the same versions (``open_engine``, called on
    first use; :meth:`close` closes it)."""

    spec: MeshSpec
    locate: Callable[[str], str]
    version: Callable[[str], int | None]
    open_engine: Callable[[], GovernedEngine]
    allowed_paths: Sequence[str]
    _snapshots: dict[tuple[str, int], Snapshot] = field(default_factory=dict)
    _engine: GovernedEngine | None = None

    def governed(self) -> GovernedEngine:
        if self._engine is None:
            self._engine = self.open_engine()
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def snapshot(self, ref: str, version: int) -> Snapshot:
        from meshsim.storage.snapshot import load_snapshot

        key = (ref, version)
        if key not in self._snapshots:
            self._snapshots[key] = load_snapshot(self.locate(ref), table=ref, version=version)
        return self._snapshots[key]


def duration(text: str) -> timedelta:
    """``30m``, ``24h`` or ``7d`` as a timedelta (checked by the spec model)."""
    match = _DURATION.match(text)
    assert match is not None
    amount, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount)}.get(
        unit, timedelta(days=amount)
    )


def run_checks(
    reader: Reader,
    products: Sequence[ProductSpec],
    *,
    trigger: Trigger,
    now: datetime | None = None,
    include: Callable[[BoundRule], bool] | None = None,
) -> CheckRun:
    """Every rule of ``products`` (those ``include`` keeps) at the reader's versions; samples
    are raw (the owner's view): :mod:`meshsim.quality.samples` hides what a viewer may not
    see."""
    from meshsim import engine

    started = now or datetime.now(UTC)
    con = engine.connect(list(reader.allowed_paths))
    results: list[RuleResult] = []
    try:
        for product in products:
            for index, table in enumerate(product.product.tables):
                spec_table = reader.spec.table(f"{product.domain}.{table.name}")
                assert spec_table is not None
                for rule in bound_rules(spec_table, index):
                    if include is not None and not include(rule):
                        continue
                    run = _RuleRun(reader, con, product.ref, spec_table, rule, started)
                    results.append(run.result())
    finally:
        con.close()
    return CheckRun(
        trigger=trigger,
        started_at=started,
        products=[p.ref for p in products],
        results=results,
    )


class _RuleRun:
    """One rule on one table version."""

    def __init__(
        self,
        reader: Reader,
        con: Any,
        product: str,
        table: TableSpec,
        rule: BoundRule,
        now: datetime,
    ) -> None:
        self.reader = reader
        self.con = con
        self.product = product
        self.table = table
        self.rule = rule
        self.now = now

    def _result(self, version: int, status: str, **found: Any) -> RuleResult:
        return RuleResult(
            product=self.product,
            table=self.table.ref,
            rule=self.rule.name,
            kind=self.rule.kind,
            severity=self.rule.severity,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            version=version,
            checked_at=self.now,
            **found,
        )

    def result(self) -> RuleResult:
        version = self.reader.version(self.table.ref)
        if version is None:
            return self._result(-1, "error", message=f"table '{self.table.ref}' is not built")
        try:
            if isinstance(self.rule.rule, RowCount | Freshness):
                return self._measured(version)
            return self._rows(version)
        except (MeshsimError, ValueError) as exc:
            message = exc.message if isinstance(exc, MeshsimError) else str(exc)
            return self._result(version, "error", message=f"could not run: {message}")

    # -- reading ----------------------------------------------------------------------------

    def _scan(self, ref: str, version: int) -> exp.Select:
        from meshsim.storage.scan import scan_query

        return scan_query(self.reader.snapshot(ref, version))

    def _local(self, query: exp.Query, version: int, referenced: exp.Query | None) -> pa.Table:
        from meshsim import engine

        tree = query.with_(rules_sql.CHECKED, as_=self._scan(self.table.ref, version))
        if referenced is not None:
            tree = tree.with_(rules_sql.REFERENCED, as_=referenced)
        return engine.run_arrow(self.con, tree.sql(dialect="duckdb"), timeout_s=None)

    def _governed(self, query: exp.Query) -> pa.Table:
        consumer = self.table.domain
        if self.reader.spec.consumer(consumer) is None:
            raise ValueError(
                f"{self.rule.label} reads through the governed layer as the consumer "
                f"'{consumer}' (named after its domain), which mesh.yaml does not define"
            )
        session = self.reader.governed().session(consumer)
        return session.sql(query.sql(dialect="duckdb")).arrow()

    # -- row rules --------------------------------------------------------------------------

    def _rows(self, version: int) -> RuleResult:
        spec = self.rule.rule
        failing = rules_sql.failing_rows(self.rule)
        if isinstance(spec, CustomSql):
            return self._custom(failing, version)
        referenced = self._referenced() if isinstance(spec, References) else None
        count = self._local(rules_sql.count_of(failing), version, referenced).column(0)[0]
        failing_rows = int(count.as_py())
        if not failing_rows:
            return self._result(version, "passed", failing_rows=0)
        keys = self._sample_keys()
        sampled = rules_sql.samples_of(failing, keys, SAMPLE_LIMIT)
        samples = self._local(sampled, version, referenced)
        return self._result(
            version,
            "failed",
            failing_rows=failing_rows,
            sample_columns=keys,
            samples=_texts(samples),
            message=f"{failing_rows} row(s) break it",
        )

    def _sample_keys(self) -> list[str]:
        """The primary key of the failing rows, else the rule's columns (a unique rule shows
        the repeated combinations)."""
        key = list(self.table.table.primary_key)
        if isinstance(self.rule.rule, Unique) or not key:
            return list(self.rule.columns)
        return key

    def _referenced(self) -> exp.Query:
        """The keys the reference must find: the referenced table at the version this check
        reads it (the candidate one when it is published with the checked table)."""
        from sqlglot import exp

        spec = self.rule.rule
        assert isinstance(spec, References)
        if not governed(self.rule):
            version = self.reader.version(spec.references)
            if version is None:
                raise ValueError(f"the referenced table '{spec.references}' is not built")
            return self._scan(spec.references, version)
        self._check_readable(spec)
        from meshsim import engine

        keys = self._governed(rules_sql.referenced_keys(self.rule))
        engine.load_arrow(self.con, "referenced_keys", keys)
        return exp.select("*").from_(exp.to_table("referenced_keys", quoted=True))

    def _check_readable(self, spec: References) -> None:
        """The domain compares keys it reads in full; a masked key matches nothing."""
        from meshsim.policy.access import resolve_access

        access = resolve_access(self.reader.spec, self.table.domain, spec.references)
        for name in spec.to or self.rule.columns:
            column = access.column(name)
            if column is None or column.state != "full":
                state = "not at all" if column is None or not column.visible else "masked"
                raise ValueError(
                    f"the domain's consumer '{self.table.domain}' reads "
                    f"'{spec.references}.{name}' {state}, so its keys cannot be compared; "
                    f"grant it the column unmasked in mesh.yaml"
                )

    def _custom(self, failing: exp.Query, version: int) -> RuleResult:
        from sqlglot import exp

        count = self._governed(rules_sql.count_of(failing)).column(0)[0]
        failing_rows = int(count.as_py())
        if not failing_rows:
            return self._result(version, "passed", failing_rows=0)
        first = (
            exp.select("*")
            .from_(failing.subquery("failing"))
            .order_by(exp.var("ALL"))
            .limit(SAMPLE_LIMIT)
        )
        samples = self._governed(first)
        key = list(self.table.table.primary_key)
        if key and all(k in samples.column_names for k in key):  # the rows' keys, then
            samples = self._governed(rules_sql.samples_of(failing, key, SAMPLE_LIMIT))
        return self._result(
            version,
            "failed",
            failing_rows=failing_rows,
            sample_columns=list(samples.column_names),
            samples=_texts(samples),
            message=f"the query returns {failing_rows} row(s)",
        )

    # -- measures ---------------------------------------------------------------------------

    def _measured(self, version: int) -> RuleResult:
        spec = self.rule.rule
        if isinstance(spec, RowCount):
            measured = self._local(rules_sql.measure(self.rule), version, None)
            rows = int(measured.column(0)[0].as_py())
            low, high = spec.row_count.min, spec.row_count.max
            broken = (low is not None and rows < float(low)) or (
                high is not None and rows > float(high)
            )
            bounds = f"{'' if low is None else low}..{'' if high is None else high}"
            message = f"{rows} row(s), outside {bounds}" if broken else ""
            status = "failed" if broken else "passed"
            return self._result(version, status, observed=str(rows), message=message)
        assert isinstance(spec, Freshness)
        if self.rule.columns:
            value = self._local(rules_sql.measure(self.rule), version, None).column(0)[0].as_py()
            newest = _instant(value)
            what = f"newest {self.rule.columns[0]}"
        else:
            newest = self.reader.snapshot(self.table.ref, version).timestamp
            what = "last commit"
        if newest is None:
            return self._result(
                version, "failed", message=f"no {what}: the table has no rows to date"
            )
        age = self.now - newest
        allowed = duration(spec.freshness)
        observed = f"{what} {newest.isoformat(timespec='seconds')} ({_age(age)} old)"
        if age > allowed:
            message = f"{what} is {_age(age)} old, more than {spec.freshness}"
            return self._result(version, "failed", observed=observed, message=message)
        return self._result(version, "passed", observed=observed)


def _instant(value: Any) -> datetime | None:
    """A date (its midnight, UTC) or timestamp (UTC when naive) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ValueError(f"freshness needs a date or timestamp, got {type(value).__name__}")


def _age(age: timedelta) -> str:
    seconds = max(int(age.total_seconds()), 0)
    if seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def _texts(rows: pa.Table) -> list[list[str | None]]:
    return [
        [None if value is None else str(value) for value in row.values()]
        for row in rows.to_pylist()
    ]
