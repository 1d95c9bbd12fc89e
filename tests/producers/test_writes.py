"""Producers write (issue 10): writes and deletes make new published versions that consumers
read without a copy; time travel reaches the old ones; bad input writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshsim import identity
from meshsim.errors import IdentityError, StorageError, WriteError
from meshsim.mesh import Mesh
from meshsim.storage import delta
from tests.conftest import edit

REGION = "customer.region"
COUNT = "SELECT count(*) FROM customer.region"
# eu_marketing_analyst reads customer.region through its grant: the consumer's view
ANALYST = "eu_marketing_analyst"


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _latest(mesh: Mesh, ref: str = REGION) -> int:
    return delta.latest_version(mesh.locate(ref), table=ref)


def test_append_from_csv_is_published_and_old_versions_stay_reachable(workspace, tmp_path):
    mesh = Mesh.open(workspace)
    source = _csv(tmp_path / "r.csv", "r_regionkey,r_name,r_comment\n5,ANTARCTICA,cold\n")
    result = mesh.write(REGION, source, mode="append")
    assert (result.operation, result.previous, result.version, result.rows) == (
        "append",
        0,
        1,
        6,
    )
    assert mesh.sql(ANALYST, COUNT).fetchall() == [(6,)]  # no copy, no rebuild
    travel = "SELECT count(*) FROM customer.region AT (VERSION => 0)"
    assert mesh.sql(ANALYST, travel).fetchall() == [(5,)]
    assert [(h.version, h.published) for h in mesh.history(REGION)] == [
        (1, "current"),
        (0, "earlier"),
    ]
    # the catalog records the publication, with the writer and what it wrote
    versions = mesh.catalog.show("customer.customer_profiles").versions
    assert [v["tables"][REGION] for v in versions] == [1, 0]
    [record] = [
        r
        for r in mesh.catalog.audit(limit=5)
        if r["kind"] == "publish" and "append customer.region" in (r["reason"] or "")
    ]
    assert record["principal"] == "customer-data" and "version 1" in record["reason"]


def test_overwrite_from_parquet_and_from_a_folder_of_ndjson(workspace, tmp_path):
    mesh = Mesh.open(workspace)
    table = pa.table({"r_regionkey": [7, 8], "r_name": ["A", "B"], "r_comment": ["x", None]})
    pq.write_table(table, tmp_path / "r.parquet")
    assert mesh.write(REGION, tmp_path / "r.parquet", mode="overwrite").rows == 2
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.ndjson").write_text('{"r_regionkey": 9, "r_name": "C", "r_comment": "y"}\n')
    (folder / "b.ndjson").write_text('{"r_regionkey": 10, "r_name": "D", "r_comment": null}\n')
    (folder / "_SUCCESS").write_text("")
    assert mesh.write(REGION, folder, mode="append").rows == 4
    keys = "SELECT r_regionkey FROM customer.region ORDER BY 1"
    assert mesh.sql(ANALYST, keys).fetchall() == [(7,), (8,), (9,), (10,)]


def test_upsert_updates_by_primary_key_and_inserts_the_rest(workspace):
    mesh = Mesh.open(workspace)
    rows = pa.table(
        {"r_regionkey": [0, 5], "r_name": ["AFRICA", "ANTARCTICA"], "r_comment": ["new", "cold"]}
    )
    assert mesh.write(REGION, rows, mode="upsert").rows == 6
    query = (
        "SELECT r_regionkey, r_comment FROM customer.region WHERE r_regionkey IN (0, 5) ORDER BY 1"
    )
    assert mesh.sql(ANALYST, query).fetchall() == [(0, "new"), (5, "cold")]


def test_upsert_without_a_primary_key_is_refused_naming_the_fix(workspace, mesh_copy):
    product = mesh_copy / "customer" / "products" / "customer_profiles.yaml"
    edit(product, "    primary_key: [r_regionkey]\n", "")
    mesh = Mesh.open(workspace, mesh_dir=mesh_copy)
    rows = pa.table({"r_regionkey": [0], "r_name": ["AFRICA"], "r_comment": ["new"]})
    with pytest.raises(WriteError) as info:
        mesh.write(REGION, rows, mode="upsert")
    assert "declares no primary key" in info.value.message
    assert "primary_key: [COLUMN, ...]" in info.value.hint and str(product) in info.value.hint
    assert _latest(mesh) == 0


def test_upsert_refuses_repeated_and_null_keys(workspace):
    mesh = Mesh.open(workspace)
    rows = pa.table({"r_regionkey": [1, 1], "r_name": ["A", "B"], "r_comment": ["x", "y"]})
    with pytest.raises(WriteError, match="repeat a primary key"):
        mesh.write(REGION, rows, mode="upsert")
    assert _latest(mesh) == 0


def test_a_schema_mismatch_reports_every_problem_and_writes_nothing(workspace, tmp_path):
    mesh = Mesh.open(workspace)
    source = _csv(tmp_path / "bad.csv", "r_regionkey,r_nam,extra\nx,A,1\n")
    with pytest.raises(WriteError) as info:
        mesh.write(REGION, source, mode="append")
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert "column 'r_regionkey' (bigint): line 2: could not convert string \"x\"" in problems[0]
    assert "column 'r_name' (varchar) is missing (the input has 'r_nam')" in problems[1]
    assert "column 'r_comment' (varchar) is missing" in problems[2]
    assert "'r_nam', 'extra' are not declared" in problems[3]
    nulls = pa.table({"r_regionkey": [None], "r_name": ["A"], "r_comment": ["x"]})
    with pytest.raises(WriteError, match="declared not nullable but has 1 NULL"):
        mesh.write(
            REGION,
            nulls.cast(
                pa.schema(
                    [("r_regionkey", pa.int64())]
                    + [("r_name", pa.string()), ("r_comment", pa.string())]
                )
            ),
        )
    precise = pa.table({"c": pa.array([1.234])})
    with pytest.raises(WriteError, match="more than 2 decimal places"):
        mesh.write("customer.customer", precise.rename_columns(["c_acctbal"]))
    assert _latest(mesh) == 0 and mesh.sql(ANALYST, COUNT).fetchall() == [(5,)]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing.csv", "does not exist"),
        ("notes.txt", "not a file meshsim can read"),
        ("broken.parquet", "cannot read"),
        ("r*.csv", "glob character"),
    ],
)
def test_unreadable_inputs_are_refused(workspace, tmp_path, path, message):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.parquet").write_text("not parquet")
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError, match=message):
        mesh.write(REGION, tmp_path / path)
    assert _latest(mesh) == 0


def test_delete_where_makes_a_new_version(workspace):
    mesh = Mesh.open(workspace)
    result = mesh.delete(REGION, "r_name LIKE 'A%' AND r_regionkey BETWEEN 0 AND 3")
    assert result.detail == {"rows_deleted": 3} and result.version == 1  # AFRICA, AMERICA, ASIA
    assert mesh.sql(ANALYST, COUNT).fetchall() == [(2,)]
    travel = "SELECT count(*) FROM customer.region AT (VERSION => 0)"
    assert mesh.sql(ANALYST, travel).fetchall() == [(5,)]
    with mesh.writes() as batch:  # line items go with their orders (rule lines_have_orders)
        batch.delete("sales.lineitem", "l_orderkey < 1000")
        orders = batch.delete("sales.orders", "o_orderkey < 1000 OR o_totalprice IS NULL")
    assert (
        orders.detail["rows_deleted"] > 0 and orders.rows == 15000 - orders.detail["rows_deleted"]
    )


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("r_regionkey = (SELECT 1)", "may not contain a subquery"),
        ("read_csv('/etc/passwd') = 1", "may not contain the function read_csv()"),
        ("r_regionkey IN (SELECT r_regionkey FROM customer.region)", "may not contain"),
        ("r_regon = 1", "column 'r_regon' is not defined; did you mean 'r_regionkey'?"),
        ("region.r_regionkey = 1", "without a table"),
        ("r_regionkey + 1", "is not a condition"),
        ("r_regionkey = 'abc'", "does not run on its columns"),
        ("r_regionkey = 1; DROP TABLE x", "is not valid SQL"),
        ("r_name = 'open", "is not valid SQL"),
        ("", "is empty"),
    ],
)
def test_a_bad_where_is_refused_and_deletes_nothing(workspace, where, message):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mesh.delete(REGION, where)
    assert _latest(mesh) == 0


def test_only_the_owner_may_write(workspace, mesh_copy, monkeypatch):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError, match="only its product's owner or its domain's owner team"):
        mesh.delete(REGION, "r_regionkey = 1", by="sales-ops")
    edit(
        mesh_copy / "customer" / "domain.yaml",
        "owner_team: customer-data\n",
        "owner_team: customer-data\nowner_os_users: [alice]\n",
    )
    bound = Mesh.open(workspace, mesh_dir=mesh_copy)
    monkeypatch.setattr(identity, "os_user_source", lambda: "mallory")
    with pytest.raises(IdentityError, match="bound to OS user alice"):
        bound.delete(REGION, "r_regionkey = 1", by="customer-data")
    monkeypatch.setattr(identity, "os_user_source", lambda: "alice")
    assert bound.delete(REGION, "r_regionkey = 1", by="customer-data").version == 1


def test_a_multi_table_write_is_published_all_at_once_or_not_at_all(workspace):
    mesh = Mesh.open(workspace)
    both = "SELECT (SELECT count(*) FROM customer.region), (SELECT count(*) FROM customer.nation)"
    with mesh.writes(by="customer-data") as batch:
        batch.delete(REGION, "r_regionkey = 4")
        batch.delete("customer.nation", "n_regionkey = 4")
        assert mesh.sql("governance_admin", both).fetchall() == [(5, 25)]  # not yet
    assert mesh.sql("governance_admin", both).fetchall() == [(4, 20)]  # both at once
    with pytest.raises(WriteError), mesh.writes() as batch:
        batch.delete(REGION, "r_regionkey = 3")
        batch.delete("customer.nation", "no_such_column = 3")
    assert mesh.sql("governance_admin", both).fetchall() == [(4, 20)]
    # rolled back: the delete was never shown to anyone; the restore (same rows) is published
    rolled_back = [(h.operation, h.published) for h in mesh.history(REGION)[:2]]
    assert rolled_back == [("RESTORE", "current"), ("DELETE", "never")]
    assert mesh.vacuum(REGION, dry_run=True)[0].detail["files"] == []  # nothing left pending
    assert mesh.delete(REGION, "r_regionkey = 2").rows == 3  # builds on the published version


def test_a_write_after_a_killed_build_does_not_publish_the_half_built_table(workspace):
    mesh = Mesh.open(workspace)
    location = mesh.locate(REGION)
    half = pa.table({"r_regionkey": [99], "r_name": ["HALF"], "r_comment": ["x"]})
    delta.write(location, half, mode="overwrite", table=REGION)  # committed, never published
    result = mesh.delete(REGION, "r_regionkey = 0")
    assert mesh.sql(
        ANALYST, "SELECT min(r_regionkey), count(*) FROM customer.region"
    ).fetchall() == [(1, 4)]
    assert result.previous == 0 and result.version == 3  # 1: the half build, 2: restored


def test_vacuum_keeps_the_published_version_and_the_retention(workspace, tmp_path):
    mesh = Mesh.open(workspace)
    rows = pa.table({"r_regionkey": [1], "r_name": ["A"], "r_comment": ["x"]})
    mesh.write(REGION, rows, mode="overwrite")
    [kept] = mesh.vacuum(REGION)  # the default week keeps version 0's file for time travel
    assert kept.detail["files"] == []
    [dry] = mesh.vacuum(REGION, retain_hours=0, dry_run=True)
    assert len(dry.detail["files"]) == 1 and dry.version == 1
    travel = "SELECT count(*) FROM customer.region AT (VERSION => 0)"
    assert mesh.sql(ANALYST, travel).fetchall() == [(5,)]  # a dry run deletes nothing
    # an unpublished overwrite: deltalake would keep only its files, so vacuum refuses
    delta.write(mesh.locate(REGION), rows, mode="overwrite", table=REGION)
    with pytest.raises(WriteError, match="could delete files of its published version 1"):
        mesh.vacuum(REGION, retain_hours=0)
    assert mesh.sql(ANALYST, COUNT).fetchall() == [(1,)]
    mesh.delete(REGION, "r_regionkey = 42")  # a write discards the unpublished version
    [done] = mesh.vacuum(REGION, retain_hours=0)
    assert len(done.detail["files"]) == 2
    assert mesh.sql(ANALYST, COUNT).fetchall() == [(1,)]  # the published version still reads
    with pytest.raises(StorageError, match="version 0 can no longer be read: the vacuum at"):
        mesh.sql(ANALYST, travel)  # out of the retention, said as such (not as damage)
    assert mesh.history(REGION)[0].published == "current"


def test_optimize_compacts_and_keeps_the_rows(workspace):
    mesh = Mesh.open(workspace)
    for key in (5, 6, 7):
        row = pa.table({"r_regionkey": [key], "r_name": ["N"], "r_comment": ["c"]})
        mesh.write(REGION, row)
    assert len(mesh.snapshot(REGION).files) == 4
    [result] = mesh.optimize(REGION)
    assert result.detail == {"numFilesAdded": 1, "numFilesRemoved": 4}
    assert len(mesh.snapshot(REGION).files) == 1 and mesh.sql(ANALYST, COUNT).fetchall() == [(8,)]
    [zordered] = mesh.optimize("customer.customer", zorder=["c_nationkey"])
    assert zordered.rows == 1500
    with pytest.raises(WriteError, match="column 'c_natonkey' is not defined"):
        mesh.optimize("customer.customer", zorder=["c_natonkey"])


def test_the_commands(capsys, workspace, tmp_path):
    from meshsim.cli import main

    ws = ["--workspace", str(workspace)]
    source = _csv(tmp_path / "r.csv", "r_regionkey,r_name,r_comment\n5,ANTARCTICA,cold\n")
    code = main(
        ["write", REGION, "--from", str(source), "--mode", "upsert", *ws, "--format", "json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)[0]["version"] == 1
    assert main(["delete", REGION, "--where", "r_regionkey = 5", *ws]) == 0
    assert main(["optimize", REGION, *ws]) == 0
    assert main(["vacuum", "--dry-run", "--retain-hours", "0", *ws]) == 0
    capsys.readouterr()
    assert main(["delete", REGION, "--where", "r_regionkey = (SELECT 1)", *ws]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: the --where predicate") and "Traceback" not in err
    assert main(["write", REGION, "--from", str(source), "--mode", "merge", *ws]) == 2
    assert main(["history", REGION, *ws, "--format", "json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [h["published"] for h in history][:1] == ["current"]


def test_a_write_on_a_read_only_workspace_is_one_error_line(workspace):
    from tests.workspace.conftest import run_readonly

    where = ["--where", "r_regionkey = 1", "--workspace", str(workspace)]
    result = run_readonly(workspace, "delete", REGION, *where)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_a_catalog_that_cannot_record_the_write_says_the_write_is_published(workspace, monkeypatch):
    from meshsim.errors import CatalogError

    mesh = Mesh.open(workspace)

    def refuse(*args, **kwargs):
        raise CatalogError("database is locked", hint="retry")

    monkeypatch.setattr(mesh.catalog, "publish", refuse)
    with pytest.raises(CatalogError, match="the write is published") as info:
        mesh.delete(REGION, "r_regionkey = 1")
    assert "meshsim publish customer.customer_profiles" in info.value.hint
    assert mesh.sql(ANALYST, COUNT).fetchall() == [(4,)]
