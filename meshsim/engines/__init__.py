"""The engines a governed query can run on: capabilities as data.

Every engine runs the same verified plan (:mod:`meshsim.query.pipeline`); DuckDB is the
default and the reference, Spark (:mod:`meshsim.engines.spark`) runs the plan transpiled.
"""

from __future__ import annotations

from meshsim.errors import QueryError, unknown_name_message

DUCKDB = "duckdb"
SPARK = "spark"
#: what ``--engine`` accepts, the default first
ENGINES = (DUCKDB, SPARK)


def require_engine(name: str) -> str:
    """``name`` if meshsim can run governed queries on it, else one clear error.

    >>> require_engine("spark")
    'spark'
    """
    if name not in ENGINES:
        raise QueryError(
            unknown_name_message("engine", name, ENGINES),
            hint="meshsim sql --engine duckdb (the default) or --engine spark",
        )
    return name
