"""Governed SQL commands: sql (one query, or an interactive shell) and explain."""

from __future__ import annotations

from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import ConsumerOpt, FormatOpt, WorkspaceDir, console, open_mesh
from meshsim.cli.render import Format, render_rows


@app.command()
def sql(
    query: str | None = typer.Argument(None, help="The query; without it, an interactive shell."),
    consumer: str = ConsumerOpt,
    workspace: Path = WorkspaceDir,
    format: Format = FormatOpt,
    timeout: float = typer.Option(
        30.0, "--timeout", min=0.1, max=86_400, help="Seconds for planning and running."
    ),
    max_result_rows: int = typer.Option(
        10_000_000, "--max-result-rows", min=1, max=2**62, help="Refuse larger results."
    ),
) -> None:
    """Run SQL across domains as a consumer, under its policies (data on stdout)."""
    from meshsim.engine import EngineLimits

    limits = EngineLimits(timeout_s=timeout, max_result_rows=max_result_rows)
    mesh = open_mesh(workspace, limits=limits)
    if query is None:
        from meshsim.shell import Shell

        Shell(mesh, consumer, console(), fmt=format).run()
        return
    result = mesh.session(consumer).sql(query)
    render_result(result, format)


def render_result(result, fmt: Format) -> None:
    from meshsim.cli.render import unique_names

    columns = unique_names(result.columns)  # duplicate output names: keep every column
    rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    render_rows(rows, fmt, columns=columns, title=f"{result.num_rows} rows")


@app.command()
def explain(
    query: str = typer.Argument(..., help="The query to explain (it is not run)."),
    consumer: str = ConsumerOpt,
    workspace: Path = WorkspaceDir,
) -> None:
    """Show the tables and versions a query reads, the policies applied and why, and the SQL
    actually run (the mesh key redacted)."""
    explanation = open_mesh(workspace).session(consumer).explain(query)
    typer.echo(str(explanation))
