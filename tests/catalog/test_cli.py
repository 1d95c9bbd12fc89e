"""The catalog commands end to end: the workflow, stable JSON fields, errors at the boundary."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.clihelpers import run


def test_workflow_from_the_cli(capsys, cli_catalog):
    code, out, err = run(
        capsys,
        "request",
        "--as",
        "external_partner",
        "customer.customer_profiles",
        "--reason",
        "segments",
        "--tables",
        "customer,nation",
    )
    assert code == 0 and out == "1\n" and "request 1 is pending" in err

    code, out, _ = run(capsys, "requests", "--pending", "--format", "json")
    [row] = json.loads(out)
    assert {"id", "consumer", "product", "state", "tables", "columns", "reason"} <= set(row)
    assert (row["id"], row["consumer"], row["product"], row["state"]) == (
        1,
        "external_partner",
        "customer.customer_profiles",
        "pending",
    )

    code, _, err = run(capsys, "approve", "1", "--by", "sales-ops")
    assert code == 1 and err.startswith("Error: 'sales-ops' may not decide request 1")
    assert "Traceback" not in err

    code, out, _ = run(
        capsys,
        "approve",
        "1",
        "--by",
        "customer-data",
        "--columns",
        "c_custkey,n_name",
        "--row-filter",
        "c_nationkey = 7",
    )
    assert code == 0
    assert (
        out
        == "request 1 (external_partner on customer.customer_profiles) approved by customer-data\n"
    )

    code, out, _ = run(
        capsys, "subscriptions", "--consumer", "external_partner", "--format", "json"
    )
    rows = json.loads(out)
    assert [(r["id"], r["state"], r["source"]) for r in rows] == [
        (1, "approved", "request"),
        (None, "declared", "spec"),
    ]

    code, out, _ = run(capsys, "revoke", "1", "--by", "governance_admin")
    assert code == 0 and "revoked by governance_admin" in out
    code, _, err = run(capsys, "revoke", "1", "--by", "governance_admin")
    assert code == 1
    assert err.startswith(
        "Error: request 1 is already revoked; only an approved request can be revoked\n"
    )

    code, out, _ = run(
        capsys, "audit", "--as", "governance_admin", "--format", "json", "--limit", "2"
    )
    assert [r["transition"] for r in json.loads(out)] == ["approved->revoked", "pending->approved"]


def test_listings_take_every_format(capsys, cli_catalog):
    for command in (
        ["products"],
        ["search", "customer"],
        ["subscriptions"],
        ["requests"],
        ["access", "--consumer", "external_partner"],
        ["audit", "--as", "governance_admin"],
    ):
        for fmt in ("table", "json", "csv"):
            code, out, err = run(capsys, *command, "--format", fmt)
            assert code == 0, (command, fmt, err)
            if fmt == "json":
                json.loads(out)
    code, out, _ = run(capsys, "products", "--format", "csv")
    assert out.splitlines()[0].startswith("product,domain,owner,version")


def test_access_matrix_and_what_if(capsys, cli_catalog, tmp_path: Path):
    code, out, _ = run(capsys, "access", "--consumer", "eu_marketing_analyst", "--format", "json")
    cells = {(r["table"], r["column"]): r for r in json.loads(out)}
    assert cells[("customer.customer", "c_phone")]["state"] == "masked"
    assert cells[("customer.customer", "c_mktsegment")]["state"] == "filtered"
    assert cells[("customer.customer", "c_acctbal")]["rule"] == "no grant covers it"

    edited = tmp_path / "policies.yaml"
    edited.write_text(
        "grants:\n  - name: partner_parts\n    consumers: [external_partner]\n"
        "    tables: [supply.partsupp]\n"
    )
    code, out, _ = run(capsys, "access", "--policies", str(edited), "--format", "json")
    changes = json.loads(out)
    granted = [r for r in changes if r["state"] != "full" and r["what_if_state"] == "full"]
    assert {(r["consumer"], r["table"]) for r in granted} == {
        ("external_partner", "supply.partsupp")
    }
    assert any(
        r["consumer"] == "governance_admin" and r["what_if_state"] == "denied" for r in changes
    )
    # nothing was applied
    code, out, _ = run(capsys, "access", "--consumer", "external_partner", "--format", "json")
    assert all(r["state"] == "denied" for r in json.loads(out) if r["table"] == "supply.partsupp")


def test_show_and_publish(capsys, built_workspace: Path):
    ws = ("--workspace", str(built_workspace))
    code, out, _ = run(
        capsys, "show", "supply.supply_catalog", "--as", "external_partner", "--format", "json", *ws
    )
    details = json.loads(out)
    assert details["owner"] == "supply-chain"
    assert {c["access"] for c in details["columns"] if c["table"] == "supply.part"} == {"full"}
    code, _, err = run(capsys, "show", "supply.suply_catalog", *ws)
    assert code == 1 and "did you mean 'supply.supply_catalog'?" in err


def test_graph_mermaid_and_images(capsys, cli_catalog, tmp_path: Path):
    run(
        capsys, "request", "--as", "external_partner", "customer.customer_profiles", "--reason", "x"
    )
    code, out, _ = run(capsys, "graph")
    assert code == 0 and out.startswith("flowchart LR\n")
    assert 'subgraph domain_customer["customer (customer-data)"]' in out
    assert (
        'consumer_external_partner -. "request 1 (pending)" .-> product_customer_customer_profiles'
        in out
    )
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
        target = tmp_path / f"mesh.{fmt}"
        code, out, _ = run(capsys, "graph", "--format", fmt, "--out", str(target))
        assert code == 0 and target.read_bytes().startswith(magic)
    code, _, err = run(capsys, "graph", "--format", "png")
    assert code == 1 and "needs a file to write" in err
