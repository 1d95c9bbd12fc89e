"""The 22 TPC-H queries, written against the mesh names, and the restricted consumer's set.

``qNN.sql`` is the standard query text with the standard validation parameters, table names
rewritten to mesh names (``lineitem`` -> ``sales.lineitem`` and so on). Three portable
spellings replace dialect-specific ones without changing any answer: dates are
``CAST('...' AS DATE)`` literals (the intervals already added), Q13 names its derived columns
inside the subquery instead of with a column-alias list, and Q15's view ``revenue0`` is a
common table expression. Queries ending in ``LIMIT`` (Q3, Q10, Q18) get a unique last sort key
so that ties cannot make engines pick different rows.

``restricted/qNN.sql`` overrides a query for the restricted consumer (see
:data:`meshsim.bench.queries.RESTRICTED`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from meshsim.errors import MeshsimError, unknown_name_message

ALL = tuple(f"q{n:02d}" for n in range(1, 23))

#: The restricted consumer of comparison 3 and the TPC-H queries it can answer. The analyst
#: sees ``customer.customer`` (EUROPE only, ``c_acctbal`` not granted, ``c_name`` hashed,
#: ``c_phone`` last 4, ``c_address`` redacted), ``customer.nation``, ``customer.region``,
#: ``sales.orders`` (orders of EUROPE customers) and ``sales.lineitem``, but no supply table:
#: Q2, Q5, Q7-Q9, Q11, Q14-Q17 and Q19-Q21 read ``supply.*`` and Q22 is built on ``c_acctbal``.
#: Q10 projects ``c_acctbal``; its restricted variant drops that one column, which keeps the
#: query that reads every masked column (name, address, phone).
RESTRICTED_CONSUMER = "eu_marketing_analyst"
RESTRICTED = ("q01", "q03", "q04", "q06", "q10", "q12", "q13", "q18")


@dataclass(frozen=True)
class Query:
    name: str  # q01 ... q22
    sql: str
    title: str  # first comment line, e.g. "TPC-H Q1: pricing summary report (DELTA = 90)"
    variant: str | None = None  # "restricted" for an override

    @property
    def number(self) -> int:
        return int(self.name[1:])


def _read(path: str) -> str:
    return resources.files(__package__).joinpath(path).read_text()


def _query(name: str, path: str, variant: str | None = None) -> Query:
    text = _read(path)
    first = text.splitlines()[0]
    title = first[2:].strip() if first.startswith("--") else name
    return Query(name, text, title, variant)


def _check_names(names: list[str], valid: tuple[str, ...]) -> list[str]:
    out = []
    for raw in names:
        match = re.fullmatch(r"[qQ]?0*(\d+)", raw.strip())
        name = f"q{int(match.group(1)):02d}" if match else raw
        if name not in valid:
            raise MeshsimError(
                unknown_name_message("query", raw, list(valid)),
                hint="pass --queries with numbers such as 1,6,18 or names such as q01",
            )
        out.append(name)
    return out


def tpch(names: list[str] | None = None) -> list[Query]:
    """The TPC-H queries called ``names`` (``q01``, ``1``, ``Q1``), or all 22."""
    chosen = _check_names(names, ALL) if names else list(ALL)
    return [_query(n, f"{n}.sql") for n in chosen]


def restricted(names: list[str] | None = None) -> list[Query]:
    """The restricted consumer's queries among ``names`` (all of its set by default)."""
    chosen = [n for n in (_check_names(names, ALL) if names else list(ALL)) if n in RESTRICTED]
    out = []
    for n in chosen:
        override = resources.files(__package__).joinpath("restricted", f"{n}.sql")
        if override.is_file():
            out.append(_query(n, f"restricted/{n}.sql", "restricted"))
        else:
            out.append(_query(n, f"{n}.sql"))
    return out
