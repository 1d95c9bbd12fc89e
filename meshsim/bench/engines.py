"""One small adapter per engine the benchmark compares: ``prepare()``, ``run(sql)``, ``close()``.

Every adapter reads the same data: the current Delta snapshot of each mesh table. What each
one does in :meth:`Engine.prepare` is untimed (connect, register tables); :meth:`Engine.run`
is what the harness times, from SQL text to a complete ``pyarrow.Table``.

=====================  =====================================================================
``duckdb``             raw DuckDB: ``read_parquet`` over the snapshot's files (the floor)
``meshsim``            ``Mesh.session(consumer).sql(text).arrow()`` as ``governance_admin``
``meshsim_restricted`` the same as the restricted consumer (row filters and masks)
``duckdb_twin``        raw DuckDB with the restricted consumer's filters and masks by hand
``polars``             ``pl.scan_delta`` tables in a ``pl.SQLContext``
``deltars``            delta-rs's own SQL engine, ``deltalake.QueryBuilder`` (DataFusion)
``duckdb_dataset``     DuckDB over ``DeltaTable.to_pyarrow_dataset()``
``spark``              ``Mesh.session(consumer, engine="spark")``: meshsim's plan on Spark
=====================  =====================================================================

``spark`` is not in :data:`DEFAULT_ENGINES` (``--engines spark`` asks for it): a local Spark
on a shared 2-core machine takes seconds per TPC-H query, which would blow the reference
run's time budget.

The DuckDB-based adapters use meshsim's own connection settings (threads, memory limit,
caches off: :func:`meshsim.engine.connect`), so that ratios against meshsim measure the
governance layer, not a different configuration. Engines that need flat table names get
``sales_lineitem`` for ``sales.lineitem``; the rewrite is done on the syntax tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from meshsim.bench.errors import BenchError
from meshsim.errors import unknown_name_message

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.mesh import Mesh


@dataclass(frozen=True)
class EngineInfo:
    """What the report says about an engine, declared once."""

    name: str
    label: str
    comparison: int  # the comparison number of the issue (1..6)
    consumer: str | None  # the mesh consumer whose view of the data it answers with
    ours: bool  # a failure of ours is a bug; a peer's is "unsupported"


def flat_name(table: exp.Table) -> str:
    return f"{table.db}_{table.name}"


def flatten_tables(sql: str, domains: frozenset[str], *, dialect: str = "duckdb") -> str:
    """``sql`` with every ``domain.table`` reference renamed ``domain_table`` (aliases kept).

    >>> flatten_tables("SELECT count(*) FROM sales.lineitem l1", frozenset({"sales"}))
    'SELECT COUNT(*) FROM sales_lineitem AS l1'
    """
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb")

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.db in domains and not node.catalog:
            renamed = exp.to_table(flat_name(node))
            alias = node.args.get("alias")
            if alias is not None:
                renamed.set("alias", alias.copy())
            return renamed
        return node

    return tree.transform(rename).sql(dialect=dialect)


class Engine:
    """Base adapter. Subclasses set :attr:`info` and implement the three methods."""

    info: EngineInfo

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh

    @property
    def name(self) -> str:
        return self.info.name

    def prepare(self) -> None:
        raise NotImplementedError

    def run(self, sql: str) -> pa.Table:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- shared helpers --------------------------------------------------------------------

    def table_refs(self) -> list[str]:
        return [t.ref for t in self.mesh.spec.tables()]

    def domains(self) -> frozenset[str]:
        return frozenset(ref.split(".")[0] for ref in self.table_refs())


# --- DuckDB over Parquet files ----------------------------------------------------------------


def _duckdb_connection(mesh: Mesh):
    """A DuckDB connection configured like meshsim's engine, able to read the mesh's data."""
    from meshsim import engine

    roots = {str(Path(mesh.locate(ref)).parent) for ref in (t.ref for t in mesh.spec.tables())}
    return engine.connect(sorted(roots))


def _parquet_view(schema: str, name: str, paths: list[str]) -> exp.Create:
    source = exp.select("*").from_(
        exp.Table(
            this=exp.ReadParquet(
                expressions=[exp.Array(expressions=[exp.Literal.string(p) for p in paths])]
            )
        )
    )
    return exp.Create(this=exp.table_(name, db=schema, quoted=True), kind="VIEW", expression=source)


def _create_schemas(con: Any, schemas: set[str]) -> None:
    for schema in sorted(schemas):
        con.execute(
            exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA", exists=True).sql(
                dialect="duckdb"
            )
        )


class RawDuckDB(Engine):
    """``CREATE VIEW sales.lineitem AS SELECT * FROM read_parquet([...files])`` per table,
    the query text run unchanged."""

    info = EngineInfo("duckdb", "raw DuckDB (read_parquet)", 1, "governance_admin", True)

    def prepare(self) -> None:
        self.con = _duckdb_connection(self.mesh)
        refs = self.table_refs()
        _create_schemas(self.con, {r.split(".")[0] for r in refs})
        for ref in refs:
            schema, name = ref.split(".")
            files = [f.path for f in self.mesh.snapshot(ref).files]
            self.con.execute(_parquet_view(schema, name, files).sql(dialect="duckdb"))

    def run(self, sql: str) -> pa.Table:
        cursor = self.con.cursor()
        try:
            return cursor.sql(sql).to_arrow_table()
        finally:
            cursor.close()

    def close(self) -> None:
        self.con.close()


class TwinDuckDB(RawDuckDB):
    """The restricted consumer's filters and masks written by hand: raw tables in schema
    ``raw``, then the governed views of ``twin_<consumer>.sql`` under the mesh names."""

    info = EngineInfo(
        "duckdb_twin", "raw DuckDB, filters and masks by hand", 3, "eu_marketing_analyst", True
    )

    def prepare(self) -> None:
        import sqlglot

        self.con = _duckdb_connection(self.mesh)
        refs = self.table_refs()
        _create_schemas(self.con, {"raw"} | {r.split(".")[0] for r in refs})
        for ref in refs:
            files = [f.path for f in self.mesh.snapshot(ref).files]
            self.con.execute(_parquet_view("raw", ref.replace(".", "_"), files).sql("duckdb"))
        text = (
            resources.files("meshsim.bench").joinpath(f"twin_{self.info.consumer}.sql").read_text()
        )
        key = self.mesh.workspace.mesh_key().hex()
        for statement in sqlglot.parse(text, read="duckdb"):
            if statement is None:
                continue
            bound = exp.replace_placeholders(statement, key=key)
            self.con.execute(bound.sql(dialect="duckdb"))


# --- meshsim ----------------------------------------------------------------------------------


class GovernedMesh(Engine):
    """meshsim itself: a fresh ``Mesh.open`` per :meth:`prepare`, one session, ``.arrow()``."""

    info = EngineInfo("meshsim", "meshsim as governance_admin", 2, "governance_admin", True)

    def prepare(self) -> None:
        from meshsim.mesh import Mesh

        self.governed = Mesh.open(self.mesh.workspace.root, mesh_dir=self.mesh.mesh_dir)
        assert self.info.consumer is not None  # a governed engine runs as a consumer
        # like the raw engines' table registration (DuckDB binds a view when it is created,
        # reading the Parquet metadata): connection, snapshots and the consumer's governed
        # scans, bound once, before timing
        self.governed.warm_up([self.info.consumer])
        self.session = self.governed.session(self.info.consumer)

    def run(self, sql: str) -> pa.Table:
        return self.session.sql(sql).arrow()

    def close(self) -> None:
        self.governed.close()


#: seconds a TPC-H query may take on the benchmark's local Spark
SPARK_TIMEOUT_S = 300.0


class GovernedSpark(GovernedMesh):
    """meshsim's verified plans run on Spark (:mod:`meshsim.engines.spark`); starting the
    session and one governed count (Spark's first query compiles its code paths, seconds on
    this machine) are :meth:`prepare`'s, not timed."""

    info = EngineInfo("spark", "meshsim on Spark as governance_admin", 2, "governance_admin", True)

    def prepare(self) -> None:
        from meshsim.engine import EngineLimits
        from meshsim.mesh import Mesh

        # a local Spark compiles each query's code for seconds (tens on a busy machine): the
        # time limit is the benchmark's, not an analyst's
        self.governed = Mesh.open(
            self.mesh.workspace.root,
            mesh_dir=self.mesh.mesh_dir,
            limits=EngineLimits(timeout_s=SPARK_TIMEOUT_S),
        )
        self.governed.warm_up()
        assert self.info.consumer is not None
        self.session = self.governed.session(self.info.consumer, engine="spark")
        first = exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(self.table_refs()[0]))
        self.session.sql(first.sql(dialect="duckdb"))


