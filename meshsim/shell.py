"""The interactive SQL shell behind ``meshsim sql --as CONSUMER`` (no query).

A statement runs once a line ends it with ``;`` (outside strings and comments) or a blank
line follows it. Ctrl-C drops the statement being typed, or cancels the running query, and
the shell goes on; Ctrl-D, ``exit``, ``quit``, ``\\q`` and ``.quit`` leave. Dot-commands are
listed in :data:`HELP`. Everything the shell shows about tables (``.tables``, ``.schema``,
tab completion) is the consumer's own view, from :meth:`meshsim.mesh.Mesh.access`. When
readline is available, each consumer's history is kept apart in the workspace's
``governance/shell/`` (one consumer's statements are its own business, not the next shell
user's).
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from pathlib import Path
from typing import IO, Any

from meshsim.errors import MeshsimError
from meshsim.interrupts import cancellable

HELP = """\
Statements end with ';' or a blank line; Ctrl-C cancels the line or the running query.
  .tables              the tables this consumer can read
  .schema [TABLE]      their columns, as this consumer sees them (masked, filtered)
  .explain SQL         the policies a query runs under, and the SQL actually run
  .mode MODE           table, csv, json or line (.format is the same)
  .maxrows N           a table shows at most N rows (the first and last ones)
  .output [FILE]       write results to FILE (a new file), or back to the screen
  .timer on|off        show how long each query took
  .help                this text
  .quit                leave (or exit, quit, \\q, Ctrl-D)"""

LEAVE = {".quit", ".exit", "exit", "quit", "\\q"}
COMMANDS = (
    ".tables",
    ".schema",
    ".explain",
    ".mode",
    ".format",
    ".maxrows",
    ".output",
    ".timer",
    ".help",
    ".quit",
)

_UNSAFE = re.compile(r"[^a-z0-9_]")


def history_file(governance: Path, consumer: str) -> Path:
    """``governance/shell/<consumer>.history``; every character but ``[a-z0-9_]`` is escaped
    as ``%XX`` so that no name leaves the folder and no two names share a file."""
    name = _UNSAFE.sub(lambda m: "".join(f"%{b:02x}" for b in m.group().encode()), consumer)
    return governance / "shell" / f"{name}.history"


class Shell:
    def __init__(
        self,
        mesh: Any,
        consumer: str,
        console: Any,
        *,
        fmt: Any = None,
        max_rows: int | None = None,
    ) -> None:
        from meshsim.cli.render import MAX_ROWS, Format

        self.mesh = mesh
        self.session = mesh.session(consumer)
        self.console = console
        self.fmt = fmt or Format.table
        self.max_rows = max_rows or MAX_ROWS
        self.timer = False
        self.output: IO[str] | None = None  # .output FILE
        self.history_file = history_file(mesh.workspace.governance, self.session.consumer)

    # --- the loop --------------------------------------------------------------------------

    def run(self, stdin: Any = None) -> None:
        interactive = stdin is None and sys.stdin.isatty()
        stream = stdin or sys.stdin
        self.console.note(
            f"meshsim shell as {self.session.consumer}; .help for help, .quit to leave"
        )
        with self._readline(interactive):
            try:
                self._loop(interactive, stream)
            finally:
                self._set_output(None)

    def _loop(self, interactive: bool, stream: Any) -> None:
        from meshsim.statements import is_complete

        buffer: list[str] = []
        while True:
            prompt = f"{self.session.consumer}> " if not buffer else "   ...> "
            try:
                line = input(prompt) if interactive else stream.readline()
            except KeyboardInterrupt:  # Ctrl-C while typing: drop the statement, stay
                self.console.note("^C")
                buffer = []
                continue
            except EOFError:  # Ctrl-D
                break
            if not interactive and line == "":
                break
            line = line.rstrip("\n")
            words = line.strip().rstrip(";").strip()
            if not buffer and words in LEAVE:
                break
            if not buffer and words.startswith("."):
                self.command(line.strip())
                continue
            if line.strip():
                buffer.append(line)
            text = "\n".join(buffer)
            if buffer and (not line.strip() or is_complete(text)):
                self.execute(text)
                buffer = []
        if buffer:
            self.execute("\n".join(buffer))

    # --- dot-commands --------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run one dot-command; False for one that leaves the shell."""
        from meshsim.cli.render import Format

        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in LEAVE:
            return False
        if name == ".help":
            self.console.note(HELP)
        elif name == ".tables":
            self.console.note(
                "\n".join(self._visible()) or "(none: ask for access with 'meshsim request')"
            )
        elif name == ".schema":
            self._guard(lambda: self.console.note(self._schema(rest)))
        elif name == ".explain":
            self._guard(lambda: self.console.note(str(self.session.explain(rest))))
        elif name in {".mode", ".format"} and rest in Format.__members__:
            self.fmt = Format(rest)
        elif name == ".maxrows" and rest.isdigit() and int(rest) > 0:
            self.max_rows = int(rest)
        elif name == ".timer" and rest in {"on", "off"}:
            self.timer = rest == "on"
        elif name == ".output":
            self._guard(lambda: self._set_output(rest or None))
        else:
            self.console.warn(f"unknown command or bad value '{line}'; .help lists them")
        return True

    def _visible(self) -> list[str]:
        return [a.table for a in self.mesh.access(self.session.consumer) if a.granted]

    def _schema(self, table: str) -> str:
        """``CREATE TABLE`` statements of the consumer's view: its visible columns only, with
        the declared types (a mask keeps its column's type), masks and row filters noted."""
        spec = _with_system_tables(self.mesh.spec)
        granted = [a for a in self.mesh.access(self.session.consumer) if a.granted]
        if table:
            chosen = [a for a in granted if a.table == table.lower()]
            if not chosen:
                from meshsim.errors import QueryError, unknown_name_message

                raise QueryError(
                    unknown_name_message("table", table, [a.table for a in granted]),
                    hint=".tables lists the tables this consumer can read",
                )
            granted = chosen
        statements = []
        for access in granted:
            table_spec = spec.table(access.table)
            columns = []
            for cell in access.columns:
                column = table_spec.column(cell.column) if table_spec else None
                if cell.visible and column is not None:
                    note = f"  -- masked: {cell.mask.function}" if cell.mask else ""
                    columns.append((f"{column.name} {column.type}", note))
            body = "\n".join(
                f"  {text}{',' if i < len(columns) - 1 else ''}{note}"
                for i, (text, note) in enumerate(columns)
            )
            filters = ", ".join(f.name for f in access.row_filters)
            where = f"  -- rows filtered by {filters}" if filters else ""
            statements.append(f"CREATE TABLE {access.table} ({where}\n{body}\n);")
        return "\n".join(statements) or "(none: ask for access with 'meshsim request')"

    def _set_output(self, path: str | None) -> None:
        if self.output is not None:
            self.output.close()
            self.output = None
        if path is None:
            return
        from meshsim.files import check_new_output

        target = check_new_output(path, overwrite=False)
        self.output = open(target, "x", encoding="utf-8")  # noqa: SIM115 - kept until .output
        self.console.note(f"results go to {target} (.output alone: back to the screen)")

    # --- statements ----------------------------------------------------------------------

    def execute(self, text: str) -> None:
        from meshsim.statements import split_statements

        def run() -> None:
            for statement in split_statements(text):
                self._run(statement)

        if text.strip():
            self._guard(run, cancellable_=True)

    def _run(self, statement: str) -> None:
        from meshsim.cli.render import render_result

        started = time.perf_counter()
        result = self.session.sql(statement)
        kwargs: dict[str, Any] = {"max_rows": self.max_rows}
        if self.output is not None:
            from meshsim.console import TerminalConsole

            kwargs["out"] = self.output
            kwargs["console"] = TerminalConsole(file=self.output)
        render_result(result.arrow(), self.fmt, **kwargs)
        if self.output is not None:
            self.output.flush()
        if self.timer:
            self.console.note(f"Run Time (s): real {time.perf_counter() - started:.3f}")

    def _guard(self, action: Any, *, cancellable_: bool = False) -> None:
        # A shell survives a refused statement: report it like the CLI boundary would.
        with cancellable() if cancellable_ else contextlib.nullcontext(None) as interrupted:
            try:
                action()
                if interrupted is not None and interrupted.is_set():
                    self.console.note("cancelled (Ctrl-C) after it had finished")
            except MeshsimError as exc:
                if interrupted is not None and interrupted.is_set():
                    self.console.note("cancelled (Ctrl-C)")
                    return
                self.console.error(exc.message + (f"\n  next: {exc.hint}" if exc.hint else ""))

    # --- readline: history and completion ------------------------------------------------

    @contextlib.contextmanager
    def _readline(self, interactive: bool) -> Any:
        readline = _import_readline() if interactive else None
        if readline is None:
            yield
            return
        readline.clear_history()  # a shell opened earlier in this process, as someone else
        with contextlib.suppress(OSError):
            readline.read_history_file(self.history_file)
        completer, delims = readline.get_completer(), readline.get_completer_delims()
        readline.set_completer(Completer(self).complete)
        readline.set_completer_delims(" \t\n,;()=<>+-*/|'\"")
        readline.parse_and_bind("tab: complete")
        try:
            yield
        finally:
            readline.set_completer(completer)
            readline.set_completer_delims(delims)
            self.history_file.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(self.history_file)


