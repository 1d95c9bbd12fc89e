from __future__ import annotations

import io
import json
from pathlib import Path

from tests.cli.clihelpers import run


def test_sql_json_is_a_list_of_row_objects(capsys, built_workspace: Path):
    code, out, err = run(
        capsys,
        "sql",
        "--as",
        "eu_marketing_analyst",
        "--workspace",
        str(built_workspace),
        "--format",
        "json",
        "SELECT c_custkey, c_phone FROM customer.customer ORDER BY 1 LIMIT 2",
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [set(r) for r in rows] == [{"c_custkey", "c_phone"}] * 2
    assert all(r["c_phone"].startswith("****") for r in rows)


def test_sql_csv_and_decimal_values(capsys, built_workspace: Path):
    code, out, _ = run(
        capsys,
        "sql",
        "--as",
        "finance_controller",
        "--workspace",
        str(built_workspace),
        "--format",
        "csv",
        "SELECT c_custkey, c_acctbal FROM customer.customer WHERE c_custkey = 1",
    )
    assert code == 0
    assert out == "c_custkey,c_acctbal\n1,711.56\n"


def test_refused_query_exits_non_zero_with_one_message(capsys, built_workspace: Path):
    code, out, err = run(
        capsys,
        "sql",
        "--as",
        "supply_planner",
        "--workspace",
        str(built_workspace),
        "SELECT o_totalprice FROM sales.orders",
    )
    assert code == 1 and out == ""
    assert err == (
        "Error: consumer 'supply_planner' has no grant on table 'sales.orders' (product 'sales.order_history')\n"
        "  next: meshsim request --as supply_planner sales.order_history\n"
    )


def test_unknown_consumer_suggests(capsys, built_workspace: Path):
    code, _, err = run(
        capsys,
        "sql",
        "--as",
        "eu_marketing_analist",
        "--workspace",
        str(built_workspace),
        "SELECT 1",
    )
    assert code == 1
    assert (
        "consumer 'eu_marketing_analist' is not defined; did you mean 'eu_marketing_analyst'?"
        in err
    )


def test_engine_errors_do_not_echo_values(capsys, built_workspace: Path):
    code, _, err = run(
        capsys,
        "sql",
        "--as",
        "eu_marketing_analyst",
        "--workspace",
        str(built_workspace),
        "SELECT CAST(c_mktsegment AS INTEGER) FROM customer.customer",
    )
    assert code == 1
    for segment in ("AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"):
        assert segment not in err
    assert "details are withheld" in err


def test_explain(capsys, built_workspace: Path):
    code, out, _ = run(
        capsys,
        "explain",
        "--as",
        "finance_controller",
        "--workspace",
        str(built_workspace),
        "SELECT c_name, c_acctbal FROM customer.customer",
    )
    assert code == 0
    assert "c_name: masked (mask pii_keyed_hash (keyed_hash))" in out
    assert "c_acctbal: full (grant finance_customer_profiles)" in out
    assert '"<customer.customer v0: 1 file>"' in out  # storage named, never its paths
    assert "READ_PARQUET" not in out and str(built_workspace) not in out


def test_shell_runs_statements_and_survives_refusals(capsys, built_workspace: Path, monkeypatch):
    script = (
        "SELECT count(*) AS n\nFROM supply.part;\n"
        "SELECT * FROM sales.orders;\n"
        ".tables\n"
        ".format json\n"
        "SELECT p_partkey FROM supply.part ORDER BY 1 LIMIT 1;\n"
        ".quit\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code, out, err = run(
        capsys, "sql", "--as", "external_partner", "--workspace", str(built_workspace)
    )
    assert code == 0
    assert "2000" in out
    assert "has no grant on table 'sales.orders'" in err
    assert "supply.part" in err
    assert out.rstrip().endswith('[\n  {\n    "p_partkey": 1\n  }\n]')


def test_demo_shows_three_consumers_and_a_subscription(capsys, tmp_path: Path):
    code, out, err = run(capsys, "demo", "--workspace", str(tmp_path / "ws"))
    assert code == 0, err
    for consumer in (
        "governance_admin",
        "eu_marketing_analyst",
        "finance_controller",
        "external_partner",
    ):
        assert f"as {consumer}" in out
    assert "request 1: pending" in err and "request 1: approved" in err
    assert "was revoked by customer-data" in err


def test_sql_result_limit_and_timeout_flags(capsys, built_workspace: Path):
    ws = str(built_workspace)
    query = "SELECT * FROM customer.customer"
    code, out, err = run(
        capsys,
        "sql",
        "--as",
        "governance_admin",
        "--workspace",
        ws,
        "--max-result-rows",
        "3",
        query,
    )
    assert code == 1 and out == ""
    assert err.startswith("Error: the result has more than 3 rows (limit max_result_rows)")
    code, out, err = run(
        capsys,
        "sql",
        "--as",
        "governance_admin",
        "--workspace",
        ws,
        "--timeout",
        "0",
        "SELECT 1 AS x",
    )
    assert code == 2 and "--timeout" in err and "Traceback" not in err


def test_output_is_safe_for_terminals_and_complete(capsys, built_workspace: Path):
    """Found in review: ESC sequences in a consumer's SQL reached an admin's terminal through
    `meshsim audit`; TIME values broke JSON; duplicate output names lost a column."""
    ws = str(built_workspace)
    hidden = "SELECT count(*) AS n FROM supply.part /* \x1b[1A\x1b[2K\x1b[31mhidden\x1b[0m */"
    code, _, err = run(capsys, "sql", "--as", "external_partner", "--workspace", ws, hidden)
    assert code == 0, err
    for fmt in ("table", "csv"):
        code, out, err = run(
            capsys,
            "audit",
            "--as",
            "governance_admin",
            "--workspace",
            ws,
            "--limit",
            "3",
            "--format",
            fmt,
        )
        assert code == 0, err
        assert "\x1b" not in out and "\\x1b[2K" in out
    code, out, err = run(
        capsys,
        "sql",
        "--as",
        "external_partner",
        "--workspace",
        ws,
        "--format",
        "json",
        "SELECT CAST('12:00' AS TIME) AS t",
    )
    assert code == 0, err
    assert json.loads(out) == [{"t": "12:00:00"}]
    code, out, err = run(
        capsys,
        "sql",
        "--as",
        "external_partner",
        "--workspace",
        ws,
        "--format",
        "json",
        "SELECT 1 AS a, 2 AS a, 3 AS a_1",
    )
    assert code == 0, err
    assert json.loads(out) == [{"a": 1, "a_2": 2, "a_1": 3}]