class GovernedRestricted(GovernedMesh):
    info = EngineInfo(
        "meshsim_restricted", "meshsim as eu_marketing_analyst", 3, "eu_marketing_analyst", True
    )


# --- peers ------------------------------------------------------------------------------------


class PolarsSQL(Engine):
    """Each table a ``pl.scan_delta`` LazyFrame registered as ``domain_table``."""

    info = EngineInfo("polars", "Polars scan_delta + SQLContext", 4, "governance_admin", False)
    dialect = "postgres"

    def prepare(self) -> None:
        self._run = polars_runner({ref: self.mesh.locate(ref) for ref in self.table_refs()})

    def run(self, sql: str) -> pa.Table:
        return self._run(sql)


def polars_runner(locations: dict[str, str]) -> Callable[[str], pa.Table]:
    """Run a query text on Polars over the Delta tables at ``locations`` (by mesh name)."""
    import polars as pl

    ctx = pl.SQLContext()
    for ref, location in locations.items():
        ctx.register(ref.replace(".", "_"), pl.scan_delta(location))
    domains = frozenset(ref.split(".")[0] for ref in locations)

    def run(sql: str) -> pa.Table:
        text = flatten_tables(sql, domains, dialect=PolarsSQL.dialect)
        return ctx.execute(text, eager=False).collect().to_arrow()

    return run


