"""The workspace: where a built mesh lives on disk.

::

    <workspace>/workspace.json                 what was built, from which mesh, at what scale
    <workspace>/state/                         a large mesh's table records, per domain
    <workspace>/accounts/<domain>/<table>/     each domain's storage root ("account"): Delta tables
    <workspace>/governance/                    the central account: mesh key, catalog, audit
    <workspace>/staging/tpch-sf<scale>/        generated TPC-H Parquet, reused by rebuilds

``workspace.json`` is a :class:`WorkspaceState`, read strictly (unknown keys and wrong types
are errors naming the file and the key) and replaced atomically, so an interrupted build
never leaves it half written.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meshsim.errors import WorkspaceError
from meshsim.files import replace_file

if TYPE_CHECKING:
    from meshsim.statefile import StateView

DEFAULT_WORKSPACE = "meshsim-workspace"
DEFAULT_MESH = "domains"
STATE_FILE = "workspace.json"
MESH_KEY_FILE = "mesh.key"
MESH_KEY_BYTES = 32
DOCTOR_HINT = "run 'meshsim doctor --workspace {root}' to see what is wrong and how to repair it"


def default_workspace() -> Path:
    return Path(os.environ.get("MESHSIM_WORKSPACE") or DEFAULT_WORKSPACE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BuildStamp(_Strict):
    """What a table meshsim writes was built from; a rebuild with the same stamp leaves it
    alone. ``scale`` is for generated tables, ``files`` for tables loaded from files (the
    digest of their names, sizes and times), ``inputs`` for derived tables (each table the
    query read and the version it read)."""

    scale: float | None = None
    schema_hash: str = Field(alias="schema")
    files: str | None = None
    inputs: dict[str, int] = Field(default_factory=dict)


class TableRecord(_Strict):
    """One built table: where it lives and which Delta version the build left it at."""

    location: str
    external: bool
    version: int = Field(ge=0)
    stamp: BuildStamp | None = None
    rows: int | None = None
    built_at: datetime | None = None


class WorkspaceState(_Strict):
    """``workspace.json``: the last build of this workspace."""

    mesh_dir: str
    mesh_name: str
    scale: float = Field(gt=0)
    spec_fingerprint: str
    #: the published version of each table: what every query reads
    tables: dict[str, TableRecord] = Field(default_factory=dict)
    #: tables a build in progress (or killed) has written but not yet published; the next
    #: build reuses those still current instead of writing them again
    pending: dict[str, TableRecord] = Field(default_factory=dict)
    #: every Delta version of each table that was ever published (pinned in ``tables``), in
    #: order: the only versions time travel reaches (kept by :meth:`Workspace.write_state`)
    publications: dict[str, list[int]] = Field(default_factory=dict)
    built_at: datetime | None = None
    #: set once the first build published the catalog: from then on a missing or empty
    #: catalog is a loss to repair, never a new catalog to create
    catalog_created_at: datetime | None = None


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"'{where}': missing"
    if error["type"] == "extra_forbidden":
        return f"'{where}': not a workspace key"
    if not where:
        return f"the file must be an object with the keys {', '.join(WorkspaceState.model_fields)}"
    return f"'{where}': {error['msg'].lower()} (got {error['input']!r:.60})"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, root: str | Path | None) -> Workspace:
        return cls(Path(root) if root is not None else default_workspace()).resolved()

    def resolved(self) -> Workspace:
        return Workspace(self.root.expanduser().resolve())

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def accounts(self) -> Path:
        return self.root / "accounts"

    @property
    def state_folder(self) -> Path:
        """Where a large state keeps each domain's records (:mod:`meshsim.statefile`)."""
        return self.root / "state"

    @property
    def spec_scan_file(self) -> Path:
        """What the identity check's scan of the spec files found in each (a cache:
        :mod:`meshsim.spec.scanindex`)."""
        return self.root / "spec-scan.json"

    @property
    def governance(self) -> Path:
        return self.root / "governance"

    @property
    def mesh_key_file(self) -> Path:
        return self.governance / MESH_KEY_FILE

    @property
    def doctor_hint(self) -> str:
        return DOCTOR_HINT.format(root=self.root)

    def account(self, domain: str) -> Path:
        return self.accounts / domain

    def table_path(self, domain: str, table: str) -> Path:
        return self.account(domain) / table

    def staging(self, scale: float) -> Path:
        return self.root / "staging" / f"tpch-sf{scale:g}"

    @property
    def exists(self) -> bool:
        return is_regular_file(self.state_file)

    def check_path(self) -> None:
        """Refuse a workspace path the storage layer cannot hold tables under."""
        from meshsim.storage.log import check_location

        check_location(str(self.root), what=f"workspace path '{self.root}'")

    def read_state(self) -> WorkspaceState:
        """The whole state: every table's record (every shard read, :mod:`meshsim.statefile`)."""
        return self.read_view().whole()

    def read_view(self) -> StateView:
        """The state as a query reads it: each domain's records read when first asked for."""
        from meshsim.statefile import StateFile, StateView

        if not self.state_file.is_file():
            raise WorkspaceError(
                f"no built mesh in workspace '{self.root}'",
                hint=f"run 'meshsim build --workspace {self.root}' (or 'meshsim demo') first",
            )
        try:
            text = self.state_file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._invalid(f"it is not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise WorkspaceError(
                f"cannot read '{self.state_file}': {exc.strerror}", hint=self.doctor_hint
            ) from None
        try:
            # strict: "3" is not a version and "0.1" is not a scale
            header = StateFile.model_validate_json(text, strict=True)
        except ValidationError as exc:
            errors = exc.errors()
        else:
            return StateView(header, self.state_folder, self._invalid)
        if any(e["type"] == "json_invalid" for e in errors):
            try:  # parsed again only to say where: a state with 10,000 tables parses in 20 ms
                json.loads(text)
            except json.JSONDecodeError as exc:
                why = f"it is not JSON ({exc.msg} at line {exc.lineno})"
                raise self._invalid(why) from None
        raise self._invalid("; ".join([_problem(e) for e in errors][:5])) from None

    def _invalid(self, why: str) -> WorkspaceError:
        return WorkspaceError(
            f"'{self.state_file}' is not a valid workspace state: {why}", hint=self.doctor_hint
        )

    def write_state(self, state: WorkspaceState) -> None:
        """Replace ``workspace.json`` atomically; every pin it holds is recorded as published
        (with the publications already on disk, so no writer can forget one)."""
        from meshsim import statefile

        self.root.mkdir(parents=True, exist_ok=True)
        named: set[str] = set()  # the shards the state being replaced names
        try:
            before = self.read_view() if self.state_file.is_file() else None
            known = dict(before.publications) if before is not None else {}
            named = set(before.header.shards.values()) if before is not None else set()
        except WorkspaceError:  # a damaged state being replaced: its record is already lost
            known = {}
        publications = {r: set(v) for r, v in known.items()}
        for ref, versions in state.publications.items():
            publications.setdefault(ref, set()).update(versions)
        for ref, record in state.tables.items():
            publications.setdefault(ref, set()).add(record.version)
        state = state.model_copy(
            update={"publications": {r: sorted(v) for r, v in sorted(publications.items())}}
        )
        text, shards = statefile.encode(state)
        try:
            statefile.write_shards(self.state_folder, shards)  # before workspace.json names them
        except statefile.ShardProblem as exc:
            raise WorkspaceError(str(exc), hint="remove it, then run the command again") from None
        replace_file(self.state_file, text)
        statefile.retire(self.state_folder, named - set(shards))
        statefile.collect(self.state_folder, set(shards))

    def catalog_expected(self) -> bool:
        """Whether this workspace's catalog was created by a build (so it must not be created
        again): the state records it, or its backup exists."""
        from meshsim.catalog.backup import backup_path

        if is_regular_file(backup_path(self.governance)):
            return True
        return self.exists and self.read_state().catalog_created_at is not None

    def first_build_unfinished(self, state: WorkspaceState | StateView | None = None) -> bool:
        """Whether the first build stopped before it created the catalog: workspace.json
        (written as tables are, with them pending) exists, but no catalog, no backup and no
        record of one. ``state``: workspace.json, read already."""
        from meshsim.catalog.backup import backup_path
        from meshsim.catalog.store import DB_FILE

        if not self.exists:
            return False
        if (state or self.read_state()).catalog_created_at is not None:
            return False
        return not any(
            os.path.lexists(path)
            for path in (self.governance / DB_FILE, backup_path(self.governance))
        )

    def unfinished_build_error(self) -> WorkspaceError:
        return WorkspaceError(
            f"the first build of workspace '{self.root}' did not finish: it has tables but no "
            f"catalog yet",
            hint=f"run 'meshsim build --mesh {self.read_state().mesh_dir} --workspace "
            f"{self.root} --scale {self.read_state().scale:g}' again to finish it",
        )

    def mesh_key(self, *, create: bool = False) -> bytes:
        """The per-mesh secret that keys hash masks, readable only by its owner. Created by
        the first build (``create``); a key missing later is an error, since a new one would
        silently change every hashed value consumers have seen."""
        path = self.mesh_key_file
        present = is_regular_file(path) or path.is_symlink() or os.path.lexists(path)
        if not present and not create:
            raise WorkspaceError(
                f"the mesh key '{path}' is missing; hash masks cannot be computed as before "
                f"without it",
                hint=self.doctor_hint,
            )
        if not present:
            self.governance.mkdir(parents=True, exist_ok=True)
            replace_file(path, secrets.token_hex(MESH_KEY_BYTES).encode("ascii"), mode=0o600)
        return read_mesh_key(path, self.doctor_hint)


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file; a folder meshsim may not look into is an error
    naming it (``Path.is_file`` would raise PermissionError)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise WorkspaceError(
            f"cannot access '{path}' ({(exc.strerror or str(exc)).lower()})",
            hint=f"check the permissions of '{path.parent}': the user running meshsim must be "
            f"able to read and write it",
        ) from None


_MAX_KEY_FILE_BYTES = 4096


def read_mesh_key(path: Path, hint: str) -> bytes:
    """The key in ``path``: exactly 64 hexadecimal digits (surrounding whitespace allowed).

    Read only as a small regular file: opened non-blocking (a FIFO would hang the read) and
    checked on the descriptor (a link to ``/dev/zero`` would be read without end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise WorkspaceError(
                    f"the mesh key '{path}' is not a regular file (a device, pipe or folder); "
                    f"hash masks cannot be computed without it",
                    hint=hint,
                )
            data = os.read(fd, _MAX_KEY_FILE_BYTES)
        finally:
            os.close(fd)
        text = data.decode("ascii").strip()
        key = bytes.fromhex(text)
    except OSError as exc:
        raise WorkspaceError(
            f"the mesh key '{path}' cannot be read: {exc.strerror}", hint=hint
        ) from None
    except ValueError:  # UnicodeDecodeError too
        key = b""
    if len(key) != MESH_KEY_BYTES:
        raise WorkspaceError(
            f"the mesh key '{path}' is not {2 * MESH_KEY_BYTES} hexadecimal digits; hash masks "
            f"cannot be computed without it",
            hint=hint,
        )
    return key
