"""Who reads which audit records (issue 8: ``meshsim audit`` showed every consumer's SQL and
row counts to anyone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.errors import AccessDenied, MeshsimError
from meshsim.mesh import Mesh
from tests.cli.clihelpers import run

ANALYST = "eu_marketing_analyst"


def governed_count(mesh: Mesh, consumer: str, table: str) -> int:
    return mesh.session(consumer).sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]


@pytest.fixture
def audited(workspace: Path) -> Path:
    """A workspace where two consumers have queried."""
    mesh = Mesh.open(workspace)
    mesh.sql(ANALYST, "SELECT count(*) FROM customer.customer")
    mesh.sql("finance_controller", "SELECT sum(c_acctbal) FROM customer.customer")
    return workspace


def test_audit_without_as_is_refused(capsys, audited: Path):
    code, out, err = run(capsys, "audit", "--workspace", str(audited))
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and "\n  next: meshsim audit --as " in err
    assert "Traceback" not in err


def test_audit_as_a_consumer_shows_only_its_own_records(capsys, audited: Path):
    code, out, err = run(
        capsys, "audit", "--as", ANALYST, "--workspace", str(audited), "--format", "json"
    )
    assert code == 0, err
    records = json.loads(out)
    assert records and {r["consumer"] for r in records} == {ANALYST}
    assert "c_acctbal" not in out


def test_audit_of_someone_else_needs_an_admin(capsys, audited: Path):
    code, _, err = run(
        capsys,
        "audit",
        "--as",
        ANALYST,
        "--consumer",
        "finance_controller",
        "--workspace",
        str(audited),
    )
    assert code == 1
    assert err.startswith(f"Error: consumer '{ANALYST}' may read only its own audit records")
    assert "governance_admin" in err


def test_an_admin_reads_the_whole_log_and_anyones(capsys, audited: Path):
    args = ("audit", "--as", "governance_admin", "--workspace", str(audited), "--format", "json")
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert {ANALYST, "finance_controller"} <= {r["consumer"] for r in json.loads(out)}
    code, out, _ = run(capsys, *args, "--consumer", "finance_controller")
    assert {r["consumer"] for r in json.loads(out)} == {"finance_controller"}


def test_audit_of_an_unknown_consumer_suggests(capsys, audited: Path):
    for option in ("--consumer", "--as"):
        base = ["audit", "--workspace", str(audited)]
        extra = ["--as", "governance_admin"] if option == "--consumer" else []
        code, _, err = run(capsys, *base, *extra, option, "finance_controler")
        assert code == 1
        assert (
            "consumer 'finance_controler' is not defined; did you mean 'finance_controller'?" in err
        )
    code, _, err = run(
        capsys, "audit", "--workspace", str(audited), "--as", "admin", "--consumer", "nobody"
    )
    assert code == 1 and "consumer 'admin' is not defined" in err


def test_the_facade_applies_the_same_rules(audited: Path):
    mesh = Mesh.open(audited)
    with pytest.raises(MeshsimError, match="say who is asking"):
        mesh.audit()
    assert {r["consumer"] for r in mesh.audit(as_consumer="finance_controller")} == {
        "finance_controller"
    }
    with pytest.raises(MeshsimError, match="may read only its own audit records"):
        mesh.audit(as_consumer="finance_controller", consumer=ANALYST)
    with pytest.raises(MeshsimError, match="consumer 'nobody' is not defined"):
        mesh.audit(as_consumer="governance_admin", consumer="nobody")
    assert len(mesh.audit(as_consumer="governance_admin", limit=2)) == 2


def test_the_full_log_goes_to_exactly_who_may_query_meshsim_audit(audited: Path):
    """One answer to "who is a governance admin": the grant on the audit table."""
    mesh = Mesh.open(audited)
    for consumer in mesh.spec.consumer_names():
        try:
            mesh.sql(consumer, "SELECT count(*) FROM meshsim.audit")
            reads_sql = True
        except AccessDenied:
            reads_sql = False
        try:
            mesh.audit(
                as_consumer=consumer,
                consumer=ANALYST if consumer != ANALYST else "finance_controller",
            )
            reads_log = True
        except MeshsimError:
            reads_log = False
        assert reads_log == reads_sql, consumer
