"""How ``workspace.json`` holds a :class:`~meshsim.workspace.WorkspaceState` on disk, so
that a query reads the record of the table it uses, not one per table of the mesh.

A workspace of up to :data:`SHARD_ABOVE` tables keeps every record in ``workspace.json``
itself (readable, and what a workshop shows). A larger one keeps each domain's records (its
tables, pending tables and publications) in a *shard*, ``state/<domain>-<digest>.json``, named
by the digest of its bytes, and ``workspace.json`` holds the rest of the state and
``shards``: the file of each domain. Parsing the records of 10,000 tables took 17 ms in every
process that opened the workspace; the header of 1,000 domains parses in about a millisecond
and a query reads its table's domain's shard, once.

A shard is never changed in place: a write writes the shards whose bytes changed (a write to
one table writes one shard), then replaces ``workspace.json`` atomically, so a reader sees the
old state or the new one whole. A shard no longer named is removed :data:`SHARD_GRACE_S`
after the write that stopped naming it (its time is set then: a shard written long ago, of a
domain unchanged since, would otherwise go at once), so a reader that has just read the
previous ``workspace.json`` still finds its shards. A shard whose bytes do not match its
name, that speaks for another domain's table, or that is not a small regular file, makes the
state invalid (one error naming the file), never a silently different pin.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meshsim.files import replace_file
from meshsim.workspace import TableRecord, WorkspaceState

#: more table records than this (published and pending) go to shards
SHARD_ABOVE = 500
#: how long a shard no longer named stays, for a reader of the previous workspace.json
SHARD_GRACE_S = 600
MAX_SHARD_BYTES = 64 * 1024 * 1024
_DIGEST_BYTES = 10
_SHARD_NAME = re.compile(r"(?P<domain>[a-z][a-z0-9_]*)-[0-9a-f]{20}\.json")

V = TypeVar("V")


class StateFile(WorkspaceState):
    """``workspace.json`` as written: the state, with the records of the domains in
    ``shards`` (domain -> file name in ``state/``) kept in those files instead."""

    shards: dict[str, str] = Field(default_factory=dict)


class Shard(BaseModel):
    """One domain's records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: dict[str, TableRecord] = Field(default_factory=dict)
    pending: dict[str, TableRecord] = Field(default_factory=dict)
    publications: dict[str, list[int]] = Field(default_factory=dict)


_MAPS = ("tables", "pending", "publications")


class ShardProblem(Exception):
    """A shard that cannot stand for its domain's records; the message says why."""


def domain_of(ref: str) -> str | None:
    """The domain whose shard holds ``ref``'s records (None: kept in workspace.json)."""
    domain = ref.split(".", 1)[0]
    return domain if "." in ref and _SHARD_NAME.fullmatch(f"{domain}-{'0' * 20}.json") else None


def encode(
    state: WorkspaceState, shard_above: int | None = None
) -> tuple[bytes, dict[str, tuple[bytes, Shard]]]:
    """The bytes of ``workspace.json`` for ``state``, and each shard it names (by file name:
    its bytes and its records)."""
    limit = SHARD_ABOVE if shard_above is None else shard_above
    if len(state.tables) + len(state.pending) <= limit:
        return (state.model_dump_json(indent=2, by_alias=True) + "\n").encode(), {}
    inline: dict[str, dict[str, Any]] = {name: {} for name in _MAPS}
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for name in _MAPS:
        for ref, value in getattr(state, name).items():
            domain = domain_of(ref)
            into = inline if domain is None else grouped.setdefault(domain, {})
            into.setdefault(name, {})[ref] = value
    files: dict[str, tuple[bytes, Shard]] = {}
    names: dict[str, str] = {}
    for domain, maps in sorted(grouped.items()):
        shard = Shard(**maps)
        data = shard.model_dump_json(by_alias=True).encode()
        names[domain] = f"{domain}-{_digest(data)}.json"
        files[names[domain]] = (data, shard)
    header = StateFile(**{**dict(state), **inline, "shards": names})
    return (header.model_dump_json(indent=2, by_alias=True) + "\n").encode(), files


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=_DIGEST_BYTES).hexdigest()


def write_shards(folder: Path, files: dict[str, tuple[bytes, Shard]]) -> None:
    """Write the shards ``files`` into ``folder`` (one already there with these bytes is left
    alone); before ``workspace.json`` names them."""
    if files:
        folder.mkdir(parents=True, exist_ok=True)
    for name, (data, shard) in files.items():
        path = folder / name
        if not _holds(path, data):
            if os.path.isdir(path) and not os.path.islink(path):
                raise ShardProblem(
                    f"cannot write the state shard '{path}': a folder is in its place "
                    "(meshsim never makes one there)"
                )
            replace_file(path, data)
        _remember(folder, name, shard)


def retire(folder: Path, names: set[str]) -> None:
    """Start the grace of the shards ``names``, which ``workspace.json`` has just stopped
    naming: :func:`collect` removes a shard :data:`SHARD_GRACE_S` after this."""
    for name in names:
        if not _SHARD_NAME.fullmatch(name):
            continue
        try:
            os.utime(folder / name, follow_symlinks=False)
        except OSError:  # gone already, or not ours to touch: collect leaves what it cannot
            continue


def collect(folder: Path, keep: set[str]) -> None:
    """Remove the shards of ``folder`` not in ``keep`` whose grace (:func:`retire`) is over."""
    if not folder.is_dir():
        return
    _collect(folder, keep)


