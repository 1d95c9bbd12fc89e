"""Mutated copies of the example mesh spec, checked with ``meshsim validate``.

Structured mutations edit the parsed YAML (drop, rename or add keys; values of the wrong type,
huge, empty or in other scripts; broken SQL in predicates and expressions; repeated list
items); raw mutations edit the bytes (a byte that is not UTF-8, truncation, aliases, deep
nesting, tabs, duplicate keys) or the files themselves (deleted, a folder, a link to a device).

Property: validate ends within its bound with exit 0, a problem report and exit 1, or a clean
``Error:`` line; never a traceback or an ``internal error``.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from tests.conftest import EXAMPLE_MESH
from tests.fuzz.conftest import bounded, fuzz_settings
from tests.fuzz.known import known_issue
from tests.fuzz.test_cli_fuzz import run_cli

SPEC_FILES = sorted(str(p.relative_to(EXAMPLE_MESH)) for p in EXAMPLE_MESH.rglob("*.yaml"))
ORIGINALS = {name: (EXAMPLE_MESH / name).read_text() for name in SPEC_FILES}

HOSTILE_VALUES: list[Any] = [
    None,
    0,
    -1,
    2**64,
    1.5,
    float("nan"),
    True,
    "",
    " ",
    "x" * 10_000,
    "名前",
    "Ünïcode",
    "\u202e",
    [],
    {},
    ["a", "b"],
    {"Key": "value"},
    {"nested": {"deeper": [1, [2, [3]]]}},
    "c_name = 'unterminated",
    "c_name + 1 > 0",
    "nope_column = 1",
    "(((((",
    "SELECT 1; DROP TABLE x",
    "consumer.nope = 'x'",
    "channel=b2b AND",
    "*",
    "../../etc/passwd",
    "/dev/zero",
]

RAW_SNIPPETS = [
    b"\xff",
    b"\t",
    b"\x00",
    b": : :",
    b"&a [*a, *a]",
    b"*undefined_alias",
    b"[" * 200 + b"]" * 200,
    b"\nname: duplicate\nname: again\n",
    b"\n!!python/object:os.system x\n",
    b"\n---\nsecond: document\n",
]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into ``node``."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _parent(data: Any, path: tuple) -> tuple[Any, Any]:
    node = data
    for part in path[:-1]:
        node = node[part]
    return node, path[-1]


def _hostile() -> st.SearchStrategy[Any]:
    """A hostile value, copied: a later mutation must not edit the shared list and dict
    values in place (a value put into itself makes every later example recurse forever)."""
    return st.sampled_from(HOSTILE_VALUES).map(copy.deepcopy)


@st.composite
def structured(draw, data: Any) -> Any:
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(data, path)
        kind = draw(st.sampled_from(["value", "value", "delete", "rename", "add", "repeat"]))
        if kind == "value":
            parent[key] = draw(_hostile())
        elif kind == "delete":
            del parent[key]
        elif kind == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from([key.capitalize(), key + "s", key[:-1], "Unknown", ""]))
            parent[new] = parent.pop(key)
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "Extra", "x-y", "1"]))] = draw(_hostile())
        elif kind == "repeat" and isinstance(parent, list):
            parent.insert(key, parent[key])
    return data


@st.composite
def raw(draw, text: str) -> bytes:
    data = text.encode()
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "insert", "truncate"]))
        if kind == "insert":
            data = data[:at] + draw(st.sampled_from(RAW_SNIPPETS)) + data[at:]
        else:
            data = data[:at]
    return data


_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def mesh_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("specs")


@st.composite
def mutated_mesh(draw, root: Path) -> tuple[Path, str]:
    """A fresh copy of the example mesh under ``root`` with one file mutated; returns the
    folder and a description of the mutation."""
    target = root / f"mesh{next(_COUNTER)}"
    shutil.copytree(EXAMPLE_MESH, target)
    name = draw(st.sampled_from(SPEC_FILES))
    path = target / name
    how = draw(st.sampled_from(["structured"] * 6 + ["raw"] * 3 + ["file"]))
    if how == "structured":
        data = structured(yaml.safe_load(ORIGINALS[name]))
        mutated = draw(data)
        path.write_text(yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False))
        return target, f"{name}: {mutated!r}"
    if how == "raw":
        content = draw(raw(ORIGINALS[name]))
        path.write_bytes(content)
        return target, f"{name}: {content!r}"
    change = draw(st.sampled_from(["delete", "folder", "devzero", "empty", "fifo"]))
    path.unlink()
    if change == "folder":
        path.mkdir()
    elif change == "devzero":
        path.symlink_to("/dev/zero")
    elif change == "empty":
        path.write_text("")
    elif change == "fifo":
        os.mkfifo(path)
    return target, f"{name}: {change}"


@fuzz_settings(200)
@given(data=st.data())
def test_mutated_specs_validate_cleanly(mesh_copies: Path, data) -> None:
    folder, mutation = data.draw(mutated_mesh(mesh_copies), label="mutation")
    try:
        with bounded(20, f"validate after {mutation[:300]}"):
            code, out, err = run_cli(["validate", "--mesh", str(folder)])
    finally:
        shutil.rmtree(folder)
    shown = mutation[:3000]
    assert "Traceback" not in err, (shown, err)
    if "internal error" in err:
        issue = known_issue(err, mutation)
        assert issue is not None, (shown, err)
        event(f"known issue: {issue.name}")
        return
    if code == 0:
        event("valid")
        assert "is valid" in out
    else:
        assert code == 1, (shown, code, err)
        assert err.startswith("Error: ") or "error(s)" in err, (shown, err)
        event("error line" if err.startswith("Error: ") else "problem report")
