"""Issue 12: ``Mesh.access`` and every listing built on it agree with what the consumer can
query (it listed only the spec's grants after an approval, while the consumer read the table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.errors import AccessDenied
from meshsim.mesh import Mesh
from tests.cli.clihelpers import run

PARTNER = "external_partner"


def queryable(mesh: Mesh, consumer: str) -> set[str]:
    """The tables ``consumer`` can read with governed SQL, found by querying each one."""
    readable = set()
    session = mesh.session(consumer)
    for table in [t.ref for t in mesh.spec.tables()] + ["meshsim.audit"]:
        try:
            session.sql(f"SELECT count(*) FROM {table}")
        except AccessDenied:
            continue
        readable.add(table)
    return readable


def listed(mesh: Mesh, consumer: str) -> set[str]:
    return {a.table for a in mesh.access(consumer) if a.granted}


@pytest.fixture
def approved(workspace: Path) -> Mesh:
    mesh = Mesh.open(workspace)
    request = mesh.catalog.request(PARTNER, "customer.customer_profiles", "a campaign")
    mesh.catalog.approve(request.id, by="customer-data")
    return mesh


def test_access_lists_approved_subscriptions(approved: Mesh):
    assert "customer.customer" in queryable(approved, PARTNER)
    assert listed(approved, PARTNER) == queryable(approved, PARTNER)


@pytest.mark.parametrize("consumer", ["governance_admin", "eu_marketing_analyst", PARTNER])
def test_access_agrees_with_queries_for_every_consumer(approved: Mesh, consumer: str):
    assert listed(approved, consumer) == queryable(approved, consumer)


def test_columns_listed_are_the_columns_a_star_returns(approved: Mesh):
    for access in approved.access(PARTNER):
        if access.granted:
            result = approved.session(PARTNER).sql(f"SELECT * FROM {access.table} LIMIT 0")
            assert result.columns == access.visible_columns, access.table


def test_cli_access_and_shell_tables_list_the_subscription(approved: Mesh, capsys):
    workspace = str(approved.workspace.root)
    code, out, _ = run(
        capsys, "access", "--consumer", PARTNER, "--workspace", workspace, "--format", "csv"
    )
    assert code == 0
    assert f"{PARTNER},customer.customer,c_custkey" in out

    import io

    from meshsim.console import NullConsole
    from meshsim.shell import Shell

    notes: list[str] = []

    class Recording(NullConsole):
        def note(self, text: str) -> None:
            notes.append(text)

    Shell(approved, PARTNER, Recording()).run(stdin=io.StringIO(".tables\n"))
    assert "customer.customer" in notes[-1].splitlines()


def test_demo_summary_lists_the_subscription(approved: Mesh):
    from meshsim.demo import access_summary

    tables = {r["table"] for r in access_summary(approved) if r["consumer"] == PARTNER}
    assert tables == queryable(approved, PARTNER)


def test_tables_as_consumer_lists_what_it_may_query_with_its_rows(approved: Mesh, capsys):
    workspace = str(approved.workspace.root)
    code, out, err = run(
        capsys,
        "tables",
        "--as",
        "eu_marketing_analyst",
        "--workspace",
        workspace,
        "--format",
        "csv",
    )
    assert code == 0, err
    listed_tables = {line.split(",")[0] for line in out.splitlines()[1:]}
    assert listed_tables == queryable(approved, "eu_marketing_analyst") - {"meshsim.audit"}
    [counted] = approved.sql(
        "eu_marketing_analyst", "SELECT count(*) FROM customer.customer"
    ).fetchall()
    customers = next(line for line in out.splitlines() if line.startswith("customer.customer,"))
    assert customers.split(",")[3] == str(counted[0])
    total = {t.ref: t.rows for t in approved.tables()}["customer.customer"]
    assert counted[0] < total  # its row filter applies


def test_show_as_consumer_agrees_with_access_after_approval(approved: Mesh):
    details = approved.show("customer.customer_profiles", as_consumer=PARTNER)
    shown = {(c["table"], c["column"]): c["access"] for c in details.columns}
    for access in approved.access(PARTNER):
        for cell in access.columns:
            if (access.table, cell.column) in shown:
                assert shown[access.table, cell.column] == cell.state


def test_access_as_consumer_is_its_own_view(approved: Mesh, capsys):
    workspace = str(approved.workspace.root)
    code, out, err = run(
        capsys, "access", "--as", PARTNER, "--workspace", workspace, "--format", "csv"
    )
    assert code == 0, err
    rows = [line.split(",") for line in out.splitlines()[1:]]
    assert {r[0] for r in rows} == {PARTNER}
    assert {r[1] for r in rows if r[3] != "denied"} == queryable(approved, PARTNER)
