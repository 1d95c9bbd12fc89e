"""Identity as PostgreSQL's peer authentication does it (issue 8): a mesh may bind principals
to operating-system users, and then meshsim checks who runs it; unbound principals are
asserted, and ``meshsim validate`` says so."""

from __future__ import annotations

import os
import pwd
import sqlite3
from pathlib import Path

import pytest

from meshsim import identity
from meshsim.catalog import Catalog
from meshsim.catalog.store import MIGRATIONS, Store, _statements
from meshsim.cli import main
from meshsim.errors import IdentityError
from meshsim.mesh import Mesh
from meshsim.spec.lint import lint
from meshsim.spec.loader import load_mesh
from meshsim.workspace import Workspace
from tests.cli.clihelpers import run
from tests.conftest import EXAMPLE_MESH, edit

ANALYST = "eu_marketing_analyst"
PROFILES = "customer.customer_profiles"


def bind(mesh_dir: Path) -> None:
    """The analyst is alice, the admin is root_ops, the customer domain's owners are carol."""
    edit(
        mesh_dir / "mesh.yaml",
        "  - name: eu_marketing_analyst\n",
        "  - name: eu_marketing_analyst\n    os_users: [alice]\n",
    )
    edit(mesh_dir / "mesh.yaml", "    admin: true\n", "    admin: true\n    os_users: [root_ops]\n")
    edit(
        mesh_dir / "customer" / "domain.yaml",
        "owner_team: customer-data\n",
        "owner_team: customer-data\nowner_os_users: [carol, dave]\n",
    )


@pytest.fixture
def bound(workspace: Path, mesh_copy: Path) -> Path:
    """A built workspace whose mesh binds three principals to OS users."""
    bind(mesh_copy)
    ws = Workspace(workspace)
    ws.write_state(ws.read_state().model_copy(update={"mesh_dir": str(mesh_copy)}))
    return workspace


@pytest.fixture
def as_os_user(monkeypatch):
    def become(name: str) -> None:
        monkeypatch.setattr(identity, "os_user_source", lambda: name)

    return become


# --- queries ---------------------------------------------------------------------------------


def test_a_bound_consumer_is_refused_to_another_os_user(bound: Path, as_os_user):
    mesh = Mesh.open(bound)
    as_os_user("mallory")
    with pytest.raises(IdentityError) as refused:
        mesh.session(ANALYST)
    message = refused.value.message
    assert f"'{ANALYST}'" in message and "'mallory'" in message and "alice" in message
    for call in (mesh.sql, mesh.explain):
        with pytest.raises(IdentityError):
            call(ANALYST, "SELECT count(*) FROM customer.region")
    as_os_user("alice")
    assert mesh.sql(ANALYST, "SELECT count(*) FROM customer.region").fetchall() == [(5,)]


def test_the_engine_and_a_held_session_check_identity_too(bound: Path, as_os_user):
    """Found in review: Mesh.engine.session(...) skipped the check Mesh.session made."""
    mesh = Mesh.open(bound)
    as_os_user("alice")
    held = mesh.engine.session(ANALYST)
    as_os_user("mallory")
    with pytest.raises(IdentityError):
        mesh.engine.session(ANALYST)
    with pytest.raises(IdentityError):
        held.sql("SELECT count(*) FROM customer.region")
    with pytest.raises(IdentityError):
        mesh.engine.run(mesh.engine.attempt(ANALYST, "SELECT count(*) FROM customer.region"))


def test_the_cli_refuses_a_mismatch_with_one_error(capsys, bound: Path, as_os_user):
    as_os_user("mallory")
    query = "SELECT count(*) FROM customer.region"
    for args in (
        ("sql", "--as", ANALYST, query),
        ("explain", "--as", ANALYST, query),
        ("show", PROFILES, "--as", ANALYST),
        ("products", "--as", ANALYST),
        ("audit", "--as", "governance_admin"),
        ("request", PROFILES, "--as", ANALYST, "--reason", "segments"),
    ):
        code, out, err = run(capsys, *args, "--workspace", str(bound))
        assert code == 1 and out == "", args
        assert err.startswith("Error: ") and "'mallory'" in err and "next: " in err, args
        assert "Traceback" not in err


def test_unbound_principals_are_asserted(bound: Path, as_os_user):
    as_os_user("mallory")
    mesh = Mesh.open(bound)
    assert mesh.sql("finance_controller", "SELECT count(*) FROM customer.region").fetchall() == [
        (5,)
    ]


# --- decisions -------------------------------------------------------------------------------


def test_decisions_check_the_deciders_os_user_and_record_it(bound: Path, as_os_user):
    mesh = Mesh.open(bound)
    as_os_user("alice")
    request = mesh.catalog.request(ANALYST, PROFILES, "segments", columns=["c_name"])
    assert request.state == "pending"
    as_os_user("mallory")
    for decide in (
        lambda: mesh.catalog.approve(request.id, by="customer-data"),
        lambda: mesh.catalog.reject(request.id, by="customer-data", comment="no"),
        lambda: mesh.catalog.approve(request.id, by="governance_admin"),
    ):
        with pytest.raises(IdentityError, match="'mallory'"):
            decide()
    assert mesh.catalog.get_request(request.id).state == "pending"
    as_os_user("dave")
    mesh.catalog.approve(request.id, by="customer-data")
    as_os_user("mallory")
    with pytest.raises(IdentityError, match="carol, dave"):
        mesh.catalog.revoke(request.id, by="customer-data")
    as_os_user("root_ops")
    mesh.catalog.revoke(request.id, by="governance_admin")
    events = list(reversed(mesh.audit(as_consumer="governance_admin")))
    decisions = [
        (e["transition"], e["principal"], e["os_user"])
        for e in events
        if e["kind"] == "decision" and e["request_id"] == request.id
    ]
    assert decisions == [
        ("new->pending", ANALYST, "alice"),
        ("pending->approved", "customer-data", "dave"),
        ("approved->revoked", "governance_admin", "root_ops"),
    ]


