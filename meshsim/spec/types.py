"""Column types as written in spec files, and their Arrow equivalents.

Spec files use SQL type names (``bigint``, ``decimal(15,2)``, ``varchar``, ``date``...) and the
Delta/Spark notation for nested types: ``struct<a: int, b: string>``, ``array<int>``,
``map<string, int>``, nested in any combination (keywords in any case, spaces optional, the
colon of a struct field optional, a struct field name with other characters in backticks:
``struct<`Super Name`: int>``). Spark's ``long``, ``short`` and ``byte`` are accepted too.
One table maps them to Arrow so the build can check data against the declared schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

_SIMPLE = {
    "boolean": "bool_",
    "tinyint": "int8",
    "byte": "int8",
    "smallint": "int16",
    "short": "int16",
    "integer": "int32",
    "int": "int32",
    "bigint": "int64",
    "long": "int64",
    "float": "float32",
    "real": "float32",
    "double": "float64",
    "varchar": "string",
    "string": "string",
    "text": "string",
    "date": "date32",
    "blob": "binary",
    "binary": "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_TIMESTAMP = {"timestamp": None, "timestamp_ntz": None, "timestamptz": "UTC", "timestamp_tz": "UTC"}
_NESTED = ("struct<name: type, ...>", "array<type>", "map<key type, value type>")

SPEC_TYPES = sorted([*_SIMPLE, *_TIMESTAMP, "decimal(p,s)"]) + list(_NESTED)
#: struct field names written without backticks
_PLAIN_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Nested:
    """A parsed nested type: ``kind`` struct (``fields`` are (name, type) pairs), array
    (``fields`` is one ("element", type)) or map (("key", type), ("value", type))."""

    kind: str
    fields: tuple[tuple[str, SpecType], ...]


#: a parsed spec type: the normalised spelling of a primitive, or a nested type
SpecType = str | Nested


class _Parser:
    """Recursive descent over one type text; every error names the whole text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> ValueError:
        return ValueError(f"column type '{self.text}': {why} at position {self.pos + 1}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
            raise self.fail(f"expected '{char}', found {found}")
        self.pos += 1

    def word(self) -> str:
        self.skip()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
        if not m:
            raise self.fail("expected a type name")
        self.pos = m.end()
        return m.group(0).lower()

    def field_name(self) -> str:
        self.skip()
        if self.text.startswith("`", self.pos):
            out, i = [], self.pos + 1
            while i < len(self.text):
                if self.text[i] == "`":
                    if self.text.startswith("``", i):
                        out.append("`")
                        i += 2
                        continue
                    self.pos = i + 1
                    if not out:
                        raise self.fail("a struct field name may not be empty")
                    return "".join(out)
                out.append(self.text[i])
                i += 1
            raise self.fail("unterminated `quoted` field name")
        m = _PLAIN_FIELD.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a struct field name (`quote` other names)")
        self.pos = m.end()
        return m.group(0)

    def parse_type(self) -> SpecType:
        start = self.pos
        name = self.word()
        if name == "struct":
            self.expect("<")
            fields: list[tuple[str, SpecType]] = []
            while True:
                field = self.field_name()
                if field.lower() in {f.lower() for f, _ in fields}:
                    raise self.fail(f"struct field '{field}' appears twice (case-insensitively)")
                if self.peek() == ":":
                    self.pos += 1
                fields.append((field, self.parse_type()))
                if self.peek() != ",":
                    break
                self.pos += 1
            self.expect(">")
            return Nested("struct", tuple(fields))
        if name == "array":
            self.expect("<")
            element = self.parse_type()
            self.expect(">")
            return Nested("array", (("element", element),))
        if name == "map":
            self.expect("<")
            key = self.parse_type()
            self.expect(",")
            value = self.parse_type()
            self.expect(">")
            return Nested("map", (("key", key), ("value", value)))
        if name == "decimal":
            if self.peek() != "(":
                raise self.fail("decimal needs (precision, scale)")
            end = self.text.find(")", self.pos)
            if end < 0:
                raise self.fail("unterminated decimal(p,s)")
            self.pos = end + 1
            return _primitive(self.text[start : self.pos], self.text)
        return _primitive(name, self.text)


def _primitive(text: str, whole: str) -> str:
    t = re.sub(r"\s+", " ", text.strip().lower())
    if t in _SIMPLE or t in _TIMESTAMP:
        return t
    m = _DECIMAL.match(t)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(
                f"decimal precision must be 1..38 and scale <= precision, got '{text.strip()}'"
            )
        return f"decimal({precision},{scale})"
    where = "" if t == whole.strip().lower() else f" in '{whole.strip()}'"
    raise ValueError(
        f"unknown column type '{text.strip()}'{where} (valid: {', '.join(SPEC_TYPES)})"
    )


def parse_type(text: str) -> SpecType:
    """The parsed form of a spec type, or ValueError naming what is wrong."""
    parser = _Parser(text)
    if not text.strip():
        raise ValueError(f"empty column type (valid: {', '.join(SPEC_TYPES)})")
    if "<" not in text:
        return _primitive(text, text)
    parsed = parser.parse_type()
    if parser.peek():
        raise parser.fail("unexpected text after the type")
    return parsed


def _quote_field(name: str) -> str:
    return name if _PLAIN_FIELD.fullmatch(name) else "`" + name.replace("`", "``") + "`"


def render(t: SpecType) -> str:
    """The canonical spelling of a parsed type."""
    if isinstance(t, str):
        return t
    if t.kind == "struct":
        return "struct<" + ", ".join(f"{_quote_field(n)}: {render(f)}" for n, f in t.fields) + ">"
    return f"{t.kind}<" + ", ".join(render(f) for _, f in t.fields) + ">"


def is_nested(spec_type: str) -> bool:
    """Whether a spec type is a struct, array or map."""
    return isinstance(parse_type(spec_type), Nested)


def normalize_type(text: str) -> str:
    """Canonical spelling of a spec type, or ValueError listing the valid ones.

    >>> normalize_type(" DECIMAL(15, 2) ")
    'decimal(15,2)'
    >>> normalize_type("BigInt")
    'bigint'
    >>> normalize_type("STRUCT<a:INT,`Super Name`:array<map<string,long>>>")
    'struct<a: int, `Super Name`: array<map<string, long>>>'
    """
    return render(parse_type(text))


def _to_arrow(t: SpecType) -> pa.DataType:
    import pyarrow as pa

    if isinstance(t, Nested):
        if t.kind == "struct":
            return pa.struct([pa.field(n, _to_arrow(f)) for n, f in t.fields])
        if t.kind == "array":
            return pa.list_(_to_arrow(t.fields[0][1]))
        return pa.map_(_to_arrow(t.fields[0][1]), _to_arrow(t.fields[1][1]))
    if t in _SIMPLE:
        return getattr(pa, _SIMPLE[t])()
    if t in _TIMESTAMP:
        return pa.timestamp("us", tz=_TIMESTAMP[t])
    m = _DECIMAL.match(t)
    assert m is not None
    return pa.decimal128(int(m.group(1)), int(m.group(2)))


def to_arrow(spec_type: str) -> pa.DataType:
    """The Arrow type meshsim writes for a spec type (nested values and elements nullable)."""
    return _to_arrow(parse_type(spec_type))


#: Arrow types no spec type stands for, by pyarrow predicate, for the refusal message
_REFUSED = (
    "unsigned integers, float16, time, duration, interval, null, dictionary, union, "
    "fixed-size binary"
)


def holds_timestamp_ntz(dtype: pa.DataType) -> bool:
    """Whether an Arrow type is, or nests, a timestamp without time zone."""
    import pyarrow as pa

    if pa.types.is_timestamp(dtype):
        return dtype.tz is None
    return any(holds_timestamp_ntz(dtype.field(i).type) for i in range(dtype.num_fields))


def from_arrow(dtype: pa.DataType) -> str:
    """The spec spelling of an Arrow type (for tables registered from an existing location),
    or ValueError naming the type and what is supported.

    >>> import pyarrow as pa
    >>> from_arrow(pa.struct([("a", pa.int32()), ("tags", pa.list_(pa.string()))]))
    'struct<a: integer, tags: array<varchar>>'
    """
    import pyarrow as pa

    if pa.types.is_struct(dtype):
        fields = [dtype.field(i) for i in range(dtype.num_fields)]
        return render(Nested("struct", tuple((f.name, from_arrow(f.type)) for f in fields)))
    if pa.types.is_map(dtype):
        return f"map<{from_arrow(dtype.key_type)}, {from_arrow(dtype.item_type)}>"
    if (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_list_view(dtype)
        or pa.types.is_large_list_view(dtype)
    ):
        return f"array<{from_arrow(dtype.value_type)}>"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_timestamp(dtype):
        return "timestamptz" if dtype.tz else "timestamp"
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    ):
        return "varchar"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "blob"
    for name, factory in _SIMPLE.items():
        if name in {"int", "real", "string", "text", "binary", "byte", "short", "long"}:
            continue
        if getattr(pa, factory)() == dtype:
            return name
    raise ValueError(
        f"Arrow type {dtype} has no spec type (supported: {', '.join(SPEC_TYPES)}; "
        f"not supported: {_REFUSED})"
    )


