"""Start a mesh and grow it: ``meshsim init``, ``meshsim new domain``, ``meshsim new product``.

* :func:`init_mesh` copies an example mesh into an empty folder: ``minimal`` (one domain with
  one product over a small CSV file shipped with meshsim, two consumers, one policy of each
  kind, commented) or ``retail`` (the TPC-H example mesh of the repository, ``domains/``).
  It validates and builds as it is. A folder that is not empty is refused: nothing is
  overwritten.
* :func:`new_domain` adds ``<domain>/domain.yaml`` and its ``products/`` folder.
* :func:`new_product` adds ``<domain>/products/<product>.yaml`` over a file, a folder, a glob or
  a Delta table, with its columns inferred as a Glue crawler would (names, types, whether any
  value is NULL): classified :data:`~meshsim.sources.registered.DEFAULT_CLASSIFICATION` (``pii``
  for names that look personal, such as ``email``), descriptions ``TODO: describe``, which
  :func:`placeholder_problems` reports as warnings. It builds at once; nobody may read it until a
  grant says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError, SpecError, closest, unknown_name_message
from meshsim.files import replace_file
from meshsim.spec.models import NAME_PATTERN

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.spec.lint import Problem
    from meshsim.spec.loader import MeshSpec
    from meshsim.spec.models import Product

EXAMPLES = ("minimal", "retail")
#: The description scaffolded files carry until someone writes one.
TODO = "TODO: describe"

_NAME = re.compile(NAME_PATTERN)
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")
_PERSONAL = re.compile(
    r"(^|_)(e_?mail|phone|mobile|ssn|passport|address|birth|dob|iban|first_name|last_name"
    r"|full_name|surname)(_|$)"
)
_KINDS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".ndjson": "json",
    ".jsonl": "json",
}
_BAD_NAME = "use lower case letters, digits and underscores, starting with a letter"


@dataclass(frozen=True)
class NewProduct:
    """What :func:`new_product` wrote."""

    file: Path
    ref: str
    source: str
    columns: list[tuple[str, str, bool, str]]  # name, type, nullable, classification


# --- init ------------------------------------------------------------------------------------


def _example_root(example: str) -> Path:
    if example == "minimal":
        from importlib.resources import files

        return Path(str(files("meshsim.examples") / "minimal"))
    if example == "retail":
        root = Path(__file__).resolve().parent.parent / "domains"
        if not (root / "mesh.yaml").is_file():
            raise MeshsimError(
                f"the retail example is the repository's 'domains/' folder, which is not next "
                f"to this installation of meshsim ('{root}')",
                hint="run meshsim from a clone of its repository, or use --example minimal",
            )
        return root
    raise MeshsimError(unknown_name_message("example", example, EXAMPLES))


def init_mesh(directory: str | Path, example: str = "minimal") -> Path:
    """Copy the example mesh ``example`` into ``directory`` (created; refused if not empty)."""
    target = Path(directory)
    source = _example_root(example)
    if os.path.lexists(target):
        if not target.is_dir():
            raise MeshsimError(
                f"'{target}' exists and is not a folder", hint="name a new or empty folder"
            )
        if any(target.iterdir()):
            raise MeshsimError(
                f"'{target}' is not empty; meshsim init writes only into a new or empty folder "
                f"and never overwrites files",
                hint=f"name another folder (meshsim init DIR), or add to this mesh with "
                f"'meshsim new domain NAME --mesh {target}'",
            )
    target.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "__init__.py")
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=ignore)
    return target


# --- new domain ------------------------------------------------------------------------------


def _require_mesh(mesh_dir: Path) -> None:
    if not (mesh_dir / "mesh.yaml").is_file():
        raise MeshsimError(
            f"no mesh.yaml in '{mesh_dir}'",
            hint="point --mesh at a mesh folder, or create one with 'meshsim init DIR'",
        )


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name) or len(name) > 63:
        raise MeshsimError(f"{kind} name '{name}' is not valid: {_BAD_NAME} (at most 63)")


def _domains(mesh_dir: Path) -> list[str]:
    return sorted(p.name for p in mesh_dir.iterdir() if (p / "domain.yaml").is_file())


def new_domain(mesh_dir: str | Path, name: str, owner: str | None = None) -> Path:
    """Add the domain ``name`` (owner team ``owner``, by default ``<name>-team``)."""
    root = Path(mesh_dir)
    _require_mesh(root)
    _check_name("domain", name)
    owner = owner if owner is not None else f"{name.replace('_', '-')}-team"
    if not _OWNER.match(owner):
        raise MeshsimError(
            f"owner team '{owner}' is not valid: letters, digits and _ . @ -, at most 63",
            hint="e.g. --owner marketing-team",
        )
    folder = root / name
    if os.path.lexists(folder):
        what = "domain" if (folder / "domain.yaml").is_file() else "folder"
        raise MeshsimError(
            f"{what} '{name}' already exists in '{root}'",
            hint=f"add a product to it with 'meshsim new product {name}.NAME --from PATH'"
            if what == "domain"
            else "choose another name",
        )
    (folder / "products").mkdir(parents=True)
    (folder / "domain.yaml").write_text(
        f"# A domain: a team that owns data products ('meshsim schema domain').\n"
        f"name: {name}\n"
        f"owner_team: {owner}\n"
        f"description: {json.dumps(TODO)}\n"
    )
    return folder / "domain.yaml"


# --- new product -----------------------------------------------------------------------------


def _relative(path: Path, root: Path) -> str:
    """``path`` as a source names it: relative to the mesh folder when inside it."""
    resolved = path.resolve() if not any(c in str(path) for c in "*?[") else path.absolute()
    try:
        return str(resolved.relative_to(root.resolve()))
    except ValueError:
        return str(resolved)


def _file_kind(origin: str, files: list[Path]) -> str:
    kinds = {_KINDS.get(f.suffix.lower()) for f in files}
    if None in kinds or len(kinds) != 1:
        suffixes = sorted({f.suffix or "(none)" for f in files})
        raise MeshsimError(
            f"'{origin}' holds files meshsim cannot tell the format of ({', '.join(suffixes)}); "
            f"a source is CSV (.csv .tsv .txt), Parquet (.parquet .pq) or JSON (.json .ndjson "
            f".jsonl), all of one kind",
            hint="point --from at files of one kind",
        )
    return str(next(iter(kinds)))


def _classify(name: str, default: str | None) -> str:
    return "pii" if _PERSONAL.search(name) else (default or "internal")


def _columns(data: pa.Table | pa.Schema, nulls: dict[str, bool]) -> list[tuple[str, str, bool]]:
    from meshsim.spec.types import from_arrow

    schema = data if not hasattr(data, "schema") else data.schema
    bad_names = [f.name for f in schema if not _NAME.match(f.name)]
    unsupported = []
    columns = []
    for field in schema:
        try:
            columns.append((field.name, from_arrow(field.type), nulls.get(field.name, True)))
        except ValueError:
            unsupported.append(f"{field.name} ({field.type})")
    problems = []
    if bad_names:
        problems.append(f"column names {', '.join(bad_names)} are not valid names: {_BAD_NAME}")
    if unsupported:
        problems.append(f"columns {', '.join(unsupported)} have types no spec column can declare")
    if problems:
        raise SpecError(problems, hint="rename or convert those columns, then try again")
    return columns


def _infer_files(root: Path, origin: str) -> tuple[str, dict[str, object], list]:
    """The source of files at ``origin`` and their columns."""
    from meshsim.engine import SourceReadError
    from meshsim.sources.files import resolve_files
    from meshsim.spec.models import CsvSource, FileSource, JsonSource, ParquetSource

    files, missing = resolve_files(Path.cwd(), origin)
    if missing:
        raise MeshsimError(
            f"--from: {missing}", hint="name a file, a folder, a glob or a Delta table"
        )
    kind = _file_kind(origin, files)
    key = "json" if kind == "json" else kind
    source: dict[str, object] = {key: _relative(Path(origin), root)}

    def model() -> FileSource:
        if kind == "csv":
            return CsvSource.model_validate(source)
        if kind == "parquet":
            return ParquetSource.model_validate(source)
        return JsonSource.model_validate(source)

    try:
        data = _read_all(model(), files)
        if kind == "csv" and any(not _NAME.match(n) for n in data.column_names):
            source["normalize_names"] = True
            data = _read_all(model(), files)
    except SourceReadError as exc:
        raise MeshsimError(f"cannot read '{origin}' as {kind}: {exc.message}") from None
    nulls = {name: data.column(name).null_count > 0 for name in data.column_names}
    return kind, source, _columns(data, nulls)


def _read_all(source, files: list[Path]) -> pa.Table:
    from meshsim.sources.files import read_source

    return read_source(source, files, {}, limit=None)


def _infer_delta(root: Path, origin: Path) -> tuple[str, dict[str, object], list]:
    from meshsim.storage.snapshot import load_snapshot

    snapshot = load_snapshot(origin, table=str(origin))
    nulls = {c.name: c.nullable for c in snapshot.columns}  # the Delta schema says
    return (
        "location",
        {"location": _relative(origin, root)},
        _columns(snapshot.arrow_schema(), nulls),
    )


def new_product(mesh_dir: str | Path, ref: str, from_path: str | Path) -> NewProduct:
    """Add the product ``DOMAIN.NAME`` with one table ``NAME`` over ``from_path``."""
    from meshsim.sources.registered import DEFAULT_CLASSIFICATION
    from meshsim.storage import delta

    root = Path(mesh_dir)
    _require_mesh(root)
    domain, dot, name = ref.partition(".")
    if not dot or "." in name:
        raise MeshsimError(
            f"'{ref}' is not DOMAIN.PRODUCT",
            hint="e.g. meshsim new product shop.orders --from x.csv",
        )
    _check_name("domain", domain)
    _check_name("product", name)
    domains = _domains(root)
    if domain not in domains:
        raise MeshsimError(
            unknown_name_message("domain", domain, domains),
            hint=f"create it with 'meshsim new domain {domain}'"
            if not closest(domain, domains)
            else None,
        )
    file = root / domain / "products" / f"{name}.yaml"
    if os.path.lexists(file):
        raise MeshsimError(
            f"product '{ref}' already exists ('{file}')", hint="choose another name, or edit it"
        )
    origin = Path(from_path)
    if delta.exists(origin):
        kind, source, columns = _infer_delta(root, origin)
    else:
        kind, source, columns = _infer_files(root, str(from_path))
    owner = _owner_team(root / domain / "domain.yaml") or f"{domain}-team"
    classified = [
        (n, t, nullable, _classify(n, DEFAULT_CLASSIFICATION)) for n, t, nullable in columns
    ]
    write_product_file(file, _product_yaml(name, owner, kind, source, classified, str(from_path)))
    return NewProduct(file, ref, kind, classified)


def write_product_file(file: Path, text: str) -> None:
    """Write a product file whole or not at all (a reader never sees half of it)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    replace_file(file, text.encode("utf-8"))


