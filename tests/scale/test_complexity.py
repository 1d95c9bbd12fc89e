"""Issue 17: the work of a command follows what it touches. Each test pins a count (lookups,
policy selections, files parsed, versions published), never a wall-clock time, on meshes
made by the benchmark's generator (:mod:`meshsim.bench.meshgen`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshsim.bench.meshgen import GeneratedMesh, generate_mesh
from meshsim.checks import check_mesh
from meshsim.spec.loader import load_mesh

CONSUMERS = 40


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls = [0]
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def _mesh(tmp_path: Path, tables: int) -> GeneratedMesh:
    return generate_mesh(tmp_path / f"m{tables}", tables, CONSUMERS)


def _checked_count(tmp_path: Path, tables: int, owner: Any, name: str) -> int:
    spec = load_mesh(_mesh(tmp_path, tables).root)
    with pytest.MonkeyPatch.context() as patch:
        calls = _counting(patch, owner, name)
        problems = check_mesh(spec)
    assert not [p for p in problems if p.severity == "error"]
    return calls[0]


def test_validate_builds_each_table_spec_once(tmp_path: Path) -> None:
    """The PII lint looked tables up 41,001 times at 1,000 tables, each lookup rebuilding and
    scanning the whole list: lookups by name are now a dictionary built once per spec."""
    from meshsim.spec.loader import TableSpec

    for tables in (20, 60):
        made = _checked_count(tmp_path, tables, TableSpec, "__init__")
        assert made <= 2 * tables, (tables, made)


def test_policy_selection_grows_linearly_with_the_mesh(tmp_path: Path) -> None:
    """Every access pair tested every policy against the consumer (consumers x tables x
    policies); now each (consumer, policy) pair is decided once, and only a table's
    possible readers are resolved."""
    import meshsim.policy.access as access

    small = _checked_count(tmp_path, 20, access, "selects")
    large = _checked_count(tmp_path, 60, access, "selects")
    assert large <= 3 * 1.2 * small, (small, large)


def test_access_resolves_only_possible_readers(tmp_path: Path) -> None:
    """The lint, the gates and the mask checks resolve (consumer, table) pairs some grant
    can cover, not every consumer against every table."""
    import meshsim.policy.access as access

    small = _checked_count(tmp_path, 20, access, "resolve_access")
    large = _checked_count(tmp_path, 60, access, "resolve_access")
    assert large <= 3 * 1.2 * small, (small, large)
    assert large < CONSUMERS * 60 / 2, large  # far from every consumer x every table


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedMesh, Path]:
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("scale")
    generated = generate_mesh(root / "mesh", 30, CONSUMERS)
    Mesh.build(generated.root, root / "ws", scale=1).close()
    return generated, root / "ws"


def test_a_query_parses_only_its_domain(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import meshsim
    import meshsim.spec.lazy as lazy

    generated, workspace = built
    parsed: list[str] = []
    original = lazy.load_domain

    def counted(folder: Path, *args: Any) -> Any:
        domain = original(folder, *args)
        if domain is not None:
            parsed.append(domain.name)
        return domain

    monkeypatch.setattr(lazy, "load_domain", counted)
    with meshsim.open(str(workspace)) as mesh:
        session = mesh.session(generated.sample_consumer)
        assert session.sql(f"SELECT count(*) FROM {generated.sample_table}").fetchall() == [(3,)]
        assert parsed == ["d0000"]  # of three domains
        assert len(mesh.tables()) == 30  # a listing still sees every table
    assert sorted(parsed) == ["d0000", "d0001", "d0002"]  # each parsed once


def test_a_broken_file_of_another_domain_stops_validate_not_this_query(
    built: tuple[GeneratedMesh, Path], tmp_path: Path
) -> None:
    import shutil

    from meshsim.errors import SpecError
    from meshsim.mesh import Mesh, validate

    generated, workspace = built
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(generated.root, mesh_dir)
    broken = mesh_dir / "d0002" / "products" / "p0.yaml"
    broken.write_text(broken.read_text().replace("owner:", "owner_typo:", 1))
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        session = mesh.session(generated.sample_consumer)
        assert session.sql(f"SELECT count(*) FROM {generated.sample_table}").fetchall() == [(3,)]
        with pytest.raises(SpecError, match="owner_typo"):
            mesh.session("c0002").sql("SELECT count(*) FROM d0002.p0_t0")
    with pytest.raises(SpecError, match="owner_typo"):
        validate(mesh_dir)


def test_a_rebuild_publishes_only_the_changed_product(tmp_path: Path) -> None:
    from meshsim.mesh import Mesh
    from meshsim.workspace import Workspace

    generated = generate_mesh(tmp_path / "mesh", 30, CONSUMERS)
    workspace = tmp_path / "ws"
    Mesh.build(generated.root, workspace, scale=1).close()
    catalog = Workspace.at(workspace).governance / "catalog.db"

    def versions() -> int:
        with sqlite3.connect(catalog) as con:
            return int(con.execute("SELECT count(*) FROM product_versions").fetchone()[0])

    before = versions()
    product = generated.root / "d0001" / "products" / "p2.yaml"
    product.write_text(product.read_text().replace("Generated product", "Changed product"))
    Mesh.build(generated.root, workspace, scale=1).close()
    assert versions() == before + 1


def test_checking_a_row_filter_creates_only_the_tables_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approving a request with a row filter binds it on empty tables: those it reads, not
    one per mesh table."""
    import meshsim.engine as engine
    from meshsim.policy.binding import check_row_filter
    from meshsim.spec.models import RowFilter

    spec = load_mesh(_mesh(tmp_path, 60).root)
    setups: list[int] = []
    original = engine.bind_errors

    def counted(setup: list[str], statements: list[str]) -> Any:
        setups.append(len(setup))
        return original(setup, statements)

    monkeypatch.setattr(engine, "bind_errors", counted)
    row_filter = RowFilter(name="f", table="d0001.p1_t0", predicate="amount > 0")
    check_row_filter(spec, row_filter, {})
    assert setups == [2]  # its domain's schema and its table


