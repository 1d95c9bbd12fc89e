"""``meshsim workshop``: open the offline workshop's notebooks in JupyterLab."""

from __future__ import annotations

import sys

import typer

from meshsim.cli import app


@app.command()
def workshop(
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="JupyterLab's port."),
    check: bool = typer.Option(
        False, "--check", help="Check the setup and build the workshop mesh; do not start Jupyter."
    ),
) -> None:
    """Build the workshop mesh and open JupyterLab on the workshop notebooks (offline)."""
    from meshsim.workshop.launch import launch, prepare

    if check:
        notebooks, seconds = prepare()
        sys.stdout.write(
            f"the workshop is ready: module 0 built in {seconds:.1f} s; notebooks in {notebooks}\n"
            f"  next: meshsim workshop\n"
        )
        return
    raise typer.Exit(launch(no_browser=no_browser, port=port))
