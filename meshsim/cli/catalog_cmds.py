"""Catalog commands: publish, discover, the subscription workflow, access, graph and audit.

Each command parses its arguments, makes one call on ``mesh.catalog`` and renders the result.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from enum import Enum
from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import (
    ByOpt,
    ConsumerOpt,
    FormatOpt,
    RequestId,
    WorkspaceDir,
    console,
    expiry,
    input_file,
    limit_option,
    offset_option,
    open_mesh,
    output_file,
    page_limit_option,
)
from meshsim.cli.render import Format, page_note, render_rows

REQUEST_COLUMNS = (
    "id",
    "consumer",
    "product",
    "state",
    "tables",
    "columns",
    "reason",
    "decided_by",
    "comment",
    "expires_at",
)
AUDIT_COLUMNS = (
    "id",
    "time",
    "kind",
    "consumer",
    "principal",
    "os_user",
    "request_id",
    "transition",
    "decision",
    "reason",
    "sql",
    "rows",
)


class GraphFormat(str, Enum):
    mermaid = "mermaid"
    png = "png"
    svg = "svg"


def _names(values: list[str] | None) -> list[str] | None:
    """``--tables a,b --tables c`` -> ``[a, b, c]``."""
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _catalog(workspace: Path):
    return open_mesh(workspace).catalog


@app.command()
def publish(
    product: str = typer.Argument(..., help="DOMAIN.PRODUCT"),
    workspace: Path = WorkspaceDir,
) -> None:
    """Publish a product version from the spec and its tables' current versions (gated by
    the catalog's rules and the product's quality rules)."""
    version = open_mesh(workspace).publish(product)
    tables = ", ".join(f"{t}@v{v}" for t, v in version.tables.items())
    sys.stdout.write(f"published {version.product} version {version.version} ({tables})\n")


@app.command()
def products(
    as_consumer: str | None = typer.Option(
        None, "--as", help="Count only the rows this consumer may read (default: all rows)."
    ),
    workspace: Path = WorkspaceDir,
    limit: int | None = page_limit_option(),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """List published products: owner, version, tables, rows, subscribers."""
    rows = open_mesh(workspace).products(as_consumer=as_consumer, limit=limit, offset=offset)
    title = "published products" + (f" as seen by {as_consumer}" if as_consumer else "")
    render_rows(rows, format, title=title, limit=limit, offset=offset, total=rows.total)


@app.command()
def search(
    text: str = typer.Argument(..., help="Words to find in names, descriptions, tags, owners."),
    workspace: Path = WorkspaceDir,
    limit: int = limit_option(20, "At most N hits; the total is shown."),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """Full-text search over products, tables and columns, best match first."""
    hits = open_mesh(workspace).search(text, limit=limit, offset=offset)
    title = f"search: {text}"
    render_rows(hits, format, title=title, limit=limit, offset=offset, total=hits.total)


@app.command()
def show(
    product: str = typer.Argument(..., help="DOMAIN.PRODUCT"),
    as_consumer: str | None = typer.Option(
        None,
        "--as",
        help="Show which columns this consumer would see masked or denied, and only the rows "
        "it may read.",
    ),
    workspace: Path = WorkspaceDir,
    limit: int | None = limit_option(None, "At most N rows of each list (all by default)."),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """A product's schema, classifications, owner, versions, freshness and subscribers."""
    details = open_mesh(workspace).show(
        product, as_consumer=as_consumer, limit=limit, offset=offset
    )

    def total(name: str) -> int:
        return details.totals.get(name, -1)  # -1: every row of the list is shown

    if format == Format.json:
        for name in details.totals:  # stdout stays one JSON document
            note = page_note(len(getattr(details, name)), offset, total(name))
            sys.stderr.write(f"{name}: {note}\n" if note else "")
        sys.stdout.write(json.dumps(details.as_dict(), indent=2, default=str) + "\n")
        return
    if format == Format.csv:
        render_rows(details.columns, format, limit=limit, offset=offset, total=total("columns"))
        return
    out = console()

    def listing(name: str, title: str) -> None:
        rows = getattr(details, name)
        render_rows(
            rows, format, title=title, console=out, limit=limit, offset=offset, total=total(name)
        )

    out.table(
        details.product,
        ["owner", "owner team", "freshness", "tags", "pending requests", "description"],
        [
            [
                details.owner,
                details.owner_team,
                details.freshness,
                ", ".join(f"{k}={v}" for k, v in details.tags.items()),
                details.pending_requests,
                details.description,
            ]
        ],
    )
    listing("versions", "versions")
    seen = f" as seen by {details.as_consumer}" if details.as_consumer else ""
    listing("columns", "columns" + seen)
    listing("quality", "quality rules (latest result)")
    listing("subscribers", "who can read it")


