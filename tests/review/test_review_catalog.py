"""Review findings on the catalog workflow and the identity checks (an outsider's attacks).

Each test reproduces one finding; it fails on the code it was written against."""

from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import Path

import pytest

from meshsim.errors import MeshsimError
from meshsim.mesh import Mesh

EXAMPLE = Path(__file__).resolve().parents[2] / "domains"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The example mesh (a copy, to edit) built at scale 0.01: (mesh folder, workspace)."""
    root = tmp_path_factory.mktemp("review-catalog")
    mesh_dir = root / "mesh"
    shutil.copytree(EXAMPLE, mesh_dir)
    Mesh.build(mesh_dir, root / "ws", scale=0.01)
    return mesh_dir, root / "ws"


@pytest.fixture
def fresh(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the built mesh and workspace, for a test that changes either."""
    mesh_dir, workspace = built
    shutil.copytree(mesh_dir, tmp_path / "mesh")
    shutil.copytree(workspace, tmp_path / "ws")
    return tmp_path / "mesh", tmp_path / "ws"


def _bind_supply_product_to(mesh_dir: Path, owner: str, os_user: str) -> None:
    """Make supply.supply_catalog owned by ``owner``, bound to ``os_user``: a binding of
    ``owner`` that lives in a file of a domain other than the one ``owner`` decides for."""
    path = mesh_dir / "supply" / "products" / "supply_catalog.yaml"
    text = path.read_text(encoding="utf-8")
    assert "\nowner: supply-chain\n" in text
    text = text.replace(
        "\nowner: supply-chain\n", f"\nowner: {owner}\nowner_os_users: [{os_user}]\n"
    )
    path.write_text(text, encoding="utf-8")


def test_long_lived_mesh_approval_misses_a_binding_added_in_another_domain(
    fresh: tuple[Path, Path],
) -> None:
    """A Mesh kept open (a notebook, the Python API) re-checks every file for a new binding
    when a session opens (``_current_spec(scans=True)``), but a catalog decision reads
    ``mesh.spec`` without ``scans``: a binding of the approving owner added to a file of
    another domain since the first decision is never seen, and the approval goes through as
    a principal the mesh now binds to another OS user."""
    mesh_dir, workspace = fresh
    mesh = Mesh.open(workspace, mesh_dir=mesh_dir)
    first = mesh.catalog.request("eu_marketing_analyst", "customer.customer_profiles", "r1")
    second = mesh.catalog.request("finance_controller", "customer.customer_profiles", "r2")
    assert first.state == second.state == "pending"
    mesh.catalog.approve(first.id, by="customer-data")  # unbound: asserted, allowed

    _bind_supply_product_to(mesh_dir, "customer-data", "someone_else")

    # a new process refuses it ...
    with pytest.raises(MeshsimError, match="someone_else"):
        Mesh.open(workspace, mesh_dir=mesh_dir).catalog.approve(second.id, by="customer-data")
    # ... and so must the process that was open when the binding was added
    with pytest.raises(MeshsimError, match="someone_else"):
        mesh.catalog.approve(second.id, by="customer-data")


