"""Plans of texts that differ only in the values of their literals.

A dashboard or a notebook sends one query again and again with other values: another date,
another segment, another threshold. Planning each such text anew runs every rule (parse,
resolve, bind, DuckDB's checks); a *template* plans the shape once and fills each later text's
values in.

What may differ: a *slot*, a constant standing where it can only be a value, as
:func:`meshsim.query.crosscheck.parse_shape` defines it for DuckDB (an operand of a
comparison, of IN or BETWEEN, a LIKE/ILIKE/GLOB pattern without ESCAPE, a CASE result, or a
literal cast to a type anywhere), not inside an output column without an alias (DuckDB names it
after its text) nor in a PIVOT (its values name columns); and of a plain form: a string of
printable ASCII without quotes or backslashes, at most :data:`MAX_SLOT_CHARS`, without
meshsim's reserved scan prefix (bind refuses it), or a short number (digits, an optional
fraction, at most 18 digits; no sign or exponent). Every other token of the text, comments
included, is part of the key, and so is each slot's :func:`value_class`: all the rules decide
on a constant's text (whether a string casts to a date or a timestamp without failing, whether
a number is an integer).

How a template is made, and why its plans are the pipeline's:

1. the first text of a key is planned by the whole pipeline, as any text (``A``);
2. when a second text of the key comes, ``A``'s slots are replaced by sentinels of the same
   class (unique strings), and that text ``S`` is planned by the rules up to ``bind``;
3. ``S``'s plan with ``A``'s values put back in place of its sentinels must be ``A``'s plan,
   byte for byte (the SQL, the skeleton, the scans, the tables, columns and versions), and the
   sentinels must appear nowhere in ``A``'s plan; DuckDB's parse shape of ``S``'s skeleton
   must be ``A``'s (so DuckDB too sees every sentinel where only a value can stand: the shape
   keeps a string's text anywhere else). Two different values gave the same plan, so the rules
   did not decide on the text: the template is kept;
4. a text of the key gets the template's plan with its own values put in, one pass over the
   SQL (a value is never re-scanned for a sentinel). DuckDB's checks are not run again: its
   parse of the filled SQL is ``A``'s but for the text of constants where only a value can
   stand (the values cannot end a quote or escape one), and :mod:`meshsim.query.crosscheck`
   looks at the text of no such constant: ``A`` passed them, so does this text.

A template is used only while its plan is fresh, as the plan cache uses a plan (the caller
checks versions, the serving gate and key sets), for the consumer and policy fingerprint it was
made under, on the DuckDB it was verified on (dropped with the plan cache when it is replaced).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from meshsim.query.cache import BoundedCache

if TYPE_CHECKING:
    from sqlglot import exp

    from meshsim.query.pipeline import Attempt
    from meshsim.query.rewrite import Plan
    from meshsim.query.session import GovernedEngine

#: the longest string literal that can be a slot (a longer one is part of the key)
MAX_SLOT_CHARS = 200
#: the most candidates a text may have for a template (a longer IN list is planned anew)
MAX_SLOTS = 256
#: printable ASCII but the double quote, the quote and the backslash
_PLAIN = re.compile(r"[ !#-&(-\[\]-~]*")
#: a number that can be a slot: digits, with a fraction or without (no sign, no exponent)
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
#: a string whose text starts like a date (its class may be a date's or a timestamp's)
_DATE_LIKE = re.compile(r"'[0-9]{4}-")


@dataclass(frozen=True)
class Words:
    """A text as the template cache sees it: its key (the text itself, each candidate slot
    replaced by its class) and the SQL of each candidate slot, in order."""

    key: Hashable
    #: the SQL of each candidate: a string with its quotes, or a number
    values: tuple[str, ...]
    #: (start, end) of each candidate in the text
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class First:
    """The first text of a key, planned by the whole pipeline."""

    text: str
    words: Words
    plan: Plan


@dataclass(frozen=True)
class Template:
    plan: Plan  # planned for the sentinel text (without its tree)
    #: which candidates are slots; the others must have the text they had
    slots: tuple[bool, ...]
    fixed: tuple[str | None, ...]
    #: the plan's SQL and skeleton cut at each sentinel, and the slot put in at each cut
    sql_parts: tuple[str, ...]
    sql_slots: tuple[int, ...]
    skeleton_parts: tuple[str, ...]
    skeleton_slots: tuple[int, ...]

    def matches(self, words: Words) -> bool:
        return all(f is None or f == v for f, v in zip(self.fixed, words.values, strict=True))

    def fill(self, words: Words) -> Plan:
        """The template's plan with ``words``' values in place of the sentinels."""
        values = [v for v, slot in zip(words.values, self.slots, strict=True) if slot]
        return replace(
            self.plan,
            sql=_join(self.sql_parts, self.sql_slots, values),
            skeleton=_join(self.skeleton_parts, self.skeleton_slots, values),
            tree=None,
        )


def _join(parts: tuple[str, ...], slots: tuple[int, ...], values: list[str]) -> str:
    out = [parts[0]]
    for slot, part in zip(slots, parts[1:], strict=True):
        out += (values[slot], part)
    return "".join(out)


def _cut(sql: str, sentinels: list[str]) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """``sql`` cut at every occurrence of each sentinel (a number only as a whole token),
    with the slot of each cut; None if two occurrences overlap."""
    found: list[tuple[int, int, int]] = []
    for slot, sentinel in enumerate(sentinels):
        number = not sentinel.startswith("'")
        at = sql.find(sentinel)
        while at >= 0:
            after = at + len(sentinel)
            if not number or not (
                (at and (sql[at - 1].isalnum() or sql[at - 1] in "_."))
                or (after < len(sql) and (sql[after].isalnum() or sql[after] in "_."))
            ):
                found.append((at, after, slot))
            at = sql.find(sentinel, after)
    found.sort()
    parts, slots, last = [], [], 0
    for at, after, slot in found:
        if at < last:
            return None
        parts.append(sql[last:at])
        slots.append(slot)
        last = after
    parts.append(sql[last:])
    return tuple(parts), tuple(slots)


def words(text: str) -> Words | None:
    """The key and candidate slots of ``text``; None when it does not tokenize (the parse
    rule says why)."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import TokenError
    from sqlglot.tokens import TokenType

    from meshsim.query.rewrite import SCAN_MARK

    try:
        tokens = Dialect.get_or_raise("duckdb").tokenize(text)
    except TokenError:
        return None
    # the key is the text itself but for each candidate's class: whitespace, comments and a
    # number's digit separators are in it (DuckDB's parse, which names outputs, reads them)
    key: list[Hashable] = []
    values: list[str] = []
    spans: list[tuple[int, int]] = []
    last = 0
    for token in tokens:
        raw = text[token.start : token.end + 1]
        if (
            token.token_type is TokenType.STRING
            and len(token.text) <= MAX_SLOT_CHARS
            and _PLAIN.fullmatch(token.text)
            and SCAN_MARK not in token.text.lower()  # refused by bind: never a slot
            and raw == f"'{token.text}'"
        ) or (token.token_type is TokenType.NUMBER and _NUMBER.fullmatch(raw) and _short(raw)):
            key += (text[last : token.start], value_class(raw))
            values.append(raw)
            spans.append((token.start, token.end + 1))
            last = token.end + 1
    key.append(text[last:])
    if len(values) > MAX_SLOTS:
        return Words((text,), (), ())
    return Words(tuple(key), tuple(values), tuple(spans))


