"""An old version of a table, read under the published version's column names.

Policies (grants, masks, row filters) name the columns of the published version. A time
travel to an older version reads each of those columns from the column of the old version
that holds the same data, matched by physical identity, never by the name it had then:

- column mapping in id mode: the field id (``delta.columnMapping.id``);
- name mode (and a version before column mapping was enabled, whose physical names are the
  logical names it keeps): the physical name (``delta.columnMapping.physicalName``);
- no column mapping: the name itself (without column mapping a column cannot be renamed).

So after a rename or a swap of two names the mask on ``ssn`` still masks the data ``ssn``
holds now. A column of the old version the published one no longer has (dropped, or
dropped and added again under a new physical name) is not read at all; a published column
the old version did not have is read as NULL (as the published version reads it from the
old files), for row filters only: it is :attr:`Snapshot.absent`, never shown.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshsim.storage.snapshot import Column, Snapshot


def _identity(column: Column, by_id: bool) -> tuple[str, Any]:
    return ("id", column.field_id) if by_id else ("name", column.physical_name)


def _renamed(values: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    return {renames[k]: v for k, v in values.items() if k in renames}


def named_as(old: Snapshot, published: Snapshot) -> Snapshot:
    """``old`` with its columns under ``published``'s names, in its order (``old`` itself
    when it is the published version)."""
    if old.version == published.version:
        return old
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