def _canonical(t: SpecType) -> object:
    """One value per Arrow type (``varchar`` and ``text`` alike), without importing pyarrow."""
    if isinstance(t, Nested):
        return (t.kind, tuple((n, _canonical(f)) for n, f in t.fields))
    if t in _SIMPLE:
        return _SIMPLE[t]
    return f"timestamp[{_TIMESTAMP[t]}]" if t in _TIMESTAMP else t


_INT_DIGITS = {
    "tinyint": 3,
    "byte": 3,
    "smallint": 5,
    "short": 5,
    "integer": 10,
    "int": 10,
    "bigint": 19,
    "long": 19,
}


def can_hold(declared: str, actual: str) -> bool:
    """Whether every value of spec type ``actual`` converts to ``declared`` without loss: the
    same type, a wider integer or decimal, an integer into a decimal or a double that holds all
    its digits, a float into a double, a date into a timestamp; nested types field by field
    (same struct field names in the same order).

    >>> can_hold("bigint", "integer"), can_hold("decimal(18,2)", "decimal(15,2)")
    (True, True)
    >>> can_hold("integer", "bigint"), can_hold("decimal(12,2)", "decimal(15,2)")
    (False, False)
    >>> can_hold("varchar", "string"), can_hold("bigint", "varchar")
    (True, False)
    >>> can_hold("array<bigint>", "array<int>"), can_hold("struct<a: int>", "struct<b: int>")
    (True, False)
    """
    return _can_hold(parse_type(declared), parse_type(actual))


