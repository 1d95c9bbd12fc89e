"""Where library output goes. Library code never prints: it talks to a Console.

``TerminalConsole`` renders with rich (data on stdout, progress and notes on stderr),
``NotebookConsole`` renders rich output as HTML in Jupyter, ``NullConsole`` is silent (tests,
library use).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Progress(Protocol):
    def advance(self, step: float = 1, description: str | None = None) -> None: ...


class Console(Protocol):
    def note(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        caption: str = "",
    ) -> None: ...

    def progress(self, description: str, total: float) -> Any: ...


class _NullProgress:
    def advance(self, step: float = 1, description: str | None = None) -> None:
        pass


class NullConsole:
    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        caption: str = "",
    ) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: float) -> Iterator[Progress]:
        yield _NullProgress()


class _RichProgress:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, step: float = 1, description: str | None = None) -> None:
        kwargs = {"description": description} if description else {}
        self._progress.update(self._task, advance=step, **kwargs)


class TerminalConsole:
    """rich output: tables on stdout, notes, warnings and progress bars on stderr."""

    def __init__(
        self, *, quiet: bool = False, force_terminal: bool | None = None, file: Any = None
    ) -> None:
        from rich.console import Console as RichConsole

        #: tables go to ``file`` (a text stream) when given, else stdout
        self.out = RichConsole(force_terminal=force_terminal, file=file)
        self.err = RichConsole(stderr=True, force_terminal=force_terminal)
        if not self.out.is_terminal:
            self.out.width = 160  # piped output: wide rows instead of folded cells
        self.quiet = quiet

    def note(self, text: str) -> None:
        if not self.quiet:
            self.err.print(text, markup=False, highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        from rich.markup import escape

        self.err.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False)

    def error(self, text: str) -> None:
        from rich.markup import escape

        self.err.print(f"[red]Error:[/red] {escape(text)}", highlight=False)

    def print(self, renderable: Any) -> None:
        self.out.print(renderable)

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        caption: str = "",
    ) -> None:
        from rich.table import Table
        from rich.text import Text

        # cells are data, never markup: a value like "[red]" must print as written
        table = Table(
            title=Text(title) if title else None,
            title_justify="left",
            header_style="bold",
        )
        for column in columns:
            table.add_column(Text(str(column)), overflow="fold")
        for row in rows:
            table.add_row(*(Text("" if v is None else str(v)) for v in row))
        self.out.print(table)
        if caption:  # under the table, never folded to its width
            self.out.print(Text(caption), soft_wrap=True)

    @contextmanager
    def progress(self, description: str, total: float) -> Iterator[Progress]:
        if self.quiet:
            yield _NullProgress()
            return
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        with RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            console=self.err,
            transient=False,
        ) as progress:
            yield _RichProgress(progress, progress.add_task(description, total=total))


class NotebookConsole(TerminalConsole):
    """rich renders to HTML in Jupyter by itself; everything goes to the cell output."""

    def __init__(self) -> None:
        from rich.console import Console as RichConsole

        self.out = RichConsole(force_jupyter=True)
        self.err = self.out
        self.quiet = False
