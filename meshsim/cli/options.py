"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path

import typer

from meshsim.cli.render import Format
from meshsim.workspace import DEFAULT_MESH, DEFAULT_WORKSPACE

MeshDir = typer.Option(Path(DEFAULT_MESH), "--mesh", help="Mesh folder (holds mesh.yaml).")
WorkspaceDir = typer.Option(
    Path(DEFAULT_WORKSPACE),
    "--workspace",
    envvar="MESHSIM_WORKSPACE",
    help="Workspace folder ($MESHSIM_WORKSPACE or ./meshsim-workspace).",
)
FormatOpt = typer.Option(Format.table, "--format", help="Output format.")
ConsumerOpt = typer.Option(
    ..., "--as", help="The consumer to act as (checked against the OS user if the mesh binds it)."
)
ByOpt = typer.Option(
    ...,
    "--by",
    help="Who decides: the product owner, its owner team or an admin (checked against the OS "
    "user if the mesh binds it).",
)


def console():
    from meshsim.console import TerminalConsole

    return TerminalConsole()


def open_mesh(workspace: Path, mesh: Path | None = None, limits=None):
    from meshsim.mesh import Mesh

    return Mesh.open(workspace, mesh_dir=mesh, console=console(), limits=limits)