class Completer:
    """readline completion of the names this consumer can see: its tables (``domain.table``),
    their visible columns, and the dot-commands at the start of a line. Names are read once
    per completion of a new word, so an approval during the session is picked up."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self._matches: list[str] = []

    def names(self) -> list[str]:
        tables, columns = [], set()
        for access in self.shell.mesh.access(self.shell.session.consumer):
            if access.granted:
                tables.append(access.table)
                columns.update(access.visible_columns)
        return sorted(set(tables)) + sorted(columns)

    def candidates(self, word: str, line: str) -> list[str]:
        if line.lstrip().startswith(".") and line.lstrip() == word:
            return [c for c in COMMANDS if c.startswith(word)]
        lowered = word.lower()
        return [n for n in self.names() if n.startswith(lowered)]

    def complete(self, word: str, state: int) -> str | None:
        if state == 0:
            readline = _import_readline()
            line = readline.get_line_buffer() if readline else word
            try:
                self._matches = self.candidates(word, line)
            except MeshsimError:
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None


def _import_readline() -> Any:
    try:
        import readline
    except ImportError:  # pragma: no cover - platform without readline
        return None
    return readline


def _with_system_tables(spec: Any) -> Any:
    from meshsim.system import with_system_tables

    return with_system_tables(spec)