@app.command()
def request(
    product: str = typer.Argument(..., help="DOMAIN.PRODUCT"),
    consumer: str = ConsumerOpt,
    reason: str = typer.Option(..., "--reason", help="Why you need it; the owner judges this."),
    tables: list[str] | None = typer.Option(
        None, "--tables", help="Only these tables (repeat or comma-separate)."
    ),
    columns: list[str] | None = typer.Option(
        None, "--columns", help="Only these columns (repeat or comma-separate)."
    ),
    expires: date | None = typer.Option(
        None,
        "--expires",
        parser=expiry,
        metavar="DATE",
        help="Access ends after DATE (YYYY-MM-DD).",
    ),
    workspace: Path = WorkspaceDir,
) -> None:
    """Ask for access to a product; prints the request id."""
    made = _catalog(workspace).request(
        consumer, product, reason, tables=_names(tables), columns=_names(columns), expires=expires
    )
    sys.stdout.write(f"{made.id}\n")
    if made.state == "approved":
        note = f"request {made.id} was approved automatically ({made.comment}); query it now"
    else:
        note = (
            f"request {made.id} is pending; its owner decides: "
            f"'meshsim approve {made.id} --by OWNER' or 'meshsim reject {made.id} --by OWNER'"
        )
    console().note(note)


