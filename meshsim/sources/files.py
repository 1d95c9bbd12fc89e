"""File sources (``csv``, ``parquet``, ``json``): which files, what they hold, and their rows
conformed to the declared schema.

A source names a file, a folder (every file under it, hidden ones and ``_``-prefixed ones
left out, as Spark and Delta do) or a glob, absolute or relative to the mesh folder. DuckDB
reads them (:func:`meshsim.engine.read_files`) with the source's reader options; a CSV or JSON
source is read with the declared column types (``types`` / ``columns``), so DuckDB's own
parsing (date formats, decimals) decides whether a value fits; a Parquet file's types must be
ones the declared types hold without loss.

:func:`inspect` finds every problem of a source at once (files missing or unreadable, declared
columns absent, values that do not convert, NULLs in non-nullable columns) and returns the
conformed rows when there is none: ``meshsim validate`` reports the problems, the build writes
the rows. Undeclared columns of the files are not loaded, and are reported as warnings.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from meshsim.spec.models import CsvSource, FileSource, JsonSource, ParquetSource, Table
from meshsim.spec.types import can_hold, from_arrow, normalize_type, to_arrow

if TYPE_CHECKING:
    import pyarrow as pa

#: Characters DuckDB reads as a glob in a file name (a file so named cannot be read as itself)
_GLOB_CHARS = frozenset("*?[")

#: the file kind (:data:`meshsim.engine.FILE_READERS`) and the path field of each source
_READERS: dict[type, tuple[str, str]] = {
    CsvSource: ("csv", "csv"),
    ParquetSource: ("parquet", "parquet"),
    JsonSource: ("json", "json_"),
}

#: DuckDB's spelling of spec types that DuckDB does not know by the spec's name
_DUCKDB_NAMES = {
    "string": "VARCHAR",
    "text": "VARCHAR",
    "binary": "BLOB",
    "timestamp_ntz": "TIMESTAMP",
    "timestamp_tz": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Finding:
    """One problem of a file source; ``column`` is the index of the declared column it is
    about (None: the source itself)."""

    severity: Literal["error", "warning"]
    message: str
    column: int | None = None


@dataclass
class Inspection:
    """What :func:`inspect` found, and the conformed rows when no finding is an error."""

    files: list[Path]
    findings: list[Finding] = field(default_factory=list)
    data: pa.Table | None = None

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def source_pattern(source: FileSource) -> str:
    return str(getattr(source, _READERS[type(source)][1]))


def reader_options(source: FileSource) -> dict[str, Any]:
    """The source's reader options as DuckDB names them (unset ones left to DuckDB)."""
    path_field = _READERS[type(source)][1]
    return {
        name: value
        for name, value in source.model_dump(exclude_none=True).items()
        if name != path_field
    }


def resolve_files(root: Path, pattern: str) -> tuple[list[Path], str | None]:
    """The files a source names (sorted), or why there are none."""
    path = Path(pattern).expanduser()
    path = path if path.is_absolute() else root / path
    if any(c in _GLOB_CHARS for c in pattern):
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in found if p.is_file()]
        return files, None if files else f"the glob '{path}' matches no file"
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        return files, None if files else f"the folder '{path}' holds no file"
    if not os.path.lexists(path):
        return [], f"'{path}' does not exist"
    if not path.is_file():
        return [], f"'{path}' is not a regular file"
    return [path], None


def files_digest(files: list[Path]) -> str:
    """Changes when a file is added, removed, rewritten or touched (name, size, mtime)."""
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def duckdb_type(spec_type: str) -> str | None:
    """The DuckDB type a reader is told to parse a column as; None leaves it to DuckDB.

    A decimal is read with every place DuckDB can hold past the declared integer digits:
    DuckDB would round ``1.155`` to ``1.16`` for ``DECIMAL(15,2)``, while the Arrow cast to
    the declared type afterwards refuses any value it would change."""
    try:
        t = normalize_type(spec_type)
    except ValueError:
        return None
    decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", t)
    if decimal:
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        return f"DECIMAL(38,{38 - (precision - scale)})"
    if not re.fullmatch(r"[a-z_]+", t):  # a nested type: DuckDB infers it,
        return None  # and the cast to the declared Arrow type checks it
    return _DUCKDB_NAMES.get(t, t.upper())


