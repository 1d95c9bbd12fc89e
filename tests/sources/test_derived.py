"""Derived products (``source: {sql: ...}``): built by the owning domain as its consumer through
governed SQL, rebuilt only when an input table's version changes, refused without a grant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.errors import MeshsimError, SpecError
from meshsim.mesh import Mesh
from tests.conftest import edit
from tests.sources.conftest import add_product, col, errors

QUERY = (
    "SELECT region, count(*) AS orders, min(customer_email) AS sample "
    "FROM shop.orders GROUP BY region"
)
COLUMNS = "\n".join([col("region", "varchar"), col("orders", "bigint"), col("sample", "varchar")])


def _marketing(mesh_dir: Path, *, grant: str = "product: shop.orders") -> None:
    """A consumer for the marketing domain, granted ``grant``, seeing only region US."""
    mesh = mesh_dir / "mesh.yaml"
    edit(
        mesh,
        "    attributes: {region: EU}\n",
        "    attributes: {region: EU}\n  - name: marketing\n    attributes: {region: US}\n",
    )
    edit(
        mesh,
        "  tag_grants:\n",
        f"    - name: marketing_orders\n      consumers: [marketing]\n      {grant}\n"
        "  tag_grants:\n",
    )
    edit(
        mesh,
        "      consumers: [analyst]\n      table: shop.orders",
        "      consumers: [analyst, marketing]\n      table: shop.orders",
    )


def _derived(mesh_dir: Path, name: str = "region_sales", query: str = QUERY) -> Path:
    return add_product(mesh_dir, "marketing", name, json.dumps({"sql": query}), COLUMNS)


def _actions(mesh_dir: Path, ws: Path) -> dict[str, tuple[str, int]]:
    with Mesh.build(mesh_dir, ws) as mesh:
        assert mesh.last_build is not None
        return {t.ref: (t.action, t.version) for t in mesh.last_build.tables}


def test_derived_table_is_built_through_the_owners_governance(mesh_dir: Path, tmp_path: Path):
    _marketing(mesh_dir)
    _derived(mesh_dir)
    assert errors(mesh_dir) == []
    _actions(mesh_dir, tmp_path / "ws")
    with Mesh.open(tmp_path / "ws", mesh_dir=mesh_dir) as mesh:
        rows = mesh.sql("governance_admin", "SELECT * FROM marketing.region_sales").fetchall()
        everything = mesh.sql(
            "governance_admin", "SELECT count(*) FROM shop.orders WHERE region = 'US'"
        ).fetchall()
    # marketing's row filter kept its region only, and its PII mask hashed the e-mail
    assert [(r[0], r[1]) for r in rows] == [("US", everything[0][0])]
    assert "@" not in rows[0][2] and len(rows[0][2]) == 64
    with Mesh.open(tmp_path / "ws", mesh_dir=mesh_dir) as mesh:
        (record,) = mesh.audit(as_consumer="governance_admin", consumer="marketing")
    assert record["sql"] == QUERY and record["decision"] == "allowed"


def test_rebuilt_only_when_an_input_version_changes(mesh_dir: Path, tmp_path: Path):
    _marketing(mesh_dir)
    _derived(mesh_dir)
    ws = tmp_path / "ws"
    assert _actions(mesh_dir, ws)["marketing.region_sales"] == ("written", 0)
    assert _actions(mesh_dir, ws)["marketing.region_sales"] == ("unchanged", 0)
    orders = mesh_dir / "shop" / "data" / "orders.csv"
    orders.write_text(orders.read_text() + "999,new@example.com,US,1.00,2026-11-30\n")
    actions = _actions(mesh_dir, ws)
    assert actions["shop.orders"] == ("written", 1)
    assert actions["marketing.region_sales"] == ("written", 1)
    state = json.loads((ws / "workspace.json").read_text())
    assert state["tables"]["marketing.region_sales"]["stamp"]["inputs"] == {"shop.orders": 1}
    assert _actions(mesh_dir, ws)["marketing.region_sales"] == ("unchanged", 1)


def test_refused_when_the_owner_has_no_grant(mesh_dir: Path, tmp_path: Path):
    _marketing(mesh_dir, grant="tables: [marketing.region_sales]")  # its own table only
    file = _derived(mesh_dir)
    found = errors(mesh_dir)
    assert found == [
        f"{file}:7: error: derived table 'marketing.region_sales' reads 'shop.orders', but its "
        f"domain's consumer 'marketing' has no grant on it; add a grant of 'shop.orders' (or its "
        f"product) to consumer 'marketing' in mesh.yaml"
    ]
    with pytest.raises(SpecError, match="has no grant on it"):
        Mesh.build(mesh_dir, tmp_path / "ws")
    assert not (tmp_path / "ws" / "accounts").exists()


def test_a_column_the_owner_may_not_read_stops_the_build(mesh_dir: Path, tmp_path: Path):
    _marketing(
        mesh_dir,
        grant="product: shop.orders\n      exclude_columns: [shop.orders.customer_email]",
    )
    _derived(mesh_dir)
    assert errors(mesh_dir) == []
    with pytest.raises(MeshsimError) as raised:
        Mesh.build(mesh_dir, tmp_path / "ws")
    message = raised.value.message
    assert message.startswith(
        "derived table 'marketing.region_sales' (built as consumer 'marketing'): "
    )
    assert "customer_email" in message
    assert "grant it to consumer 'marketing' in mesh.yaml" in str(raised.value.hint)


def test_the_owning_domain_needs_a_consumer(mesh_dir: Path):
    file = _derived(mesh_dir)
    (found,) = errors(mesh_dir)
    assert found.startswith(f"{file}:7: error: derived table 'marketing.region_sales' is built by")
    assert "add a consumer named 'marketing'" in found


def test_unknown_input_and_unparsable_query(mesh_dir: Path):
    _marketing(mesh_dir)
    _derived(mesh_dir, "one", "SELECT region FROM shop.order")
    _derived(mesh_dir, "two", "SELECT FROM (")
    _derived(mesh_dir, "three", "SELEC nothing")
    found = errors(mesh_dir)
    assert any("table 'shop.order' is not defined; did you mean 'shop.orders'?" in f for f in found)
    assert any("derived table 'marketing.two': the query does not parse" in f for f in found)
    assert any(
        "derived table 'marketing.three': the query does not parse: it is not a query" in f
        for f in found
    )


def test_derived_tables_build_in_dependency_order(mesh_dir: Path, tmp_path: Path):
    _marketing(mesh_dir, grant="all: true\n      except: []")
    # 'a_top' reads 'z_base', which the spec lists after it
    add_product(
        mesh_dir,
        "marketing",
        "a_top",
        json.dumps({"sql": "SELECT sum(orders) AS orders FROM marketing.z_base"}),
        col("orders", "decimal(38,0)"),
    )
    _derived(mesh_dir, "z_base")
    edit(mesh_dir / "mesh.yaml", "      all: true\n      except: []", "      all: true")
    assert errors(mesh_dir) == []
    order = list(_actions(mesh_dir, tmp_path / "ws"))
    assert order.index("marketing.z_base") < order.index("marketing.a_top")


def test_a_cycle_is_a_validate_error(mesh_dir: Path):
    _marketing(mesh_dir, grant="all: true")
    add_product(
        mesh_dir,
        "marketing",
        "a",
        json.dumps({"sql": "SELECT x FROM marketing.b"}),
        col("x", "bigint"),
    )
    add_product(
        mesh_dir,
        "marketing",
        "b",
        json.dumps({"sql": "SELECT x FROM marketing.a"}),
        col("x", "bigint"),
    )
    found = errors(mesh_dir)
    assert any(
        "derived tables read each other in a cycle: marketing.a -> marketing.b -> marketing.a" in f
        for f in found
    ), found


def test_declared_columns_must_match_the_result(mesh_dir: Path, tmp_path: Path):
    _marketing(mesh_dir)
    add_product(
        mesh_dir,
        "marketing",
        "region_sales",
        json.dumps({"sql": QUERY}),
        "\n".join([col("region", "bigint"), col("orders", "integer"), col("missing", "varchar")]),
    )
    with pytest.raises(SpecError) as raised:
        Mesh.build(mesh_dir, tmp_path / "ws")
    problems = raised.value.problems
    assert len(problems) == 4, problems
    assert (
        "column 'region' is declared bigint, which cannot hold the query's varchar" in problems[0]
    )
    assert (
        "column 'orders' is declared integer, which cannot hold the query's bigint" in problems[1]
    )
    assert "declared column 'missing' is not in the query's result" in problems[2]
    assert "returns columns sample that are not declared" in problems[3]


def test_the_graph_shows_what_a_derived_table_reads(mesh_dir: Path):
    from meshsim.graph import mesh_graph, to_mermaid
    from meshsim.spec.loader import load_mesh

    _marketing(mesh_dir)
    _derived(mesh_dir)
    spec = load_mesh(mesh_dir)
    graph = mesh_graph(spec, spec.policies)
    assert graph.edges["table:shop.orders", "table:marketing.region_sales"]["kind"] == "derives"
    assert "table_shop_orders -. derives .-> table_marketing_region_sales" in to_mermaid(graph)


def test_a_builds_derivations_have_no_interactive_timeout() -> None:
    """The interactive 30 s limit stopped the example's sales.customer_revenue at scale 10:
    a build's derivations run as long as they need (Ctrl-C still interrupts them)."""
    from meshsim.sources.derived import Deriver
    from meshsim.spec.loader import load_mesh
    from meshsim.workspace import DEFAULT_MESH

    deriver = Deriver(
        load_mesh(DEFAULT_MESH),
        locate=lambda ref: ref,
        mesh_key=lambda: b"k" * 32,
        allowed_paths=[],
        versions=lambda ref: None,
    )
    try:
        assert deriver._governed().limits.timeout_s is None
    finally:
        deriver.close()
