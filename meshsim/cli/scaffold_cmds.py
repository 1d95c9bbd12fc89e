"""Start and grow a mesh: ``meshsim init``, ``meshsim new domain``, ``meshsim new product``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from meshsim.cli import app
from meshsim.cli.options import MeshDir
from meshsim.workspace import DEFAULT_MESH

new_app = typer.Typer(help="Add a domain or a product to a mesh.", rich_markup_mode=None)
app.add_typer(new_app, name="new")


@new_app.callback(invoke_without_command=True)
def _new(ctx: typer.Context) -> None:
    from meshsim.errors import MeshsimError

    if ctx.invoked_subcommand is None:
        raise MeshsimError(
            "say what to add: a domain or a product",
            hint="meshsim new domain NAME, or meshsim new product DOMAIN.NAME --from PATH",
        )


@app.command()
def init(
    directory: Path = typer.Argument(
        Path(DEFAULT_MESH), metavar="[DIR]", help="A new or empty folder (default: domains)."
    ),
    example: str = typer.Option("minimal", "--example", help="minimal or retail."),
) -> None:
    """Start a mesh from an example that validates and builds as it is."""
    from meshsim.mesh import Mesh

    root = Mesh.init(directory, example=example)
    mesh = "" if str(directory) == DEFAULT_MESH else f" --mesh {root}"
    sys.stdout.write(
        f"created the {example} mesh in '{root}' (see {root / 'README.md'})\n"
        f"  next: meshsim validate{mesh} && meshsim build{mesh}\n"
    )


@new_app.command("domain")
def new_domain(
    name: str = typer.Argument(..., help="The domain's name (lower case, digits, _)."),
    owner: str | None = typer.Option(None, "--owner", help="Its owner team (default NAME-team)."),
    mesh: Path = MeshDir,
) -> None:
    """Add a domain: NAME/domain.yaml and NAME/products/."""
    from meshsim.mesh import Mesh

    file = Mesh.new_domain(name, mesh_dir=mesh, owner=owner)
    sys.stdout.write(
        f"created domain '{name}' ({file})\n"
        f"  next: meshsim new product {name}.NAME --from PATH --mesh {mesh}\n"
    )


@new_app.command("product")
def new_product(
    ref: str = typer.Argument(..., metavar="DOMAIN.NAME", help="The product to add."),
    from_path: str = typer.Option(
        ...,
        "--from",
        metavar="PATH",
        help="CSV, Parquet or JSON file, folder or glob; or a Delta table.",
    ),
    mesh: Path = MeshDir,
) -> None:
    """Add a product over your data, its columns inferred from it."""
    from meshsim.mesh import Mesh

    made = Mesh.new_product(ref, from_path=from_path, mesh_dir=mesh)
    columns = ", ".join(f"{n} {t}" for n, t, _, _ in made.columns)
    sys.stdout.write(
        f"created product '{made.ref}' ({made.file}): {made.source} source, columns {columns}\n"
        f"  next: grant it in {mesh / 'mesh.yaml'}, then meshsim build --mesh {mesh}\n"
    )
