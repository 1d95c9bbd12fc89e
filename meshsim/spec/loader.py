"""Load a mesh folder into a validated :class:`MeshSpec`.

Layout::

    <mesh>/mesh.yaml
    <mesh>/<domain>/domain.yaml
    <mesh>/<domain>/products/<product>.yaml

Every file is parsed with line numbers so a validation error reads
``domains/customer/products/customer_profiles.yaml:12: tables[0].columns[3].clasification:
unknown key; did you mean 'classification'?``. All problems of all files are collected and
raised together as one :class:`SpecError`; nothing is written when validation fails.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from meshsim.errors import SpecError, closest
from meshsim.spec.models import (
    Column,
    DomainFile,
    MeshFile,
    Policies,
    Product,
    Table,
)
from meshsim.spec.watch import SpecFiles
from meshsim.spec.yamlfile import KeyPath, read_yaml

if TYPE_CHECKING:
    from meshsim.spec.lazy import ParsedDomains


@dataclass(frozen=True)
class TableSpec:
    """A table with the product and domain that own it. ``ref`` is its SQL name."""

    domain: str
    product: str
    table: Table
    product_tags: dict[str, str]

    @property
    def ref(self) -> str:
        return f"{self.domain}.{self.table.name}"

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def columns(self) -> list[Column]:
        return self.table.columns

    def column(self, name: str) -> Column | None:
        return self._columns_by_name.get(name)

    @cached_property
    def _columns_by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.table.columns}

    def table_tags(self) -> dict[str, str]:
        """Product tags, overridden by the table's own."""
        return {**self.product_tags, **self.table.tags}

    def column_tags(self, column: Column) -> dict[str, str]:
        """A column inherits its table's tags and may override them."""
        return {**self.table_tags(), **column.tags}


@dataclass(frozen=True)
class ProductSpec:
    domain: str
    product: Product
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.domain}.{self.product.name}"


@dataclass(frozen=True)
class DomainSpec:
    domain: DomainFile
    products: tuple[ProductSpec, ...]
    path: Path

    @property
    def name(self) -> str:
        return self.domain.name


