"""Syntax-tree helpers the planning rules call on every new query text.

``copy_tree`` is sqlglot's ``Expr.copy`` without its cost: sqlglot deep-copies every node's
``meta`` dict through :func:`copy.deepcopy` (the parser gives each identifier one with its
line, column and offsets), which was half the time of copying a query. Meta values that are
immutable are shared instead; anything else is still deep-copied.

``nodes_of`` lists a tree's nodes of the kinds asked for in one walk, for rules that look
at several kinds after the tree stopped changing shape.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any, TypeVar

from sqlglot import exp

E = TypeVar("E", bound=exp.Expr)

_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def copy_tree(tree: E) -> E:
    """A deep copy of ``tree``, equal to ``tree.copy()`` (same nodes, comments, types, meta).

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT a FROM t WHERE b > 1", read="duckdb")
    >>> copied = copy_tree(tree)
    >>> copied == tree and copied is not tree and copied.sql() == tree.sql()
    True
    """
    root = tree.__class__()
    stack: list[tuple[exp.Expr, exp.Expr]] = [(tree, root)]
    while stack:
        node, copy = stack.pop()
        if node.comments is not None:
            copy.comments = list(node.comments)  # strings
        if node._type is not None:
            copy._type = node._type.copy()
        if node._meta is not None:
            copy._meta = _copy_meta(node._meta)
        if node._hash is not None:
            copy._hash = node._hash
        for key, value in node.args.items():
            if isinstance(value, exp.Expr):
                child = value.__class__()
                stack.append((value, child))
                copy.set(key, child)
            elif type(value) is list:
                copy.args[key] = []
                for item in value:
                    if isinstance(item, exp.Expr):
                        child = item.__class__()
                        stack.append((item, child))
                        copy.append(key, child)
                    else:
                        copy.append(key, item)
            else:
                copy.args[key] = value
    return root


def _copy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v if type(v) in _IMMUTABLE else deepcopy(v) for k, v in meta.items()}


def nodes_of(tree: exp.Expr, *kinds: type[exp.Expr]) -> dict[type[exp.Expr], list[Any]]:
    """Per kind (exact class or a base class), the nodes of ``tree`` of that kind, in walk
    order, from one walk."""
    found: dict[type[exp.Expr], list[Any]] = {kind: [] for kind in kinds}
    for node in tree.walk():
        for kind in kinds:
            if isinstance(node, kind):
                found[kind].append(node)
    return found
