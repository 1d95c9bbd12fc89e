"""Row filters as syntax trees, bound to storage with the policy's rights.

A predicate is parsed, checked with the consumer-query allowlist, and every
``consumer.<attr>`` is replaced by a string literal (NULL when the consumer lacks it), never
spliced as text. It is qualified inside ``SELECT 1 FROM <table> AS __meshsim_raw WHERE <p>``
so its bare columns point at the governed scan's raw relation, and every mesh table it looks
up (``customer.nation``...) is replaced by a RAW scan of storage: unfiltered and unmasked,
because the policy (not the consumer) reads it. Since those lookups are bound to files, a
consumer CTE named like a table cannot capture them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from meshsim.errors import PolicyError, QueryError
from meshsim.query.masks import bind_consumer
from meshsim.query.names import mesh_schema, restore_case
from meshsim.query.validate import check_syntax
from meshsim.spec.loader import MeshSpec
from meshsim.spec.models import RowFilter

RAW_ALIAS = "__meshsim_raw"

#: ``raw_scan(ref) -> SELECT`` over the latest snapshot of a mesh table, all columns.
RawScan = Callable[[str], exp.Select]


def _reads(table_ref: str, predicate: exp.Expr) -> list[str]:
    """The filter's table and every ``domain.table`` its predicate names."""
    named = {f"{t.db}.{t.name}".lower() for t in predicate.find_all(exp.Table) if t.db}
    return [table_ref, *sorted(named - {table_ref})]


def compile_filter(
    row_filter: RowFilter,
    spec: MeshSpec,
    attributes: Mapping[str, str],
    raw_scan: RawScan,
) -> exp.Expr:
    """The predicate of ``row_filter`` over ``"__meshsim_raw"``, with lookups bound to files."""
    from meshsim.policy.fragments import parse_fragment

    name = f"row filter '{row_filter.name}'"
    predicate = parse_fragment(row_filter.predicate, what=f"{name}: predicate")
    try:
        check_syntax(predicate, what=name)
    except QueryError as exc:
        raise PolicyError(exc.message) from None
    predicate = bind_consumer(predicate, attributes)
    domain, table = row_filter.table.split(".")
    wrapper = (
        exp.select(exp.Literal.number(1))
        .from_(exp.table_(table, db=domain, alias=RAW_ALIAS))
        .where(predicate)
    )
    try:
        wrapper = qualify(
            wrapper,
            dialect="duckdb",
            schema=mesh_schema(spec, _reads(row_filter.table, predicate)),
            validate_qualify_columns=True,
            quote_identifiers=True,
        )
    except OptimizeError as exc:
        # sqlglot's position points into the wrapper built here, not into the policy text
        detail = re.sub(r"\.?\s*Line: \d+, Col: \d+\.?", "", str(exc)).strip()
        raise PolicyError(f"{name}: {detail}") from None
    restore_case(wrapper, spec)
    own = wrapper.args["from_"].this if "from_" in wrapper.args else wrapper.args["from"].this
    for scope in traverse_scope(wrapper):
        for source in list(scope.sources.values()):
            if not isinstance(source, exp.Table) or source is own:
                continue
            if isinstance(source.this, exp.Func) or source.catalog or not source.db:
                raise PolicyError(f"{name}: may only look up mesh tables as domain.table")
            ref = f"{source.db}.{source.name}"
            if spec.table(ref) is None:
                raise PolicyError(f"{name}: unknown table '{ref}'")
            alias = source.alias_or_name
            source.replace(
                exp.Subquery(
                    this=raw_scan(ref),
                    alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
                )
            )
    where = wrapper.args["where"].this
    return where
