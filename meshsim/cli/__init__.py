"""The ``meshsim`` command line: a thin front end over :class:`meshsim.mesh.Mesh`.

Commands parse arguments, make one facade call and render the result. They contain no
try/except: :func:`main` is the single error boundary, printing ``Error: ...`` on stderr and
exiting non-zero (with the traceback only under ``--debug``).
"""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    name="meshsim",
    help="A local lakehouse data-mesh simulator: domains, Delta tables, governed SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    _state["debug"] = debug or bool(os.environ.get("MESHSIM_DEBUG"))


def _register() -> None:
    from meshsim.cli import mesh_cmds  # noqa: F401

    for optional in ("query_cmds", "catalog_cmds", "bench_cmds", "doctor_cmds"):
        try:
            __import__(f"meshsim.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"meshsim.cli.{optional}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meshsim`` script; returns the exit code."""
    from meshsim.errors import MeshsimError

    _register()
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args or bool(os.environ.get("MESHSIM_DEBUG"))
    try:
        app(args=args, prog_name="meshsim")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MeshsimError as exc:
        if _state["debug"]:
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"Error: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"  next: {exc.hint}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return 130
    except BrokenPipeError:
        return 0
    return 0


def run() -> None:
    sys.exit(main())
