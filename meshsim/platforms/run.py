"""Run one export: the target's files written into a folder, and what it could not express."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from meshsim.errors import MeshsimError, unknown_name_message
from meshsim.platforms import TARGETS
from meshsim.platforms.governance import (
    ExportReport,
    domain_locations,
    governance_of,
    write_files,
)

if TYPE_CHECKING:
    from meshsim.mesh import Mesh

#: where tables are said to live when no storage root is given: a placeholder bucket to edit
DEFAULT_STORAGE_ROOT = "s3://CHANGE-ME-meshsim"


def export_governance(
    mesh: Mesh,
    target: str,
    out: str | Path,
    *,
    storage_root: str | None = None,
    locations: dict[str, str] | None = None,
    catalog: str | None = None,
) -> ExportReport:
    """Write ``target``'s artefacts for the mesh's governance into ``out``."""
    if target not in TARGETS:
        raise MeshsimError(
            unknown_name_message("export target", target, list(TARGETS)),
            hint="meshsim export lakeformation|unity-catalog|trino",
        )
    domains = sorted({t.domain for t in mesh.spec.tables()})
    root = storage_root or f"{DEFAULT_STORAGE_ROOT}-{mesh.spec.mesh.name.replace('_', '-')}"
    gov = governance_of(mesh, domain_locations(domains, root, locations or {}))
    if target == "trino":
        from meshsim.platforms.trino import trino_files

        files, limitations = trino_files(gov, catalog or mesh.spec.mesh.name)
    elif target == "unity-catalog":
        from meshsim.platforms.unity import unity_files

        files, limitations = unity_files(gov)
    else:
        from meshsim.platforms.lakeformation import lakeformation_files

        files, limitations = lakeformation_files(gov)
    out = Path(out)
    return ExportReport(target, out, write_files(out, files), tuple(limitations))
