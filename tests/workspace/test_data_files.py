"""Damaged data files (deleted, cut short, garbled) are errors naming the table and the file,
and a build rewrites a damaged generated table instead of calling it unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.errors import StorageError
from meshsim.mesh import Mesh
from tests.cli.clihelpers import run
from tests.conftest import EXAMPLE_MESH

COUNT = "SELECT count(*) AS n FROM sales.orders"


def data_file(workspace: Path, table: str = "sales/orders") -> Path:
    return sorted((workspace / "accounts" / table).glob("*.parquet"))[0]


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbled":  # same size, footer overwritten
        path.write_bytes(data[:-200] + b"\x00garbage" * 25)
    elif how == "log-garbled":
        log = path.parent / "_delta_log" / "00000000000000000000.json"
        log.write_text("{ not json")


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbled"])
def test_damaged_file_is_named_in_the_query_error(capsys, workspace: Path, how: str):
    path = data_file(workspace)
    damage(path, how)
    code, out, err = run(
        capsys, "sql", "--workspace", str(workspace), "--as", "governance_admin", COUNT
    )
    assert code == 1, out
    assert err.startswith("Error: table 'sales.orders' version 0 has 1 damaged data file(s): ")
    assert f"'{path.name}'" in err  # by name: folders of partitioned tables hold values
    assert str(path.parent) not in err
    assert "meshsim doctor" in err


def test_damaged_data_pages_are_named_too(capsys, workspace: Path):
    """Same size, footer intact, data pages zeroed: DuckDB fails decoding them (review
    finding: a catch-all 'the query failed while running (InvalidInputException)')."""
    path = data_file(workspace)
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 2000] = bytes(2000)
    path.write_bytes(bytes(data))
    code, out, err = run(
        capsys,
        "sql",
        "--workspace",
        str(workspace),
        "--as",
        "governance_admin",
        "SELECT * FROM sales.orders ORDER BY ALL LIMIT 1",
    )
    assert code == 1, out
    assert err.startswith(
        f"Error: table 'sales.orders' version 0 has 1 damaged data file(s): '{path.name}' has "
        "data pages that cannot be decoded"
    ), err
    assert str(path.parent) not in err


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_file_damaged_after_it_was_read_is_named_too(workspace: Path, how: str):
    with Mesh.open(workspace) as mesh:
        admin = mesh.session("governance_admin")
        assert admin.sql(COUNT).fetchall() == [(15000,)]
        path = data_file(workspace)
        damage(path, how)
        with pytest.raises(StorageError, match="damaged data file") as caught:
            admin.sql(COUNT)
        assert caught.value.table == "sales.orders" and caught.value.path == str(path)
        assert mesh.audit(limit=1, as_consumer="governance_admin")[0]["decision"] == "error"


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbled", "log-garbled"])
def test_build_rewrites_a_damaged_generated_table(workspace: Path, how: str):
    damage(data_file(workspace), how)
    with Mesh.build(EXAMPLE_MESH, workspace, scale=0.01) as mesh:
        actions = {t.ref: t.action for t in mesh.last_build.tables}
        assert actions.pop("sales.orders") == "repaired"
        # derived again from the repaired table's new version; a log that does not load is
        # moved aside and the table written anew as version 0, the version it derived from
        derived = "unchanged" if how == "log-garbled" else "written"
        assert actions.pop("sales.customer_revenue") == derived
        assert set(actions.values()) == {"unchanged"}
        assert mesh.sql("governance_admin", COUNT).fetchall() == [(15000,)]
