"""The workspace: where a built mesh lives on disk.

::

    <workspace>/workspace.json                 what was built, from which mesh, at what scale
    <workspace>/accounts/<domain>/<table>/     each domain's storage root ("account"): Delta tables
    <workspace>/governance/                    the central account: mesh key, catalog, audit
    <workspace>/staging/tpch-sf<scale>/        generated TPC-H Parquet, reused by rebuilds

``workspace.json`` is replaced atomically, so an interrupted build never leaves it half written.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshsim.errors import WorkspaceError

DEFAULT_WORKSPACE = "meshsim-workspace"
DEFAULT_MESH = "domains"
STATE_FILE = "workspace.json"


def default_workspace() -> Path:
    return Path(os.environ.get("MESHSIM_WORKSPACE") or DEFAULT_WORKSPACE)


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
    def governance(self) -> Path:
        return self.root / "governance"

    def account(self, domain: str) -> Path:
        return self.accounts / domain

    def table_path(self, domain: str, table: str) -> Path:
        return self.account(domain) / table

    def staging(self, scale: float) -> Path:
        return self.root / "staging" / f"tpch-sf{scale:g}"

    @property
    def exists(self) -> bool:
        return self.state_file.is_file()

    def read_state(self) -> dict[str, Any]:
        if not self.state_file.is_file():
            raise WorkspaceError(
                f"no built mesh in workspace '{self.root}'",
                hint=f"run 'meshsim build --workspace {self.root}' (or 'meshsim demo') first",
            )
        try:
            return json.loads(self.state_file.read_text())
        except json.JSONDecodeError as exc:
            raise WorkspaceError(
                f"'{self.state_file}' is corrupt ({exc.msg})",
                hint="run 'meshsim build' again to rewrite it",
            ) from None

    def write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True, default=str))
        os.replace(tmp, self.state_file)

    def mesh_key(self) -> bytes:
        """The per-mesh secret that keys hash masks; created once, readable only by its owner."""
        path = self.governance / "mesh.key"
        if not path.is_file():
            self.governance.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            os.replace(tmp, path)
        return bytes.fromhex(path.read_text().strip())