@dataclass(frozen=True)
class MeshSpec:
    """The whole validated mesh. ``fingerprint`` changes whenever any spec file changes.

    ``domains`` is a tuple, or for a spec loaded lazily a :class:`meshsim.spec.lazy.LazyDomains`
    that parses a domain's files when a lookup by name first needs them (``digest`` is then
    None: the fingerprint is computed when first asked for)."""

    root: Path
    mesh: MeshFile
    domains: Sequence[DomainSpec]
    digest: str | None
    lines: dict[str, dict[KeyPath, int]] = field(default_factory=dict, compare=False, repr=False)
    #: tables whose columns come from their registered Delta table's schema, not the spec
    #: (see meshsim.sources.registered)
    inferred: AbstractSet[str] = field(default=frozenset(), compare=False)

    @property
    def name(self) -> str:
        return self.mesh.name

    @cached_property
    def memo(self) -> dict[str, Any]:
        """What other modules derive from this spec once (it is immutable), such as compiled
        policy indexes; a spec made from this one starts with none."""
        return {}

    @property
    def fingerprint(self) -> str:
        if self.digest is not None:
            return self.digest
        if "fingerprint" not in self.memo:
            from meshsim.spec.lazy import LazyDomains

            assert isinstance(self.domains, LazyDomains)
            self.memo["fingerprint"] = self.domains.fingerprint()
        return self.memo["fingerprint"]

    def _lazy(self) -> Any:
        """The lazily loaded domains, or None once there is nothing left to load."""
        from meshsim.spec.lazy import LazyDomains

        domains = self.domains
        return domains if isinstance(domains, LazyDomains) and not domains.loaded else None

    def domain(self, name: str) -> DomainSpec | None:
        lazy = self._lazy()
        if lazy is not None:
            return lazy.named(name)
        return next((d for d in self.domains if d.name == name), None)

    @property
    def policies(self) -> Policies:
        return self.mesh.policies

    # The lookups by name are dictionaries built once per spec (a spec is immutable): checks
    # and queries look tables, products and consumers up inside loops over the whole mesh.

    def products(self) -> list[ProductSpec]:
        return list(self._products)

    def tables(self) -> list[TableSpec]:
        return list(self._tables)

    def table(self, ref: str) -> TableSpec | None:
        if self._lazy() is not None:
            domain = self.domain(ref.split(".", 1)[0])
            tables: dict[str, TableSpec] = self.memo.setdefault("tables_of_domain", {})
            for product in domain.products if domain and ref not in tables else ():
                for table in product.product.tables:
                    spec = TableSpec(
                        product.domain, product.product.name, table, dict(product.product.tags)
                    )
                    tables.setdefault(spec.ref, spec)
            return tables.get(ref)
        return self._tables_by_ref.get(ref)

    def product(self, ref: str) -> ProductSpec | None:
        if self._lazy() is not None:
            domain = self.domain(ref.split(".", 1)[0])
            return next((p for p in (domain.products if domain else ()) if p.ref == ref), None)
        return self._products_by_ref.get(ref)

    def consumer(self, name: str):  # -> Consumer | None
        return self._consumers_by_name.get(name)

    def consumer_names(self) -> list[str]:
        return [c.name for c in self.mesh.consumers]

    @cached_property
    def _products(self) -> tuple[ProductSpec, ...]:
        return tuple(p for d in self.domains for p in d.products)

    @cached_property
    def _tables(self) -> tuple[TableSpec, ...]:
        return tuple(
            TableSpec(p.domain, p.product.name, t, dict(p.product.tags))
            for p in self._products
            for t in p.product.tables
        )

    @cached_property
    def _tables_by_ref(self) -> dict[str, TableSpec]:
        found: dict[str, TableSpec] = {}
        for table in self._tables:
            found.setdefault(table.ref, table)  # the first, as a scan would (lint reports twins)
        return found

    @cached_property
    def _products_by_ref(self) -> dict[str, ProductSpec]:
        found: dict[str, ProductSpec] = {}
        for product in self._products:
            found.setdefault(product.ref, product)
        return found

    @cached_property
    def _consumers_by_name(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for consumer in self.mesh.consumers:
            found.setdefault(consumer.name, consumer)
        return found

    def with_policies(self, policies: Policies) -> MeshSpec:
        """The same mesh under other policies (for what-if views)."""
        mesh = self.mesh.model_copy(update={"policies": policies})
        digest = hashlib.sha256((self.fingerprint + policies.model_dump_json()).encode())
        return MeshSpec(
            self.root, mesh, self.domains, digest.hexdigest()[:16], self.lines, self.inferred
        )


# --- key paths and lines ----------------------------------------------------------------


def format_path(path: KeyPath) -> str:
    """``('tables', 0, 'columns', 3, 'type')`` -> ``tables[0].columns[3].type``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_for(lines: dict[KeyPath, int], loc: KeyPath) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _model_fields(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """Valid keys at ``loc`` inside ``model``, for 'did you mean' suggestions."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            info = next(
                (f for f in getattr(current, "model_fields", {}).values() if f.alias == part), None
            )
        if info is None:
            return []
        current = _inner_model(info.annotation)
    if current is None or not hasattr(current, "model_fields"):
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _inner_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _input_path(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """pydantic's error location as a key path of the input: without the union member names
    (``TpchSource``...) and validator names it inserts, which are not keys of the input. A
    key the user wrote is kept whatever its spelling, so ``Colour:`` is reported as a key."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            current = current[part]
        elif isinstance(part, str) and (part[:1].isupper() or part.startswith("function-")):
            continue
        else:
            current = None
        path.append(part)
    return tuple(path)


def validation_problems(
    exc: ValidationError,
    file: Path,
    lines: dict[KeyPath, int],
    model: type[BaseModel],
    data: Any = None,
) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = _input_path(error["loc"], data)
        line = _line_for(lines, loc)
        where = f"{file}:{line}" if line else str(file)
        if error["type"] == "extra_forbidden":
            key = str(loc[-1])
            valid = _model_fields(model, loc)
            guess = closest(key, valid)
            message = f"unknown key '{key}'"
            message += f"; did you mean '{guess}'?" if guess else ""
            message += f" (valid keys: {', '.join(sorted(valid))})" if valid else ""
        else:
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "string_pattern_mismatch":
                message = (
                    f"'{error['input']}' is not a valid name: use lower case letters, digits and "
                    f"underscores, starting with a letter "
                    f"(and domain.table for table references)"
                )
        problems.append(f"{where}: {format_path(loc)}: {message}")
    return problems


def _load_model(
    path: Path,
    model: type[BaseModel],
    problems: list[str],
    lines_out: dict[str, Any],
    contents: dict[Path, bytes] | None = None,
) -> Any:
    try:
        data, lines, raw = read_yaml(path)
    except SpecError as exc:
        problems.extend(exc.problems)
        return None
    lines_out[str(path)] = lines
    if contents is not None:
        contents[path] = raw
    if not isinstance(data, dict):
        problems.append(f"{path}:1: expected a mapping of keys, found {type(data).__name__}")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, path, lines, model, data))
        return None


def load_policies(path: Path) -> Policies:
    """A standalone policies file (the ``policies`` block of mesh.yaml), for what-if views."""
    problems: list[str] = []
    policies = _load_model(Path(path), Policies, problems, {})
    if problems:
        raise SpecError(problems)
    return policies


#: keys only a whole mesh.yaml has: a what-if file with one of them is a whole mesh.yaml
_MESH_ONLY_KEYS = frozenset(MeshFile.model_fields) - {"policies"}


def load_what_if(spec: MeshSpec, path: str | Path) -> MeshSpec:
    """``spec`` as it would be under an edited file, for what-if views: either a whole edited
    ``mesh.yaml`` (consumers, tags and policies all taken from it) or a bare policies block.
    Line numbers of lint messages point into ``path``."""
    path = Path(path)
    problems: list[str] = []
    try:
        data, lines, raw = read_yaml(path)
    except SpecError as exc:
        raise SpecError(exc.problems) from None
    if not isinstance(data, dict):
        raise SpecError([f"{path}:1: expected a mapping of keys, found {type(data).__name__}"])
    whole = bool(_MESH_ONLY_KEYS & set(data))
    if not whole and set(data) == {"policies"}:  # the block with its header, cut from mesh.yaml
        data = data["policies"] if data["policies"] is not None else {}
        lines = {key[1:]: line for key, line in lines.items() if key[:1] == ("policies",)}
    model: type[BaseModel] = MeshFile if whole else Policies
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, path, lines, model, data))
        raise SpecError(
            problems,
            hint="give a whole mesh.yaml or its policies block (grants, tag_grants, masks, "
            "row_filters)",
        ) from None
    if isinstance(parsed, MeshFile):
        mesh = parsed
        key_lines = lines
    else:
        mesh = spec.mesh.model_copy(update={"policies": parsed})
        key_lines = {("policies", *key): line for key, line in lines.items()}
    digest = hashlib.sha256(spec.fingerprint.encode() + raw).hexdigest()[:16]
    where = {**spec.lines, str(spec.root / "mesh.yaml"): key_lines}
    return MeshSpec(spec.root, mesh, spec.domains, digest, where, spec.inferred)


def domain_folders(root: Path) -> list[Path]:
    return [root / name for name in domain_folder_names(root)]


def domain_folder_names(root: Path) -> list[str]:
    """The names of the folders in ``root``, sorted (a scan of every domain joins them to
    the root's text: a Path per folder cost more than its files' stats)."""
    try:
        with os.scandir(root) as entries:  # the entry's type, not a stat of each folder
            return sorted(e.name for e in entries if _is_folder(e))
    except OSError as exc:
        raise SpecError([f"{root}: cannot list the mesh folder: {exc.strerror}"]) from None


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """``Path.is_dir`` of a listed entry: a link to nothing or to itself is no folder."""
    try:
        return entry.is_dir()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False
        raise


def load_domain(
    domain_dir: Path,
    problems: list[str],
    lines: dict[str, Any],
    contents: dict[Path, bytes] | None = None,
) -> DomainSpec | None:
    """One domain folder: its domain.yaml and products, problems appended to ``problems``;
    None for a folder that is not a domain or a domain.yaml that does not validate."""
    domain_file = domain_dir / "domain.yaml"
    if not os.path.lexists(domain_file):
        if not domain_dir.name.startswith((".", "_")):
            problems.append(f"{domain_dir}: folder has no domain.yaml (every folder is a domain)")
        return None
    domain = _load_model(domain_file, DomainFile, problems, lines, contents)
    products = []
    for product_file in product_files(domain_dir / "products", problems):
        product = _load_model(product_file, Product, problems, lines, contents)
        if product is not None and domain is not None:
            products.append(ProductSpec(domain.name, product, product_file))
    if domain is None:
        return None
    if domain.name != domain_dir.name:
        problems.append(
            f"{domain_file}:{lines[str(domain_file)].get(('name',), 1)}: name: domain "
            f"'{domain.name}' must match its folder name '{domain_dir.name}'"
        )
    return DomainSpec(domain, tuple(products), domain_dir)


def product_files(folder: Path, problems: list[str]) -> list[Path]:
    """The ``*.yaml`` entries of a domain's ``products`` folder, sorted; a folder that is
    there but cannot be listed (a link that loops or leads nowhere, a file, no permission) is
    a problem, never a domain without products."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.endswith(".yaml")]
    except FileNotFoundError:
        if os.path.islink(folder):
            problems.append(f"{folder}: the products folder is a link to nothing")
        return []
    except OSError as exc:
        problems.append(f"{folder}: cannot list the products folder: {exc.strerror}")
        return []
    return [folder / name for name in sorted(names) if not name.startswith(".")]


def _mesh_file_of(root: Path) -> Path:
    mesh_file = root / "mesh.yaml"
    if not os.path.lexists(mesh_file):
        raise SpecError(
            [f"no mesh.yaml in '{root}'"],
            hint="point --mesh at a mesh folder (the example is 'domains')",
        )
    return mesh_file


def content_digest(root: Path, contents: dict[Path, bytes]) -> str:
    digest = hashlib.sha256()
    for file, data in contents.items():  # the bytes validated, not a second read
        digest.update(str(file.relative_to(root)).encode())
        digest.update(data)
    return digest.hexdigest()[:16]


_FIX_HINT = "fix the files above, then run 'meshsim validate'"


def load_mesh(
    root: str | Path,
    *,
    lazy: bool = False,
    watch: SpecFiles | None = None,
    parsed: ParsedDomains | None = None,
    scan_index: Path | None = None,
) -> MeshSpec:
    """Load and validate every spec file under ``root``; raise SpecError listing all problems.

    ``lazy``: load mesh.yaml now and each domain's files when the spec is first asked for a
    table or product of that domain (or for all of them): what a query over one table needs
    (:mod:`meshsim.spec.lazy`). ``meshsim validate`` and ``build`` load eagerly. ``watch``
    records every file read, as it is read (:mod:`meshsim.spec.watch`); ``parsed``: earlier
    lazy loads' parses of unchanged domains, reused (:class:`meshsim.spec.lazy.ParsedDomains`);
    ``scan_index``: where a lazy spec's scans keep what each file said
    (:mod:`meshsim.spec.scanindex`)."""
    root = Path(root)
    mesh_file = _mesh_file_of(root)
    problems: list[str] = []
    lines: dict[str, Any] = {}
    contents: dict[Path, bytes] = {}
    if watch is not None:
        watch.watch(mesh_file)
    mesh = _load_model(mesh_file, MeshFile, problems, lines, contents)
    if lazy:
        from meshsim.spec.lazy import LazyDomains

        if problems:
            raise SpecError(problems, hint=_FIX_HINT)
        lazily = LazyDomains(root, lines, watch=watch, parsed=parsed, scan_index=scan_index)
        return MeshSpec(root, mesh, lazily, None, lines)
    if watch is not None:
        watch.watch(root)
    domains: list[DomainSpec] = []
    for domain_dir in domain_folders(root):
        if watch is not None:
            watch.watch_domain(domain_dir)
        domain = load_domain(domain_dir, problems, lines, contents)
        if domain is not None:
            domains.append(domain)
    if problems:
        raise SpecError(problems, hint=_FIX_HINT)
    return MeshSpec(root, mesh, tuple(domains), content_digest(root, contents), lines)


def spec_fingerprint(root: str | Path) -> str:
    """Cheap change detection: name, size and mtime of every spec file and folder.

    Only the three levels a mesh has are looked at (mesh.yaml, <domain>/domain.yaml,
    <domain>/products/*.yaml), with os.scandir and one stat per file: this runs before every
    command. A folder's own mtime stands for the files added to or removed from it, so a
    domain folder is not listed, only its ``domain.yaml`` and ``products`` looked at (a folder
    of data beside the spec, such as a generated mesh's ``_data/``, holds no spec file).
    """
    parts: list[str] = []

    def stat(path: str, what: str) -> os.stat_result | None:
        try:
            return os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a link to itself (ELOOP), a file it may not read
            raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None

    def files(folder: str) -> list[os.DirEntry[str]]:
        try:
            return list(os.scandir(folder))
        except OSError:
            return []

    def add(path: str, found: os.stat_result | None) -> None:
        parts.append(f"{path}:{found.st_size}:{found.st_mtime_ns}" if found else f"{path}:-")

    for entry in files(str(root)):
        if entry.is_dir():
            add(entry.path, stat(entry.path, "folder"))
            add(f"{entry.path}/domain.yaml", stat(f"{entry.path}/domain.yaml", "file"))
            products = f"{entry.path}/products"
            add(products, stat(products, "folder"))
            for product in files(products):
                if product.name.endswith(".yaml"):
                    add(product.path, stat(product.path, "file"))
        elif entry.name.endswith(".yaml"):
            add(entry.path, stat(entry.path, "file"))
    parts.sort()
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def line_of(spec: MeshSpec, file: Path, path: KeyPath) -> str:
    """``file:line`` for a key path, for lint messages."""
    line = _line_for(spec.lines.get(str(file), {}), path)
    return f"{file}:{line}" if line else str(file)
