"""Options shared by several commands, declared once, and the one place that bounds values.

Every number, date and path a command takes is checked here as it is parsed, so a value out of
range is a usage error naming the option and the range (never an ``OverflowError`` from SQLite
or Delta, or an ``IsADirectoryError`` after the work is done). Meshes a command opens are
closed when the command ends (see :func:`command_resources`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import typer

from meshsim.cli.render import Format
from meshsim.workspace import DEFAULT_MESH, DEFAULT_WORKSPACE

#: Ids, limits and versions are stored as SQLite INTEGER and Delta's signed 64-bit longs.
MAX_INTEGER = 2**63 - 1
#: TPC-H scale factors meshsim builds: above 0, at most this (1000 is about a terabyte).
MAX_SCALE = 1000.0
#: Runs per benchmark query.
MAX_RUNS = 1000
#: Expiry dates: late enough for any real use, early enough that "through that day" fits.
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(9998, 12, 31)

_INTEGER = re.compile(r"[+-]?[0-9]+")

T = TypeVar("T")


class Closeable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closeable)


# --- values ----------------------------------------------------------------------------------


def integer(minimum: int, maximum: int = MAX_INTEGER) -> Callable[[str], int]:
    """A parser for a whole number in ``[minimum, maximum]``."""

    def parse(value: str) -> int:
        text = str(value).strip()  # typer passes defaults through the parser too
        if not _INTEGER.fullmatch(text):
            raise typer.BadParameter(f"'{value}' is not a whole number")
        # compared as text first: int() refuses numbers of more than 4,300 digits
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) > len(str(MAX_INTEGER)) or not minimum <= int(text) <= maximum:
            shown = text if len(text) <= 30 else f"{text[:27]}..."
            raise typer.BadParameter(f"{shown} is out of range ({minimum} to {maximum})")
        return int(text)

    return parse


def scale_factor(value: str) -> float:
    """A TPC-H scale factor: a finite number above 0 and at most MAX_SCALE."""
    try:
        number = float(str(value))
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a number") from None
    if not (math.isfinite(number) and 0 < number <= MAX_SCALE):
        raise typer.BadParameter(
            f"{value} is out of range (a scale factor above 0 and at most {MAX_SCALE:g})"
        )
    return number


class ScaleFactors(tuple[float, ...]):
    """Comma-separated scale factors, e.g. ``0.1,1,10``."""


def scale_factors(value: str) -> ScaleFactors:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise typer.BadParameter(f"'{value}' names no scale factor (e.g. 0.1,1,10)")
    return ScaleFactors(scale_factor(part) for part in parts)


def expiry(value: str) -> date:
    """A date (through that day) or an ISO date and time, between FIRST_DATE and LAST_DATE."""
    try:
        moment: date | datetime = (
            datetime.fromisoformat(value)
            if "T" in value or " " in value
            else date.fromisoformat(value)
        )
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)") from None
    day = moment.date() if isinstance(moment, datetime) else moment
    if not FIRST_DATE <= day <= LAST_DATE:
        raise typer.BadParameter(f"{value} is out of range ({FIRST_DATE} to {LAST_DATE})")
    return moment


def _checked(check: Callable[[Any], T]) -> Callable[[str], T]:
    """A path parser from a :mod:`meshsim.files` check; its message names the value only, the
    option is named by the usage error."""
    from meshsim.files import FileProblem

    def parse(value: str) -> T:
        try:
            return check(str(value))
        except FileProblem as exc:
            raise typer.BadParameter(exc.message) from None

    return parse


def output_file(value: str) -> Path:
    from meshsim.files import check_output_file

    return _checked(check_output_file)(value)


def input_file(value: str) -> Path:
    from meshsim.files import check_input_file

    return _checked(check_input_file)(value)


def folder(value: str) -> Path:
    from meshsim.files import check_folder

    return _checked(check_folder)(value)


# --- the options -----------------------------------------------------------------------------

MeshDir = typer.Option(
    Path(DEFAULT_MESH),
    "--mesh",
    parser=folder,
    metavar="DIR",
    help="Mesh folder (holds mesh.yaml).",
)
WorkspaceDir = typer.Option(
    Path(DEFAULT_WORKSPACE),
    "--workspace",
    envvar="MESHSIM_WORKSPACE",
    parser=folder,
    metavar="DIR",
    help="Workspace folder ($MESHSIM_WORKSPACE or ./meshsim-workspace).",
)
FormatOpt = typer.Option(Format.table, "--format", help="Output format.")
ConsumerOpt = typer.Option(
    ..., "--as", help="The consumer to act as (checked against the OS user if the mesh binds it)."
)
ByOpt = typer.Option(
    ...,
    "--by",
    help="Who decides: the product owner, its owner team or an admin (checked against the OS "
    "user if the mesh binds it).",
)
RequestId = typer.Argument(..., metavar="ID", parser=integer(1), help="The request id.")


def limit_option(default: int | None, help: str) -> Any:
    return typer.Option(default, "--limit", parser=integer(1), metavar="N", help=help)


def offset_option() -> Any:
    return typer.Option(
        0, "--offset", parser=integer(0), metavar="N", help="Skip the first N rows (with --limit)."
    )


def page_limit_option() -> Any:
    return limit_option(None, "At most N rows (all by default); the total is shown.")


def scale_option(default: float | None, help: str) -> Any:
    return typer.Option(default, "--scale", parser=scale_factor, metavar="SF", help=help)


# --- resources -------------------------------------------------------------------------------

_resources: ContextVar[ExitStack | None] = ContextVar("meshsim_cli_resources", default=None)


@contextmanager
def command_resources() -> Iterator[None]:
    """Close what the command opened when it ends, however it ends: a query engine left to
    the interpreter's exit can outlive DuckDB's bindings."""
    with ExitStack() as stack:
        token = _resources.set(stack)
        try:
            yield
        finally:
            _resources.reset(token)


def closed_at_exit(resource: C) -> C:
    """Register ``resource`` to be closed when the command ends."""
    stack = _resources.get()
    if stack is not None:
        stack.callback(resource.close)
    return resource


def console():
    from meshsim.console import TerminalConsole

    return TerminalConsole()


def open_mesh(workspace: Path, mesh: Path | None = None, limits=None):
    from meshsim.mesh import Mesh

    return closed_at_exit(Mesh.open(workspace, mesh_dir=mesh, console=console(), limits=limits))