def value_class(sql: str) -> tuple[object, ...]:
    """All the rules decide on a candidate's text: of a string, which types it casts to
    without failing (:func:`meshsim.query.fallible.string_class`); of a number, whether it
    is an integer (DuckDB's constant kind: INTEGER or NUMERIC). Every candidate number is
    short, which :mod:`meshsim.query.fallible` also asks."""
    from meshsim.query.fallible import string_class

    if sql.startswith("'"):
        return ("string", *string_class(sql[1:-1]))
    return ("number", "." not in sql)


def _short(number: str) -> bool:
    from meshsim.query.fallible import short_number

    return short_number(number)


def slot_positions(tree: exp.Expr) -> frozenset[int]:
    """The start offsets of the string literals of ``tree`` (as parsed, before any rule)
    that stand where only a value can."""
    from sqlglot import exp

    found = set()
    for literal in tree.find_all(exp.Literal):
        start = literal.meta.get("start")
        if (
            start is not None
            and _value_position(literal)
            and not _in_unnamed_output(literal)
            and literal.find_ancestor(exp.Pivot) is None  # PIVOT IN values name columns
        ):
            found.add(start)
    return frozenset(found)


def _value_position(literal: exp.Literal) -> bool:
    from sqlglot import exp

    from meshsim.query.fallible import COMPARISONS

    node: exp.Expr = literal
    parent = node.parent
    if isinstance(parent, exp.Cast) and node.arg_key == "this":  # TryCast is a Cast
        return True  # a typed value, wherever it stands
    if isinstance(parent, exp.Neg) and not literal.is_string:
        node, parent = parent, parent.parent  # -5: DuckDB's parse has a negative constant
    if parent is None:
        return False
    key = node.arg_key
    if isinstance(parent, COMPARISONS):
        return True
    if isinstance(parent, exp.Between):
        return True
    if isinstance(parent, exp.In):
        return key == "expressions" and parent.args.get("query") is None
    if isinstance(parent, exp.Like | exp.ILike | exp.Glob):
        escaped = isinstance(parent.parent, exp.Escape) or parent.args.get("escape") is not None
        return key == "expression" and not escaped
    if isinstance(parent, exp.If):
        return key == "true" and isinstance(parent.parent, exp.Case)
    if isinstance(parent, exp.Case):
        return key == "default"
    return False


