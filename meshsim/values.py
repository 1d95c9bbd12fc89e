"""Checks for values the Python API takes from callers, so a bad one is a MeshsimError naming
it, never an OverflowError from SQLite or a UnicodeEncodeError from the catalog. The CLI bounds
its options where it parses them; these are the same rules for everyone else.

>>> bounded_int(5, what="limit")
5
>>> plain_text("why", what="reason")
'why'
"""

from __future__ import annotations

from meshsim.errors import MeshsimError

#: SQLite integers (ids, limits) are signed 64-bit
MAX_INT = 2**63 - 1


def bounded_int(value: int, *, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MeshsimError(f"{what} must be a whole number, got {value!r}")
    if not minimum <= value <= MAX_INT:
        raise MeshsimError(f"{what} {value} is out of range ({minimum} to {MAX_INT:,})")
    return value


def optional_limit(value: int | None, *, what: str = "limit") -> int | None:
    return None if value is None else bounded_int(value, what=what)


def plain_text(value: str, *, what: str) -> str:
    """``value`` if it is text that can be stored (UTF-8: no unpaired surrogates)."""
    if not isinstance(value, str):
        raise MeshsimError(f"{what} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MeshsimError(
            f"{what} is not valid text: character {exc.start} is an unpaired surrogate"
        ) from None
    return value
