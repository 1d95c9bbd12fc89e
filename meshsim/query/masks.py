"""Column masks as syntax trees over one raw column; the caller wraps each in
``CAST(mask AS original type)`` so a masked column keeps its type.

Decisions (see ``docs/THREAT_MODEL.md``):

* ``redact``: strings become the constant ``'****'`` for every row, NULL included, so neither
  length nor presence leaks. Other types become a typed NULL for every row; so do nested
  columns (struct, array, map) as a whole: a NULL of the column's type, not an empty list or
  a struct of redacted fields, which would read as real values.
* ``nullify``: a typed NULL for every row.
* ``keyed_hash``: ``sha256(key || '|' || column ref || '|' || value)`` with the per-mesh secret
  bound as a literal: not reversible by hashing guesses (``range()`` joins) without the key, and
  salted by column ref so equal values in different columns or domains do not link. Strings get
  the hex digest; integers, decimals, floats, dates, timestamps and booleans get a value of
  their own type derived from the digest. NULL stays NULL: the hash exists to keep equal values
  joinable within one column, and hiding presence would need a different mask (nullify).
* ``show_last``: a fixed prefix plus exactly ``n`` characters (the last ``n``, left-padded with
  ``*``), NULL shown as if empty: the length and presence of the value do not leak.
* ``year_only``: dates become January 1st of their year (type DATE kept); timestamps are
  truncated to the year. NULL stays NULL (an unknown date is not the secret part).
* ``keyed_hash``, ``show_last`` and ``year_only`` are refused on nested columns (a nested
  column is granted and masked as a whole, and these keep no meaning for it); ``meshsim
  validate`` reports it.
* ``custom``: the policy's SQL with ``{column}`` and ``consumer.<attr>`` bound as literals,
  checked with the same allowlist as consumer queries; it may read only its own column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from sqlglot import exp

from meshsim.errors import PolicyError, QueryError
from meshsim.query.validate import check_syntax
from meshsim.spec.models import Mask

REDACTED = "****"
#: ``meta`` key of a mask's outer CAST: the mask's function (an engine that writes a value's
#: text differently, Spark, refuses the keyed hash of such a type by it)
MASK_META = "meshsim_mask"
SHOW_LAST_PREFIX = "****"
# as long as "{column}", so that positions in parse errors are positions in the policy text
_COLUMN_PLACEHOLDER = "_column_"


def bind_consumer(tree: exp.Expr, attributes: Mapping[str, str]) -> exp.Expr:
    """Replace every ``consumer.<attr>`` with a string literal (NULL when missing). Pure."""

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table.lower() == "consumer" and not node.db:
            value = attributes.get(node.name)
            return exp.Literal.string(value) if value is not None else exp.null()
        return node

    return tree.copy().transform(replace, copy=False)


def _fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _is_string(dtype: exp.DataType) -> bool:
    return dtype.this in exp.DataType.TEXT_TYPES


def _hex_prefix_int(digest: exp.Expr, digits: int) -> exp.Expr:
    """The first ``digits`` hex characters of ``digest`` as a BIGINT (0 if ``digits`` is 0)."""
    if digits <= 0:
        return exp.Literal.number(0)
    text = exp.DPipe(
        this=exp.Literal.string("0x"),
        expression=exp.Substring(
            this=digest, start=exp.Literal.number(1), length=exp.Literal.number(digits)
        ),
        safe=True,
    )
    return exp.cast(text, exp.DataType.build("bigint"))


def keyed_hash(column: exp.Expr, dtype: exp.DataType, *, key: bytes, column_ref: str) -> exp.Expr:
    """The keyed hash of ``column`` with a value of ``dtype``; see the module docstring."""
    salt = exp.Literal.string(f"{key.hex()}|{column_ref}|")
    text = exp.DPipe(
        this=salt, expression=exp.cast(column, exp.DataType.build("varchar")), safe=True
    )
    digest = _fn("sha256", text)
    t = dtype.this
    T = exp.DataType.Type
    if _is_string(dtype):
        return digest
    ints = {
        T.TINYINT: 1,
        T.SMALLINT: 3,
        T.INT: 7,
        T.BIGINT: 15,
        T.UTINYINT: 1,
        T.USMALLINT: 3,
        T.UINT: 7,
        T.UBIGINT: 15,
    }
    if t in ints:
        return _hex_prefix_int(digest, ints[t])
    if t == T.DECIMAL:
        params = [int(p.this.this) for p in dtype.expressions] or [18, 3]
        precision, scale = params[0], params[1] if len(params) > 1 else 0
        digits = min(15, math.floor((precision - scale) * math.log(10) / math.log(16)))
        return _hex_prefix_int(digest, digits)
    if t in (T.FLOAT, T.DOUBLE):
        return _hex_prefix_int(digest, 6)
    if t == T.BOOLEAN:
        return exp.EQ(
            this=exp.Mod(this=_hex_prefix_int(digest, 1), expression=exp.Literal.number(2)),
            expression=exp.Literal.number(1),
        )
    if t in (T.DATE, T.DATE32):
        days = exp.cast(_hex_prefix_int(digest, 4), exp.DataType.build("integer"))
        return exp.Add(
            this=exp.cast(exp.Literal.string("1970-01-01"), exp.DataType.build("date")),
            expression=days,
        )
    if t in (T.TIMESTAMP, T.TIMESTAMPTZ, T.TIMESTAMPNTZ):
        seconds = _hex_prefix_int(digest, 7)
        return _fn("to_timestamp", exp.cast(seconds, exp.DataType.build("double")))
    raise PolicyError(
        f"mask keyed_hash cannot keep the type {dtype.sql(dialect='duckdb')} "
        f"of column '{column_ref}'"
    )


_NESTED_TYPES = (exp.DataType.Type.STRUCT, exp.DataType.Type.ARRAY, exp.DataType.Type.MAP)


def mask_expression(
    mask: Mask,
    column: exp.Expr,
    dtype: exp.DataType,
    *,
    key: bytes,
    column_ref: str,
    attributes: Mapping[str, str],
) -> exp.Expr:
    """``CAST(<mask over column> AS dtype)`` for one masked column."""
    function = mask.function
    if dtype.this in _NESTED_TYPES and function in ("keyed_hash", "show_last", "year_only"):
        raise PolicyError(
            f"mask '{mask.name}': {function} cannot mask the nested column '{column_ref}' "
            f"({dtype.sql(dialect='duckdb')}); a nested column is masked as a whole: use "
            f"nullify, redact or custom"
        )
    if function == "nullify":
        body: exp.Expr = exp.null()
    elif function == "redact":
        body = exp.Literal.string(REDACTED) if _is_string(dtype) else exp.null()
    elif function == "keyed_hash":
        body = keyed_hash(column, dtype, key=key, column_ref=column_ref)
    elif function == "show_last":
        if not _is_string(dtype):
            raise PolicyError(
                f"mask '{mask.name}': show_last needs a string column, "
                f"'{column_ref}' is {dtype.sql(dialect='duckdb')}"
            )
        n = exp.Literal.number(mask.n or 4)
        value = exp.Coalesce(this=column, expressions=[exp.Literal.string("")])
        last = _fn("lpad", exp.Right(this=value, expression=n), n, exp.Literal.string("*"))
        body = exp.DPipe(this=exp.Literal.string(SHOW_LAST_PREFIX), expression=last, safe=True)
    elif function == "year_only":
        T = exp.DataType.Type
        if dtype.this in (T.DATE, T.DATE32):
            body = _fn(
                "make_date", exp.Year(this=column), exp.Literal.number(1), exp.Literal.number(1)
            )
        elif dtype.this in (T.TIMESTAMP, T.TIMESTAMPTZ, T.TIMESTAMPNTZ):
            body = exp.TimestampTrunc(this=column, unit=exp.var("YEAR"))
        else:
            raise PolicyError(
                f"mask '{mask.name}': year_only needs a date or timestamp column, "
                f"'{column_ref}' is {dtype.sql(dialect='duckdb')}"
            )
    elif function == "custom":
        body = custom_mask(mask, column, attributes)
    else:  # pragma: no cover - the spec model only allows the functions above
        raise PolicyError(f"mask '{mask.name}': unknown function '{function}'")
    masked = exp.cast(body, dtype.copy())
    masked.meta[MASK_META] = function
    return masked


def parse_mask_expression(mask: Mask, *, file: str | None = None, line: int | None = None):
    """A custom mask's expression with ``{column}`` as a placeholder column."""
    from meshsim.policy.fragments import parse_fragment

    text = (mask.expression or "").replace("{column}", _COLUMN_PLACEHOLDER)
    return parse_fragment(text, what=f"mask '{mask.name}': expression", file=file, line=line)


def custom_mask(mask: Mask, column: exp.Expr, attributes: Mapping[str, str]) -> exp.Expr:
    tree = parse_mask_expression(mask)
    try:
        check_syntax(tree, what=f"mask '{mask.name}'")
    except QueryError as exc:
        raise PolicyError(exc.message) from None
    if isinstance(tree, exp.Query) or tree.find(exp.Query, exp.Table):
        raise PolicyError(f"mask '{mask.name}': a mask expression may not contain a query")
    tree = bind_consumer(tree, attributes)

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            if node.name == _COLUMN_PLACEHOLDER and not node.table:
                return column.copy()
            raise PolicyError(
                f"mask '{mask.name}': may read only its own column ({{column}}) and "
                f"consumer.<attribute>, not '{node.sql()}'"
            )
        return node

    return tree.transform(replace, copy=False)
