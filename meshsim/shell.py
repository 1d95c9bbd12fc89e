"""The interactive SQL shell behind ``meshsim sql --as CONSUMER`` (no query).

Statements end with ``;`` (or a blank line). Dot-commands: ``.tables``, ``.explain SQL``,
``.format table|csv|json``, ``.help``, ``.quit``. When readline is available, each consumer's
history is kept apart in the workspace's ``governance/shell/`` (one consumer's statements are
its own business, not the next shell user's).
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Any

from meshsim.errors import MeshsimError

HELP = """\
Statements end with ';' or a blank line. Commands:
  .tables              the tables this consumer can read
  .explain SQL         the policies a query runs under, and the SQL actually run
  .format FMT          table, csv or json
  .help                this text
  .quit                leave (or Ctrl-D)"""

_UNSAFE = re.compile(r"[^a-z0-9_]")


def history_file(governance: Path, consumer: str) -> Path:
    """``governance/shell/<consumer>.history``; every character but ``[a-z0-9_]`` is escaped
    as ``%XX`` so that no name leaves the folder and no two names share a file."""
    name = _UNSAFE.sub(lambda m: "".join(f"%{b:02x}" for b in m.group().encode()), consumer)
    return governance / "shell" / f"{name}.history"


class Shell:
    def __init__(self, mesh: Any, consumer: str, console: Any, *, fmt: Any = None) -> None:
        from meshsim.cli.render import Format

        self.mesh = mesh
        self.session = mesh.session(consumer)
        self.console = console
        self.fmt = fmt or Format.table
        self.history_file = history_file(mesh.workspace.governance, self.session.consumer)

    def _readline(self) -> Any:
        try:
            import readline
        except ImportError:  # pragma: no cover - platform without readline
            return None
        readline.clear_history()  # a shell opened earlier in this process, as someone else
        with contextlib.suppress(OSError):
            readline.read_history_file(self.history_file)
        return readline

    def run(self, stdin: Any = None) -> None:
        interactive = stdin is None and sys.stdin.isatty()
        readline = self._readline() if interactive else None
        stream = stdin or sys.stdin
        self.console.note(
            f"meshsim shell as {self.session.consumer}; .help for help, .quit to leave"
        )
        buffer: list[str] = []
        try:
            while True:
                prompt = f"{self.session.consumer}> " if not buffer else "   ...> "
                line = input(prompt) if interactive else stream.readline()
                if not interactive and line == "":
                    break
                line = line.rstrip("\n")
                if not buffer and line.strip().startswith("."):
                    if not self.command(line.strip()):
                        break
                    continue
                if line.strip():
                    buffer.append(line)
                if buffer and (line.rstrip().endswith(";") or not line.strip()):
                    self.execute("\n".join(buffer).rstrip().rstrip(";"))
                    buffer = []
        except EOFError:
            pass
        finally:
            if buffer:
                self.execute("\n".join(buffer).rstrip().rstrip(";"))
            if readline is not None:
                self.history_file.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(self.history_file)

    def command(self, line: str) -> bool:
        from meshsim.cli.render import Format

        name, _, rest = line.partition(" ")
        if name in {".quit", ".exit"}:
            return False
        if name == ".help":
            self.console.note(HELP)
        elif name == ".tables":
            readable = [a.table for a in self.mesh.access(self.session.consumer) if a.granted]
            self.console.note(
                "\n".join(readable) or "(none: ask for access with 'meshsim request')"
            )
        elif name == ".explain":
            self._guard(lambda: self.console.note(str(self.session.explain(rest))))
        elif name == ".format" and rest.strip() in Format.__members__:
            self.fmt = Format(rest.strip())
        else:
            self.console.warn(f"unknown command '{line}'; .help lists them")
        return True

    def execute(self, text: str) -> None:
        from meshsim.cli.query_cmds import render_result

        if text.strip():
            self._guard(lambda: render_result(self.session.sql(text), self.fmt))

    def _guard(self, action: Any) -> None:
        # A shell survives a refused statement: report it like the CLI boundary would.
        try:
            action()
        except MeshsimError as exc:
            self.console.error(exc.message + (f"\n  next: {exc.hint}" if exc.hint else ""))
