"""More hostile spec files: each is one SpecError naming the file (and the line), never a
traceback, and never a silently changed meaning (a duplicate key, where the last would win)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.cli import main
from meshsim.errors import SpecError
from meshsim.spec.loader import load_mesh, spec_fingerprint
from tests.conftest import edit


def profiles(mesh_dir: Path) -> Path:
    return mesh_dir / "customer" / "products" / "customer_profiles.yaml"


def problems(mesh_dir: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_mesh(mesh_dir)
    return info.value.problems


def test_duplicate_key_in_a_flow_mapping_is_refused_with_its_line(mesh_copy: Path, capsys):
    path = profiles(mesh_copy)
    text = path.read_text()
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "name: c_phone" in row)
    edit(path, "name: c_phone, type: varchar, classification: pii", "name: c_phone, type: varchar, classification: pii, classification: public")  # fmt: skip
    assert problems(mesh_copy) == [
        f"{path}:{line}: the key 'classification' appears twice in the same mapping "
        f"(first on line {line}); YAML would silently keep only the last"
    ]
    for command in ("validate", "build"):
        args = [command, "--mesh", str(mesh_copy)]
        if command == "build":
            args += ["--workspace", str(mesh_copy.parent / "ws"), "--scale", "0.01"]
        assert main(args) == 1
        assert "appears twice" in capsys.readouterr().err


def test_duplicate_top_level_key_is_refused(mesh_copy: Path):
    path = mesh_copy / "mesh.yaml"
    path.write_text(path.read_text() + "name: other\n")
    [problem] = problems(mesh_copy)
    assert problem.startswith(f"{path}:") and "'name' appears twice" in problem


def test_integer_with_thousands_of_digits(mesh_copy: Path):
    path = profiles(mesh_copy)
    path.write_text(path.read_text() + "extra_number: " + "1999" * 1250 + "\n")
    [problem] = problems(mesh_copy)
    assert problem.startswith(f"{path}:")
    assert "digits" in problem


def test_nul_byte(mesh_copy: Path):
    path = profiles(mesh_copy)
    path.write_bytes(path.read_bytes() + b"description: a\x00b\n")
    [problem] = problems(mesh_copy)
    assert problem.startswith(f"{path}:")


def test_spec_file_linked_to_itself(mesh_copy: Path, capsys):
    path = profiles(mesh_copy)
    path.unlink()
    path.symlink_to(path)
    [problem] = problems(mesh_copy)
    assert problem.startswith(str(path))
    with pytest.raises(SpecError, match=str(path)):
        spec_fingerprint(mesh_copy)
    ws = mesh_copy.parent / "ws"
    code = main(["build", "--mesh", str(mesh_copy), "--workspace", str(ws), "--scale", "0.01"])
    assert code == 1
    assert str(path) in capsys.readouterr().err


def test_a_lazy_spec_fingerprint_refuses_a_fifo_as_the_loader_does(mesh_copy: Path):
    """Review finding (the class of the identity scan's): the lazy fingerprint read every spec
    file with read_bytes(), which waits for ever on a FIFO named like a product file."""
    import os

    os.mkfifo(mesh_copy / "supply" / "products" / "zz.yaml")
    spec = load_mesh(mesh_copy, lazy=True)
    with pytest.raises(SpecError, match="is not a regular file"):
        spec.fingerprint  # noqa: B018 - computing it is the point


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.symlink_to(p.name), "Too many levels of symbolic links"),
        (lambda p: p.symlink_to("nowhere"), "is a link to nothing"),
        (lambda p: p.write_text("not a folder"), "Not a directory"),
    ],
    ids=["link-loop", "dangling-link", "a-file"],
)
def test_a_products_folder_that_cannot_be_listed_is_a_problem_not_no_products(
    mesh_copy: Path, capsys, make, expected: str
):
    # an outside review: a looping link reported "product 'sales.orders' is not defined"
    import shutil

    from meshsim.spec.lazy import LazyDomains

    products = mesh_copy / "sales" / "products"
    shutil.rmtree(products)
    make(products)
    found = problems(mesh_copy)
    assert found[0] == f"{products}: " + (
        f"cannot list the products folder: {expected}"
        if "link to nothing" not in expected
        else "the products folder is a link to nothing"
    )
    with pytest.raises(SpecError, match=expected):
        LazyDomains(mesh_copy, {}).fingerprint()
    assert main(["validate", "--mesh", str(mesh_copy)]) == 1
    assert "Error:" in capsys.readouterr().err