class _Flow(dict):
    """A mapping written on one line, as product files write their columns."""


def _flow_mapping(dumper: Any, data: _Flow) -> Any:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def product_yaml(product: Product, header: str) -> str:
    """A whole product spec as a product file: ``header`` as its first comment lines, then
    every field that differs from its default, columns one per line where they fit."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(_Flow, _flow_mapping)
    data = product.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for table in data["tables"]:
        if "columns" in table:
            table["columns"] = [
                c if {"quality", "allow_unmasked"} & c.keys() else _Flow(c)
                for c in table["columns"]
            ]
    body = yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + body


def _owner_team(domain_file: Path) -> str | None:
    match = re.search(r"^owner_team:\s*(\S.*?)\s*$", domain_file.read_text(), re.MULTILINE)
    return match.group(1).strip("'\"") if match else None


def _product_yaml(
    name: str,
    owner: str,
    kind: str,
    source: dict[str, object],
    columns: list[tuple[str, str, bool, str]],
    origin: str,
) -> str:
    todo = json.dumps(TODO)
    method = "external" if kind == "location" else "pipeline"
    lines = [
        f"# Made by 'meshsim new product' from {origin}: the columns were inferred from the data.",
        "# Review the classifications, write the descriptions, then grant it in mesh.yaml.",
        f"name: {name}",
        f"description: {todo}",
        f"owner: {json.dumps(owner)}",
        "production:",
        f"  method: {method}",
        "tables:",
        f"  - name: {name}",
        f"    description: {todo}",
        "    source:",
    ]
    lines += [f"      {key}: {json.dumps(value)}" for key, value in source.items()]
    lines.append("    columns:")
    for column, kind_, nullable, classification in columns:
        flag = "" if nullable else ", nullable: false"
        note = "  # pii by its name: check" if classification == "pii" else ""
        lines.append(
            f"      - {{name: {column}, type: {json.dumps(kind_)}{flag}, "
            f"classification: {classification}, description: {todo}}}{note}"
        )
    return "\n".join(lines) + "\n"


# --- placeholders ----------------------------------------------------------------------------


def placeholder_problems(spec: MeshSpec) -> Iterator[Problem]:
    """A warning for every description still to be written (``TODO: describe``): the
    domain's, the product's and each table's, with its columns' in one warning per table."""
    from meshsim.spec.lint import Problem
    from meshsim.spec.loader import line_of

    def todo(text: str) -> bool:
        return text.startswith("TODO")

    for domain in spec.domains:
        if todo(domain.domain.description):
            yield Problem(
                "warning",
                line_of(spec, domain.path / "domain.yaml", ("description",)),
                f"domain '{domain.name}': its description is still to be written",
            )
    for product in spec.products():
        if todo(product.product.description):
            yield Problem(
                "warning",
                line_of(spec, product.path, ("description",)),
                f"product '{product.ref}': its description is still to be written",
            )
        for index, table in enumerate(product.product.tables):
            if todo(table.description):
                yield Problem(
                    "warning",
                    line_of(spec, product.path, ("tables", index, "description")),
                    f"table '{product.domain}.{table.name}': its description is still to be "
                    f"written",
                )
            columns = [c.name for c in table.columns if todo(c.description)]
            if columns:
                yield Problem(
                    "warning",
                    line_of(spec, product.path, ("tables", index, "columns")),
                    f"table '{product.domain}.{table.name}': the descriptions of columns "
                    f"{', '.join(columns)} are still to be written",
                )
