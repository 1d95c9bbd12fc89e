"""Foundation commands: validate, schema, build, demo, domains, tables, history, access."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import (
    FormatOpt,
    MeshDir,
    WorkspaceDir,
    closed_at_exit,
    console,
    limit_option,
    offset_option,
    open_mesh,
    page_limit_option,
    scale_option,
)
from meshsim.cli.render import Format, render_rows


@app.command()
def validate(mesh: Path = MeshDir) -> None:
    """Lint a mesh layout: names, consumers, tags, policy references, unprotected PII, owners."""
    from meshsim.mesh import validate as validate_mesh

    problems = validate_mesh(mesh)
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        sys.stderr.write(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s)\n")
        raise typer.Exit(1)
    sys.stdout.write(f"mesh '{mesh}' is valid ({len(problems)} warning(s))\n")


@app.command()
def schema(
    file: str = typer.Argument("all", help="mesh, domain, product, policies or all"),
) -> None:
    """Print the JSON Schema of the spec files, for editor autocompletion."""
    from meshsim.spec.schema import json_schemas

    sys.stdout.write(json.dumps(json_schemas(file), indent=2) + "\n")


@app.command()
def build(
    mesh: Path = MeshDir,
    workspace: Path = WorkspaceDir,
    scale: float | None = scale_option(
        None, "TPC-H scale factor of generated tables (default: the workspace's, 1 if new)."
    ),
) -> None:
    """Validate the mesh, generate its data and write every domain's Delta tables."""
    from meshsim.mesh import Mesh

    out = console()
    built = closed_at_exit(Mesh.build(mesh, workspace, scale=scale, console=out))
    report = built.last_build
    assert report is not None  # Mesh.build sets it
    scale = report.scale
    render_rows(
        [
            {
                "table": t.ref,
                "action": t.action,
                "version": t.version,
                "rows": t.rows,
                "seconds": f"{t.seconds:.2f}",
            }
            for t in report.tables
        ],
        title=f"built '{built.name}' at scale {scale:g} into {report.workspace}",
        console=out,
    )
    out.note(f"done in {report.seconds:.1f}s (data generation {report.generate_seconds:.1f}s)")


@app.command()
def demo(
    workspace: Path = WorkspaceDir,
    mesh: Path = MeshDir,
    scale: float | None = scale_option(
        None, "Scale factor (default: the workspace's, or 0.01 for a new one)."
    ),
) -> None:
    """Build the example mesh at a small scale and show what it holds and who sees what."""
    from meshsim.demo import demo_scale, run_demo

    closed_at_exit(run_demo(mesh, workspace, scale=demo_scale(workspace, scale), console=console()))


@app.command()
def domains(
    workspace: Path = WorkspaceDir,
    limit: int | None = page_limit_option(),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """List domains, their owners and products."""
    rows = open_mesh(workspace).domains()
    render_rows(rows, format, title="domains", limit=limit, offset=offset)


@app.command()
def tables(
    as_consumer: str | None = typer.Option(
        None, "--as", help="Only the tables this consumer may query, and the rows it may read."
    ),
    workspace: Path = WorkspaceDir,
    limit: int | None = page_limit_option(),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """List tables with their current version, row and file counts."""
    rows = [
        {
            "table": t.ref,
            "product": t.product,
            "version": t.version,
            "rows": t.rows,
            "files": t.files,
            "bytes": t.size_bytes,
            "external": t.external,
            "location": t.location,
        }
        for t in open_mesh(workspace).tables(as_consumer=as_consumer)
    ]
    title = "tables" + (f" {as_consumer} may query" if as_consumer else "")
    render_rows(rows, format, title=title, limit=limit, offset=offset)


@app.command()
def history(
    table: str = typer.Argument(..., help="DOMAIN.TABLE"),
    workspace: Path = WorkspaceDir,
    limit: int | None = limit_option(None, "Newest N versions only."),
    format: Format = FormatOpt,
) -> None:
    """Show a table's Delta history: versions, times, operations, which one queries read."""
    entries = open_mesh(workspace).history(table, limit=limit)
    rows = [
        {
            "version": e.version,
            "timestamp": e.timestamp,
            "operation": e.operation,
            "published": e.published,
            "parameters": e.parameters,
            "metrics": e.metrics,
        }
        for e in entries
    ]
    render_rows(rows, format, title=f"history of {table}")