def test_the_generated_policies_are_the_same_at_every_size(tmp_path: Path) -> None:
    """The generator merged grants per product on a small mesh and wrote one per consumer on
    a large one, so mesh.yaml grew with the table count and the benchmark's ratios compared
    different policy sets: now every size has the same policies per consumer."""
    small = load_mesh(_mesh(tmp_path, 10).root).policies
    large = load_mesh(_mesh(tmp_path, 200).root).policies
    assert len(small.grants) == len(large.grants) == 1 + 2 * CONSUMERS
    assert len(small.row_filters) == len(large.row_filters) == CONSUMERS // 4


def test_a_query_reads_only_its_consumers_subscriptions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After every catalog change the effective policies were rebuilt from every approved
    request in the catalog (one grant object per subscription, 100,000 of them at enterprise
    size) before a query could run: a query as one consumer reads that consumer's only."""
    import meshsim
    from meshsim.bench.meshscale import _seed_subscriptions
    from meshsim.catalog.models import Request
    from meshsim.mesh import Mesh

    generated = generate_mesh(tmp_path / "mesh", 10, CONSUMERS)
    workspace = tmp_path / "ws"
    Mesh.build(generated.root, workspace, scale=1).close()
    _seed_subscriptions(workspace, generated, 400)  # 10 per consumer, c0000 among them
    read = [0]
    original = Request.from_row.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Request], row: Any) -> Request:
        read[0] += 1
        return original(cls, row)

    monkeypatch.setattr(Request, "from_row", classmethod(counted))
    with meshsim.open(str(workspace)) as mesh:
        session = mesh.session(generated.sample_consumer)
        assert session.sql(f"SELECT count(*) FROM {generated.sample_table}").fetchall() == [(3,)]
    assert 0 < read[0] <= 10, read[0]


