"""Mutated SQL through the Python API, as every consumer of the example mesh.

Seeds are real queries over the example mesh (the TPC-H queries and short ones); mutations cut,
repeat and splice them and insert hostile fragments (path-like names, file functions, deep
nesting, long predicate chains, quotes, NUL, unpaired surrogates, other scripts).

Property: ``session.sql(text)`` returns a result or raises a :class:`MeshsimError` with a
message; each attempt ends within its bound; and each attempt adds exactly one audit record,
for that consumer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from meshsim.errors import MeshsimError
from tests.fuzz.conftest import bounded, fuzz_settings
from tests.fuzz.known import known_issue

SHORT = [
    "SELECT 1",
    "SELECT count(*) FROM customer.customer",
    "SELECT c_name, c_phone, c_acctbal FROM customer.customer WHERE c_nationkey = 3 LIMIT 5",
    "SELECT o_orderkey, o_totalprice FROM sales.orders ORDER BY o_totalprice DESC LIMIT 3",
    "SELECT n_name, count(*) FROM customer.customer JOIN customer.nation ON c_nationkey = "
    "n_nationkey GROUP BY n_name",
    "SELECT p_name FROM supply.part WHERE p_size > 10 UNION ALL SELECT s_name FROM supply.supplier",
    "WITH t AS (SELECT * FROM sales.lineitem) SELECT sum(l_quantity) FROM t",
    "SELECT * FROM sales.orders AT (VERSION => 0) LIMIT 1",
    "SELECT id, decision FROM meshsim.audit ORDER BY id DESC LIMIT 3",
    "SELECT c_custkey FROM customer.customer EXCEPT SELECT o_custkey FROM sales.orders",
]

FRAGMENTS = [
    "'",
    '"',
    "(",
    ")",
    ";",
    "--",
    "/*",
    "\x00",
    "\ud800",
    "\udcff",
    "名前",
    "\u202e",
    " AT (VERSION => 99999999999999999999) ",
    " AT (TIMESTAMP => TIMESTAMP '9999-12-31 00:00:00') ",
    " read_parquet('accounts/*/*/*.parquet') ",
    " 'accounts/customer/customer' ",
    ' WITH RECURSIVE "accounts/customer" AS (SELECT 1) ',
    " glob('*') ",
    " ATTACH 'x.db' ",
    " COPY customer.customer TO 'out.csv' ",
    " PRAGMA version ",
    " meshsim.audit ",
    " customer.customer ",
    " c_acctbal ",
    " s_acctbal ",
    " 1/0 ",
    " CAST('x' AS INTEGER) ",
    " 99999999999999999999999999999999999999 ",
    " $1 ",
    " ? ",
    " " + "(" * 40 + "1" + ")" * 40 + " ",
    " " + " AND ".join(["1 = 1"] * 300) + " ",
    " " + " OR ".join([f"c_custkey = {i}" for i in range(200)]) + " ",
]


def _seeds() -> list[str]:
    from meshsim.bench import queries

    tpch = [q.sql for q in queries.tpch(None)]
    return SHORT + tpch


SEEDS = _seeds()


@st.composite
def mutated_sql(draw) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["cut", "insert", "repeat", "splice", "case", "truncate"]))
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        if kind == "cut":
            text = text[:start] + text[end:]
        elif kind == "insert":
            text = text[:start] + draw(st.sampled_from(FRAGMENTS)) + text[start:]
        elif kind == "repeat":
            text = text[:end] + text[start:end] * draw(st.integers(1, 5)) + text[end:]
        elif kind == "splice":
            other = draw(st.sampled_from(SEEDS))
            text = text[:start] + other[draw(st.integers(0, len(other))) :]
        elif kind == "case":
            text = text[:start] + text[start:end].swapcase() + text[end:]
        else:
            text = text[:start]
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.text(max_size=60)) + text
    return text


@pytest.fixture(scope="module")
def fuzz_mesh(fuzz_workspace: Path):
    from meshsim.engine import EngineLimits
    from meshsim.mesh import Mesh

    with Mesh.open(fuzz_workspace, limits=EngineLimits(timeout_s=5.0)) as mesh:
        yield mesh


def newest_audit_id(mesh) -> int:
    records = mesh.audit(as_consumer="governance_admin", limit=1)
    return records[0]["id"] if records else 0


def consumers(mesh) -> list[str]:
    return [c.name for c in mesh.spec.mesh.consumers]


@fuzz_settings(1000)
@given(data=st.data())
def test_mutated_sql_as_every_consumer(fuzz_mesh, data) -> None:
    consumer = data.draw(st.sampled_from(consumers(fuzz_mesh)), label="consumer")
    text = data.draw(mutated_sql(), label="sql")
    before = newest_audit_id(fuzz_mesh)
    with bounded(15, f"query {text[:200]!r}"):
        try:
            result = fuzz_mesh.session(consumer).sql(text)
        except MeshsimError as exc:
            assert exc.message.strip(), f"{type(exc).__name__} without a message"
            event(f"refused or failed: {type(exc).__name__}")
        except Exception as exc:
            issue = known_issue(exc, text)
            if issue is None:
                raise
            event(f"known issue: {issue.name}")
        else:
            event("allowed")
            assert result.num_rows >= 0
    records = fuzz_mesh.audit(as_consumer="governance_admin", limit=2)
    added = [r for r in records if r["id"] > before]
    assert len(added) == 1, f"{len(added)} audit records for one attempt"
    assert added[0]["consumer"] == consumer and added[0]["kind"] == "query"


def test_lone_surrogate_in_python_sql_is_a_query_error_and_audited(fuzz_mesh) -> None:
    """Issue 9: a lone surrogate in SQL from Python raised UnicodeEncodeError, unaudited."""
    from meshsim.errors import QueryError

    before = newest_audit_id(fuzz_mesh)
    with pytest.raises(QueryError, match="surrogate"):
        fuzz_mesh.session("eu_marketing_analyst").sql("SELECT '\ud800'")
    (record,) = [
        r for r in fuzz_mesh.audit(as_consumer="governance_admin", limit=2) if r["id"] > before
    ]
    assert record["decision"] == "refused" and record["consumer"] == "eu_marketing_analyst"
