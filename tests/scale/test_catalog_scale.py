"""Issue 17: the catalog's commands cost what they touch. Each test pins a count (spec scans,
directories listed, grants tested, requests read), never a wall-clock time, on a mesh made by
the benchmark's generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshsim.bench.meshgen import GeneratedMesh, generate_mesh
from tests.scale.test_complexity import CONSUMERS, _counting


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedMesh, Path]:
    from meshsim.bench.meshscale import _seed_subscriptions
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("catalog-scale")
    generated = generate_mesh(root / "mesh", 30, CONSUMERS)
    Mesh.build(generated.root, root / "ws", scale=1).close()
    _seed_subscriptions(root / "ws", generated, 300)  # 20 per product
    return generated, root / "ws"


def _owner(product: str) -> str:
    return f"{product.split('.')[0]}-team"


def test_each_catalog_command_checks_the_spec_files_once(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """show checked for changed spec files five times (a stat of every spec file each), a
    request or an approval twice: each now checks once."""
    import meshsim
    from meshsim.spec.watch import SpecFiles

    generated, workspace = built
    product = generated.sample_product
    with meshsim.open(str(workspace)) as mesh:
        mesh.show(product)  # the first calls load the specs (a show's and the workflow's)
        assert mesh.spec.name
        scans = _counting(monkeypatch, SpecFiles, "changed")
        mesh.show(product)
        assert scans[0] == 1
        request = mesh.catalog.request("c0039", product, "why")
        assert scans[0] == 2
        mesh.catalog.approve(request.id, by=_owner(product))
        assert scans[0] == 3
        mesh.products(limit=5)  # the operator's page needs no spec at all
        assert scans[0] == 3


def test_a_spec_scan_lists_only_the_folders_that_hold_spec_files(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan entered every folder two levels down, the generated tables' data under
    ``_data/`` too; now it lists the mesh folder and each domain's ``products``."""
    import os

    import meshsim.spec.loader as loader

    generated, _ = built
    listed: list[str] = []
    original = os.scandir

    def counted(path: Any) -> Any:
        listed.append(str(path))
        return original(path)

    monkeypatch.setattr(loader.os, "scandir", counted)
    loader.spec_fingerprint(generated.root)
    folders = [p for p in generated.root.iterdir() if p.is_dir()]  # 3 domains and _data
    assert len(listed) == 1 + len(folders), listed  # each one's products, not its subtree


def test_a_spec_scan_sees_each_kind_of_change(tmp_path: Path) -> None:
    from meshsim.spec.loader import spec_fingerprint

    generated = generate_mesh(tmp_path / "mesh", 10, 4)
    root = generated.root
    seen = {spec_fingerprint(root)}
    product = root / "d0000" / "products" / "p0.yaml"
    for change in (
        lambda: product.write_text(product.read_text() + "\n"),  # edited in place
        lambda: (product.parent / "extra.yaml").write_text("name: extra\n"),  # added
        lambda: (root / "d0000" / "domain.yaml").write_text(
            (root / "d0000" / "domain.yaml").read_text() + "\n"
        ),
        lambda: (root / "mesh.yaml").write_text((root / "mesh.yaml").read_text() + "\n"),
        lambda: (root / "d9999").mkdir(),  # a new domain folder
    ):
        change()
        stamp = spec_fingerprint(root)
        assert stamp not in seen
        seen.add(stamp)
    table_data = next(p for p in (root / "_data").iterdir() if p.is_dir())
    (table_data / "scratch.yaml").write_text("not a spec file\n")
    assert spec_fingerprint(root) in seen  # data beside the spec is not the spec


def test_a_request_tests_only_the_grants_that_exclude_columns(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auto-approval asked every grant of mesh.yaml, for every column in scope, whether it
    selects the consumer (12,006 tests per request at 1,000 consumers): only grants that
    exclude columns can withhold one."""
    import meshsim
    import meshsim.policy.access as access

    generated, workspace = built
    with meshsim.open(str(workspace)) as mesh:
        mesh.catalog.request("c0001", generated.sample_product, "warm up")
        tested = _counting(monkeypatch, access, "selects")
        mesh.catalog.request("c0002", generated.sample_product, "why")
    assert tested[0] <= 2, tested[0]


def test_show_reads_its_products_approved_requests_only(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """show read every request of the product (its decided history too) and merged the
    approved ones into every grant of mesh.yaml: it reads the approved ones through the
    (product, state) index, and indexes the grants that can cover the product."""
    import meshsim
    from meshsim.catalog.models import Request
    from meshsim.policy.index import PolicyIndex

    generated, workspace = built
    product = generated.sample_product
    with meshsim.open(str(workspace)) as mesh:
        for consumer in ("c0003", "c0004", "c0005"):
            made = mesh.catalog.request(consumer, product, "to reject")
            if made.state == "pending":
                mesh.catalog.reject(made.id, by=_owner(product), comment="no")
        approved = [
            r for r in mesh.catalog.requests() if r.product == product and r.state == "approved"
        ]
        mesh.show(product)
        read = [0]
        original = Request.from_row.__func__  # type: ignore[attr-defined]

        def counted(cls: type[Request], row: Any) -> Request:
            read[0] += 1
            return original(cls, row)

        monkeypatch.setattr(Request, "from_row", classmethod(counted))
        indexed: list[int] = []
        init = PolicyIndex.__init__

        def counted_index(
            self: PolicyIndex, spec: Any, policies: Any, base: PolicyIndex | None = None
        ) -> None:
            # what this index itself indexes: the policies after its base's
            indexed.append(len(policies.grants) - (len(base.policies.grants) if base else 0))
            init(self, spec, policies, base)

        monkeypatch.setattr(PolicyIndex, "__init__", counted_index)
        details = mesh.show(product)
    assert read[0] == len(approved), (read[0], len(approved))
    assert len(details.subscribers) >= len({r.consumer for r in approved})
    assert indexed and max(indexed) < CONSUMERS, indexed  # not all 2 x 40 grants of mesh.yaml


def test_access_checks_the_spec_files_once(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving gate asked for the spec once per table of the access listing, and each ask
    stat'ed every spec file read: quadratic in the mesh (802 s at 10,000 tables)."""
    import meshsim
    from meshsim.spec.watch import SpecFiles

    generated, workspace = built
    with meshsim.open(str(workspace)) as mesh:
        mesh.access(generated.sample_consumer)  # the first call loads the spec
        scans = _counting(monkeypatch, SpecFiles, "changed")
        listing = mesh.access(generated.sample_consumer)
    assert len(listing) >= generated.tables
    assert scans[0] == 1


def test_show_request_and_approve_import_no_sql_compiler(
    built: tuple[GeneratedMesh, Path], tmp_path: Path
) -> None:
    """Issue 17: the first ``show`` in a process imported sqlglot (230 ms) to list the
    stored quality results; nor does a request or an approval need it."""
    import shutil
    import subprocess
    import sys

    generated, workspace = built
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)
    product = generated.sample_product
    code = (
        "import sys, meshsim\n"
        f"mesh = meshsim.open({str(copy)!r})\n"
        f"mesh.show({product!r})\n"
        f"made = mesh.catalog.request('c0039', {product!r}, 'why')\n"
        f"mesh.catalog.approve(made.id, by={_owner(product)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlglot')[:3])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
