"""``meshsim lineage`` and ``Mesh.lineage``: up- and downstream answers in each format, and
one ``Error:`` line for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.lineage import downstream_tables
from meshsim.mesh import Mesh
from meshsim.spec.loader import load_mesh
from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import EXAMPLE_MESH


def test_upstream_of_a_column_as_a_table(capsys, built_workspace: Path):
    code, out, err = run(
        capsys,
        "lineage",
        "sales.customer_revenue.c_name",
        "--upstream",
        "--workspace",
        str(built_workspace),
    )
    assert code == 0, err
    assert "upstream of sales.customer_revenue.c_name" in out
    assert "customer.customer.c_name" in out and "direct" in out
    assert "pii_keyed_hash" in out and "mask" in out
    assert "tpchgen-cli customer" in out  # where customer.customer's rows come from
    assert "revenue" not in out.replace("customer_revenue", "")  # other columns' inputs not


def test_downstream_of_a_join_key_as_json(capsys, built_workspace: Path):
    code, out, err = run(
        capsys,
        "lineage",
        "sales.orders.o_custkey",
        "--downstream",
        "--format",
        "json",
        "--workspace",
        str(built_workspace),
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["focus"] == {"table": "sales.orders", "column": "o_custkey"}
    assert answer["direction"] == "downstream"
    assert answer["lineage"]["columns"] == [
        {
            "source": {"table": "sales.orders", "column": "o_custkey"},
            "target": {"table": "sales.customer_revenue", "column": None},
            "kind": "filter",
        }
    ]


def test_mermaid_of_both_directions(capsys, built_workspace: Path):
    code, out, err = run(
        capsys,
        "lineage",
        "sales.customer_revenue",
        "--format",
        "mermaid",
        "--workspace",
        str(built_workspace),
    )
    assert code == 0, err
    assert out.startswith("flowchart LR\n")
    assert 'c_sales_customer_revenue[["sales.customer_revenue (rows)"]]' in out
    assert "c_sales_lineitem_l_discount -->|aggregate| c_sales_customer_revenue_revenue" in out
    assert '-. "mask pii_keyed_hash" .->' in out


def test_a_table_nothing_is_derived_from(built_workspace: Path):
    with Mesh.open(built_workspace) as mesh:
        answer = mesh.lineage("supply.part", direction="downstream")
    assert answer.edges() == []
    assert answer.summary() == "no lineage downstream of supply.part (rows)"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["custmer.customer"],
            ["table 'custmer.customer' is not defined", "did you mean 'customer.customer'?"],
        ),
        (
            ["customer.customer.c_nme"],
            ["column 'c_nme' is not defined", "did you mean 'c_name'?", "customer.customer"],
        ),
        (["orders"], ["table 'orders' is not defined", "DOMAIN.TABLE"]),
        (["sales.orders", "--format", "png"], ["'png' is not one of"]),
    ],
)
def test_bad_inputs_give_one_error_line(capsys, built_workspace: Path, args, needles):
    code, out, err = run(capsys, "lineage", *args, "--workspace", str(built_workspace))
    assert_clean_error(code, err, *needles)
    assert out == ""


def test_a_bad_direction_from_python(built_workspace: Path):
    from meshsim.errors import MeshsimError

    with Mesh.open(built_workspace) as mesh, pytest.raises(MeshsimError, match="'sideways'"):
        mesh.lineage("sales.orders", direction="sideways")


def test_which_derived_products_read_these_columns():
    spec = load_mesh(EXAMPLE_MESH)
    assert downstream_tables(spec, ["sales.lineitem.l_discount"]) == ["sales.customer_revenue"]
    assert downstream_tables(spec, ["sales.orders.o_comment", "supply.part"]) == []
    assert downstream_tables(spec, ["customer.nation"]) == ["sales.customer_revenue"]


def test_graph_shows_lineage_edges_only_behind_the_flag(capsys, built_workspace: Path):
    code, plain, _ = run(capsys, "graph", "--workspace", str(built_workspace))
    assert code == 0
    code, with_lineage, err = run(capsys, "graph", "--lineage", "--workspace", str(built_workspace))
    assert code == 0, err
    assert "feeds" not in plain and "(aggregate)" not in plain
    assert "table_sales_customer_revenue" in plain  # the product itself is there either way
    assert (
        'table_sales_lineitem -. "l_discount -> revenue (aggregate); l_extendedprice -> revenue '
        '(aggregate); l_orderkey (filter); l_returnflag (filter)" .-> table_sales_customer_revenue'
    ) in with_lineage
    assert "mask pii_keyed_hash on c_name" in with_lineage
    assert "source_tpch_tpchgen_cli_orders -. feeds .-> table_sales_orders" in with_lineage


def test_demo_shows_a_lineage_answer(capsys, tmp_path: Path):
    code, out, err = run(capsys, "demo", "--workspace", str(tmp_path / "ws"))
    assert code == 0, err
    assert "$ meshsim lineage sales.customer_revenue.c_name --upstream" in err
    assert "upstream of sales.customer_revenue.c_name" in out
    assert "pii_keyed_hash: keyed_hash (read as consumer 'sales')" in out