@app.command()
def requests(
    pending: bool = typer.Option(False, "--pending", help="Only requests awaiting a decision."),
    consumer: str | None = typer.Option(None, "--consumer", help="Only this consumer's."),
    workspace: Path = WorkspaceDir,
    limit: int | None = page_limit_option(),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """List access requests and their states."""
    catalog = _catalog(workspace)
    page = catalog.requests(pending=pending, consumer=consumer, limit=limit, offset=offset)
    paged = limit is not None or offset > 0
    total = catalog.request_count(pending=pending, consumer=consumer) if paged else len(page)
    columns = REQUEST_COLUMNS if format == Format.table else None
    rows = [r.as_row() for r in page]
    render_rows(
        rows, format, title="requests", columns=columns, limit=limit, offset=offset, total=total
    )


def _decided(verb: str, made) -> None:
    who = made.ended_by if verb == "revoked" else made.decided_by
    sys.stdout.write(f"request {made.id} ({made.consumer} on {made.product}) {verb} by {who}\n")


@app.command()
def approve(
    request_id: int = RequestId,
    by: str = ByOpt,
    columns: list[str] | None = typer.Option(
        None, "--columns", help="Grant only these of the requested columns."
    ),
    row_filter: str | None = typer.Option(
        None, "--row-filter", help="SQL predicate limiting the rows granted."
    ),
    comment: str | None = typer.Option(None, "--comment", help="Why."),
    workspace: Path = WorkspaceDir,
) -> None:
    """Approve a pending request, optionally narrowed to fewer columns or rows."""
    made = _catalog(workspace).approve(
        request_id, by, columns=_names(columns), row_filter=row_filter, comment=comment
    )
    _decided("approved", made)


@app.command()
def reject(
    request_id: int = RequestId,
    by: str = ByOpt,
    comment: str = typer.Option(..., "--comment", help="Why, for the consumer."),
    workspace: Path = WorkspaceDir,
) -> None:
    """Reject a pending request."""
    _decided("rejected", _catalog(workspace).reject(request_id, by, comment))


@app.command()
def revoke(
    request_id: int = RequestId,
    by: str = ByOpt,
    comment: str | None = typer.Option(None, "--comment", help="Why."),
    workspace: Path = WorkspaceDir,
) -> None:
    """End an approved subscription; the consumer's next query is refused."""
    _decided("revoked", _catalog(workspace).revoke(request_id, by, comment))


@app.command()
def subscriptions(
    consumer: str | None = typer.Option(None, "--consumer", help="Only this consumer's."),
    workspace: Path = WorkspaceDir,
    limit: int | None = page_limit_option(),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """Active subscriptions (approved requests) and the grants mesh.yaml declares."""
    catalog = _catalog(workspace)
    rows = catalog.subscriptions(consumer, limit=limit, offset=offset)
    paged = limit is not None or offset > 0
    total = catalog.subscription_count(consumer) if paged else len(rows)
    render_rows(rows, format, title="subscriptions", limit=limit, offset=offset, total=total)


@app.command()
def access(
    consumer: str | None = typer.Option(
        None, "--consumer", "--as", help="Only this consumer: what its queries may read."
    ),
    policies: Path | None = typer.Option(
        None,
        "--policies",
        parser=input_file,
        metavar="FILE",
        help="What-if: show only the cells that would change under this edited mesh.yaml "
        "or policies block (not applied), and what validate would newly report.",
    ),
    workspace: Path = WorkspaceDir,
    limit: int | None = page_limit_option(),
    offset: int = offset_option(),
    format: Format = FormatOpt,
) -> None:
    """The access matrix: consumers by tables by columns, and the rule deciding each cell."""
    mesh = open_mesh(workspace)
    if policies is None:  # a page of the matrix resolves only the tables it shows
        cells = mesh.access_cells(consumer, limit=limit, offset=offset)
        render_rows(
            cells, format, title="access matrix", limit=limit, offset=offset, total=cells.total
        )
    else:
        changes = mesh.access_changes(policies, consumer)
        title = f"what would change under {policies}"
        render_rows(changes, format, title=title, limit=limit, offset=offset)
    if policies is not None:
        for problem in mesh.what_if_problems(policies):
            sys.stderr.write(f"{problem}\n")


@app.command()
def graph(
    format: GraphFormat = typer.Option(GraphFormat.mermaid, "--format", help="Output format."),
    out: Path | None = typer.Option(
        None,
        "--out",
        parser=output_file,
        metavar="FILE",
        help="File to write (needed for png/svg).",
    ),
    domain: str | None = typer.Option(
        None, "--domain", help="Only this domain: its products, tables, readers and lineage."
    ),
    consumer: str | None = typer.Option(
        None, "--consumer", help="Only this consumer: what it reads or asks for, and where."
    ),
    group: bool | None = typer.Option(
        None,
        "--group/--no-group",
        help="One node per domain (default: over 100 tables), or every product and table.",
    ),
    lineage: bool = typer.Option(
        False, "--lineage", help="Add sources and the column lineage of derived products."
    ),
    workspace: Path = WorkspaceDir,
) -> None:
    """The mesh topology: domains, products, tables, consumers, grants and subscriptions."""
    result = _catalog(workspace).graph(
        format.value, out, domain=domain, consumer=consumer, group=group, lineage=lineage
    )
    sys.stdout.write(result if format == GraphFormat.mermaid else f"wrote {result}\n")


@app.command()
def audit(
    as_consumer: str | None = typer.Option(
        None, "--as", help="Who asks: a consumer sees its own records, an admin all of them."
    ),
    limit: int | None = limit_option(50, "Newest N records."),
    offset: int = offset_option(),
    consumer: str | None = typer.Option(
        None, "--consumer", help="Only this consumer's (another's needs an admin)."
    ),
    workspace: Path = WorkspaceDir,
    format: Format = FormatOpt,
) -> None:
    """Queries, access decisions and publications, newest first, as --as may see them."""
    mesh = open_mesh(workspace)
    page = mesh.audit(as_consumer=as_consumer, limit=limit, offset=offset, consumer=consumer)
    columns = AUDIT_COLUMNS if format == Format.table else None
    # the log is not counted: its end is known only from a short page that is not empty
    short = limit is None or len(page) < limit
    total = offset + len(page) if short and (page or not offset) else None
    render_rows(
        page, format, title="audit", columns=columns, limit=limit, offset=offset, total=total
    )
