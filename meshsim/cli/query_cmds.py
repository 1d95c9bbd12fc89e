"""Governed SQL commands: sql (queries, a file of them, or an interactive shell) and explain."""

from __future__ import annotations

from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import (
    ConsumerOpt,
    FormatOpt,
    WorkspaceDir,
    console,
    input_file,
    integer,
    open_mesh,
    output_file,
)
from meshsim.cli.render import MAX_ROWS, Format, render_result, rows_text
from meshsim.errors import MeshsimError


@app.command()
def sql(
    query: str | None = typer.Argument(None, help="The query; without it (and -f), a shell."),
    consumer: str = ConsumerOpt,
    workspace: Path = WorkspaceDir,
    file: Path | None = typer.Option(
        None,
        "-f",
        "--file",
        parser=input_file,
        metavar="FILE",
        help="Run the statements of FILE (separated by ';'), in order.",
    ),
    format: Format = FormatOpt,
    max_rows: int = typer.Option(
        MAX_ROWS,
        "--max-rows",
        parser=integer(1),
        metavar="N",
        help="A table shows at most N rows: the first and last ones, and the count.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        parser=output_file,
        metavar="FILE",
        help="Write the result to FILE: .csv, .json, .ndjson or .parquet (by its extension).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace a file."),
    timeout: float = typer.Option(
        30.0, "--timeout", min=0.1, max=86_400, help="Seconds for planning and running."
    ),
    max_result_rows: int = typer.Option(
        10_000_000, "--max-result-rows", min=1, max=2**62, help="Refuse larger results."
    ),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        metavar="ENGINE",
        help="Run the governed plan on duckdb (default) or spark (needs meshsim[spark], Java).",
    ),
) -> None:
    """Run SQL across domains as a consumer, under its policies (data on stdout)."""
    from meshsim.engine import EngineLimits
    from meshsim.engines import require_engine
    from meshsim.export import export_format
    from meshsim.files import check_new_output
    from meshsim.statements import file_statements

    if query is not None and file is not None:
        raise MeshsimError(
            "give the query as an argument or with -f FILE, not both",
            hint="meshsim sql --as CONSUMER -f FILE.sql",
        )
    require_engine(engine)
    if out is not None:  # a bad target is refused before anything runs
        export_format(out)
        check_new_output(out, overwrite=overwrite)
    limits = EngineLimits(timeout_s=timeout, max_result_rows=max_result_rows)
    mesh = open_mesh(workspace, limits=limits)
    if query is None and file is None:
        from meshsim.shell import Shell

        if engine != "duckdb":
            raise MeshsimError(
                "the interactive shell runs on duckdb; give a query or -f FILE for spark",
                hint='meshsim sql --as CONSUMER --engine spark "SELECT ..."',
            )
        Shell(mesh, consumer, console(), fmt=format, max_rows=max_rows).run()
        return
    statements = file_statements(file) if file is not None else [query or ""]
    if out is not None and len(statements) > 1:
        raise MeshsimError(
            f"--out writes one result, and '{file}' holds {len(statements)} statements",
            hint="put the query to export in a file of its own",
        )
    from meshsim.interrupts import cancellable

    session = mesh.session(consumer, engine)
    with cancellable(reraise=True):  # Ctrl-C: 'Interrupted.', the query audited as cancelled
        for statement in statements:
            result = session.sql(statement)
            if out is None:
                render_result(result.arrow(), format, max_rows=max_rows)
                continue
            from meshsim.export import write_result

            note = console()
            write_result(result.arrow(), out, overwrite=overwrite, console=note)
            note.note(f"wrote {rows_text(result.num_rows)} to {out}")


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