def _holds(path: Path, data: bytes) -> bool:
    try:
        return read_shard_bytes(path) == data
    except (OSError, ShardProblem):
        return False


def _collect(folder: Path, keep: set[str]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    old = time.time() - SHARD_GRACE_S
    for entry in entries:
        if entry.name in keep or not _SHARD_NAME.fullmatch(entry.name):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < old:
                os.unlink(entry.path)
        except OSError:  # removed meanwhile, or a folder it may not change: left
            continue


def read_shard_bytes(path: Path) -> bytes:
    """A shard's bytes, opened as the scan index is: not through a link, never waiting on a
    FIFO, a regular file of a bounded size."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SHARD_BYTES:
            raise ShardProblem("it is not a small regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(info.st_size + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SHARD_BYTES:
        raise ShardProblem("it is not a small regular file")
    return data


#: parsed shards by path and name: a name is the digest of the bytes, so a shard read (or
#: written) once in this process is not read again
_parsed: dict[tuple[str, str], Shard] = {}
_REMEMBERED = 20_000


def is_shard_of(name: str, domain: str) -> bool:
    """Whether ``name`` is a shard file name of ``domain`` (no path, its digest's form)."""
    match = _SHARD_NAME.fullmatch(name)
    return match is not None and match["domain"] == domain


def load_shard(folder: Path, domain: str, name: str) -> Shard:
    """The records of ``domain`` in the shard ``name``; ShardProblem when it cannot be them."""
    if not is_shard_of(name, domain):
        raise ShardProblem(f"'{name}' is not a shard name of domain '{domain}'")
    key = (str(folder), name)
    found = _parsed.get(key)
    if found is not None:
        return found
    path = folder / name
    try:
        data = read_shard_bytes(path)
    except FileNotFoundError:
        raise ShardProblem(f"its shard '{path}' is missing") from None
    except OSError as exc:
        raise ShardProblem(f"its shard '{path}' cannot be read: {exc.strerror}") from None
    except ShardProblem as exc:
        raise ShardProblem(f"its shard '{path}': {exc}") from None
    if name != f"{domain}-{_digest(data)}.json":
        raise ShardProblem(
            f"its shard '{path}' was changed or damaged (its bytes are not its name's)"
        )
    try:
        shard = Shard.model_validate_json(data, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ShardProblem(f"its shard '{path}': '{where}': {error['msg'].lower()}") from None
    for map_name in _MAPS:
        stranger = next((r for r in getattr(shard, map_name) if domain_of(r) != domain), None)
        if stranger is not None:
            raise ShardProblem(
                f"its shard '{path}' of domain '{domain}' holds '{map_name}.{stranger}'"
            )
    _remember(folder, name, shard)
    return shard


def _remember(folder: Path, name: str, shard: Shard) -> None:
    if len(_parsed) > _REMEMBERED:
        _parsed.clear()
    _parsed[(str(folder), name)] = shard


class Records(Mapping[str, V]):
    """One of the state's maps (``tables``, ``pending``, ``publications``): the entries
    kept in workspace.json, and each domain's from its shard when first asked."""

    def __init__(
        self,
        inline: Mapping[str, V],
        shards: Mapping[str, str],
        load: Callable[[str], Shard],
        name: str,
    ) -> None:
        self._inline = inline
        self._shards = shards
        self._load = load
        self._name = name

    def _of(self, domain: str) -> Mapping[str, V]:
        found: Mapping[str, V] = getattr(self._load(domain), self._name)
        return found

    def __getitem__(self, ref: str) -> V:
        domain = domain_of(ref) if isinstance(ref, str) else None
        if domain is not None and domain in self._shards:
            return self._of(domain)[ref]
        return self._inline[ref]

    def __iter__(self) -> Iterator[str]:
        yield from self._inline
        for domain in self._shards:
            yield from self._of(domain)

    def __len__(self) -> int:
        return len(self._inline) + sum(len(self._of(d)) for d in self._shards)


class StateView:
    """``workspace.json`` as a query reads it: the state without its records now, each
    domain's records when first asked for (:class:`Records`)."""

    def __init__(self, header: StateFile, folder: Path, invalid: Callable[[str], Exception]):
        self.header = header
        self._folder = folder
        self._invalid = invalid
        for domain, name in header.shards.items():
            if not is_shard_of(name, domain):
                raise invalid(
                    f"'shards.{domain}': '{name}' is not a shard name of domain '{domain}'"
                )
        for name in _MAPS:
            twice = next((r for r in getattr(header, name) if domain_of(r) in header.shards), None)
            if twice is not None:
                raise invalid(f"'{name}.{twice}' is kept in a shard too")
        shards, load = header.shards, self._load
        self.tables: Records[TableRecord] = Records(header.tables, shards, load, "tables")
        self.pending: Records[TableRecord] = Records(header.pending, shards, load, "pending")
        self.publications: Records[list[int]] = Records(
            header.publications, shards, load, "publications"
        )

    def _load(self, domain: str) -> Shard:
        try:
            return load_shard(self._folder, domain, self.header.shards[domain])
        except ShardProblem as exc:
            raise self._invalid(str(exc)) from None

    @property
    def mesh_dir(self) -> str:
        return self.header.mesh_dir

    @property
    def catalog_created_at(self) -> Any:
        return self.header.catalog_created_at

    def whole(self) -> WorkspaceState:
        """The state with every record (every shard read)."""
        fields = {f: getattr(self.header, f) for f in WorkspaceState.model_fields}
        maps = {name: dict(getattr(self, name)) for name in _MAPS}
        return WorkspaceState(**{**fields, **maps})
