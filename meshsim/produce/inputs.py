"""A producer's input: files read into Arrow by DuckDB, conformed to a table's schema.

A file's format comes from its suffix; a folder is every visible file in it (names starting
with ``.`` or ``_``, such as ``_SUCCESS``, are skipped), all of one format. A CSV or JSON
file is read with the declared column types, as a build reads a file source (text stays
text as written, decimals are exact, dates are ISO unless a format is given). Conforming
casts each column to the declared type only where no value changes (pyarrow's safe casts,
and a round trip for floats stored as decimals), and reports every problem at once: missing
and undeclared columns, values that do not fit, NULLs in columns declared not nullable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.errors import WriteError, closest

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.spec.loader import TableSpec

SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".json": "json",
    ".ndjson": "json",
    ".jsonl": "json",
}
_GLOB = set("*?[")


@dataclass(frozen=True)
class TargetColumn:
    """One column a write must provide, as the table stores it."""

    name: str
    type: pa.DataType
    nullable: bool
    spelling: str  # the type as the spec writes it, for messages


def _kind(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())


def input_files(path: str | Path) -> tuple[list[str], str]:
    """The files ``path`` names and their one format (a key of :data:`SUFFIXES`' values)."""
    if not str(path).strip():
        raise WriteError(["no input named (--from is empty)"], hint="name a file or a folder")
    source = Path(path)
    formats = ", ".join(sorted(SUFFIXES))
    if _GLOB & set(str(source)):
        raise WriteError(
            [f"input '{source}' holds a glob character (* ? [); name a file or a folder"]
        )
    if not source.exists():
        raise WriteError([f"input '{source}' does not exist"], hint="check the path")
    if source.is_file():
        kind = _kind(source)
        if kind is None:
            raise WriteError(
                [f"input '{source}' is not a file meshsim can read (suffixes: {formats})"]
            )
        if source.stat().st_size == 0:
            raise WriteError([f"input '{source}' is empty (0 bytes)"], hint="nothing was written")
        return [str(source.resolve())], kind
    if not source.is_dir():
        raise WriteError(
            [f"input '{source}' is not a regular file or a folder (a device, a pipe?)"],
            hint="name a file, or a folder of files of one format",
        )
    visible = sorted(f for f in source.iterdir() if not f.name.startswith((".", "_")))
    files = [f for f in visible if f.is_file()]
    kinds = {f: _kind(f) for f in files}
    problems = [
        f"'{f}' is not a file meshsim can read (suffixes: {formats})"
        for f, k in kinds.items()
        if k is None
    ]
    problems += [f"'{f}' is empty (0 bytes)" for f in files if f.stat().st_size == 0]
    folders = [f.name for f in visible if f.is_dir()]
    if folders:
        problems.append(
            f"input folder '{source}' holds subfolder(s) {', '.join(repr(f) for f in folders)}, "
            f"which are not read; move their files up, or write each folder on its own"
        )
    found = sorted({k for k in kinds.values() if k is not None})
    if not files:
        problems.append(f"input folder '{source}' holds no files")
    elif len(found) > 1:
        problems.append(f"input folder '{source}' mixes formats ({', '.join(found)}); use one")
    if problems:
        raise WriteError(problems, hint="name a file, or a folder of files of one format")
    return [str(f.resolve()) for f in files], found[0]


def read_input(
    path: str | Path, columns: list[TargetColumn], *, table: str, dateformat: str | None = None
) -> pa.Table:
    """Every row of the files ``path`` names; a CSV or JSON file's declared ``columns`` parsed
    as declared (:func:`meshsim.sources.files.declared_reading`, as a build reads a file
    source), so no value is inferred as another type and then changed by a cast."""
    from meshsim import engine
    from meshsim.sources.files import declared_reading

    files, kind = input_files(path)
    if dateformat is not None and kind not in ("csv", "json"):
        raise WriteError([f"a date format applies to csv and json input, not {kind} ('{path}')"])
    if kind not in ("csv", "json"):
        return _read(path, files, kind, {})
    if kind == "csv" and len(files) > 1:  # DuckDB's error would name no file
        _check_headers(path, files)
    detected = _read(path, files, kind, None)
    declared = {c.name: c.spelling for c in columns}
    try:
        return engine.read_files(
            files, kind, declared_reading(kind, declared, detected, dateformat)
        )
    except engine.SourceReadError:
        pass
    # which declared columns do not parse: each alone, so every one is reported at once
    problems = []
    for column in columns:
        one = {column.name: column.spelling}
        try:
            engine.read_files(files, kind, declared_reading(kind, one, detected, dateformat))
        except engine.SourceReadError as exc:
            problems.append(f"column '{column.name}' ({column.spelling}): {exc.message}")
    if not problems:  # each parses alone but not together: say what DuckDB says
        _read(path, files, kind, declared_reading(kind, declared, detected, dateformat))
    names = [name for name, _ in detected]
    raise WriteError(
        [f"'{path}': {p}" for p in problems + shape_problems(names, columns, table=table)],
        table=table,
        hint="fix the input (dates are ISO, 2026-01-31, unless --dateformat says); "
        "nothing was written",
    )


def _read(path: str | Path, files: list[str], kind: str, options: dict[str, Any] | None) -> Any:
    """The rows of ``files`` (their detected columns when ``options`` is None)."""
    from meshsim import engine

    try:
        if options is None:
            return engine.file_columns(files, kind)
        return engine.read_files(files, kind, options)
    except ValueError as exc:
        raise WriteError([f"cannot read '{path}' as {kind}: {exc}"]) from None


def _check_headers(path: str | Path, files: list[str]) -> None:
    """Name the files of a folder whose columns differ from the first one's."""
    from meshsim import engine

    headers = {}
    for file in files:
        try:
            headers[file] = [name for name, _ in engine.file_columns([file], "csv")]
        except ValueError as exc:
            raise WriteError([f"cannot read '{file}' as csv: {exc}"]) from None
    first = files[0]
    differ = [f for f in files if headers[f] != headers[first]]
    if differ:
        listed = "; ".join(f"'{Path(f).name}' has {', '.join(headers[f])}" for f in differ[:5])
        raise WriteError(
            [
                f"the files of '{path}' have different columns: '{Path(first).name}' has "
                f"{', '.join(headers[first])}, but {listed} (the columns differ)"
            ],
            hint="give every file of the folder the same header; nothing was written",
        )


def shape_problems(names: list[str], columns: list[TargetColumn], *, table: str) -> list[str]:
    """Declared columns missing from an input with columns ``names``, and undeclared ones."""
    wanted = {c.name for c in columns}
    problems = []
    for column in columns:
        if column.name not in names:
            guess = closest(column.name, [n for n in names if n not in wanted])
            near = f" (the input has '{guess}')" if guess else ""
            problems.append(f"column '{column.name}' ({column.spelling}) is missing{near}")
    extra = [n for n in names if n not in wanted]
    if extra:
        problems.append(
            f"column(s) {', '.join(repr(n) for n in extra)} are not declared for '{table}' "
            f"(declared: {', '.join(c.name for c in columns)})"
        )
    return problems


def target_columns(table: TableSpec, stored: pa.Schema) -> list[TargetColumn]:
    """The declared columns, or the stored ones for a registered table declaring none."""
    from meshsim.spec.types import from_arrow, to_arrow

    if table.columns:
        return [TargetColumn(c.name, to_arrow(c.type), c.nullable, c.type) for c in table.columns]
    return [TargetColumn(f.name, f.type, f.nullable, from_arrow(f.type)) for f in stored]


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """``column`` as ``target`` with no value changed; ValueError saying why not."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.type == target:
        return column
    if pa.types.is_null(column.type):  # a JSON key that is null in every row
        return pa.chunked_array([pa.nulls(len(column), target)])
    try:
        out = column.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(str(exc).strip().splitlines()[0]) from None
    if pa.types.is_floating(column.type) and pa.types.is_decimal(target):
        same = pc.equal(out.cast(column.type), column)
        if not pc.all(pc.or_kleene(same, pc.is_null(column))).as_py():
            raise ValueError(f"values have more than {target.scale} decimal places")
    return out


def conform(
    data: pa.Table, columns: list[TargetColumn], *, table: str, declared_in: str
) -> pa.Table:
    """``data`` as the table stores it (declared order and types); a WriteError listing every
    mismatch when it does not fit."""
    import pyarrow as pa

    names = list(data.column_names)
    problems: list[str] = []
    arrays = []
    for column in columns:
        if column.name not in names:
            continue
        values = data.column(column.name)
        try:
            cast = _cast(values, column.type)
        except ValueError as exc:
            problems.append(
                f"column '{column.name}': {values.type} values cannot be stored as "
                f"{column.spelling} ({exc})"
            )
            continue
        if not column.nullable and cast.null_count:
            problems.append(
                f"column '{column.name}' is declared not nullable but has {cast.null_count} "
                f"NULL value(s)"
            )
        arrays.append(cast)
    problems += shape_problems(names, columns, table=table)
    if problems:
        raise WriteError(
            [f"table '{table}': {p}" for p in problems],
            table=table,
            hint=f"fix the input, or the declared columns in {declared_in}; nothing was written",
        )
    schema = pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in columns])
    return pa.Table.from_arrays(arrays, schema=schema)