def _spec_paths_touched(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[Path]:
    """Every path under the mesh folder stat'ed, listed or scanned from now on."""
    import os

    touched: list[Path] = []
    for name in ("stat", "lstat", "scandir", "listdir"):
        original: Callable[..., Any] = getattr(os, name)

        def recording(path: Any = ".", *args: Any, _original: Any = original, **kw: Any) -> Any:
            if isinstance(path, str | os.PathLike) and Path(path).is_relative_to(root):
                touched.append(Path(path))
            return _original(path, *args, **kw)

        monkeypatch.setattr(os, name, recording)
    return touched


def test_a_query_stats_only_mesh_yaml_and_its_own_domain(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every access to the spec stat'ed every spec file of the mesh to see whether one had
    changed (twelve times in a first query: 43,000 stats at 1,000 tables): a query now
    checks the files its spec read, mesh.yaml and its domain's."""
    import meshsim

    generated, workspace = built
    root = generated.root.resolve()
    query = f"SELECT count(*) FROM {generated.sample_table}"
    with meshsim.open(str(workspace)) as mesh:
        session = mesh.session(generated.sample_consumer)
        touched = _spec_paths_touched(monkeypatch, root)
        assert session.sql(query).fetchall() == [(3,)]
        assert session.sql(query).fetchall() == [(3,)]
    assert touched
    # mesh.yaml, its domain's spec files and its table's data (the generator keeps table data
    # in the mesh folder), and names it looks up (the system domain, not a folder)
    mine = (root / "d0000", root / "_data" / "d0000" / "p0_t0")
    outside = {
        p
        for p in touched
        if p not in (root / "mesh.yaml", root / "meshsim", *mine)
        and not any(folder in p.parents for folder in mine)
    }
    assert not outside, "\n".join(map(str, sorted(outside)))
    assert len(touched) < 200, len(touched)  # the domain's few files, a few times over


def test_a_query_sees_edits_of_its_own_and_of_other_domains(
    built: tuple[GeneratedMesh, Path], tmp_path: Path
) -> None:
    """Watching only the files read is still watching every file a query depends on: an edit
    of its own domain reloads the spec; another domain is read as it is when first needed."""
    import shutil

    from meshsim.mesh import Mesh

    generated, workspace = built
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(generated.root, mesh_dir)
    query = f"SELECT count(*) FROM {generated.sample_table}"
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        session = mesh.session(generated.sample_consumer)
        assert session.sql(query).fetchall() == [(3,)]
        product = mesh_dir / "d0000" / "products" / "p0.yaml"
        product.write_text(product.read_text().replace("Generated product", "Edited product"))
        assert "Edited product" in mesh.spec.product("d0000.p0").product.description
        other = mesh_dir / "d0002" / "products" / "p0.yaml"
        other.write_text(other.read_text().replace("Generated product", "Another edit"))
        assert "Another edit" in mesh.spec.product("d0002.p0").product.description
        other.write_text(other.read_text().replace("Another edit", "A third edit"))
        assert "A third edit" in mesh.spec.product("d0002.p0").product.description
        assert session.sql(query).fetchall() == [(3,)]


def test_a_new_session_sees_an_owner_binding_added_in_any_domain(
    built: tuple[GeneratedMesh, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The identity check reads every file for owner bindings: a query need not stat them
    all again, but a new session must see a binding added to a domain nobody queried."""
    import shutil

    import meshsim.identity as identity
    from meshsim.errors import IdentityError
    from meshsim.mesh import Mesh

    generated, workspace = built
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(generated.root, mesh_dir)
    monkeypatch.setattr(identity, "os_user_source", lambda: "alice")
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        mesh.session(generated.sample_consumer)
        domain = mesh_dir / "d0002" / "domain.yaml"
        text = domain.read_text()
        team = f"owner_team: {generated.sample_consumer}\nowner_os_users: [bob]\n"
        domain.write_text(
            "\n".join(line for line in text.splitlines() if not line.startswith("owner_team"))
            + "\n"
            + team
        )
        with pytest.raises(IdentityError, match="bob"):
            mesh.session(generated.sample_consumer)


def test_serving_an_unchanged_product_resolves_no_access(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a product is withheld compared every consumer's access to its published and
    its current version (1,200 access pairs at 1,000 consumers) before the first query of
    each product, though nothing had changed: equal versions change nothing."""
    import meshsim
    import meshsim.contracts.effect as effect

    generated, workspace = built
    calls = _counting(monkeypatch, effect, "access_changes")
    with meshsim.open(str(workspace)) as mesh:
        session = mesh.session(generated.sample_consumer)
        assert session.sql(f"SELECT count(*) FROM {generated.sample_table}").fetchall() == [(3,)]
    assert calls[0] == 0


def test_a_catalog_change_indexes_only_the_subscriptions_it_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy index over mesh.yaml's grants was rebuilt for every catalog revision, and
    the consumer's subscriptions merged again: the spec's index is built once per spec; a
    change to the consumer's own subscriptions indexes only what they add; a change to
    another consumer's leaves this one's policies the same object."""
    import meshsim
    import meshsim.catalog.workflow as workflow
    from meshsim.mesh import Mesh
    from meshsim.policy.index import PolicyIndex

    generated = generate_mesh(tmp_path / "mesh", 20, CONSUMERS)
    workspace = tmp_path / "ws"
    Mesh.build(generated.root, workspace, scale=1).close()
    consumer, other = generated.sample_consumer, f"c{CONSUMERS - 1:04d}"
    subscribed = "SELECT count(*) FROM d0001.p1_t0"
    with meshsim.open(str(workspace)) as mesh:

        def approve(who: str, product: str) -> None:
            request = mesh.catalog.request(who, product, "why")
            mesh.catalog.approve(request.id, by=f"{product.split('.')[0]}-team")

        session = mesh.session(consumer)
        assert session.sql(f"SELECT count(*) FROM {generated.sample_table}").fetchall() == [(3,)]
        indexed = [0]  # grants an index was built over
        original = PolicyIndex.__init__

        def counted(self: PolicyIndex, spec: Any, policies: Any, base: Any = None) -> None:
            indexed[0] += len(policies.grants) - (len(base.policies.grants) if base else 0)
            original(self, spec, policies, *([base] if base else []))

        monkeypatch.setattr(PolicyIndex, "__init__", counted)
        for product in ("d0001.p1", "d0001.p2"):
            approve(consumer, product)
            assert session.sql(subscribed).fetchall() == [(3,)]
        assert len(mesh.spec.policies.grants) > 2 * CONSUMERS
        assert indexed[0] <= 2 * 3, indexed[0]  # its subscriptions' grants and the system's
        indexed[0] = 0
        merged = _counting(monkeypatch, workflow, "request_policies")
        approve(other, "d0001.p1")
        assert session.sql(subscribed).fetchall() == [(3,)]
        assert (indexed[0], merged[0]) == (0, 0)


def test_an_index_extending_the_specs_answers_as_one_built_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meshsim.policy.index as index_module
    from meshsim.policy.access import access_matrix
    from meshsim.spec.models import Grant, RowFilter

    spec = load_mesh(_mesh(tmp_path, 20).root)
    base = spec.policies
    extra = [
        Grant(name="s1", consumers=["c0001"], tables=["d0001.p1_t0"]),
        Grant(name="s2", consumers=["c0002"], columns=["d0000.p0_t1.amount"]),
        Grant(name="s3", consumers=["*"], product="d0001.p3"),
        Grant(name="s4", consumers=["c0003"], all=True, exclude_columns=["d0000.p0_t0.email"]),
    ]
    filters = [RowFilter(name="f1", consumers=["c0001"], table="d0001.p1_t0", predicate="id > 1")]
    policies = base.model_copy(
        update={"grants": [*base.grants, *extra], "row_filters": [*base.row_filters, *filters]}
    )
    assert index_module.extends(policies, base)
    layered = access_matrix(spec, policies=policies)
    assert index_module.policy_index(spec, policies)._base is not None
    spec.memo.clear()
    monkeypatch.setattr(index_module, "extends", lambda policies, base: False)
    flat = access_matrix(spec, policies=policies)
    assert index_module.policy_index(spec, policies)._base is None
    assert layered == flat
    assert any(a.grants == ("s3",) for a in flat) and any(a.row_filters for a in flat)


def test_duckdb_may_read_the_registered_tables_queries_need_not_every_one(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each registered table is a data root of its own, and the governed DuckDB was opened
    with every one of them (one allowed directory per table of the mesh, each stat'ed): it
    opens with those its queries have named so far, again when a query needs another."""
    import meshsim
    import meshsim.engine as engine

    generated, workspace = built
    opened: list[int] = []
    original = engine.open_governed

    def counted(allowed_paths: Any, **kwargs: Any) -> Any:
        opened.append(len(allowed_paths))
        return original(allowed_paths, **kwargs)

    monkeypatch.setattr(engine, "open_governed", counted)
    admin = "governance_admin"
    with meshsim.open(str(workspace)) as mesh:
        query = f"SELECT count(*) FROM {generated.sample_table}"
        assert mesh.session(generated.sample_consumer).sql(query).fetchall() == [(3,)]
        assert mesh.session(admin).sql(query).fetchall() == [(3,)]
        assert opened == [3]  # the workspace's accounts and system folders, and its table
        other = "SELECT count(*) FROM d0002.p1_t0 JOIN d0001.p0_t1 USING (id)"
        assert mesh.session(admin).sql(other).fetchall() == [(3,)]
        assert mesh.session(admin).sql(query).fetchall() == [(3,)]
        assert opened == [3, 5]


def test_a_row_filters_lookup_into_another_registered_table_is_readable(
    built: tuple[GeneratedMesh, Path], tmp_path: Path
) -> None:
    """The tables a query names are not all it reads: a row filter's lookup table is bound
    too, and DuckDB may read its root as well."""
    import shutil

    import yaml

    from meshsim.mesh import Mesh

    generated, workspace = built
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(generated.root, mesh_dir)
    mesh_file = mesh_dir / "mesh.yaml"
    data = yaml.safe_load(mesh_file.read_text())
    data["policies"]["row_filters"].append(
        {
            "name": "looked_up",
            "consumers": [generated.sample_consumer],
            "table": generated.sample_table,
            "predicate": "id IN (SELECT id FROM d0002.p4_t1 WHERE id > 1)",
        }
    )
    mesh_file.write_text(yaml.safe_dump(data, sort_keys=False))
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        session = mesh.session(generated.sample_consumer)
        query = f"SELECT count(*) FROM {generated.sample_table}"
        assert session.sql(query).fetchall() == [(2,)]
