"""``meshsim lineage``: where a table or column comes from, and what is derived from it."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import WorkspaceDir, console, open_mesh
from meshsim.cli.render import Format, render_rows


class LineageFormat(str, Enum):
    table = "table"
    json = "json"
    mermaid = "mermaid"


@app.command()
def lineage(
    ref: str = typer.Argument(..., metavar="DOMAIN.TABLE[.COLUMN]", help="A table or column."),
    upstream: bool = typer.Option(False, "--upstream", help="Only where it comes from."),
    downstream: bool = typer.Option(False, "--downstream", help="Only what is derived from it."),
    format: LineageFormat = typer.Option(LineageFormat.table, "--format", help="Output format."),
    workspace: Path = WorkspaceDir,
) -> None:
    """Column lineage: sources, input columns and how each is used (direct, expression,
    aggregate, filter), and the masks and row filters derived products read through."""
    from meshsim.lineage.render import ROW_COLUMNS

    direction = "upstream" if upstream and not downstream else "both"
    if downstream and not upstream:
        direction = "downstream"
    answer = open_mesh(workspace).lineage(ref, direction=direction)
    if format == LineageFormat.json:
        sys.stdout.write(answer.to_json())
    elif format == LineageFormat.mermaid:
        sys.stdout.write(answer.to_mermaid())
    else:
        render_rows(
            answer.rows(),
            Format.table,
            title=answer.summary(),
            columns=ROW_COLUMNS,
            console=console(),
        )
