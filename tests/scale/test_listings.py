"""Issue 17: listings page with --limit/--offset and say how many there are; the topology
picture of a large mesh is one node per domain, or the part about one domain or consumer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshsim.bench.meshgen import GeneratedMesh, generate_mesh
from tests.cli.clihelpers import run

CONSUMERS = 12


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedMesh, Path]:
    """Over the grouping threshold: 110 tables in 11 domains."""
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("listings")
    generated = generate_mesh(root / "mesh", 110, CONSUMERS)
    Mesh.build(generated.root, root / "ws", scale=1).close()
    return generated, root / "ws"


@pytest.mark.parametrize(
    ("command", "total"),
    [
        (["products"], 55),
        (["tables"], 110),
        (["domains"], 11),
        (["search", "generated"], 110 + 55),
        (["subscriptions"], None),
        (["access", "--as", "c0001"], None),  # every cell, the audit table's too
    ],
)
def test_every_listing_pages_and_counts(
    capsys: pytest.CaptureFixture[str],
    large: tuple[GeneratedMesh, Path],
    command: list[str],
    total: int | None,
) -> None:
    _, workspace = large
    args = [*command, "--workspace", str(workspace), "--format", "json"]
    code, out, err = run(capsys, *args, "--limit", "3", "--offset", "2")
    assert code == 0, err
    assert len(json.loads(out)) == 3
    code, everything, _ = run(capsys, *args)
    assert json.loads(out) == json.loads(everything)[2:5]
    count = total if total is not None else len(json.loads(everything))
    assert err.strip() == f"rows 3-5 of {count:,} (--offset 5 for more)"


@pytest.mark.parametrize(
    "command",
    [
        ["products"],
        ["tables"],
        ["domains"],
        ["search", "generated"],
        ["subscriptions"],
        ["access", "--as", "c0001"],
    ],
)
def test_a_page_past_the_end_says_it_is_empty(
    capsys: pytest.CaptureFixture[str], large: tuple[GeneratedMesh, Path], command: list[str]
) -> None:
    """Review finding: an empty page was captioned ``rows 10,000-10,000 of 55``."""
    _, workspace = large
    args = [*command, "--workspace", str(workspace), "--format", "json"]
    code, everything, _ = run(capsys, *args, "--limit", "100000")  # search shows 20 by default
    count = len(json.loads(everything))
    code, out, err = run(capsys, *args, "--limit", "2", "--offset", "10000")
    assert code == 0, err
    assert json.loads(out) == []
    assert err.strip() == f"no rows at --offset 10,000: past the end of {count:,}"


def test_paging_requests_and_audit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from meshsim.mesh import Mesh

    generated = generate_mesh(tmp_path / "mesh", 10, CONSUMERS)
    workspace = tmp_path / "ws"
    with Mesh.build(generated.root, workspace, scale=1) as mesh:
        for index in range(4):
            mesh.catalog.request(f"c000{index}", "d0000.p4", "a reason")
    ws = ["--workspace", str(workspace)]
    code, out, err = run(
        capsys, "requests", *ws, "--format", "json", "--limit", "2", "--offset", "1"
    )
    assert code == 0, err
    assert [r["consumer"] for r in json.loads(out)] == ["c0001", "c0002"]
    assert err.strip() == "rows 2-3 of 4 (--offset 3 for more)"
    code, out, err = run(
        capsys, "audit", "--as", "governance_admin", *ws, "--format", "json", "--limit", "2"
    )
    assert code == 0, err
    assert len(json.loads(out)) == 2
    assert err.strip() == "rows 1-2 (--offset 2 for more)"  # the log is not counted
    code, everything, _ = run(capsys, "audit", "--as", "governance_admin", *ws, "--format", "json")
    newest = json.loads(everything)
    code, out, err = run(
        capsys,
        "audit",
        "--as",
        "governance_admin",
        *ws,
        "--format",
        "json",
        "--limit",
        "2",
        "--offset",
        "1",
    )
    assert code == 0, err
    assert json.loads(out) == newest[1:3]
    offset = str(2**63 - 1)  # review finding: the error named the sum of limit and offset
    code, out, err = run(
        capsys, "audit", "--as", "governance_admin", *ws, "--limit", "5", "--offset", offset
    )
    assert code == 0, err
    assert err.strip() == "" and "no rows at --offset 9,223,372,036,854,775,807" in out


def test_a_large_mesh_is_drawn_by_domain(
    capsys: pytest.CaptureFixture[str], large: tuple[GeneratedMesh, Path]
) -> None:
    _, workspace = large
    code, out, err = run(capsys, "graph", "--workspace", str(workspace))
    assert code == 0, err
    assert "table_" not in out and "product_" not in out
    assert sum(1 for line in out.splitlines() if line.startswith("  domain_d00")) == 11
    assert "d0003 (d0003-team): 5 products, 10 tables" in out
    code, out, _ = run(capsys, "graph", "--workspace", str(workspace), "--no-group")
    assert out.count("[(") == 110  # every table


def test_graph_filters_by_domain_and_consumer(
    capsys: pytest.CaptureFixture[str], large: tuple[GeneratedMesh, Path]
) -> None:
    _, workspace = large
    ws = ["--workspace", str(workspace)]
    code, out, err = run(capsys, "graph", *ws, "--domain", "d0003")
    assert code == 0, err
    assert out.count("[(") == 10 and "subgraph domain_d0003" in out
    assert "subgraph domain_d0004" not in out
    code, out, err = run(capsys, "graph", *ws, "--consumer", "c0005")
    assert code == 0, err
    consumers = {line.split("(")[0].strip() for line in out.splitlines() if "([" in line}
    assert consumers == {"consumer_c0005"}
    code, _, err = run(capsys, "graph", *ws, "--domain", "d9999")
    assert code != 0 and "Error: domain 'd9999' is not in the mesh (domains: d0000" in err


def test_a_page_of_products_reads_only_that_page(
    large: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`products` parsed every published product and counted the subscribers of all of
    them before the CLI cut out its page: now SQLite pages, and only the page is parsed."""
    import meshsim
    from meshsim.catalog import views

    parsed = [0]
    original = views.Product.model_validate_json

    def counted(*args: Any, **kwargs: Any) -> Any:
        parsed[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(views.Product, "model_validate_json", counted)
    _, workspace = large
    with meshsim.open(str(workspace)) as mesh:
        page = mesh.products(limit=3, offset=2)
        assert parsed[0] == 3
        assert page.total == 55
        assert [r["product"] for r in page] == [r["product"] for r in mesh.products()][2:5]