def test_identity_scan_hangs_on_a_fifo_named_like_a_product_file(fresh: tuple[Path, Path]) -> None:
    """``mkfifo supply/products/zz.yaml``: the loader refuses it ("is not a regular file (a
    FIFO)"), but the identity scan (``LazyDomains._mentions``) opens every product file with a
    blocking ``open()``, so every ``meshsim sql --as C`` (and request/approve) hangs for ever
    instead of printing one ``Error:`` line."""
    import os
    import threading

    mesh_dir, workspace = fresh
    fifo = mesh_dir / "supply" / "products" / "zz.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | str] = []

    def open_session() -> None:
        try:
            Mesh.open(workspace, mesh_dir=mesh_dir).session("eu_marketing_analyst")
            outcome.append("allowed")
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    worker = threading.Thread(target=open_session, daemon=True)
    worker.start()
    worker.join(timeout=5)
    hung = worker.is_alive()
    if hung:  # release the blocked open() so that the thread ends
        with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
        worker.join(timeout=10)
    assert not hung, "opening a session hung on a FIFO in a products folder"
    # a FIFO holds no binding: the session may open, or the FIFO may be refused as the
    # loader refuses it; either way as a MeshsimError (one Error: line), never a hang
    assert outcome and (outcome[0] == "allowed" or isinstance(outcome[0], MeshsimError)), outcome


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from meshsim.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_page_past_the_end_claims_rows_that_do_not_exist(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``meshsim products --limit 2 --offset 10`` on a catalog of 4 products prints
    ``rows 10-10 of 4``: a row 10 that does not exist (and past the end of a 1,000-product
    catalog, ``rows 1,500-1,500 of 1,000``). An empty page must say it is empty (or the offset
    be refused with one Error: line), never number rows beyond the total."""
    _, workspace = built
    code, out = _cli(
        capsys, "products", "--limit", "2", "--offset", "10", "--workspace", str(workspace)
    )
    assert "rows 10-10 of 4" not in out, out
    if code == 0:
        assert "of 4" in out  # the total is still shown


def test_show_lists_have_no_limit_or_offset(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every listing paginates with --limit/--offset, but ``meshsim show`` (its versions,
    columns, quality rules and subscribers: a product with many subscribers lists them all)
    refuses the options: ``Error: No such option: --limit``."""
    _, workspace = built
    code, out = _cli(
        capsys,
        "show",
        "customer.customer_profiles",
        "--limit",
        "1",
        "--offset",
        "0",
        "--workspace",
        str(workspace),
    )
    assert code == 0, out


def test_requests_page_reads_every_request(built: tuple[Path, Path]) -> None:
    """``meshsim requests --limit N`` fetches every request of the catalog
    (``Catalog.requests`` has no limit: ``SELECT * FROM requests ORDER BY id``) and slices the
    page in the CLI; one page must not read the whole table, as ``products`` does not."""
    import inspect

    mesh_dir, workspace = built
    catalog = Mesh.open(workspace, mesh_dir=mesh_dir).catalog
    parameters = inspect.signature(catalog.requests).parameters
    assert "limit" in parameters and "offset" in parameters, list(parameters)


def test_subscriptions_page_reads_every_approved_request(built: tuple[Path, Path]) -> None:
    """``meshsim subscriptions --limit N`` the same: ``Catalog.subscriptions`` loads every
    approved request (and every declared grant) and the CLI slices the page."""
    import inspect

    mesh_dir, workspace = built
    catalog = Mesh.open(workspace, mesh_dir=mesh_dir).catalog
    parameters = inspect.signature(catalog.subscriptions).parameters
    assert "limit" in parameters and "offset" in parameters, list(parameters)


def test_access_page_resolves_the_whole_matrix(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``meshsim access --limit 2`` resolves every consumer's access to every table first
    (1,209,417 cells, 20 s on the brief's generated mesh of 1,000 products, for 2 rows; the
    ``products`` page takes 0.3 s there). Measured here by the tables it resolves for a
    one-row page of one consumer's matrix: every table of the mesh."""
    mesh_dir, workspace = built
    resolved: list[str] = []
    served = Mesh._served

    def counting(self: Mesh, access):  # type: ignore[no-untyped-def]
        resolved.append(str(access))
        return served(self, access)

    monkeypatch.setattr(Mesh, "_served", counting)
    code, out = _cli(
        capsys,
        "access",
        "--as",
        "eu_marketing_analyst",
        "--limit",
        "1",
        "--workspace",
        str(workspace),
    )
    assert code == 0, out
    assert len(resolved) <= 1, f"{len(resolved)} tables resolved for a one-row page"


def test_search_page_ranks_every_hit(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``meshsim search TEXT --limit 2`` asks the catalog for every hit
    (``open_mesh(...).search(text, limit=None)``) and slices the page in the CLI."""
    _, workspace = built
    asked: list[object] = []
    search = Mesh.search

    def recording(self: Mesh, text: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(kwargs.get("limit"))
        return search(self, text, *args, **kwargs)

    monkeypatch.setattr(Mesh, "search", recording)
    code, out = _cli(capsys, "search", "customer", "--limit", "2", "--workspace", str(workspace))
    assert code == 0, out
    assert asked and asked[0] is not None, f"search asked for limit={asked}"


def test_identity_scan_reads_a_huge_product_file_whole(fresh: tuple[Path, Path]) -> None:
    """The loader refuses a spec file over MAX_SPEC_BYTES (1 MiB) and anything that is not a
    regular file, but the identity scan reads each product file whole with ``read()``: with
    ``ln -s /dev/zero supply/products/zz.yaml``, ``meshsim sql --as C ...`` eats memory until
    it dies (``Error: internal error (MemoryError)`` under ``ulimit -v 3000000``; the whole
    machine's memory without a limit), where ``meshsim validate`` prints one clear Error:.
    Measured here, safely, with a sparse 64 MiB file: what one session's check allocates."""
    import os
    import tracemalloc

    from meshsim.spec.yamlfile import MAX_SPEC_BYTES

    mesh_dir, workspace = fresh
    huge = mesh_dir / "supply" / "products" / "zz.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(64 * MAX_SPEC_BYTES)  # sparse: no disk used
    assert os.path.getsize(huge) == 64 * MAX_SPEC_BYTES
    mesh = Mesh.open(workspace, mesh_dir=mesh_dir)
    tracemalloc.start()
    try:
        with suppress(MeshsimError):  # refusing the file is fine too
            mesh.session("eu_marketing_analyst")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_SPEC_BYTES, f"the identity check allocated {peak:,} bytes"


def test_scan_index_save_follows_a_planted_symlink(
    fresh: tuple[Path, Path], tmp_path: Path
) -> None:
    """``ScanIndex.save`` writes ``spec-scan.json.<pid>.tmp`` with ``write_text``, which
    follows a symlink: another user of a shared workspace who plants that name (pids are
    predictable) pointing at a file of the user running meshsim gets it overwritten with the
    index's JSON, outside the workspace. The audit journal refuses links (``O_NOFOLLOW``);
    this temporary file must not follow one either."""
    import os
    import time

    from meshsim.spec.scanindex import SETTLE_NS

    mesh_dir, workspace = fresh
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    index = workspace / "spec-scan.json"
    index.unlink(missing_ok=True)
    planted = workspace / f"spec-scan.json.{os.getpid()}.tmp"
    planted.symlink_to(victim)
    time.sleep(SETTLE_NS / 1e9 + 0.2)  # the copied spec files settle: the scan remembers them
    Mesh.open(workspace, mesh_dir=mesh_dir).session("eu_marketing_analyst")
    assert index.exists() and not index.is_symlink(), "the index was written (through a link)"
    assert victim.read_text(encoding="utf-8") == "precious\n"


def test_backup_full_copy_follows_a_planted_symlink(
    fresh: tuple[Path, Path], tmp_path: Path
) -> None:
    """A full copy of the catalog backup is written to ``catalog-backup.db.<pid>.tmp`` by
    ``sqlite3.connect``, which follows a symlink (and creates a dangling link's target):
    planted by another user of the workspace, it makes the next change write the catalog
    into a file of the user running meshsim, outside the workspace, and then renames the link
    over ``catalog-backup.db``."""
    import os

    mesh_dir, workspace = fresh
    governance = workspace / "governance"
    victim = tmp_path / "victim-not-yet-there"
    (governance / "catalog-backup.db").unlink()  # the next change takes a full copy
    planted = governance / f"catalog-backup.db.{os.getpid()}.tmp"
    planted.symlink_to(victim)
    mesh = Mesh.open(workspace, mesh_dir=mesh_dir)
    with suppress(MeshsimError):  # refusing the link is fine; following it is not
        mesh.catalog.request("eu_marketing_analyst", "customer.customer_profiles", "r")
    assert not victim.exists(), "the backup was written through the planted link"
    assert not (governance / "catalog-backup.db").is_symlink()


def test_a_product_file_can_bind_the_admin_consumer_to_its_author(
    fresh: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """mesh.yaml binds the consumer ``governance_admin`` to OS user alice. A domain team
    edits only its own product file: ``owner: governance_admin`` and ``owner_os_users:
    [mallory]``. ``meshsim validate`` calls that an error ("bound to different OS users ...
    bind it once"), but the identity check takes the union of every binding of the name, so
    mallory now queries as governance_admin (everything unmasked, the audit log) and decides
    any request. Conflicting bindings must refuse, not widen."""
    from meshsim import identity

    mesh_dir, workspace = fresh
    mesh_file = mesh_dir / "mesh.yaml"
    text = mesh_file.read_text(encoding="utf-8")
    assert "    admin: true\n" in text
    mesh_file.write_text(
        text.replace("    admin: true\n", "    admin: true\n    os_users: [alice]\n", 1),
        encoding="utf-8",
    )
    monkeypatch.setattr(identity, "os_user_source", lambda: "mallory")
    with pytest.raises(MeshsimError, match="alice"):  # as bound: mallory is refused
        Mesh.open(workspace, mesh_dir=mesh_dir).session("governance_admin")

    _bind_supply_product_to(mesh_dir, "governance_admin", "mallory")
    with pytest.raises(MeshsimError, match="governance_admin"):
        Mesh.open(workspace, mesh_dir=mesh_dir).session("governance_admin")


def test_audit_offset_out_of_range_names_a_limit_nobody_passed(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``meshsim audit --as governance_admin --limit 5 --offset 9223372036854775807`` says
    ``Error: limit 9223372036854775812 is out of range``: the CLI adds the offset to the limit
    and the message names that sum, a value the user never typed, instead of the offset."""
    _, workspace = built
    offset = str(2**63 - 1)
    code, out = _cli(
        capsys,
        "audit",
        "--as",
        "governance_admin",
        "--limit",
        "5",
        "--offset",
        offset,
        "--workspace",
        str(workspace),
    )
    assert str(2**63 - 1 + 5) not in out, out
    assert code == 0 or "offset" in out.lower(), out


def test_a_fifo_in_place_of_the_scan_index_hangs_every_session(fresh: tuple[Path, Path]) -> None:
    """ "A damaged index is ignored", but ``ScanIndex._read`` is ``path.read_bytes()``: a FIFO
    at ``spec-scan.json`` blocks every authenticating command for ever (a link to
    ``/dev/zero`` reads until memory runs out), where the audit journal refuses anything but
    a regular file. It must be ignored (or refused with one Error: line), never waited on."""
    import os
    import threading

    mesh_dir, workspace = fresh
    index = workspace / "spec-scan.json"
    index.unlink(missing_ok=True)
    os.mkfifo(index)
    outcome: list[BaseException | str] = []

    def open_session() -> None:
        try:
            Mesh.open(workspace, mesh_dir=mesh_dir).session("eu_marketing_analyst")
            outcome.append("allowed")
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    worker = threading.Thread(target=open_session, daemon=True)
    worker.start()
    worker.join(timeout=5)
    hung = worker.is_alive()
    if hung:  # release the blocked read so that the thread ends
        with open(os.open(index, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
        worker.join(timeout=10)
    assert not hung, "opening a session hung on a FIFO at spec-scan.json"
    assert outcome and (outcome[0] == "allowed" or isinstance(outcome[0], MeshsimError)), outcome
