"""Verified plans that outlive a session (:mod:`meshsim.query.plan_store`): a new session's
first run of a text is not planned again, and a stored plan is never served after anything
that makes it wrong: a policy edit, a grant or subscription decided, a new table version, a
file that was changed or is not the workspace's own."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.errors import AccessDenied, QueryError
from meshsim.mesh import Mesh
from meshsim.query.plan_store import PLAN_FOLDER
from tests.conftest import edit

PHONES = "SELECT c_phone FROM customer.customer ORDER BY c_custkey LIMIT 3"


@pytest.fixture
def workspace(workspace: Path) -> Path:
    """The private copy of the built workspace, without the plans other tests' queries
    stored in the shared one."""
    shutil.rmtree(workspace / "governance" / PLAN_FOLDER, ignore_errors=True)
    return workspace


def run(workspace: Path, consumer: str, text: str, mesh_dir: Path | None = None):
    """``text`` as ``consumer`` in a new session of its own: (rows, whether it was planned)."""
    mesh = Mesh.open(workspace, mesh_dir=mesh_dir)
    try:
        result = mesh.sql(consumer, text)
        return result.fetchall(), "parse" in result.timings
    finally:
        mesh.close()


def stored_files(workspace: Path) -> list[Path]:
    return sorted((workspace / "governance" / PLAN_FOLDER).glob("*.json"))


def test_a_new_session_runs_a_text_it_ran_before_without_planning_it(workspace: Path):
    first, planned = run(workspace, "eu_marketing_analyst", PHONES)
    assert planned and len(stored_files(workspace)) == 1
    again, planned = run(workspace, "eu_marketing_analyst", PHONES)
    assert (again, planned) == (first, False)
    assert all(p.startswith("****") for (p,) in again)  # the masks of the stored plan
    # another consumer's plan of the same text is its own
    raw, planned = run(workspace, "governance_admin", PHONES)
    assert planned and not {p for (p,) in raw} & {p for (p,) in first}
    mode = (workspace / "governance" / PLAN_FOLDER).stat().st_mode & 0o777
    assert mode == 0o700 and all(p.stat().st_mode & 0o777 == 0o600 for p in stored_files(workspace))


def test_a_policy_edit_is_not_served_a_stored_plan(workspace: Path, mesh_copy: Path):
    before, _ = run(workspace, "eu_marketing_analyst", PHONES, mesh_copy)
    edit(
        mesh_copy / "mesh.yaml",
        "function: show_last\n      n: 4",
        "function: show_last\n      n: 2",
    )
    after, planned = run(workspace, "eu_marketing_analyst", PHONES, mesh_copy)
    assert planned and [p[-2:] for (p,) in after] == [p[-2:] for (p,) in before]
    assert all(len(a) < len(b) for (a,), (b,) in zip(after, before, strict=True))  # 2 shown
    balances = "SELECT c_acctbal FROM customer.customer LIMIT 1"
    assert run(workspace, "finance_controller", balances, mesh_copy)[0]
    edit(
        mesh_copy / "mesh.yaml",
        "      product: customer.customer_profiles\n    - name: finance_order_history",
        "      product: customer.customer_profiles\n      exclude_columns: [customer.customer.c_acctbal]\n"
        "    - name: finance_order_history",
    )
    with pytest.raises(AccessDenied, match="may not read column 'c_acctbal'"):
        run(workspace, "finance_controller", balances, mesh_copy)


def test_a_subscription_decided_is_not_served_a_stored_plan(workspace: Path):
    count = "SELECT count(*) FROM sales.orders"
    mesh = Mesh.open(workspace)
    request = mesh.catalog.request("external_partner", "sales.order_history", "volumes")
    assert request.state == "approved"  # no PII: approved at once
    mesh.close()
    rows, planned = run(workspace, "external_partner", count)
    assert planned and rows == run(workspace, "external_partner", count)[0]
    mesh = Mesh.open(workspace)
    mesh.catalog.revoke(request.id, by="sales-ops")
    mesh.close()
    with pytest.raises(AccessDenied):
        run(workspace, "external_partner", count)
    mesh = Mesh.open(workspace)
    mesh.catalog.request("external_partner", "sales.order_history", "volumes again")
    mesh.close()
    assert run(workspace, "external_partner", count)[0] == rows


def test_a_new_table_version_is_not_served_a_stored_plan(workspace: Path):
    count = "SELECT count(*) FROM customer.region"
    assert run(workspace, "eu_marketing_analyst", count) == ([(5,)], True)
    assert run(workspace, "eu_marketing_analyst", count) == ([(5,)], False)
    extra = pa.table(
        {"r_regionkey": pa.array([5], pa.int64()), "r_name": ["ANTARCTICA"], "r_comment": ["cold"]}
    )
    mesh = Mesh.open(workspace)
    mesh.write("customer.region", extra, mode="append")
    mesh.close()
    assert run(workspace, "eu_marketing_analyst", count) == ([(6,)], True)


def test_time_travel_is_not_stored(workspace: Path):
    then = "SELECT count(*) FROM sales.orders AT (VERSION => 0)"
    run(workspace, "governance_admin", then)
    assert stored_files(workspace) == []
    assert run(workspace, "governance_admin", then)[1]


def _rewrite(path: Path, body: bytes, key: bytes) -> None:
    path.write_bytes(hmac.new(key, body, hashlib.sha256).hexdigest().encode() + b"\n" + body)


def test_a_changed_or_foreign_plan_file_is_never_run(workspace: Path):
    query = "SELECT r_name FROM customer.region ORDER BY r_name"
    other = "SELECT n_name FROM customer.nation ORDER BY n_name"
    regions, _ = run(workspace, "eu_marketing_analyst", query)
    run(workspace, "eu_marketing_analyst", other)
    files = stored_files(workspace)
    assert len(files) == 2
    target = next(p for p in files if b"r_name" in p.read_bytes())
    mac, _, body = target.read_bytes().partition(b"\n")
    # the body changed (another order), its MAC left as it was: not authentic
    entry = json.loads(body)
    entry["wrapper"] = "SUMMARIZE"
    forged = json.dumps(entry).encode()
    target.write_bytes(mac + b"\n" + forged)
    assert run(workspace, "eu_marketing_analyst", query) == (regions, True)
    # signed with a key that is not the workspace's own: refused as well
    _rewrite(target, forged, b"not the mesh key")
    assert run(workspace, "eu_marketing_analyst", query) == (regions, True)
    # an authentic file of another text, under this text's name: refused (its key differs)
    source = next(p for p in stored_files(workspace) if b"n_name" in p.read_bytes())
    target.write_bytes(source.read_bytes())
    assert run(workspace, "eu_marketing_analyst", query) == (regions, True)


@pytest.mark.parametrize("when", ["before the first query", "after a listing"])
def test_a_classification_edit_in_a_product_file_is_not_served_a_stored_plan(
    workspace: Path, mesh_copy: Path, when: str
):
    """A column classified pii in its product file is masked for the analyst by the
    classification rule of mesh.yaml: the edit is in a domain's file, not in mesh.yaml, and a
    new session must not be served the plan stored before it."""
    comments = "SELECT c_comment FROM customer.customer ORDER BY c_custkey LIMIT 3"
    before, planned = run(workspace, "eu_marketing_analyst", comments, mesh_copy)
    assert planned and len(stored_files(workspace)) >= 1
    product = mesh_copy / "customer" / "products" / "customer_profiles.yaml"
    edit(
        product,
        "name: c_comment, type: varchar, classification: internal",
        "name: c_comment, type: varchar, classification: pii",
    )
    mesh = Mesh.open(workspace, mesh_dir=mesh_copy)
    try:
        if when == "after a listing":
            mesh.tables()
        after = mesh.sql("eu_marketing_analyst", comments).fetchall()
    finally:
        mesh.close()
    assert after != before
    assert all((a,) != (b,) for (a,), (b,) in zip(after, before, strict=True))  # hashed now


def test_a_product_file_edit_that_leaves_the_governed_sql_alone_is_not_served_a_stored_plan(
    workspace: Path, mesh_copy: Path
):
    """The outside review: a column declared in the product file but not in the data
    changes what ``SELECT *`` expands to and not the table's governed scan. The store's key
    covered mesh.yaml alone (what the engine had read when it was made), so a new session
    was served the plan stored before the edit. A stored plan now holds the status of the
    spec files of every domain it read, and a new session plans the text again, which
    names the declared column the data lacks (it was an engine failure)."""
    star = "SELECT * FROM sales.orders ORDER BY 1 LIMIT 2"
    before, planned = run(workspace, "eu_marketing_analyst", star, mesh_copy)
    assert planned and before
    edit(
        mesh_copy / "sales" / "products" / "order_history.yaml",
        "      - {name: o_comment, type: varchar,",
        "      - {name: o_extra, type: varchar, classification: internal}\n"
        "      - {name: o_comment, type: varchar,",
    )
    with pytest.raises(QueryError, match="column 'o_extra' is declared") as refused:
        run(workspace, "eu_marketing_analyst", star, mesh_copy)  # was: served the stored rows
    assert "meshsim build" in (refused.value.hint or "")


def test_any_edit_of_a_read_domains_files_plans_again_and_other_domains_do_not(
    workspace: Path, mesh_copy: Path
):
    """The stored plan of a query over sales.orders is kept while the sales domain's spec
    files are as they were: an edit of another domain's product file leaves it in use,
    a new product file or any edit in sales plans it again."""
    count = "SELECT count(*) FROM sales.orders"
    rows, planned = run(workspace, "governance_admin", count, mesh_copy)
    assert planned and run(workspace, "governance_admin", count, mesh_copy) == (rows, False)
    supply = mesh_copy / "supply" / "products" / "supply_catalog.yaml"
    supply.write_text(supply.read_text() + "\n# an unrelated comment\n")
    assert run(workspace, "governance_admin", count, mesh_copy) == (rows, False)
    sales = mesh_copy / "sales" / "products" / "order_history.yaml"
    sales.write_text(sales.read_text() + "\n# a comment\n")
    assert run(workspace, "governance_admin", count, mesh_copy) == (rows, True)
    assert run(workspace, "governance_admin", count, mesh_copy) == (rows, False)
    shutil.copy(sales, sales.with_name("order_history_copy.yaml"))
    (sales.parent / "order_history_copy.yaml").unlink()  # added and removed: the folder changed
    assert run(workspace, "governance_admin", count, mesh_copy) == (rows, True)
