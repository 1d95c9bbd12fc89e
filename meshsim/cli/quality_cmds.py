"""``meshsim check``: run the products' quality rules and print the report.

It exits non-zero when a rule of severity ``error`` fails or cannot run, so a CI job can
stop on it (the report is printed first, the ``Error:`` line after it).
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import WorkspaceDir, open_mesh
from meshsim.cli.render import Format, render_rows
from meshsim.errors import QualityError
from meshsim.quality.results import CheckRun


class CheckFormat(str, Enum):
    table = "table"
    json = "json"


def _versions(values: list[str] | None) -> dict[str, int]:
    """``--version sales.orders=7`` -> ``{'sales.orders': 7}``."""
    chosen: dict[str, int] = {}
    for value in values or []:
        table, sep, version = value.partition("=")
        if not sep or not version.strip().isdigit():
            raise QualityError(
                f"--version '{value}' is not TABLE=VERSION",
                hint="write e.g. --version sales.orders=7 ('meshsim history TABLE' lists them)",
            )
        name = table.strip().lower()
        if name in chosen:
            raise QualityError(
                f"--version names '{name}' twice ({name}={chosen[name]} and {value}): "
                f"a check reads one version of each table",
                hint=f"give --version {name}=VERSION once",
            )
        chosen[name] = int(version)
    return chosen


def report_rows(run: CheckRun) -> list[dict[str, object]]:
    """One row per rule, for the table view."""
    rows = []
    for r in run.results:
        samples = "; ".join(
            ", ".join(f"{c}={v}" for c, v in zip(r.sample_columns, row, strict=True))
            for row in r.samples
        )
        found = r.message or (r.observed or "")
        rows.append(
            {
                "table": r.table,
                "version": r.version,
                "rule": r.rule,
                "severity": r.severity,
                "status": r.status,
                "failing": r.failing_rows,
                "found": found,
                "samples": samples,
            }
        )
    return rows


@app.command()
def check(
    product: str | None = typer.Argument(None, help="DOMAIN.PRODUCT (every product if left out)"),
    as_consumer: str | None = typer.Option(
        None,
        "--as",
        help="Show sample keys as this consumer may see them (default: only columns every "
        "non-admin consumer reads unmasked).",
    ),
    version: list[str] | None = typer.Option(
        None,
        "--version",
        metavar="TABLE=VERSION",
        help="Check this Delta version of a table (e.g. one a gate refused); repeatable.",
    ),
    workspace: Path = WorkspaceDir,
    format: CheckFormat = typer.Option(CheckFormat.table, "--format", help="Output format."),
) -> None:
    """Run the products' quality rules on their published versions and print the report;
    exits non-zero when an error rule fails."""
    versions = _versions(version)
    run = open_mesh(workspace).check(product, as_consumer=as_consumer, versions=versions)
    if format == CheckFormat.json:
        sys.stdout.write(json.dumps(run.model_dump(mode="json"), indent=2) + "\n")
    else:
        counts = run.counts()
        title = (
            f"quality: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['error']} could not run"
        )
        render_rows(report_rows(run), Format.table, title=title)
    blocking = run.blocking
    if blocking:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise QualityError(
            f"{len(blocking)} error rule(s) failed or could not run: {first.summary()}{more}",
            hint="fix the data or the rules; warn rules never fail the check",
        )