def _in_unnamed_output(literal: exp.Literal) -> bool:
    """Whether ``literal`` is inside a SELECT's output column without an alias."""
    from sqlglot import exp

    node: exp.Expr | None = literal
    while node is not None and node.parent is not None:
        if (
            isinstance(node.parent, exp.Select)
            and node.arg_key == "expressions"
            and not isinstance(node, exp.Alias)
        ):
            return True
        node = node.parent
    return False


class PlanTemplates:
    """The templates of one governed engine, and the first text of each key."""

    def __init__(self, size: int = 256) -> None:
        self._firsts: BoundedCache[First] = BoundedCache(size)
        #: key -> its templates (one per set of fixed candidates' texts)
        self._templates: BoundedCache[tuple[Template, ...]] = BoundedCache(size)
        #: keys of which no template can be made
        self._refused: BoundedCache[bool] = BoundedCache(size)
        #: (key, first text) -> which of its candidates are slots
        self._slots: BoundedCache[tuple[bool, ...]] = BoundedCache(size)
        self._nonce = secrets.randbelow(10**6)

    def clear(self) -> None:
        for cache in (self._firsts, self._templates, self._refused, self._slots):
            cache.clear()

    def record(self, attempt: Attempt, plan: Plan, words: Words | None) -> None:
        """Remember a text planned by the whole pipeline as the first of its key (the last
        planned: a template is made from a fresh plan). Its tree is not kept."""
        if words is None or not words.values or not _eligible(plan):
            return
        key = (attempt.consumer, attempt.fingerprint, words.key)
        self._firsts.put(key, First(attempt.text, words, replace(plan, tree=None)))

    def plan_for(
        self,
        engine: GovernedEngine,
        attempt: Attempt,
        words: Words,
        usable: Callable[[Plan], bool],
    ) -> Plan | None:
        """The plan of ``attempt`` filled from a template (made now from the key's first text
        if there is none yet), or None: plan it by the pipeline."""
        key = (attempt.consumer, attempt.fingerprint, words.key)
        if self._refused.get(key):
            return None
        known = tuple(t for t in self._templates.get(key) or () if usable(t.plan))
        for template in known:
            if template.matches(words):
                return template.fill(words)
        first = self._firsts.get(key)
        if first is None or first.text == attempt.text or not usable(first.plan):
            return None
        slots = self._slots.get((key, first.text))
        if slots is None:
            slots = self._slots_of(engine, attempt, first)
            self._slots.put((key, first.text), slots)
        if not any(slots):
            self._refused.put(key, True)
            return None
        if any(
            not slot and mine != theirs
            for slot, mine, theirs in zip(slots, words.values, first.words.values, strict=True)
        ):
            return None  # another query (a constant that is not a value differs): planned anew
        verifier = engine.duck
        made = self._make(engine, attempt, first, slots)
        if engine.duck is not verifier:
            # replaced while the template was made: the first plan was verified on the old
            # DuckDB, and the caches of plans made on it were dropped with it
            return None
        if made is None:
            self._refused.put(key, True)
            return None
        self._templates.put(key, (*known, made)[-4:])
        return made.fill(words)

    def _slots_of(self, engine: GovernedEngine, attempt: Attempt, first: First) -> tuple[bool, ...]:
        from meshsim.query.validate import parse_statement

        try:
            tree = parse_statement(first.text, consumer=attempt.consumer, bounds=engine.bounds)
        except Exception:  # the first text parsed when it was planned
            return tuple(False for _ in first.words.spans)
        positions = slot_positions(tree)
        return tuple(start in positions for start, _ in first.words.spans)

    def _make(
        self, engine: GovernedEngine, attempt: Attempt, first: First, slots: tuple[bool, ...]
    ) -> Template | None:
        from meshsim.engine import QueryTimeout
        from meshsim.query import pipeline

        sentinels = self._sentinels(first, slots)
        if sentinels is None:
            return None
        text = first.text
        spans = [span for span, slot in zip(first.words.spans, slots, strict=True) if slot]
        for (start, end), sentinel in reversed(list(zip(spans, sentinels, strict=True))):
            text = text[:start] + sentinel + text[end:]
        probe = pipeline.Attempt(attempt.consumer, text, None, attempt.engine)
        probe.policies, probe.fingerprint = attempt.policies, attempt.fingerprint
        probe.limit_s = attempt.time_left  # the attempt's clock: a slow probe times it out
        rules = tuple(r for r in pipeline.PLAN_RULES if r.name != "verify-plan")
        try:
            pipeline.run_rules(engine, probe, rules)
        except QueryTimeout:
            raise  # the attempt's time is up
        except Exception:  # the sentinel text is not planned: no template, the pipeline plans
            return None
        made = probe.plan
        if made is None or not _eligible(made):
            return None
        sql, skeleton = _cut(made.sql, sentinels), _cut(made.skeleton, sentinels)
        if sql is None or skeleton is None:
            return None
        real = [v for v, slot in zip(first.words.values, slots, strict=True) if slot]
        plan = first.plan
        if (
            _join(*sql, real) != plan.sql
            or _join(*skeleton, real) != plan.skeleton
            or not _same_reads(made, plan)
            or _shape(engine, made) != _shape(engine, plan)
        ):
            return None
        fixed = tuple(
            None if slot else value for value, slot in zip(first.words.values, slots, strict=True)
        )
        # what the first plan was let through and depends on: the same tables and access
        made = replace(made, served=plan.served, tree=None, dependencies=plan.dependencies)
        return Template(made, slots, fixed, *sql, *skeleton)

    def _sentinels(self, first: First, slots: tuple[bool, ...]) -> list[str] | None:
        """The SQL of a sentinel per slot: of the class of the value it stands for, found
        neither in the first text nor in its plan (so that each of its occurrences in the
        sentinel text's plan came from the slot). Sentinels of one form have one length, so
        none is inside another."""
        taken = first.text + first.plan.sql
        found: list[str] = []
        seen: set[str] = set()
        for index, (value, slot) in enumerate(zip(first.words.values, slots, strict=True)):
            if not slot:
                continue
            wanted = value_class(value)
            for attempt in range(50):
                candidate = _sentinel(value, self._nonce, index, attempt)
                if (
                    candidate not in seen
                    and value_class(candidate) == wanted
                    and candidate not in taken
                ):
                    found.append(candidate)
                    seen.add(candidate)
                    break
            else:
                return None
        return found


