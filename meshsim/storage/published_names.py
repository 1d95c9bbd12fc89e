"""An old version of a table, read under the published version's column names.

Policies (grants, masks, row filters) name the columns of the published version. A time
travel to an older version reads each of those columns from the column of the old version
that holds the same data, matched by physical identity, never by the name it had then:

- column mapping in id mode: the field id (``delta.columnMapping.id``);
- name mode (and a version before column mapping was enabled, whose physical names are the
  logical names it keeps): the physical name (``delta.columnMapping.physicalName``);
- no column mapping: the name itself (without column mapping a column cannot be renamed).

So after a rename or a swap of two names the mask on ``ssn`` still masks the data ``ssn``
holds now. Where identity does not carry across a change, the old version is refused rather
than guessed: column mapping turned off since (its files were rewritten under the logical
names), or a nested column whose fields changed (fields renamed, swapped, added or dropped
inside it). A column of the old version the published one no longer has (dropped, or
dropped and added again under a new physical name) is not read at all; a published column
the old version did not have is read as NULL (as the published version reads it from the
old files), for row filters only: it is :attr:`Snapshot.absent`, never shown.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from meshsim.errors import StorageError

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.storage.snapshot import Column, Snapshot


def _is_nested(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_nested(dtype)


def _identity(column: Column, by_id: bool) -> tuple[str, Any]:
    return ("id", column.field_id) if by_id else ("name", column.physical_name)


def _renamed(values: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    return {renames[k]: v for k, v in values.items() if k in renames}


def _layout(dtype: pa.DataType) -> bytes:
    """A nested type with every field's name and column-mapping metadata, for comparison
    (Arrow's type equality ignores field metadata, where physical names and ids live)."""
    import pyarrow as pa

    return bytes(pa.schema([pa.field("c", dtype)]).serialize())


def _refuse(old: Snapshot, why: str) -> StorageError:
    return StorageError(
        f"table '{old.table}' cannot be read at version {old.version} under the published "
        f"version's column names: {why}; time travel to it is refused so that the policies "
        f"on the published columns keep applying to the same data",
        table=old.table,
        hint="query the published version, or a version after that change",
    )


def named_as(old: Snapshot, published: Snapshot) -> Snapshot:
    """``old`` with its columns under ``published``'s names, in its order (``old`` itself
    when it is the published version). Refused (StorageError) where physical identity does
    not carry across: column mapping turned off since (the files were rewritten under the
    logical names, so old physical names mean nothing now), or a nested column whose fields
    changed (a field renamed or swapped inside a struct would be read under its old name)."""
    if old.version == published.version:
        return old
    modes = (old.column_mapping_mode, published.column_mapping_mode)
    if modes[0] != modes[1] and modes != ("none", "name"):
        raise _refuse(
            old,
            f"it uses column mapping '{modes[0]}' at version {old.version} and "
            f"'{modes[1]}' at the published version {published.version}",
        )
    by_id = old.column_mapping_mode == published.column_mapping_mode == "id"
    old_columns = {_identity(c, by_id): c for c in old.columns}
    columns = []
    absent = set()
    renames: dict[str, str] = {}  # old name -> published name
    for current in published.columns:
        then = old_columns.get(_identity(current, by_id))
        if then is None:
            columns.append(current)
            absent.add(current.name)
        else:
            if _is_nested(current.type) and _layout(then.type) != _layout(current.type):
                raise _refuse(
                    old,
                    f"column '{current.name}' has other nested fields at version "
                    f"{old.version} than at the published version {published.version}",
                )
            columns.append(dataclasses.replace(then, name=current.name))
            renames[then.name] = current.name
    files = tuple(
        dataclasses.replace(
            f,
            partition_values=_renamed(f.partition_values, renames),
            min_values=_renamed(f.min_values, renames),
            max_values=_renamed(f.max_values, renames),
            null_counts=_renamed(f.null_counts, renames),
        )
        for f in old.files
    )
    return dataclasses.replace(
        old,
        columns=tuple(columns),
        partition_columns=tuple(renames[c] for c in old.partition_columns if c in renames),
        files=files,
        absent=frozenset(absent),
        names_from=published.version,
    )
