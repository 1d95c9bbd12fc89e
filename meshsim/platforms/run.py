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
from meshsim.platforms.portable import check_catalog, check_storage_uri

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
    policy_user: str | None = None,
) -> ExportReport:
    """Write ``target``'s artefacts for the mesh's governance into ``out``; every input is
    checked before anything is written."""
    if target not in TARGETS:
        raise MeshsimError(
            unknown_name_message("export target", target, list(TARGETS)),
            hint="meshsim export lakeformation|unity-catalog|trino",
        )
    for option, value in (("catalog", catalog), ("policy_user", policy_user)):
        if value is not None and target != "trino":
            raise MeshsimError(
                f"{option} is an option of the Trino export only, not of {target}",
                hint=f"meshsim export trino --{option.replace('_', '-')} ...",
            )
    # Lake Formation registers S3 locations only; the others take any object store's URI
    scheme = "s3" if target == "lakeformation" else None
    if storage_root is not None:
        check_storage_uri(storage_root, f"--storage-root {storage_root!r}", scheme=scheme)
    for domain, uri in (locations or {}).items():
        check_storage_uri(uri, f"--location {domain}={uri!r}", scheme=scheme)
    domains = sorted({t.domain for t in mesh.spec.tables()})
    if storage_root is None:
        storage_root = f"{DEFAULT_STORAGE_ROOT}-{mesh.spec.mesh.name.replace('_', '-')}"
    gov = governance_of(mesh, domain_locations(domains, storage_root, locations or {}))
    if target == "trino":
        from meshsim.platforms.trino import POLICY_USER, trino_files

        catalog = check_catalog(mesh.spec.mesh.name if catalog is None else catalog)
        user = POLICY_USER if policy_user is None else policy_user
        files, limitations = trino_files(gov, catalog, user)
    elif target == "unity-catalog":
        from meshsim.platforms.unity import unity_files

        files, limitations = unity_files(gov)
    else:
        from meshsim.platforms.lakeformation import lakeformation_files

        files, limitations = lakeformation_files(gov)
    out = Path(out)
    return ExportReport(target, out, write_files(out, files), tuple(limitations))
