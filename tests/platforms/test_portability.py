"""The exported filters and masks mean on each target what they mean on DuckDB.

Masks are compared by value: meshsim's mask runs on DuckDB, and so does the exported Trino
or Databricks text, read back by sqlglot into DuckDB. That comparison is only sound for
functions that mean the same in both dialects on the inputs used, which holds for the
functions the exported masks use (SUBSTR with a start >= 1, LPAD, LENGTH in characters,
COALESCE, concatenation of non-NULL text, RIGHT and UPPER, DATE_TRUNC of a date); it would
not be for SUBSTR with a start before the string, which is why the texts are checked too.
LIKE is compared with a model of Spark's LIKE (backslash escapes), as DuckDB has none.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
import sqlglot
from sqlglot import exp

from tests.conftest import edit
from tests.platforms.seen import spec_governance

TEXTS = ["", "a", "ab", "abc", "abcd", "abcde", "abcdefgh", "é€x", None]


def _duckdb(expression: str, column: str, values: list) -> list:
    import duckdb

    rows = ", ".join(f"({'NULL' if v is None else exp.Literal.string(v).sql()})" for v in values)
    if values and isinstance(values[0], date):
        rows = ", ".join(f"(DATE '{v}')" if v else "(NULL::DATE)" for v in values)
    sql = f'SELECT {expression} FROM (VALUES {rows}) AS t("{column}")'
    with duckdb.connect() as con:
        return [r[0] for r in con.sql(sql).fetchall()]


def _meshsim(gov, consumer: str, ref: str, column: str) -> str:
    """meshsim's own mask of the column for the consumer, as DuckDB SQL."""
    from meshsim.platforms.governance import compiled_mask

    cell = gov.cell(consumer, ref)
    access = cell.column(column)
    value = exp.column(column, quoted=True)
    return compiled_mask(gov, access.mask, cell, column, value).sql(dialect="duckdb")


def _masked_mesh(mesh_copy, n: int):
    edit(mesh_copy / "mesh.yaml", "      n: 4\n", f"      n: {n}\n")
    edit(
        mesh_copy / "mesh.yaml",
        "  masks:\n",
        "  masks:\n"
        "    - name: comment_tail\n"
        "      consumers: [eu_marketing_analyst]\n"
        "      columns: [customer.customer.c_comment]\n"
        "      function: custom\n"
        "      expression: upper(right({column}, 3))\n"
        "    - name: order_year\n"
        "      consumers: [eu_marketing_analyst]\n"
        "      columns: [sales.orders.o_orderdate]\n"
        "      function: year_only\n",
    )
    return spec_governance(mesh_copy)


CASES = [
    ("customer.customer", "c_phone", TEXTS),
    ("customer.customer", "c_address", TEXTS),
    ("customer.customer", "c_comment", TEXTS),
    ("sales.orders", "o_orderdate", [date(1995, 7, 14), date(2000, 1, 1), None]),
]


@pytest.mark.parametrize("n", [1, 4, 6])
def test_trino_masks_give_meshsims_values_on_short_empty_and_null_input(mesh_copy, n) -> None:
    from meshsim.platforms.trino import trino_rules

    gov = _masked_mesh(mesh_copy, n)
    rules, _ = trino_rules(gov, "retail")
    for ref, column, values in CASES:
        [rule] = [
            r for r in rules["tables"]
            if r.get("user") == "^eu_marketing_analyst$" and r.get("table") == f"^{ref[ref.index('.') + 1:]}$"
        ]  # fmt: skip
        [mask] = [c["mask"] for c in rule["columns"] if c["name"] == column]
        assert not re.search(r"SUBSTR\([^,]+, LENGTH", mask), mask  # no start before the text
        back = sqlglot.transpile(mask, read="trino", write="duckdb")[0]
        expected = _duckdb(_meshsim(gov, "eu_marketing_analyst", ref, column), column, values)
        assert _duckdb(back, column, values) == expected, (column, mask)
    assert _duckdb(_meshsim(gov, "eu_marketing_analyst", *CASES[0][:2]), "c_phone", ["ab"]) == [
        "****" + ("**ab" if n == 4 else "b" if n == 1 else "****ab")
    ]


@pytest.mark.parametrize("n", [1, 4, 6])
def test_unity_masks_give_meshsims_values_on_short_empty_and_null_input(mesh_copy, n) -> None:
    from meshsim.platforms.unity import unity_statements

    gov = _masked_mesh(mesh_copy, n)
    texts, _ = unity_statements(gov)
    functions = {}
    for text in texts:
        tree = sqlglot.parse_one(text, read="databricks")
        if isinstance(tree, exp.Create) and tree.kind == "FUNCTION":
            functions[tree.this.this.name] = tree
    masks = {}
    for text in texts:
        if m := re.fullmatch(r"ALTER TABLE \S+\.`(\w+)` ALTER COLUMN `(.+)` SET MASK (\S+)", text):
            masks[(m.group(1), m.group(2))] = m.group(3).split(".")[-1].strip("`")
    for ref, column, values in CASES:
        function = functions[masks[(ref.split(".")[1], column)]]
        [body] = [
            b.args["true"] for b in function.expression.this.args["ifs"]
            if b.this.expressions[0].name == "eu_marketing_analyst"
        ]  # fmt: skip
        value = exp.column(column, quoted=True)
        body = body.transform(lambda n, v=value: v.copy() if isinstance(n, exp.Column) else n)
        back = sqlglot.transpile(body.sql(dialect="databricks"), read="databricks", write="duckdb")
        expected = _duckdb(_meshsim(gov, "eu_marketing_analyst", ref, column), column, values)
        assert _duckdb(back[0], column, values) == expected, (column, body.sql("databricks"))


