"""IPython and Jupyter magics, loaded with ``%load_ext meshsim`` (the JupySQL conventions).

``%meshsim ARGS`` runs a ``meshsim`` command in the notebook (``%meshsim tables --as
supply_planner``, ``%meshsim show sales.order_history --as finance_controller``);
``%meshsim connect [--workspace DIR] [--as CONSUMER]`` sets what later cells use.

``%%meshsql [--as CONSUMER] [--workspace DIR] [VAR <<]`` runs the cell's statements as
the consumer, under its policies, and returns the last result (a
:class:`meshsim.query.result.Result`, shown as an HTML table of its first rows and the
count); with ``VAR <<`` the result is stored in ``VAR`` instead of shown. Errors are one
``Error:`` line (and the ``next:`` hint), never a traceback.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshsim.errors import MeshsimError

USAGE = "%%meshsql [--as CONSUMER] [--workspace DIR] [VAR <<]"


@dataclass
class CellOptions:
    consumer: str | None = None
    workspace: str | None = None
    target: str | None = None  # VAR of 'VAR <<'


def parse_cell_line(line: str) -> CellOptions:
    """The options of a ``%%meshsql`` line; MeshsimError naming a bad one.

    >>> parse_cell_line("--as eu_marketing_analyst counts <<")
    CellOptions(consumer='eu_marketing_analyst', workspace=None, target='counts')
    """
    words = shlex.split(line)
    options = CellOptions()
    if len(words) >= 2 and words[-1] == "<<":
        options.target = words[-2]
        if not options.target.isidentifier():
            raise MeshsimError(
                f"'{options.target}' cannot hold the result: not a Python name",
                hint=f"write {USAGE}",
            )
        words = words[:-2]
    flags = {"--as": "consumer", "--workspace": "workspace"}
    while words:
        flag = words.pop(0)
        name, equals, value = flag.partition("=")
        if name not in flags:
            raise MeshsimError(f"%%meshsql does not take '{flag}'", hint=f"write {USAGE}")
        if not equals:
            if not words:
                raise MeshsimError(f"{name} needs a value", hint=f"write {USAGE}")
            value = words.pop(0)
        setattr(options, flags[name], value)
    return options


@dataclass
class Connection:
    """What cells use when they do not say: set by ``%meshsim connect``."""

    workspace: str | None = None
    consumer: str | None = None
    meshes: dict[Path, Any] = field(default_factory=dict)

    def mesh(self, workspace: str | None) -> Any:
        from meshsim.mesh import Mesh
        from meshsim.workspace import Workspace

        root = Workspace.at(workspace or self.workspace).root.resolve()
        if root not in self.meshes:
            self.meshes[root] = Mesh.open(root)
        return self.meshes[root]

    def close(self) -> None:
        for mesh in self.meshes.values():
            mesh.close()
        self.meshes.clear()


def report(exc: BaseException) -> None:
    """One ``Error:`` line on stderr, as the CLI boundary prints it."""
    if isinstance(exc, MeshsimError):
        message, hint = exc.message, exc.hint
    else:
        from meshsim.cli import _unexpected

        message, hint = _unexpected(exc, [])  # type: ignore[arg-type]
    sys.stderr.write(f"Error: {message}\n")
    if hint:
        sys.stderr.write(f"  next: {hint}\n")


def make_magics(ipython: Any) -> Any:
    """The magics class, built here so that IPython is imported only when it is loaded."""
    from IPython.core import magic as ipython_magic

    magic: Any = ipython_magic  # its decorators' annotations do not fit methods

    @magic.magics_class
    class MeshsimMagics(magic.Magics):  # type: ignore[misc]
        def __init__(self, shell: Any) -> None:
            super().__init__(shell)
            self.connection = Connection()

        @magic.line_magic("meshsim")
        def meshsim_line(self, line: str) -> Any:
            """Run a meshsim command (``%meshsim tables --as X``), or ``%meshsim connect
            [--workspace DIR] [--as CONSUMER]`` to set what later cells use."""
            try:
                words = shlex.split(line)
                if words[:1] == ["connect"]:
                    return self._connect(words[1:])
                return self._command(words)
            except Exception as exc:  # noqa: BLE001 - a magic's error boundary, as the CLI's
                report(exc)
                return None

        @magic.cell_magic("meshsql")
        def meshsql(self, line: str, cell: str) -> Any:
            """Governed SQL as a consumer: ``%%meshsql --as CONSUMER [VAR <<]``."""
            try:
                return self._cell(line, cell)
            except Exception as exc:  # noqa: BLE001 - a magic's error boundary, as the CLI's
                report(exc)
                return None

        def _connect(self, words: list[str]) -> str:
            options = parse_cell_line(" ".join(shlex.quote(w) for w in words))
            mesh = self.connection.mesh(options.workspace)
            self.connection.workspace = str(mesh.workspace.root)
            if options.consumer is not None:
                mesh.session(options.consumer)  # an unknown consumer is an Error: now
                self.connection.consumer = options.consumer
            mesh.warm_up()
            who = f" as {self.connection.consumer}" if self.connection.consumer else ""
            return f"connected to {mesh.workspace.root}{who}"

        def _command(self, words: list[str]) -> None:
            from meshsim.cli import main

            if self.connection.workspace and "--workspace" not in words and words:
                words = [*words, "--workspace", self.connection.workspace]
            main(words)  # prints its own Error: line; never raises SystemExit

        def _cell(self, line: str, cell: str) -> Any:
            from meshsim.statements import split_statements

            options = parse_cell_line(line)
            consumer = options.consumer or self.connection.consumer
            if consumer is None:
                raise MeshsimError(
                    "say which consumer runs the cell",
                    hint="%%meshsql --as CONSUMER, or %meshsim connect --as CONSUMER first",
                )
            statements = split_statements(cell)
            if not statements:
                raise MeshsimError("the cell holds no SQL statement", hint="write a query")
            session = self.connection.mesh(options.workspace).session(consumer)
            result = None
            for statement in statements:
                result = session.sql(statement)
            if options.target is not None:
                namespace: dict[str, Any] = self.shell.user_ns
                namespace[options.target] = result
                return None
            return result

    return MeshsimMagics(ipython)


def load(ipython: Any) -> None:
    ipython.register_magics(make_magics(ipython))


def unload(ipython: Any) -> None:
    magics = ipython.magics_manager.registry.get("MeshsimMagics")
    if magics is not None:
        magics.connection.close()