#: the one date spelling a reader takes unless a format is given (DuckDB's sniffer would
#: otherwise read ``01/02/2026`` as 1 February or 2 January, whichever the sample suggests)
ISO_DATE = "%Y-%m-%d"


def declared_reading(
    kind: str,
    declared: dict[str, str],
    detected: list[tuple[str, str]] | None = None,
    dateformat: str | None = None,
) -> dict[str, Any]:
    """Reader options that make DuckDB parse the ``declared`` columns (name: spec type) of a
    csv or json file as declared, never as it infers them (so text stays text as written).
    ``detected`` (name, DuckDB type) are the file's columns: only those are typed for a CSV,
    and a JSON file keeps its undeclared keys, as detected."""
    typed = {n: t for n, s in declared.items() if (t := duckdb_type(s)) is not None}
    if kind == "json":
        # a JSON number is a double to DuckDB: a decimal is read from its text, exactly; a
        # text column as JSON, so that a number there is refused, not printed anew (engine)
        typed = {
            n: "VARCHAR" if t.startswith("DECIMAL") else "JSON" if t == "VARCHAR" else t
            for n, t in typed.items()
        }
    options: dict[str, Any] = {}
    if kind == "csv":
        names = {n for n, _ in detected} if detected is not None else set(typed)
        columns = {n: t for n, t in typed.items() if n in names}
        if columns:
            options["types"] = columns
    elif kind == "json":
        columns = dict(typed) if detected is None else {n: typed.get(n, t) for n, t in detected}
        if columns:
            options["columns"] = columns
    else:
        return options
    if dateformat is not None or "DATE" in columns.values():
        options["dateformat"] = dateformat or ISO_DATE
    return options


def read_source(source: FileSource, files: list[Path], extra: dict[str, Any], limit: int | None):
    from meshsim.engine import read_files

    kind = _READERS[type(source)][0]
    options = {**reader_options(source), **extra}
    return read_files([str(f) for f in files], kind, options, limit=limit)


def _typed(source: FileSource, columns: dict[str, str]) -> dict[str, Any]:
    """Reader options that make DuckDB parse ``columns`` (name: spec type) as declared."""
    if not columns or not isinstance(source, CsvSource | JsonSource):
        return {}
    kind = _READERS[type(source)][0]
    return declared_reading(kind, columns, dateformat=source.dateformat)


def detect_schema(source: FileSource, files: list[Path]) -> pa.Schema:
    """The columns DuckDB detects in ``files`` (raises SourceReadError)."""
    return read_source(source, files, {}, limit=0).schema


def inspect(root: Path, table: Table, ref: str) -> Inspection:
    """Every problem of ``table``'s file source, and its rows conformed to the declared
    schema when there is none."""
    from meshsim.engine import SourceReadError

    source = table.source
    assert isinstance(source, CsvSource | ParquetSource | JsonSource)
    kind = _READERS[type(source)][0]
    files, missing = resolve_files(root, source_pattern(source))
    result = Inspection(files)
    prefix = f"table '{ref}': source.{kind}"
    if missing:
        result.findings.append(Finding("error", f"{prefix}: {missing}"))
        return result
    for file in files:
        if any(c in _GLOB_CHARS for c in file.name):
            result.findings.append(
                Finding(
                    "error",
                    f"{prefix}: file '{file}' has * ? or [ in its name, which "
                    "DuckDB reads as a glob; rename it",
                )
            )
    if not result.ok:
        return result
    try:
        detected = detect_schema(source, files)
    except SourceReadError as exc:
        result.findings.append(Finding("error", f"{prefix} '{_shown(files)}': {exc.message}"))
        return result
    listing = ", ".join(f"{f.name} {_spec_name(f.type)}" for f in detected)
    if not table.columns:
        result.findings.append(
            Finding(
                "error",
                f"table '{ref}' declares no columns; policies need them (its files have: "
                f"{listing}; 'meshsim new product' writes them for you)",
            )
        )
        return result
    names = set(detected.names)
    for position, column in enumerate(table.columns):
        if column.name not in names:
            result.findings.append(
                Finding(
                    "error",
                    f"table '{ref}': column '{column.name}' is not in '{_shown(files)}' "
                    f"(its columns: {listing})",
                    position,
                )
            )
    undeclared = [n for n in detected.names if n not in {c.name for c in table.columns}]
    if undeclared:
        result.findings.append(
            Finding(
                "warning",
                f"table '{ref}': columns {', '.join(undeclared)} of '{_shown(files)}' are not "
                f"declared, so they are not loaded; declare them to publish them",
            )
        )
    if not result.ok:
        return result
    _load(source, files, table, ref, detected, result, prefix)
    return result


