"""Issue 17: the identity check's scan of every spec file for owner bindings read every
file's bytes once per process (335 ms at 5,000 products, in each one-shot command that
authenticates); a process now reads only the files changed since one read them
(:mod:`meshsim.spec.scanindex`). Each test counts the files read, never a time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshsim.bench.meshgen import GeneratedMesh, generate_mesh
from tests.scale.test_complexity import CONSUMERS


@pytest.fixture()
def mesh_and_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[GeneratedMesh, Path]:
    import meshsim.spec.scanindex as scanindex
    from meshsim.mesh import Mesh

    generated = generate_mesh(tmp_path / "mesh", 30, CONSUMERS)
    Mesh.build(generated.root, tmp_path / "ws", scale=1).close()
    monkeypatch.setattr(scanindex, "SETTLE_NS", 0)  # files written a moment ago are trusted
    return generated, tmp_path / "ws"


def _scan_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The spec files the scan reads from now on."""
    import meshsim.spec.lazy as lazy

    read: list[str] = []
    read_spec_bytes = lazy.read_spec_bytes

    def recording(file: Path) -> bytes:
        read.append(str(file))
        return read_spec_bytes(file)

    monkeypatch.setattr(lazy, "read_spec_bytes", recording)
    return read


def _authenticate(workspace: Path, principal: str, mesh_dir: Path | None = None) -> None:
    """What a new process does when it first acts as ``principal``."""
    from meshsim.identity import authenticate
    from meshsim.mesh import Mesh

    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        authenticate(mesh.spec, principal)


