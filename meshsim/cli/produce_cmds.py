"""Producer commands: write, delete, optimize, vacuum (each publishes what it changed)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from meshsim.cli import app
from meshsim.cli.options import FormatOpt, WorkspaceDir, integer, open_mesh
from meshsim.cli.render import Format, render_rows

COLUMNS = ("table", "operation", "version", "previous", "rows", "detail")

AllRowsOpt = typer.Option(
    False,
    "--all-rows",
    help="Confirm a write that removes every row (a delete of all rows, an empty overwrite).",
)
WriterOpt = typer.Option(
    None,
    "--by",
    help="Who writes: the product's owner (default) or its domain's owner team (checked "
    "against the OS user if the mesh binds it).",
)


class Mode(str, Enum):
    append = "append"
    overwrite = "overwrite"
    upsert = "upsert"


def _render(results: list[Any], fmt: Format, title: str) -> None:
    rows = [
        {
            "table": r.table,
            "operation": r.operation,
            "version": r.version,
            "previous": r.previous,
            "rows": r.rows,
            "detail": r.detail,
        }
        for r in results
    ]
    render_rows(rows, fmt, title=title, columns=COLUMNS)


@app.command()
def write(
    table: str = typer.Argument(..., help="DOMAIN.TABLE"),
    source: Path = typer.Option(
        ..., "--from", metavar="PATH", help="A csv, parquet, json or ndjson file, or a folder."
    ),
    mode: Mode = typer.Option(Mode.append, "--mode", help="upsert matches the primary key."),
    dateformat: str | None = typer.Option(
        None,
        "--dateformat",
        metavar="FORMAT",
        help="How csv/json dates are written, e.g. '%d/%m/%Y' (default: ISO, 2026-01-31).",
    ),
    all_rows: bool = AllRowsOpt,
    by: str | None = WriterOpt,
    workspace: Path = WorkspaceDir,
    format: Format = FormatOpt,
) -> None:
    """Write rows into a table as a new version, checked against its declared schema."""
    result = open_mesh(workspace).write(
        table, source, mode=mode.value, by=by, dateformat=dateformat, all_rows=all_rows
    )
    _render([result], format, f"{mode.value} into {table}")


@app.command()
def delete(
    table: str = typer.Argument(..., help="DOMAIN.TABLE"),
    where: str | None = typer.Option(
        None, "--where", metavar="SQL", help="Which rows, e.g. 'x < 10'."
    ),
    all_rows: bool = AllRowsOpt,
    by: str | None = WriterOpt,
    workspace: Path = WorkspaceDir,
    format: Format = FormatOpt,
) -> None:
    """Delete the rows matching a condition over the table's columns, as a new version."""
    result = open_mesh(workspace).delete(table, where, by=by, all_rows=all_rows)
    _render([result], format, f"delete from {table}")


@app.command()
def optimize(
    table: str | None = typer.Argument(None, help="DOMAIN.TABLE (default: every table)"),
    zorder: str | None = typer.Option(
        None, "--zorder", metavar="COLUMNS", help="Cluster by these comma-separated columns."
    ),
    workspace: Path = WorkspaceDir,
    format: Format = FormatOpt,
) -> None:
    """Compact small data files into larger ones; the rows are unchanged."""
    columns = [c.strip() for c in zorder.split(",") if c.strip()] if zorder else None
    _render(open_mesh(workspace).optimize(table, zorder=columns), format, "optimize")


@app.command()
def vacuum(
    table: str | None = typer.Argument(None, help="DOMAIN.TABLE (default: every table)"),
    retain_hours: int = typer.Option(
        168,
        "--retain-hours",
        parser=integer(0),
        metavar="N",
        help="Keep the files of versions superseded within N hours (time travel).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the files, delete nothing."),
    workspace: Path = WorkspaceDir,
    format: Format = FormatOpt,
) -> None:
    """Delete data files no version within the retention needs (never the published one's)."""
    results = open_mesh(workspace).vacuum(table, retain_hours=retain_hours, dry_run=dry_run)
    _render(results, format, "vacuum (dry run)" if dry_run else "vacuum")