def _spark_like(value: str, pattern: str) -> bool:
    """Spark's LIKE: ``_`` and ``%`` wildcards, backslash escapes _, % and itself (any other
    escaped character is an error in Spark: the query fails)."""
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            following = pattern[i + 1 : i + 2]
            if following not in ("_", "%", "\\"):
                raise ValueError(f"Spark refuses the pattern {pattern!r}")
            regex += re.escape(following)
            i += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        i += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _filtered_mesh(mesh_copy, predicate: str):
    edit(
        mesh_copy / "mesh.yaml",
        "  row_filters:\n",
        "  row_filters:\n"
        "    - name: segment_pattern\n"
        "      consumers: [finance_controller]\n"
        "      table: customer.customer\n"
        f"      predicate: >-\n        {predicate}\n",
    )
    return spec_governance(mesh_copy)


SEGMENTS = ["A_x", "AB", "A\\x", "A\\_", "A", "a_x", "A%"]


def test_like_means_on_databricks_what_it_means_on_duckdb(mesh_copy) -> None:
    from meshsim.platforms.unity import unity_statements

    gov = _filtered_mesh(mesh_copy, r"c_mktsegment LIKE 'A\_%' OR c_mktsegment LIKE c_comment")
    texts, _ = unity_statements(gov)
    [function] = [t for t in texts if "`meshsim_row_filter_customer`(" in t]
    tree = sqlglot.parse_one(function, read="databricks")
    [branch] = [
        b.args["true"] for b in tree.expression.this.args["ifs"]
        if b.this.expressions[0].name == "finance_controller"
    ]  # fmt: skip
    literal, computed = [like.expression for like in branch.find_all(exp.Like)]
    duckdb_matches = _duckdb("c_mktsegment LIKE 'A\\_%'", "c_mktsegment", SEGMENTS)
    assert [_spark_like(s, literal.name) for s in SEGMENTS] == duckdb_matches
    # a pattern from a column: its backslashes doubled at query time
    doubled = "REPLACE(`meshsim_row_filter_customer`.`c_comment`, '\\\\', '\\\\\\\\')"
    assert computed.sql(dialect="databricks") == doubled


def test_like_with_a_backslash_is_withheld_from_lake_formation_and_kept_for_trino(
    mesh_copy,
) -> None:
    from meshsim.platforms.lakeformation import lakeformation_plan
    from meshsim.platforms.trino import trino_rules

    gov = _filtered_mesh(mesh_copy, r"c_mktsegment LIKE 'A\_%'")
    plan = lakeformation_plan(gov)
    assert not [f for f in plan.filters if f["Name"] == "meshsim_finance_controller_customer"]
    assert any(
        lim.consumer == "finance_controller" and lim.table == "customer.customer"
        and "LIKE" in lim.cannot and "withheld" in lim.instead
        for lim in plan.limitations
    )  # fmt: skip
    rules, _ = trino_rules(gov, "retail")
    [rule] = [
        r for r in rules["tables"]
        if r.get("user") == "^finance_controller$" and r.get("table") == "^customer$"
    ]  # fmt: skip
    assert rule["filter"] == "\"c_mktsegment\" LIKE 'A\\_%'"  # Trino's LIKE has no escape either


@pytest.mark.parametrize(
    "predicate",
    [
        "regexp_matches(c_mktsegment, '^[[:upper:]]')",
        "regexp_extract(c_mktsegment, '[[:upper:]]') = 'A'",
    ],
)
def test_regular_expressions_are_withheld_from_every_target(mesh_copy, predicate) -> None:
    from meshsim.platforms.lakeformation import lakeformation_plan
    from meshsim.platforms.trino import trino_rules
    from meshsim.platforms.unity import unity_statements

    gov = _filtered_mesh(mesh_copy, predicate)
    rules, trino = trino_rules(gov, "retail")
    assert not [
        r for r in rules["tables"]
        if r.get("user") == "^finance_controller$" and r.get("table") == "^customer$"
    ]  # fmt: skip
    texts, unity = unity_statements(gov)
    [function] = [t for t in texts if "`meshsim_row_filter_customer`(" in t]
    assert "REGEXP" not in function.upper() and "SIMILAR" not in function.upper()
    plan = lakeformation_plan(gov)
    for limitations in (trino, unity, plan.limitations):
        assert any(
            lim.consumer == "finance_controller" and lim.table == "customer.customer"
            and "withheld" in lim.instead
            for lim in limitations
        ), limitations  # fmt: skip
    assert json.dumps(rules)  # still a document


def test_a_trino_mask_that_would_differ_reads_as_null_and_is_listed(mesh_copy) -> None:
    """DuckDB's substring('ab', -3) is 'ab'; Trino's is '': withheld, not half-shown."""
    from meshsim.platforms.trino import trino_rules

    edit(
        mesh_copy / "mesh.yaml",
        "  masks:\n",
        "  masks:\n"
        "    - name: comment_tail\n"
        "      consumers: [eu_marketing_analyst]\n"
        "      columns: [customer.customer.c_comment]\n"
        "      function: custom\n"
        "      expression: substring({column}, -3)\n",
    )
    rules, limitations = trino_rules(spec_governance(mesh_copy), "retail")
    [rule] = [
        r for r in rules["tables"]
        if r.get("user") == "^eu_marketing_analyst$" and r.get("table") == "^customer$"
    ]  # fmt: skip
    assert {"name": "c_comment", "mask": "CAST(NULL AS VARCHAR)"} in rule["columns"]
    assert any(
        lim.policy == "mask 'comment_tail'" and "SUBSTRING" in lim.cannot for lim in limitations
    )
