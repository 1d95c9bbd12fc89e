"""The spec loader is bounded: hostile or broken files give one SpecError naming the file
(and the line where there is one), never a MemoryError, RecursionError, hang or traceback."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from meshsim.cli import main
from meshsim.errors import SpecError
from meshsim.spec.loader import load_mesh, load_policies
from tests.conftest import edit

MAX_SPEC_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 64


def problems(mesh_dir: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_mesh(mesh_dir)
    return info.value.problems


def product_file(mesh_dir: Path) -> Path:
    return mesh_dir / "sales" / "products" / "order_history.yaml"


def test_the_limits_are_the_documented_ones():
    from meshsim.spec import yamlfile

    assert (yamlfile.MAX_SPEC_BYTES, yamlfile.MAX_YAML_DEPTH) == (MAX_SPEC_BYTES, MAX_YAML_DEPTH)
    assert (yamlfile.MAX_ALIASES, yamlfile.MAX_YAML_VALUES) == (1000, 100_000)


def test_alias_bomb_is_refused_quickly(mesh_copy: Path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    (mesh_copy / "mesh.yaml").write_text("name: retail\n" + "\n".join(lines) + "\n")
    started = time.perf_counter()
    found = problems(mesh_copy)
    assert time.perf_counter() - started < 5
    assert found == [
        f"{mesh_copy / 'mesh.yaml'}:6: aliases expand to more than 100000 values "
        f"(an alias bomb?); write the values out instead"
    ]


def test_many_aliases_are_refused(mesh_copy: Path):
    text = "name: retail\nx: &x 1\nys: [" + ", ".join(["*x"] * 1001) + "]\n"
    (mesh_copy / "mesh.yaml").write_text(text)
    assert problems(mesh_copy) == [
        f"{mesh_copy / 'mesh.yaml'}:3: more than 1000 aliases; write the values out instead"
    ]


def test_self_referencing_alias_is_refused(mesh_copy: Path):
    edit(mesh_copy / "mesh.yaml", "name: retail\n", "name: retail\nloop: &loop [1, *loop]\n")
    assert problems(mesh_copy) == [
        f"{mesh_copy / 'mesh.yaml'}:4: alias '*loop' refers to a value that contains it; "
        f"YAML that refers to itself cannot be a spec"
    ]


def test_self_referencing_mapping_is_refused(mesh_copy: Path):
    product = product_file(mesh_copy)
    edit(product, "production:", "loop: &me {again: *me}\nproduction:")
    (problem,) = problems(mesh_copy)
    assert problem.startswith(f"{product}:")
    assert "alias '*me' refers to a value that contains it" in problem


def test_deep_nesting_is_refused(mesh_copy: Path):
    depth = 5000
    (mesh_copy / "mesh.yaml").write_text("name: retail\nx: " + "[" * depth + "]" * depth + "\n")
    assert problems(mesh_copy) == [
        f"{mesh_copy / 'mesh.yaml'}:2: values nested more than {MAX_YAML_DEPTH} levels deep"
    ]


def test_deep_nesting_through_aliases_is_refused(mesh_copy: Path):
    lines = ["name: retail", "l0: &l0 " + "[" * 30 + "]" * 30]
    lines += [f"l{i}: &l{i} " + "[" * 30 + f"*l{i - 1}" + "]" * 30 for i in range(1, 6)]
    (mesh_copy / "mesh.yaml").write_text("\n".join(lines) + "\n")
    (problem,) = problems(mesh_copy)
    assert f"values nested more than {MAX_YAML_DEPTH} levels deep" in problem


def test_non_utf8_byte_names_file_and_line(mesh_copy: Path):
    product = product_file(mesh_copy)
    text = product.read_bytes()
    marker = b"owner: sales-ops"
    assert marker in text
    product.write_bytes(text.replace(marker, b"owner: sales-\xffops"))
    line = text[: text.index(marker)].count(b"\n") + 1
    assert problems(mesh_copy) == [
        f"{product}:{line}: not UTF-8 text (byte 0xff at column 14); save the file as UTF-8"
    ]


def test_symlink_to_dev_zero_is_refused(mesh_copy: Path):
    product = product_file(mesh_copy)
    product.unlink()
    product.symlink_to("/dev/zero")
    assert problems(mesh_copy) == [
        f"{product}: is not a regular file (a character device); a spec file must be a plain "
        f"YAML file"
    ]


def test_mesh_yaml_linked_to_dev_zero_is_not_reported_missing(mesh_copy: Path):
    mesh_file = mesh_copy / "mesh.yaml"
    mesh_file.unlink()
    mesh_file.symlink_to("/dev/zero")
    assert problems(mesh_copy) == [
        f"{mesh_file}: is not a regular file (a character device); a spec file must be a plain "
        f"YAML file"
    ]


def test_fifo_does_not_hang(mesh_copy: Path):
    domain_file = mesh_copy / "sales" / "domain.yaml"
    domain_file.unlink()
    os.mkfifo(domain_file)
    assert problems(mesh_copy) == [
        f"{domain_file}: is not a regular file (a FIFO); a spec file must be a plain YAML file"
    ]


def test_directory_named_like_a_product_file(mesh_copy: Path):
    folder = mesh_copy / "sales" / "products" / "folder.yaml"
    folder.mkdir()
    assert problems(mesh_copy) == [
        f"{folder}: is not a regular file (a directory); a spec file must be a plain YAML file"
    ]


def test_oversized_file_is_refused(mesh_copy: Path):
    product = product_file(mesh_copy)
    with product.open("a") as handle:
        handle.write("# padding\n" * (MAX_SPEC_BYTES // 10 + 1))
    assert problems(mesh_copy) == [
        f"{product}: is larger than {MAX_SPEC_BYTES} bytes; a spec file is small YAML"
    ]


def test_standalone_policies_file_is_bounded_too(tmp_path: Path):
    path = tmp_path / "policies.yaml"
    path.symlink_to("/dev/zero")
    with pytest.raises(SpecError, match="is not a regular file"):
        load_policies(path)


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "valid"),
    [
        ("name: retail\n", "name: retail\nColour: red\n", 4, "Colour", "classifications"),
        (
            "    - name: admin_everything\n",
            "    - name: admin_everything\n      Extra: 1\n",
            40,
            "policies.grants[0].Extra",
            "consumers",
        ),
    ],
)
def test_unknown_key_with_a_capital_letter(mesh_copy, old, new, line, path, valid):
    edit(mesh_copy / "mesh.yaml", old, new)
    (problem,) = problems(mesh_copy)
    prefix = f"{mesh_copy / 'mesh.yaml'}:{line}: {path}: unknown key '{path.rsplit('.', 1)[-1]}'"
    assert problem.startswith(prefix)
    assert valid in problem


def test_unknown_capital_key_in_a_source_union(mesh_copy: Path):
    product = mesh_copy / "customer" / "products" / "customer_profiles.yaml"
    edit(product, "source: {tpch: customer}", "source: {tpch: customer, Where: here}")
    found = problems(mesh_copy)
    assert all(p.startswith(f"{product}:14: tables[0].source") for p in found)
    assert any("unknown key 'Where'" in p for p in found)


def test_cli_reports_a_bounded_loader_error(capsys, mesh_copy: Path):
    product = product_file(mesh_copy)
    product.unlink()
    product.symlink_to("/dev/zero")
    code = main(["validate", "--mesh", str(mesh_copy)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith(f"Error: {product}: is not a regular file")
    assert "Traceback" not in err


def test_spec_files_are_scanned_by_libyaml_not_in_python(monkeypatch: pytest.MonkeyPatch):
    """Issue 17: a domain's six small files took 7 to 15 ms to parse (PyYAML's scanner in
    Python), most of a ``show`` or a request at 10,000 products; their events now come
    from libyaml, and the bounds are still checked as the nodes are composed."""
    import yaml

    from meshsim.spec.yamlfile import parse_yaml

    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without libyaml")
    tokens: list[int] = []
    original = yaml.scanner.Scanner.check_token

    def counted(self: yaml.scanner.Scanner, *choices: type) -> bool:
        tokens.append(1)
        return original(self, *choices)

    monkeypatch.setattr(yaml.scanner.Scanner, "check_token", counted)
    data, lines = parse_yaml(Path("p.yaml"), "name: p\ntables:\n- name: t\n  columns: []\n")
    assert data == {"name": "p", "tables": [{"name": "t", "columns": []}]}
    assert lines[("tables", 0, "columns")] == 4
    assert tokens == []
    with pytest.raises(SpecError, match=r"p.yaml:1: values nested more than"):
        parse_yaml(Path("p.yaml"), "a: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1))


def test_only_yaml_with_aliases_is_measured_by_expansion(monkeypatch: pytest.MonkeyPatch):
    """Issue 17: measuring the expansion walked all 26,000 nodes of a 1,000-consumer
    mesh.yaml (60 ms of each process's first command); a document without aliases is a
    tree whose values composing counted and whose depth it bounded."""
    from meshsim.spec import yamlfile

    measured: list[int] = []
    original = yamlfile.check_expansion

    def counted(root: Any, anchors: Any) -> None:
        measured.append(1)
        original(root, anchors)

    monkeypatch.setattr(yamlfile, "check_expansion", counted)
    yamlfile.parse_yaml(Path("m.yaml"), "a: [1, 2, {b: c}]\n")
    assert measured == []
    yamlfile.parse_yaml(Path("m.yaml"), "a: &x [1, 2]\nb: *x\n")
    assert measured == [1]
    many = "a: [" + ", ".join(["1"] * (yamlfile.MAX_YAML_VALUES + 1)) + "]\n"
    with pytest.raises(SpecError, match="more than 100000 values"):
        yamlfile.parse_yaml(Path("m.yaml"), many)