def test_a_second_process_reads_no_unchanged_spec_file(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    generated, workspace = mesh_and_workspace
    read = _scan_reads(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    files = 3 + 3 * 5  # three domains, each a domain.yaml and five products
    assert len(read) == files
    read.clear()
    _authenticate(workspace, generated.sample_consumer)
    assert read == []


def test_a_binding_added_after_the_scan_is_seen_by_the_next_process(
    mesh_and_workspace: tuple[GeneratedMesh, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import meshsim.identity as identity
    from meshsim.errors import IdentityError

    generated, workspace = mesh_and_workspace
    mesh_dir = tmp_path / "edited"
    shutil.copytree(generated.root, mesh_dir)
    monkeypatch.setattr(identity, "os_user_source", lambda: "alice")
    _authenticate(workspace, "d0002-team", mesh_dir)
    product = mesh_dir / "d0002" / "products" / "p3.yaml"
    text = product.read_text().replace("owner: d0002-team\n", "")
    product.write_text(text + "owner: d0002-team\nowner_os_users: [bob]\n")
    read = _scan_reads(monkeypatch)
    with pytest.raises(IdentityError, match="bob"):
        _authenticate(workspace, "d0002-team", mesh_dir)
    assert read == [str(product)]  # the one changed file, not the other seventeen


@pytest.mark.parametrize("damage", ["not json", '{"version": 1}', ""])
def test_a_damaged_index_is_ignored_and_written_again(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from meshsim.workspace import Workspace

    generated, workspace = mesh_and_workspace
    _authenticate(workspace, generated.sample_consumer)
    index = Workspace.at(workspace).spec_scan_file
    index.write_text(damage)
    read = _scan_reads(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    assert len(read) == 18
    read.clear()
    _authenticate(workspace, generated.sample_consumer)
    assert read == []


def test_a_file_changed_a_moment_ago_is_read_again(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """File times are coarse: a file written within the same tick as its read could be
    written again with the same status, so it is not remembered until it has settled."""
    import meshsim.spec.scanindex as scanindex

    generated, workspace = mesh_and_workspace
    monkeypatch.setattr(scanindex, "SETTLE_NS", 3600 * 10**9)
    _authenticate(workspace, generated.sample_consumer)
    read = _scan_reads(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    assert len(read) == 18


def test_an_index_that_cannot_be_written_leaves_the_scan_reading_every_file(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from meshsim.workspace import Workspace

    generated, workspace = mesh_and_workspace
    Workspace.at(workspace).spec_scan_file.mkdir()  # in its way: it cannot be replaced
    read = _scan_reads(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    _authenticate(workspace, generated.sample_consumer)
    assert len(read) == 2 * 18
    assert not list(workspace.glob("spec-scan.json.*.tmp"))


def _listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The products folders the scan lists from now on."""
    import meshsim.spec.watch as watch

    listed: list[str] = []
    product_files = watch._product_files

    def recording(folder: str) -> list[str]:
        listed.append(folder)
        return product_files(folder)

    monkeypatch.setattr(watch, "_product_files", recording)
    return listed


def test_a_second_process_lists_no_unchanged_products_folder(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing a thousand products folders cost more than statting their files: a folder
    whose status is the one the index recorded is not listed again."""
    generated, workspace = mesh_and_workspace
    listed = _listings(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    assert len(listed) == 3
    listed.clear()
    _authenticate(workspace, generated.sample_consumer)
    assert listed == []


@pytest.mark.parametrize("how", ["new file", "renamed into place"])
def test_a_product_file_added_after_the_scan_is_seen_by_the_next_process(
    mesh_and_workspace: tuple[GeneratedMesh, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    how: str,
) -> None:
    """A new product file binding the owner team changes its folder's status: the folder is
    listed again and the file read, as an editor's save (a rename over the name) is."""
    import meshsim.identity as identity
    from meshsim.errors import IdentityError

    generated, workspace = mesh_and_workspace
    mesh_dir = tmp_path / "edited"
    shutil.copytree(generated.root, mesh_dir)
    monkeypatch.setattr(identity, "os_user_source", lambda: "alice")
    _authenticate(workspace, "d0002-team", mesh_dir)
    products = mesh_dir / "d0002" / "products"
    text = (products / "p3.yaml").read_text().replace("p3", "p9")
    text += "owner_os_users: [bob]\n"
    if how == "new file":
        (products / "p9.yaml").write_text(text)
    else:
        (products / ".p9.yaml.swp").write_text(text)
        (products / ".p9.yaml.swp").rename(products / "p9.yaml")
    listed = _listings(monkeypatch)
    read = _scan_reads(monkeypatch)
    with pytest.raises(IdentityError, match="bob"):
        _authenticate(workspace, "d0002-team", mesh_dir)
    assert set(listed) == {str(products)}  # by the scan, then by the load of its domain
    assert read == [str(products / "p9.yaml")]


def test_the_first_process_after_a_build_reads_no_spec_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build has just read every spec file: it leaves the index what they said, so the
    first session after it does not read them all again."""
    import meshsim.spec.scanindex as scanindex
    from meshsim.mesh import Mesh

    generated = generate_mesh(tmp_path / "mesh", 30, CONSUMERS)
    monkeypatch.setattr(scanindex, "SETTLE_NS", 0)
    Mesh.build(generated.root, tmp_path / "ws", scale=1).close()
    listed, read = _listings(monkeypatch), _scan_reads(monkeypatch)
    _authenticate(tmp_path / "ws", generated.sample_consumer)
    assert read == [] and listed == []


def test_a_file_name_that_is_not_utf8_is_not_remembered(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outside review: such a name in a hidden folder made the index's save raise a
    serialization error out of build and every session."""
    import os

    generated, workspace = mesh_and_workspace
    junk = generated.root / ".junk" / "products"
    junk.mkdir(parents=True)
    with open(os.path.join(os.fsencode(junk), b"\xff.yaml"), "w") as handle:
        handle.write("a: 1\n")
    _authenticate(workspace, generated.sample_consumer)
    _authenticate(workspace, generated.sample_consumer)


@pytest.mark.parametrize(
    "planted",
    ["../../../etc/passwd.yaml", "p0.yaml\x00.yaml", "x" * 300 + ".yaml", "notes.txt"],
    ids=["outside", "nul", "long", "not-yaml"],
)
def test_an_index_listing_names_no_scan_writes_is_ignored(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch, planted: str
) -> None:
    """An outside review planted names in the index's listings: a NUL gave a raw ValueError,
    an over-long name a SpecError, and ``../..`` pointed the scan outside the mesh. An entry
    no scan writes makes the whole index ignored: every file is read, nothing else."""
    import json

    from meshsim.workspace import Workspace

    generated, workspace = mesh_and_workspace
    _authenticate(workspace, generated.sample_consumer)
    index = Workspace.at(workspace).spec_scan_file
    data = json.loads(index.read_text())
    entry = data["domains"]["d0001"]
    entry["names"].append(planted)
    entry["files"].append(entry["files"][-1])
    entry["mentions"].append(False)
    index.write_text(json.dumps(data))
    read = _scan_reads(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    assert len(read) == 18 and all(str(generated.root) in path for path in read)
    assert not any(planted in path for path in read)


def test_one_changed_file_leaves_the_rest_of_its_domain_known(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index is kept per domain: a domain whose files changed is compared file by file,
    so only the changed one is read again."""
    generated, workspace = mesh_and_workspace
    _authenticate(workspace, generated.sample_consumer)
    product = generated.root / "d0001" / "products" / "p2.yaml"
    product.write_text(product.read_text() + "\n")
    read = _scan_reads(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    assert read == [str(product)]


@pytest.mark.parametrize("how", ["group-writable", "another user's"])
def test_an_index_others_may_write_is_not_trusted(
    mesh_and_workspace: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """An outside review: an index claiming that no file binds an owner, written by another
    user of a shared workspace, hid a binding from the identity check."""
    import os

    from meshsim.workspace import Workspace

    generated, workspace = mesh_and_workspace
    _authenticate(workspace, generated.sample_consumer)
    index = Workspace.at(workspace).spec_scan_file
    assert index.stat().st_mode & 0o077 == 0  # written owner-only
    if how == "group-writable":
        index.chmod(0o664)
    elif os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    else:
        os.chown(index, 65534, 65534)
    read = _scan_reads(monkeypatch)
    _authenticate(workspace, generated.sample_consumer)
    assert len(read) == 18  # every file read again, the index ignored
    read.clear()
    _authenticate(workspace, generated.sample_consumer)  # written again, the user's own
    assert read == []


def test_a_folder_that_binds_owners_under_no_domain_name_is_an_error(
    mesh_and_workspace: tuple[GeneratedMesh, Path], tmp_path: Path
) -> None:
    """An outside review: a domain folder whose name is no domain name was skipped by the
    identity scan, its bindings with it, while validate refuses the mesh."""
    from meshsim.errors import SpecError

    generated, workspace = mesh_and_workspace
    mesh_dir = tmp_path / "edited"
    shutil.copytree(generated.root, mesh_dir)
    drafts = mesh_dir / "_drafts" / "products"  # no domain.yaml: no domain, as the loader has it
    drafts.mkdir(parents=True)
    (drafts / "p0.yaml").write_text("owner: d0001-team\nowner_os_users: [bob]\n")
    _authenticate(workspace, generated.sample_consumer, mesh_dir)
    shutil.copytree(mesh_dir / "d0001", mesh_dir / "Zed")
    domain_file = mesh_dir / "Zed" / "domain.yaml"
    domain_file.write_text(domain_file.read_text() + "owner_os_users: [bob]\n")
    with pytest.raises(SpecError, match="'Zed' is not a domain name"):
        _authenticate(workspace, generated.sample_consumer, mesh_dir)