def _shown(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{files[0]} and {len(files) - 1} more"


def _spec_name(dtype: pa.DataType) -> str:
    try:
        return from_arrow(dtype)
    except ValueError:
        return str(dtype)


def _load(
    source: FileSource,
    files: list[Path],
    table: Table,
    ref: str,
    detected: pa.Schema,
    result: Inspection,
    prefix: str,
) -> None:
    """Read the declared columns as declared; on failure, read each column alone, so that
    every column whose values do not convert is reported, not only the first."""
    import pyarrow as pa

    from meshsim.engine import SourceReadError

    typed = {c.name: c.type for c in table.columns}
    if isinstance(source, ParquetSource):
        for position, column in enumerate(table.columns):
            actual = _spec_name(detected.field(column.name).type)
            try:
                holds = can_hold(column.type, actual)
            except ValueError:
                holds = False
            if not holds:
                result.findings.append(
                    Finding(
                        "error",
                        f"table '{ref}': column '{column.name}' is declared {column.type}, "
                        f"which cannot hold the {actual} values of '{_shown(files)}'; "
                        f"declare {actual}",
                        position,
                    )
                )
        if not result.ok:
            return
    try:
        data = read_source(source, files, _typed(source, typed), limit=None)
    except SourceReadError:
        try:  # the file itself, or the declared types?
            read_source(source, files, {}, limit=None)
        except SourceReadError as exc:
            result.findings.append(Finding("error", f"{prefix} '{_shown(files)}': {exc.message}"))
            return
        for position, column in enumerate(table.columns):
            one = {column.name: column.type}
            try:
                read_source(source, files, _typed(source, one), limit=None)
            except SourceReadError as exc:
                result.findings.append(
                    Finding(
                        "error",
                        f"table '{ref}': column '{column.name}' declared {column.type} does "
                        f"not hold the data of '{_shown(files)}': {exc.message}",
                        position,
                    )
                )
        if result.ok:  # the columns convert one by one but not together: say so
            result.findings.append(
                Finding("error", f"table '{ref}': '{_shown(files)}' cannot be read as declared")
            )
        return
    arrays = []
    for position, column in enumerate(table.columns):
        values = data.column(column.name)
        if not column.nullable and values.null_count:
            result.findings.append(
                Finding(
                    "error",
                    f"table '{ref}': column '{column.name}' is declared nullable: false but "
                    f"has {values.null_count} NULL value(s) in '{_shown(files)}'",
                    position,
                )
            )
            continue
        try:
            arrays.append(values.cast(to_arrow(column.type), safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            result.findings.append(
                Finding(
                    "error",
                    f"table '{ref}': column '{column.name}' cannot be stored as "
                    f"{column.type}: {str(exc).splitlines()[0]}",
                    position,
                )
            )
    if result.ok:
        schema = pa.schema(
            [pa.field(c.name, to_arrow(c.type), nullable=c.nullable) for c in table.columns]
        )
        result.data = pa.Table.from_arrays(arrays, schema=schema)
