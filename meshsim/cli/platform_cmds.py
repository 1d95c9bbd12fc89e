"""``meshsim export lakeformation|unity-catalog|trino``: the mesh's governance as the files a
platform deploys (a thin front end over :meth:`meshsim.mesh.Mesh.export_governance`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import WorkspaceDir, open_mesh

export_app = typer.Typer(
    help="Export the mesh's governance to Lake Formation, Unity Catalog or Trino.",
    rich_markup_mode=None,
)
app.add_typer(export_app, name="export")


@export_app.callback(invoke_without_command=True)
def _export(ctx: typer.Context) -> None:
    from meshsim.errors import MeshsimError

    if ctx.invoked_subcommand is None:
        raise MeshsimError(
            "say which platform to export to: lakeformation, unity-catalog or trino",
            hint="meshsim export trino --out DIR (docs/PLATFORMS.md)",
        )


_OUT_HELP = "Folder to write into (default: meshsim-export/TARGET); files there are replaced."
_ROOT_HELP = "Storage root of the tables: ROOT/<domain>/<table> (e.g. s3://bucket/mesh)."
_LOCATION_HELP = "A domain's own storage root, DOMAIN=URI (repeatable); overrides --storage-root."


def _locations(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        domain, sep, uri = value.partition("=")
        if not sep or not domain.strip() or not uri:
            raise typer.BadParameter(f"'{value}' is not DOMAIN=URI", param_hint="--location")
        out[domain.strip()] = uri  # as given: a URI with spaces is refused, not trimmed
    return out


OutDir = typer.Option(None, "--out", metavar="DIR", help=_OUT_HELP)
StorageRoot = typer.Option(None, "--storage-root", metavar="URI", help=_ROOT_HELP)
Locations = typer.Option(None, "--location", metavar="DOMAIN=URI", help=_LOCATION_HELP)


def _run(
    target: str,
    workspace: Path,
    out: Path | None,
    storage_root: str | None,
    location: list[str] | None,
    catalog: str | None = None,
    policy_user: str | None = None,
) -> None:
    report = open_mesh(workspace).export_governance(
        target,
        out or Path("meshsim-export") / target,
        storage_root=storage_root,
        locations=_locations(location),
        catalog=catalog,
        policy_user=policy_user,
    )
    for path in report.files:
        sys.stdout.write(f"wrote {path}\n")
    count = len(report.limitations)
    plan = next((p for p in report.files if p.suffix == ".md"), None)
    sys.stdout.write(
        f"{count} thing(s) the target cannot express, each with the safe alternative taken"
        + (f": see {plan}\n" if count and plan else "\n")
    )


@export_app.command("lakeformation")
def lakeformation(
    workspace: Path = WorkspaceDir,
    out: Path | None = OutDir,
    storage_root: str | None = StorageRoot,
    location: list[str] | None = Locations,
) -> None:
    """A CloudFormation template (Glue, LF-Tags, grants, data cells filters) and its plan."""
    _run("lakeformation", workspace, out, storage_root, location)


@export_app.command("unity-catalog")
def unity_catalog(
    workspace: Path = WorkspaceDir,
    out: Path | None = OutDir,
    storage_root: str | None = StorageRoot,
    location: list[str] | None = Locations,
) -> None:
    """Databricks SQL: catalogs, schemas, tables, grants, row filters, column masks, tags."""
    _run("unity-catalog", workspace, out, storage_root, location)


@export_app.command("trino")
def trino(
    workspace: Path = WorkspaceDir,
    out: Path | None = OutDir,
    storage_root: str | None = StorageRoot,
    location: list[str] | None = Locations,
    catalog: str | None = typer.Option(
        None, "--catalog", help="The Trino catalog of the mesh's tables (default: mesh name)."
    ),
    policy_user: str | None = typer.Option(
        None,
        "--policy-user",
        help="The Trino user row filters look up tables as (default: meshsim_policy); no "
        "consumer's name, and no person's.",
    ),
) -> None:
    """Trino file-based access control rules (rules.json) with masks and row filters."""
    _run("trino", workspace, out, storage_root, location, catalog, policy_user)
