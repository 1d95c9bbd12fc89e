"""What every export shares: the command line, subscriptions from the catalog, storage
locations, and no cloud SDK at export time."""

from __future__ import annotations

import json
import sys

import pytest

from meshsim.mesh import Mesh
from tests.cli.clihelpers import assert_clean_error, run
from tests.platforms.seen import check_against_matrix
from tests.platforms.test_lakeformation import _calls, _withheld, seen_by_lake_formation
from tests.platforms.test_trino import seen_by_trino
from tests.platforms.test_unity import seen_by_unity

TARGETS = ("lakeformation", "unity-catalog", "trino")


@pytest.mark.parametrize("target", TARGETS)
def test_the_command_writes_the_files_and_counts_what_it_cannot_express(
    capsys, built_workspace, tmp_path, target
) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "export", target, "--workspace", str(built_workspace), "--out", str(out),
        "--storage-root", "s3://lake/retail",
    )  # fmt: skip
    assert code == 0, err
    assert f"wrote {out}" in stdout
    assert "cannot express, each with the safe alternative taken: see" in stdout
    assert any(out.iterdir())


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--location", "sales"], ["'sales' is not DOMAIN=URI"]),
        (["--location", "nosuch=s3://x"], ["no domain 'nosuch'", "customer, sales, supply"]),
    ],
)
def test_bad_locations_are_one_clear_error(capsys, built_workspace, tmp_path, args, needles):
    code, _, err = run(
        capsys, "export", "trino", "--workspace", str(built_workspace), "--out", str(tmp_path),
        *args,
    )  # fmt: skip
    assert_clean_error(code, err, *needles)
    assert not list(tmp_path.iterdir())


def test_export_alone_names_the_platforms(capsys) -> None:
    code, _, err = run(capsys, "export")
    assert_clean_error(code, err, "lakeformation, unity-catalog or trino")


def test_without_a_workspace_it_says_to_build(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "export", "unity-catalog", "--workspace", str(tmp_path / "none"))
    assert_clean_error(code, err)


def test_exports_need_no_cloud_sdk(example_mesh, tmp_path, monkeypatch) -> None:
    for module in ("boto3", "botocore", "moto", "cfnlint", "jsonschema"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it now raises
    for target in TARGETS:
        example_mesh.export_governance(target, tmp_path / target)
    template = (tmp_path / "lakeformation" / "template.yaml").read_text()
    assert "s3://CHANGE-ME-meshsim-retail/customer" in template  # the default is a placeholder


def test_attribute_conditions_and_admins_are_reported(example_mesh, tmp_path) -> None:
    for target in TARGETS:
        report = example_mesh.export_governance(target, tmp_path / target)
        policies = {lim.policy for lim in report.limitations}
        assert {"row filter 'regional_orders'", "admin"} <= policies, target


@pytest.fixture(scope="module")
def subscribed(tmp_path_factory, example_build):
    """A copy of the example workspace where external_partner subscribed to the customer
    profiles, narrowed by the owner to one nation, until a date."""
    import shutil

    workspace = tmp_path_factory.mktemp("subscribed") / "ws"
    shutil.copytree(example_build, workspace)
    mesh = Mesh.open(workspace)
    made = mesh.catalog.request(
        "external_partner", "customer.customer_profiles", "segments", expires="2099-01-31"
    )
    mesh.catalog.approve(made.id, "customer-data", row_filter="c_nationkey = 7")
    yield mesh, made.id
    mesh.close()


def test_subscriptions_are_exported_with_their_row_filter_and_expiry(subscribed, tmp_path):
    mesh, request_id = subscribed
    trino = mesh.export_governance("trino", tmp_path / "trino")
    rules = json.loads((tmp_path / "trino" / "rules.json").read_text())
    assert check_against_matrix(mesh, seen_by_trino(rules, mesh, "retail")) > 0
    [rule] = [
        r for r in rules["tables"]
        if r.get("user") == "^external_partner$" and r.get("table") == "^customer$"
    ]  # fmt: skip
    assert rule["filter"] == '"c_nationkey" = 7'

    lf = mesh.export_governance("lakeformation", tmp_path / "lf")
    calls = _calls(tmp_path / "lf")
    seen = seen_by_lake_formation(calls, mesh)
    assert check_against_matrix(mesh, seen, withheld=_withheld(lf), masks_expressible=False)
    filters = [
        c["params"]["TableData"] for c in calls if c["operation"] == "create_data_cells_filter"
    ]
    [data] = [f for f in filters if f["TableName"] == "customer"]
    assert data["RowFilter"] == {"FilterExpression": '"c_nationkey" = 7'}
    assert "c_name" not in data["ColumnNames"]  # masked for the partner: excluded

    unity = mesh.export_governance("unity-catalog", tmp_path / "uc")
    sql = (tmp_path / "uc" / "governance.sql").read_text()
    assert check_against_matrix(mesh, seen_by_unity(sql, mesh)) > 0

    for report in (trino, lf, unity):
        [expiry] = [lim for lim in report.limitations if lim.policy == f"subscription {request_id}"]
        assert expiry.consumer == "external_partner" and "2099-02-01" in expiry.instead


@pytest.mark.parametrize(
    ("target", "args", "needles"),
    [
        ("trino", ["--storage-root", ""], ["--storage-root ''", "scheme://bucket/prefix"]),
        ("unity-catalog", ["--storage-root", "not a uri"], ["'not a uri' is not a storage URI"]),
        (
            "unity-catalog",
            ["--location", "sales=s3://a b"],
            ["--location sales='s3://a b'", "no spaces"],
        ),
        ("unity-catalog", ["--location", "sales=s3://a/x'y"], ["s3://a/x'y", "quotes"]),
        (
            "lakeformation",
            ["--storage-root", "gs://bucket/m"],
            ["'gs://bucket/m' is not an s3:// URI"],
        ),
        (
            "lakeformation",
            ["--storage-root", "s3://"],
            ["'s3://' is not a storage URI", "scheme://bucket/prefix"],
        ),
        ("trino", ["--catalog", ""], ["--catalog ''", "lower-case letters"]),
        ("trino", ["--catalog", "a b"], ["--catalog 'a b'", "lower-case letters"]),
        ("trino", ["--catalog", "Mesh.*"], ["--catalog 'Mesh.*'"]),
        ("trino", ["--catalog", "Retail"], ["--catalog 'Retail'"]),
        ("trino", ["--policy-user", ""], ["--policy-user ''"]),
        ("trino", ["--policy-user", "a b"], ["--policy-user 'a b'"]),
    ],
)
def test_bad_storage_roots_catalogs_and_users_are_one_clear_error(
    capsys, built_workspace, tmp_path, target, args, needles
) -> None:
    code, _, err = run(
        capsys, "export", target, "--workspace", str(built_workspace), "--out", str(tmp_path),
        *args,
    )  # fmt: skip
    assert_clean_error(code, err, *needles)
    assert not list(tmp_path.iterdir())


def test_options_of_another_target_are_refused_not_ignored(example_mesh, tmp_path) -> None:
    from meshsim.errors import MeshsimError

    with pytest.raises(MeshsimError, match="catalog"):
        example_mesh.export_governance("unity-catalog", tmp_path, catalog="retail")
    with pytest.raises(MeshsimError, match="policy_user"):
        example_mesh.export_governance("lakeformation", tmp_path, policy_user="svc")
    assert not list(tmp_path.iterdir())