def test_the_cli_refuses_a_decider_by_another_os_user(capsys, bound: Path, as_os_user):
    as_os_user("alice")
    request = Mesh.open(bound).catalog.request(ANALYST, PROFILES, "segments", columns=["c_name"])
    as_os_user("mallory")
    code, _, err = run(
        capsys, "approve", str(request.id), "--by", "customer-data", "--workspace", str(bound)
    )
    assert code == 1
    assert err.splitlines()[0] == (
        "Error: principal 'customer-data' is bound to OS users carol, dave, but meshsim runs "
        "as OS user 'mallory'"
    )


def test_automatic_decisions_record_the_os_user_too(tmp_path: Path, as_os_user):
    spec = load_mesh(EXAMPLE_MESH)
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: spec)
    catalog.publish_all({t.ref: 0 for t in spec.tables()}, {t.ref: 1 for t in spec.tables()})
    as_os_user("erin")
    made = catalog.request("external_partner", "supply.supply_catalog", "parts", tables=["part"])
    assert made.state == "approved"
    records = catalog.audit(request_id=made.id)
    assert {(r["principal"], r["os_user"]) for r in records} == {
        ("external_partner", "erin"),
        ("meshsim:auto-approval", "erin"),
    }
    assert {r["os_user"] for r in catalog.audit() if r["kind"] == "publish"} == {
        pwd.getpwuid(os.geteuid()).pw_name
    }


# --- the OS user -----------------------------------------------------------------------------


def test_the_os_user_is_the_effective_uid_not_the_environment(monkeypatch):
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "mallory")
    assert identity.current_os_user() == pwd.getpwuid(os.geteuid()).pw_name != "mallory"


# --- the spec and validate -------------------------------------------------------------------


def test_validate_says_identities_are_asserted_when_nothing_is_bound(capsys):
    problems = lint(load_mesh(EXAMPLE_MESH))
    assert [p.severity for p in problems] == ["warning"]
    assert "identities are asserted" in problems[0].message
    code, out, err = run(capsys, "validate", "--mesh", str(EXAMPLE_MESH))
    assert code == 0 and "is valid (1 warning(s))" in out
    assert "warning: no principal is bound to OS users" in err


def test_validate_names_the_principals_left_unbound(mesh_copy: Path):
    bind(mesh_copy)
    [problem] = lint(load_mesh(mesh_copy))
    assert problem.severity == "warning"
    assert problem.message.startswith(
        "identities of finance_controller, supply_planner, external_partner, sales, sales-ops, "
        "supply-chain are asserted"
    )


def test_one_principal_bound_two_ways_is_an_error(mesh_copy: Path):
    bind(mesh_copy)
    edit(
        mesh_copy / "customer" / "products" / "customer_profiles.yaml",
        "owner: customer-data\n",
        "owner: customer-data\nowner_os_users: [carol]\n",
    )
    errors = [p for p in lint(load_mesh(mesh_copy)) if p.severity == "error"]
    assert [p.message for p in errors] == [
        "principal 'customer-data' is bound to different OS users: carol, dave (owner_os_users "
        f"in {mesh_copy / 'customer' / 'domain.yaml'}) and carol (owner_os_users in "
        f"{mesh_copy / 'customer' / 'products' / 'customer_profiles.yaml'}); bind it once"
    ]


def test_os_user_names_are_validated(mesh_copy: Path):
    edit(mesh_copy / "mesh.yaml", "    admin: true\n", "    admin: true\n    os_users: ['a b']\n")
    code = main(["validate", "--mesh", str(mesh_copy)])
    assert code == 1


# --- the catalog schema ----------------------------------------------------------------------


def test_an_old_catalog_is_upgraded_and_stays_readable(tmp_path: Path, as_os_user):
    governance = tmp_path / "ws" / "governance"
    governance.mkdir(parents=True)
    con = sqlite3.connect(governance / "catalog.db")
    for statement in _statements(MIGRATIONS[0]):
        con.execute(statement)
    con.execute(
        "INSERT INTO audit (time, kind, consumer, sql, decision) VALUES"
        " ('2026-01-01T00:00:00.000000+00:00', 'query', 'supply_planner', 'SELECT 1', 'allowed')"
    )
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    spec = load_mesh(EXAMPLE_MESH)
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: spec)
    [old] = catalog.audit()
    assert (old["sql"], old["os_user"]) == ("SELECT 1", None)
    as_os_user("erin")
    catalog.publish_all({t.ref: 0 for t in spec.tables()}, {t.ref: 1 for t in spec.tables()})
    assert {r["os_user"] for r in catalog.audit() if r["kind"] == "publish"} == {"erin"}
    with sqlite3.connect(Store(governance).path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_an_audit_table_exported_by_an_older_meshsim_is_replaced(workspace: Path):
    """meshsim.audit exported before os_user existed has one column fewer: the next export
    replaces it with today's columns instead of failing on the schema."""
    from meshsim.storage import delta

    mesh = Mesh.open(workspace)
    location = workspace / "governance" / "system" / "audit"
    count = "SELECT count(*) FROM meshsim.audit WHERE os_user IS NOT NULL"
    mesh.sql("governance_admin", count)
    exported = delta.read_table(location, table="meshsim.audit").drop_columns(["os_user"])
    delta.write(
        location, exported, mode="overwrite", schema_mode="overwrite", table="meshsim.audit"
    )
    location.with_suffix(".exported").unlink()
    assert mesh.sql("governance_admin", count).fetchall()[0][0] >= 1
