"""Small, pure evaluators for the two condition languages in policies.

* ``when`` conditions select consumers by attribute: a SQL boolean over ``consumer.<attr>``
  (``=``, ``<>``, ``IN``, ``IS [NOT] NULL``, ``AND``, ``OR``, ``NOT``). They are evaluated in
  Python, never by splicing attributes into SQL text.
* tag expressions select tables and columns by tag, Lake Formation style: terms
  ``key=value`` or ``key IN (v1, v2)`` joined by ``AND``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from meshsim.errors import PolicyError

# --- tag expressions -----------------------------------------------------------------------

_TERM = re.compile(
    r"^\s*(?P<key>[a-z][a-z0-9_]*)\s*(?:=\s*(?P<value>[a-z0-9_]+)|\s+in\s*\((?P<values>[^)]*)\))\s*$",
    re.IGNORECASE,
)


@lru_cache(maxsize=256)
def parse_tag_expression(expression: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """``channel=b2b AND confidentiality IN (public, internal)`` -> terms (key, values).

    >>> terms = parse_tag_expression("channel=b2b AND confidentiality IN (public, internal)")
    >>> [(key, sorted(values)) for key, values in terms]
    [('channel', ['b2b']), ('confidentiality', ['internal', 'public'])]
    """
    terms = []
    for raw in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        match = _TERM.match(raw)
        if not match:
            raise PolicyError(
                f"tag expression '{expression}': cannot read '{raw.strip()}'; write terms as "
                f"key=value or key IN (v1, v2) joined by AND"
            )
        if match.group("value"):
            values = frozenset({match.group("value").lower()})
        else:
            values = frozenset(
                v.strip().lower() for v in match.group("values").split(",") if v.strip()
            )
        terms.append((match.group("key").lower(), values))
    return tuple(terms)


def tags_match(expression: str, tags: Mapping[str, str]) -> bool:
    """Every key of the expression must be tagged with one of its values.

    >>> tags = {"channel": "b2b", "confidentiality": "public"}
    >>> tags_match("channel=b2b AND confidentiality=public", tags)
    True
    >>> tags_match("channel=b2b AND confidentiality=public", {"channel": "b2b"})
    False
    """
    return all(tags.get(key) in values for key, values in parse_tag_expression(expression))


# --- consumer conditions -------------------------------------------------------------------


@lru_cache(maxsize=512)
def _parse_when(condition: str):
    """Parsed once per text: conditions are evaluated for every policy on every plan. The
    tree is only read, never changed."""
    from meshsim.policy.fragments import parse_fragment

    return parse_fragment(condition, what=f"condition '{condition}'")


def consumer_attributes_in(condition: str) -> set[str]:
    """The consumer attributes a condition reads (for validation)."""
    from sqlglot import exp

    tree = _parse_when(condition)
    out = set()
    for column in tree.find_all(exp.Column):
        if column.table.lower() != "consumer":
            raise PolicyError(
                f"condition '{condition}' may only read consumer attributes "
                f"(consumer.<attribute>), not '{column.sql()}'"
            )
        out.add(column.name)
    return out


def evaluate_when(condition: str, attributes: Mapping[str, str]) -> bool:
    """Evaluate a ``when`` condition against a consumer's attributes (missing ones are NULL).

    >>> evaluate_when("consumer.region IS NOT NULL AND consumer.clearance IN ('internal', 'x')",
    ...               {"region": "EUROPE", "clearance": "internal"})
    True
    >>> evaluate_when("consumer.region = 'ASIA'", {})
    False
    """
    return _eval(_parse_when(condition), attributes, condition) is True


def _eval(node, attrs: Mapping[str, str], text: str):  # noqa: C901 - one branch per operator
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return _eval(node.this, attrs, text)
    if isinstance(node, exp.Column):
        if node.table.lower() != "consumer":
            raise PolicyError(f"condition '{text}': only consumer.<attribute> may be read")
        return attrs.get(node.name)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else float(node.this)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Not):
        value = _eval(node.this, attrs, text)
        return None if value is None else not value
    if isinstance(node, exp.And):
        left, right = _eval(node.left, attrs, text), _eval(node.right, attrs, text)
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if isinstance(node, exp.Or):
        left, right = _eval(node.left, attrs, text), _eval(node.right, attrs, text)
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    if isinstance(node, exp.Is):
        value = _eval(node.this, attrs, text)
        if not isinstance(node.expression, exp.Null):
            raise PolicyError(f"condition '{text}': only IS NULL / IS NOT NULL are supported")
        return value is None
    if isinstance(node, (exp.EQ, exp.NEQ)):
        left, right = _eval(node.left, attrs, text), _eval(node.right, attrs, text)
        if left is None or right is None:
            return None
        equal = str(left) == str(right)
        return equal if isinstance(node, exp.EQ) else not equal
    if isinstance(node, exp.In):
        value = _eval(node.this, attrs, text)
        if value is None:
            return None
        return str(value) in {str(_eval(e, attrs, text)) for e in node.expressions}
    raise PolicyError(
        f"condition '{text}': '{node.sql()}' is not supported "
        f"(use =, <>, IN, IS NULL, AND, OR, NOT)"
    )
