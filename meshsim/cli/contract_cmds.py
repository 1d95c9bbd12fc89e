"""``meshsim contract export|import|diff``: products as ODCS v3 data contracts."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import MeshDir, WorkspaceDir, input_file, open_mesh, output_file
from meshsim.cli.render import Format, render_rows

contract_app = typer.Typer(
    help="Data contracts (Open Data Contract Standard v3): export, import, diff.",
    rich_markup_mode=None,
)
app.add_typer(contract_app, name="contract")


@contract_app.callback(invoke_without_command=True)
def _contract(ctx: typer.Context) -> None:
    from meshsim.errors import MeshsimError

    if ctx.invoked_subcommand is None:
        raise MeshsimError(
            "say what to do with a contract: export, import or diff",
            hint="meshsim contract export DOMAIN.PRODUCT, meshsim contract import FILE --domain "
            "D, or meshsim contract diff DOMAIN.PRODUCT",
        )


@contract_app.command("export")
def export(
    product: str = typer.Argument(..., help="DOMAIN.PRODUCT"),
    out: Path | None = typer.Option(
        None, "--out", parser=output_file, metavar="FILE", help="Write the contract here."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace a file."),
    workspace: Path = WorkspaceDir,
) -> None:
    """Write a product as an ODCS v3 YAML contract (stdout unless --out)."""
    from meshsim.files import atomic_output

    text = open_mesh(workspace).export_contract(product)
    if out is None:
        sys.stdout.write(text)
        return
    with atomic_output(out, overwrite=overwrite) as handle:
        handle.write(text.encode())
    sys.stdout.write(f"wrote the contract of {product} to {out}\n")


@contract_app.command("import")
def import_(
    file: Path = typer.Argument(..., parser=input_file, metavar="FILE", help="An ODCS v3 file."),
    domain: str = typer.Option(..., "--domain", help="The domain the product belongs to."),
    mesh: Path = MeshDir,
) -> None:
    """Create or update a product file from an ODCS v3 contract."""
    from meshsim.mesh import Mesh

    imported = Mesh.import_contract(file, domain=domain, mesh_dir=mesh)
    verb = "created" if imported.created else "updated"
    sys.stdout.write(
        f"{verb} product '{imported.ref}' ({imported.file})\n"
        f"  next: meshsim validate --mesh {mesh} && meshsim build --mesh {mesh}\n"
    )


class DiffFormat(str, Enum):
    table = "table"
    json = "json"


@contract_app.command("diff")
def diff(
    product: str = typer.Argument(..., help="DOMAIN.PRODUCT"),
    base: str | None = typer.Option(
        None,
        "--from",
        metavar="V",
        help="A published version (3), a contract version (1.2.0), 'spec' or a contract file "
        "(default: the latest published version).",
    ),
    target: str | None = typer.Option(
        None,
        "--to",
        metavar="V|FILE",
        help="The same kinds of version (default: the product file now, 'spec').",
    ),
    workspace: Path = WorkspaceDir,
    format: DiffFormat = typer.Option(DiffFormat.table, "--format", help="Output format."),
) -> None:
    """List the changes between two versions of a product, each breaking or not."""
    result = open_mesh(workspace).contract_diff(product, base=base, target=target)
    if format == DiffFormat.json:
        payload = {
            "product": result.product,
            "from": result.base,
            "to": result.target,
            "breaking": len(result.breaking),
            "changes": [{**c.row(), "breaking": c.breaking} for c in result.changes],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    title = f"{result.product}: {result.base} -> {result.target}"
    if not result.changes:
        sys.stdout.write(f"{title}: no changes\n")
        return
    render_rows(result.rows(), Format.table, title=title)
    sys.stdout.write(f"{len(result.breaking)} breaking of {len(result.changes)} change(s)\n")
