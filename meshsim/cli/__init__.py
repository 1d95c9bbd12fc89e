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

    optional_commands = (
        "query_cmds",
        "catalog_cmds",
        "bench_cmds",
        "doctor_cmds",
        "produce_cmds",
        "scaffold_cmds",
        "platform_cmds",
        "contract_cmds",
        "quality_cmds",
        "lineage_cmds",
        "workshop_cmds",
    )
    for optional in optional_commands:
        try:
            __import__(f"meshsim.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"meshsim.cli.{optional}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meshsim`` script; returns the exit code.

    The one error boundary: a :class:`MeshsimError` prints ``Error: ...`` and its ``next:``
    hint; an exception meshsim did not raise on purpose prints one ``Error:`` line naming its
    class (the traceback only under ``--debug``). Arguments that are not UTF-8 are refused
    before any command runs.
    """
    from meshsim.cli.arguments import refuse_non_utf8, values_after_dashes
    from meshsim.cli.options import command_resources
    from meshsim.errors import MeshsimError

    _register()
    args = sys.argv[1:] if argv is None else list(argv)
    _state["debug"] = "--debug" in args or bool(os.environ.get("MESHSIM_DEBUG"))
    try:
        refuse_non_utf8(args, app)
        args = values_after_dashes(args, app)
        with command_resources():
            app(args=args, prog_name="meshsim")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MeshsimError as exc:
        return _report(exc.message, exc.hint)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the boundary: never a bare traceback
        return _report(*_unexpected(exc, args))
    return 0


def _report(message: str, hint: str | None) -> int:
    if _state["debug"]:
        import traceback

        traceback.print_exc()
    sys.stderr.write(f"Error: {message}\n")
    if hint:
        sys.stderr.write(f"  next: {hint}\n")
    return 1


_DEBUG_HINT = "run with --debug for the traceback"


def _unexpected(exc: Exception, args: list[str]) -> tuple[str, str | None]:
    """The message and hint for an exception that escaped a command: a bug to fix at its
    origin, but still one line for the user."""
    from sqlglot.errors import SqlglotError

    if isinstance(exc, SqlglotError):
        message = f"could not read the SQL: {_first_line(exc)}"
        return message, f"check quotes and brackets; {_DEBUG_HINT}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" '{exc.filename}'" if exc.filename else ""
        message = f"cannot use{where}: {exc.strerror}"
        return message, f"check the path and its permissions; {_DEBUG_HINT}"
    if isinstance(exc, ValueError):
        return _first_line(exc) or type(exc).__name__, _DEBUG_HINT
    command = next((a for a in args if not a.startswith("-")), None)
    where = f" in 'meshsim {command}'" if command else ""
    return f"internal error ({type(exc).__name__}){where}; {_DEBUG_HINT}", None


def _first_line(exc: Exception) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # sqlglot underlines with ANSI codes
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def run() -> None:
    sys.exit(main())
