"""Are a snapshot's data files there and readable? Checked without reading any data.

A Delta log names every data file with its size; a file that is gone, has another size or
whose Parquet footer cannot be read is damaged, and a query over it would fail inside the
engine with a message naming neither the table nor the file. :func:`check_files` finds every
damaged file of a snapshot (``meshsim doctor`` lists them); :func:`require_files` raises one
:class:`StorageError` naming the table and the files, which the query path raises before the
engine sees them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshsim.errors import StorageError

if TYPE_CHECKING:
    from meshsim.storage.snapshot import Snapshot


@dataclass(frozen=True)
class FileProblem:
    """One damaged data file of a table."""

    table: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"'{self.path}' {self.problem}"


def check_file(table: str, path: str, size: int, *, footer: bool = True) -> FileProblem | None:
    """What is wrong with one data file (``None`` if nothing): present, of the size the log
    records, and (with ``footer``) a Parquet file whose footer can be read."""
    try:
        actual = os.stat(path).st_size
    except FileNotFoundError:
        return FileProblem(table, path, "is missing")
    except OSError as exc:
        return FileProblem(table, path, f"cannot be read ({exc.strerror})")
    if actual != size:
        return FileProblem(table, path, f"has {actual} bytes, the Delta log records {size}")
    if footer:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(path)
        except (pa.ArrowException, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return FileProblem(table, path, f"is not a readable Parquet file ({reason})")
    return None


def check_files(snapshot: Snapshot, *, footers: bool = True) -> list[FileProblem]:
    """Every damaged data file of ``snapshot`` (footers read only when ``footers``)."""
    problems = []
    for data_file in snapshot.files:
        problem = check_file(snapshot.table, data_file.path, data_file.size, footer=footers)
        if problem is not None:
            problems.append(problem)
    return problems


def damaged_files_error(table: str, version: int, problems: list[FileProblem]) -> StorageError:
    """The error a query or build raises. It names each file by its name only: the folders
    of a partitioned table hold partition values (of rows or columns the asking consumer may
    not see); ``meshsim doctor`` and the error's ``path`` give the full path."""
    listed = "; ".join(f"'{os.path.basename(p.path)}' {p.problem}" for p in problems[:3])
    more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
    return StorageError(
        f"table '{table}' version {version} has {len(problems)} damaged data file(s): "
        f"{listed}{more}",
        table=table,
        path=problems[0].path,
        hint="run 'meshsim doctor' to list them; 'meshsim doctor --repair' (or 'meshsim build')"
        " rewrites a generated table",
    )


def require_files(snapshot: Snapshot, *, footers: bool = True) -> None:
    """Raise a :class:`StorageError` naming the table and its damaged files, if any."""
    problems = check_files(snapshot, footers=footers)
    if problems:
        raise damaged_files_error(snapshot.table, snapshot.version, problems)


#: how much data :func:`undecodable_files` decodes at most, looking for a damaged page
DECODE_BUDGET_BYTES = 256 << 20


def undecodable_files(
    snapshot: Snapshot, *, budget_bytes: int = DECODE_BUDGET_BYTES
) -> list[FileProblem]:
    """The data files of ``snapshot`` whose pages cannot be decoded (size and footer intact):
    decoded in full, batch by batch, up to ``budget_bytes`` of files. Only for explaining a
    failure the engine did not attribute to a file; it reads data, so it is slow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    problems, spent = [], 0
    for data_file in snapshot.files:
        spent += data_file.size
        if spent > budget_bytes:
            break
        try:
            for _ in pq.ParquetFile(data_file.path).iter_batches(batch_size=65536):
                pass
        except (pa.ArrowException, OSError, ValueError):
            problems.append(
                FileProblem(snapshot.table, data_file.path, "has data pages that cannot be decoded")
            )
    return problems