class DeltaRsSQL(Engine):
    """Each table a ``DeltaTable`` registered in one ``deltalake.QueryBuilder``."""

    info = EngineInfo("deltars", "delta-rs QueryBuilder (DataFusion)", 5, "governance_admin", False)
    dialect = "postgres"

    def prepare(self) -> None:
        from deltalake import DeltaTable, QueryBuilder

        self.qb = QueryBuilder()
        for ref in self.table_refs():
            self.qb.register(ref.replace(".", "_"), DeltaTable(self.mesh.locate(ref)))
        self._domains = self.domains()

    def run(self, sql: str) -> pa.Table:
        import pyarrow as pa

        text = flatten_tables(sql, self._domains, dialect=self.dialect)
        return pa.table(self.qb.execute(text))


class DuckDBDataset(Engine):
    """DuckDB scanning ``DeltaTable(...).to_pyarrow_dataset()`` objects by name."""

    info = EngineInfo(
        "duckdb_dataset", "DuckDB over to_pyarrow_dataset()", 6, "governance_admin", False
    )

    def prepare(self) -> None:
        import duckdb
        from deltalake import DeltaTable

        from meshsim.engine import EngineLimits

        limits = EngineLimits()
        self.con = duckdb.connect(
            ":memory:", config={"threads": limits.threads, "memory_limit": limits.memory_limit}
        )
        for ref in self.table_refs():
            dataset = DeltaTable(self.mesh.locate(ref)).to_pyarrow_dataset()
            self.con.register(ref.replace(".", "_"), dataset)
        self._domains = self.domains()

    def run(self, sql: str) -> pa.Table:
        # Registered Python objects belong to this connection; a cursor would not see them.
        text = flatten_tables(sql, self._domains, dialect="duckdb")
        return self.con.sql(text).to_arrow_table()

    def close(self) -> None:
        self.con.close()


#: Every engine by name, in report order.
ENGINES: dict[str, Callable[[Mesh], Engine]] = {
    cls.info.name: cls
    for cls in (
        RawDuckDB,
        GovernedMesh,
        TwinDuckDB,
        GovernedRestricted,
        PolarsSQL,
        DeltaRsSQL,
        DuckDBDataset,
        GovernedSpark,
    )
}
#: What runs without ``--engines``: all but Spark (see the module docstring).
DEFAULT_ENGINES = tuple(name for name in ENGINES if name != "spark")
#: Engines that answer as governance_admin and run all 22 queries, compared with ``duckdb``.
FULL_ACCESS = ("duckdb", "meshsim", "polars", "deltars", "duckdb_dataset", "spark")
#: Engines of comparison 3, which run the restricted set and are compared with each other.
RESTRICTED = ("duckdb_twin", "meshsim_restricted")


def engine_info(name: str) -> EngineInfo:
    return ENGINES[name].info  # type: ignore[attr-defined]


def check_engines(names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name not in ENGINES:
            raise BenchError(
                unknown_name_message("engine", name, list(ENGINES)),
                hint=f"pass --engines with some of: {', '.join(ENGINES)}",
            )
        out.append(name)
    return out
