"""``meshsim doctor``: what is wrong with a workspace, and what to do about it."""

from __future__ import annotations

from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import FormatOpt, WorkspaceDir
from meshsim.cli.render import Format, render_rows


@app.command()
def doctor(
    workspace: Path = WorkspaceDir,
    repair: bool = typer.Option(
        False, "--repair", help="Fix what can be fixed; damaged files are moved aside, not deleted."
    ),
    format: Format = FormatOpt,
) -> None:
    """Check a workspace: its state, mesh key, catalog and backup, every table's log and files."""
    from meshsim.mesh import Mesh

    report = Mesh.doctor(workspace, repair=repair)
    rows = [
        {
            "check": c.name,
            "status": c.status,
            "detail": c.detail,
            "next": c.repaired or (c.fix if c.status != "ok" else ""),
        }
        for c in report.checks
    ]
    errors = sum(c.status == "error" for c in report.checks)
    title = f"doctor: {report.workspace}: " + (f"{errors} error(s)" if errors else "healthy")
    render_rows(rows, format, title=title, columns=["check", "status", "detail", "next"])
    if errors:
        raise typer.Exit(1)