def _can_hold(declared: SpecType, actual: SpecType) -> bool:
    if isinstance(declared, Nested) or isinstance(actual, Nested):
        if not (isinstance(declared, Nested) and isinstance(actual, Nested)):
            return False
        if declared.kind != actual.kind or len(declared.fields) != len(actual.fields):
            return False
        return all(
            dn == an and _can_hold(dt, at)
            for (dn, dt), (an, at) in zip(declared.fields, actual.fields, strict=True)
        )
    if _canonical(declared) == _canonical(actual):
        return True
    wide, narrow = _DECIMAL.match(declared), _DECIMAL.match(actual)
    if actual in _INT_DIGITS:
        digits = _INT_DIGITS[actual]
        if declared in _INT_DIGITS:
            return _INT_DIGITS[declared] >= digits
        if wide:
            return int(wide.group(1)) - int(wide.group(2)) >= digits
        if declared == "double":
            return digits <= 10
        return declared in ("float", "real") and digits <= 5
    if wide and narrow:
        precision, scale = int(wide.group(1)), int(wide.group(2))
        old_precision, old_scale = int(narrow.group(1)), int(narrow.group(2))
        return scale >= old_scale and precision - scale >= old_precision - old_scale
    if actual in ("float", "real"):
        return declared == "double"
    return actual == "date" and declared in _TIMESTAMP