def _sentinel(value: str, nonce: int, index: int, attempt: int) -> str:
    """The SQL of a constant of the class of ``value`` (SQL) unlike it: a number of the same
    kind, a date or a timestamp with another year, else a plain string."""
    digits = f"{nonce:06d}{index:04d}{attempt:02d}"
    if not value.startswith("'"):
        return f"9{digits}" if "." not in value else f"9{digits}.5"
    if _DATE_LIKE.match(value):
        year = 1001 + (index * 53 + attempt * 7919 + nonce) % 8000
        return f"'{year:04d}{value[5:]}"
    return f"'msq{digits}'"


def _eligible(plan: Plan) -> bool:
    """A plan a template may stand for: an ordinary query, run as it is (no DESCRIBE,
    SUMMARIZE or EXPLAIN around it)."""
    return not plan.wrapper


def _same_reads(a: Plan, b: Plan) -> bool:
    return (
        a.files == b.files
        and a.ctes == b.ctes
        and a.lookups == b.lookups
        and a.bound == b.bound
        and a.series == b.series
        and [(t.ref, t.version, t.access, t.columns) for t in a.tables]
        == [(t.ref, t.version, t.access, t.columns) for t in b.tables]
        and {p: s.sql for p, s in a.scans.items()} == {p: s.sql for p, s in b.scans.items()}
    )


def _shape(engine: GovernedEngine, plan: Plan) -> str:
    """DuckDB's parse shape of ``plan``'s skeleton (scans stand for themselves by name)."""
    from meshsim import engine as duck
    from meshsim.query.crosscheck import parse_shape

    return parse_shape(duck.serialize_sql(engine.connection, plan.skeleton))
