"""How meshsim's answers look where a person reads them: an HTML table in a notebook
(``_repr_html_``), an aligned text table in a terminal (``__repr__``), a rich table under
rich. One set of functions for every answer, so a listing, the access matrix, a product's
details and an explanation read the same in both places; long answers are capped.

>>> rows = Listing([{"table": "sales.orders", "rows": 3}], title="tables")
>>> print(repr(rows))
tables (1 row)
table        | rows
------------ | ----
sales.orders | 3
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

#: rows shown before an answer is cut (the count says how many there are)
MAX_SHOWN = 40


def _text(value: Any) -> str:
    from meshsim.cli.render import printable
    from meshsim.export import plain

    value = plain(value)
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return printable("" if value is None else str(value))


def _count(total: int, shown: int) -> str:
    noun = "row" if total == 1 else "rows"
    return f"{total:,} {noun}" + (f", {shown:,} shown" if shown < total else "")


def text_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], max_rows: int = MAX_SHOWN
) -> str:
    """An aligned plain-text table under ``title``, at most ``max_rows`` rows."""
    shown = [[_text(v) for v in row] for row in rows[:max_rows]]
    header = [_text(c) for c in columns]
    widths = [max([len(h), *(len(r[i]) for r in shown)]) for i, h in enumerate(header)]
    lines = [f"{title} ({_count(len(rows), len(shown))})"] if title else []
    lines.append(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines.append(" | ".join("-" * w for w in widths))
    lines += [
        " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in shown
    ]
    return "\n".join(lines)


def html_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], max_rows: int = MAX_SHOWN
) -> str:
    """An HTML table under ``title``, every value escaped, at most ``max_rows`` rows."""
    head = "".join(f"<th>{html.escape(_text(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>"
        for row in rows[:max_rows]
    )
    caption = html.escape(f"{title} ({_count(len(rows), min(len(rows), max_rows))})".strip())
    return (
        f"<table><caption style='text-align:left'>{caption}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def rich_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(Text(_text(column)), overflow="fold")
    for row in rows[:MAX_SHOWN]:
        table.add_row(*(Text(_text(v)) for v in row))
    if len(rows) > MAX_SHOWN:
        table.caption = Text(_count(len(rows), MAX_SHOWN))
    return table


class Listing(list):  # type: ignore[type-arg]  # of row dicts, as before
    """Rows (dicts) of a listing, shown as a table in a notebook, a terminal or under rich;
    otherwise the plain list it always was."""

    def __init__(
        self, rows: Sequence[dict[str, Any]] = (), *, title: str = "", total: int | None = None
    ) -> None:
        super().__init__(rows)
        self.title = title
        #: how many rows the whole listing has when these are a page of it
        self.total = len(self) if total is None else total

    @property
    def columns(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self:
            names.update(dict.fromkeys(row))
        return list(names)

    def _cells(self) -> list[list[Any]]:
        columns = self.columns
        return [[row.get(c) for c in columns] for row in self]

    def __repr__(self) -> str:
        return text_table(self.title, self.columns, self._cells())

    def _repr_html_(self) -> str:
        return html_table(self.title, self.columns, self._cells())

    def __rich__(self) -> Any:
        return rich_table(self.title, self.columns, self._cells())


def access_summary(matrix: Sequence[Any]) -> list[dict[str, str]]:
    """One row per consumer and table it can read: through which grants, the columns masked
    (and how) and denied, the row filters."""
    rows = []
    for access in matrix:
        if not access.granted:
            continue
        masked = [
            f"{c.column} ({c.mask.function})"
            for c in access.columns
            if c.state == "masked" and c.mask
        ]
        denied = [c.column for c in access.columns if c.state == "denied"]
        rows.append(
            {
                "consumer": access.consumer,
                "table": access.table,
                "via": ", ".join(access.grants),
                "masked": ", ".join(masked) or "-",
                "denied": ", ".join(denied) or "-",
                "row filter": ", ".join(f.name for f in access.row_filters) or "-",
            }
        )
    return rows


class AccessList(list):  # type: ignore[type-arg]  # of TableAccess
    """The access matrix (:meth:`meshsim.mesh.Mesh.access`): a list of ``TableAccess``,
    shown one row per consumer and table it can read (:func:`access_summary`); the cells,
    column by column, are :meth:`cells`."""

    def summary(self) -> Listing:
        consumers = sorted({a.consumer for a in self})
        title = f"what {consumers[0]} can read" if len(consumers) == 1 else "who can read what"
        return Listing(access_summary(self), title=title)

    def cells(self) -> Listing:
        from meshsim.catalog.views import access_rows

        return Listing(access_rows(list(self)), title="access, column by column")

    def changes(self, proposed: AccessList) -> Listing:
        """The cells whose state, rule or row filter differ under ``proposed`` (a what-if)."""
        from meshsim.catalog.views import access_diff

        return Listing(access_diff(self.cells(), proposed.cells()), title="what would change")

    def __repr__(self) -> str:
        return repr(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __rich__(self) -> Any:
        return self.summary().__rich__()


# --- answers whose classes live elsewhere (their _repr_html_ and __str__ call these) --------


def details_sections(details: Any) -> list[Listing]:
    """A product's details (``meshsim show``) as the tables the CLI prints."""
    summary = {
        "owner": details.owner,
        "owner team": details.owner_team,
        "freshness": details.freshness,
        "tags": ", ".join(f"{k}={v}" for k, v in details.tags.items()),
        "pending requests": details.pending_requests,
        "description": details.description,
    }
    seen = f" as seen by {details.as_consumer}" if details.as_consumer else ""
    return [
        Listing([summary], title=details.product),
        Listing(details.versions, title="versions"),
        Listing(details.columns, title="columns" + seen),
        Listing(details.quality, title="quality rules (latest result)"),
        Listing(details.subscribers, title="who can read it"),
    ]


def details_text(details: Any) -> str:
    return "\n\n".join(repr(section) for section in details_sections(details))


def details_html(details: Any) -> str:
    return "".join(section._repr_html_() for section in details_sections(details))


def explanation_html(explanation: Any) -> str:
    """An explanation (``meshsim explain``): each table's grants, columns, row filters, then
    the governed SQL, escaped."""
    parts = [
        f"<p><b>consumer</b> {html.escape(explanation.consumer)}<br>"
        f"<b>query</b> <code>{html.escape(explanation.sql)}</code></p>"
    ]
    for table in explanation.tables:
        rows = [
            {"column": name, "state": column["state"], "rule": column["rule"]}
            for name, column in table["columns"].items()
        ]
        title = (
            f"{table['table']} @ version {table['version']}; grants: "
            f"{', '.join(table['grants']) or 'none'}; row filters: "
            f"{', '.join(table['row_filters']) or 'none'}"
        )
        parts.append(Listing(rows, title=title)._repr_html_())
    parts.append(f"<pre>{html.escape(explanation.governed_sql)}</pre>")
    return "".join(parts)
